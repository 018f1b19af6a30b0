"""Silences and groups over the REST API: permissions, validation, audit, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User

from fabric_ops.alerting.ingest import raise_alert
from fabric_ops.alerting.models import Silence

from .conftest import pump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def user_with(*codenames: str) -> User:
    user = User.objects.create_user(f"u{len(codenames)}", password="pw-123456789")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="alerting", codename__in=codenames))
    return User.objects.get(pk=user.pk)


def test_create_and_expire_a_silence(client, root_route, http_capture, outbox, manual_clock) -> None:
    now = manual_clock.current  # the engine's clock: the silence is active right now
    ends = (now + timedelta(hours=2)).isoformat()
    body = {"matchers": ["device=leaf1"], "starts_at": now.isoformat(), "ends_at": ends,
            "comment": "optic swap on leaf1", "kind": "maintenance"}  # fmt: skip
    client.force_login(user_with("view_silence"))
    assert client.post("/alerting/api/silences/", body, content_type="application/json").status_code == 403
    client.force_login(user_with("view_silence", "add_silence", "change_silence"))
    bad = client.post("/alerting/api/silences/", {**body, "matchers": ["no operator"]}, content_type="application/json")
    assert bad.status_code == 400 and "matcher" in str(bad.json())
    created = client.post("/alerting/api/silences/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "u3" and created.json()["active"] is True
    raise_alert({"alertname": "LinkDown", "device": "leaf1", "site": "sjc"})
    manual_clock.advance(30)
    pump(manual_clock)
    assert http_capture.requests == [], "silenced"
    expired = client.post(f"/alerting/api/silences/{created.json()['id']}/expire/")
    assert expired.status_code == 200 and expired.json()["active"] is False
    assert Silence.objects.get().expired_early_at is not None
    manual_clock.advance(300)
    pump(manual_clock)
    assert len(http_capture.requests) == 1, "sent at the next group interval once the silence is expired"
    from fabric_ops.web.models import AuditEntry

    assert AuditEntry.objects.filter(object_type="alerting.silence").count() == 2


def test_groups_list_needs_permission(client, root_route, outbox, manual_clock) -> None:
    raise_alert({"alertname": "LinkDown", "device": "leaf1", "site": "sjc"})
    client.force_login(user_with("view_silence"))
    assert client.get("/alerting/api/groups/").status_code == 403
    client.force_login(user_with("change_alertgroup", "view_alertgroup"))
    listed = client.get("/alerting/api/groups/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [g["group_labels"] for g in rows] == [{"alertname": "LinkDown", "site": "sjc"}]


# One notion of acknowledgement: incidents (fabric_ops.health) and the alert groups that page for them.


def _paging(root_route, http_capture):
    from fabric_ops.alerting.models import EscalationPolicy, EscalationStep, Receiver, Route

    primary = Receiver.objects.create(name="primary", kind="webhook", url=f"{http_capture.url}/primary")
    secondary = Receiver.objects.create(name="secondary", kind="webhook", url=f"{http_capture.url}/secondary")
    policy = EscalationPolicy.objects.create(name="network-oncall", repeat=True)
    EscalationStep.objects.create(policy=policy, order=0, after_s=0, receiver=primary)
    EscalationStep.objects.create(policy=policy, order=1, after_s=600, receiver=secondary)
    Route.objects.create(name="paging", parent=root_route, matchers=["severity=critical"], escalation=policy)


def _incident(key: str, status: str = "needs-human", severity: str = "critical"):
    from fabric_ops.health.models import Incident

    return Incident.objects.create(kind="link-down", root_key=key, status=status, severity=severity,
                                   summary=f"{key} down", scope_kind="link")  # fmt: skip


def _operator(client) -> User:
    from fabric_ops.web.roles import assign_role

    user = User.objects.create_user("olga", password="pw-123456789")
    assign_role(user, "operator")
    client.force_login(user)
    return user


def test_incident_acknowledgement_stops_escalation_once_every_incident_of_the_page_is_owned(
    root_route, http_capture, outbox, manual_clock, client, django_capture_on_commit_callbacks
) -> None:
    from fabric_ops.alerting import engine
    from fabric_ops.alerting.models import AlertGroup
    from fabric_ops.web.models import AuditEntry

    _paging(root_route, http_capture)
    with django_capture_on_commit_callbacks(execute=True):
        first, second = _incident("link:1"), _incident("link:2")
    manual_clock.advance(30)
    pump(manual_clock)
    group = AlertGroup.objects.get(route__name="paging")
    assert group.alerts.count() == 2 and len(http_capture.to("/primary")) == 1
    _operator(client)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/incidents/{first.pk}/acknowledge/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["acknowledged_by"] == "olga" and answer.json()["acknowledged_at"]
    group.refresh_from_db()
    assert group.state == "active", "the page also carries an incident nobody owns yet"
    manual_clock.advance(600)
    assert [n.receiver.name for n in engine.escalate_due()] == ["secondary"]
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/incidents/{second.pk}/acknowledge/").status_code == 200
    group.refresh_from_db()
    assert (group.state, group.acknowledged_by) == ("acknowledged", "olga")
    manual_clock.advance(6000)
    assert engine.escalate_due() == [], "acknowledged: the repeating policy stops"
    entry = AuditEntry.objects.filter(action="acknowledge", object_id=str(second.pk)).get()
    assert entry.source == "api" and entry.changes["alert_groups_acknowledged"] == [[], [group.pk]]
    assert client.post(f"/api/incidents/{second.pk}/acknowledge/").status_code == 409, "already acknowledged"


def test_group_acknowledgement_acknowledges_its_incidents(
    root_route, http_capture, outbox, manual_clock, client, django_capture_on_commit_callbacks
) -> None:
    from fabric_ops.alerting.models import AlertGroup

    with django_capture_on_commit_callbacks(execute=True):
        incident = _incident("link:7")
        other = _incident("link:8", status="mitigating", severity="major")  # automation acts: no alert
    manual_clock.advance(30)
    pump(manual_clock)
    group = AlertGroup.objects.get()
    user = _operator(client)
    assert client.post(f"/alerting/api/groups/{group.pk}/acknowledge/").status_code == 200
    incident.refresh_from_db()
    other.refresh_from_db()
    assert incident.acknowledged_by == user.username and incident.acknowledged_at is not None
    assert other.acknowledged_at is None


def test_incident_acknowledged_before_it_pages_gets_its_group_acknowledged(
    root_route, http_capture, outbox, manual_clock, client, django_capture_on_commit_callbacks
) -> None:
    from fabric_ops.alerting.models import AlertGroup

    _paging(root_route, http_capture)
    with django_capture_on_commit_callbacks(execute=True):
        incident = _incident("link:9", status="open", severity="major")  # no rule matches: no alert yet
    _operator(client)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/incidents/{incident.pk}/acknowledge/").status_code == 200
    assert not AlertGroup.objects.exists()
    incident.refresh_from_db()
    incident.severity = "critical"  # now it pages (incident-critical) ...
    with django_capture_on_commit_callbacks(execute=True):
        incident.save()
    group = AlertGroup.objects.get(route__name="paging")
    assert (group.state, group.acknowledged_by) == ("acknowledged", "olga"), "... already owned: no escalation"
