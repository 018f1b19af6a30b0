"""Incidents from fabric_ops.health become alerts through the built-in incident rules; the switch-down
inhibition works on incident alerts with labels taken from the topology (both ends of each link)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core import signing

from fabric_ops.alerting import links
from fabric_ops.alerting.models import Alert, AlertGroup
from fabric_ops.health.models import Incident
from fabric_ops.topology.models import Link
from tests.topology.factories import two_sites

from .conftest import pump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def open_incident(**fields) -> Incident:
    defaults = {"kind": "link-down", "root_key": "x", "status": "needs-human", "severity": "major",
                "summary": "s", "scope_kind": "link"}  # fmt: skip
    return Incident.objects.create(**{**defaults, **fields})


def test_needs_human_incident_alerts_and_resolves(root_route, http_capture, outbox, manual_clock,
                                                  django_capture_on_commit_callbacks) -> None:  # fmt: skip
    built = two_sites("dx")
    link = Link.objects.filter(a_interface__device__hostname="dx-a-leaf1").select_related("a_interface").first()
    with django_capture_on_commit_callbacks(execute=True):
        incident = open_incident(root_key=f"link:{link.pk}", device="dx-a-leaf1", interface=link.a_interface.name,
                                 link_id=link.pk, fabric=built.devices["dx-a-leaf1"].fabric.name,
                                 summary="dx-a-leaf1 uplink down, drain refused by guardrail")  # fmt: skip
    alert = Alert.objects.get(source=f"incident:{incident.pk}")
    assert alert.labels["alertname"] == "LinkDown" and alert.labels["site"] == "dx-a"
    assert alert.labels["peer_device"] == "dx-a-spine" and alert.labels["page"] == "true"
    assert alert.annotations["status"] == "needs-human"
    manual_clock.advance(30)
    pump(manual_clock)
    assert len(http_capture.requests) == 1
    with django_capture_on_commit_callbacks(execute=True):
        incident.status = "resolved"
        incident.save()
    alert.refresh_from_db()
    assert alert.status == "resolved"
    manual_clock.advance(300)
    pump(manual_clock)
    assert [r.body["status"] for r in http_capture.requests] == ["firing", "resolved"]


def test_open_major_incident_handled_by_automation_does_not_alert(root_route, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        open_incident(status="mitigating")
    assert not Alert.objects.exists()


def test_switch_down_incident_inhibits_link_incidents(root_route, http_capture, outbox, manual_clock,
                                                      django_capture_on_commit_callbacks) -> None:  # fmt: skip
    two_sites("dx")
    root_route.group_by = ["alertname"]
    root_route.save()
    spine_links = Link.objects.filter(b_interface__device__hostname="dx-a-spine").select_related("a_interface__device")
    with django_capture_on_commit_callbacks(execute=True):
        open_incident(kind="device-unreachable", root_key="device:dx-a-spine", severity="critical",
                      scope_kind="device", device="dx-a-spine")  # fmt: skip
        for link in spine_links:  # each link seen from its leaf end: dx-a-spine is the peer
            open_incident(root_key=f"link:{link.pk}", device=link.a_interface.device.hostname, link_id=link.pk)
        open_incident(kind="crc-errors", root_key="other", scope_kind="interface", device="dx-b-leaf1",
                      interface="Et1")  # fmt: skip
    manual_clock.advance(30)
    pump(manual_clock)
    names = sorted(r.body["groupLabels"]["alertname"] for r in http_capture.requests)
    assert names == ["CrcErrors", "DeviceUnreachable"], "link alerts muted by the switch-down"


def test_signed_link_acknowledges(root_route, http_capture, outbox, manual_clock, client) -> None:
    from fabric_ops.alerting.ingest import raise_alert

    raise_alert({"alertname": "SpanDown", "severity": "critical", "span": "north"})
    manual_clock.advance(30)
    pump(manual_clock)
    ack_url = http_capture.requests[0].body["fabricOps"]["ackURL"]
    path = ack_url.removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    assert page.status_code == 200 and b"Acknowledge</button>" in page.content
    assert AlertGroup.objects.get().state == "active", "GET does not change anything"
    done = client.post(path)
    assert done.status_code == 200 and b'id="done"' in done.content
    group = AlertGroup.objects.get()
    assert group.state == "acknowledged" and group.acknowledged_by == "signed-link (link)"
    tampered = path.replace("/act/", "/act/x")
    assert client.post(tampered).status_code == 403


def test_signed_link_expires(root_route, outbox, manual_clock, client, settings) -> None:
    token = links.make_token(1, "resolve")
    settings.FABRIC_OPS_ALERTING_LINK_MAX_AGE_S = -1
    response = client.get(f"/alerting/act/{token}/")
    assert response.status_code == 403 and b"expired" in response.content
    with pytest.raises(links.LinkError):
        links.read_token(signing.dumps({"g": 1, "a": "ack"}, salt="another-salt"))


def test_api_resolve_needs_permission(root_route, http_capture, outbox, manual_clock, client) -> None:
    from fabric_ops.alerting.ingest import raise_alert

    raise_alert({"alertname": "SpanDown", "severity": "critical", "span": "north"})
    manual_clock.advance(30)
    pump(manual_clock)
    group = AlertGroup.objects.get()
    user = User.objects.create_user("bob", password="pw-123456789")
    client.force_login(user)
    url = f"/alerting/api/groups/{group.pk}/resolve/"
    assert client.post(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="change_alertgroup"))
    client.force_login(User.objects.get(pk=user.pk))
    response = client.post(url)
    assert response.status_code == 200 and response.json()["state"] == "closed"
    pump(manual_clock)
    assert http_capture.requests[-1].body["status"] == "resolved"
    assert http_capture.requests[-1].body["alerts"][0]["annotations"]["resolved_by"] == "bob"
