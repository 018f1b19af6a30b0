"""Roles are Django groups with model permissions: viewer, operator, admin.

The groups are (re)built from the tables below by a data migration, after every
``migrate`` (so models that other apps add later join automatically) and by
``manage.py roles sync``. A group's permissions are set exactly: a permission
added by hand to a role group is removed at the next sync, so the code is the
one place that says what a role may do.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

logger = logging.getLogger(__name__)

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)

# Custom permissions on existing models, created here so the owning apps' models stay untouched.
CUSTOM_PERMISSIONS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("fabricconfig", "pushjob"): [
        ("approve_pushjob", "Can approve a push job requested by someone else"),
        ("run_pushjob", "Can queue a push job for execution"),
    ],
}

# Viewers see everything of the product's apps except the audit log (who did what is for operators and admins).
VIEWER_EXCLUDED = {"web.view_auditentry"}

# What an operator may do on top of viewing: run and approve pushes, drain/undrain, inject lab faults.
OPERATOR_PERMISSIONS = [
    "web.view_auditentry",
    "fabricconfig.add_pushjob",
    "fabricconfig.approve_pushjob",
    "fabricconfig.run_pushjob",
    "topology.change_device",  # the API lets operators change Device.lifecycle only (drain / undrain)
    "topology.change_link",  # ... and Link.state
    "topology.change_opticalspan",  # ... and OpticalSpan.state
    "web.inject_fault",
    "health.change_incident",  # acknowledge / resolve incidents
    "health.change_remediationrun",  # approve / reject a run waiting for a person, roll back a drain
    "alerting.change_alertgroup",  # acknowledge / resolve alert groups (the alerting API checks exactly this)
    "alerting.add_silence",
    "alerting.change_silence",
]


def product_app_labels() -> list[str]:
    """Labels of FabricOps' own apps (``fabric_ops.*``): the ones whose objects roles talk about."""
    return sorted(cfg.label for cfg in global_apps.get_app_configs() if cfg.name.startswith("fabric_ops."))


def ensure_permissions(apps: Any = global_apps) -> None:
    """Create content types and permissions for every installed model, plus the custom ones above.

    Needed inside the data migration: Django only creates permissions in ``post_migrate``, after it.
    """
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, apps=apps, verbosity=0)
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    for (app_label, model), perms in CUSTOM_PERMISSIONS.items():
        ct, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        for codename, name in perms:
            Permission.objects.get_or_create(content_type=ct, codename=codename, defaults={"name": name})


def role_permissions(apps: Any = global_apps) -> dict[str, list[Any]]:
    """Permission rows of each role, from the tables above and what is installed now."""
    Permission = apps.get_model("auth", "Permission")
    rows = list(Permission.objects.select_related("content_type"))
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in rows}
    product = set(product_app_labels())
    viewer = [
        p
        for name, p in by_name.items()
        if p.content_type.app_label in product and p.codename.startswith("view_") and name not in VIEWER_EXCLUDED
    ]
    missing = [name for name in OPERATOR_PERMISSIONS if name not in by_name]
    if missing:
        logger.warning("roles: operator permissions not installed (yet): %s", ", ".join(missing))
    operator = list({p.pk: p for p in viewer + [by_name[n] for n in OPERATOR_PERMISSIONS if n in by_name]}.values())
    return {VIEWER: viewer, OPERATOR: operator, ADMIN: rows}


def sync_roles(apps: Any = global_apps) -> dict[str, int]:
    """Create the role groups and set their permissions exactly; returns permission counts per role."""
    ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    counts = {}
    for role, perms in role_permissions(apps).items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(perms)
        counts[role] = len(perms)
    logger.debug("roles synced: %s", counts)
    return counts


def sync_after_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate hook: keep the groups in step with models added by later migrations."""
    sync_roles()


def assign_role(user: Any, role: str) -> None:
    """Make ``role`` the user's only role group; admins also get Django admin access (is_staff)."""
    from django.contrib.auth.models import Group

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = role == ADMIN
    user.save(update_fields=["is_staff"])


def role_of(user: Any) -> str | None:
    """The user's strongest role, or None (superusers count as admin)."""
    if getattr(user, "is_superuser", False):
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return None
