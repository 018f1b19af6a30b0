"""One delivery attempt of one notification, with the receiver's retry policy and the delivery log.

Idempotent: a notification already sent (or failed for good) is not sent again, so a re-delivered Celery task
or a beat sweep cannot make a duplicate. Network I/O happens outside any transaction; the outcome is recorded
under a row lock afterwards.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import OperationalError, transaction
from django.db.models import F

from fabric_ops.errors import FabricOpsError

from . import clock
from .choices import DeliveryStatus
from .models import DeliveryAttempt, Notification
from .receivers import FATAL, RETRY, SENT, Result, for_receiver

logger = logging.getLogger(__name__)

FINAL = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.GAVE_UP)


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


def attempt(notification_id: int) -> Outcome:
    """Try to deliver once; returns the new status and, when it must be retried, after how many seconds."""
    with transaction.atomic():
        updated = (
            Notification.objects.filter(pk=notification_id).exclude(status__in=FINAL).update(attempts=F("attempts") + 1)
        )
        if not updated:
            current = Notification.objects.filter(pk=notification_id).values_list("status", flat=True).first()
            return Outcome(current or "missing")
    notification = Notification.objects.select_related("receiver", "group").get(pk=notification_id)
    receiver = notification.receiver
    number = notification.attempts
    started = clock.now()
    t0 = time.monotonic()
    try:
        result = for_receiver(receiver).send(notification.payload, notification.kind)
    except FabricOpsError as exc:  # a missing secret or a bad option: retrying will not help
        result = Result(FATAL, None, str(exc))
    except Exception as exc:  # a bug rendering this message: record it, never loop on it
        logger.exception("notification %s to %s: cannot be rendered", notification_id, receiver.name)
        result = Result(FATAL, None, f"internal error: {type(exc).__name__}: {exc}")
    duration_ms = (time.monotonic() - t0) * 1000
    detail = result.redacted()
    status = {SENT: DeliveryStatus.SENT, FATAL: DeliveryStatus.FAILED}.get(result.outcome, DeliveryStatus.RETRYING)
    retry_in = None
    if result.outcome == RETRY:
        if number >= receiver.max_attempts:
            status = DeliveryStatus.GAVE_UP
        else:
            retry_in = receiver.backoff(number)
            if result.retry_after is not None:
                retry_in = min(receiver.backoff_max_s, max(retry_in, result.retry_after))
    _record(notification, number, started, duration_ms, result, detail, status, retry_in)
    log = logger.info if status == DeliveryStatus.SENT else logger.warning
    log("notification %s to %s attempt %d: %s %s %s", notification_id, receiver.name, number, status,
        result.status_code, detail[:200])  # fmt: skip
    return Outcome(status, retry_in)


def _record(
    notification: Notification, number: int, started, duration_ms: float, result: Result, detail: str, status: str,
    retry_in: float | None,
) -> None:  # fmt: skip
    """Write the attempt and the new status. Once a message went out, losing this write would send it again, so
    a locked or briefly unavailable database is waited for (a few tries) instead of failing the task."""
    for attempt_no in range(5):
        try:
            _write(notification, number, started, duration_ms, result, detail, status, retry_in)
            return
        except OperationalError:
            if attempt_no == 4:
                raise
            time.sleep(0.2 * (attempt_no + 1))


def _write(
    notification: Notification, number: int, started, duration_ms: float, result: Result, detail: str, status: str,
    retry_in: float | None,
) -> None:  # fmt: skip
    now = clock.now()
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            notification=notification, number=number, started_at=started, duration_ms=round(duration_ms, 1),
            status_code=result.status_code, outcome=result.outcome, detail=detail,
        )  # fmt: skip
        fields = {"status": status, "last_error": "" if status == DeliveryStatus.SENT else detail}
        if status == DeliveryStatus.SENT:
            fields["delivered_at"] = now
        fields["next_attempt_at"] = now + timedelta(seconds=retry_in) if retry_in is not None else None
        Notification.objects.filter(pk=notification.pk).update(**fields)


def overdue(grace_s: float = 60.0) -> list[int]:
    """Notifications whose retry (or first send) is long overdue: their task was lost (worker killed)."""
    limit = clock.now() - timedelta(seconds=grace_s)
    return list(
        Notification.objects.filter(
            status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING), next_attempt_at__lte=limit
        ).values_list("pk", flat=True)
    )
