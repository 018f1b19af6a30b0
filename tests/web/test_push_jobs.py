"""Push jobs through the API: selection rules, queueing through the real Redis broker after commit, approval."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import transaction

from fabric_ops.config.models import DeviceJob, PushJob
from fabric_ops.web.api.viewsets import enqueue_push
from fabric_ops.web.models import AuditEntry

from .conftest import _repoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def queued(broker) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in Celery's default queue, oldest first."""
    out = []
    for raw in reversed(broker.lrange("celery", 0, -1)):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


def test_create_queues_the_job_after_commit(clients, fabric, broker) -> None:
    answer = clients["operator"].post(
        "/api/push-jobs/", {"devices": ["dx-a-leaf1", "dx-a-leaf2"], "dry_run": True, "reason": "ecn"}, format="json"
    )
    assert answer.status_code == 202, answer.content
    body = answer.json()
    job = PushJob.objects.get(pk=body["id"])
    assert (job.status, job.dry_run, job.requested_by, job.user.username) == ("pending", True, "operator", "operator")
    assert body["device_count"] == 2
    assert sorted(DeviceJob.objects.filter(job=job).values_list("device__hostname", flat=True)) == [
        "dx-a-leaf1",
        "dx-a-leaf2",
    ]
    assert queued(broker) == [("config.run_push_job", [job.pk])]
    entry = AuditEntry.objects.get(action="create", object_type="fabricconfig.pushjob")
    assert entry.changes["devices"] == [None, ["dx-a-leaf1", "dx-a-leaf2"]]
    assert entry.changes["dry_run"] == [None, True]


def test_nothing_is_queued_when_the_transaction_rolls_back(fabric, broker) -> None:
    job = PushJob.objects.create(requested_by="operator")
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_push(job.pk)
        assert queued(broker) == [], "queued before commit: a worker could look for a row it cannot see"
        raise RuntimeError("abort")
    assert queued(broker) == []
    with transaction.atomic():
        enqueue_push(job.pk)
        assert queued(broker) == []
    assert queued(broker) == [("config.run_push_job", [job.pk])]


