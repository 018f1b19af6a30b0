"""``manage.py alerting``: raise/resolve alerts by hand, silence, list groups and the delivery log, test a receiver.

manage.py alerting fire alertname=LinkDown device=leaf1 interface=Et1 severity=major --summary "Et1 down"
manage.py alerting resolve alertname=LinkDown device=leaf1 interface=Et1 severity=major
manage.py alerting silence device=leaf1 --hours 2 --author alice --comment "optic swap" [--maintenance]
manage.py alerting groups
manage.py alerting deliveries [--limit 20]
manage.py alerting test-receiver pd-network
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from fabric_ops.alerting import clock
from fabric_ops.alerting.engine import raise_alert, resolve_alert
from fabric_ops.alerting.matchers import parse_all
from fabric_ops.alerting.models import AlertGroup, Notification, Receiver, Silence
from fabric_ops.alerting.receivers import for_receiver
from fabric_ops.cli import key_values
from fabric_ops.errors import FabricOpsError


def _labels(items: list[str]) -> dict[str, str]:
    return key_values(items, "label", "name=value")


class Command(BaseCommand):
    help = "Alerting: fire/resolve alerts, silences, groups, delivery log, receiver test."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        fire = sub.add_parser("fire", help="raise (or re-raise) an alert")
        fire.add_argument("labels", nargs="+")
        fire.add_argument("--summary", default="")
        resolve = sub.add_parser("resolve", help="resolve the firing alert with these labels")
        resolve.add_argument("labels", nargs="+")
        silence = sub.add_parser("silence", help="mute alerts matching every matcher for a while")
        silence.add_argument("matchers", nargs="+")
        silence.add_argument("--hours", type=float, default=1.0)
        silence.add_argument("--author", required=True)
        silence.add_argument("--comment", required=True)
        silence.add_argument("--maintenance", action="store_true", help="record it as a maintenance window")
        sub.add_parser("groups", help="open alert groups")
        deliveries = sub.add_parser("deliveries", help="the delivery log, newest first")
        deliveries.add_argument("--limit", type=int, default=20)
        test = sub.add_parser("test-receiver", help="send a test notification now (checks URL and secrets)")
        test.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, "do_" + options["action"].replace("-", "_"))(options)

    def do_fire(self, options: dict[str, Any]) -> None:
        notes = {"summary": options["summary"]} if options["summary"] else {}
        alert = raise_alert(_labels(options["labels"]), notes, source="cli")
        self.stdout.write(f"alert {alert.fingerprint} firing (received {alert.received_count}x)")

    def do_resolve(self, options: dict[str, Any]) -> None:
        alert = resolve_alert(_labels(options["labels"]))
        self.stdout.write(f"alert {alert.fingerprint} resolved" if alert else "no firing alert has these labels")

    def do_silence(self, options: dict[str, Any]) -> None:
        try:
            parse_all(options["matchers"])
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc
        now = clock.now()
        silence = Silence.objects.create(
            kind="maintenance" if options["maintenance"] else "silence", matchers=options["matchers"],
            starts_at=now, ends_at=now + timedelta(hours=options["hours"]), created_by=options["author"],
            comment=options["comment"],
        )  # fmt: skip
        self.stdout.write(f"{silence.kind} {silence.pk} until {silence.ends_at:%Y-%m-%d %H:%M} UTC")

    def do_groups(self, options: dict[str, Any]) -> None:
        for group in AlertGroup.objects.exclude(state="closed").order_by("created_at"):
            firing = group.alerts.filter(status="firing").count()
            self.stdout.write(f"{group.pk:>6} {group.state:<12} firing={firing:<4} route={group.route.name} "
                              f"{group.group_labels} notified={group.last_notified_at or '-'}")  # fmt: skip

    def do_deliveries(self, options: dict[str, Any]) -> None:
        rows = Notification.objects.select_related("receiver").order_by("-created_at")[: options["limit"]]
        for n in rows:
            self.stdout.write(f"{n.pk:>6} {n.created_at:%H:%M:%S} {n.receiver.name:<16} {n.kind:<11} {n.status:<8} "
                              f"attempts={n.attempts} {n.last_error[:80]}")  # fmt: skip

    def do_test_receiver(self, options: dict[str, Any]) -> None:
        receiver = Receiver.objects.filter(name=options["name"]).first()
        if receiver is None:
            raise CommandError(f"no receiver named {options['name']!r}")
        now = timezone.now().isoformat().replace("+00:00", "Z")
        labels = {"alertname": "FabricOpsTest", "severity": "info"}
        payload = {
            "version": "4", "groupKey": f"test-{receiver.name}", "truncatedAlerts": 0, "status": "firing",
            "receiver": receiver.name, "groupLabels": labels, "commonLabels": labels,
            "commonAnnotations": {"summary": "FabricOps test notification"}, "externalURL": "",
            "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": "FabricOps test notification"},
                        "startsAt": now, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "test"}],
            "fabricOps": {"groupId": 0, "kind": "firing", "acknowledgedBy": "", "ackURL": "", "resolveURL": ""},
        }  # fmt: skip
        try:
            result = for_receiver(receiver).send(payload, "firing")
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{receiver.name}: {result.outcome} {result.status_code or ''} {result.redacted()}")
        if result.outcome != "sent":
            raise CommandError(f"{receiver.name}: not delivered")
