"""The notification engine: alerts join groups; a group's flush decides what, if anything, to notify.

Alertmanager's rules, kept: a new group waits ``group_wait`` to collect its alerts; later changes are sent at
most every ``group_interval``; an unchanged group is re-sent after ``repeat_interval``. One notification per
group and receiver, never one per alert; a repeated trigger of a firing alert changes nothing (same fingerprint).
Added: escalation (unacknowledged groups page the next step after its timeout) and acknowledgement.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from . import clock, payload, scheduler
from .choices import AlertStatus, GroupState, NotificationKind
from .matchers import fingerprint as fingerprint_of
from .matchers import group_labels as group_labels_of
from .models import Alert, AlertGroup, EscalationPolicy, EscalationStep, Notification, Receiver
from .muting import Muter
from .routing import RouteSettings, RouteTree

logger = logging.getLogger(__name__)

# A flush task that arrives this early (clock skew between workers) still runs.
FLUSH_TOLERANCE = timedelta(milliseconds=50)


def _clean_labels(labels: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in labels.items() if v is not None and str(v) != ""}


def _group_key(route_id: int, labels: dict[str, str]) -> str:
    text = f"{route_id}:" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _arm(group: AlertGroup, settings: RouteSettings, now: datetime) -> None:
    """Make sure a flush is due (and queued) for a group whose content changed."""
    if group.next_flush_at is None:
        earliest = (
            group.last_notified_at + timedelta(seconds=settings.group_interval_s) if group.last_notified_at else now
        )
        group.next_flush_at = max(now, earliest)
    if settings.receiver_id is None and settings.escalation_id is None:
        return  # nobody to tell yet (the shipped root route has no receiver); the beat's sweep flushes it later
    if group.scheduled_for != group.next_flush_at:
        group.scheduled_for = group.next_flush_at
        scheduler.schedule_flush(group.pk, group.next_flush_at)


# A fingerprint in ``AlertGroup.notified_firing`` ending with this mark: the alert was notified in that group, but
# its labels changed since; the next flush announces it again (with the new labels).
RELABELLED = "~"


def _notified(group: AlertGroup) -> set[str]:
    return {fp.rstrip(RELABELLED) for fp in group.notified_firing}


def raise_alert(
    labels: dict[str, Any],
    annotations: dict[str, Any] | None = None,
    *,
    starts_at: datetime | None = None,
    source: str = "",
    generator_url: str = "",
    fingerprint: str | None = None,
) -> Alert:
    """Fire (or re-fire) the alert with these labels; repeated calls update the same alert (dedup).

    ``fingerprint``: the alert's identity when the source has a stable one (an incident alert: incident id + rule)
    instead of the hash of its labels; a firing alert re-raised with other labels is then updated in place and
    moves to the groups its new labels belong to (:func:`_relabel`)."""
    labels = _clean_labels(labels)
    if "alertname" not in labels:
        raise ValueError(f"alert labels need an 'alertname': {labels}")
    now = clock.now()
    fp = fingerprint or fingerprint_of(labels)
    for _ in range(3):  # a concurrent first trigger of the same fingerprint wins the unique constraint; join it
        try:
            with transaction.atomic():
                alert = Alert.objects.select_for_update().filter(fingerprint=fp, status=AlertStatus.FIRING).first()
                if alert is not None:
                    alert.last_received_at = now
                    alert.received_count += 1
                    old_labels, old_annotations = dict(alert.labels), dict(alert.annotations)
                    if annotations is not None:
                        alert.annotations = {str(k): str(v) for k, v in annotations.items()}
                    fields = ["last_received_at", "received_count", "annotations"]
                    if labels != old_labels:
                        alert.labels = labels
                        fields.append("labels")
                    alert.save(update_fields=fields)
                    if labels != old_labels:
                        _relabel(alert, old_labels, old_annotations, now)
                        logger.info("alert %s relabelled %s", fp, labels.get("alertname"))
                    return alert
                alert = Alert.objects.create(
                    fingerprint=fp,
                    labels=labels,
                    annotations={str(k): str(v) for k, v in (annotations or {}).items()},
                    starts_at=starts_at or now,
                    last_received_at=now,
                    source=source[:100],
                    generator_url=generator_url[:300],
                )
                _place(alert, now)
                logger.info("alert %s firing %s", fp, labels.get("alertname"))
                return alert
        except IntegrityError:
            continue
    raise RuntimeError(f"alert {fp}: could not be stored after 3 attempts")


def _relabel(alert: Alert, old_labels: dict[str, str], old_annotations: dict[str, str], now: datetime) -> None:
    """A firing alert's labels changed in place: keep one alert, in the groups its labels now belong to.

    * a group it stays in announces it again at its next flush (its labels changed);
    * a group it leaves, where it was notified, gets a resolved copy with the labels it was notified with (the
      alert as that group knew it ended there: its receivers, e.g. a PagerDuty incident keyed by the group, are
      closed instead of being left open), then sends the resolution at its next flush;
    * groups of routes it now matches receive it as a new alert (group_wait for a new group).
    """
    tree = RouteTree.load()
    wanted = _routes_of(tree, alert.labels)
    kept: set[str] = set()
    for group in alert.groups.select_for_update().exclude(state=GroupState.CLOSED):
        settings = tree.settings_of(group.route_id)
        notified = alert.fingerprint in _notified(group)
        if group.group_key in wanted:
            kept.add(group.group_key)
            if notified:
                marks = [fp for fp in group.notified_firing if fp.rstrip(RELABELLED) != alert.fingerprint]
                group.notified_firing = sorted([*marks, alert.fingerprint + RELABELLED])
        else:
            group.alerts.remove(alert)
            if notified:
                ended = Alert.objects.create(
                    fingerprint=alert.fingerprint,
                    labels=old_labels,
                    annotations={**old_annotations, "relabelled": "labels changed; the alert continues"},
                    status=AlertStatus.RESOLVED,
                    starts_at=alert.starts_at,
                    ends_at=now,
                    last_received_at=now,
                    received_count=alert.received_count,
                    source=alert.source,
                    generator_url=alert.generator_url,
                )
                group.alerts.add(ended)
        _arm(group, settings, now)
        group.save(update_fields=["next_flush_at", "scheduled_for", "notified_firing"])
    _place(alert, now, only={k: v for k, v in wanted.items() if k not in kept})


def _routes_of(tree: RouteTree, labels: dict[str, str]) -> dict[str, RouteSettings]:
    """Group key -> settings of every route the labels match: the groups an alert with these labels belongs in."""
    return {_group_key(s.route_id, group_labels_of(labels, list(s.group_by))): s for s in tree.match(labels)}


def _place(alert: Alert, now: datetime, only: dict[str, RouteSettings] | None = None) -> None:
    """Put a new alert into the group of every route it matches (creating groups as needed); ``only``: into these
    groups (key -> route settings) instead."""
    if only is None:
        only = _routes_of(RouteTree.load(), alert.labels)
    for key, settings in only.items():
        glabels = group_labels_of(alert.labels, list(settings.group_by))
        group = AlertGroup.objects.select_for_update().exclude(state=GroupState.CLOSED).filter(group_key=key).first()
        if group is None:
            try:
                with transaction.atomic():
                    group = AlertGroup.objects.create(
                        route_id=settings.route_id,
                        group_key=key,
                        group_labels=glabels,
                        created_at=now,
                        next_flush_at=now + timedelta(seconds=settings.group_wait_s),
                    )
            except IntegrityError:
                group = AlertGroup.objects.exclude(state=GroupState.CLOSED).get(group_key=key)
        group.alerts.add(alert)
        _arm(group, settings, now)
        group.save(update_fields=["next_flush_at", "scheduled_for"])


def resolve_alert(
    labels: dict[str, Any] | None = None, *, fingerprint: str | None = None, ends_at: datetime | None = None
) -> Alert | None:
    """Resolve the firing alert with these labels (or fingerprint); its groups send a resolved notification."""
    fp = fingerprint or fingerprint_of(_clean_labels(labels or {}))
    now = clock.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(fingerprint=fp, status=AlertStatus.FIRING).first()
        if alert is None:
            return None
        alert.status = AlertStatus.RESOLVED
        alert.ends_at = ends_at or now
        alert.save(update_fields=["status", "ends_at"])
        tree = RouteTree.load()
        for group in alert.groups.select_for_update().exclude(state=GroupState.CLOSED):
            _arm(group, tree.settings_of(group.route_id), now)
            group.save(update_fields=["next_flush_at", "scheduled_for"])
    logger.info("alert %s resolved", fp)
    return alert


def _notify(group: AlertGroup, receiver: Receiver, alerts: list[Alert], kind: str, now: datetime) -> Notification:
    body = payload.build(group, receiver, alerts, kind)
    notification = Notification.objects.create(
        group=group, receiver=receiver, kind=kind, payload=body, created_at=now, next_attempt_at=now
    )
    scheduler.schedule_delivery(notification.pk)
    return notification


def _steps(policy_id: int | None) -> list[EscalationStep]:
    if not policy_id:
        return []
    return list(EscalationStep.objects.filter(policy_id=policy_id).select_related("receiver", "schedule"))


def flush_group(group_id: int) -> list[Notification]:
    """Decide and queue what this group must send now. Safe to call at any time: a stale or early call (a
    re-delivered task, a beat sweep) sends nothing that was already sent."""
    now = clock.now()
    with transaction.atomic():
        group = AlertGroup.objects.select_for_update().filter(pk=group_id).first()
        if group is None or group.state == GroupState.CLOSED:
            return []
        if group.next_flush_at is None or now + FLUSH_TOLERANCE < group.next_flush_at:
            return []
        settings = RouteTree.load().settings_of(group.route_id)
        alerts = list(group.alerts.all())
        muter = Muter(now)
        firing = [a for a in alerts if a.status == AlertStatus.FIRING]
        muted = {a.fingerprint for a in firing if muter.why(a)}
        shown = [a for a in firing if a.fingerprint not in muted]
        marked = set(group.notified_firing)  # a relabelled alert's mark differs from its fingerprint: re-announced
        previous = _notified(group)
        resolved_known = [a for a in alerts if a.status == AlertStatus.RESOLVED and a.fingerprint in previous]
        current = {a.fingerprint for a in shown}
        repeat_due = bool(
            current
            and group.last_notified_at
            and now - group.last_notified_at >= timedelta(seconds=settings.repeat_interval_s)
        )
        sent: list[Notification] = []
        if (current and (current != marked or repeat_due)) or (resolved_known and current != marked):
            sent = _send_update(group, settings, shown, resolved_known, now)
        # A muted alert that was already notified stays "notified", so its resolution is still announced.
        group.notified_firing = sorted(current | (previous & muted))
        done = [a for a in alerts if a.status == AlertStatus.RESOLVED]
        if done:
            group.alerts.remove(*done)
        if not firing:
            group.state = GroupState.CLOSED
            group.closed_at = now
            group.next_flush_at = group.escalation_due_at = None
        else:
            group.next_flush_at = now + timedelta(seconds=settings.group_interval_s)
            if settings.receiver_id or settings.escalation_id:
                group.scheduled_for = group.next_flush_at
                scheduler.schedule_flush(group.pk, group.next_flush_at)
        group.save()
    return sent


def _send_update(
    group: AlertGroup, settings: RouteSettings, shown: list[Alert], resolved: list[Alert], now: datetime
) -> list[Notification]:
    body_alerts = shown + resolved
    if not shown:  # everything resolved: tell every receiver this group ever reached that wants resolutions
        ids = set(group.notifications.values_list("receiver_id", flat=True))
        receivers = Receiver.objects.filter(pk__in=ids, enabled=True, send_resolved=True)
        group.last_notified_at = now
        return [_notify(group, r, body_alerts, NotificationKind.RESOLVED, now) for r in receivers]
    targets: list[Receiver] = []
    if settings.receiver_id:
        targets.append(Receiver.objects.get(pk=settings.receiver_id))
    steps = _steps(settings.escalation_id)
    if group.state == GroupState.ACTIVE and steps:
        if group.last_notified_at is None:  # first page: step 0, and start its ack timer
            group.escalation_step = 0
            group.escalation_due_at = _next_due(steps, 0, now)
        step_receiver = steps[min(group.escalation_step, len(steps) - 1)].receiver_at(now)
        if step_receiver is not None:
            targets.append(step_receiver)
    if not resolved:
        body_alerts = shown
    out = []
    seen = set()
    for receiver in targets:
        if receiver.pk in seen or not receiver.enabled:
            continue
        seen.add(receiver.pk)
        alerts = body_alerts if receiver.send_resolved else shown
        out.append(_notify(group, receiver, alerts, NotificationKind.FIRING, now))
    group.last_notified_at = now
    return out


def _next_due(steps: list[EscalationStep], current: int, now: datetime) -> datetime | None:
    if current + 1 < len(steps):
        return now + timedelta(seconds=steps[current + 1].after_s)
    policy: EscalationPolicy = steps[0].policy
    if policy.repeat and steps:
        return now + timedelta(seconds=steps[0].after_s or steps[-1].after_s)
    return None


def escalate_due() -> list[Notification]:
    """Page the next escalation step of every unacknowledged group whose ack timeout has passed."""
    now = clock.now()
    out: list[Notification] = []
    ids = list(
        AlertGroup.objects.filter(state=GroupState.ACTIVE, escalation_due_at__lte=now).values_list("pk", flat=True)
    )
    tree = RouteTree.load()
    for group_id in ids:
        with transaction.atomic():
            group = AlertGroup.objects.select_for_update().get(pk=group_id)
            if group.state != GroupState.ACTIVE or not group.escalation_due_at or group.escalation_due_at > now:
                continue
            steps = _steps(tree.settings_of(group.route_id).escalation_id)
            notified = _notified(group)
            firing = [a for a in group.alerts.filter(status=AlertStatus.FIRING) if a.fingerprint in notified]
            if not steps or not firing:
                group.escalation_due_at = None
                group.save(update_fields=["escalation_due_at"])
                continue
            step = group.escalation_step + 1
            if step >= len(steps):
                step = 0  # policy.repeat: start over
            receiver = steps[step].receiver_at(now)
            group.escalation_step = step
            group.escalation_due_at = _next_due(steps, step, now)
            group.save(update_fields=["escalation_step", "escalation_due_at"])
            if receiver is not None and receiver.enabled:
                out.append(_notify(group, receiver, firing, NotificationKind.ESCALATION, now))
                logger.info("group %s escalated to step %d (%s)", group.pk, step, receiver.name)
    return out


def acknowledge(group_id: int, actor: str) -> AlertGroup:
    """Stop escalation for a group; receivers that track state (PagerDuty) get an acknowledge event."""
    now = clock.now()
    with transaction.atomic():
        group = AlertGroup.objects.select_for_update().get(pk=group_id)
        if group.state != GroupState.ACTIVE:
            return group
        group.state = GroupState.ACKNOWLEDGED
        group.acknowledged_at = now
        group.acknowledged_by = actor[:150]
        group.escalation_due_at = None
        group.save()
        firing = list(group.alerts.filter(status=AlertStatus.FIRING))
        ids = set(group.notifications.values_list("receiver_id", flat=True))
        for receiver in Receiver.objects.filter(pk__in=ids, enabled=True, kind="pagerduty"):
            _notify(group, receiver, firing, NotificationKind.ACKNOWLEDGE, now)
    logger.info("group %s acknowledged by %s", group_id, actor)
    return group


def resolve_group(group_id: int, actor: str) -> AlertGroup:
    """Resolve every firing alert of the group by hand and send the resolved notifications now."""
    now = clock.now()
    with transaction.atomic():
        group = AlertGroup.objects.select_for_update().get(pk=group_id)
        for alert in list(group.alerts.filter(status=AlertStatus.FIRING)):
            alert.status = AlertStatus.RESOLVED
            alert.ends_at = now
            alert.annotations = {**alert.annotations, "resolved_by": actor}
            alert.save(update_fields=["status", "ends_at", "annotations"])
        group.next_flush_at = now
        group.save(update_fields=["next_flush_at"])
    flush_group(group_id)
    logger.info("group %s resolved by %s", group_id, actor)
    return AlertGroup.objects.get(pk=group_id)


def flush_due() -> int:
    """Flush every group whose flush time has passed (the beat's safety net for lost or early tasks)."""
    now = clock.now()
    ids = list(
        AlertGroup.objects.exclude(state=GroupState.CLOSED).filter(next_flush_at__lte=now).values_list("pk", flat=True)
    )
    for group_id in ids:
        flush_group(group_id)
    return len(ids)
