"""Celery tasks of the web app: actions the API accepts at once (202) and a worker carries out."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="web.approve_remediation", acks_late=True, reject_on_worker_lost=True)
def approve_remediation(run_id: int, username: str) -> str:
    """Run ``fabric_ops.health.remediation.approve`` for a person: it executes the remediation (pushes), which
    belongs on a worker, not in a web request. Takes the primary key and re-fetches (Celery's advice)."""
    from fabric_ops.health.remediation import approve

    run = approve(run_id, username)
    return run.status if run else "no-action"


@shared_task(name="web.rollback_remediation", acks_late=True, reject_on_worker_lost=True)
def rollback_remediation(run_id: int, username: str) -> str:
    """Undo a verified drain for a person through ``fabric_ops.health.remediation.restore`` (links back up, push,
    verify; the incident is resolved, or failed when the link does not come up). Restoring twice is harmless: a
    run already restored is returned as it is."""
    from fabric_ops.errors import FabricOpsError
    from fabric_ops.health.remediation import RestoreInProgress, restore

    try:
        return restore(run_id, approved_by=username).status
    except RestoreInProgress as exc:  # a double click, or the scheduled restore got there first: it goes on
        logger.info("rollback of remediation %s for %s: %s", run_id, username, exc)
        return f"in progress: {exc}"
    except FabricOpsError as exc:
        logger.warning("rollback of remediation %s for %s failed: %s", run_id, username, exc)
        return f"failed: {exc}"
