"""`manage.py inventory validate|import|export`: the YAML source of truth on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fabric_ops.errors import InventoryError
from fabric_ops.topology.inventory import export_inventory, import_inventory, validate


class Command(BaseCommand):
    help = "Validate, import or export YAML fabric inventories (docs/inventory.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("validate", help="check a file; prints file:line: key: message per problem")
        p.add_argument("file")
        p = sub.add_parser("import", help="make the database match the file for the fabrics it names")
        p.add_argument("file")
        p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
        p.add_argument("--verbose-names", type=int, default=8, help="names listed per model and action")
        p = sub.add_parser("export", help="write fabrics as YAML")
        p.add_argument(
            "--fabric", action="extend", nargs="+", default=None, metavar="NAME", help="fabrics (default: all)"
        )
        p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")

    def handle(self, *args, **options) -> None:
        action = options["action"]
        if action == "validate":
            self._fail_on(validate(options["file"]))
            self.stdout.write(f"{options['file']}: valid")
        elif action == "import":
            try:
                report = import_inventory(options["file"], dry_run=options["dry_run"])
            except InventoryError as exc:
                self._fail_on(exc.problems)
            self.stdout.write(report.summary(limit=options["verbose_names"]))
        else:
            try:
                text = export_inventory(options["fabric"])
            except InventoryError as exc:
                self._fail_on(exc.problems)
            if options["output"]:
                Path(options["output"]).write_text(text, encoding="utf-8")
                self.stdout.write(f"wrote {options['output']}")
            else:
                self.stdout.write(text, ending="")

    def _fail_on(self, problems: list[str]) -> None:
        if not problems:
            return
        for problem in problems:
            self.stderr.write(str(problem))
        sys.stderr.flush()
        raise CommandError(f"{len(problems)} problem(s); nothing written", returncode=1)
