"""What the engine keeps: alerts (by fingerprint), groups (one notification stream each), notifications and
their delivery attempts (the delivery log), and telemetry rules' pending state."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from ..choices import AlertStatus, DeliveryStatus, GroupState, NotificationKind

__all__ = ["Alert", "AlertGroup", "DeliveryAttempt", "Notification", "RuleState"]


class Alert(models.Model):
    """One alert episode. ``fingerprint`` is a hash of the labels; at most one firing alert holds it, so a
    repeated trigger updates the existing row (dedup) instead of making another."""

    fingerprint = models.CharField(max_length=32, db_index=True)
    labels = models.JSONField()
    annotations = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.FIRING)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    last_received_at = models.DateTimeField()
    received_count = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=100, blank=True, help_text="incident:42, rule:<name>, api")
    generator_url = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"], condition=Q(status="firing"), name="alert_one_firing_per_fingerprint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.labels.get('alertname', '?')} {self.fingerprint} ({self.status})"


class AlertGroup(models.Model):
    """Alerts of one route that share the route's ``group_by`` labels: they are notified together."""

    route = models.ForeignKey("alerting.Route", on_delete=models.CASCADE, related_name="groups")
    group_key = models.CharField(max_length=64, help_text="Hash of route and group labels")
    group_labels = models.JSONField(default=dict)
    state = models.CharField(max_length=12, choices=GroupState.choices, default=GroupState.ACTIVE)
    alerts = models.ManyToManyField(Alert, related_name="groups")
    created_at = models.DateTimeField()
    next_flush_at = models.DateTimeField(null=True, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="ETA of the flush task already queued")
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notified_firing = models.JSONField(default=list, blank=True, help_text="Fingerprints in the last notification")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    escalation_step = models.PositiveSmallIntegerField(default=0)
    escalation_due_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["group_key"], condition=~Q(state="closed"), name="group_one_open_per_key")
        ]
        indexes = [models.Index(fields=["state", "next_flush_at"])]

    def __str__(self) -> str:
        return f"group {self.pk} {self.group_labels} ({self.state})"


class Notification(models.Model):
    """One message to one receiver about one group; ``payload`` is the Alertmanager-shaped body (no secrets)."""

    group = models.ForeignKey(AlertGroup, on_delete=models.CASCADE, related_name="notifications")
    receiver = models.ForeignKey("alerting.Receiver", on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=12, choices=NotificationKind.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"notification {self.pk} {self.kind} -> {self.receiver_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """The delivery log: every attempt, its HTTP/SMTP outcome and why it was (not) retried. No secrets."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0.0)
    status_code = models.IntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, help_text="sent, retry or fatal")
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["notification", "number"]
        constraints = [models.UniqueConstraint(fields=["notification", "number"], name="attempt_once")]


class RuleState(models.Model):
    """A telemetry rule's condition that holds but has not yet held for ``for_s`` (Prometheus' pending)."""

    rule = models.ForeignKey("alerting.AlertRule", on_delete=models.CASCADE, related_name="states")
    fingerprint = models.CharField(max_length=32)
    labels = models.JSONField()
    active_since = models.DateTimeField()
    value = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "fingerprint"], name="rulestate_once")]
