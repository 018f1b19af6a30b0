"""Incident actions through the API: acknowledge, resolve, approve, reject, roll back — the state rules (409),
404 for what does not exist, queueing to a worker (never executed in the request), and the audit rows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from fabric_ops.health.models import Cooldown, Incident, RemediationRun
from fabric_ops.web.models import AuditEntry

from .test_push_jobs import queued

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def make_incident(key: str = "link:1", status: str = "needs-human") -> Incident:
    return Incident.objects.create(kind="link-down", root_key=key, status=status, summary=f"{key} down",
                                   scope_kind="link", fabric="dx-fab-a", device="dx-a-leaf1")  # fmt: skip


def make_run(incident: Incident, status: str, key: str = "k0", *, drained: list[int] | None = None) -> RemediationRun:
    run = RemediationRun.objects.create(incident=incident, playbook="link-flap", idempotency_key=key,
                                        target_key=incident.root_key, status=status, mode="approve")  # fmt: skip
    if drained is not None:
        undo = {"undo": {"links": drained, "state": "up"}}
        run.actions.create(sequence=0, action="drain-link", target=incident.root_key, status="done", params=undo,
                           diff="interface Et1\n   shutdown")  # fmt: skip
    return run


def test_missing_objects_are_404_for_operators_and_403_for_viewers(clients, users) -> None:
    for url in ("/api/incidents/99999/acknowledge/", "/api/incidents/99999/resolve/",
                "/api/remediation-runs/99999/reject/", "/api/remediation-runs/99999/rollback/",
                "/api/remediation-runs/99999/approve/"):  # fmt: skip
        assert clients["operator"].post(url, {"note": "x"}, format="json").status_code == 404, url
        assert clients["viewer"].post(url, {"note": "x"}, format="json").status_code == 403, url
        assert clients["anonymous"].post(url, {"note": "x"}, format="json").status_code == 401, url
    assert AuditEntry.objects.count() == 0


def test_acknowledge_records_who_and_when_once(clients, users) -> None:
    incident = make_incident()
    answer = clients["operator"].post(f"/api/incidents/{incident.pk}/acknowledge/")
    assert answer.status_code == 200, answer.content
    incident.refresh_from_db()
    assert incident.acknowledged_by == "operator"
    assert abs((timezone.now() - incident.acknowledged_at).total_seconds()) < 30
    again = clients["operator2"].post(f"/api/incidents/{incident.pk}/acknowledge/")
    assert again.status_code == 409 and "acknowledged by operator" in again.json()["detail"]
    resolved = make_incident("link:2", status="resolved")
    assert clients["operator"].post(f"/api/incidents/{resolved.pk}/acknowledge/").status_code == 409
    unowned = clients["viewer"].get("/api/incidents/?acknowledged_at__isnull=true").json()["results"]
    owned = clients["viewer"].get("/api/incidents/?acknowledged_by=operator").json()["results"]
    assert [i["id"] for i in unowned] == [resolved.pk] and [i["id"] for i in owned] == [incident.pk]
    [entry] = AuditEntry.objects.filter(action="acknowledge")
    assert (entry.actor, entry.source, entry.object_type) == ("operator", "api", "health.incident")
    assert entry.changes["acknowledged_by"] == ["", "operator"]


def test_resolve_needs_a_note_and_no_remediation_in_place(clients, users) -> None:
    incident = make_incident()
    url = f"/api/incidents/{incident.pk}/resolve/"
    assert clients["operator"].post(url, {}, format="json").status_code == 400
    assert clients["operator"].post(url, {"note": "  "}, format="json").status_code == 400
    busy = make_run(incident, "running", "k1")
    refused = clients["operator"].post(url, {"note": "fixed"}, format="json")
    assert refused.status_code == 409 and "still acting" in refused.json()["detail"]
    busy.status = "succeeded"
    busy.save()
    make_run(incident, "succeeded", "k2", drained=[5])
    drained = clients["operator"].post(url, {"note": "fixed"}, format="json")
    assert drained.status_code == 409 and "roll back first" in drained.json()["detail"]
    assert AuditEntry.objects.count() == 0 and Incident.objects.get().status == "needs-human"


def test_resolve_rejects_a_run_waiting_for_approval(clients, users) -> None:
    incident = make_incident()
    waiting = make_run(incident, "awaiting-approval")
    answer = clients["operator"].post(f"/api/incidents/{incident.pk}/resolve/", {"note": "optic reseated"},
                                      format="json")  # fmt: skip
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "resolved" and "resolved by operator: optic reseated" in answer.json()["reason"]
    waiting.refresh_from_db()
    assert (waiting.status, waiting.rejected_by) == ("refused", "operator")
    [entry] = AuditEntry.objects.filter(action="resolve")
    assert entry.changes["status"] == ["needs-human", "resolved"] and entry.changes["runs_rejected"] == [
        [],
        [waiting.pk],
    ]
    again = clients["operator"].post(f"/api/incidents/{incident.pk}/resolve/", {"note": "x"}, format="json")
    assert again.status_code == 409


def test_reject_declines_the_run_and_cools_the_playbook_down(clients, users) -> None:
    incident = make_incident()
    waiting = make_run(incident, "awaiting-approval")
    answer = clients["operator"].post(f"/api/remediation-runs/{waiting.pk}/reject/",
                                      {"note": "not during the training run"}, format="json")  # fmt: skip
    assert answer.status_code == 200, answer.content
    waiting.refresh_from_db()
    assert (waiting.status, waiting.rejected_by) == ("refused", "operator") and waiting.rejected_at
    assert waiting.reason == "rejected by operator: not during the training run"
    cooldown = Cooldown.objects.get(playbook="link-flap", target_key="link:1")
    assert cooldown.until > timezone.now()
    incident.refresh_from_db()
    assert incident.status == "needs-human" and "rejected by operator" in incident.reason
    assert clients["operator"].post(f"/api/remediation-runs/{waiting.pk}/reject/").status_code == 409
    [entry] = AuditEntry.objects.filter(action="reject")
    assert entry.object_type == "health.remediationrun" and entry.changes["status"] == ["awaiting-approval", "refused"]


def test_rollback_is_queued_for_a_worker_only_while_a_drain_is_in_place(clients, users, broker) -> None:
    incident = make_incident(status="mitigated")
    intent_only = make_run(incident, "succeeded", "k1")
    refused = clients["operator"].post(f"/api/remediation-runs/{intent_only.pk}/rollback/")
    assert refused.status_code == 409 and "no drain" in refused.json()["detail"]
    drain = make_run(incident, "succeeded", "k2", drained=[3, 4])
    answer = clients["operator"].post(f"/api/remediation-runs/{drain.pk}/rollback/")
    assert answer.status_code == 202, answer.content
    assert queued(broker) == [("web.rollback_remediation", [drain.pk, "operator"])]
    drain.refresh_from_db()
    assert drain.status == "succeeded" and drain.restored_at is None, "nothing is pushed in the request"
    [entry] = AuditEntry.objects.filter(action="rollback")
    assert entry.changes == {"links": [[3, 4], [3, 4]], "state": ["drained", "up"]}
    drain.restored_at = timezone.now()
    drain.save()
    assert clients["operator"].post(f"/api/remediation-runs/{drain.pk}/rollback/").status_code == 409


def test_actions_are_503_and_unaudited_when_the_broker_is_down(clients, users) -> None:
    from fabric_ops.celery import app
    from tests.web.conftest import _repoint

    incident = make_incident()
    waiting = make_run(incident, "awaiting-approval")
    old = app.conf.broker_url
    _repoint("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        answer = clients["operator"].post(f"/api/remediation-runs/{waiting.pk}/approve/")
    finally:
        _repoint(old)
    assert answer.status_code == 503 and "broker unreachable" in answer.json()["detail"]
    assert AuditEntry.objects.count() == 0


def test_rollback_task_reports_what_restore_refuses(users) -> None:
    """The worker side is health's restore(): a run with nothing drained is refused, never half-done."""
    from fabric_ops.web.tasks import rollback_remediation

    run = make_run(make_incident(status="mitigated"), "succeeded")
    assert rollback_remediation.run(run.pk, "operator").startswith("failed: ")
    run.refresh_from_db()
    assert run.status == "succeeded" and run.restored_at is None


