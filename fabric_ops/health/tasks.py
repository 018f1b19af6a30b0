"""Celery tasks of the health app. Tasks take primary keys and re-fetch; every one is safe to run twice.

* ``health.remediate`` — apply the playbook to an incident. ``acks_late``: a worker killed mid-remediation leaves
  the message unacknowledged, the broker re-delivers it, and the run's idempotency key makes the second delivery
  resume the same run (finished actions skipped, pushes idempotent) instead of acting twice.
* ``health.restore_due`` (beat) — restore drains whose fault stayed clean for the playbook's ``after_clean``.
* ``health.resolve_cleared`` (beat) — resolve incidents whose alarms all cleared (non-drain mitigations,
  notifications, faults that went away by themselves).
* ``health.reevaluate`` (beat) — retry needs-human/failed incidents whose refusal may no longer hold (capacity
  came back, a cooldown ended); approval waits are left to people. It also dispatches open incidents that were
  never dispatched (a worker died between opening the incident and sending ``health.remediate``): older than
  ``FABRIC_OPS_HEALTH_DISPATCH_GRACE_S``, no run, a matching playbook. Sending it twice is harmless: the task
  resumes the run by its idempotency key.
* ``health.optical_scan`` (beat) — Rx-power trends from the collector's latest values, for every optic.
* ``health.detect`` (beat, then itself) — the detection loop as Celery work: holds the stream's consumer lease
  for ``FABRIC_OPS_HEALTH_DETECT_RUN_S`` seconds, checkpoints, lets go and re-queues itself. Beat sends it every
  few seconds too: a run that finds the lease held returns at once, so beat only matters when the chain broke (a
  killed worker: its lease expires, the next beat's run continues from the checkpoint). Run it where a slot is
  free for it (it occupies one for as long as it runs): ``FABRIC_OPS_HEALTH_DETECT_QUEUE`` names a queue of its own.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from fabric_ops.errors import FabricOpsError

from . import incidents
from .choices import IncidentStatus, Mode, RunStatus
from .models import Incident, RemediationRun
from .remediation import RestoreInProgress, RunInFlight, next_attempt, remediate, restore

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="health.remediate", acks_late=True, reject_on_worker_lost=True, max_retries=30)
def remediate_task(self, incident_id: int, attempt: int | None = None) -> str:
    try:
        run = remediate(incident_id, attempt=attempt)
    except RunInFlight as exc:  # another worker executes it; if that worker died, its heartbeat goes stale
        raise self.retry(countdown=5, exc=exc) from exc
    return run.status if run else "no-action"


def detect_queue() -> str | None:
    return getattr(settings, "FABRIC_OPS_HEALTH_DETECT_QUEUE", "") or None


@shared_task(bind=True, name="health.detect", ignore_result=True)
def detect_task(self, budget_s: float | None = None) -> dict:
    """Consume the telemetry handoff for a bounded time as its single consumer; re-queue the next run."""
    from .detect import run_leased

    budget = float(budget_s if budget_s is not None else getattr(settings, "FABRIC_OPS_HEALTH_DETECT_RUN_S", 60.0))
    soft_limit = float(getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", 300) or 300)
    budget = min(budget, 0.8 * soft_limit)  # end, checkpoint and re-queue well before Celery's time limit
    report = run_leased(budget_s=budget)
    if report["outcome"] == "done":  # the chain goes on; "busy"/"lost": another run holds it and re-queues
        queue = (self.request.delivery_info or {}).get("routing_key") or detect_queue()
        detect_task.apply_async(kwargs={"budget_s": budget_s}, queue=queue)
    logger.info("health.detect: %s", report)
    return report


def _clean_since(run: RemediationRun, after_clean: float) -> bool:
    cleared = incidents.all_clear_since(run.incident)
    return cleared is not None and cleared <= timezone.now() - timedelta(seconds=after_clean)


@shared_task(name="health.restore_due")
def restore_due() -> dict[str, int]:
    """Scheduled: restore drained links whose restore time passed and whose fault stayed clean since."""
    counts = {"restored": 0, "waiting": 0, "needs_approval": 0, "in_progress": 0, "failed": 0}
    due = RemediationRun.objects.filter(
        status=RunStatus.SUCCEEDED, restored_at__isnull=True, restore_after__lte=timezone.now(),
        incident__status=IncidentStatus.MITIGATED,
    ).select_related("incident")  # fmt: skip
    for run in due:
        after_clean = (run.restore_after - run.verified_at).total_seconds() if run.verified_at else 0.0
        if not _clean_since(run, after_clean):
            counts["waiting"] += 1
            continue
        if run.restore_mode == Mode.APPROVE:
            if "restore awaits approval" not in run.incident.reason:
                run.incident.reason = f"restore of {run.target_key} awaits approval (run {run.pk})"
                run.incident.save(update_fields=["reason", "updated_at"])
            counts["needs_approval"] += 1
            continue
        try:
            counts["restored" if restore(run.pk).status == RunStatus.RESTORED else "failed"] += 1
        except RestoreInProgress as exc:  # a person's rollback (or the previous beat) is restoring it right now
            logger.info("%s", exc)
            counts["in_progress"] += 1
        except FabricOpsError as exc:
            logger.warning("restore of %s failed: %s", run, exc)
            counts["failed"] += 1
    return counts


@shared_task(name="health.resolve_cleared")
def resolve_cleared() -> int:
    """Scheduled: resolve incidents with every alarm cleared for the resolve delay and nothing left drained."""
    delay = float(getattr(settings, "FABRIC_OPS_HEALTH_RESOLVE_AFTER_S", 300))
    resolved = 0
    candidates = Incident.objects.filter(
        status__in=(IncidentStatus.OPEN, IncidentStatus.MITIGATED, IncidentStatus.NEEDS_HUMAN, IncidentStatus.FAILED)
    )
    for incident in candidates:
        cleared = incidents.all_clear_since(incident)
        if cleared is None or cleared > timezone.now() - timedelta(seconds=delay):
            continue
        if incident.runs.filter(Q(status=RunStatus.SUCCEEDED, restored_at__isnull=True, restore_after__isnull=False)
                                | Q(status__in=(RunStatus.RUNNING, RunStatus.VERIFYING))).exists():  # fmt: skip
            continue  # a drain is still in place: the restore task resolves it
        incidents.transition(incident, IncidentStatus.RESOLVED, reason=incident.reason or "alarms cleared")
        resolved += 1
    return resolved


def dispatch_lost() -> int:
    """Open incidents older than the dispatch grace with no run and a playbook that matches: their dispatch was
    lost (the detecting worker died after opening them). Sent with ``attempt=None``, exactly what detection sends:
    if the original message does arrive after all, both resolve to the same run (``incident-<id>:<playbook>:0``)."""
    from .playbooks import load_playbooks, select
    from .remediation import _evidence
    from .topology import load_index

    grace = float(getattr(settings, "FABRIC_OPS_HEALTH_DISPATCH_GRACE_S", 10.0))
    lost = Incident.objects.filter(
        status=IncidentStatus.OPEN, runs__isnull=True, detected_at__lte=timezone.now() - timedelta(seconds=grace)
    ).order_by("pk")
    books = index = None
    sent = 0
    for incident in lost:
        if books is None:
            books, index = load_playbooks(), load_index()
        role = index.device_role.get(incident.device, "")
        if select(books, incident.kind, incident.scope_kind, role, _evidence(incident)) is None:
            continue  # nothing would act: it waits for a person, as it did before
        logger.warning("%s was never dispatched; dispatching it now", incident)
        remediate_task.delay(incident.pk)
        sent += 1
    return sent


@shared_task(name="health.reevaluate")
def reevaluate() -> dict[str, int]:
    """Scheduled: try again the incidents a guardrail or a failure left to a human, if the fault is still there;
    dispatch open incidents whose dispatch was lost."""
    counts = {"retried": 0, "skipped": 0, "dispatched": dispatch_lost()}
    for incident in Incident.objects.filter(status__in=(IncidentStatus.NEEDS_HUMAN, IncidentStatus.FAILED)):
        if incident.runs.filter(status=RunStatus.AWAITING_APPROVAL).exists() or incidents.all_clear_since(incident):
            counts["skipped"] += 1
            continue
        incident.status, incident.reason = IncidentStatus.OPEN, "re-evaluating"  # retried from the start
        incident.save(update_fields=["status", "reason", "updated_at"])
        remediate_task.delay(incident.pk, next_attempt(incident))
        counts["retried"] += 1
    return counts


@shared_task(name="health.optical_scan")
def optical_scan(fabric: str | None = None) -> int:
    """Scheduled: Rx-power floor and trend of every optic lane over the trend window, from InfluxDB.

    The detection loop sees only the latest value of each lane; a trend needs the window (minutes to hours), which
    is what InfluxDB keeps. One grouped query per scan: the worst (min) power per device/interface/lane, per minute.
    """
    from fabric_ops.telemetry.query import InfluxQuery

    from .detectors import link as lk
    from .detectors.base import Sample
    from .engine import thresholds
    from .topology import load_index

    index = load_index()
    _, lth, _ = thresholds()
    tags = {"fabric": fabric} if fabric else {}
    query = InfluxQuery.from_settings()
    try:
        series = query.series(
            "optics", "input_power_dbm", tags, start=f"{int(lth.rx_trend_window_s)}s", every="1m", aggregate="min",
            group_by=("device", "interface", "lane"), fill="none",
        )  # fmt: skip
    finally:
        query.close()
    findings = []
    for s in series:
        samples = [Sample("optics", s.tags, {"input_power_dbm": v}, t) for t, v in s.points if v is not None]
        finding = lk.rx_power(samples, lth) if samples else None
        if finding is not None:
            findings.append(finding)
    if findings:
        incidents.record(findings, index)
    return len(findings)
