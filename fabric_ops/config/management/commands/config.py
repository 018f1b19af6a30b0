"""`manage.py config render|diff|push|compliance|backup`: the operator's CLI for intended configuration."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fabric_ops.config.compliance import backup_device, check_compliance_many, fabric_summary
from fabric_ops.config.push import create_job, run_job
from fabric_ops.config.rendering import render_device
from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.models import Device, Fabric


def _select(options) -> list[Device]:
    """Devices named by --device, plus those of each --fabric (narrowed by --role); nothing named is an error."""
    if not (options["device"] or options["fabric"]):
        raise CommandError("name the devices: --device HOSTNAME (repeatable) and/or --fabric NAME [--role ROLE]")
    managed = Device.objects.exclude(platform="optical").select_related("fabric", "site")
    known_fabrics = set(Fabric.objects.filter(name__in=options["fabric"]).values_list("name", flat=True))
    if missing := set(options["fabric"]) - known_fabrics:
        raise CommandError(f"unknown fabric(s): {', '.join(sorted(missing))}")
    selected = {d.hostname: d for d in managed.filter(hostname__in=options["device"])}
    if missing := set(options["device"]) - set(selected):
        raise CommandError(f"unknown or unmanaged device(s): {', '.join(sorted(missing))}")
    in_fabrics = managed.filter(fabric__name__in=options["fabric"])
    if options["role"]:
        in_fabrics = in_fabrics.filter(role__in=options["role"])
    selected.update({d.hostname: d for d in in_fabrics})
    if not selected:
        raise CommandError("the selection matches no managed device")
    return sorted(selected.values(), key=lambda d: (d.fabric.name, d.role, d.hostname))


class Command(BaseCommand):
    help = "Render, diff, push and check the intended configuration of switches."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        render = sub.add_parser("render", help="Print a device's intended configuration")
        render.add_argument("hostname")
        for name, text in [
            ("diff", "Show what a push would change (dry run, nothing is committed)"),
            ("push", "Push the intended configuration in waves with commit-confirm"),
            ("compliance", "Compare running with intended and record the result"),
            ("backup", "Store the running configurations (a new version only when changed)"),
        ]:
            p = sub.add_parser(name, help=text)
            p.add_argument("--device", action="append", default=[], help="Hostname (repeatable)")
            p.add_argument("--fabric", action="append", default=[], help="Fabric name (repeatable)")
            p.add_argument("--role", action="append", default=[], help="With --fabric: only these roles")
            if name == "push":
                p.add_argument("--dry-run", action="store_true")
                p.add_argument("--canary", type=int, default=1, help="Devices in the first wave")
                p.add_argument("--wave-percent", type=int, default=25)
                p.add_argument("--max-failures", type=int, default=0, help="Failed devices tolerated")
                p.add_argument("--concurrency", type=int, default=16)
                p.add_argument(
                    "--revert-in", type=int, default=120, help="Seconds before an unconfirmed commit reverts"
                )
                p.add_argument("--reason", default="")

    def handle(self, *args, **options) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc

    def do_render(self, options) -> None:
        try:
            device = Device.objects.select_related("fabric", "site").get(hostname=options["hostname"])
        except Device.DoesNotExist as exc:
            raise CommandError(f"unknown device {options['hostname']!r}") from exc
        self.stdout.write(render_device(device), ending="")

    def do_diff(self, options) -> None:
        options.update(dry_run=True, canary=1, wave_percent=100, max_failures=10**6, concurrency=16, revert_in=120)
        options.setdefault("reason", "diff")
        self.do_push(options)

    def do_push(self, options) -> None:
        job = create_job(
            _select(options),
            requested_by=f"cli:{getpass.getuser()}",
            reason=options.get("reason", ""),
            dry_run=options["dry_run"],
            canary_count=options["canary"],
            wave_percent=options["wave_percent"],
            max_failures=options["max_failures"],
            concurrency=options["concurrency"],
            revert_in=options["revert_in"],
        )
        job = run_job(job.pk)
        for row in job.devices.select_related("device").order_by("wave", "device__hostname"):
            self.stdout.write(f"wave {row.wave}  {row.device.hostname:<24} {row.status}")
            if row.diff:
                self.stdout.write(row.diff.rstrip() + "\n")
            if row.error:
                self.stdout.write(f"    {row.error}")
        self.stdout.write(f"{job}: {job.status} ({job.summary})")
        if job.status not in ("succeeded",):
            raise CommandError(f"{job} ended {job.status}")

    def do_compliance(self, options) -> None:
        devices = _select(options)
        for result in check_compliance_many(devices):  # the source of truth read in bulk, not per device
            device = result.device
            state = {True: "compliant", False: "NOT compliant", None: "unknown"}[result.compliant]
            self.stdout.write(f"{device.hostname:<24} {state} {result.error}")
            if result.diff:
                self.stdout.write(result.diff.rstrip())
        for fabric in sorted({d.fabric for d in devices}, key=lambda f: f.name):
            self.stdout.write(f"{fabric.name}: {fabric_summary(fabric)}")

    def do_backup(self, options) -> None:
        for device in _select(options):
            backup = backup_device(device)
            self.stdout.write(f"{device.hostname:<24} {'new version' if backup else 'unchanged'}")
