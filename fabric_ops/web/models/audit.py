"""The audit log: every change made by a person (API, admin) or by the automation (playbooks, CLI)."""

from django.conf import settings
from django.db import models

__all__ = ["AuditEntry"]


class AuditEntry(models.Model):
    """One change. ``actor`` is a username, ``playbook:<name>``, ``cli:<login>``, ``link:<who>`` (an anonymous
    signed link) or ``demo:<login>`` (``manage.py demo`` resetting what an earlier demo left); ``user`` is set for
    people.

    ``changes`` holds ``{field: [before, after]}`` for the fields that changed (create: before is null;
    delete: after is null); secret-bearing fields are masked, never stored. Rows are never edited.
    """

    class Source(models.TextChoices):
        API = "api", "REST API"
        WEB = "web", "Web page"
        ADMIN = "admin", "Django admin"
        PLAYBOOK = "playbook", "Playbook"
        CLI = "cli", "Command line"
        SYSTEM = "system", "System"
        LINK = "link", "Signed link"
        DEMO = "demo", "Demo"

    timestamp = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SYSTEM)
    action = models.CharField(max_length=32, db_index=True, help_text="create, update, delete, approve, push, ...")
    object_type = models.CharField(max_length=100, help_text="app_label.model, e.g. topology.device")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        default_permissions = ("view",)  # written by code only; nobody adds, edits or deletes audit rows
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_repr}"
