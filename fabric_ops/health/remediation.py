"""Remediation: apply a playbook to an incident through the config push machinery, within the guardrails.

Sequence for one incident (``remediate``), every step recorded on a :class:`RemediationRun` and its
:class:`ActionRecord` rows (the audit: playbook, reason, push job, diff, result):

1. pick the playbook (kind, scope, role, evidence); none -> ``needs-human``;
2. find or create the run by its idempotency key (incident + playbook + attempt): a re-delivered task finds the
   run it already made and resumes it, skipping finished actions; a partial unique constraint on the target keeps
   a second remediation off an object that has one in flight;
3. cooldown and guardrails (empty/wildcard targets, blast radius, drain caps, rate): refused -> ``needs-human``;
4. mode: ``dry-run`` pushes with ``dry_run`` (diff only) and restores the source of truth; ``approve`` waits for
   :func:`approve`; ``auto`` goes on;
5. actions change the source of truth (Link.state ``drained``, IntentAssignment overrides) and push the affected
   devices with ``create_job``/``run_job`` (``requested_by="playbook:<name>"``): diff, commit-confirm, device
   locks, per-device audit. Pushing the intent is idempotent: a resumed action whose change is already on the
   switch ends as ``no-change``, so an action completes exactly once;
6. verification polls a metric (``fabric_ops.health.verification``); failure -> rollback (when the playbook says
   so) and ``failed``; success -> ``mitigated`` with a restore time for drains, and a cooldown.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from fabric_ops.config.models import IntentAssignment
from fabric_ops.config.models.jobs import DeviceStatus
from fabric_ops.config.push import create_job, run_job
from fabric_ops.devices.locks import device_lock
from fabric_ops.errors import FabricOpsError, TopologyError
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Device, Link

from . import guardrails
from .choices import IncidentStatus, Mode, RunStatus, ScopeKind
from .incidents import transition
from .models import ActionRecord, Cooldown, Incident, RemediationRun
from .models.remediation import ACTIVE_RUN_STATUSES
from .playbooks import Action, Playbook, load_playbooks, select
from .topology import Port, TopologyIndex, load_index
from .verification import Latest, Subject, redis_reader, verify

logger = logging.getLogger(__name__)

GUARDRAIL_LOCK = "fabric_ops-health-guardrails"  # a device-lock key that is no device: serialises guardrail checks
RETRYABLE_RUN_STATUSES = (RunStatus.REFUSED, RunStatus.FAILED, RunStatus.ROLLED_BACK, RunStatus.DRY_RUN)
DRAINING_ACTIONS = ("drain-link", "move-dci")  # shut the links (Link.state drained)
CAPACITY_ACTIONS = (*DRAINING_ACTIONS, "cost-out-link")  # take the links' capacity away: guardrails, drain caps
RESTORABLE_ACTIONS = (*CAPACITY_ACTIONS, "disable-pfc")  # undone by the scheduled restore


@dataclass
class Plan:
    """What a playbook would touch for one incident."""

    target_key: str
    links: list[int] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # devices whose intent changes (pushed)
    ports: list[Port] = field(default_factory=list)  # ports of the links acted on (verification)
    subject: Subject = field(default_factory=Subject)


def _revert_in() -> int:
    return int(getattr(settings, "FABRIC_OPS_HEALTH_REVERT_IN", 120))


def plan(incident: Incident, playbook: Playbook, index: TopologyIndex) -> Plan:
    """The objects the playbook's actions act on; empty lists mean "nothing named" (refused later)."""
    links: list[int] = []
    devices: list[str] = []
    names = {a.action for a in playbook.actions}
    if names & {"drain-link", "bounce-port", "cost-out-link"} and incident.link_id is not None:
        links = [incident.link_id]
    if "move-dci" in names:
        if incident.scope_kind == ScopeKind.SPAN and incident.span:
            links = [index.channel_link[c] for c in index.channels_over(incident.span) if c in index.channel_link]
        elif incident.channel in index.channel_link:
            links = [index.channel_link[incident.channel]]
    ports: list[Port] = []
    for link in links:
        a, b = index.link_ends[link]
        ports += [a, b]
        devices += [a[0], b[0]]
    if names & {"apply-intent", "pfc-watchdog"} and incident.device:
        devices.append(incident.device)
    pfc_port = "disable-pfc" in names and bool(incident.device and incident.interface)
    if pfc_port:
        devices.append(incident.device)
    devices = sorted(set(devices))
    if links:
        key = f"links:{','.join(map(str, sorted(links)))}" if len(links) > 1 else f"link:{links[0]}"
    elif pfc_port and devices == [incident.device]:
        key = f"port:{incident.device}:{incident.interface}"
    elif devices:
        key = f"device:{','.join(devices)}"
    else:
        key = f"incident:{incident.pk}"
    priority = "3"
    port = (incident.device, incident.interface) if incident.device and incident.interface else None
    speeds = {f"{d}:{i}": index.port_speed.get((d, i), 0) for d, i in ports}
    subject = Subject(ports=tuple(ports), port=port, priority=priority, devices=tuple(devices),
                      extra={"port_speed_gbps": speeds})  # fmt: skip
    return Plan(key, links, devices, ports, subject)


