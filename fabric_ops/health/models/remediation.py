"""Remediation runs (a playbook applied to an incident), their actions (the audit trail), and cooldowns."""

from django.db import models
from django.db.models import Q

from ..choices import Mode, RunStatus

__all__ = ["ActionRecord", "Cooldown", "RemediationRun"]

ACTIVE_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.VERIFYING, RunStatus.AWAITING_APPROVAL)


class RemediationRun(models.Model):
    """One playbook applied to one incident: the guardrail verdict, the actions, verification, the outcome.

    ``idempotency_key`` (incident + playbook + attempt) makes a re-delivered Celery task find the run it already
    made; ``target_key`` with a partial unique constraint means never two active remediations on one object.
    """

    incident = models.ForeignKey("health.Incident", on_delete=models.CASCADE, related_name="runs")
    playbook = models.CharField(max_length=100)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.AUTO)
    idempotency_key = models.CharField(max_length=200, unique=True)
    target_key = models.CharField(max_length=200, help_text="The object acted on: link:42, device:leaf1, ...")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.PENDING)
    reason = models.TextField(blank=True)
    guardrail = models.JSONField(default=dict, blank=True, help_text="The guardrail verdict and its figures")
    verification = models.JSONField(default=dict, blank=True)
    approved_by = models.CharField(max_length=150, blank=True)
    # A person declined a run waiting for approval: status ``refused`` with these set (not a guardrail refusal).
    rejected_by = models.CharField(max_length=150, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    restore_after = models.DateTimeField(null=True, blank=True, help_text="Earliest automatic restore")
    restore_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.AUTO)
    restored_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the executing worker")
    committed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["target_key"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="remediation_one_active_per_target",
            )
        ]

    def __str__(self) -> str:
        return f"remediation {self.pk} {self.playbook} on {self.target_key} ({self.status})"


class ActionRecord(models.Model):
    """One action of a run (or its rollback/restore): what, on what, why, the push job, its diff and result."""

    run = models.ForeignKey(RemediationRun, on_delete=models.CASCADE, related_name="actions")
    sequence = models.PositiveSmallIntegerField()
    phase = models.CharField(max_length=10, default="act", help_text="act, rollback or restore")
    action = models.CharField(max_length=30)
    target = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, default="pending")
    push_job = models.ForeignKey(
        "fabricconfig.PushJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    diff = models.TextField(blank=True)
    result = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "phase", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "phase", "sequence"], name="action_once_per_run_phase_step")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target}: {self.status}"


class Cooldown(models.Model):
    """A playbook may not act again on one object before ``until`` (flapping remediations do more harm)."""

    playbook = models.CharField(max_length=100)
    target_key = models.CharField(max_length=200)
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["playbook", "target_key"], name="cooldown_once")]
