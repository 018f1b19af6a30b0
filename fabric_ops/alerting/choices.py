"""Enumerations of the alerting app; the values are what the API and the receivers' payloads use."""

from django.db import models


class ReceiverKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (Alertmanager JSON)"
    SLACK = "slack", "Slack incoming webhook"
    PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
    EMAIL = "email", "Email (SMTP)"
    DINGTALK = "dingtalk", "DingTalk robot"
    WECOM = "wecom", "WeCom group robot"
    FEISHU = "feishu", "Feishu custom bot"


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class GroupState(models.TextChoices):
    ACTIVE = "active", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CLOSED = "closed", "Closed (every alert resolved)"


class NotificationKind(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"
    ACKNOWLEDGE = "acknowledge", "Acknowledged"
    ESCALATION = "escalation", "Escalation"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (not retried)"
    GAVE_UP = "gave-up", "Gave up after the last retry"


class SilenceKind(models.TextChoices):
    SILENCE = "silence", "Silence"
    MAINTENANCE = "maintenance", "Maintenance window"


class RuleSource(models.TextChoices):
    INCIDENT = "incident", "Incident"
    TELEMETRY = "telemetry", "Telemetry"