def _evidence(incident: Incident) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for alarm in incident.alarms.all():
        merged.update(alarm.evidence or {})
    return merged


def next_attempt(incident: Incident) -> int:
    """The attempt number a deliberate retry (re-evaluation) uses: one past every run so far."""
    return incident.runs.count()


def _guardrail_verdict(incident: Incident, playbook: Playbook, p: Plan, index: TopologyIndex) -> guardrails.Verdict:
    limits = guardrails.Limits.build(getattr(settings, "FABRIC_OPS_HEALTH_GUARDRAILS", {}), playbook.guardrails)
    acting = [a for a in playbook.actions if a.action != "notify"]
    if not acting:
        return guardrails.Verdict(True)
    ports = [incident.interface] if any(a.action == "disable-pfc" for a in acting) else []
    problem = guardrails.target_problem(p.links, p.devices, ports=ports)
    if problem:
        return guardrails.Verdict(False, (problem,))
    since = timezone.now() - timedelta(seconds=limits.window_s)
    recent = (
        ActionRecord.objects.filter(phase="act", started_at__gte=since).exclude(action="notify")
        .values("run").distinct().count()
    )  # fmt: skip
    if not p.links or not any(a.action in (*CAPACITY_ACTIONS, "bounce-port") for a in acting):
        # intent changes and per-port PFC remove no capacity: only the rate limit applies
        reasons = tuple(guardrails.check_rate(recent, limits))
        return guardrails.Verdict(not reasons, reasons, {"recent_actions": recent})
    # A costed-out link carries nothing either, though the graph still sees it up: count it as removed, exactly
    # like a shut one (for the capacity left to every leaf and for the per-pod cap).
    costed = sorted(costed_out_links(index) - set(p.links))
    try:
        br = FabricGraph.load(max_age=1.0).blast_radius(links=[*p.links, *costed])
    except TopologyError as exc:
        return guardrails.Verdict(False, (str(exc),))
    drained: dict[str, int] = {}
    for lid in [*Link.objects.filter(state="drained").values_list("id", flat=True), *costed]:
        if lid in index.link_ends:
            pod = index.link_pod(lid)
            drained[pod] = drained.get(pod, 0) + 1
    new: dict[str, int] = {}
    for lid in p.links:
        pod = index.link_pod(lid)
        new[pod] = new.get(pod, 0) + 1
    return guardrails.evaluate(br, limits, drained_by_pod=drained, new_by_pod=new, recent_actions=recent)


def _notify(incident: Incident, message: str, severity: str = "major") -> str:
    """On-call notification. The alerting app routes it; until one is installed it is logged at WARNING."""
    text = f"[{severity}] {incident}: {message}"
    logger.warning("notify: %s", text)
    try:
        from fabric_ops.alerting import notify as alerting_notify  # type: ignore[attr-defined]
    except ImportError:
        return f"logged: {text}"
    alerting_notify(incident=incident, message=message, severity=severity)  # pragma: no cover - other app
    return f"sent: {text}"


def _push(devices: list[str], playbook: Playbook, incident: Incident, why: str, *, dry_run: bool) -> tuple[Any, str]:
    """Push the devices' intended configuration; returns (last job, diff). Raises FabricOpsError if it did not apply.

    Devices locked by another job (``busy``: typically a concurrent remediation on a shared spine) are pushed
    again in a new job after a short pause, for up to ``FABRIC_OPS_HEALTH_LOCK_WAIT_S`` (60 s): pushing the
    intent is idempotent, so queueing behind the other job is safe, and giving up at once would leave a link
    shut at one end only.
    """
    rows = list(Device.objects.filter(hostname__in=devices).select_related("fabric", "site"))
    if not rows:
        raise FabricOpsError(f"incident {incident.pk}: no devices to push for {why}; refusing an empty selection")
    deadline = time.monotonic() + float(getattr(settings, "FABRIC_OPS_HEALTH_LOCK_WAIT_S", 60))
    diffs: list[str] = []
    pause = 0.2
    while True:
        job = create_job(
            rows, requested_by=f"playbook:{playbook.name}", reason=f"incident {incident.pk}: {why}"[:200],
            dry_run=dry_run, canary_count=len(rows), wave_percent=100, max_failures=len(rows), revert_in=_revert_in(),
        )  # fmt: skip
        job = run_job(job.pk)
        results = list(job.devices.select_related("device"))
        diffs += [f"# {r.device.hostname}: {r.status} (push job {job.pk})\n{r.diff}" for r in results if r.diff]
        busy = [r for r in results if r.status == DeviceStatus.BUSY]
        bad = [f"{r.device.hostname}: {r.status} {r.error}".strip() for r in results
               if r.status not in (DeviceStatus.CONFIRMED, DeviceStatus.NO_CHANGE, DeviceStatus.DIFFED,
                                   DeviceStatus.BUSY)]  # fmt: skip
        if bad:
            raise FabricOpsError(f"push job {job.pk} {job.status}: {'; '.join(bad)}")
        if not busy:
            return job, "\n".join(diffs)
        if time.monotonic() >= deadline:
            names = ", ".join(f"{r.device.hostname} ({r.error})" for r in busy)
            raise FabricOpsError(f"push job {job.pk}: still locked after waiting: {names}")
        rows = [r.device for r in busy]
        time.sleep(pause)
        pause = min(2.0, pause * 2)


