"""Users and roles through the API (admins), and /api/me/ for the UI."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from fabric_ops.web.models import AuditEntry

pytestmark = pytest.mark.timeout(60)


def test_me(clients) -> None:
    me = clients["operator"].get("/api/me/").json()
    assert (me["username"], me["role"]) == ("operator", "operator")
    assert "fabricconfig.approve_pushjob" in me["permissions"]
    assert "fabricconfig.add_roceprofile" not in me["permissions"]
    nobody = clients["nobody"].get("/api/me/").json()
    assert (nobody["role"], nobody["permissions"]) == (None, [])


def test_create_user_with_role_and_password(clients) -> None:
    answer = clients["admin"].post(
        "/api/users/", {"username": "carol", "password": "a-long-passw0rd", "role": "viewer"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["role"] == "viewer"
    assert "password" not in answer.json()
    carol = get_user_model().objects.get(username="carol")
    assert carol.check_password("a-long-passw0rd")
    entry = AuditEntry.objects.get(action="create", object_type="auth.user")
    assert entry.changes["password"] == [None, "<secret>"]
    assert entry.changes["role"] == [None, "viewer"]
    assert "a-long-passw0rd" not in json.dumps(entry.changes) and carol.password not in json.dumps(entry.changes)


def test_short_password_refused(clients) -> None:
    answer = clients["admin"].post("/api/users/", {"username": "dave", "password": "short"}, format="json")
    assert answer.status_code == 400
    assert "password" in answer.json()


def test_change_role_and_remove_it(clients, users) -> None:
    url = f"/api/users/{users['viewer'].pk}/"
    assert clients["admin"].patch(url, {"role": "admin"}, format="json").json()["role"] == "admin"
    users["viewer"].refresh_from_db()
    assert users["viewer"].is_staff
    assert clients["admin"].patch(url, {"role": None}, format="json").json()["role"] is None
    roles = [e.changes["role"] for e in AuditEntry.objects.filter(action="update").order_by("id")]
    assert roles == [["viewer", "admin"], ["admin", None]]


def test_users_list_never_shows_passwords(clients, users) -> None:
    text = clients["admin"].get("/api/users/").content.decode()
    for user in users.values():
        assert user.password not in text
    assert clients["operator"].get("/api/users/").status_code == 403
