"""Bring devices to their intended configuration: diff, commit-confirm, verify, confirm — in waves.

The sequence per device is NAPALM's: load the candidate, compare, commit with
``revert_in`` (EOS ``commit timer``, VRP ``commit trial``), verify from the
outside, then confirm. If verification fails the job does not confirm, and the
switch reverts by itself: a push that cut the platform off from a switch heals
without anyone having to reach it.

Device I/O runs in worker threads that never touch the database; the job
runner reads and writes all rows on its own thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from napalm.base import NetworkDriver

from fabric_ops.devices.connection import CommitFailed, DeviceUnreachable, open_driver, translate_errors
from fabric_ops.devices.gnmi import check_gnmi
from fabric_ops.devices.locks import DeviceBusy, device_lock
from fabric_ops.errors import DeviceError, FabricOpsError
from fabric_ops.topology.models import Device

from .models import DeviceConfigState, DeviceJob, PushJob
from .models.jobs import FAILED_DEVICE_STATUSES, DeviceStatus, JobStatus
from .redaction import redact
from .rendering import render_devices
from .verify import missing_changes
from .waves import plan_waves

logger = logging.getLogger(__name__)


@dataclass
class DeviceOutcome:
    status: str
    diff: str = ""
    error: str = ""


# Platforms whose management API is stateless (every eAPI call is its own HTTPS request): a call on the pushing
# driver proves the API still answers as well as a new session would, once its kept-alive connection is dropped
# (a new TCP + TLS connection must be accepted after the commit). SSH platforms get a fresh login instead.
STATELESS_API_PLATFORMS = {"eos"}


def _new_connection_next(driver: NetworkDriver) -> None:
    """Make the driver's next eAPI request open a new connection (the kept-alive one proves nothing new).

    Only FabricOps' own drivers know their transport (``FabricOpsEOSDriver.drop_connection``); others: no-op.
    """
    drop = getattr(driver, "drop_connection", None)
    if callable(drop):
        drop()


def verify_device(device: Device, diff: str, driver: NetworkDriver | None = None) -> str:
    """Return why ``device`` fails post-commit verification, or "" when it passes.

    Checks from the outside: the management API or CLI answers with the running
    configuration (a new connection on an HTTP API, a new login on SSH), every line
    of the committed diff is in force there (``verify.missing_changes``), and
    gNMI answers. Reading the running configuration once costs the switch far
    less than loading the intended configuration into a new session again.
    """
    try:
        if driver is not None and device.platform in STATELESS_API_PLATFORMS:
            with translate_errors(device.hostname):  # an API that stopped answering is a failed verification
                _new_connection_next(driver)
                running = driver.get_config(retrieve="running")["running"]
        else:
            with open_driver(device) as fresh:
                running = fresh.get_config(retrieve="running")["running"]
        missing = missing_changes(diff, running)
        if missing:
            shown = "\n".join(missing[:20]) + (f"\n(+{len(missing) - 20} more)" if len(missing) > 20 else "")
            return f"the committed change is not in force:\n{shown}"
        check_gnmi(device)
    except DeviceError as exc:
        return str(exc)
    return ""


def push_device(
    device: Device,
    intended: str,
    *,
    owner: str,
    dry_run: bool,
    revert_in: int,
    verify: Callable[..., str] = verify_device,
) -> DeviceOutcome:
    """Push ``intended`` to one device under its lock. Never raises for device problems: they are the outcome."""
    try:
        with device_lock(device.hostname, owner, ttl_seconds=revert_in + 300):
            return _push_locked(device, intended, dry_run=dry_run, revert_in=revert_in, verify=verify)
    except DeviceBusy as exc:
        return DeviceOutcome(DeviceStatus.BUSY, error=str(exc))
    except DeviceUnreachable as exc:
        return DeviceOutcome(DeviceStatus.UNREACHABLE, error=str(exc))
    except FabricOpsError as exc:  # DeviceError, a missing credential, the lock service down
        return DeviceOutcome(DeviceStatus.FAILED, error=str(exc))
    except Exception as exc:
        # A bug or an untranslated library error must cost one device, never the job and its other devices.
        logger.exception("%s: unexpected error during push", device.hostname)
        return DeviceOutcome(DeviceStatus.FAILED, error=f"{device.hostname}: unexpected {type(exc).__name__}: {exc}")


def _push_locked(
    device: Device, intended: str, *, dry_run: bool, revert_in: int, verify: Callable[..., str]
) -> DeviceOutcome:
    with open_driver(device) as driver:
        try:
            driver.load_merge_candidate(config=intended)
            diff = driver.compare_config()
        except DeviceError as exc:
            # A rejected line: the session is discarded, the running configuration was never touched.
            _discard_quietly(driver, device)
            return DeviceOutcome(DeviceStatus.FAILED, error=getattr(exc, "device_text", str(exc)))
        if not diff.strip():
            driver.discard_config()
            return DeviceOutcome(DeviceStatus.NO_CHANGE)
        if dry_run:
            driver.discard_config()
            return DeviceOutcome(DeviceStatus.DIFFED, diff=diff)
        driver.commit_config(revert_in=revert_in)
        problem = verify(device, diff, driver)
        if problem:
            logger.warning("%s: verification failed, not confirming: %s", device.hostname, redact(problem))
            return DeviceOutcome(DeviceStatus.REVERTED, diff=diff, error=_roll_back(driver, device, revert_in, problem))
        driver.confirm_commit()
        return DeviceOutcome(DeviceStatus.CONFIRMED, diff=diff)


def _roll_back(driver: NetworkDriver, device: Device, revert_in: int, problem: str) -> str:
    """Undo an unverified commit now, still under the device lock, so nobody sees or confirms it meanwhile.

    If the switch cannot be reached to roll back, its own revert timer still
    undoes the change; the message says which of the two happened.
    """
    try:
        driver.rollback()  # NAPALM: aborts the pending commit-confirm (EOS session abort, VRP abort trial)
        if driver.has_pending_commit():
            raise CommitFailed(device.hostname, "commit still pending after rollback")
    except Exception as exc:
        logger.warning("%s: rollback after failed verification failed: %s", device.hostname, exc)
        return (
            f"verification failed, commit not confirmed; rollback failed ({exc}), "
            f"the switch reverts by itself within {revert_in} s: {problem}"
        )
    return f"verification failed, commit not confirmed and rolled back: {problem}"


def _discard_quietly(driver: NetworkDriver, device: Device) -> None:
    try:
        driver.discard_config()
    except Exception as exc:  # the session may already be gone with the rejected candidate
        logger.info("%s: discard after rejection: %s", device.hostname, exc)


def create_job(
    devices: list[Device],
    *,
    requested_by: str,
    reason: str = "",
    dry_run: bool = False,
    require_approval: bool = False,
    **policy,
) -> PushJob:
    """Record a push job and its device rows in waves; nothing is sent until ``run_job``."""
    if not devices:
        raise FabricOpsError("a push job needs at least one device; an empty selection is never read as 'all'")
    with transaction.atomic():
        job = PushJob.objects.create(
            requested_by=requested_by,
            reason=reason,
            dry_run=dry_run,
            require_approval=require_approval,
            status=JobStatus.AWAITING_APPROVAL if require_approval and not dry_run else JobStatus.PENDING,
            **policy,
        )
        by_name = {d.hostname: d for d in devices}
        waves = plan_waves(list(by_name), job.canary_count, job.wave_percent)
        DeviceJob.objects.bulk_create(
            DeviceJob(job=job, device=by_name[name], wave=index) for index, wave in enumerate(waves) for name in wave
        )
    return job


def approve_job(job: PushJob, approver: str) -> None:
    if job.status != JobStatus.AWAITING_APPROVAL:
        raise FabricOpsError(f"{job} is {job.status}, not awaiting approval")
    if approver == job.requested_by:
        raise FabricOpsError(f"{job}: the requester cannot approve their own change")
    job.approved_by, job.approved_at, job.status = approver, timezone.now(), JobStatus.PENDING
    job.save(update_fields=["approved_by", "approved_at", "status"])


def run_job(job_id: int, verify: Callable[..., str] = verify_device) -> PushJob:
    """Run a pending job wave by wave; stop when failures exceed the job's threshold.

    Taking the job is one conditional UPDATE, so two deliveries of the same job
    (a redelivered task, a CLI run) can never both run it. Whatever happens,
    the job ends in a final state: never left "running".
    """
    started = PushJob.objects.filter(pk=job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    job = PushJob.objects.get(pk=job_id)
    if not started:
        raise FabricOpsError(f"{job} is {job.status}; only pending jobs run")
    try:
        stopped = _run_waves(job, verify)
    except BaseException as exc:
        _close_job(job, JobStatus.FAILED, note=f"interrupted: {type(exc).__name__}: {exc}")
        raise
    counts = dict.fromkeys(DeviceStatus.values, 0)
    for status in job.devices.values_list("status", flat=True):
        counts[status] += 1
    failed = sum(counts[s] for s in FAILED_DEVICE_STATUSES)
    if stopped:
        status = JobStatus.STOPPED
    elif failed == 0:
        status = JobStatus.SUCCEEDED
    else:
        status = JobStatus.FAILED if failed == sum(counts.values()) else JobStatus.PARTIAL
    _close_job(job, status)
    logger.info("%s finished %s: %s", job, job.status, job.summary)
    return job


def _run_waves(job: PushJob, verify: Callable[..., str]) -> bool:
    """Run every wave; return True when the failure threshold stopped the job early."""
    rows = list(job.devices.select_related("device", "device__fabric", "device__site").order_by("wave", "id"))
    failures = 0
    stopped = False
    waves = sorted({row.wave for row in rows})
    for position, wave in enumerate(waves):
        wave_rows = [row for row in rows if row.wave == wave]
        if stopped:
            DeviceJob.objects.filter(pk__in=[r.pk for r in wave_rows]).update(status=DeviceStatus.SKIPPED)
            continue
        failures += _run_wave(job, wave_rows, verify)
        # Stopping only means something while waves remain; after the last one the outcome speaks for itself.
        stopped = failures > job.max_failures and position < len(waves) - 1
    return stopped


def _close_job(job: PushJob, status: str, note: str = "") -> None:
    """Final state and summary; devices never reached are marked skipped."""
    job.devices.filter(status=DeviceStatus.PENDING).update(status=DeviceStatus.SKIPPED)
    counts: dict[str, int] = {}
    for value in job.devices.values_list("status", flat=True):
        counts[value] = counts.get(value, 0) + 1
    job.status = status
    job.summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + (f"; {note}" if note else "")
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "summary", "finished_at"])


def _run_wave(job: PushJob, rows: list[DeviceJob], verify) -> int:
    """Push one wave concurrently (capped); return how many devices failed.

    Each device goes to the pool as soon as it is rendered, and its row is written as soon as it finishes, so
    rendering and database writes (this thread) overlap the device I/O (the pool) instead of adding to it.
    """
    owner = f"{job} ({job.requested_by})"
    pending: dict[Future, DeviceJob] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(job.concurrency, len(rows)))) as pool:
        # One bulk read of the source of truth for the wave; each device is still rendered just before its submit.
        rendered = render_devices(row.device for row in rows)
        for row, (_, intended) in zip(rows, rendered, strict=True):
            row.started_at = timezone.now()
            if isinstance(intended, FabricOpsError):
                _finish(job, row, DeviceOutcome(DeviceStatus.FAILED, error=f"render failed: {intended}"))
                continue
            future = pool.submit(
                push_device,
                row.device,
                intended,
                owner=owner,
                dry_run=job.dry_run,
                revert_in=job.revert_in,
                verify=verify,
            )
            pending[future] = row
        for future in as_completed(pending):
            _finish(job, pending[future], future.result())
    return sum(1 for row in rows if row.status in FAILED_DEVICE_STATUSES)


def _finish(job: PushJob, row: DeviceJob, outcome: DeviceOutcome) -> None:
    row.status, row.finished_at = outcome.status, timezone.now()
    row.diff, row.error = redact(outcome.diff), redact(outcome.error)
    row.save(update_fields=["status", "diff", "error", "started_at", "finished_at"])
    if job.dry_run:
        return
    state, _ = DeviceConfigState.objects.get_or_create(device=row.device)
    state.last_attempt_at, state.last_attempt_status, state.last_attempt_job = row.finished_at, row.status, job
    if row.status in (DeviceStatus.CONFIRMED, DeviceStatus.NO_CHANGE):
        state.last_success_at, state.last_success_job = row.finished_at, job
    state.save()