def costed_out_links(index: TopologyIndex) -> set[int]:
    """Links with a BGP cost-out in force at either end (the ``bgp_cost_out`` port overrides of the devices)."""
    out: set[int] = set()
    rows = IntentAssignment.objects.filter(device__isnull=False, overrides__has_key="bgp_cost_out")
    for hostname, overrides in rows.values_list("device__hostname", "overrides"):
        for ifname in overrides.get("bgp_cost_out") or ():
            link = index.port_link.get((hostname, ifname))
            if link is not None:
                out.add(link)
    return out


def _port_overrides(changes: dict[str, dict[str, list[str]]], *, add: bool) -> None:
    """Add (or remove) ports to/from each device's per-port override lists, e.g. ``{"leaf1": {"bgp_cost_out":
    ["Ethernet5/1"]}}``. Only the named ports change, so concurrent remediations on one device never undo each
    other (restoring a whole previous overrides dict would)."""
    for hostname, fields in changes.items():
        with transaction.atomic():
            dev = Device.objects.select_related("fabric").get(hostname=hostname)
            assignment, _ = IntentAssignment.objects.select_for_update().get_or_create(
                fabric=dev.fabric, role="", device=dev
            )
            overrides = dict(assignment.overrides or {})
            for key, ports in fields.items():
                current = set(overrides.get(key) or ())
                current = current | set(ports) if add else current - set(ports)
                if current:
                    overrides[key] = sorted(current)
                else:
                    overrides.pop(key, None)
            assignment.overrides = overrides
            assignment.full_clean()
            assignment.save()


def _cost_out_changes(ports: list[Port]) -> dict[str, dict[str, list[str]]]:
    """The port overrides that cost out the links whose ends are ``ports`` (both ends of each)."""
    changes: dict[str, dict[str, list[str]]] = {}
    for hostname, ifname in ports:
        changes.setdefault(hostname, {}).setdefault("bgp_cost_out", []).append(ifname)
    return changes


def _set_links(links: list[int], state: str) -> None:
    Link.objects.filter(pk__in=links).update(state=state)
    FabricGraph.invalidate()


