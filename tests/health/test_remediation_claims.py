"""Who executes what: an approval executes exactly the run that was approved (never a playbook selected anew), and
of two concurrent restores of one run exactly one pushes (the other is told the run is being restored).

The approval tests need no switch: their playbooks notify, or are refused before anything is pushed. The restore
test runs two real restore() calls in two threads against PostgreSQL and pushes to the lab (the fixture of
test_remediation_actions_lab: the sjc-ai fabric on 127.26.0.0/16).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from fabric_ops.config.models import IntentAssignment
from fabric_ops.config.models.jobs import DeviceStatus, PushJob
from fabric_ops.devices.locks import device_lock
from fabric_ops.errors import FabricOpsError
from fabric_ops.health.choices import IncidentStatus, Mode, RunStatus
from fabric_ops.health.models import Incident, RemediationRun
from fabric_ops.health.playbooks import Action, Playbook
from fabric_ops.health.remediation import (
    RestoreInProgress,
    RunInFlight,
    _claim_restore,
    approve,
    remediate,
    restore,
)
from fabric_ops.health.topology import load_index

from .test_remediation_actions_lab import HOST_PORT, LEAF, devices, lab, push, running  # noqa: F401

PORT_TARGET = f"port:{LEAF}:{HOST_PORT}"


def storm_incident(device: str = "", interface: str = "") -> Incident:
    return Incident.objects.create(kind="pfc-storm", root_key=f"port:{device or 'x'}:{interface or 'y'}",
                                   scope_kind="interface", device=device, interface=interface,
                                   status=IncidentStatus.NEEDS_HUMAN, summary="PFC storm")  # fmt: skip


def book(name: str, *actions: Action, priority: int = 100, after: tuple[str, ...] = (), **kw) -> Playbook:
    return Playbook(name=name, source="test", kinds=("pfc-storm",), actions=actions, priority=priority, after=after,
                    mode=Mode.APPROVE, verification=None, **kw)  # fmt: skip


def waiting(incident: Incident, playbook: str, attempt: int, target: str) -> RemediationRun:
    return RemediationRun.objects.create(incident=incident, playbook=playbook, mode=Mode.APPROVE,
                                         idempotency_key=f"incident-{incident.pk}:{playbook}:{attempt}",
                                         target_key=target, status=RunStatus.AWAITING_APPROVAL)  # fmt: skip


@pytest.mark.django_db
def test_approval_executes_the_approved_run_even_when_an_escalation_would_now_be_selected() -> None:
    incident = storm_incident()
    # watchdog acted earlier; the approved run is "ask-first"; an escalation step (higher priority, after the
    # watchdog) would be selected if the playbook were chosen again — the person never saw it.
    RemediationRun.objects.create(incident=incident, playbook="watchdog", idempotency_key=f"incident-{incident.pk}:"
                                  "watchdog:0", target_key="device:x", status=RunStatus.FAILED)  # fmt: skip
    escalate = book("escalate", Action("notify", {"message": "escalated"}), priority=10, after=("watchdog",))
    books = [book("ask-first", Action("notify", {"message": "asked"})), escalate]
    approved = waiting(incident, "ask-first", 1, f"incident:{incident.pk}")

    run = approve(approved.pk, "alice", playbooks=books, index=load_index(max_age=0))
    assert run.pk == approved.pk
    run.refresh_from_db()
    assert (run.playbook, run.status, run.approved_by) == ("ask-first", RunStatus.SUCCEEDED, "alice")
    assert list(run.actions.values_list("phase", "action", "status")) == [("act", "notify", "done")]
    assert "asked" in run.actions.get().result
    assert not RemediationRun.objects.filter(playbook="escalate").exists()
    with pytest.raises(FabricOpsError, match="not awaiting approval"):
        approve(approved.pk, "bob", playbooks=books)  # a second approval executes nothing


@pytest.mark.django_db
def test_a_run_waiting_for_approval_is_executed_by_approve_only() -> None:
    incident = storm_incident()
    books = [book("ask-first", Action("notify", {"message": "asked"}))]
    approved = waiting(incident, "ask-first", 0, f"incident:{incident.pk}")
    assert remediate(incident.pk, playbooks=books).pk == approved.pk  # a re-delivered task leaves it waiting
    approved.refresh_from_db()
    assert approved.status == RunStatus.AWAITING_APPROVAL and not approved.actions.exists()


@pytest.mark.django_db
def test_approval_fails_the_run_clearly_when_a_guardrail_refuses_now() -> None:
    incident = storm_incident("sjc-leaf9", "Ethernet1/1")
    watchdog = Action("pfc-watchdog", {"detection_ms": 100})
    books = [book("arm-watchdog", watchdog, guardrails={"max_actions_per_window": 0})]  # the rate limit is used up
    approved = waiting(incident, "arm-watchdog", 0, "device:sjc-leaf9")
    run = approve(approved.pk, "alice", playbooks=books, index=load_index(max_age=0))
    run.refresh_from_db()
    assert run.pk == approved.pk and run.status == RunStatus.REFUSED and not run.approved_by
    assert run.reason.startswith("guardrail refused: ") and "actions" in run.reason
    assert not run.actions.exists()  # nothing was changed or pushed
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.NEEDS_HUMAN and incident.reason == run.reason

    gone = waiting(incident, "arm-watchdog", 1, "device:sjc-leaf9")
    approve(gone.pk, "alice", playbooks=[], index=load_index(max_age=0))
    gone.refresh_from_db()
    assert gone.status == RunStatus.REFUSED and "playbook 'arm-watchdog' no longer exists" in gone.reason


@pytest.mark.django_db
def test_a_redelivered_approval_resumes_the_approved_run_once_its_worker_is_gone(settings) -> None:
    settings.FABRIC_OPS_HEALTH_STALE_RUN_S = 60
    incident = storm_incident()
    books = [book("ask-first", Action("notify", {"message": "asked"}))]
    approved = waiting(incident, "ask-first", 0, f"incident:{incident.pk}")
    RemediationRun.objects.filter(pk=approved.pk).update(status=RunStatus.RUNNING, approved_by="alice",
                                                          heartbeat_at=timezone.now())  # fmt: skip
    with pytest.raises(RunInFlight):
        approve(approved.pk, "alice", playbooks=books)  # its worker still lives
    with pytest.raises(FabricOpsError, match="not awaiting approval"):
        approve(approved.pk, "bob", playbooks=books)  # not someone else's approval
    RemediationRun.objects.filter(pk=approved.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    run = approve(approved.pk, "alice", playbooks=books, index=load_index(max_age=0))
    run.refresh_from_db()
    assert (run.pk, run.status, run.approved_by) == (approved.pk, RunStatus.SUCCEEDED, "alice")
    assert run.actions.get().status == "done"


@pytest.mark.django_db
def test_a_restore_claim_left_running_by_a_dead_worker_is_taken_over_after_the_stale_time(settings) -> None:
    settings.FABRIC_OPS_HEALTH_STALE_RESTORE_S = 300
    incident = storm_incident(LEAF, HOST_PORT)
    run = RemediationRun.objects.create(incident=incident, playbook="pfc-storm-persistent", status=RunStatus.SUCCEEDED,
                                        idempotency_key="k", target_key=PORT_TARGET)  # fmt: skip
    first = _claim_restore(run, "beat")
    assert (first.sequence, first.status, first.params) == (0, "running", {"approved_by": "beat"})
    with pytest.raises(RestoreInProgress, match=r"already being restored .* by beat"):
        _claim_restore(run, "alice")
    run.actions.filter(pk=first.pk).update(started_at=timezone.now() - timedelta(seconds=301))  # its worker died
    second = _claim_restore(run, "alice")
    first.refresh_from_db()
    assert first.status == "failed" and first.result.startswith("abandoned")
    assert (second.sequence, second.status) == (1, "running")
    RemediationRun.objects.filter(pk=run.pk).update(status=RunStatus.RESTORED, restored_at=timezone.now())
    assert _claim_restore(run, "bob") is None  # restored meanwhile: nothing to claim


@pytest.mark.django_db(transaction=True)
@pytest.mark.lab
@pytest.mark.timeout(300)
def test_two_concurrent_restores_of_a_pfc_off_run_push_once(lab) -> None:  # noqa: F811
    device = devices(LEAF)[0]
    IntentAssignment.objects.create(fabric=device.fabric, device=device,
                                    overrides={"pfc_disabled_ports": [HOST_PORT]})  # fmt: skip
    push(LEAF)
    block = running(LEAF).split(f"interface {HOST_PORT}\n", 1)[1].split("!", 1)[0]
    assert "priority-flow-control priority 3 drop" in block
    incident = storm_incident(LEAF, HOST_PORT)
    Incident.objects.filter(pk=incident.pk).update(status=IncidentStatus.MITIGATED)
    run = RemediationRun.objects.create(incident=incident, playbook="pfc-storm-persistent", status=RunStatus.SUCCEEDED,
                                        idempotency_key=f"incident-{incident.pk}:pfc-storm-persistent:1",
                                        target_key=PORT_TARGET, verified_at=timezone.now())  # fmt: skip
    undo = {"ports": {LEAF: {"pfc_disabled_ports": [HOST_PORT]}}}
    run.actions.create(sequence=0, phase="act", action="disable-pfc", target=PORT_TARGET, status="done",
                       params={"undo": undo})  # fmt: skip

    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def call(who: str) -> None:
        try:
            barrier.wait(30)
            results[who] = restore(run.pk, approved_by=who)
        except Exception as exc:  # the outcome is what the test checks
            results[who] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(who,)) for who in ("beat", "alice")]
    # Hold the switch's lock (as another push job would): the restore that got the claim waits in its push, so the
    # other call certainly arrives while the first is in the middle of its restore.
    with device_lock(LEAF, "test: another job", ttl_seconds=120):
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while not results and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(results) == 1, results
        [(loser, told)] = results.items()
        assert isinstance(told, RestoreInProgress) and "already being restored" in str(told), told
    for t in threads:
        t.join(120)
    winner = next(who for who in ("beat", "alice") if who != loser)
    restored = results[winner]
    assert isinstance(restored, RemediationRun) and restored.status == RunStatus.RESTORED, restored

    [step] = run.actions.filter(phase="restore")
    assert step.status == "done" and step.params["approved_by"] == winner
    applied = PushJob.objects.filter(devices__status=DeviceStatus.CONFIRMED, reason__contains="restore")
    assert applied.count() == 1 and applied.get() == step.push_job  # one restore pushed; the other did nothing
    assert "pfc_disabled_ports" not in IntentAssignment.objects.get(device=device).overrides
    block = running(LEAF).split(f"interface {HOST_PORT}\n", 1)[1].split("!", 1)[0]
    assert "priority-flow-control priority 3 no-drop" in block
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert restore(run.pk, approved_by="bob").status == RunStatus.RESTORED  # later: the run as it is, nothing more
    assert run.actions.filter(phase="restore").count() == 1
