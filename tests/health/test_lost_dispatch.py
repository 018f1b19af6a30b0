"""Lost dispatch: a worker that died between opening an incident and sending health.remediate. The beat's
re-evaluation dispatches it (once: the run's idempotency key). Celery in eager mode runs the real task in process;
the link-down playbook notifies only (no push, no lab needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fabric_ops.celery import app
from fabric_ops.health import incidents, tasks
from fabric_ops.health.detectors.base import NS, Finding
from fabric_ops.health.models import Incident, RemediationRun
from fabric_ops.health.topology import build_index, invalidate
from tests.topology.factories import two_sites

T0 = 1_800_000_000 * NS


@pytest.fixture
def eager():
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.mark.django_db
def test_reevaluate_dispatches_an_open_incident_that_never_was(eager, settings):
    settings.FABRIC_OPS_HEALTH_DISPATCH_GRACE_S = 5
    b = two_sites()
    invalidate()
    idx = build_index()
    link = b.links["dx-a-leaf1-dx-a-spine#1"]
    ((lost, new),) = incidents.record([Finding("link-down", "dx-a-leaf1", link.a_interface.name, ts=T0)], idx)
    # an incident with no playbook (nothing would act) is left alone
    Incident.objects.create(kind="made-up", root_key="port:x:y", scope_kind="interface", summary="no playbook")
    assert new and not lost.runs.exists()
    assert tasks.reevaluate()["dispatched"] == 0  # just opened: its own dispatch may still be on the way
    Incident.objects.update(detected_at=timezone.now() - timedelta(seconds=30))
    assert tasks.reevaluate()["dispatched"] == 1
    (run,) = RemediationRun.objects.filter(incident=lost)
    assert run.playbook == "link-down" and run.idempotency_key == f"incident-{lost.pk}:link-down:0"
    # the original message turning up late resolves to the same run; the next beat sends nothing
    tasks.remediate_task.delay(lost.pk)
    assert RemediationRun.objects.filter(incident=lost).count() == 1
    assert tasks.reevaluate()["dispatched"] == 0
    assert Incident.objects.get(kind="made-up").status == "open"
