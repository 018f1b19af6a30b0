"""Celery tasks: thin wrappers that take primary keys; the logic is in engine.py and delivery.py."""

from __future__ import annotations

import logging

from celery import shared_task

from . import delivery, engine, scheduler

logger = logging.getLogger(__name__)


@shared_task(name="alerting.flush_group", ignore_result=True)
def flush_group(group_id: int) -> int:
    """Send what a group has to send now (queued with ETA = the group's next flush)."""
    return len(engine.flush_group(group_id))


@shared_task(bind=True, name="alerting.deliver", ignore_result=True, max_retries=None, acks_late=True)
def deliver(self, notification_id: int) -> str:
    """Deliver one notification; retry per the receiver's policy (the DB row counts attempts, not Celery)."""
    outcome = delivery.attempt(notification_id)
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
