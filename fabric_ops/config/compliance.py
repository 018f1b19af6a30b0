"""Backups of running configurations and compliance of running vs intended.

Compliance is measured the way a push would act: the diff that merging the
intended configuration would apply. An empty diff means every intended line is
in force; a manual change to anything FabricOps manages (an ECN threshold, a
shut port, a BGP neighbour) shows up as a non-empty diff naming the lines.
"""

from __future__ import annotations

import hashlib
import logging

from django.db.models import OuterRef, Subquery

from fabric_ops.devices.connection import open_driver
from fabric_ops.devices.locks import device_lock
from fabric_ops.errors import DeviceError, FabricOpsError
from fabric_ops.topology.models import Device, Fabric

from .models import ComplianceResult, ConfigBackup
from .redaction import redact
from .rendering import render_device

logger = logging.getLogger(__name__)


def backup_device(device: Device) -> ConfigBackup | None:
    """Store the running configuration if it changed since the last backup; return the new row or None."""
    with open_driver(device) as driver:
        text = redact(driver.get_config(retrieve="running")["running"])
    digest = hashlib.sha256(text.encode()).hexdigest()
    last = ConfigBackup.objects.filter(device=device).order_by("-taken_at").values_list("sha256", flat=True).first()
    if last == digest:
        return None
    return ConfigBackup.objects.create(device=device, sha256=digest, text=text)


def check_compliance(device: Device) -> ComplianceResult:
    """Compare running with intended on the switch itself and record the result (an error is recorded, not raised)."""
    try:
        intended = render_device(device)
        # Opening a candidate session must not collide with a push in flight: wait briefly for the lock.
        lock = device_lock(device.hostname, "compliance check", ttl_seconds=120, wait_seconds=30)
        with lock, open_driver(device) as driver:
            driver.load_merge_candidate(config=intended)
            diff = driver.compare_config()
            driver.discard_config()
    except (DeviceError, FabricOpsError) as exc:
        logger.warning("compliance of %s not checked: %s", device.hostname, redact(str(exc)))
        return ComplianceResult.objects.create(device=device, compliant=None, error=redact(str(exc)))
    return ComplianceResult.objects.create(device=device, compliant=not diff.strip(), diff=redact(diff))


def fabric_summary(fabric: Fabric) -> dict[str, int]:
    """Counts of compliant / non-compliant / unknown / never-checked devices, from each device's latest result."""
    latest = ComplianceResult.objects.filter(device=OuterRef("pk")).order_by("-checked_at")
    rows = Device.objects.filter(fabric=fabric).exclude(platform="optical")
    rows = rows.annotate(compliant=Subquery(latest.values("compliant")[:1]), checked=Subquery(latest.values("pk")[:1]))
    summary = {"compliant": 0, "non_compliant": 0, "unknown": 0, "never_checked": 0}
    for compliant, checked in rows.values_list("compliant", "checked"):
        if checked is None:
            summary["never_checked"] += 1
        elif compliant is None:
            summary["unknown"] += 1
        else:
            summary["compliant" if compliant else "non_compliant"] += 1
    return summary
