"""Push jobs, per-device outcomes, configuration backups and compliance results."""

from django.conf import settings
from django.db import models

__all__ = ["ComplianceResult", "ConfigBackup", "DeviceConfigState", "DeviceJob", "PushJob"]


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AWAITING_APPROVAL = "awaiting-approval", "Awaiting approval"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partially failed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped by the failure threshold"


class DeviceStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    NO_CHANGE = "no-change", "No change"
    DIFFED = "diffed", "Diff ready (dry run)"
    SKIPPED = "skipped", "Skipped (job stopped)"
    CONFIRMED = "confirmed", "Committed and confirmed"
    REVERTED = "reverted", "Not confirmed; reverted by the switch"
    FAILED = "failed", "Failed"
    UNREACHABLE = "unreachable", "Unreachable"
    BUSY = "busy", "Locked by another job"


FAILED_DEVICE_STATUSES = {DeviceStatus.FAILED, DeviceStatus.REVERTED, DeviceStatus.UNREACHABLE, DeviceStatus.BUSY}


class PushJob(models.Model):
    """One request to bring a set of devices to their intended configuration, in waves.

    ``requested_by`` is a username or ``playbook:<name>``, so every change can be
    traced to a person or to the automation that made it.
    """

    requested_by = models.CharField(max_length=150)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING)
    dry_run = models.BooleanField(default=False)
    require_approval = models.BooleanField(default=False)
    approved_by = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    # Wave policy: canaries first, then waves of wave_percent of the rest; stop past max_failures.
    canary_count = models.PositiveIntegerField(default=1)
    wave_percent = models.PositiveSmallIntegerField(default=25)
    max_failures = models.PositiveIntegerField(default=0, help_text="Failed devices tolerated before stopping")
    concurrency = models.PositiveSmallIntegerField(default=16)
    revert_in = models.PositiveIntegerField(default=120, help_text="Seconds before an unconfirmed commit reverts")
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"push job {self.pk}"


class DeviceJob(models.Model):
    """What one job did to one device: its diff, outcome and the device's own error text."""

    job = models.ForeignKey(PushJob, on_delete=models.CASCADE, related_name="devices")
    device = models.ForeignKey("topology.Device", on_delete=models.CASCADE, related_name="push_results")
    wave = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=12, choices=DeviceStatus.choices, default=DeviceStatus.PENDING)
    diff = models.TextField(blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "wave", "device__hostname"]
        constraints = [models.UniqueConstraint(fields=["job", "device"], name="devicejob_once_per_job")]

    def __str__(self) -> str:
        return f"{self.job} {self.device}: {self.status}"


class DeviceConfigState(models.Model):
    """Last attempt and last success per device, kept apart so that "stale" and "failed" look different."""

    device = models.OneToOneField("topology.Device", on_delete=models.CASCADE, related_name="config_state")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_status = models.CharField(max_length=12, choices=DeviceStatus.choices, blank=True)
    last_attempt_job = models.ForeignKey(PushJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_success_job = models.ForeignKey(PushJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")


class ConfigBackup(models.Model):
    """A running configuration as taken from the switch; a new row only when it changed."""

    device = models.ForeignKey("topology.Device", on_delete=models.CASCADE, related_name="config_backups")
    taken_at = models.DateTimeField(auto_now_add=True)
    sha256 = models.CharField(max_length=64)
    text = models.TextField()

    class Meta:
        ordering = ["device", "-taken_at"]
        indexes = [models.Index(fields=["device", "-taken_at"])]


class ComplianceResult(models.Model):
    """Running vs intended for one device at one time: the diff that pushing the intent would apply."""

    device = models.ForeignKey("topology.Device", on_delete=models.CASCADE, related_name="compliance_results")
    checked_at = models.DateTimeField(auto_now_add=True)
    compliant = models.BooleanField(null=True, help_text="Empty when the device could not be checked")
    diff = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["device", "-checked_at"]
        indexes = [models.Index(fields=["device", "-checked_at"])]