def test_selection_by_fabric_and_role(clients, fabric, broker) -> None:
    leaf2 = fabric.devices["dx-a-leaf2"]
    leaf2.lifecycle = "drained"
    leaf2.save()
    answer = clients["operator"].post("/api/push-jobs/", {"fabric": "dx-fab-a", "roles": ["leaf"]}, format="json")
    assert answer.status_code == 202, answer.content
    names = set(DeviceJob.objects.filter(job_id=answer.json()["id"]).values_list("device__hostname", flat=True))
    assert names == {"dx-a-leaf1"}, "a fabric selection takes active devices only"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "never nothing"),
        ({"devices": []}, "never nothing"),
        ({"devices": ["dx-a-leaf1"], "fabric": "dx-fab-a"}, "either devices"),
        ({"devices": ["dx-a-leaf1", "ghost1", "ghost2"]}, "unknown device(s): ghost1, ghost2"),
        ({"fabric": "nowhere"}, "unknown fabric 'nowhere'"),
        ({"fabric": "dx-fab-a", "roles": ["superspine"]}, "no active managed device"),
        ({"devices": ["dx-a-leaf1"], "wave_percent": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_selections_are_refused(clients, fabric, broker, body, message) -> None:
    answer = clients["operator"].post("/api/push-jobs/", body, format="json")
    assert answer.status_code == 400
    assert message in json.dumps(answer.json())
    assert PushJob.objects.filter(requested_by="operator", status="pending").count() == 0
    assert queued(broker) == []


def test_optical_devices_cannot_be_pushed(clients, fabric, broker) -> None:
    fabric.device("dx-amp1", "amplifier", platform="optical")
    answer = clients["operator"].post("/api/push-jobs/", {"devices": ["dx-amp1"]}, format="json")
    assert answer.status_code == 400
    assert "no switch OS to push to: dx-amp1" in json.dumps(answer.json())


def test_approval_rules(clients, fabric, broker) -> None:
    answer = clients["operator"].post(
        "/api/push-jobs/", {"devices": ["dx-a-leaf1"], "require_approval": True}, format="json"
    )
    assert answer.status_code == 202
    job_id = answer.json()["id"]
    assert answer.json()["status"] == "awaiting-approval"
    assert queued(broker) == [], "a job awaiting approval is not queued"
    url = f"/api/push-jobs/{job_id}/approve/"

    own = clients["operator"].post(url)
    assert own.status_code == 403
    assert "requester cannot approve" in own.json()["detail"]
    assert clients["viewer"].post(url).status_code == 403
    assert PushJob.objects.get(pk=job_id).status == "awaiting-approval"
    assert queued(broker) == []

    approved = clients["operator2"].post(url)
    assert approved.status_code == 202, approved.content
    job = PushJob.objects.get(pk=job_id)
    assert (job.status, job.approved_by) == ("pending", "operator2")
    assert queued(broker) == [("config.run_push_job", [job_id])]
    entry = AuditEntry.objects.get(action="approve")
    assert (entry.actor, entry.object_id) == ("operator2", str(job_id))

    again = clients["admin"].post(url)
    assert again.status_code == 409
    assert "not awaiting approval" in again.json()["detail"]
    assert len(queued(broker)) == 1


def test_broker_down_leaves_the_job_pending_and_says_why(clients, fabric, broker, settings) -> None:
    _repoint("redis://127.17.0.1:1/0")  # nothing listens there
    try:
        answer = clients["operator"].post("/api/push-jobs/", {"devices": ["dx-a-leaf1"]}, format="json")
    finally:
        _repoint(settings.CELERY_BROKER_URL)
    assert answer.status_code == 202
    assert answer.json()["status"] == "pending"
    assert answer.json()["summary"].startswith("not queued: broker unreachable")


def test_two_person_rule_setting(clients, fabric, broker, settings) -> None:
    settings.FABRIC_OPS_PUSH_REQUIRE_APPROVAL = True
    real = clients["operator"].post("/api/push-jobs/", {"devices": ["dx-a-leaf1"]}, format="json").json()
    assert real["status"] == "awaiting-approval" and real["require_approval"] is True
    dry = clients["operator"].post("/api/push-jobs/", {"devices": ["dx-a-leaf1"], "dry_run": True}, format="json")
    assert dry.json()["status"] == "pending", "a dry run changes nothing on a switch: no approval needed"
    assert queued(broker) == [("config.run_push_job", [dry.json()["id"]])]


def test_remediation_approval_is_queued_for_a_worker(clients, fabric, broker) -> None:
    from fabric_ops.health.models import Incident, RemediationRun

    incident = Incident.objects.create(kind="pfc-storm", root_key="queue:x", summary="storm", scope_kind="interface")
    waiting = RemediationRun.objects.create(
        incident=incident, playbook="pfc-storm", idempotency_key="k1", target_key="queue:x", status="awaiting-approval"
    )
    done = RemediationRun.objects.create(
        incident=incident, playbook="pfc-storm", idempotency_key="k0", target_key="queue:y", status="succeeded"
    )
    assert clients["viewer"].post(f"/api/remediation-runs/{waiting.pk}/approve/").status_code == 403
    answer = clients["operator"].post(f"/api/remediation-runs/{waiting.pk}/approve/")
    assert answer.status_code == 202, answer.content
    assert queued(broker) == [("web.approve_remediation", [waiting.pk, "operator"])]
    refused = clients["operator"].post(f"/api/remediation-runs/{done.pk}/approve/")
    assert refused.status_code == 409 and "not awaiting approval" in refused.json()["detail"]
    assert len(queued(broker)) == 1


def test_remediation_approval_task_refuses_a_run_not_waiting(fabric) -> None:
    """The task is the health app's approve(): a run not awaiting approval is refused, not executed."""
    from fabric_ops.errors import FabricOpsError
    from fabric_ops.health.models import Incident, RemediationRun
    from fabric_ops.web.tasks import approve_remediation

    incident = Incident.objects.create(kind="link-down", root_key="link:9", summary="down", scope_kind="link")
    run = RemediationRun.objects.create(
        incident=incident, playbook="link-flap", idempotency_key="k2", target_key="link:9", status="succeeded"
    )
    with pytest.raises(FabricOpsError, match="not awaiting approval"):
        approve_remediation.run(run.pk, "operator")
