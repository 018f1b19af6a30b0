"""Celery tasks: thin wrappers that take primary keys; the logic is in engine.py and delivery.py."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from . import delivery, engine, scheduler

logger = logging.getLogger(__name__)


# A database that is briefly unavailable (or SQLite's "database is locked" in the demo) must not lose a flush:
# flushing is idempotent, so it is simply retried.
@shared_task(
    name="alerting.flush_group", ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=1,
    retry_backoff_max=10, retry_jitter=True, max_retries=10,
)  # fmt: skip
def flush_group(group_id: int) -> int:
    """Send what a group has to send now (queued with ETA = the group's next flush).

    The first delivery attempt of each new notification runs right here, after the flush committed, instead of
    as a task of its own: a notification is out one queue hop sooner. Retries go through :func:`deliver`; a worker
    killed in between leaves the notification pending, and the beat's sweep re-queues it.
    """
    with scheduler.collect_deliveries() as created:
        count = len(engine.flush_group(group_id))
    for notification_id in created:
        send_now(notification_id)
    return count


def send_now(notification_id: int) -> str:
    """One delivery attempt in this process; a retry is queued as a :func:`deliver` task with its countdown."""
    outcome = delivery.attempt(notification_id)
    if outcome.retry_in is not None:
        if scheduler.mode() == "outbox":
            scheduler.OUTBOX.append(("deliver", notification_id, _eta(outcome.retry_in)))
        else:
            deliver.apply_async((notification_id,), countdown=outcome.retry_in, queue=scheduler.queue())
    return outcome.status


def _eta(seconds: float):
    from datetime import timedelta

    from . import clock

    return clock.now() + timedelta(seconds=seconds)


@shared_task(bind=True, name="alerting.deliver", ignore_result=True, max_retries=None, acks_late=True)
def deliver(self, notification_id: int) -> str:
    """Deliver one notification; retry per the receiver's policy (the DB row counts attempts, not Celery)."""
    try:
        outcome = delivery.attempt(notification_id)
    except OperationalError as exc:  # raised before sending (claiming the attempt): nothing went out yet
        raise self.retry(exc=exc, countdown=0.5, queue=scheduler.queue()) from exc
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, queue=scheduler.queue())
    return outcome.status


@shared_task(name="alerting.tick", ignore_result=True)
def tick() -> dict[str, int]:
    """The beat's sweep: due flushes, escalations, telemetry rules, incident reconciliation, lost deliveries."""
    from . import adapters, rules

    stats = {"flushed": engine.flush_due(), "escalated": len(engine.escalate_due())}
    try:
        stats["rules"] = rules.evaluate_telemetry_rules()
    except Exception:  # a Redis outage must not stop escalations; logged and retried next tick
        logger.exception("alerting: telemetry rules not evaluated")
    stats["incidents"] = adapters.reconcile_incidents()
    lost = delivery.overdue()
    for notification_id in lost:
        scheduler.schedule_delivery(notification_id)
    stats["requeued"] = len(lost)
    return stats