def _intent_overrides(device: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into the device's own IntentAssignment; returns the previous overrides (for rollback)."""
    dev = Device.objects.select_related("fabric").get(hostname=device)
    assignment, _ = IntentAssignment.objects.get_or_create(fabric=dev.fabric, role="", device=dev)
    previous = dict(assignment.overrides or {})
    assignment.overrides = {**previous, **overrides}
    assignment.full_clean()
    assignment.save()
    return previous


def _apply(action: Action, record: ActionRecord, run: RemediationRun, p: Plan, playbook: Playbook,
           incident: Incident, *, dry_run: bool) -> None:  # fmt: skip
    """Carry out one action; fills the record. Raises FabricOpsError when the change did not apply."""
    params = dict(action.params)
    if action.action == "notify":
        record.result = _notify(incident, params.get("message", incident.summary), params.get("severity", "major"))
        return
    undo: dict[str, Any] = {}
    if action.action in DRAINING_ACTIONS:
        undo = {"links": p.links, "state": "up"}
        _set_links(p.links, "drained")
        devices = p.devices
    elif action.action == "bounce-port":
        _set_links(p.links, "drained")
        try:
            job, diff = _push(p.devices, playbook, incident, "bounce (down)", dry_run=dry_run)
            time.sleep(float(params.get("down_seconds", 2)))
        finally:
            _set_links(p.links, "up")
        devices = p.devices
    elif action.action == "cost-out-link":
        changes = _cost_out_changes(p.ports)
        _port_overrides(changes, add=True)
        undo = {"ports": changes, "links": p.links, "state": None}
        devices = p.devices
    elif action.action == "disable-pfc":
        if not (incident.device and incident.interface):
            raise FabricOpsError(f"incident {incident.pk}: disable-pfc needs the storming port; none is named")
        changes = {incident.device: {"pfc_disabled_ports": [incident.interface]}}
        _port_overrides(changes, add=True)
        undo = {"ports": changes}
        devices = [incident.device]
    elif action.action in ("apply-intent", "pfc-watchdog"):
        if action.action == "apply-intent":
            overrides = dict(params["overrides"])
        else:
            overrides = {"pfc_watchdog": True}
            for src, dst in (("detection_ms", "pfc_watchdog_detection_ms"),
                             ("restoration_ms", "pfc_watchdog_restoration_ms"),
                             ("watchdog_action", "pfc_watchdog_action")):  # fmt: skip
                if src in params:
                    overrides[dst] = params[src]
        devices = [incident.device]
        undo = {"device": incident.device, "overrides": _intent_overrides(incident.device, overrides)}
    else:
        raise FabricOpsError(f"action {action.action!r} has no implementation")
    record.params = {**params, "undo": undo}
    record.save(update_fields=["params"])  # a resumed or failed run knows what to undo
    try:
        job, diff = _push(devices, playbook, incident, f"{action.action} ({p.target_key})", dry_run=dry_run)
    finally:
        if dry_run:
            _undo_source_of_truth(undo)
    record.push_job, record.diff = job, diff
    record.result = f"push job {job.pk}: {job.summary}"


def _undo_source_of_truth(undo: dict[str, Any]) -> None:
    if "ports" in undo:
        _port_overrides(undo["ports"], add=False)
    if "links" in undo and undo.get("state"):  # a cost-out names its links (restore, verification) but never shut them
        _set_links(undo["links"], undo["state"])
    if "overrides" in undo:
        dev = Device.objects.select_related("fabric").get(hostname=undo["device"])
        IntentAssignment.objects.filter(fabric=dev.fabric, role="", device=dev).update(overrides=undo["overrides"])


def _rollback(run: RemediationRun, playbook: Playbook, p: Plan, incident: Incident) -> str:
    """Undo every applied action (source of truth, then push): the network goes back to before the run."""
    notes = []
    # "failed" too: an action can fail half-way (one end pushed, the other not) and must be undone where it took
    for record in run.actions.filter(phase="act", status__in=("done", "failed")).order_by("-sequence"):
        undo = (record.params or {}).get("undo") or {}
        if not undo:
            continue
        _undo_source_of_truth(undo)
        devices = sorted({*p.devices, *([undo["device"]] if "device" in undo else []), *undo.get("ports", {})})
        step = ActionRecord.objects.create(run=run, sequence=record.sequence, phase="rollback", action=record.action,
                                           target=record.target, started_at=timezone.now())  # fmt: skip
        try:
            job, diff = _push(devices, playbook, incident, f"rollback {record.action}", dry_run=False)
            step.status, step.push_job, step.diff, step.result = "done", job, diff, f"push job {job.pk}"
        except FabricOpsError as exc:
            step.status, step.result = "failed", str(exc)
        step.finished_at = timezone.now()
        step.save()
        notes.append(f"{record.action}: {step.status}")
    return ", ".join(notes) or "nothing to undo"


def remediate(incident_id: int, *, playbooks: list[Playbook] | None = None, read: Latest | None = None,
              index: TopologyIndex | None = None, attempt: int | None = None) -> RemediationRun | None:  # fmt: skip
    """Apply the matching playbook to an incident (idempotent: safe to call again with the same incident).

    ``attempt`` None resumes or returns the latest run of the playbook; a re-evaluation passes
    :func:`next_attempt` so that a refused or failed incident gets a new run (once, even if re-delivered).
    An approval does not come through here (the playbook could be selected anew): :func:`approve` executes the
    very run that was approved.
    """
    incident = Incident.objects.get(pk=incident_id)
    if incident.status in (IncidentStatus.RESOLVED, IncidentStatus.MITIGATED):
        return incident.runs.first()
    books = playbooks if playbooks is not None else load_playbooks()
    index = index or load_index()
    role = index.device_role.get(incident.device, "")
    # A deliberate retry (re-evaluation passes the next attempt) may escalate: playbooks that already acted on
    # the incident let their escalation steps (match.after) match. A re-delivery (attempt None) never escalates.
    ran = None
    if attempt is not None:
        acted = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ROLLED_BACK, RunStatus.RESTORED)
        ran = set(incident.runs.filter(status__in=acted).values_list("playbook", flat=True))
    playbook = select(books, incident.kind, incident.scope_kind, role, _evidence(incident), ran)
    if playbook is None:
        if incident.status == IncidentStatus.OPEN:
            transition(incident, IncidentStatus.NEEDS_HUMAN, reason=f"no playbook matches {incident.kind}")
        return None
    p = plan(incident, playbook, index)
    if attempt is None:  # a first delivery or a re-delivery: the latest run of this playbook, if any
        latest = incident.runs.filter(playbook=playbook.name).order_by("-pk").first()
        attempt = int(latest.idempotency_key.rsplit(":", 1)[1]) if latest else 0
    key = f"incident-{incident.pk}:{playbook.name}:{attempt}"
    run = RemediationRun.objects.filter(idempotency_key=key).first()
    if run is None:
        cooldown = Cooldown.objects.filter(playbook=playbook.name, target_key=p.target_key, until__gt=timezone.now())
        if cooldown.exists() and playbook.acts:
            transition(incident, IncidentStatus.NEEDS_HUMAN,
                       reason=f"playbook {playbook.name} is cooling down on {p.target_key} until "
                       f"{cooldown.first().until:%H:%M:%S}")  # fmt: skip
            return None
        try:
            with transaction.atomic():
                run = RemediationRun.objects.create(incident=incident, playbook=playbook.name, mode=playbook.mode,
                                                    idempotency_key=key, target_key=p.target_key,
                                                    restore_mode=playbook.restore_mode)  # fmt: skip
        except IntegrityError:
            existing = RemediationRun.objects.filter(idempotency_key=key).first()
            if existing is not None:
                run = existing
            else:
                busy = RemediationRun.objects.filter(target_key=p.target_key, status__in=ACTIVE_RUN_STATUSES).first()
                logger.info("incident %s: %s already being remediated by %s", incident.pk, p.target_key, busy)
                return busy
    if run.status in (RunStatus.SUCCEEDED, RunStatus.RESTORED, *RETRYABLE_RUN_STATUSES):
        return run  # finished: a re-delivered task does nothing
    if run.status == RunStatus.AWAITING_APPROVAL:
        return run  # only approve() executes it
    if run.status == RunStatus.PENDING:
        if not _guardrails_pass(run, incident, playbook, p, index, reserve=playbook.mode == Mode.AUTO):
            return run
        if playbook.mode == Mode.APPROVE and playbook.acts:
            run.status = RunStatus.AWAITING_APPROVAL
            run.save()
            transition(incident, IncidentStatus.NEEDS_HUMAN, reason=f"playbook {playbook.name} awaits approval")
            _notify(incident, f"approve remediation {run.pk} ({playbook.name})", "major")
            return run
    if not _claim(run, ""):
        raise RunInFlight(run)
    return _execute(run, incident, playbook, p, read or redis_reader())


