"""What operators configure: receivers, the route tree, inhibition, silences, on-call and escalation, rules."""

from __future__ import annotations

from datetime import datetime

from django.db import models

from ..choices import ReceiverKind, RuleSource, SilenceKind

__all__ = [
    "AlertRule",
    "EscalationPolicy",
    "EscalationStep",
    "InhibitRule",
    "OnCallSchedule",
    "Receiver",
    "Route",
    "Silence",
]


class Receiver(models.Model):
    """Where notifications go. Secrets (webhook tokens, routing keys, SMTP passwords) are NOT stored here:
    ``secret_name`` names an entry of the secret store (see fabric_ops/alerting/secrets.py), resolved at send time.
    """

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=12, choices=ReceiverKind.choices)
    url = models.CharField(
        max_length=300, blank=True, help_text="Endpoint without secrets (vendor default when empty); SMTP: host:port"
    )
    secret_name = models.CharField(max_length=64, blank=True, help_text="Name of the secret-store entry")
    options = models.JSONField(default=dict, blank=True, help_text="Kind-specific, non-secret options")
    send_resolved = models.BooleanField(default=True)
    # Per-receiver retry policy: attempts in all, first backoff, multiplier, cap (seconds).
    max_attempts = models.PositiveSmallIntegerField(default=5)
    backoff_s = models.FloatField(default=2.0)
    backoff_factor = models.FloatField(default=2.0)
    backoff_max_s = models.FloatField(default=300.0)
    timeout_s = models.FloatField(default=10.0)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_max_s, self.backoff_s * self.backoff_factor ** max(0, attempt - 1))


class Route(models.Model):
    """A node of the route tree (Alertmanager semantics): the root matches everything; children are tried in
    ``order``; the first match wins unless it sets ``continue_matching``. Unset timings and receiver inherit.
    """

    name = models.SlugField(max_length=64, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    order = models.PositiveIntegerField(default=0)
    matchers = models.JSONField(default=list, blank=True, help_text='["severity=~critical|major", "site=sjc"]')
    receiver = models.ForeignKey(Receiver, null=True, blank=True, on_delete=models.PROTECT, related_name="routes")
    escalation = models.ForeignKey(
        "alerting.EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="routes"
    )
    continue_matching = models.BooleanField(default=False)
    group_by = models.JSONField(null=True, blank=True, help_text='Label names; ["..."] groups by every label')
    group_wait_s = models.FloatField(null=True, blank=True)
    group_interval_s = models.FloatField(null=True, blank=True)
    repeat_interval_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["parent_id", "order", "id"]

    def __str__(self) -> str:
        return self.name


class InhibitRule(models.Model):
    """Mute ``target`` alerts while a ``source`` alert fires and the ``equal`` labels agree.

    ``equal`` items are label names, or ``source_label=target_label`` when the two sides name the same thing
    differently (a device-down alert's ``device`` against a link alert's ``peer_device``).
    """

    name = models.SlugField(max_length=64, unique=True)
    source_matchers = models.JSONField(default=list)
    target_matchers = models.JSONField(default=list)
    equal = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class Silence(models.Model):
    """Mute matching alerts between ``starts_at`` and ``ends_at``; a maintenance window is a silence kind."""

    kind = models.CharField(max_length=12, choices=SilenceKind.choices, default=SilenceKind.SILENCE)
    matchers = models.JSONField(help_text='["device=leaf1", "alertname=~Link.*"]')
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    comment = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expired_early_at = models.DateTimeField(null=True, blank=True, help_text="Set when expired before ends_at")

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} {self.matchers} until {self.ends_at:%Y-%m-%d %H:%M}"

    def active_at(self, when: datetime) -> bool:
        end = min(self.ends_at, self.expired_early_at) if self.expired_early_at else self.ends_at
        return self.starts_at <= when < end


class OnCallSchedule(models.Model):
    """A rotation: ``layers`` is a list of receiver names, each on call for ``shift_s`` from ``starts_at``."""

    name = models.SlugField(max_length=64, unique=True)
    starts_at = models.DateTimeField()
    shift_s = models.PositiveIntegerField(default=7 * 24 * 3600)
    rotation = models.JSONField(help_text='Receiver names in rotation order: ["pd-alice", "pd-bob"]')

    def __str__(self) -> str:
        return self.name

    def receiver_name_at(self, when: datetime) -> str:
        if not self.rotation:
            return ""
        shifts = max(0, int((when - self.starts_at).total_seconds() // self.shift_s))
        return str(self.rotation[shifts % len(self.rotation)])


class EscalationPolicy(models.Model):
    """Steps tried in order: each step's target is notified if the group is still unacknowledged ``after_s``
    seconds after the previous step was notified (primary, then secondary, ...)."""

    name = models.SlugField(max_length=64, unique=True)
    repeat = models.BooleanField(default=False, help_text="Start again from the first step after the last")

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    after_s = models.FloatField(help_text="Ack timeout of the previous step before this one is notified")
    receiver = models.ForeignKey(Receiver, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    schedule = models.ForeignKey(OnCallSchedule, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["policy", "order"]
        constraints = [models.UniqueConstraint(fields=["policy", "order"], name="escalation_step_once")]

    def __str__(self) -> str:
        return f"{self.policy} step {self.order}"

    def receiver_at(self, when: datetime) -> Receiver | None:
        if self.receiver_id:
            return self.receiver
        if self.schedule_id:
            return Receiver.objects.filter(name=self.schedule.receiver_name_at(when)).first()
        return None


class AlertRule(models.Model):
    """Turns incidents or telemetry into alerts.

    Incident rules: ``incident_kinds`` (empty = all), ``incident_statuses`` (empty = every active status),
    ``min_severity``. Telemetry rules: ``measurement`` and ``field`` of the latest values (docs/telemetry.md) —
    or a gNMI leaf ``path`` that the collector's normaliser maps to them —, ``tag_matchers`` on the series tags,
    ``op`` and ``threshold``, held for ``for_s`` seconds.
    ``labels`` are added to every alert; ``severity`` (when set) overrides the source's.
    """

    name = models.SlugField(max_length=64, unique=True)
    source = models.CharField(max_length=10, choices=RuleSource.choices)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=10, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    incident_kinds = models.JSONField(default=list, blank=True)
    incident_statuses = models.JSONField(default=list, blank=True)
    min_severity = models.CharField(max_length=10, blank=True)
    path = models.CharField(
        max_length=300,
        blank=True,
        help_text="gNMI leaf path instead of measurement/field: /interfaces/interface[name=*]/state/counters/in-errors",
    )
    measurement = models.CharField(max_length=64, blank=True)
    field = models.CharField(max_length=64, blank=True)
    tag_matchers = models.JSONField(default=list, blank=True)
    op = models.CharField(max_length=2, blank=True, choices=[(o, o) for o in (">", ">=", "<", "<=", "==", "!=")])
    threshold = models.FloatField(null=True, blank=True)
    for_s = models.FloatField(default=0.0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
