"""Login, CSRF, roles, secrets, the OpenAPI schema and `check --deploy` in production mode."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.authtoken.models import Token

from fabric_ops.web import roles

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def manage(*args: str, env: dict[str, str] | None = None, tmp: Path) -> subprocess.CompletedProcess:
    full = {**os.environ, "FABRIC_OPS_VAR_DIR": str(tmp), **(env or {})}
    full.pop("DATABASE_URL", None) if "DATABASE_URL" not in (env or {}) else None
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=100
    )


def test_check_deploy_is_clean_in_production_mode(tmp_path) -> None:
    env = {"FABRIC_OPS_DEBUG": "0", "FABRIC_OPS_SECRET_KEY": secrets.token_urlsafe(50)}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_with_debug_on(tmp_path) -> None:
    """The test above can fail: with the demo defaults, --deploy reports problems."""
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp=tmp_path)
    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr  # DEBUG on


def test_schema_generates_without_warnings(tmp_path) -> None:
    out = tmp_path / "schema.json"
    result = manage("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out),
                    tmp=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    schema = json.loads(out.read_text())
    paths = schema["paths"]
    for path in ("/api/devices/", "/api/push-jobs/{id}/approve/", "/api/topology/{fabric}/what-if/",
                 "/api/lab/inject/", "/api/health/", "/api/audit/"):  # fmt: skip
        assert path in paths, path
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_schema_and_docs_need_login(clients) -> None:
    assert clients["anonymous"].get("/api/schema/").status_code == 401
    docs = clients["viewer"].get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower(), "Swagger UI assets are served locally (sidecar)"


def test_session_login_and_csrf(users, fabric) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/accounts/login/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    login = browser.post(
        "/accounts/login/", {"username": "operator", "password": "pw-operator-0123", "csrfmiddlewaretoken": token}
    )
    assert login.status_code == 302
    leaf = fabric.devices["dx-a-leaf1"]
    assert browser.get(f"/api/devices/{leaf.pk}/").status_code == 200, "a session authenticates reads"
    body = json.dumps({"lifecycle": "drained"})
    refused = browser.patch(f"/api/devices/{leaf.pk}/", body, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.patch(
        f"/api/devices/{leaf.pk}/", body, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert accepted.status_code == 200
    leaf.refresh_from_db()
    assert leaf.lifecycle == "drained"


def test_login_page_rejects_wrong_password(users) -> None:
    answer = Client().post("/accounts/login/", {"username": "operator", "password": "wrong"})
    assert answer.status_code == 200
    assert b"Wrong username or password" in answer.content


def test_token_clients_need_no_csrf(clients, fabric) -> None:
    leaf = fabric.devices["dx-a-leaf1"]
    assert clients["operator"].patch(f"/api/devices/{leaf.pk}/", {"lifecycle": "maintenance"}).status_code == 200


def test_no_secret_is_ever_serialised(clients, fabric, users) -> None:
    seen = []
    for path in ("/api/devices/", "/api/device-jobs/", "/api/config-backups/", "/api/push-jobs/", "/api/audit/"):
        answer = clients["admin"].get(path + "?limit=1000")
        assert answer.status_code == 200
        seen.append(answer.content.decode())
    text = "\n".join(seen)
    assert '"credential":"default"' in text.replace(" ", ""), "the credential is a name"
    assert "hunter2" not in text and "$6$abc" not in text, "stored texts are redacted on the way out"
    for token in Token.objects.all():
        assert token.key not in text
    for user in users.values():
        assert user.password not in text


def test_role_permissions(db) -> None:
    viewer, operator, admin = (
        set(Group.objects.get(name=r).permissions.values_list("content_type__app_label", "codename"))
        for r in roles.ROLES
    )
    assert ("topology", "view_device") in viewer and ("web", "view_lab") in viewer
    assert all(codename.startswith("view_") for _, codename in viewer), "viewers only view"
    assert ("web", "view_auditentry") not in viewer
    assert viewer < operator < admin
    for perm in [("fabricconfig", "approve_pushjob"), ("fabricconfig", "run_pushjob"), ("web", "inject_fault"),
                 ("topology", "change_device"), ("web", "view_auditentry"), ("health", "change_incident"),
                 ("alerting", "change_alertgroup")]:  # fmt: skip
        assert perm in operator, perm
    assert ("fabricconfig", "add_roceprofile") not in operator, "intents are the admins'"
    assert ("health", "delete_incident") not in operator and ("alerting", "add_receiver") not in operator
    assert ("fabricconfig", "add_roceprofile") in admin and ("auth", "add_user") in admin


def test_sync_is_idempotent_and_resets_hand_edits(db) -> None:
    viewer = Group.objects.get(name="viewer")
    viewer.permissions.add(*Group.objects.get(name="admin").permissions.filter(codename="delete_device"))
    first = roles.sync_roles()
    assert not viewer.permissions.filter(codename="delete_device").exists()
    assert roles.sync_roles() == first


def test_assign_role_and_role_of(users) -> None:
    user = users["nobody"]
    assert roles.role_of(user) is None
    roles.assign_role(user, "admin")
    assert (roles.role_of(user), user.is_staff) == ("admin", True)
    roles.assign_role(user, "viewer")
    assert (roles.role_of(user), user.is_staff) == ("viewer", False)
    assert list(user.groups.values_list("name", flat=True)) == ["viewer"]
    with pytest.raises(ValueError):
        roles.assign_role(user, "root")


def test_request_id_is_echoed_or_made(clients) -> None:
    assert clients["anonymous"].get("/api/health/live/", headers={"X-Request-ID": "abc-123"})["X-Request-ID"] == (
        "abc-123"
    )
    made = clients["anonymous"].get("/api/health/live/", headers={"X-Request-ID": "bad id\n<script>"})
    assert len(made["X-Request-ID"]) == 32 and "<" not in made["X-Request-ID"]


def test_fresh_migrate_creates_the_roles(tmp_path) -> None:
    """On a new database the data migration (and post_migrate) leave the three groups filled."""
    assert manage("migrate", "-v0", tmp=tmp_path).returncode == 0
    listed = manage("roles", "list", tmp=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for role in roles.ROLES:
        line = next(x for x in listed.stdout.splitlines() if x.startswith(f"{role}:"))
        assert int(line.split()[1]) > 10, line
