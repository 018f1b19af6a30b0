"""`manage.py demo`: the whole platform on one machine against the virtual lab.

Runs each long-lived part as a child process so that one Ctrl-C stops them all,
and so that a crash of one part is reported by name instead of hanging the demo.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
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
# Until every component of /api/health/ answers ok (the collector's first sync, the worker's first heartbeat).
HEALTH_TIMEOUT = int(os.environ.get("FABRIC_OPS_DEMO_HEALTH_TIMEOUT", "180"))
_say_lock = threading.Lock()
# The congestion counters' sample interval in the demo's subscription profiles (built-in: 1 s).
DEMO_FAST_INTERVAL_S = float(os.environ.get("FABRIC_OPS_DEMO_FAST_INTERVAL_S", "2"))


def step(message: str) -> None:
    """One line of narration, stamped with UTC wall time (the alert receiver's thread narrates too)."""
    with _say_lock:
        sys.stdout.write(f"==> {time.strftime('%H:%M:%S', time.gmtime())} {message}\n")
        sys.stdout.flush()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def refuse_foreign_database() -> None:
    """The demo rewrites what it finds (lab inventory, closes active incidents, runs and cooldowns, clears the
    telemetry handoff in Redis): pointed by mistake at a real deployment's database it would do that there."""
    from django.db import connection

    name = str(connection.settings_dict.get("NAME") or "")
    var_dir = Path(settings.VAR_DIR).resolve()
    if connection.vendor == "sqlite" and name and var_dir in Path(name).resolve().parents:
        return
    raise CommandError(
        f"manage.py demo runs on its own SQLite database under {var_dir}; DATABASE_URL points at "
        f"{connection.vendor} database {name!r}. Unset DATABASE_URL, or pass --any-database if this database is "
        "really a throw-away one."
    )


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
        parser.add_argument(
            "--scenario-pace",
            type=float,
            default=1.0,
            help="scale the scenario's start times (tests use < 1 to run it sooner)",
        )
        parser.add_argument(
            "--scenario-watch", type=float, default=600.0, help="seconds after which the scenario stops watching"
        )
        parser.add_argument(
            "--any-database",
            action="store_true",
            help="run against DATABASE_URL even when it is not the demo's SQLite under var/ (the demo imports the "
            "lab fabric and closes every active incident, run and cooldown it finds)",
        )

    def handle(self, *args, **options) -> None:
        if not options["any_database"]:
            refuse_foreign_database()
        step("migrating the database")
        call_command("migrate", interactive=False, verbosity=0)
        username, password, token = self.ensure_admin()
        self.import_inventory(Path(options["inventory"]))
        if options["no_serve"]:
            return
        children = Children()
        receiver = None
        # SIGTERM (a service manager, `kill`) stops the demo as cleanly as Ctrl-C does. SIGINT is set explicitly:
        # a shell that starts the demo in the background hands it SIGINT ignored, and Python then never raises
        # KeyboardInterrupt.
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        try:
            self.close_stale_incidents()
            receiver = self.start_alert_receiver()
            self.start_influxdb(children)
            self.start_lab(children)
            self.push_roce()
            self.configure_telemetry()
            children.start("collector", ["telemetry", "collect"])
            children.start("detection", ["health", "detect"])
            children.start("worker", ["-m", "celery", "-A", "fabric_ops", "worker", "--loglevel", "INFO", "-c", "4"])
            schedule = Path(settings.VAR_DIR) / "celerybeat-schedule"
            children.start(
                "beat", ["-m", "celery", "-A", "fabric_ops", "beat", "--loglevel", "INFO", "-s", str(schedule)]
            )
            children.start("web", ["runserver", options["address"], "--noreload"])
            step(f"FabricOps is up: http://{options['address']}/  login {username} / {password}")
            step(f"API token {token} (curl -H 'Authorization: Token {token}' http://{options['address']}/api/health/)")
            step("press Ctrl-C to stop")
            self.wait_healthy(children, options["address"], token)
            if options["scenario"]:
                self.scenario(children, receiver, pace=options["scenario_pace"], watch_s=options["scenario_watch"])
            while True:
                exited = children.first_exited()
                if exited:
                    raise CommandError(f"{exited[0]} exited with status {exited[1]}; see var/log/{exited[0]}.log")
                time.sleep(1)
        except KeyboardInterrupt:
            step("stopping")
        finally:
            children.stop()
            if receiver is not None:
                receiver.stop()
                step("alert receiver stopped")

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
            self.set_traffic()
            return
        except FabricOpsError:
            pass
        self.reset_handoff()
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
            self.set_traffic()
            return
        raise CommandError(f"the lab did not answer within {LAB_START_TIMEOUT} s; see var/log/lab.log")

    def close_stale_incidents(self) -> None:
        """Close what an earlier demo left in flight, so that a second run behaves like the first.

        Its active incidents: the detection loop that would clear their alarms is gone, and an active incident
        holds its root cause, so a new fault there would join the stale incident instead of opening its own. Its
        unfinished remediation runs (their worker is gone; one active run per target) and its cooldowns (a flap on
        the same link would be refused for 15 minutes). Faults still present in a reused lab are detected again.
        Each closed incident, run and cooldown gets its audit row (source ``demo``, actor ``demo:<login>``), in
        the same transaction as the change: with ``--any-database`` this may be someone's real history.
        """
        from django.db import transaction

        from fabric_ops.health.choices import ACTIVE_STATUSES, IncidentStatus, RunStatus
        from fabric_ops.health.incidents import transition
        from fabric_ops.health.models import Cooldown, Incident, RemediationRun
        from fabric_ops.health.models.remediation import ACTIVE_RUN_STATUSES
        from fabric_ops.web import audit

        actor = f"demo:{audit.cli_login()}"
        reason = "closed by the demo at start-up: left active by an earlier run"
        now = timezone.now()
        for name in ("fabric_ops.health", "fabric_ops.alerting"):  # one summary line instead of a log line each
            logging.getLogger(name).setLevel(logging.WARNING)
        with transaction.atomic():
            runs = list(
                RemediationRun.objects.select_for_update().filter(status__in=ACTIVE_RUN_STATUSES).order_by("id")
            )
            for run in runs:
                changes = {"status": [run.status, RunStatus.FAILED], "reason": [run.reason, reason]}
                run.status, run.reason, run.finished_at = RunStatus.FAILED, reason, now
                run.save(update_fields=["status", "reason", "finished_at"])
                audit.record(actor, "fail", run, changes)
            cooldowns = list(Cooldown.objects.select_for_update().filter(until__gt=now).order_by("id"))
            for cooldown in cooldowns:
                changes = {"until": [cooldown.until, now], "reason": [None, reason]}
                cooldown.until = now
                cooldown.save(update_fields=["until"])
                audit.record(
                    actor,
                    "expire",
                    cooldown,
                    changes,
                    object_repr=f"cooldown {cooldown.playbook} on {cooldown.target_key}",
                )
            stale = list(Incident.objects.select_for_update().filter(status__in=ACTIVE_STATUSES).order_by("id"))
            for incident in stale:
                changes = {"status": [incident.status, IncidentStatus.RESOLVED], "reason": [incident.reason, reason]}
                if incident.status == IncidentStatus.MITIGATING:  # the lifecycle ends a mitigation only by failing it
                    transition(incident, IncidentStatus.FAILED, reason=reason)
                    changes["via"] = [None, IncidentStatus.FAILED]
                transition(incident, IncidentStatus.RESOLVED, reason=reason)
                audit.record(actor, "resolve", incident, changes)
        if stale or runs or cooldowns:
            step(
                f"closed what an earlier run left active: {len(stale)} incident(s), {len(runs)} remediation run(s), "
                f"{len(cooldowns)} playbook cooldown(s) (each in the audit log, source demo)"
            )

    def reset_handoff(self) -> None:
        """A new lab starts with an empty telemetry handoff in Redis (events, latest values, detection state).

        What an earlier demo left there describes the switches of a lab that is gone: the detection loop restores
        its checkpointed findings and reads the stale latest values, and re-raises faults (a degraded DCI span,
        congestion) that this lab does not have.
        """
        import redis

        from fabric_ops.telemetry.handoff import redis_prefix, redis_url

        client = redis.Redis.from_url(redis_url())
        keys = list(client.scan_iter(match=f"{redis_prefix()}:*", count=1000))
        if keys:
            client.delete(*keys)
            step(f"cleared {len(keys)} telemetry handoff key(s) an earlier run left in Redis ({redis_prefix()}:*)")
        client.close()

    def configure_telemetry(self) -> None:
        """The demo's subscription profiles: the built-in ones with the 1 s congestion set sampled every 2 s.

        That set (PFC per priority, ECN marks and drops per queue, discards: 8 queues x 8 priorities on every
        port) is ~85 % of the ~11k gNMI updates/s the 28 lab switches send; one collector process needs ~25 % of
        a core for it, and falls behind (telemetry-lost after 30 s of silence) when a shared 2-core machine gives
        it less. At 2 s detection still decides within its 5 s sustain windows. Written as SubscriptionProfile
        rows, the telemetry app's own way to override its defaults; the DCI wavelength set stays at 1 s.
        """
        from fabric_ops.telemetry.models import SubscriptionProfile
        from fabric_ops.telemetry.subscriptions import DEFAULT_PROFILES, FAST

        for (role, platform), profile in DEFAULT_PROFILES.items():
            entries = [
                {
                    "path": spec.path,
                    "mode": spec.mode,
                    "interval_s": DEMO_FAST_INTERVAL_S if spec in FAST else spec.interval_s,
                }
                for spec in profile.subscriptions
            ]
            SubscriptionProfile.objects.update_or_create(
                role=role,
                platform=platform,
                defaults={
                    "name": f"demo-{role or 'switch'}{'-' + platform if platform else ''}",
                    "encoding": profile.encoding,
                    "subscriptions": entries,
                    "enabled": True,
                    "description": "make demo: the built-in profile with the congestion set every "
                    f"{DEMO_FAST_INTERVAL_S:g} s",
                },
            )
        step(f"telemetry: congestion counters sampled every {DEMO_FAST_INTERVAL_S:g} s, the rest as built in")

    def set_traffic(self) -> None:
        """The demo's GPU jobs (fabric_ops.lab.scenario.demo_jobs): busy, and congested nowhere while healthy."""
        from fabric_ops.lab.control import LabClient
        from fabric_ops.lab.scenario import demo_jobs
        from fabric_ops.topology.models import GpuHost

        hosts: dict[str, list[str]] = {}
        for name, site in GpuHost.objects.values_list("name", "fabric__site__name"):
            hosts.setdefault(site or "", []).append(name)
        jobs = LabClient(timeout=10).set_jobs(demo_jobs(hosts))
        step("GPU traffic: " + ", ".join(f"{j['name']} {j['pattern']} {j['load']:.0%}" for j in jobs))

    def start_alert_receiver(self):
        """The local stand-in for on-call paging: a webhook receiver on loopback, wired in through alerting."""
        from fabric_ops.lab.demo_alerts import AlertReceiver, configure_alerting

        log = Path(settings.VAR_DIR) / "demo-alerts.log"
        receiver = AlertReceiver(log, say=step).start()
        step(f"alert receiver on {receiver.url} (alerts also go to {log})")
        step("alerting: " + configure_alerting(receiver.url))
        return receiver

    def wait_healthy(self, children: Children, address: str, token: str) -> None:
        """Wait until /api/health/ reports every component ok; say which ones are not while waiting."""
        url = f"http://{address}/api/health/"
        request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = ""
        while True:
            exited = children.first_exited()
            if exited:
                raise CommandError(f"{exited[0]} exited with status {exited[1]}; see var/log/{exited[0]}.log")
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    body = json.load(response)
            except urllib.error.HTTPError as exc:
                body = json.loads(exc.read() or b"{}") if exc.code == 503 else {"status": f"HTTP {exc.code}"}
            except (OSError, ValueError) as exc:
                body = {"status": f"not answering ({exc.__class__.__name__})"}
            if body.get("status") == "ok":
                step(f"{url}: ok ({', '.join(sorted(body.get('components', {})))})")
                return
            waiting = ", ".join(n for n, c in sorted(body.get("components", {}).items()) if not c.get("ok"))
            state = f"{body.get('status')}: waiting for {waiting}" if waiting else str(body.get("status"))
            if state != last:
                step(f"{url}: {state}")
                last = state
            if time.monotonic() > deadline:
                raise CommandError(f"{url} not healthy within {HEALTH_TIMEOUT} s: {state}")
            time.sleep(2)

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

    def scenario(self, children: Children, receiver, *, pace: float, watch_s: float) -> None:
        """The scripted faults (``make demo SCENARIO=0`` skips them); a crashed child still stops the demo."""
        from fabric_ops.health.models import Incident
        from fabric_ops.lab.control import LabClient
        from fabric_ops.lab.scenario import DEMO_STEPS, IncidentRow, run_scenario

        started = timezone.now()

        def incidents() -> list[IncidentRow]:
            exited = children.first_exited()
            if exited:
                raise CommandError(f"{exited[0]} exited with status {exited[1]}; see var/log/{exited[0]}.log")
            rows = (
                Incident.objects.filter(detected_at__gte=started)  # this run's incidents, not an earlier demo's
                .order_by("id")
                .values_list("id", "kind", "status", "device", "interface", "span", "reason", "severity")
            )
            return [IncidentRow(*row) for row in rows]

        plan = "; ".join(f"{s.name} ({s.kind} {s.target}, expect {s.expect})" for s in DEMO_STEPS)
        step(f"scenario: {plan} (make demo SCENARIO=0 skips this)")
        outcomes = run_scenario(
            LabClient(timeout=10), incidents, step, alerts=receiver.for_incident, pace=pace, watch_s=watch_s
        )
        step(f"scenario: {sum(o.ok for o in outcomes)}/{len(outcomes)} ok; the UI keeps running (Ctrl-C stops)")

    def ensure_admin(self) -> tuple[str, str, str]:
        """Create the demo admin once; its password is kept in var/secrets (mode 0600), never in the database.

        Also returns the admin's API token (DRF's token table, like any API user's).
        """
        from rest_framework.authtoken.models import Token

        login_file = Path(settings.SECRETS_DIR) / "demo-admin.json"
        user_model = get_user_model()
        if login_file.exists() and user_model.objects.filter(username="admin").exists():
            login = json.loads(login_file.read_text())
            token, _ = Token.objects.get_or_create(user=user_model.objects.get(username="admin"))
            return login["username"], login["password"], token.key
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
        token, _ = Token.objects.get_or_create(user=user)
        return "admin", password, token.key

    def import_inventory(self, path: Path) -> None:
        from fabric_ops.topology.inventory import import_inventory

        step(f"importing {path}")
        report = import_inventory(path)
        changes = ", ".join(f"{model} +{c} ~{u} -{d}" for model, (c, u, d) in report.counts().items()) or "no changes"
        step(f"{changes}; {Device.objects.count()} devices in the source of truth")
