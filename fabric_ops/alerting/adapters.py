"""Incident adapter: fabric_ops.health incidents become alerts through the incident AlertRules.

An incident alert's labels are ``alertname`` (from the kind: link-down -> LinkDown), ``kind``, ``severity``,
``scope``, ``fabric``, ``site``, ``role``, ``device``, ``interface``, ``peer_device``, ``link_id``, ``span``,
``channel`` and ``incident`` (its id), plus the matching rules' labels. The incident's status is an annotation.

Identity: one alert per incident, fingerprinted from the incident id, never from labels that change during the
incident's life (link-down becoming link-flap, a channel incident re-keyed into a span incident, ``page=true``
added when a needs-human rule starts matching). A label change updates that alert in place
(``engine.raise_alert(fingerprint=...)`` moves it to the groups its labels now belong to); when no rule matches any
more it resolves.

Saves of ``health.Incident`` are followed (post_save, after commit); ``reconcile_incidents`` (beat) catches
changes made with ``QuerySet.update`` and anything missed while the broker was down.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models.signals import post_save

from .choices import AlertStatus, RuleSource
from .engine import raise_alert, resolve_alert
from .models import Alert, AlertRule

logger = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "minor": 2, "major": 3, "critical": 4}
ACTIVE = ("open", "mitigating", "mitigated", "failed", "needs-human")


def alertname(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("_", "-").split("-") if part) or "Incident"


def _topology_labels(incident: Any) -> dict[str, str]:
    labels: dict[str, str] = {}
    try:
        from fabric_ops.topology.models import Device, Link
    except ImportError:  # topology is always installed in the product; keep the adapter usable without it
        return labels
    if incident.device:
        device = Device.objects.filter(hostname=incident.device).select_related("site").first()
        if device is not None:
            labels["site"] = device.site.name
            labels["role"] = device.role
    if incident.link_id:
        link = (
            Link.objects.filter(pk=incident.link_id)
            .select_related("a_interface__device", "b_interface__device")
            .first()
        )
        if link is not None:
            a, b = link.a_interface.device.hostname, link.b_interface.device.hostname
            labels["device"] = incident.device or a
            labels["peer_device"] = b if labels["device"] == a else a
    return labels


def incident_labels(incident: Any) -> dict[str, str]:
    labels = {
        "alertname": alertname(incident.kind),
        "kind": incident.kind,
        "severity": incident.severity,
        "scope": incident.scope_kind,
        "fabric": incident.fabric,
        "device": incident.device,
        "interface": incident.interface,
        "link_id": str(incident.link_id) if incident.link_id else "",
        "span": incident.span,
        "channel": incident.channel,
        "incident": str(incident.pk),
    }
    labels.update(_topology_labels(incident))
    return {k: v for k, v in labels.items() if v}


def matching_rules(incident: Any, rules: list[AlertRule]) -> list[AlertRule]:
    out = []
    for rule in rules:
        if rule.incident_kinds and incident.kind not in rule.incident_kinds:
            continue
        statuses = rule.incident_statuses or list(ACTIVE)
        if incident.status not in statuses:
            continue
        if rule.min_severity and SEVERITY_RANK.get(incident.severity, 0) < SEVERITY_RANK.get(rule.min_severity, 0):
            continue
        out.append(rule)
    return out


def incident_fingerprint(incident_id: int) -> str:
    """The identity of an incident's alert (16 hex, like label fingerprints): the incident id, nothing mutable."""
    return hashlib.sha256(f"incident:{incident_id}".encode()).hexdigest()[:16]


def sync_incident(incident: Any) -> Alert | None:
    """Raise, update in place or resolve the one alert of an incident according to the incident rules."""
    rules = matching_rules(incident, list(AlertRule.objects.filter(source=RuleSource.INCIDENT, enabled=True)))
    source = f"incident:{incident.pk}"
    fp = incident_fingerprint(incident.pk)
    firing = Alert.objects.filter(source=source, status=AlertStatus.FIRING)
    if not rules:
        result = None
        for alert in firing:
            result = resolve_alert(fingerprint=alert.fingerprint, ends_at=incident.resolved_at) or result
        return result
    # An alert of this incident under another identity (raised before identities were per incident) resolves.
    for alert in firing.exclude(fingerprint=fp):
        resolve_alert(fingerprint=alert.fingerprint)
    labels = incident_labels(incident)
    for rule in rules:
        labels.update({str(k): str(v) for k, v in rule.labels.items()})
    severity = next((r.severity for r in rules if r.severity), "")
    if severity:
        labels["severity"] = severity
    annotations = {
        "summary": incident.summary,
        "status": incident.status,
        "reason": incident.reason or "",
        "rules": ",".join(r.name for r in rules),
    }
    for rule in rules:
        annotations.update({str(k): str(v) for k, v in rule.annotations.items()})
    if getattr(incident, "acknowledged_at", None):
        annotations["acknowledged_by"] = incident.acknowledged_by
    alert = raise_alert(labels, annotations, starts_at=incident.detected_at, source=source, fingerprint=fp)
    if getattr(incident, "acknowledged_at", None):  # acknowledged before this alert reached a group
        from .acknowledgement import acknowledge_incident_groups

        acknowledge_incident_groups(incident, incident.acknowledged_by or "incident acknowledged")
    return alert


def _on_incident_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    pk = instance.pk

    def run() -> None:
        incident = sender.objects.filter(pk=pk).first()
        if incident is None:
            return
        try:
            sync_incident(incident)
        except Exception:  # alerting must never break the health pipeline; the beat reconciles later
            logger.exception("alerting: incident %s not synchronised", pk)

    transaction.on_commit(run)


def reconcile_incidents() -> int:
    """Bring incident alerts in line with the incidents (beat): returns how many incidents were looked at."""
    if not apps.is_installed("fabric_ops.health"):
        return 0
    Incident = apps.get_model("health", "Incident")
    firing_sources = set(
        Alert.objects.filter(status=AlertStatus.FIRING, source__startswith="incident:").values_list("source", flat=True)
    )
    ids = {int(s.split(":", 1)[1]) for s in firing_sources}
    incidents = Incident.objects.filter(status__in=ACTIVE) | Incident.objects.filter(pk__in=ids)
    count = 0
    for incident in incidents.distinct():
        sync_incident(incident)
        count += 1
    return count


if apps.is_installed("fabric_ops.health"):
    post_save.connect(_on_incident_saved, sender="health.Incident", dispatch_uid="alerting-incident-adapter")
