"""``manage.py roles sync|list|assign``: the viewer / operator / admin groups and who is in them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fabric_ops.web import audit, roles


class Command(BaseCommand):
    help = "Manage roles: sync (create the groups and set their permissions), list, assign USER ROLE."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("sync", help="create the role groups and set their permissions from the code")
        sub.add_parser("list", help="each role's permissions count and members")
        assign = sub.add_parser("assign", help="make ROLE the user's only role")
        assign.add_argument("username")
        assign.add_argument("role", choices=roles.ROLES)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "sync":
            counts = roles.sync_roles()
            for role, count in counts.items():
                self.stdout.write(f"{role}: {count} permissions")
        elif action == "list":
            from django.contrib.auth.models import Group

            for role in roles.ROLES:
                group = Group.objects.filter(name=role).first()
                if group is None:
                    self.stdout.write(f"{role}: missing (run `roles sync`)")
                    continue
                members = ", ".join(sorted(group.user_set.values_list("username", flat=True))) or "-"
                self.stdout.write(f"{role}: {group.permissions.count()} permissions; members: {members}")
        else:
            user = get_user_model().objects.filter(username=options["username"]).first()
            if user is None:
                raise CommandError(f"no user named {options['username']!r}")
            before = roles.role_of(user)
            roles.assign_role(user, options["role"])
            audit.record(f"cli:{audit.cli_login()}", "assign-role", user, {"role": [before, options["role"]]})
            self.stdout.write(f"{user.username} is now {options['role']}")
