"""Incidents: open one per root cause, attach findings as alarms (evidence), move through the lifecycle.

Lifecycle: ``open`` -> ``mitigating`` (a playbook is acting) -> ``mitigated`` (verified) -> ``resolved`` (the
fault cleared, or a drained object was restored); ``failed`` (the action or its verification failed);
``needs-human`` (a guardrail refused, approval is required, or no playbook acts). Timestamps record the fault as
the switch saw it, detection, remediation start, commit, verification and resolution, so time-to-detect and
time-to-mitigate are measured, not guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fabric_ops.errors import TopologyError
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Link

from .choices import ACTIVE_STATUSES, IncidentStatus, RunStatus, ScopeKind
from .correlation import DRAIN_SYMPTOMS, Root, common_span, expected_down, root_of
from .detectors.base import Finding
from .models import ActionRecord, Alarm, Incident
from .topology import TopologyIndex

logger = logging.getLogger(__name__)

TRANSITIONS = {
    IncidentStatus.OPEN: {IncidentStatus.MITIGATING, IncidentStatus.NEEDS_HUMAN, IncidentStatus.RESOLVED,
                          IncidentStatus.FAILED, IncidentStatus.MITIGATED},
    IncidentStatus.MITIGATING: {IncidentStatus.MITIGATED, IncidentStatus.FAILED, IncidentStatus.NEEDS_HUMAN},
    IncidentStatus.MITIGATED: {IncidentStatus.RESOLVED, IncidentStatus.MITIGATING, IncidentStatus.FAILED},
    IncidentStatus.FAILED: {IncidentStatus.MITIGATING, IncidentStatus.NEEDS_HUMAN, IncidentStatus.RESOLVED},
    IncidentStatus.NEEDS_HUMAN: {IncidentStatus.MITIGATING, IncidentStatus.RESOLVED, IncidentStatus.OPEN},
    IncidentStatus.RESOLVED: set(),
}  # fmt: skip


# Which finding names the root cause best when several hit one root (higher wins; the incident takes its kind).
KIND_RANK = {
    "link-flap": 6, "crc-errors": 5, "fec-uncorrectable": 5, "pre-fec-ber": 4, "optic-rx-low": 4, "link-down": 2,
    "optic-rx-trend": 1, "hot-link": 1, "pfc-storm": 6, "incast": 4, "lossless-drops": 3, "pfc-pause": 2,
    "ecn-marking": 1, "ecmp-imbalance": 1,
}  # fmt: skip
UPGRADABLE = (IncidentStatus.OPEN, IncidentStatus.NEEDS_HUMAN)


def ns_to_dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC) if ns else timezone.now()


def transition(incident: Incident, status: str, *, reason: str = "", **stamps: Any) -> Incident:
    """Move an incident to ``status`` (refusing moves the lifecycle does not allow) and set timestamps."""
    if status != incident.status and status not in TRANSITIONS[incident.status]:
        raise ValueError(f"{incident}: cannot go from {incident.status} to {status}")
    incident.status = status
    if reason:
        incident.reason = reason
    if status == IncidentStatus.RESOLVED and not incident.resolved_at:
        stamps.setdefault("resolved_at", timezone.now())
    for name, value in stamps.items():
        setattr(incident, name, value)
    incident.save()
    logger.info("%s -> %s %s", incident, status, reason)
    return incident


def impact_of(root: Root, index: TopologyIndex) -> dict[str, Any]:
    """The blast radius of the root cause (what the fault itself costs), from the graph API."""
    request: dict[str, list] = {}
    if root.scope_kind == ScopeKind.DEVICE:
        request["devices"] = [root.device]
    elif root.scope_kind == ScopeKind.SPAN:
        request["spans"] = [root.span]
    elif root.link_id is not None:
        request["links"] = [root.link_id]
    if not request:
        return {}
    try:
        br = FabricGraph.load(max_age=5.0).blast_radius(**request)
    except TopologyError as exc:
        return {"error": str(exc)}
    return {
        "removed_link_ids": list(br.removed_link_ids),
        "capacity_lost_gbps": br.capacity_lost_gbps,
        "leaf_uplink_lost_gbps": br.leaf_uplink_lost_gbps,
        "dci_capacity_lost_gbps": br.dci_capacity_lost_gbps,
        "min_remaining_uplink_fraction": round(br.min_remaining_uplink_fraction, 4),
        "affected_leaves": [asdict(leaf) for leaf in br.leaves][:50],
        "affected_hosts": [h.name for h in br.hosts][:200],
        "isolated_hosts": list(br.isolated_hosts),
        "partitioned": br.partitioned,
    }


def _context() -> tuple[set[str], dict[str, str]]:
    active = Incident.objects.filter(status__in=ACTIVE_STATUSES)
    down = set(active.filter(kind="device-unreachable").values_list("device", flat=True))
    storms = dict(active.filter(kind="pfc-storm").values_list("device", "root_key"))
    return down, storms


# Runs whose drains are in force: acting, verifying, or verified and not yet restored.
HOLDING_RUN_STATUSES = (RunStatus.RUNNING, RunStatus.VERIFYING, RunStatus.SUCCEEDED)


def drained_links() -> set[int]:
    """Links FabricOps shut on purpose: Link.state ``drained`` (set when a drain's guardrail check reserves it),
    plus the links an active remediation run's undo still holds (``drain-link``, ``move-dci``) until restored."""
    links = set(Link.objects.filter(state="drained").values_list("id", flat=True))
    held = ActionRecord.objects.filter(
        phase="act", action__in=("drain-link", "move-dci"), run__status__in=HOLDING_RUN_STATUSES,
        run__restored_at__isnull=True,
    ).values_list("params", flat=True)  # fmt: skip
    for params in held:
        undo = (params or {}).get("undo") or {}
        if undo.get("state"):  # a shut (a cost-out names its links but never shuts them)
            links.update(int(lid) for lid in undo.get("links", []))
    return links


def _active_span_incident(root: Root, index: TopologyIndex) -> Incident | None:
    """The active ``span:`` incident over one of the channel's spans: its wavelengths' findings belong to it."""
    keys = [f"span:{span}" for span in index.channel_spans.get(root.channel, ())]
    if not keys:
        return None
    return Incident.objects.filter(root_key__in=keys, status__in=ACTIVE_STATUSES).order_by("pk").first()


def _open(root: Root, finding: Finding, index: TopologyIndex) -> tuple[Incident, bool]:
    """The active incident of ``root``, creating it if needed (the partial unique constraint settles races)."""
    existing = Incident.objects.filter(root_key=root.key, status__in=ACTIVE_STATUSES).first()
    if existing is not None:
        if KIND_RANK.get(root.kind, 0) > KIND_RANK.get(existing.kind, 0) and existing.status in UPGRADABLE:
            # e.g. a link-down that keeps coming back is a flap: the incident takes the more actionable kind
            logger.warning("%s is now %s: %s", existing, root.kind, finding.message)
            existing.kind, existing.summary = root.kind, f"{root.kind} {root.key}: {finding.message}"[:300]
            existing.status = IncidentStatus.OPEN
            existing.save(update_fields=["kind", "summary", "status", "updated_at"])
            return existing, True
        return existing, False
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                kind=root.kind,
                root_key=root.key,
                severity=finding.severity,
                summary=f"{root.kind} {root.key}: {finding.message}"[:300],
                scope_kind=root.scope_kind,
                fabric=root.fabric,
                device=root.device,
                interface=root.interface,
                link_id=root.link_id,
                span=root.span,
                channel=root.channel,
                fault_seen_at=ns_to_dt(finding.ts),
                impact=impact_of(root, index),
            )
    except IntegrityError:  # another worker opened it first
        return Incident.objects.get(root_key=root.key, status__in=ACTIVE_STATUSES), False
    logger.warning("opened %s: %s", incident, finding.message)
    return incident, True


