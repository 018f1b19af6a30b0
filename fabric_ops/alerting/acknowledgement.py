"""One notion of acknowledgement between health incidents and alert groups.

An incident (fabric_ops.health) is one alert here (``source="incident:<id>"``); alerts are paged in groups. A
person acknowledges either side and the other follows:

* acknowledging an **alert group** (signed link in a notification, ``/alerting/api/groups/<id>/acknowledge/``)
  stops its escalation (:func:`fabric_ops.alerting.engine.acknowledge`) and marks every incident whose alert the
  group holds as acknowledged by the same person, with one audit row per incident naming the person and the
  channel (source ``link`` or ``api``: the incident's timeline shows it);
* acknowledging an **incident** (incident page, ``/api/incidents/<id>/acknowledge/``) acknowledges each open group
  holding its firing alert in which every firing alert now belongs to an acknowledged incident: a page that also
  carries someone else's unacknowledged incident keeps escalating for that one;
* an acknowledged incident whose alert reaches a group later (a rule that starts matching, a new route) gets that
  group acknowledged when it is synchronised (``adapters.sync_incident``).

The engine itself (grouping, timing, escalation) is unchanged: it already stops escalating acknowledged groups.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from . import engine
from .choices import AlertStatus, GroupState
from .models import Alert, AlertGroup

logger = logging.getLogger(__name__)

PREFIX = "incident:"


def incident_model() -> Any:
    """The health app's Incident model, or None: alerting runs without the health app."""
    return apps.get_model("health", "Incident") if apps.is_installed("fabric_ops.health") else None


def incident_id_of(source: str) -> int | None:
    """The incident an alert stands for (its source ``incident:<id>``); None for telemetry or API alerts."""
    rest = source[len(PREFIX) :]
    return int(rest) if source.startswith(PREFIX) and rest.isdigit() else None


def incident_ids_of(group: AlertGroup) -> list[int]:
    """Ids of the incidents whose alerts the group holds (any status)."""
    sources = group.alerts.filter(source__startswith=PREFIX).values_list("source", flat=True)
    return sorted({i for s in sources if (i := incident_id_of(s)) is not None})


def acknowledge_group(group_id: int, actor: str, *, by: Any = None, source: str = "system",
                      request: Any = None) -> AlertGroup:  # fmt: skip
    """Acknowledge a group (escalation stops) and the incidents behind its alerts.

    ``actor`` is the name recorded on the group and the incidents (``"olga (link)"``); ``by`` is who the audit log
    names (a user, or ``"link:<who>"`` for an anonymous signed link; ``actor`` when None) and ``source`` the channel
    (``link`` for a signed link, ``api``). Each incident acknowledged now gets its own audit row (``acknowledge``,
    ``health.incident``) with them, so the incident's timeline says who acknowledged it and how.
    """
    group = engine.acknowledge(group_id, actor)
    model = incident_model()
    if model is not None:
        ids = incident_ids_of(group)
        with transaction.atomic():
            now = timezone.now()
            marked = list(model.objects.select_for_update().filter(pk__in=ids, acknowledged_at__isnull=True))
            for incident in marked:
                incident.acknowledged_at, incident.acknowledged_by = now, actor[:150]
                incident.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
                changes = {
                    "acknowledged_by": ["", incident.acknowledged_by],
                    "acknowledged_at": [None, incident.acknowledged_at],
                    "alert_group": [None, group.pk],
                }
                record_audit(by if by is not None else actor, "acknowledge", incident, request, source, changes)
        if marked:
            logger.info("group %s acknowledged by %s: %d incident(s) acknowledged", group_id, actor, len(marked))
    return group


def record_audit(actor: Any, action: str, obj: Any, request: Any, source: str, changes: dict | None = None) -> None:
    """Record in the platform audit log when the web app provides it (it is optional for this app); a group's
    changes default to its new state."""
    try:
        from fabric_ops.web.audit import record
    except ImportError:  # pragma: no cover - the audit log is the web app's; alerting runs without it
        return
    if changes is None and isinstance(obj, AlertGroup):
        changes = {"state": [None, obj.state]}
    record(actor, action, obj, changes, request, source=source)


def acknowledge_incident_groups(incident: Any, actor: str) -> list[int]:
    """Acknowledge the open groups of an acknowledged incident's alert whose firing alerts are all acknowledged
    incidents; returns the ids of the groups acknowledged now."""
    model = incident_model()
    alerts = Alert.objects.filter(source=f"{PREFIX}{incident.pk}", status=AlertStatus.FIRING)
    groups = AlertGroup.objects.filter(alerts__in=alerts, state=GroupState.ACTIVE).distinct()
    done: list[int] = []
    for group in groups:
        others = group.alerts.filter(status=AlertStatus.FIRING).exclude(source=f"{PREFIX}{incident.pk}")
        sources = list(others.values_list("source", flat=True))
        ids = {i for s in sources if (i := incident_id_of(s)) is not None}
        if len(ids) != len(sources):  # a telemetry or API alert: nobody acknowledged it
            continue
        if ids and model.objects.filter(pk__in=ids, acknowledged_at__isnull=True).exists():
            continue  # another incident on this page is still unowned: keep escalating for it
        engine.acknowledge(group.pk, actor)
        done.append(group.pk)
    if done:
        logger.info("incident %s acknowledged by %s: groups %s acknowledged", incident.pk, actor, done)
    return done
