"""The audit log: admin saves and deletes, the API for playbooks and commands, secrets never stored."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token

from fabric_ops.topology.models import Site
from fabric_ops.web import audit
from fabric_ops.web.models import AuditEntry

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def admin_browser(users) -> Client:
    client = Client()
    assert client.login(username="admin", password="pw-admin-0123")
    return client


def test_admin_add_change_delete_are_audited(admin_browser, users) -> None:
    form = {"name": "ams", "city": "Amsterdam", "latitude": "", "longitude": ""}
    assert admin_browser.post("/admin/topology/site/add/", form).status_code == 302
    site = Site.objects.get(name="ams")
    created = AuditEntry.objects.get(action="create")
    assert (created.source, created.actor, created.object_type, created.object_id) == (
        "admin", "admin", "topology.site", str(site.pk),
    )  # fmt: skip
    assert created.changes["city"] == [None, "Amsterdam"]
    assert created.source_ip == "127.0.0.1" and created.request_id

    form["city"] = "Amstelveen"
    assert admin_browser.post(f"/admin/topology/site/{site.pk}/change/", form).status_code == 302
    updated = AuditEntry.objects.get(action="update")
    assert updated.changes == {"city": ["Amsterdam", "Amstelveen"]}

    assert admin_browser.post(f"/admin/topology/site/{site.pk}/change/", form).status_code == 302
    assert AuditEntry.objects.filter(action="update").count() == 1, "saving unchanged writes nothing"

    assert admin_browser.post(f"/admin/topology/site/{site.pk}/delete/", {"post": "yes"}).status_code == 302
    deleted = AuditEntry.objects.get(action="delete")
    assert (deleted.object_id, deleted.object_repr) == (str(site.pk), "ams")
    assert deleted.changes["name"] == ["ams", None]


def test_admin_bulk_delete_is_audited_per_row(admin_browser) -> None:
    sites = [Site.objects.create(name=f"s{i}", city="X") for i in range(3)]
    answer = admin_browser.post(
        "/admin/topology/site/",
        {"action": "delete_selected", "_selected_action": [s.pk for s in sites], "post": "yes"},
    )
    assert answer.status_code == 302
    assert sorted(AuditEntry.objects.filter(action="delete").values_list("object_repr", flat=True)) == [
        "s0", "s1", "s2",
    ]  # fmt: skip


def test_admin_user_changes_never_store_the_password(admin_browser, users) -> None:
    viewer = users["viewer"]
    old_hash = viewer.password
    answer = admin_browser.post(
        f"/admin/auth/user/{viewer.pk}/password/",
        {"password1": "n3w-Passw0rd-long", "password2": "n3w-Passw0rd-long", "usable_password": "true"},
    )
    assert answer.status_code == 302, answer.content[:500]
    entry = AuditEntry.objects.get(action="change-password")
    assert entry.changes == {"password": ["<secret>", "<secret>"]}
    viewer.refresh_from_db()
    dumped = json.dumps(list(AuditEntry.objects.values("changes")))
    assert old_hash not in dumped and viewer.password not in dumped and "n3w-Passw0rd" not in dumped


def test_admin_group_membership_change_is_audited(admin_browser, users) -> None:
    from django.contrib.auth.models import Group

    nobody = users["nobody"]
    operator = Group.objects.get(name="operator")
    form = {
        "username": "nobody", "password": nobody.password, "first_name": "", "last_name": "", "email": "",
        "is_active": "on", "groups": [operator.pk], "user_permissions": [], "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00", "last_login_0": "", "last_login_1": "",
    }  # fmt: skip
    answer = admin_browser.post(f"/admin/auth/user/{nobody.pk}/change/", form)
    assert answer.status_code == 302, answer.content[:2000]
    entry = AuditEntry.objects.get(action="update", object_type="auth.user")
    assert entry.changes["groups"] == [[], [operator.pk]]
    assert "password" not in entry.changes or entry.changes["password"] == ["<secret>", "<secret>"]


def test_token_admin_is_not_exposed(admin_browser, users) -> None:
    Token.objects.create(user=users["viewer"])
    assert admin_browser.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_record_for_playbooks_and_commands(users, fabric) -> None:
    link = fabric.links["dx-a-leaf1-dx-a-spine#1"]
    entry = audit.record("playbook:link-flap", "drain", link, {"state": ["up", "drained"], "api_token": "abc"})
    assert (entry.actor, entry.source, entry.user) == ("playbook:link-flap", "playbook", None)
    assert entry.object_type == "topology.link" and entry.object_id == str(link.pk)
    assert entry.changes == {"state": ["up", "drained"], "api_token": "<secret>"}
    cli = audit.record("cli:alice", "inject", None, {}, object_type="lab.fault", object_id="f1", object_repr="x")
    assert (cli.source, cli.object_id) == ("cli", "f1")
    person = audit.record(users["operator"], "acknowledge", link, {})
    assert (person.actor, person.user, person.source) == ("operator", users["operator"], "api")
    with pytest.raises(ValueError):
        audit.record(None, "x", link, {})
    with pytest.raises(ValueError):
        audit.record("cli:bob", "x", None, {})


def test_snapshot_masks_secret_fields_but_sees_their_change(users) -> None:
    user = get_user_model().objects.get(username="viewer")
    before = audit.snapshot(user)
    user.set_password("another-password-123")
    changes = audit.diff(before, audit.snapshot(user))
    assert changes == {"password": ["<secret>", "<secret>"]}
    token = Token.objects.create(user=user)
    assert audit.diff(None, audit.snapshot(token))["key"] == [None, "<secret>"]


def test_audit_api_filters(clients, fabric) -> None:
    leaf = fabric.devices["dx-a-leaf1"]
    clients["operator"].patch(f"/api/devices/{leaf.pk}/", {"lifecycle": "drained"}, format="json")
    audit.record("playbook:pfc-storm", "drain", leaf, {"lifecycle": ["drained", "maintenance"]})
    rows = clients["operator"].get("/api/audit/?object_type=topology.device&ordering=timestamp").json()["results"]
    assert [(r["actor"], r["action"]) for r in rows] == [("operator", "update"), ("playbook:pfc-storm", "drain")]
    only = clients["admin"].get("/api/audit/?source=playbook").json()
    assert only["count"] == 1
    assert clients["viewer"].get("/api/audit/").status_code == 403
    assert clients["admin"].post("/api/audit/", {}, format="json").status_code in (403, 405), "nobody writes it"


def test_roles_command_assign_is_audited(users, capsys) -> None:
    call_command("roles", "assign", "nobody", "operator")
    assert "nobody is now operator" in capsys.readouterr().out
    entry = AuditEntry.objects.get(action="assign-role")
    assert entry.source == "cli" and entry.actor.startswith("cli:")
    assert entry.changes == {"role": [None, "operator"]}
    assert users["nobody"].groups.get().name == "operator"