def _guardrails_pass(run: RemediationRun, incident: Incident, playbook: Playbook, p: Plan, index: TopologyIndex,
                     *, reserve: bool) -> bool:  # fmt: skip
    """Check the guardrails for the run and record the verdict; refused -> the run ``refused``, the incident
    ``needs-human`` with the reason. ``reserve``: the run acts right away, so its drains and cost-outs are taken
    (marked in the source of truth) under the same fabric-wide lock as the check, so that two drains on one leaf
    cannot both pass against the same state."""
    reserve_drain = reserve and any(a.action in DRAINING_ACTIONS for a in playbook.actions)
    reserve_cost_out = reserve and any(a.action == "cost-out-link" for a in playbook.actions)
    with device_lock(GUARDRAIL_LOCK, f"remediation {run.pk}", ttl_seconds=60, wait_seconds=30):
        verdict = _guardrail_verdict(incident, playbook, p, index)
        if verdict.allowed and reserve_drain and p.links:
            _set_links(p.links, "drained")
        if verdict.allowed and reserve_cost_out and p.links:  # the next check counts these as removed
            _port_overrides(_cost_out_changes(p.ports), add=True)
    run.guardrail = verdict.as_dict()
    run.save(update_fields=["guardrail"])  # the audit keeps the figures of an allowed run too (claim reloads)
    if not verdict.allowed:
        _refuse(run, incident, "guardrail refused: " + "; ".join(verdict.reasons))
    return verdict.allowed


def _refuse(run: RemediationRun, incident: Incident, reason: str) -> None:
    run.status, run.reason, run.finished_at = RunStatus.REFUSED, reason, timezone.now()
    run.save()
    if incident.status in (IncidentStatus.OPEN, IncidentStatus.NEEDS_HUMAN, IncidentStatus.FAILED):
        transition(incident, IncidentStatus.NEEDS_HUMAN, reason=reason)
    else:  # mitigated by another run meanwhile: that stands; the refusal is on the record
        incident.reason = reason[:2000]
        incident.save(update_fields=["reason", "updated_at"])
    _notify(incident, reason, "critical")


class RunInFlight(FabricOpsError):
    """Another worker is executing this run right now (its heartbeat is fresh): try again later."""

    def __init__(self, run: RemediationRun):
        self.run = run
        super().__init__(f"{run} is being executed by another worker (heartbeat {run.heartbeat_at})")


def _stale_after() -> float:
    return float(getattr(settings, "FABRIC_OPS_HEALTH_STALE_RUN_S", 60))


def _claim(run: RemediationRun, approved_by: str) -> bool:
    """Take the run for this worker: atomically, from pending/approved, or from a worker whose heartbeat stopped.

    Two deliveries of one task (a duplicate dispatch, a re-delivery while the first worker still lives) must not
    execute one run twice at the same time; a run whose worker died (no heartbeat for ``FABRIC_OPS_HEALTH_
    STALE_RUN_S``) is resumed.
    """
    now = timezone.now()
    claimable = (
        Q(status=RunStatus.PENDING) | Q(status=RunStatus.AWAITING_APPROVAL)
        if approved_by
        else Q(status=RunStatus.PENDING)
    )
    stale = Q(status__in=(RunStatus.RUNNING, RunStatus.VERIFYING)) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - timedelta(seconds=_stale_after()))
    )
    taken = RemediationRun.objects.filter(Q(pk=run.pk) & (claimable | stale)).update(
        status=RunStatus.RUNNING, heartbeat_at=now
    )
    if taken:
        run.refresh_from_db()
    return bool(taken)


