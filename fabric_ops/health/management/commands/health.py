"""`manage.py health`: playbooks, incidents, remediation runs, the detection loop.

health playbooks validate [--dir DIR]     # every problem as file:line; exit 1 if any
health playbooks list
health incidents [--all] [--json]         # active incidents (all with --all)
health show INCIDENT                      # evidence, impact, runs and their actions
health remediate INCIDENT                 # run the matching playbook now (in this process)
health approve RUN --user NAME            # approve a run that waits for approval
health restore RUN [--user NAME]          # restore a drain now (approval-mode restores need --user)
health detect                             # the detection loop (foreground, until SIGINT/SIGTERM); one consumer
                                          # at a time with the health.detect Celery task (Redis lease)
"""

from __future__ import annotations

import json
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from fabric_ops.errors import FabricOpsError
from fabric_ops.health.choices import ACTIVE_STATUSES
from fabric_ops.health.models import Incident
from fabric_ops.health.playbooks import validate


class Command(BaseCommand):
    help = "Health: validate playbooks, list and act on incidents, run the detection loop"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        pb = sub.add_parser("playbooks")
        pb.add_argument("verb", choices=["validate", "list"])
        pb.add_argument("--dir", default=None, help="Playbook directory (default: settings.PLAYBOOKS_DIR)")
        inc = sub.add_parser("incidents")
        inc.add_argument("--all", action="store_true")
        inc.add_argument("--json", action="store_true")
        show = sub.add_parser("show")
        show.add_argument("incident", type=int)
        rem = sub.add_parser("remediate")
        rem.add_argument("incident", type=int)
        app = sub.add_parser("approve")
        app.add_argument("run", type=int)
        app.add_argument("--user", required=True)
        res = sub.add_parser("restore")
        res.add_argument("run", type=int)
        res.add_argument("--user", default="")
        sub.add_parser("detect")

    def handle(self, *args, **options):
        try:
            getattr(self, f"do_{options['action']}")(options)
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc

    def do_playbooks(self, options):
        books, problems = validate(options["dir"])
        if options["verb"] == "list":
            for book in sorted(books, key=lambda b: (b.priority, b.name)):
                actions = ", ".join(a.action for a in book.actions)
                self.stdout.write(f"{book.name:20} {book.mode:8} {'/'.join(book.kinds):24} {actions}")
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in playbooks")
        if options["verb"] == "validate":
            self.stdout.write(f"{len(books)} playbooks valid")

    def do_incidents(self, options):
        qs = Incident.objects.all() if options["all"] else Incident.objects.filter(status__in=ACTIVE_STATUSES)
        rows = list(qs.order_by("-detected_at")[:500])
        if options["json"]:
            fields = ("id", "kind", "root_key", "status", "severity", "summary", "reason", "detected_at")
            data = [{f: str(getattr(i, f)) if f == "detected_at" else getattr(i, f) for f in fields} for i in rows]
            self.stdout.write(json.dumps(data, indent=2))
            return
        for i in rows:
            self.stdout.write(f"{i.pk:6} {i.status:12} {i.kind:20} {i.root_key:32} {i.summary[:60]}")
        if not rows:
            self.stdout.write("no incidents")

    def do_show(self, options):
        try:
            i = Incident.objects.get(pk=options["incident"])
        except Incident.DoesNotExist:
            raise CommandError(f"no incident {options['incident']}") from None
        self.stdout.write(f"{i}\n  {i.summary}\n  reason: {i.reason or '-'}")
        for name in ("fault_seen_at", "detected_at", "remediation_started_at", "committed_at", "verified_at",
                     "resolved_at"):  # fmt: skip
            self.stdout.write(f"  {name:24} {getattr(i, name) or '-'}")
        self.stdout.write(f"  impact: {json.dumps({k: v for k, v in i.impact.items() if k != 'affected_leaves'})}")
        for a in i.alarms.all():
            self.stdout.write(f"  alarm {a.kind} {a.device} {a.subject}: {a.message} x{a.count}"
                              f"{' (cleared)' if a.cleared_at else ''}")  # fmt: skip
        for run in i.runs.all():
            self.stdout.write(f"  run {run.pk} {run.playbook} {run.status}: {run.reason}")
            for act in run.actions.all():
                job = f" push job {act.push_job_id}" if act.push_job_id else ""
                self.stdout.write(f"    {act.phase} {act.sequence} {act.action} {act.target}: {act.status}{job}")

    def do_remediate(self, options):
        from fabric_ops.health.remediation import remediate

        run = remediate(options["incident"])
        self.stdout.write(str(run) if run else "no playbook acted")

    def do_approve(self, options):
        from fabric_ops.health.remediation import approve

        self.stdout.write(str(approve(options["run"], options["user"])))

    def do_restore(self, options):
        from fabric_ops.health.remediation import restore

        self.stdout.write(str(restore(options["run"], approved_by=options["user"])))

    def do_detect(self, options):
        from fabric_ops.health.detect import run_process
        from fabric_ops.telemetry.handoff import redis_prefix

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # the same single consumer as the health.detect Celery task: this process takes the lease when it is free
        # (standing by while a Celery run holds it) and continues from the last checkpoint
        self.stdout.write(f"health detection on {redis_prefix()}:events (one consumer: waits for the lease)")
        run_process(stop)
        self.stdout.write("health detection stopped")