def _attach(incident: Incident, finding: Finding) -> Alarm | None:
    """Attach a finding as the incident's alarm: one UPDATE when it is already there (the common case: an active
    finding re-reported every few seconds), else a new row. The incident's ``last_alarm_at`` is written with
    ``update()``: nothing that listens to incident saves (alerting) cares, and the detection loop does this for
    every active finding, so the signal round trips were most of its database time under load."""
    now = timezone.now()
    refreshed = Alarm.objects.filter(incident=incident, kind=finding.kind, device=finding.device,
                                     subject=finding.subject).update(
        value=finding.value, message=finding.message[:300], evidence=dict(finding.evidence), last_seen_at=now,
        cleared_at=None, count=F("count") + 1,
    )  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(last_alarm_at=now, updated_at=now)
    incident.last_alarm_at = incident.updated_at = now
    if refreshed:
        return None
    alarm, created = Alarm.objects.get_or_create(
        incident=incident,
        kind=finding.kind,
        device=finding.device,
        subject=finding.subject,
        defaults={
            "value": finding.value,
            "threshold": finding.threshold,
            "message": finding.message[:300],
            "evidence": dict(finding.evidence),
            "seen_at": ns_to_dt(finding.ts),
            "last_seen_at": now,
        },
    )
    if not created:  # another writer created it between the UPDATE and here
        alarm.value, alarm.message, alarm.evidence = finding.value, finding.message[:300], dict(finding.evidence)
        alarm.last_seen_at, alarm.cleared_at, alarm.count = now, None, alarm.count + 1
        alarm.save(update_fields=["value", "message", "evidence", "last_seen_at", "cleared_at", "count"])
    return alarm


