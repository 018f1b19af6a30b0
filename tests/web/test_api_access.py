"""Every endpoint, table-driven: anonymous gets 401, a user without the permission 403, the role that has it
succeeds, and every change writes an audit row (NetBox's APIViewTestCases pattern)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from fabric_ops.config.models import IntentAssignment, PushJob, RoceProfile, UnderlayProfile
from fabric_ops.health.models import Incident, RemediationRun
from fabric_ops.topology.models import Device, Fabric, Link, OpticalSpan, Site
from fabric_ops.web.api.urls import router
from fabric_ops.web.models import AuditEntry

# Users from least to most privileged; a row's `role` succeeds, every user before it gets 403.
LADDER = ["nobody", "viewer", "operator", "admin"]


@dataclass
class Row:
    name: str
    method: str
    url: Callable[[Any], str]
    role: str
    status: int | tuple[int, ...]
    body: Callable[[Any], dict] | None = None
    audit: str | None = None  # the audit action a success must write
    user: str | None = None  # who performs the successful call (default: role)
    setup: Callable[[Any], Any] | None = None
    uses: list[str] = field(default_factory=list)  # other fixtures needed (e.g. broker)


def dev(b, name="dx-a-leaf1") -> Device:
    return b.devices[name]


def incident() -> Incident:
    found = Incident.objects.first()
    if found is None:
        found = Incident.objects.create(kind="link-down", root_key="link:1", summary="link down", scope_kind="link",
                                        fabric="dx-fab-a", device="dx-a-leaf1")  # fmt: skip
        found.alarms.create(kind="link-down", device="dx-a-leaf1", message="oper down", seen_at=timezone.now())
    return found


def run(status: str = "succeeded") -> RemediationRun:
    found = RemediationRun.objects.filter(status=status).first()
    if found is not None:
        return found
    made = RemediationRun.objects.create(incident=incident(), playbook="link-flap", idempotency_key="i1-link-flap-1",
                                         target_key="link:1", status=status)  # fmt: skip
    made.actions.create(sequence=1, action="drain-link", target="link:1", diff="+ shutdown")
    return made


def drained_run() -> RemediationRun:
    """A verified drain still in place (what a rollback brings back up)."""
    found = RemediationRun.objects.filter(status="succeeded", playbook="link-down").first()
    if found is not None:
        return found
    made = RemediationRun.objects.create(incident=incident(), playbook="link-down", idempotency_key="i1-link-down-0",
                                         target_key="link:2", status="succeeded")  # fmt: skip
    made.actions.create(sequence=0, action="drain-link", target="link:2", status="done",
                        params={"undo": {"links": [2], "state": "up"}})  # fmt: skip
    return made


def user_pk(username: str) -> int:
    return get_user_model().objects.get(username=username).pk


def pending_job(b) -> PushJob:
    job = PushJob.objects.create(requested_by="operator", status="awaiting-approval", require_approval=True)
    job.devices.create(device=dev(b))
    return job


ROWS = [
    Row("api-root", "get", lambda b: "/api/", "nobody", 200),
    Row("me", "get", lambda b: "/api/me/", "nobody", 200),
    Row("users-list", "get", lambda b: "/api/users/", "admin", 200),
    Row("users-create", "post", lambda b: "/api/users/", "admin", 201,
        body=lambda b: {"username": "carol", "password": "a-long-passw0rd", "role": "operator"}, audit="create"),
    Row("users-update", "patch", lambda b: f"/api/users/{user_pk('viewer')}/", "admin", 200,
        body=lambda b: {"role": "operator"}, audit="update"),
    Row("users-delete", "delete", lambda b: f"/api/users/{user_pk('nobody')}/", "admin", 204, audit="delete"),
    Row("schema", "get", lambda b: "/api/schema/", "nobody", 200),
    Row("docs", "get", lambda b: "/api/docs/", "nobody", 200),
    Row("health", "get", lambda b: "/api/health/", "nobody", (200, 503), uses=["broker"]),
    Row("sites-list", "get", lambda b: "/api/sites/", "viewer", 200),
    Row("sites-detail", "get", lambda b: f"/api/sites/{Site.objects.first().pk}/", "viewer", 200),
    Row("fabrics-list", "get", lambda b: "/api/fabrics/?kind=rail-optimized", "viewer", 200),
    Row("fabrics-detail", "get", lambda b: f"/api/fabrics/{b.fabric.pk}/", "viewer", 200),
    Row("pods-list", "get", lambda b: "/api/pods/?fabric=dx-fab-a", "viewer", 200),
    Row("devices-list", "get", lambda b: "/api/devices/?fabric=dx-fab-a&role=leaf", "viewer", 200),
    Row("devices-detail", "get", lambda b: f"/api/devices/{dev(b).pk}/", "viewer", 200),
    Row("devices-drain", "patch", lambda b: f"/api/devices/{dev(b).pk}/", "operator", 200,
        body=lambda b: {"lifecycle": "drained"}, audit="update"),
    Row("interfaces-list", "get", lambda b: "/api/interfaces/?device=dx-a-leaf1", "viewer", 200),
    Row("links-list", "get", lambda b: "/api/links/?fabric=dx-fab-a&state=up", "viewer", 200),
    Row("links-drain", "patch", lambda b: f"/api/links/{b.links['dx-a-leaf1-dx-a-spine#1'].pk}/", "operator", 200,
        body=lambda b: {"state": "drained"}, audit="update"),
    Row("transceivers-list", "get", lambda b: "/api/transceivers/", "viewer", 200),
    Row("optical-spans-list", "get", lambda b: "/api/optical-spans/?site=dx-a", "viewer", 200),
    Row("optical-spans-state", "patch", lambda b: f"/api/optical-spans/{b.spans['north'].pk}/", "operator", 200,
        body=lambda b: {"state": "down"}, audit="update"),
    Row("optical-channels-list", "get", lambda b: "/api/optical-channels/?span=dx-north", "viewer", 200),
    Row("gpu-hosts-list", "get", lambda b: "/api/gpu-hosts/?fabric=dx-fab-a", "viewer", 200),
    Row("roce-profiles-list", "get", lambda b: "/api/roce-profiles/", "viewer", 200),
    Row("roce-profiles-create", "post", lambda b: "/api/roce-profiles/", "admin", 201,
        body=lambda b: {"name": "strict", "ecn_min_kbytes": 100, "ecn_max_kbytes": 900}, audit="create"),
    Row("roce-profiles-update", "patch", lambda b: f"/api/roce-profiles/{RoceProfile.objects.get().pk}/", "admin",
        200, body=lambda b: {"ecn_min_kbytes": 200}, audit="update"),
    Row("roce-profiles-delete", "delete", lambda b: f"/api/roce-profiles/{RoceProfile.objects.get().pk}/", "admin",
        204, audit="delete"),
    Row("underlay-profiles-list", "get", lambda b: "/api/underlay-profiles/", "viewer", 200),
    Row("underlay-profiles-create", "post", lambda b: "/api/underlay-profiles/", "admin", 201,
        body=lambda b: {"name": "fast", "bfd_interval_ms": 50}, audit="create"),
    Row("underlay-profiles-update", "patch", lambda b: f"/api/underlay-profiles/{UnderlayProfile.objects.get().pk}/",
        "admin", 200, body=lambda b: {"ecmp_width": 128}, audit="update"),
    Row("underlay-profiles-delete", "delete",
        lambda b: f"/api/underlay-profiles/{UnderlayProfile.objects.get().pk}/", "admin", 204, audit="delete"),
    Row("intent-assignments-list", "get", lambda b: "/api/intent-assignments/?fabric=dx-fab-a", "viewer", 200),
    Row("intent-assignments-create", "post", lambda b: "/api/intent-assignments/", "admin", 201,
        body=lambda b: {"fabric": b.fabric.pk, "role": "leaf", "roce_profile": RoceProfile.objects.get().pk,
                        "overrides": {"ecn_min_kbytes": 120}}, audit="create"),
    Row("intent-assignments-update", "patch", lambda b: f"/api/intent-assignments/{IntentAssignment.objects.get().pk}/",
        "admin", 200, body=lambda b: {"overrides": {"ecn_min_kbytes": 300}}, audit="update",
        setup=lambda b: IntentAssignment.objects.create(fabric=b.fabric)),
    Row("intent-assignments-delete", "delete",
        lambda b: f"/api/intent-assignments/{IntentAssignment.objects.get().pk}/", "admin", 204, audit="delete",
        setup=lambda b: IntentAssignment.objects.create(fabric=b.fabric)),
    Row("push-jobs-list", "get", lambda b: "/api/push-jobs/?status=succeeded", "viewer", 200),
    Row("push-jobs-detail", "get", lambda b: f"/api/push-jobs/{PushJob.objects.first().pk}/", "viewer", 200),
    Row("push-jobs-create", "post", lambda b: "/api/push-jobs/", "operator", 202,
        body=lambda b: {"devices": ["dx-a-leaf1", "dx-a-leaf2"], "dry_run": True}, audit="create", uses=["broker"]),
    Row("push-jobs-approve", "post", lambda b: f"/api/push-jobs/{PushJob.objects.get(status='awaiting-approval').pk}"
        "/approve/", "operator", 202, audit="approve", user="operator2", setup=pending_job, uses=["broker"]),
    Row("device-jobs-list", "get", lambda b: "/api/device-jobs/?device=dx-a-leaf1", "viewer", 200),
    Row("config-backups-list", "get", lambda b: "/api/config-backups/?fabric=dx-fab-a", "viewer", 200),
    Row("compliance-results-list", "get", lambda b: "/api/compliance-results/?compliant=true", "viewer", 200),
    Row("audit-list", "get", lambda b: "/api/audit/", "operator", 200),
    Row("incidents-list", "get", lambda b: "/api/incidents/?status=open&fabric=dx-fab-a", "viewer", 200,
        setup=lambda b: incident()),
    Row("incidents-detail", "get", lambda b: f"/api/incidents/{incident().pk}/", "viewer", 200),
    Row("alarms-list", "get", lambda b: f"/api/alarms/?incident={incident().pk}", "viewer", 200),
    Row("remediation-runs-list", "get", lambda b: "/api/remediation-runs/?status=succeeded", "viewer", 200,
        setup=lambda b: run()),
    Row("remediation-runs-approve", "post", lambda b: f"/api/remediation-runs/{run('awaiting-approval').pk}/approve/",
        "operator", 202, audit="approve", uses=["broker"]),
    Row("remediation-runs-reject", "post", lambda b: f"/api/remediation-runs/{run('awaiting-approval').pk}/reject/",
        "operator", 200, body=lambda b: {"note": "not during the training run"}, audit="reject"),
    Row("remediation-runs-rollback", "post", lambda b: f"/api/remediation-runs/{drained_run().pk}/rollback/",
        "operator", 202, audit="rollback", uses=["broker"]),
    Row("incidents-acknowledge", "post", lambda b: f"/api/incidents/{incident().pk}/acknowledge/", "operator", 200,
        audit="acknowledge"),
    Row("incidents-resolve", "post", lambda b: f"/api/incidents/{incident().pk}/resolve/", "operator", 200,
        body=lambda b: {"note": "optic replaced"}, audit="resolve"),
    Row("remediation-actions-list", "get", lambda b: "/api/remediation-actions/?phase=act", "viewer", 200,
        setup=lambda b: run()),
    Row("topology-graph", "get", lambda b: "/api/topology/dx-fab-a/graph/", "viewer", 200),
    Row("topology-what-if", "post", lambda b: "/api/topology/dx-fab-a/what-if/", "viewer", 200,
        body=lambda b: {"devices": ["dx-a-spine"]}),
    Row("lab-status", "get", lambda b: "/api/lab/", "viewer", 503),
    Row("lab-inject", "post", lambda b: "/api/lab/inject/", "operator", 503,
        body=lambda b: {"kind": "link-down", "target": "dx-a-leaf1:Ethernet1/1"}),
    Row("lab-clear", "post", lambda b: "/api/lab/clear/", "operator", 503, body=lambda b: {"all": True}),
]  # fmt: skip


@pytest.fixture(autouse=True)
def no_lab(settings, tmp_path):
    """No lab control file: the lab endpoints must say 503, not guess."""
    settings.VAR_DIR = tmp_path


def call(client, row: Row, built) -> Any:
    body = row.body(built) if row.body else None
    return getattr(client, row.method)(row.url(built), body, format="json") if body is not None else \
        getattr(client, row.method)(row.url(built))  # fmt: skip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_endpoint_access(row: Row, request, clients, fabric) -> None:
    for name in row.uses:
        request.getfixturevalue(name)
    if row.setup:
        row.setup(fabric)
    expected = row.status if isinstance(row.status, tuple) else (row.status,)

    anonymous = call(clients["anonymous"], row, fabric)
    assert anonymous.status_code == 401, anonymous.content
    assert "WWW-Authenticate" in anonymous
    before = AuditEntry.objects.count()
    for weaker in LADDER[: LADDER.index(row.role)]:
        denied = call(clients[weaker], row, fabric)
        assert denied.status_code == 403, (weaker, denied.content)
    assert AuditEntry.objects.count() == before, "a refused request wrote an audit row"

    answer = call(clients[row.user or row.role], row, fabric)
    assert answer.status_code in expected, answer.content
    written = list(AuditEntry.objects.order_by("id")[before:])
    if row.audit:
        assert [e.action for e in written] == [row.audit]
        entry = written[0]
        assert entry.actor == (row.user or row.role)
        assert entry.source == "api"
        assert entry.source_ip == "127.0.0.1"
        assert entry.request_id == answer["X-Request-ID"]
        if row.method != "post" or row.name.endswith("create"):
            assert entry.changes, "an audited change records what changed"
    else:
        assert written == [], "a read wrote an audit row"


def test_live_needs_no_login(clients) -> None:
    answer = clients["anonymous"].get("/api/health/live/")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def _paths(resolver: URLResolver, prefix: str = "") -> list[str]:
    out = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            out += _paths(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            out.append(prefix + str(entry.pattern))
    return out


def test_every_endpoint_is_in_the_table() -> None:
    """A new viewset or view without a row in ROWS fails here."""
    covered = {r.name.rsplit("-", 1)[0] for r in ROWS} | {r.name for r in ROWS}
    for prefix, _viewset, _basename in router.registry:
        assert prefix in covered, f"/api/{prefix}/ has no access row"
    api_views = {p for p in _paths(get_resolver()) if p.startswith("api/") and "<" not in p.split("/")[1][:1]}
    plain = {"api/me/", "api/health/", "api/health/live/", "api/lab/", "api/lab/inject/", "api/lab/clear/",
             "api/schema/", "api/docs/", "api/topology/<slug:fabric>/graph/",
             "api/topology/<slug:fabric>/what-if/"}  # fmt: skip
    assert plain <= api_views
    names = {r.name for r in ROWS} | {"health-live"}
    for path in plain:
        key = path.removeprefix("api/").strip("/").replace("<slug:fabric>/", "").replace("/", "-")
        key = {"health-live": "health-live", "lab": "lab-status"}.get(key, key)
        assert key in names, f"{path} has no access row"


def test_denied_detail_does_not_leak_existence(clients, fabric) -> None:
    """Without permission, an existing and a missing object answer the same 403."""
    present = clients["nobody"].get(f"/api/devices/{Device.objects.first().pk}/")
    missing = clients["nobody"].get("/api/devices/999999/")
    assert present.status_code == missing.status_code == 403
    assert clients["anonymous"].get("/api/devices/999999/").status_code == 401


def test_topology_is_read_only_except_drain_fields(clients, fabric) -> None:
    leaf = dev(fabric)
    admin = clients["admin"]
    answer = admin.patch(f"/api/devices/{leaf.pk}/", {"hostname": "renamed", "mgmt_address": "127.1.1.1"},
                         format="json")  # fmt: skip
    assert answer.status_code == 200
    leaf.refresh_from_db()
    assert leaf.hostname == "dx-a-leaf1" and leaf.mgmt_address is None
    assert admin.post("/api/devices/", {"hostname": "x"}, format="json").status_code == 405
    assert admin.delete(f"/api/devices/{leaf.pk}/").status_code == 405
    assert admin.put(f"/api/devices/{leaf.pk}/", {"lifecycle": "drained"}, format="json").status_code == 405
    assert admin.post("/api/fabrics/", {"name": "x"}, format="json").status_code == 405
    link = fabric.links["dx-a-leaf1-dx-a-spine#1"]
    assert admin.patch(f"/api/links/{link.pk}/", {"capacity_gbps": 1}, format="json").status_code == 200
    link.refresh_from_db()
    assert link.capacity_gbps == 400
    assert AuditEntry.objects.count() == 0, "a PATCH that changed nothing is not an audited change"
    assert Fabric.objects.count() == 3 and Link.objects.count() > 0 and OpticalSpan.objects.count() == 2