def _beat(run: RemediationRun) -> None:
    run.heartbeat_at = timezone.now()
    RemediationRun.objects.filter(pk=run.pk).update(heartbeat_at=run.heartbeat_at)


def _execute(run: RemediationRun, incident: Incident, playbook: Playbook, p: Plan, read: Latest) -> RemediationRun:
    dry_run = playbook.mode == Mode.DRY_RUN
    now = timezone.now()
    run.status, run.started_at = RunStatus.RUNNING, run.started_at or now
    run.save()
    if incident.status != IncidentStatus.MITIGATING and playbook.acts and not dry_run:
        transition(incident, IncidentStatus.MITIGATING, remediation_started_at=incident.remediation_started_at or now)
    for sequence, action in enumerate(playbook.actions):
        record, _ = ActionRecord.objects.get_or_create(
            run=run, phase="act", sequence=sequence,
            defaults={"action": action.action, "target": p.target_key, "params": dict(action.params)},
        )  # fmt: skip
        if record.status == "done":
            continue  # a resumed run: this step already completed
        record.status, record.started_at = "running", timezone.now()
        record.save()
        _beat(run)
        try:
            _apply(action, record, run, p, playbook, incident, dry_run=dry_run)
        except FabricOpsError as exc:
            record.status, record.result, record.finished_at = "failed", str(exc), timezone.now()
            record.save()
            if dry_run:
                note = "dry run"
            elif playbook.rollback:
                note = _rollback(run, playbook, p, incident)
            else:  # no rollback wanted, but the source of truth must not claim a change that did not happen
                _undo_source_of_truth((record.params or {}).get("undo") or {})
                note = "no rollback (playbook); source of truth restored"
            run.status, run.reason, run.finished_at = RunStatus.FAILED, f"{action.action} failed: {exc}; {note}", now
            run.save()
            transition(incident, IncidentStatus.FAILED, reason=run.reason)
            _notify(incident, run.reason, "critical")
            return run
        record.status, record.finished_at = "done", timezone.now()
        record.save()
    if dry_run:
        run.status, run.finished_at = RunStatus.DRY_RUN, timezone.now()
        run.reason = "dry run: diffs recorded, nothing committed"
        run.save()
        transition(incident, IncidentStatus.NEEDS_HUMAN, reason=f"dry run of {playbook.name}: review the diffs")
        return run
    committed = timezone.now()
    run.committed_at = committed
    run.status = RunStatus.VERIFYING
    run.save()
    if playbook.acts:
        incident.committed_at = committed
        incident.save(update_fields=["committed_at", "updated_at"])
    if playbook.verification is None:
        outcome = {"ok": True, "metric": None}
    else:
        outcome = verify(playbook.verification, p.subject, int(committed.timestamp() * 1e9), read,
                         sleep=lambda s: (_beat(run), time.sleep(s)))  # fmt: skip
    run.verification = outcome
    done = timezone.now()
    if outcome["ok"]:
        run.status, run.verified_at, run.finished_at = RunStatus.SUCCEEDED, done, done
        if playbook.restore_after is not None and any(a.action in RESTORABLE_ACTIONS for a in playbook.actions):
            run.restore_after = done + timedelta(seconds=playbook.restore_after)
        target_status = IncidentStatus.MITIGATED if playbook.acts else incident.status
        # one commit: a worker dying in between must not leave a succeeded run under a still-mitigating incident
        with transaction.atomic():
            run.save()
            if target_status != incident.status:
                transition(incident, target_status, verified_at=done)
    else:
        note = _rollback(run, playbook, p, incident) if playbook.rollback else "no rollback (playbook)"
        run.status = RunStatus.ROLLED_BACK if playbook.rollback else RunStatus.FAILED
        run.reason, run.finished_at = f"verification failed: {outcome.get('why')}; {note}", done
        with transaction.atomic():
            run.save()
            transition(incident, IncidentStatus.FAILED, reason=run.reason)
        _notify(incident, run.reason, "critical")
    if playbook.acts:
        Cooldown.objects.update_or_create(
            playbook=playbook.name, target_key=p.target_key,
            defaults={"until": done + timedelta(seconds=playbook.cooldown)},
        )  # fmt: skip
    return run


