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
