"""How the engine asks for later work: Celery tasks (the product), or an in-process outbox (tests, dry runs).

``FABRIC_OPS_ALERTING_DISPATCH`` = ``celery`` (default) enqueues after the transaction commits, so a worker never
looks for a row it cannot see yet; ``outbox`` appends ``(task, id, eta)`` to :data:`OUTBOX` for the caller to run
with a controlled clock (tests drive the task functions directly; the Celery wiring has its own test).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

OUTBOX: list[tuple[str, int, datetime | None]] = []
# Set while a flush task runs: its new notifications are delivered by that task itself (one queue hop less).
_collecting: ContextVar[list[int] | None] = ContextVar("alerting_collect_deliveries", default=None)


def mode() -> str:
    return getattr(settings, "FABRIC_OPS_ALERTING_DISPATCH", "celery")


def queue() -> str | None:
    return getattr(settings, "FABRIC_OPS_ALERTING_QUEUE", None) or None


def schedule_flush(group_id: int, eta: datetime) -> None:
    if mode() == "outbox":
        OUTBOX.append(("flush", group_id, eta))
        return
    from .tasks import flush_group

    transaction.on_commit(lambda: _send(flush_group, (group_id,), eta))


@contextmanager
def collect_deliveries() -> Iterator[list[int]]:
    """Inside the block, first deliveries are collected (for the caller to attempt after commit), not queued."""
    collected: list[int] = []
    token = _collecting.set(collected)
    try:
        yield collected
    finally:
        _collecting.reset(token)


def schedule_delivery(notification_id: int, eta: datetime | None = None) -> None:
    collected = _collecting.get()
    if collected is not None and eta is None:
        collected.append(notification_id)
        return
    if mode() == "outbox":
        OUTBOX.append(("deliver", notification_id, eta))
        return
    from .tasks import deliver

    transaction.on_commit(lambda: _send(deliver, (notification_id,), eta))


def _send(task: Any, args: tuple, eta: datetime | None) -> None:
    """Enqueue; a broker outage must not break the caller's commit (health's incident save, an API request).
    The beat's sweep finds due groups and overdue notifications in the database and queues them again."""
    try:
        task.apply_async(args, eta=eta, queue=queue())
    except Exception as exc:  # kombu/redis connection errors have no common base worth importing here
        logger.warning("alerting: could not queue %s%s (%s); the beat sweep will retry", task.name, args, exc)


def drain(kind: str | None = None) -> list[tuple[str, int, datetime | None]]:
    """Take (and forget) the queued requests, optionally of one kind."""
    taken = [item for item in OUTBOX if kind is None or item[0] == kind]
    OUTBOX[:] = [item for item in OUTBOX if item not in taken]
    return taken