def approve(run_id: int, user: str, *, playbooks: list[Playbook] | None = None, read: Latest | None = None,
            index: TopologyIndex | None = None) -> RemediationRun:  # fmt: skip
    """Approve a run waiting in ``awaiting-approval`` (anyone but the automation) and execute exactly that run.

    The run is pinned: its playbook and attempt are the ones the person saw; the playbook is not selected again
    (an escalation step or new evidence could pick another). If the run can no longer act as approved (its playbook
    is gone, its target changed, a guardrail refuses now: capacity, rate), it is ``refused`` with the reason and
    the incident stays ``needs-human``. Guardrails are checked again: time passed since the run was proposed.
    The same approval delivered again (the task's worker died) resumes the run once its heartbeat is stale, and
    raises :class:`RunInFlight` while the first worker still executes it.
    """
    run = RemediationRun.objects.select_related("incident").get(pk=run_id)
    # The approval task is re-delivered when its worker died: the run it approved is resumed (its heartbeat stale).
    resume = run.status in (RunStatus.RUNNING, RunStatus.VERIFYING) and bool(user) and run.approved_by == user
    if run.status != RunStatus.AWAITING_APPROVAL and not resume:
        raise FabricOpsError(f"{run} is {run.status}, not awaiting approval")
    if not user or user.startswith("playbook:"):
        raise FabricOpsError(f"{run}: approval needs a person")
    if not _claim(run, user):  # taken from awaiting-approval atomically: of two approvals, one executes
        run.refresh_from_db()
        if resume:
            raise RunInFlight(run)
        raise FabricOpsError(f"{run} is {run.status}, not awaiting approval")
    incident = run.incident
    books = playbooks if playbooks is not None else load_playbooks()
    playbook = next((b for b in books if b.name == run.playbook), None)
    if playbook is None:
        _refuse(run, incident, f"approved by {user} but playbook {run.playbook!r} no longer exists")
        return run
    index = index or load_index()
    p = plan(incident, playbook, index)
    if not resume:  # a resumed run passed them and holds its reservations (they would count against it now)
        if p.target_key != run.target_key:
            _refuse(run, incident, f"approved by {user} but {run.playbook} would now act on {p.target_key}, "
                    f"not on {run.target_key} as approved")  # fmt: skip
            return run
        if not _guardrails_pass(run, incident, playbook, p, index, reserve=True):
            return run
        run.approved_by = user
        RemediationRun.objects.filter(pk=run.pk).update(approved_by=user)  # a re-delivered approval resumes it
        if incident.status == IncidentStatus.NEEDS_HUMAN:
            transition(incident, IncidentStatus.OPEN, reason=f"approved by {user}")
    return _execute(run, incident, playbook, p, read or redis_reader())


def restore(run_id: int, *, read: Latest | None = None, playbooks: list[Playbook] | None = None,
            index: TopologyIndex | None = None, approved_by: str = "") -> RemediationRun:  # fmt: skip
    """Undo a verified drain once its fault stayed clean: links back up, push, verify they come up.

    A BGP cost-out or a per-port PFC disable is undone the same way (its ports leave the device's port overrides,
    push); verified by the pushed devices' compliance (``intent-applied``): the link never went down, and whether
    traffic comes back depends on the load.
    """
    run = RemediationRun.objects.select_related("incident").get(pk=run_id)
    if run.status != RunStatus.SUCCEEDED or run.restored_at:
        return run
    if run.restore_mode == Mode.APPROVE and not approved_by:
        raise FabricOpsError(f"{run}: restore needs approval")
    record = _claim_restore(run, approved_by)
    if record is None:
        return run  # restored (or no longer restorable) by the time the claim was taken
    try:
        return _restore(run, record, read=read, playbooks=playbooks, index=index, approved_by=approved_by)
    except BaseException as exc:
        if record.status == "running":  # failed before it got to record an outcome (a bug, a lost database)
            ActionRecord.objects.filter(pk=record.pk).update(status="failed", result=str(exc)[:2000],
                                                             finished_at=timezone.now())  # fmt: skip
        raise


class RestoreInProgress(FabricOpsError):
    """Another call is restoring this run right now (a beat restore and a person's rollback, a double click)."""

    def __init__(self, run: RemediationRun, record: ActionRecord):
        self.run, self.record = run, record
        who = (record.params or {}).get("approved_by") or "auto"
        super().__init__(f"{run} is already being restored (since {record.started_at:%H:%M:%S}, by {who})")


def undo_targets(run: RemediationRun) -> tuple[list[int], dict[str, dict[str, list[str]]]]:
    """What the run's completed actions changed and a restore gives back, from their undo records: the links it
    shut (to bring up; a cost-out names its links too but never shut them) and the per-port overrides to take back
    per switch (``{"leaf1": {"bgp_cost_out": ["Ethernet1/1"]}}``: cost-out, PFC off)."""
    undos = [(params or {}).get("undo") or {}
             for params in run.actions.filter(phase="act", status="done").values_list("params", flat=True)]  # fmt: skip
    links = sorted({lid for u in undos if u.get("state") for lid in u.get("links") or ()})
    ports: dict[str, dict[str, list[str]]] = {}
    for u in undos:
        for hostname, fields in (u.get("ports") or {}).items():
            for key, names in (fields or {}).items():
                ports.setdefault(hostname, {}).setdefault(key, []).extend(names)
    return links, ports


