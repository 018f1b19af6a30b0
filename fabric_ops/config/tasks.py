"""Celery tasks of the config app. Tasks take primary keys and re-fetch (Celery's advice)."""

from __future__ import annotations

import logging

from celery import shared_task

from fabric_ops.errors import DeviceError
from fabric_ops.topology.models import Device

from .compliance import backup_device, check_compliance
from .push import run_job

logger = logging.getLogger(__name__)

MANAGED_PLATFORMS = ("eos", "huawei_vrp")


@shared_task(name="config.run_push_job")
def run_push_job(job_id: int) -> str:
    return run_job(job_id).status


def _active_devices():
    return Device.objects.filter(lifecycle="active", platform__in=MANAGED_PLATFORMS).select_related("fabric", "site")


@shared_task(name="config.backup_all")
def backup_all() -> dict[str, int]:
    """Scheduled: version every active switch's running configuration (a new row only on change)."""
    counts = {"changed": 0, "unchanged": 0, "failed": 0}
    for device in _active_devices():
        try:
            counts["changed" if backup_device(device) else "unchanged"] += 1
        except DeviceError as exc:
            counts["failed"] += 1
            logger.warning("backup of %s failed: %s", device.hostname, exc)
    return counts


@shared_task(name="config.compliance_all")
def compliance_all() -> dict[str, int]:
    """Scheduled: check every active switch's running configuration against its intent."""
    counts = {"compliant": 0, "non_compliant": 0, "unknown": 0}
    for device in _active_devices():
        result = check_compliance(device)
        counts["unknown" if result.compliant is None else ("compliant" if result.compliant else "non_compliant")] += 1
    return counts
