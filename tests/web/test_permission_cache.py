"""The API's per-process permission cache (fabric_ops.web.permissions): a revoked permission is refused at once
when the change is made in this process (signals), within PERMISSION_CACHE_S when another process makes it, and
one user's permissions never answer for another."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fabric_ops.web import permissions
from fabric_ops.web.roles import assign_role


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    """A known TTL and an empty cache; the clock is the test's."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(permissions, "PERMISSION_CACHE_S", 5.0)
    monkeypatch.setattr(permissions, "_now", lambda: clock["now"])
    permissions.clear_permission_cache()
    yield clock
    permissions.clear_permission_cache()


def permission_queries(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if "auth_permission" in q["sql"]]


def revoke_elsewhere(user, group: str) -> None:
    """What another process (a gunicorn worker, manage.py roles) does, as this process sees it: rows change, no
    signal reaches this process's receivers."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM auth_user_groups WHERE user_id = %s AND group_id = %s",
            [user.pk, Group.objects.get(name=group).pk],
        )


def test_second_request_reads_no_permission_rows(clients, fabric) -> None:
    with CaptureQueriesContext(connection) as ctx:
        assert clients["viewer"].get("/api/devices/").status_code == 200
    assert len(permission_queries(ctx)) == 2, "user and group permissions, once"
    with CaptureQueriesContext(connection) as ctx:
        assert clients["viewer"].get("/api/links/").status_code == 200
    assert permission_queries(ctx) == []


def test_role_change_in_this_process_applies_to_the_next_request(clients, users, fabric) -> None:
    operator = clients["operator"]
    assert operator.get("/api/audit/").status_code == 200
    assign_role(users["operator"], "viewer")  # groups.set(): m2m_changed
    assert operator.get("/api/audit/").status_code == 403
    assign_role(users["operator"], "operator")
    assert operator.get("/api/audit/").status_code == 200


def test_group_permission_removed_in_this_process_applies_at_once(clients, fabric) -> None:
    assert clients["viewer"].get("/api/devices/").status_code == 200
    Group.objects.get(name="viewer").permissions.remove(Permission.objects.get(codename="view_device"))
    assert clients["viewer"].get("/api/devices/").status_code == 403


def test_change_made_by_another_process_applies_within_the_ttl(clients, users, fabric, fresh_cache) -> None:
    operator = clients["operator"]
    assert operator.get("/api/audit/").status_code == 200
    revoke_elsewhere(users["operator"], "operator")
    fresh_cache["now"] += 4.9
    assert operator.get("/api/audit/").status_code == 200, "cached: the documented TTL"
    fresh_cache["now"] += 0.2
    assert operator.get("/api/audit/").status_code == 403
    assert operator.get("/api/devices/").status_code == 403, "no role left: not even a viewer"


def test_ttl_zero_reads_permissions_on_every_request(clients, users, fabric, monkeypatch) -> None:
    monkeypatch.setattr(permissions, "PERMISSION_CACHE_S", 0.0)
    assert clients["operator"].get("/api/audit/").status_code == 200
    revoke_elsewhere(users["operator"], "operator")
    assert clients["operator"].get("/api/audit/").status_code == 403


def test_one_users_permissions_never_answer_for_another(clients, fabric) -> None:
    for _ in range(3):
        assert clients["viewer"].get("/api/audit/").status_code == 403
        assert clients["operator"].get("/api/audit/").status_code == 200
        assert clients["nobody"].get("/api/devices/").status_code == 403
        assert clients["admin"].get("/api/users/").status_code == 200
        assert clients["operator"].get("/api/users/").status_code == 403


def test_user_row_changes_apply_at_once_even_from_another_process(clients, users, fabric) -> None:
    """is_active and is_superuser come with the token on every request, not from the cache."""
    viewer = clients["viewer"]
    assert viewer.get("/api/users/").status_code == 403
    type(users["viewer"]).objects.filter(pk=users["viewer"].pk).update(is_superuser=True)  # no signal
    assert viewer.get("/api/users/").status_code == 200
    type(users["viewer"]).objects.filter(pk=users["viewer"].pk).update(is_superuser=False)
    assert viewer.get("/api/users/").status_code == 403
    type(users["viewer"]).objects.filter(pk=users["viewer"].pk).update(is_active=False)
    assert viewer.get("/api/devices/").status_code == 401


def test_a_change_during_a_read_is_not_cached(clients, users, fabric, monkeypatch) -> None:
    """A set read before an invalidation must not be stored after it (it may predate the change)."""
    real = permissions.ModelBackend.get_group_permissions

    def read_then_change(self, user, obj=None):
        found = real(self, user, obj)
        permissions.clear_permission_cache()  # what a signal does in another thread of this process
        return found

    monkeypatch.setattr(permissions.ModelBackend, "get_group_permissions", read_then_change)
    assert clients["viewer"].get("/api/devices/").status_code == 200
    assert permissions._cache == {}


def test_an_action_is_checked_against_the_database_even_while_reads_are_cached(clients, users, fabric) -> None:
    """A revoked operator may still read for the TTL, but never acts on the network after revocation."""
    from fabric_ops.health.models import Incident

    incident = Incident.objects.create(kind="link-down", root_key="link:1", summary="link down", scope_kind="link",
                                       fabric="dx-fab-a", device="dx-a-leaf1")  # fmt: skip
    operator = clients["operator"]
    assert operator.get("/api/incidents/").status_code == 200  # the operator's set is now cached
    revoke_elsewhere(users["operator"], "operator")
    assert operator.get("/api/incidents/").status_code == 200, "reads: cached for the TTL"
    assert operator.post(f"/api/incidents/{incident.pk}/acknowledge/").status_code == 403
    assert Incident.objects.get(pk=incident.pk).acknowledged_at is None


def test_a_session_login_does_not_empty_the_cache(clients, users, fabric) -> None:
    """Every UI login saves the user's last_login: that changes no permission and must not cost every user's set."""
    from django.contrib.auth.models import update_last_login

    assert clients["viewer"].get("/api/devices/").status_code == 200
    assert permissions._cache
    update_last_login(None, users["operator"])
    assert permissions._cache
    users["operator"].save()  # any other save still clears it (the superuser flag, activation)
    assert permissions._cache == {}
