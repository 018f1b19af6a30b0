"""Grouping, dedup, retries, silences, inhibition, escalation and resolution — against a real HTTP receiver on
loopback, with the Celery task functions run directly under a controlled clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fabric_ops.alerting import delivery, engine, tasks
from fabric_ops.alerting.ingest import raise_alert, resolve_alert
from fabric_ops.alerting.models import (
    Alert,
    AlertGroup,
    DeliveryAttempt,
    EscalationPolicy,
    EscalationStep,
    Notification,
    OnCallSchedule,
    Receiver,
    Route,
    Silence,
)

from .conftest import pump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def link_down(device: str, interface: str, site: str = "sjc", **extra: str) -> dict[str, str]:
    return {"alertname": "LinkDown", "severity": "major", "site": site, "scope": "link", "device": device,
            "interface": interface, **extra}  # fmt: skip


def test_one_notification_per_group_not_per_symptom(root_route, http_capture, outbox, manual_clock) -> None:
    for n in range(1, 6):
        raise_alert(link_down("leaf1", f"Et{n}"), {"summary": f"leaf1 Et{n} down"})
    raise_alert(link_down("leaf9", "Et1", site="lax"))
    manual_clock.advance(29)
    pump(manual_clock)
    assert http_capture.requests == [], "sent before group_wait"
    manual_clock.advance(1)
    pump(manual_clock)
    bodies = sorted((r.body for r in http_capture.to("/team")), key=lambda b: len(b["alerts"]))
    assert len(bodies) == 2, "one notification per group (site sjc, site lax)"
    assert [len(b["alerts"]) for b in bodies] == [1, 5]
    sjc = bodies[1]
    assert sjc["version"] == "4" and sjc["status"] == "firing" and sjc["receiver"] == "team-webhook"
    assert sjc["groupLabels"] == {"alertname": "LinkDown", "site": "sjc"}
    assert sjc["commonLabels"]["device"] == "leaf1" and "interface" not in sjc["commonLabels"]
    assert sjc["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert sjc["fabricOps"]["ackURL"].startswith("http://127.0.0.1:8000/alerting/act/")


def test_repeated_triggers_are_deduplicated(root_route, http_capture, outbox, manual_clock) -> None:
    for _ in range(10):
        raise_alert(link_down("leaf1", "Et1"))
        manual_clock.advance(5)
    assert Alert.objects.count() == 1 and Alert.objects.get().received_count == 10
    pump(manual_clock)
    assert len(http_capture.requests) == 1
    for _ in range(3):  # keeps firing: nothing new to say until repeat_interval
        manual_clock.advance(300)
        raise_alert(link_down("leaf1", "Et1"))
        pump(manual_clock)
    assert len(http_capture.requests) == 1
    manual_clock.advance(3600)
    pump(manual_clock)
    assert len(http_capture.requests) == 2, "re-sent once repeat_interval passed"
    # a second alert joins the notified group: sent at the next group_interval, not at once
    raise_alert(link_down("leaf1", "Et2"))
    pump(manual_clock)
    assert len(http_capture.requests) == 2
    manual_clock.advance(300)
    pump(manual_clock)
    assert len(http_capture.requests) == 3 and len(http_capture.requests[-1].body["alerts"]) == 2


def test_500_then_success_delivers_exactly_once(root_route, http_capture, outbox, manual_clock) -> None:
    http_capture.script("/team", (500, {"error": "boom"}))
    raise_alert(link_down("leaf1", "Et1"))
    manual_clock.advance(30)
    pump(manual_clock)  # the flush task makes the first attempt itself: 500, a retry is queued
    assert Notification.objects.get().status == "retrying"
    assert [(kind, eta - manual_clock.current) for kind, _, eta in outbox if kind == "deliver"] == [
        ("deliver", timedelta(seconds=1))
    ], "retried after the receiver's backoff_s"
    manual_clock.advance(1)
    stats = pump(manual_clock)
    assert stats["deliver"] == 1
    notification = Notification.objects.get()
    assert notification.status == "sent" and notification.attempts == 2
    log = list(notification.log.values_list("number", "status_code", "outcome"))
    assert log == [(1, 500, "retry"), (2, 200, "sent")]
    assert tasks.deliver(notification.pk) == "sent", "a re-delivered task sends nothing"
    assert [r.path for r in http_capture.requests] == ["/team", "/team"]
    assert len({r.body["groupKey"] for r in http_capture.requests}) == 1


def test_400_is_not_retried_and_is_logged(root_route, http_capture, outbox, manual_clock) -> None:
    http_capture.script("/team", (400, {"error": "bad payload"}))
    raise_alert(link_down("leaf1", "Et1"))
    manual_clock.advance(30)
    pump(manual_clock)
    assert outbox == [("flush", outbox[0][1], manual_clock.current + timedelta(seconds=300))], "no retry queued"
    notification = Notification.objects.get()
    assert notification.status == "failed" and "bad payload" in notification.last_error
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.status_code, attempt.outcome) == (400, "fatal")
    manual_clock.advance(3600)
    assert delivery.attempt(notification.pk).status == "failed"
    assert len(http_capture.requests) == 1


def test_retry_after_is_honoured_and_attempts_are_capped(root_route, http_capture, outbox, manual_clock) -> None:
    http_capture.script("/team", *[(503, {}, {"Retry-After": "7"})] * 4)
    raise_alert(link_down("leaf1", "Et1"))
    manual_clock.advance(30)
    pump(manual_clock)
    retries = [eta for kind, _, eta in outbox if kind == "deliver"]
    assert retries == [manual_clock.current + timedelta(seconds=7)], "Retry-After (7 s) beats the 1 s backoff"
    for _ in range(5):
        manual_clock.advance(60)
        pump(manual_clock)
    notification = Notification.objects.get()
    assert notification.status == "gave-up" and notification.attempts == 4
    assert len(http_capture.requests) == 4


@pytest.mark.parametrize("kind", ["silence", "maintenance"])
def test_silence_suppresses_then_expires(kind, root_route, http_capture, outbox, manual_clock) -> None:
    now = manual_clock.current
    Silence.objects.create(kind=kind, matchers=["device=leaf1"], starts_at=now, ends_at=now + timedelta(minutes=10),
                           created_by="alice", comment="optic swap")  # fmt: skip
    raise_alert(link_down("leaf1", "Et1"))
    raise_alert(link_down("leaf2", "Et1", site="lax"))
    manual_clock.advance(30)
    pump(manual_clock)
    assert [r.body["commonLabels"]["device"] for r in http_capture.requests] == ["leaf2"]
    manual_clock.advance(300)
    pump(manual_clock)
    assert len(http_capture.requests) == 1, "still silenced"
    manual_clock.advance(300)  # silence over at +10 min; the next group flush sends it
    pump(manual_clock)
    assert [r.body["commonLabels"]["device"] for r in http_capture.requests] == ["leaf2", "leaf1"]


def test_switch_down_inhibits_its_links_at_both_ends(root_route, http_capture, outbox, manual_clock) -> None:
    """Default inhibit rules (data migration): DeviceUnreachable on leaf1 mutes link alerts on leaf1 and those
    whose far end is leaf1, but not an unrelated link."""
    root_route.group_by = ["alertname"]
    root_route.save()
    raise_alert({"alertname": "DeviceUnreachable", "severity": "critical", "scope": "device", "device": "leaf1"})
    raise_alert(link_down("leaf1", "Et1"))
    raise_alert(link_down("spine1", "Et7", peer_device="leaf1"))
    raise_alert(link_down("spine2", "Et3", peer_device="leaf5"))
    manual_clock.advance(30)
    pump(manual_clock)
    by_name = {r.body["groupLabels"]["alertname"]: r.body for r in http_capture.requests}
    assert set(by_name) == {"DeviceUnreachable", "LinkDown"}
    assert [a["labels"]["device"] for a in by_name["LinkDown"]["alerts"]] == ["spine2"]
    # the switch comes back: the inhibited link alerts are notified at the next group interval
    resolve_alert({"alertname": "DeviceUnreachable", "severity": "critical", "scope": "device", "device": "leaf1"})
    manual_clock.advance(300)
    pump(manual_clock)
    link_bodies = [r.body for r in http_capture.requests if r.body["groupLabels"]["alertname"] == "LinkDown"]
    assert sorted(a["labels"]["device"] for a in link_bodies[-1]["alerts"]) == ["leaf1", "spine1", "spine2"]


def _paging_route(root_route, http_capture) -> tuple[Receiver, Receiver]:
    primary = Receiver.objects.create(name="primary", kind="webhook", url=f"{http_capture.url}/primary")
    secondary = Receiver.objects.create(name="secondary", kind="webhook", url=f"{http_capture.url}/secondary")
    policy = EscalationPolicy.objects.create(name="network-oncall")
    EscalationStep.objects.create(policy=policy, order=0, after_s=0, receiver=primary)
    EscalationStep.objects.create(policy=policy, order=1, after_s=600, receiver=secondary)
    Route.objects.create(name="paging", parent=root_route, matchers=["severity=critical"], escalation=policy)
    return primary, secondary


def test_escalation_after_the_ack_timeout(root_route, http_capture, outbox, manual_clock) -> None:
    _paging_route(root_route, http_capture)
    raise_alert({"alertname": "SpanDown", "severity": "critical", "site": "sjc", "span": "sjc-lax"})
    manual_clock.advance(30)
    pump(manual_clock)
    assert sorted(r.path for r in http_capture.requests) == ["/primary", "/team"]
    manual_clock.advance(599)
    assert engine.escalate_due() == []
    manual_clock.advance(1)
    escalated = engine.escalate_due()
    assert [n.receiver.name for n in escalated] == ["secondary"] and escalated[0].kind == "escalation"
    pump(manual_clock)
    assert [r.body["fabricOps"]["kind"] for r in http_capture.to("/secondary")] == ["escalation"]
    manual_clock.advance(6000)
    assert engine.escalate_due() == [], "last step reached and the policy does not repeat"


def test_acknowledged_group_does_not_escalate(root_route, http_capture, outbox, manual_clock) -> None:
    _paging_route(root_route, http_capture)
    raise_alert({"alertname": "SpanDown", "severity": "critical", "site": "sjc", "span": "sjc-lax"})
    manual_clock.advance(30)
    pump(manual_clock)
    group = AlertGroup.objects.get(route__name="paging")
    manual_clock.advance(300)
    engine.acknowledge(group.pk, "alice")
    manual_clock.advance(3600)
    assert engine.escalate_due() == []
    pump(manual_clock)
    assert http_capture.to("/secondary") == []
    group.refresh_from_db()
    assert (group.state, group.acknowledged_by) == ("acknowledged", "alice")


def test_on_call_schedule_picks_who_is_on_shift(root_route, http_capture, outbox, manual_clock) -> None:
    alice = Receiver.objects.create(name="alice", kind="webhook", url=f"{http_capture.url}/alice")
    Receiver.objects.create(name="bob", kind="webhook", url=f"{http_capture.url}/bob")
    schedule = OnCallSchedule.objects.create(name="week", starts_at=manual_clock.current - timedelta(days=8),
                                             shift_s=7 * 86400, rotation=["alice", "bob"])  # fmt: skip
    policy = EscalationPolicy.objects.create(name="rota")
    EscalationStep.objects.create(policy=policy, order=0, after_s=0, schedule=schedule)
    Route.objects.create(name="rota", parent=root_route, matchers=["severity=critical"], escalation=policy)
    raise_alert({"alertname": "SpanDown", "severity": "critical", "span": "x"})
    manual_clock.advance(30)
    pump(manual_clock)
    assert http_capture.to("/bob") and not http_capture.to("/alice"), "second week: bob is on call"
    assert alice.notifications.count() == 0


def test_resolved_notification_on_resolution(root_route, http_capture, outbox, manual_clock) -> None:
    labels = link_down("leaf1", "Et1")
    raise_alert(labels)
    raise_alert(link_down("leaf1", "Et2"))
    manual_clock.advance(30)
    pump(manual_clock)
    resolve_alert(labels)
    manual_clock.advance(300)
    pump(manual_clock)
    partial = http_capture.requests[-1].body
    assert partial["status"] == "firing"
    assert sorted(a["status"] for a in partial["alerts"]) == ["firing", "resolved"]
    resolve_alert(link_down("leaf1", "Et2"))
    manual_clock.advance(300)
    pump(manual_clock)
    final = http_capture.requests[-1].body
    assert final["status"] == "resolved" and final["fabricOps"]["kind"] == "resolved"
    assert [a["status"] for a in final["alerts"]] == ["resolved"]
    assert final["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert AlertGroup.objects.get().state == "closed"
    manual_clock.advance(3600)
    pump(manual_clock)
    assert len(http_capture.requests) == 3


def test_alert_resolved_before_group_wait_is_never_sent(root_route, http_capture, outbox, manual_clock) -> None:
    raise_alert(link_down("leaf1", "Et1"))
    manual_clock.advance(10)
    resolve_alert(link_down("leaf1", "Et1"))
    manual_clock.advance(3600)
    pump(manual_clock)
    assert http_capture.requests == []


def test_route_without_receiver_queues_nothing_until_configured(db, http_capture, outbox, manual_clock) -> None:
    """The shipped root route has no receiver: alerts are grouped but nothing is queued; once a receiver is set,
    the beat's sweep (flush_due) sends the group."""
    raise_alert(link_down("leaf1", "Et1"))
    assert outbox == []
    manual_clock.advance(30)
    root = Route.objects.get(parent__isnull=True)
    root.receiver = Receiver.objects.create(name="late", kind="webhook", url=f"{http_capture.url}/late")
    root.save()
    assert tasks.tick()["flushed"] == 1
    pump(manual_clock)
    assert len(http_capture.to("/late")) == 1
