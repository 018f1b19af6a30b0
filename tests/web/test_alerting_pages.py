"""Alerting pages: rules, the route tree, receivers without any secret, silences created and expired by
operators (validated like the API, audited with source "web"), and the delivery log filtered by receiver/status."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from fabric_ops.alerting.models import (
    AlertGroup,
    DeliveryAttempt,
    EscalationPolicy,
    EscalationStep,
    Notification,
    Receiver,
    Route,
    Silence,
)
from fabric_ops.web.models import AuditEntry

from .conftest import login

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]

# Secret values that exist in the secret store (environment and secrets directory) while the pages render.
SECRETS = {
    "FABRIC_OPS_CRED_PD_NETWORK_ROUTING_KEY": "R0UTINGKEY-0123456789abcdef",
    "FABRIC_OPS_CRED_TEAM_HOOK_BEARER_TOKEN": "BEARER-s3cr3t-9876",
}
FILE_SECRET = "dingtalk-SIGNING-secret-5555"


@pytest.fixture
def alerting_config(monkeypatch, settings, tmp_path) -> dict:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings.FABRIC_OPS_SECRETS_DIR = str(tmp_path)
    (tmp_path / "ding.json").write_text(json.dumps({"access_token": "TOKEN-in-a-file-4444", "secret": FILE_SECRET}))
    team = Receiver.objects.create(name="team-hook", kind="webhook", secret_name="team-hook",
                                   url="https://bob:hunter2@hooks.example.com/alert?token=QUERY-TOKEN-1234",
                                   options={"channel": "#netops", "api_key": "OPTION-KEY-7777"})  # fmt: skip
    pd = Receiver.objects.create(name="pd-network", kind="pagerduty", secret_name="pd-network")
    Receiver.objects.create(name="ding", kind="dingtalk", secret_name="ding")
    policy = EscalationPolicy.objects.create(name="network-oncall")
    EscalationStep.objects.create(policy=policy, order=0, after_s=0, receiver=pd)
    EscalationStep.objects.create(policy=policy, order=1, after_s=600, receiver=team)
    root = Route.objects.get(parent__isnull=True)
    root.receiver = team
    root.save()
    Route.objects.create(name="paging", parent=root, matchers=["severity=critical"], escalation=policy, receiver=pd)
    Route.objects.create(name="optics", parent=root, order=1, matchers=["alertname=~Optic.*"], group_wait_s=5)
    now = timezone.now()
    group = AlertGroup.objects.create(route=root, group_key="g1", group_labels={"alertname": "LinkDown"},
                                      created_at=now)  # fmt: skip
    sent = Notification.objects.create(group=group, receiver=team, kind="firing", payload={}, status="sent",
                                       attempts=2, created_at=now)  # fmt: skip
    DeliveryAttempt.objects.create(notification=sent, number=1, started_at=now, status_code=500, outcome="retry",
                                   detail="HTTP 500 from https://hooks.example.com/alert?token=<redacted>")  # fmt: skip
    DeliveryAttempt.objects.create(notification=sent, number=2, started_at=now, status_code=200, outcome="sent")
    failed = Notification.objects.create(group=group, receiver=pd, kind="firing", payload={}, status="failed",
                                         attempts=1, created_at=now - timedelta(minutes=1))  # fmt: skip
    DeliveryAttempt.objects.create(notification=failed, number=1, started_at=now, status_code=400, outcome="fatal",
                                   detail="PagerDuty 400 invalid event")  # fmt: skip
    return {"team": team, "pd": pd, "sent": sent, "failed": failed}


def test_receivers_never_render_a_secret(users, alerting_config) -> None:
    for name in ("viewer", "operator", "admin"):
        html = login(users, name).get(reverse("web:alerting-receivers")).content.decode()
        for secret in (*SECRETS.values(), FILE_SECRET, "TOKEN-in-a-file-4444", "hunter2", "QUERY-TOKEN-1234",
                       "OPTION-KEY-7777"):  # fmt: skip
            assert secret not in html, (name, secret)
        assert "hooks.example.com/alert?token=&lt;secret&gt;" in html and "&lt;secret&gt;@hooks" in html
        assert "channel=#netops" in html and "api_key=&lt;secret&gt;" in html
        assert 'id="receiver-pd-network"' in html and "PagerDuty Events API v2" in html


def test_routes_page_draws_the_tree_with_what_is_in_effect(users, alerting_config) -> None:
    html = login(users, "viewer").get(reverse("web:alerting-routes")).content.decode()
    root_at, paging_at, optics_at = html.index('id="route-root"'), html.index('id="route-paging"'), \
        html.index('id="route-optics"')  # fmt: skip
    assert root_at < paging_at < optics_at, "children in order, under the root"
    optics = html[optics_at:]
    assert 'team-hook</a> <span class="muted small">(inherited)' in optics
    assert "wait 5 s" in optics and "escalation network-oncall" in html[paging_at:optics_at]
    assert "after 600 s unacknowledged: team-hook" in html


def test_rules_page_lists_the_default_rules(users, db) -> None:
    html = login(users, "viewer").get(reverse("web:alerting-rules")).content.decode()
    for name in ("incident-needs-human", "incident-critical", "optic-temperature-high", "critical-inhibits-warning"):
        assert name in html, name
    assert "optics.temperature_c &gt; 75.0 for 120 s" in html


def test_deliveries_filter_by_receiver_and_status(users, alerting_config) -> None:
    client = login(users, "viewer")
    url = reverse("web:alerting-deliveries")
    every = client.get(url).content.decode()
    assert every.count("<tr><td>") == 2 and "HTTP 500" in every and "PagerDuty 400" in every
    only_pd = client.get(url + "?receiver=pd-network").content.decode()
    assert "PagerDuty 400" in only_pd and "HTTP 500" not in only_pd
    sent = client.get(url + "?status=sent").content.decode()
    assert "HTTP 500" in sent and "PagerDuty 400" not in sent
    assert "<tr><td>" not in client.get(url + "?receiver=ding").content.decode()


def test_operator_creates_and_expires_a_silence_viewer_cannot(users, alerting_config) -> None:
    url = reverse("web:alerting-silences")
    viewer, operator = login(users, "viewer"), login(users, "operator")
    assert 'id="silence-form"' not in viewer.get(url).content.decode()
    form = {"matchers": "device=dx-a-leaf1\nalertname=~Link.*", "hours": "2", "kind": "maintenance",
            "comment": "optic swap"}  # fmt: skip
    assert viewer.post(url, form).status_code == 403
    assert not Silence.objects.exists()
    assert 'id="silence-form"' in operator.get(url).content.decode()
    bad = operator.post(url, {**form, "matchers": "no operator here"})
    assert bad.status_code == 400 and "matcher" in bad.content.decode()
    assert operator.post(url, {**form, "comment": ""}).status_code == 400
    assert operator.post(url, {**form, "hours": "-1"}).status_code == 400
    assert not Silence.objects.exists()
    created = operator.post(url, form)
    assert created.status_code == 302
    silence = Silence.objects.get()
    assert silence.matchers == ["device=dx-a-leaf1", "alertname=~Link.*"] and silence.created_by == "operator"
    assert timedelta(hours=1.9) < silence.ends_at - silence.starts_at <= timedelta(hours=2)
    page = viewer.get(url).content.decode()
    assert "optic swap" in page and 'class="expire-silence"' not in page
    expire = reverse("web:alerting-silence-expire", args=[silence.pk])
    assert viewer.post(expire).status_code == 403
    assert 'class="expire-silence"' in operator.get(url).content.decode()
    assert operator.post(expire).status_code == 302
    silence.refresh_from_db()
    assert silence.expired_early_at is not None
    assert 'class="expire-silence"' not in operator.get(url).content.decode(), "expired: nothing left to expire"
    rows = list(AuditEntry.objects.order_by("id").values_list("action", "source", "actor", "object_type"))
    assert rows == [
        ("create", "web", "operator", "alerting.silence"),
        ("expire", "web", "operator", "alerting.silence"),
    ]
    assert operator.post(reverse("web:alerting-silence-expire", args=[99999])).status_code == 404


def test_paging_links_of_the_deliveries_keep_a_receiver_name_with_ampersand_and_hash(
    users, alerting_config, monkeypatch
) -> None:
    import html as htmllib
    import re

    import fabric_ops.web.views.alerting as view

    odd = Receiver.objects.create(name="ops&dev #1", kind="webhook", url="https://hooks.example.com/x")
    group = AlertGroup.objects.get(group_key="g1")
    now = timezone.now()
    for n in range(3):
        Notification.objects.create(group=group, receiver=odd, kind="firing", payload={}, status="sent",
                                    attempts=1, created_at=now - timedelta(seconds=n))  # fmt: skip
    monkeypatch.setattr(view, "PAGE_SIZE", 2)
    client = login(users, "viewer")
    url = reverse("web:alerting-deliveries")
    first = client.get(url, {"receiver": "ops&dev #1", "status": "sent"}).content.decode()
    assert first.count("<tr><td>") == 2, "only that receiver's deliveries, two a page"
    older = re.search(r'<a href="([^"]+)">older</a>', first)
    assert older, first
    href = htmllib.unescape(older.group(1))
    assert href == "?offset=2&receiver=ops%26dev+%231&status=sent", href
    second = client.get(url + href).content.decode()
    assert second.count("<tr><td>") == 1, "the third delivery of that receiver, on the second page"
    assert 'value="ops&amp;dev #1" selected' in second
    newer = re.search(r'<a href="([^"]+)">newer</a>', second)
    assert newer and htmllib.unescape(newer.group(1)) == "?offset=0&receiver=ops%26dev+%231&status=sent"


# Open alert groups: the page, acknowledging from it (operators only), and the audit of a group acknowledgement
# per incident, whichever channel (page, alerting API, signed link).


def _firing_group(key: str = "g-open", incidents: int = 2) -> tuple[AlertGroup, list]:
    from fabric_ops.alerting.models import Alert
    from fabric_ops.health.models import Incident

    root = Route.objects.get(parent__isnull=True)
    now = timezone.now()
    group = AlertGroup.objects.create(route=root, group_key=key, group_labels={"alertname": "IncidentCritical"},
                                      created_at=now, last_notified_at=now)  # fmt: skip
    made = []
    for n in range(incidents):
        incident = Incident.objects.create(kind="link-down", root_key=f"link:{key}{n}", status="needs-human",
                                           severity="critical", summary=f"{key} link {n} down",
                                           scope_kind="link")  # fmt: skip
        alert = Alert.objects.create(fingerprint=f"{key}{n}", labels={"alertname": "IncidentCritical", "n": str(n)},
                                     starts_at=now, last_received_at=now, source=f"incident:{incident.pk}")  # fmt: skip
        group.alerts.add(alert)
        made.append(incident)
    return group, made


def test_open_groups_page_lists_firing_groups_with_incidents_and_escalation(users, alerting_config) -> None:
    group, (first, _second) = _firing_group()
    policy = EscalationPolicy.objects.get(name="network-oncall")
    root = Route.objects.get(parent__isnull=True)
    root.escalation = policy
    root.save()
    quiet = AlertGroup.objects.get(group_key="g1")  # no firing alert: not open
    url = reverse("web:alerting-groups")
    viewer = login(users, "viewer").get(url)
    assert viewer.status_code == 200
    html = viewer.content.decode()
    assert f'id="group-{group.pk}"' in html and f'id="group-{quiet.pk}"' not in html
    assert reverse("web:incident", args=[first.pk]) in html and "nobody owns it" in html
    assert "network-oncall: step 1 of 2" in html
    assert 'hx-trigger="every 10s"' in html and 'hx-select="#alert-groups"' in html
    assert 'class="ack-group"' not in html, "viewers get no Acknowledge button"
    operator_html = login(users, "operator").get(url).content.decode()
    assert 'class="ack-group"' in operator_html
    assert f'href="{url}" id="nav-alerting"' in operator_html, "reachable from the navigation"
    assert 'id="tab-groups"' in login(users, "viewer").get(reverse("web:alerting-routes")).content.decode()


def test_operator_acknowledges_a_group_from_the_page_viewer_cannot(users, alerting_config) -> None:
    from fabric_ops.health.models import Incident

    group, incidents = _firing_group()
    ack = reverse("web:alerting-group-acknowledge", args=[group.pk])
    assert Client().post(ack).status_code == 302 and Client().get(reverse("web:alerting-groups")).status_code == 302
    assert login(users, "viewer").post(ack).status_code == 403
    assert login(users, "nobody").get(reverse("web:alerting-groups")).status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(users["operator"])
    assert strict.post(ack).status_code == 403, "CSRF token required"
    group.refresh_from_db()
    assert group.state == "active" and not AuditEntry.objects.exists()
    operator = login(users, "operator")
    answer = operator.post(ack)
    assert answer.status_code == 302 and answer["Location"] == reverse("web:alerting-groups")
    group.refresh_from_db()
    assert (group.state, group.acknowledged_by) == ("acknowledged", "operator")
    for incident in Incident.objects.filter(pk__in=[i.pk for i in incidents]):
        assert incident.acknowledged_by == "operator" and incident.acknowledged_at is not None
    rows = list(AuditEntry.objects.order_by("id").values_list("action", "source", "actor", "object_type", "object_id"))
    assert sorted(rows) == sorted(
        [("acknowledge", "web", "operator", "health.incident", str(i.pk)) for i in incidents]
        + [("alert-ack", "web", "operator", "alerting.alertgroup", str(group.pk))]
    )
    html = operator.get(reverse("web:alerting-groups")).content.decode()
    assert 'class="ack-group"' not in html and "by operator" in html
    again = operator.post(ack, follow=True)
    assert "already acknowledged by operator" in again.content.decode()
    assert AuditEntry.objects.count() == 3, "a second acknowledgement changes and records nothing"
    missing = operator.post(reverse("web:alerting-group-acknowledge", args=[99999]))
    assert missing.status_code == 404 and AuditEntry.objects.count() == 3, "an unknown group: 404, nothing recorded"


def test_group_acknowledged_by_signed_link_or_api_shows_on_each_incident_timeline(users, alerting_config) -> None:
    from fabric_ops.alerting.links import make_token

    by_link, linked = _firing_group("g-link", incidents=2)
    by_api, (api_incident,) = _firing_group("g-api", incidents=1)
    assert Client().post(f"/alerting/act/{make_token(by_link.pk, 'ack')}/").status_code == 200  # anonymous link
    assert login(users, "operator").post(f"/alerting/api/groups/{by_api.pk}/acknowledge/").status_code == 200
    for incident in linked:
        entry = AuditEntry.objects.get(action="acknowledge", object_type="health.incident", object_id=str(incident.pk))
        assert (entry.actor, entry.source, entry.user) == ("link:signed-link", "link", None)
        assert entry.get_source_display() == "Signed link", "a declared source"
        assert entry.changes["alert_group"] == [None, by_link.pk]
        entry.full_clean()  # the source is one of the model's choices
        html = login(users, "operator").get(reverse("web:incident", args=[incident.pk])).content.decode()
        assert "acknowledge (Signed link)" in html and "link:signed-link" in html
    entry = AuditEntry.objects.get(action="acknowledge", object_type="health.incident", object_id=str(api_incident.pk))
    assert (entry.actor, entry.source, entry.user) == ("operator", "api", users["operator"])
    html = login(users, "operator").get(reverse("web:incident", args=[api_incident.pk])).content.decode()
    assert "acknowledge (REST API)" in html
    assert AuditEntry.objects.filter(action="alert-ack", source="link").count() == 1
