"""`manage.py demo`: the whole platform on one machine against the virtual lab.

Runs each long-lived part as a child process so that one Ctrl-C stops them all,
and so that a crash of one part is reported by name instead of hanging the demo.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.models import Device

DEMO_INVENTORY = Path(os.environ.get("FABRIC_OPS_DEMO_INVENTORY", settings.INVENTORY_DIR / "lab.yml"))
DEMO_ADDRESS = os.environ.get("FABRIC_OPS_DEMO_ADDRESS", "127.0.0.1:8000")
# A big lab on a busy machine takes a while to bind every switch's addresses.
LAB_START_TIMEOUT = int(os.environ.get("FABRIC_OPS_DEMO_LAB_TIMEOUT", "120"))


def step(message: str) -> None:
    sys.stdout.write(f"==> {message}\n")
    sys.stdout.flush()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Children:
    """The demo's child processes, stopped in reverse start order."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log_path = Path(settings.VAR_DIR) / "log" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns the handle for its lifetime
        argv = args if args[0] == "-m" else ["manage.py", *args]  # "-m celery ..." or a management command
        # Each child in its own session: Ctrl-C reaches only the demo, which stops them in reverse order (the
        # collector flushes into InfluxDB before InfluxDB goes, the lab goes last but one).
        process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=settings.BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, process))
        step(f"{name} started (pid {process.pid}, log {log_path})")
        return process

    def first_exited(self) -> tuple[str, int] | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                step(f"{name} stopped")