def running_restore(run: RemediationRun) -> ActionRecord | None:
    """The restore step of ``run`` running now, or None; one left ``running`` longer than
    ``FABRIC_OPS_HEALTH_STALE_RESTORE_S`` is a dead worker's, not running."""
    stale = timezone.now() - timedelta(seconds=_restore_stale_after())
    steps = ActionRecord.objects.filter(run=run, phase="restore", status="running", started_at__gt=stale)
    return steps.order_by("-sequence").first()


def _restore_stale_after() -> float:
    """A restore claim older than this is taken over: its worker died before recording an outcome. Longer than a
    restore can take (waiting for device locks, the push, 30 s of verification)."""
    return float(getattr(settings, "FABRIC_OPS_HEALTH_STALE_RESTORE_S", 300))


def _claim_restore(run: RemediationRun, approved_by: str) -> ActionRecord | None:
    """Take the restore of ``run`` for this call, atomically: the run's row is locked while its restore steps are
    read and this call's step is written as ``running``. A second call (concurrent, or while this one pushes or
    verifies) finds that step and gets :class:`RestoreInProgress`; once the run is restored it gets the run as it
    is (None here). A step left ``running`` by a dead worker is taken over after ``FABRIC_OPS_HEALTH_STALE_
    RESTORE_S``."""
    with transaction.atomic():
        locked = RemediationRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != RunStatus.SUCCEEDED or locked.restored_at:
            run.refresh_from_db()
            return None
        busy = running_restore(run)
        if busy is not None:
            raise RestoreInProgress(run, busy)
        steps = ActionRecord.objects.filter(run=run, phase="restore")
        abandoned = steps.filter(status="running").order_by("-sequence").first()
        if abandoned is not None:
            abandoned.status, abandoned.finished_at = "failed", timezone.now()
            abandoned.result = f"abandoned: no outcome after {_restore_stale_after():.0f} s; taken over"
            abandoned.save(update_fields=["status", "finished_at", "result"])
        last = steps.order_by("-sequence").values_list("sequence", flat=True).first()
        return ActionRecord.objects.create(run=run, sequence=0 if last is None else last + 1, phase="restore",
                                           action="restore", target=run.target_key, status="running",
                                           started_at=timezone.now(), params={"approved_by": approved_by})  # fmt: skip


def _restore(run: RemediationRun, record: ActionRecord, *, read: Latest | None, playbooks: list[Playbook] | None,
             index: TopologyIndex | None, approved_by: str) -> RemediationRun:  # fmt: skip
    incident = run.incident
    books = playbooks if playbooks is not None else load_playbooks()
    playbook = next((b for b in books if b.name == run.playbook), None)
    if playbook is None:
        record.status, record.finished_at = "failed", timezone.now()
        record.result = f"playbook {run.playbook!r} no longer exists"
        record.save()
        raise FabricOpsError(f"{run}: playbook {run.playbook!r} no longer exists")
    index = index or load_index()
    links, ports = undo_targets(run)
    if not links and not ports:
        record.status, record.finished_at = "failed", timezone.now()
        record.result = "nothing was drained; nothing to restore"
        record.save()
        raise FabricOpsError(f"{run}: nothing was drained; nothing to restore")
    p = plan(incident, playbook, index)
    if links:
        p.links = links
    devices = sorted({*p.devices, *ports})
    _set_links(links, "up")
    _port_overrides(ports, add=False)
    first = run.actions.filter(phase="act").exclude(action="notify").values_list("action", flat=True).first()
    action = "restore-link" if links else f"restore-{first}"[:30]
    record.action, record.target = action, p.target_key
    record.params = {"links": links, "ports": ports, "approved_by": approved_by}
    record.save()
    try:
        job, diff = _push(devices, playbook, incident, f"restore {p.target_key}", dry_run=False)
    except FabricOpsError as exc:
        _set_links(links, "drained")
        _port_overrides(ports, add=True)
        record.status, record.result, record.finished_at = "failed", str(exc), timezone.now()
        record.save()
        raise
    record.push_job, record.diff, record.result = job, diff, f"push job {job.pk}: {job.summary}"
    from .playbooks import Verification

    since = int(timezone.now().timestamp() * 1e9)
    check = Verification("link-oper-up", "==", 1.0, 30.0) if links else Verification("intent-applied", "==", 1.0, 30.0)
    subject = p.subject if links else Subject(devices=tuple(devices))
    outcome = verify(check, subject, since, read or redis_reader())
    record.status = "done" if outcome["ok"] else "failed"
    record.finished_at = timezone.now()
    with transaction.atomic():  # the step ends with the run's outcome: no call in between sees neither
        record.save()
        if outcome["ok"]:
            run.status, run.restored_at = RunStatus.RESTORED, timezone.now()
            run.save()
            transition(incident, IncidentStatus.RESOLVED,
                       reason=f"restored after staying clean ({approved_by or 'auto'})")  # fmt: skip
        else:
            what = "the link did not come up" if links else "the devices do not run their intent"
            run.reason = f"restore pushed but {what}: {outcome.get('why')}"
            run.save()
            transition(incident, IncidentStatus.FAILED, reason=run.reason)
    return run
