"""The incident page (timeline, evidence, impact, actions with diffs, live fragment) and its buttons: shown to
operators only, refused to viewers (403) and to anonymous users (login), audited with source "web"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fabric_ops.health.models import Alarm, Incident, RemediationRun
from fabric_ops.web.models import AuditEntry

from .conftest import login
from .test_push_jobs import queued

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

BUTTONS = ('id="ack"', 'id="resolve-form"', 'class="approve-run"', 'class="reject-run"', 'class="rollback-run"')


@pytest.fixture
def incident() -> Incident:
    now = timezone.now()
    incident = Incident.objects.create(
        kind="link-flap", root_key="link:42", status="needs-human", summary="link:42 flapping", scope_kind="link",
        fabric="dx-fab-a", device="dx-a-leaf1", interface="Ethernet1/1", fault_seen_at=now - timedelta(seconds=9),
        impact={"capacity_lost_gbps": 400, "min_remaining_uplink_fraction": 0.75, "partitioned": False,
                "removed_link_ids": [42], "affected_leaves": [{"name": "dx-a-leaf1"}], "affected_hosts": ["h1", "h2"],
                "isolated_hosts": []},
    )  # fmt: skip
    Alarm.objects.create(incident=incident, kind="link-flap", device="dx-a-leaf1", subject="Ethernet1/1",
                         value=4, threshold=3, message="4 transitions in 60 s", seen_at=now,
                         evidence={"transitions": 4})  # fmt: skip
    waiting = RemediationRun.objects.create(incident=incident, playbook="link-flap-approve", mode="approve",
                                            idempotency_key="a", target_key="link:42",
                                            status="awaiting-approval")  # fmt: skip
    drained = RemediationRun.objects.create(incident=incident, playbook="link-flap", idempotency_key="b",
                                            target_key="link:43", status="succeeded", verified_at=now)  # fmt: skip
    drained.actions.create(sequence=0, action="drain-link", target="link:43", status="done", started_at=now,
                           finished_at=now, params={"undo": {"links": [43], "state": "up"}}, push_job=None,
                           diff="interface Ethernet1/1\n+   shutdown\nusername admin secret 0 hunter2",
                           result="push job 7: 2 confirmed")  # fmt: skip
    assert waiting.pk
    return incident


def test_page_shows_timeline_evidence_impact_and_redacted_diffs(users, incident) -> None:
    html = login(users, "viewer").get(reverse("web:incident", args=[incident.pk])).content.decode()
    for text in ("fault seen by the switch", "detected: link-flap on link:42", "4 transitions in 60 s",
                 "transitions=4", "400 Gb/s", "75 % of its uplinks", "drain-link on link:43: done",
                 "+   shutdown", "push job 7: 2 confirmed", "remediation", "not yet"):  # fmt: skip
        assert text in html, text
    assert "hunter2" not in html, "device diffs are redacted"
    assert 'hx-trigger="every 5s' in html, "live while the incident is active"
    for marker in BUTTONS:
        assert marker not in html, marker


def test_operator_sees_the_buttons_and_acknowledges_from_the_page(users, incident) -> None:
    operator = login(users, "operator")
    url = reverse("web:incident", args=[incident.pk])
    html = operator.get(url).content.decode()
    for marker in BUTTONS:
        assert marker in html, marker
    answer = operator.post(reverse("web:incident-acknowledge", args=[incident.pk]))
    assert answer.status_code == 302 and answer["Location"] == url
    incident.refresh_from_db()
    assert incident.acknowledged_by == "operator"
    after = operator.get(url).content.decode()
    assert 'id="ack"' not in after and "by operator at" in after and "acknowledged" in after
    [entry] = AuditEntry.objects.filter(action="acknowledge")
    assert (entry.actor, entry.source, entry.source_ip) == ("operator", "web", "127.0.0.1")
    again = operator.post(reverse("web:incident-acknowledge", args=[incident.pk]), follow=True)
    assert "was acknowledged by operator" in again.content.decode()
    assert AuditEntry.objects.filter(action="acknowledge").count() == 1


def test_viewer_and_anonymous_posts_are_refused(users, incident) -> None:
    run = incident.runs.get(status="awaiting-approval")
    posts = [
        (reverse("web:incident-acknowledge", args=[incident.pk]), {}),
        (reverse("web:incident-resolve", args=[incident.pk]), {"note": "x"}),
        (reverse("web:run-approve", args=[run.pk]), {}),
        (reverse("web:run-reject", args=[run.pk]), {"note": "no"}),
        (reverse("web:run-rollback", args=[run.pk]), {}),
    ]
    viewer, anonymous, operator = login(users, "viewer"), Client(), login(users, "operator")
    for url, data in posts:
        assert viewer.post(url, data).status_code == 403, url
        answer = anonymous.post(url, data)
        assert answer.status_code == 302 and answer["Location"].startswith(reverse("login")), url
        assert operator.get(url).status_code == 405, url
    for url in (reverse("web:incident-acknowledge", args=[99999]), reverse("web:run-reject", args=[99999])):
        assert operator.post(url).status_code == 404
    assert AuditEntry.objects.count() == 0
    incident.refresh_from_db()
    assert incident.acknowledged_at is None and incident.status == "needs-human"


def test_csrf_is_enforced_on_the_action_forms(users, incident) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["operator"])
    assert client.post(reverse("web:incident-acknowledge", args=[incident.pk])).status_code == 403
    incident.refresh_from_db()
    assert incident.acknowledged_at is None


@pytest.mark.django_db(transaction=True)  # the tasks are sent once the request's transaction commits
def test_reject_approve_rollback_and_resolve_from_the_page(users, incident, broker) -> None:
    operator = login(users, "operator")
    waiting = incident.runs.get(status="awaiting-approval")
    drained = incident.runs.get(status="succeeded")
    operator.post(reverse("web:run-approve", args=[waiting.pk]))
    operator.post(reverse("web:run-rollback", args=[drained.pk]))
    assert queued(broker) == [("web.approve_remediation", [waiting.pk, "operator"]),
                              ("web.rollback_remediation", [drained.pk, "operator"])]  # fmt: skip
    operator.post(reverse("web:run-reject", args=[waiting.pk]), {"note": "wait for the maintenance window"})
    waiting.refresh_from_db()
    assert waiting.rejected_by == "operator" and waiting.status == "refused"
    refused = operator.post(reverse("web:incident-resolve", args=[incident.pk]), {"note": "fixed"}, follow=True)
    assert "roll back first" in refused.content.decode(), "the drain of run b is still in place"
    drained.restored_at = timezone.now()
    drained.status = "restored"
    drained.save()
    assert operator.post(reverse("web:incident-resolve", args=[incident.pk]), {"note": ""}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "needs-human", "a resolve without a note is refused"
    operator.post(reverse("web:incident-resolve", args=[incident.pk]), {"note": "optic replaced"})
    incident.refresh_from_db()
    assert incident.status == "resolved" and "optic replaced" in incident.reason
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "source", "actor"))
    assert actions == [("approve", "web", "operator"), ("rollback", "web", "operator"),
                       ("reject", "web", "operator"), ("resolve", "web", "operator")]  # fmt: skip
    live = operator.get(reverse("web:incident-live", args=[incident.pk])).content.decode()
    assert 'id="incident-live"' in live and "hx-trigger" not in live, "polling stops once it is over"
    assert "resolve (Web page)" in live, "people's actions are on the timeline (operators read the audit log)"
