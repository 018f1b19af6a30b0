"""Incidents (one per root cause) and the alarms (detector findings) that are their evidence."""

from django.db import models
from django.db.models import Q

from ..choices import ACTIVE_STATUSES, IncidentStatus, ScopeKind

__all__ = ["Alarm", "Incident"]


class Incident(models.Model):
    """One root cause — a link, an optic, a switch, an optical span — and everything it explains.

    ``root_key`` ("link:42", "device:leaf1", "span:sjc-lax-coastal", "queue:leaf1:Et1/1/3") identifies the root
    cause; at most one active incident holds a key (a partial unique constraint), so a re-delivered alarm or a
    second detector on the same fault joins the existing incident instead of opening another.
    """

    kind = models.CharField(max_length=40, help_text="Root-cause kind: the detector kind that explains the rest")
    root_key = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    severity = models.CharField(max_length=10, default="major")
    summary = models.CharField(max_length=300)
    scope_kind = models.CharField(max_length=10, choices=ScopeKind.choices)
    fabric = models.CharField(max_length=64, blank=True)
    device = models.CharField(max_length=63, blank=True)
    interface = models.CharField(max_length=64, blank=True)
    link_id = models.BigIntegerField(null=True, blank=True)
    span = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=64, blank=True)
    impact = models.JSONField(default=dict, blank=True, help_text="Blast radius of the fault (graph API)")
    reason = models.TextField(blank=True, help_text="Why it needs a human / why remediation failed")
    # Timestamps: the fault as the switch saw it, detection, remediation start, commit, verification, resolution.
    fault_seen_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    remediation_started_at = models.DateTimeField(null=True, blank=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_alarm_at = models.DateTimeField(null=True, blank=True)
    # Acknowledgement: a person owns it now. One notion with the alerting app: acknowledging the incident (page,
    # API) acknowledges its alert groups (escalation stops), and acknowledging a group (signed link, alerting
    # API) acknowledges the incidents whose alerts it holds (fabric_ops.alerting.acknowledgement).
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["root_key"], condition=Q(status__in=ACTIVE_STATUSES), name="incident_one_active_per_root"
            )
        ]
        indexes = [models.Index(fields=["status", "kind"])]

    def __str__(self) -> str:
        return f"incident {self.pk} {self.kind} {self.root_key} ({self.status})"


class Alarm(models.Model):
    """One detector finding, with the metric values that triggered it; kept as the incident's evidence."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alarms")
    kind = models.CharField(max_length=40)
    device = models.CharField(max_length=63)
    subject = models.CharField(max_length=100, blank=True)
    value = models.FloatField(default=0.0)
    threshold = models.FloatField(default=0.0)
    message = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict, blank=True)
    seen_at = models.DateTimeField(help_text="Switch timestamp of the deciding sample")
    raised_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["incident", "raised_at"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "kind", "device", "subject"], name="alarm_once_per_incident")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.device} {self.subject}"