class Command(BaseCommand):
    help = (
        "Run FabricOps with the virtual lab: database, sample fabric, InfluxDB, lab switches, RoCE push, "
        "telemetry collector, Celery worker and beat, web UI."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--inventory", default=str(DEMO_INVENTORY), help="Fabric inventory to build the lab from")
        parser.add_argument("--address", default=DEMO_ADDRESS, help="Where the web UI listens")
        parser.add_argument("--no-serve", action="store_true", help="Set up and exit (used by tests)")
        parser.add_argument(
            "--scenario",
            type=int,
            default=int(os.environ.get("SCENARIO", "1")),
            help="1 (default): inject a few faults after start-up and narrate what happens; 0: skip",
        )

    def handle(self, *args, **options) -> None:
        step("migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self.ensure_admin()
        self.import_inventory(Path(options["inventory"]))
        if options["no_serve"]:
            return
        children = Children()
        # SIGTERM (a service manager, `kill`) stops the demo as cleanly as Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.start_influxdb(children)
            self.start_lab(children)
            self.push_roce()
            children.start("collector", ["telemetry", "collect"])
            children.start("detection", ["health", "detect"])
            children.start("worker", ["-m", "celery", "-A", "fabric_ops", "worker", "--loglevel", "INFO", "-c", "4"])
            schedule = Path(settings.VAR_DIR) / "celerybeat-schedule"
            children.start(
                "beat", ["-m", "celery", "-A", "fabric_ops", "beat", "--loglevel", "INFO", "-s", str(schedule)]
            )
            children.start("web", ["runserver", options["address"], "--noreload"])
            step(f"FabricOps is up: http://{options['address']}/  login {username} / {password}")
            step("press Ctrl-C to stop")
            if options["scenario"]:
                self.scenario(children)
            while True:
                exited = children.first_exited()
                if exited:
                    raise CommandError(f"{exited[0]} exited with status {exited[1]}; see var/log/{exited[0]}.log")
                time.sleep(1)
        except KeyboardInterrupt:
            step("stopping")
        finally:
            children.stop()

    def start_influxdb(self, children: Children) -> None:
        """Debian's InfluxDB under var/influxdb behind the write-path proxy, or the one already answering."""
        from fabric_ops.telemetry.query import InfluxQuery

        query = InfluxQuery.from_settings()
        if query.ping():
            step(f"reusing the InfluxDB at {settings.FABRIC_OPS_INFLUX_URL}")
            return
        step("starting InfluxDB (var/influxdb)")
        process = children.start("influxdb", ["telemetry", "influx-local"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"InfluxDB exited with status {process.returncode}; see var/log/influxdb.log")
            if query.ping():
                step(f"InfluxDB answering at {settings.FABRIC_OPS_INFLUX_URL}")
                return
            time.sleep(0.5)
        raise CommandError("InfluxDB did not answer within 60 s; see var/log/influxdb.log")

    def start_lab(self, children: Children) -> None:
        """Start the lab, or reuse one already running (a second `make demo` must work)."""
        from fabric_ops.lab.control import LabClient

        try:
            status = LabClient(timeout=5).status()
            step(f"reusing the running lab ({status['switches']} switches)")
            return
        except FabricOpsError:
            pass
        step("starting the virtual lab (emulated EOS and CloudEngine switches with gNMI)")
        process = children.start("lab", ["lab", "up"])
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise CommandError(f"the lab exited with status {process.returncode}; see var/log/lab.log")
            try:
                status = LabClient(timeout=5).status()
            except FabricOpsError:
                time.sleep(0.5)
                continue
            step(f"lab up: {status['switches']} switches, {status['links']['total']} links")
            return
        raise CommandError(f"the lab did not answer within {LAB_START_TIMEOUT} s; see var/log/lab.log")

    def push_roce(self) -> None:
        """Bring every lab switch to its intended configuration (RoCE lossless class, underlay) in waves."""
        from fabric_ops.config.push import create_job, run_job

        devices = list(
            Device.objects.filter(lifecycle="active", platform__in=("eos", "huawei_vrp"))
            .select_related("fabric", "site")
            .order_by("fabric__name", "role", "hostname")
        )
        step(f"pushing the RoCE configuration to {len(devices)} switches (canary, then waves of 50%)")
        job = create_job(
            devices, requested_by="demo", reason="demo start-up", canary_count=1, wave_percent=50, max_failures=2
        )
        job = run_job(job.pk)
        step(f"{job}: {job.status} ({job.summary})")
        for row in job.devices.exclude(status__in=("confirmed", "no-change")).select_related("device"):
            step(f"  {row.device.hostname}: {row.status} {row.error}")

    def scenario(self, children: Children) -> None:
        """The scripted faults (``make demo SCENARIO=0`` skips them); a crashed child still stops the demo."""
        from fabric_ops.health.models import Incident
        from fabric_ops.lab.control import LabClient
        from fabric_ops.lab.scenario import run_scenario

        started = timezone.now()

        def incidents() -> list[tuple[int, str, str, str]]:
            exited = children.first_exited()
            if exited:
                raise CommandError(f"{exited[0]} exited with status {exited[1]}; see var/log/{exited[0]}.log")
            rows = (
                Incident.objects.filter(detected_at__gte=started)  # this run's incidents, not an earlier demo's
                .order_by("id")
                .values_list("id", "kind", "status", "device", "interface", "span")
            )
            return [
                (pk, kind, status, span or f"{device} {interface}".strip())
                for pk, kind, status, device, interface, span in rows
            ]

        step("scenario: faults are injected over the next two minutes (make demo SCENARIO=0 skips this)")
        run_scenario(LabClient(timeout=10), incidents, step)

    def ensure_admin(self) -> tuple[str, str]:
        """Create the demo admin once; its password is kept in var/secrets (mode 0600), never in the database."""
        login_file = Path(settings.SECRETS_DIR) / "demo-admin.json"
        user_model = get_user_model()
        if login_file.exists() and user_model.objects.filter(username="admin").exists():
            login = json.loads(login_file.read_text())
            return login["username"], login["password"]
        password = secrets.token_urlsafe(12)
        user, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        login_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"username": "admin", "password": password}, handle)
        step("created the admin account")
        return "admin", password

    def import_inventory(self, path: Path) -> None:
        from fabric_ops.topology.inventory import import_inventory

        step(f"importing {path}")
        report = import_inventory(path)
        changes = ", ".join(f"{model} +{c} ~{u} -{d}" for model, (c, u, d) in report.counts().items()) or "no changes"
        step(f"{changes}; {Device.objects.count()} devices in the source of truth")
