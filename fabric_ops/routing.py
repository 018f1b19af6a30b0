"""Celery routing: a city's switches are changed by workers in that city.

With ``FABRIC_OPS_SITE_QUEUES=1``, a task that acts on devices of one site goes
to the queue ``site.<site>``; workers near that city consume it
(``celery -A fabric_ops worker -Q site.sjc,celery``). A push that spans sites,
and every other task, stays on the default queue. Off by default so that one
worker on one machine (the demo) serves everything.
"""

from __future__ import annotations

import os
from typing import Any

SITE_QUEUES = os.environ.get("FABRIC_OPS_SITE_QUEUES", "0").strip().lower() in {"1", "true", "yes", "on"}


def site_queue(sites: set[str]) -> str | None:
    """The queue for work on devices of ``sites``: one site's own queue, or None (the default queue)."""
    if len(sites) != 1:
        return None
    return f"site.{next(iter(sites))}"


def route_task(name: str, args: tuple, kwargs: dict, options: dict, task: Any = None, **kw: Any) -> dict | None:
    """Celery router (CELERY_TASK_ROUTES): push jobs go to the queue of the site their devices are in."""
    if not SITE_QUEUES or name != "config.run_push_job":
        return None
    from fabric_ops.config.models import DeviceJob

    job_id = args[0] if args else kwargs.get("job_id")
    sites = set(DeviceJob.objects.filter(job_id=job_id).values_list("device__site__name", flat=True).distinct())
    queue = site_queue(sites)
    return {"queue": queue} if queue else None
