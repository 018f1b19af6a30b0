"""A real Celery worker (subprocess, Redis broker, not eager) runs the remediation of a lab incident; the worker is
SIGKILLed after the push committed and before verification finished; the re-delivered task (acks_late) resumes the
same run on a second worker and the drain happens exactly once.

The worker process must see the test's rows, so this needs PostgreSQL (``make test`` uses it when it answers);
under the in-memory SQLite of a quick local run it is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from fabric_ops.celery import app as celery_app
from fabric_ops.config.models.jobs import DeviceJob, DeviceStatus, PushJob
from fabric_ops.health.choices import IncidentStatus, RunStatus
from fabric_ops.health.models import ActionRecord, RemediationRun
from fabric_ops.health.tasks import remediate_task
from fabric_ops.lab.api import Lab
from fabric_ops.topology.models import Link
from tests.health.test_closed_loop_lab import Loop, active, lab_db, leaf_end, uplinks, wait_for  # noqa: F401
from tests.telemetry.conftest import database, influx, influx_stack  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab, pytest.mark.timeout(240)]

ROOT = Path(django_settings.BASE_DIR)


def start_worker(queue: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fabric_ops", "worker", "-Q", queue, "--pool=prefork", "-c", "1",
         "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


BROKER_URL = "redis://127.0.0.1:6379/13"


def _repoint(url: str) -> None:
    """Make the app build its connection pools anew for ``url`` (kombu keeps one pool per URL)."""
    celery_app.conf.broker_url = url
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None


@pytest.fixture
def broker():
    old = celery_app.conf.broker_url
    _repoint(BROKER_URL)
    try:
        yield
    finally:
        _repoint(old)


@pytest.fixture
def sjc(lab_db, influx, database, tmp_path, broker):  # noqa: F811
    if connection.vendor != "postgresql":
        pytest.skip("the worker subprocess needs a database it can share: run with DATABASE_URL=postgresql://...")
    with Lab.start(["sjc-ai"]) as lab:
        loop = Loop(lab, ["sjc-ai"], lab_db, influx.url, f"{database}/autogen", tmp_path / "spool")
        yield loop
        loop.close()


def test_worker_killed_mid_remediation_completes_the_drain_exactly_once(sjc, settings, tmp_path):
    db = connection.settings_dict
    queue = f"health-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.health.worker_settings",
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "FABRIC_OPS_SECRETS_DIR": str(settings.SECRETS_DIR),
        "FABRIC_OPS_TELEMETRY_REDIS_PREFIX": settings.FABRIC_OPS_TELEMETRY_REDIS_PREFIX,
        "FABRIC_OPS_HEALTH_THRESHOLDS": json.dumps(settings.FABRIC_OPS_HEALTH_THRESHOLDS),
        "PYTHONPATH": str(ROOT),
    }
    # a Redis database of its own: kombu's unacked index and restore mutex are per database, and other suites' workers
    # (or a killed one holding the mutex) must not decide when this test's message comes back
    env["CELERY_BROKER_URL"] = BROKER_URL
    log = tmp_path / "worker.log"
    sent: dict[int, str] = {}  # incident -> task id: ONE message, so only its re-delivery can finish the run

    def dispatch(pk: int, delay: float) -> None:
        if pk not in sent:  # opened as link-down; by the time the task runs (3 s) the incident is a link-flap
            sent[pk] = remediate_task.apply_async(args=[pk], countdown=3.0, queue=queue).id

    sjc.detect.dispatch = dispatch
    first_worker = start_worker(queue, env, log)
    second_worker = None
    try:
        link = uplinks("sjc-leaf3")[0]
        sjc.lab.inject("link-flap", f"sjc-leaf3:{leaf_end(link, 'sjc-leaf3').name}", period=2)
        incident = sjc.until(lambda: active("link-flap", link_id=link.pk), 30, "flap incident")
        run = wait_for(lambda: RemediationRun.objects.filter(incident=incident, status=RunStatus.VERIFYING).first(),
                       60, f"the worker committing the drain (log: {log.read_text()[-2000:] if log.exists() else ''})",
                       step=0.02)  # fmt: skip
        os.killpg(first_worker.pid, signal.SIGKILL)  # worker and its pool child: committed, not verified, not acked
        first_worker.wait(10)
        second_worker = start_worker(queue, env, log)
        wait_for(lambda: RemediationRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, 90,
                 f"the re-delivered task finishing the run (log: {log.read_text()[-3000:]})", step=0.2)  # fmt: skip
    finally:
        for worker in (first_worker, second_worker):
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(15)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.MITIGATED
    assert RemediationRun.objects.filter(incident=incident).count() == 1
    assert ActionRecord.objects.filter(run=run, phase="act", action="drain-link", status="done").count() == 1
    jobs = PushJob.objects.filter(requested_by="playbook:link-flap")
    assert jobs.count() == 1  # the action ran once: the resumed run skipped it
    assert DeviceJob.objects.filter(job__in=jobs, status=DeviceStatus.CONFIRMED).count() == 2
    assert Link.objects.get(pk=link.pk).state == "drained"
    assert first_worker.returncode == -signal.SIGKILL
    flap_task = sent[incident.pk]
    assert log.read_text().count(f"Task health.remediate[{flap_task}] received") >= 2  # delivered, re-delivered
