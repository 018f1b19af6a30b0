"""Enumerations of the health app; values are what the API, the playbooks and the UI use."""

from django.db import models


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATING = "mitigating", "Mitigating"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"
    FAILED = "failed", "Remediation failed"
    NEEDS_HUMAN = "needs-human", "Needs a human"


# An incident in one of these holds its root-cause key: a new alarm on the same root joins it.
ACTIVE_STATUSES = (
    IncidentStatus.OPEN,
    IncidentStatus.MITIGATING,
    IncidentStatus.MITIGATED,
    IncidentStatus.FAILED,
    IncidentStatus.NEEDS_HUMAN,
)


class ScopeKind(models.TextChoices):
    DEVICE = "device", "Device"
    INTERFACE = "interface", "Interface"
    LINK = "link", "Link"
    SPAN = "span", "Optical span"
    CHANNEL = "channel", "Optical channel"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AWAITING_APPROVAL = "awaiting-approval", "Awaiting approval"
    RUNNING = "running", "Running"
    VERIFYING = "verifying", "Verifying"
    SUCCEEDED = "succeeded", "Succeeded (verified)"
    ROLLED_BACK = "rolled-back", "Verification failed; rolled back"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused by a guardrail"
    DRY_RUN = "dry-run", "Dry run (nothing changed)"
    RESTORED = "restored", "Restored after the fault cleared"


class Mode(models.TextChoices):
    AUTO = "auto", "Automatic"
    APPROVE = "approve", "Needs approval"
    DRY_RUN = "dry-run", "Dry run"