def _fold_channels_into_span(incident: Incident, index: TopologyIndex) -> Incident:
    """Two or more degraded wavelengths over one span: the span is the root; channel incidents fold into it."""
    active_channels = Incident.objects.filter(
        status__in=ACTIVE_STATUSES, scope_kind=ScopeKind.CHANNEL, kind="dci-degradation"
    )
    channels = {i.channel: i for i in active_channels}
    span = common_span(channels, index) if incident.scope_kind == ScopeKind.CHANNEL else None
    if span is None:
        return incident
    members = [channels[c] for c in index.channels_over(span) if c in channels]
    with transaction.atomic():
        target = Incident.objects.select_for_update().filter(root_key=f"span:{span}", status__in=ACTIVE_STATUSES)
        span_incident = target.first()
        if span_incident is None:
            # Re-key the oldest member into the span incident (keeps its timestamps and any run it started).
            span_incident = min(members, key=lambda i: i.pk)
            span_incident.root_key, span_incident.scope_kind, span_incident.span = f"span:{span}", ScopeKind.SPAN, span
            span_incident.channel = ""
            span_incident.summary = f"dci-degradation span:{span}: {len(members)} wavelengths degraded"
            span_incident.save()
            span_incident.impact = impact_of(Root(span_incident.root_key, "dci-degradation", ScopeKind.SPAN,
                                                  span=span), index)  # fmt: skip
            span_incident.save(update_fields=["impact"])
        for member in members:
            if member.pk == span_incident.pk:
                continue
            for alarm in member.alarms.all():
                if not span_incident.alarms.filter(
                    kind=alarm.kind, device=alarm.device, subject=alarm.subject
                ).exists():
                    alarm.incident = span_incident
                    alarm.save(update_fields=["incident"])
            member.status, member.reason = IncidentStatus.RESOLVED, f"folded into {span_incident}"
            member.resolved_at = timezone.now()
            member.save()
        span_incident.summary = f"dci-degradation span:{span}: {span_incident.alarms.count()} wavelength alarms"
        span_incident.save(update_fields=["summary", "updated_at"])
    return span_incident


def _fold_links_into_device(incident: Incident, index: TopologyIndex) -> None:
    """A switch went down: the link-down incidents it caused at its peers become its evidence."""
    links = set(index.links_of(incident.device))
    for other in Incident.objects.filter(status__in=ACTIVE_STATUSES, scope_kind=ScopeKind.LINK, link_id__in=links):
        if other.kind not in ("link-down", "link-flap"):
            continue
        other.alarms.update(incident=incident)
        other.status, other.reason, other.resolved_at = (
            IncidentStatus.RESOLVED,
            f"folded into {incident}",
            timezone.now(),
        )
        other.save()


def record(
    findings: Iterable[Finding], index: TopologyIndex, *, suppressed: list[Finding] | None = None
) -> list[tuple[Incident, bool]]:
    """Attach findings to their root-cause incidents; returns (incident, newly opened) for each touched one.

    A port going down on a link FabricOps drained on purpose opens nothing (correlation rule 0): the finding is
    appended to ``suppressed`` (if given) so the caller can offer it again once the link is no longer drained.
    A degraded wavelength over a span that already has an active span incident joins that incident directly.
    """
    touched: dict[int, tuple[Incident, bool]] = {}
    context = None
    drained: set[int] | None = None
    for finding in findings:
        if finding.kind in DRAIN_SYMPTOMS:
            if drained is None:  # one query per batch, only when a batch holds a port going down
                drained = drained_links()
            link = expected_down(finding, index, drained)
            if link is not None:
                logger.info("expected down (link %s drained by FabricOps): %s %s %s", link, finding.kind,
                            finding.device, finding.subject)  # fmt: skip
                if suppressed is not None:
                    suppressed.append(finding)
                continue
        if context is None:  # two queries per batch, again only after a finding that changes them was recorded
            context = _context()
        down, storms = context
        root = root_of(finding, index, down, storms)
        span_incident = _active_span_incident(root, index) if root.scope_kind == ScopeKind.CHANNEL else None
        if span_incident is not None:  # the span is the known root: no channel incident to open and fold
            incident, new = span_incident, False
        else:
            incident, new = _open(root, finding, index)
        if root.kind in ("device-unreachable", "pfc-storm"):
            context = None
        _attach(incident, finding)
        if root.scope_kind == ScopeKind.CHANNEL and span_incident is None:
            folded = _fold_channels_into_span(incident, index)
            new = new and folded.pk == incident.pk
            incident = folded
        if new and root.scope_kind == ScopeKind.DEVICE and root.kind == "device-unreachable":
            _fold_links_into_device(incident, index)
        previous = touched.get(incident.pk)
        touched[incident.pk] = (incident, new or (previous[1] if previous else False))
    return list(touched.values())


def clear(keys: Iterable[tuple[str, str, str]]) -> int:
    """Mark alarms (kind, device, subject) of active incidents as cleared; returns how many."""
    now = timezone.now()
    count = 0
    for kind, device, subject in keys:
        count += Alarm.objects.filter(
            kind=kind, device=device, subject=subject, cleared_at__isnull=True, incident__status__in=ACTIVE_STATUSES
        ).update(cleared_at=now)
    return count


def all_clear_since(incident: Incident) -> datetime | None:
    """When the last of the incident's alarms cleared, or None while any is still raised."""
    alarms = list(incident.alarms.all())
    if not alarms or any(a.cleared_at is None for a in alarms):
        return None
    return max(a.cleared_at for a in alarms)
