"""Incident actions through the API: acknowledge, resolve, approve, reject, roll back — the state rules (409),
404 for what does not exist, queueing to a worker (never executed in the request), and the audit rows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from fabric_ops.health.models import Cooldown, Incident, RemediationRun
from fabric_ops.web.models import AuditEntry

from .conftest import login
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


@pytest.mark.django_db(transaction=True)  # the task is sent once the request's transaction commits
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


@pytest.mark.django_db(transaction=True)
def test_actions_are_503_and_withdrawn_when_the_broker_is_down(clients, users, broker) -> None:
    """The audit row is written with the state check, the task sent on commit; when the broker does not take it,
    the caller gets 503 and a ``not-queued`` row withdraws the approval, so it can be given again at once."""
    from fabric_ops.celery import app
    from tests.web.conftest import _repoint

    incident = make_incident()
    waiting = make_run(incident, "awaiting-approval")
    url = f"/api/remediation-runs/{waiting.pk}/approve/"
    old = app.conf.broker_url
    _repoint("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        answer = clients["operator"].post(url)
    finally:
        _repoint(old)
    assert answer.status_code == 503 and "broker unreachable" in answer.json()["detail"]
    rows = list(AuditEntry.objects.order_by("id").values_list("action", "actor", "source"))
    assert rows == [("approve", "operator", "api"), ("not-queued", "operator", "api")]
    assert AuditEntry.objects.get(action="not-queued").changes == {"approve": ["queued", "not queued: broker "
                                                                              "unreachable"]}  # fmt: skip
    again = clients["operator"].post(url)
    assert again.status_code == 202, again.content
    assert queued(broker) == [("web.approve_remediation", [waiting.pk, "operator"])]


@pytest.mark.django_db(transaction=True)
def test_a_second_approval_is_refused_while_the_first_waits_for_a_worker(clients, users, broker, settings) -> None:
    incident = make_incident()
    waiting = make_run(incident, "awaiting-approval")
    url = f"/api/remediation-runs/{waiting.pk}/approve/"
    assert clients["operator"].post(url).status_code == 202
    second = clients["operator2"].post(url)
    assert second.status_code == 409, second.content
    assert "approval already queued by operator" in second.json()["detail"]
    assert clients["operator"].post(url).status_code == 409, "a double click of the same person too"
    assert queued(broker) == [("web.approve_remediation", [waiting.pk, "operator"])]
    assert AuditEntry.objects.filter(action="approve").count() == 1
    # The page: no second Approve button, the queued approval is shown; a forged second POST changes nothing.
    from django.urls import reverse

    page = login(users, "operator2")
    html = page.get(reverse("web:incident", args=[incident.pk])).content.decode()
    assert 'class="approve-run"' not in html and "approve queued by operator" in html
    refused = page.post(reverse("web:run-approve", args=[waiting.pk]), follow=True).content.decode()
    assert "approval already queued by operator" in refused
    assert len(queued(broker)) == 1 and AuditEntry.objects.filter(action="approve").count() == 1
    # A task lost on the way (nothing took it within FABRIC_OPS_WEB_QUEUED_ACTION_S): the approval may be given again.
    settings.FABRIC_OPS_WEB_QUEUED_ACTION_S = 0
    assert clients["operator2"].post(url).status_code == 202
    assert len(queued(broker)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_second_rollback_is_refused_while_the_first_is_queued_or_restoring(clients, users, broker) -> None:
    run = make_run(make_incident(status="mitigated"), "succeeded", drained=[3, 4])
    url = f"/api/remediation-runs/{run.pk}/rollback/"
    assert clients["operator"].post(url).status_code == 202
    second = clients["operator2"].post(url)
    assert second.status_code == 409 and "a rollback already queued by operator" in second.json()["detail"]
    assert queued(broker) == [("web.rollback_remediation", [run.pk, "operator"])]
    # The worker took it: its restore step runs -> still refused, naming it.
    step = run.actions.create(sequence=0, phase="restore", action="restore", target="link:1", status="running",
                              started_at=timezone.now(), params={"approved_by": "operator"})  # fmt: skip
    busy = clients["operator2"].post(url)
    assert busy.status_code == 409 and "already being restored" in busy.json()["detail"]
    # That restore failed (the link did not come up): a new rollback may be queued.
    step.status, step.finished_at = "failed", timezone.now()
    step.save()
    assert clients["operator2"].post(url).status_code == 202
    assert len(queued(broker)) == 2
    actors = list(AuditEntry.objects.filter(action="rollback").order_by("id").values_list("actor", flat=True))
    assert actors == ["operator", "operator2"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_queue_once(users, broker) -> None:
    """Two approvals at the same moment (PostgreSQL row lock): both wait while a third session holds the run's row
    and the audit table; once released, exactly one is queued and audited, the other refused. (Without the row
    lock both callers pass the state check before either writes its audit row, and both are queued.)"""
    import threading
    import time

    from django.db import connection, connections, transaction

    from fabric_ops.web import incident_actions

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    waiting = make_run(make_incident(), "awaiting-approval")
    outcomes: dict[str, str] = {}
    started = threading.Barrier(3)

    def approve(name: str) -> None:
        try:
            started.wait(timeout=10)
            incident_actions.approve(waiting.pk, users[name], source="api")
            outcomes[name] = "queued"
        except incident_actions.ActionRefused as exc:
            outcomes[name] = f"refused: {exc}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("operator", "operator2")]
    with transaction.atomic():
        RemediationRun.objects.select_for_update().get(pk=waiting.pk)  # hold the row: both callers queue up
        with connection.cursor() as cursor:  # and hold audit writes: without the row lock both would check first
            cursor.execute(f"LOCK TABLE {AuditEntry._meta.db_table} IN SHARE MODE")
        for thread in threads:
            thread.start()
        started.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until both wait on the lock (this test database's sessions only)
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")  # fmt: skip
                if cursor.fetchone()[0] >= 2:
                    break
            time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(v.split(":")[0] for v in outcomes.values()) == ["queued", "refused"], outcomes
    assert len(queued(broker)) == 1
    assert AuditEntry.objects.filter(action="approve").count() == 1


def test_notes_are_capped_like_the_api(clients, users) -> None:
    from django.urls import reverse

    from fabric_ops.web.incident_actions import NOTE_MAX

    incident = make_incident()
    url = f"/api/incidents/{incident.pk}/resolve/"
    assert clients["operator"].post(url, {"note": "x" * (NOTE_MAX + 1)}, format="json").status_code == 400
    page = login(users, "operator")
    html = page.get(reverse("web:incident", args=[incident.pk])).content.decode()
    assert f'maxlength="{NOTE_MAX}"' in html
    refused = page.post(reverse("web:incident-resolve", args=[incident.pk]), {"note": "y" * (NOTE_MAX + 1)},
                        follow=True).content.decode()  # fmt: skip
    assert f"note too long: {NOTE_MAX + 1} characters, at most {NOTE_MAX}" in refused
    waiting = make_run(incident, "awaiting-approval")
    page.post(reverse("web:run-reject", args=[waiting.pk]), {"note": "z" * (NOTE_MAX + 1)})
    waiting.refresh_from_db()
    incident.refresh_from_db()
    assert waiting.status == "awaiting-approval" and incident.status == "needs-human"
    assert AuditEntry.objects.count() == 0
    page.post(reverse("web:incident-resolve", args=[incident.pk]), {"note": "y" * NOTE_MAX})
    incident.refresh_from_db()
    assert incident.status == "resolved", "exactly the cap is accepted"


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


@pytest.mark.django_db(transaction=True)
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
    from django.urls import reverse

    incident = make_incident("port:dx-a-leaf1:Ethernet1/1", status="mitigated")
    make_port_run(incident, "p0", "disable-pfc", {"dx-a-leaf1": {"pfc_disabled_ports": ["Ethernet1/1"]}})
    operator = login(users, "operator")
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
