"""Backups of running configurations and compliance of running vs intended.

Compliance is measured the way a push would act: the diff that merging the
intended configuration would apply. An empty diff means every intended line is
in force; a manual change to anything FabricOps manages (an ECN threshold, a
shut port, a BGP neighbour) shows up as a non-empty diff naming the lines.

Many devices go through :func:`check_compliance_many`, which renders them with
``render_devices`` (a few bulk reads of the source of truth per ``RENDER_BATCH``
devices) instead of ``render_device``'s reads per device.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator

from django.db.models import OuterRef, Subquery

from fabric_ops.devices.connection import open_driver
from fabric_ops.devices.locks import device_lock
from fabric_ops.errors import DeviceError, FabricOpsError
from fabric_ops.topology.models import Device, Fabric

from .models import ComplianceResult, ConfigBackup
from .redaction import redact
from .rendering import render_device, render_devices

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


RENDER_BATCH = 16  # devices whose intent is read together (see check_compliance_many)


def check_compliance(device: Device) -> ComplianceResult:
    """Compare running with intended on the switch itself and record the result (an error is recorded, not raised)."""
    try:
        intended: str | FabricOpsError = render_device(device)
    except FabricOpsError as exc:
        intended = exc
    return _compare(device, intended)


def check_compliance_many(devices: Iterable[Device]) -> Iterator[ComplianceResult]:
    """``check_compliance`` for many devices, in order, each result recorded as soon as its device is checked.

    Rendering reads the source of truth in bulk, a few queries per ``RENDER_BATCH`` devices instead of per device;
    the one write per device stays, so an interrupted fleet check keeps what it has learnt and the UI sees progress.
    The batch is small because each check talks to its switch (seconds, up to the lock wait): the intent a device
    is compared with is read at most a batch's worth of checks before, not a whole fleet's (an intent changed and
    pushed during a long check would otherwise be judged against the old one for the rest of the run).
    """
    batch: list[Device] = []
    for device in devices:
        batch.append(device)
        if len(batch) == RENDER_BATCH:
            yield from (_compare(d, intended) for d, intended in render_devices(batch))
            batch = []
    if batch:
        yield from (_compare(d, intended) for d, intended in render_devices(batch))


def _compare(device: Device, intended: str | FabricOpsError) -> ComplianceResult:
    """Merge ``intended`` as a candidate, keep the diff, discard; a render error is recorded like a device error."""
    if isinstance(intended, FabricOpsError):
        return _not_checked(device, intended)
    try:
        # Opening a candidate session must not collide with a push in flight: wait briefly for the lock.
        lock = device_lock(device.hostname, "compliance check", ttl_seconds=120, wait_seconds=30)
        with lock, open_driver(device) as driver:
            driver.load_merge_candidate(config=intended)
            diff = driver.compare_config()
            driver.discard_config()
    except (DeviceError, FabricOpsError) as exc:
        return _not_checked(device, exc)
    return ComplianceResult.objects.create(device=device, compliant=not diff.strip(), diff=redact(diff))


def _not_checked(device: Device, exc: FabricOpsError) -> ComplianceResult:
    logger.warning("compliance of %s not checked: %s", device.hostname, redact(str(exc)))
    return ComplianceResult.objects.create(device=device, compliant=None, error=redact(str(exc)))


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