def make_port_run(incident: Incident, key: str, action: str, ports: dict[str, dict[str, list[str]]],
                  links: list[int] | None = None) -> RemediationRun:  # fmt: skip
    """A verified run whose undo holds per-port overrides (disable-pfc; cost-out also names its links, unshut)."""
    run = RemediationRun.objects.create(incident=incident, playbook=action, idempotency_key=key, status="succeeded",
                                        target_key=incident.root_key, verified_at=timezone.now())  # fmt: skip
    undo = {"ports": ports, **({"links": links, "state": None} if links is not None else {})}
    run.actions.create(sequence=0, action=action, target=incident.root_key, status="done", params={"undo": undo})
    return run


def test_a_pfc_disable_holds_the_resolve_and_is_rolled_back_like_a_drain(clients, users, broker) -> None:
    incident = make_incident("port:dx-a-leaf1:Ethernet1/1", status="mitigated")
    pfc = make_port_run(incident, "p0", "disable-pfc", {"dx-a-leaf1": {"pfc_disabled_ports": ["Ethernet1/1"]}})
    resolve_url = f"/api/incidents/{incident.pk}/resolve/"
    refused = clients["operator"].post(resolve_url, {"note": "NIC replaced"}, format="json")
    detail = refused.json()["detail"]
    assert refused.status_code == 409 and "roll back first" in detail, detail
    assert f"remediation run {pfc.pk}: PFC off on dx-a-leaf1:Ethernet1/1" in detail
    assert Incident.objects.get(pk=incident.pk).status == "mitigated" and AuditEntry.objects.count() == 0

    answer = clients["operator"].post(f"/api/remediation-runs/{pfc.pk}/rollback/")
    assert answer.status_code == 202, answer.content
    assert queued(broker) == [("web.rollback_remediation", [pfc.pk, "operator"])]
    [entry] = AuditEntry.objects.filter(action="rollback")
    assert entry.changes == {"pfc_disabled_ports": [["dx-a-leaf1:Ethernet1/1"], []]}
    pfc.refresh_from_db()
    assert pfc.status == "succeeded" and pfc.restored_at is None, "nothing is pushed in the request"

    pfc.status, pfc.restored_at = "restored", timezone.now()  # what the worker's restore does
    pfc.save()
    assert clients["operator"].post(f"/api/remediation-runs/{pfc.pk}/rollback/").status_code == 409
    done = clients["operator"].post(resolve_url, {"note": "NIC replaced"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "resolved", done.content


def test_a_cost_out_in_force_holds_the_resolve_too(clients, users) -> None:
    incident = make_incident("link:7", status="mitigated")
    ports = {"dx-a-leaf1": {"bgp_cost_out": ["Ethernet5/1"]}, "dx-a-spine1": {"bgp_cost_out": ["400GE1/0/1"]}}
    run = make_port_run(incident, "c0", "cost-out-link", ports, links=[7])
    refused = clients["operator"].post(f"/api/incidents/{incident.pk}/resolve/", {"note": "x"}, format="json")
    detail = refused.json()["detail"]
    assert refused.status_code == 409 and "roll back first" in detail
    assert "costed-out BGP session(s) on dx-a-leaf1:Ethernet5/1, dx-a-spine1:400GE1/0/1" in detail
    assert "drained link" not in detail, "a cost-out never shut the link"
    assert f"remediation run {run.pk}" in detail


def test_the_incident_page_offers_the_rollback_of_a_pfc_disable(users) -> None:
    from django.test import Client
    from django.urls import reverse

    incident = make_incident("port:dx-a-leaf1:Ethernet1/1", status="mitigated")
    make_port_run(incident, "p0", "disable-pfc", {"dx-a-leaf1": {"pfc_disabled_ports": ["Ethernet1/1"]}})
    operator = Client()
    operator.force_login(users["operator"])
    page = operator.get(reverse("web:incident", args=[incident.pk])).content.decode()
    assert 'class="rollback-run"' in page


def test_rollback_task_while_a_restore_of_the_run_runs_changes_nothing(users) -> None:
    """A double click queues two rollbacks: the second finds the first's restore step running and leaves it be."""
    from fabric_ops.web.tasks import rollback_remediation

    run = make_run(make_incident(status="mitigated"), "succeeded", drained=[3])
    step = run.actions.create(sequence=0, phase="restore", action="restore-link", target="link:1", status="running",
                              started_at=timezone.now(), params={"approved_by": "alice"})  # fmt: skip
    outcome = rollback_remediation.run(run.pk, "operator")
    assert outcome.startswith("in progress: ") and "already being restored" in outcome and "alice" in outcome
    assert list(run.actions.filter(phase="restore").values_list("pk", "status")) == [(step.pk, "running")]
    run.refresh_from_db()
    assert run.status == "succeeded" and run.restored_at is None
