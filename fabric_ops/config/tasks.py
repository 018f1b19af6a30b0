"""Celery tasks of the config app. Tasks take primary keys and re-fetch (Celery's advice)."""

from __future__ import annotations

import logging

from celery import group, shared_task

from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.models import Device

from .compliance import backup_device, check_compliance
from .push import run_job

logger = logging.getLogger(__name__)

MANAGED_PLATFORMS = ("eos", "huawei_vrp")
# A fabric-wide push is long (hundreds of switches, 30 s per unreachable one): the global 5-minute limit would kill
# it mid-wave. run_job always leaves the job in a final state, even when the hard limit strikes.
PUSH_SOFT_LIMIT_S = 4 * 3600


@shared_task(name="config.run_push_job", soft_time_limit=PUSH_SOFT_LIMIT_S, time_limit=PUSH_SOFT_LIMIT_S + 300)
def run_push_job(job_id: int) -> str:
    return run_job(job_id).status


def _active_device_ids() -> list[int]:
    return list(Device.objects.filter(lifecycle="active", platform__in=MANAGED_PLATFORMS).values_list("pk", flat=True))


@shared_task(name="config.backup_device")
def backup_one(device_id: int) -> str:
    device = Device.objects.select_related("fabric", "site").get(pk=device_id)
    try:
        return "changed" if backup_device(device) else "unchanged"
    except FabricOpsError as exc:
        logger.warning("backup of %s failed: %s", device.hostname, exc)
        return "failed"


@shared_task(name="config.compliance_device")
def compliance_one(device_id: int) -> str:
    result = check_compliance(Device.objects.select_related("fabric", "site").get(pk=device_id))
    return "unknown" if result.compliant is None else ("compliant" if result.compliant else "non_compliant")


@shared_task(name="config.backup_all")
def backup_all() -> int:
    """Scheduled: one backup task per active switch, so one slow or broken switch delays nobody else."""
    ids = _active_device_ids()
    group(backup_one.s(pk) for pk in ids).apply_async()
    return len(ids)


@shared_task(name="config.compliance_all")
def compliance_all() -> int:
    """Scheduled: one compliance task per active switch (a fleet does not fit in one task's time limit)."""
    ids = _active_device_ids()
    group(compliance_one.s(pk) for pk in ids).apply_async()
    return len(ids)
