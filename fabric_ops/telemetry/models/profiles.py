"""SubscriptionProfile: per role/platform gNMI subscriptions, overriding the built-in defaults."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from fabric_ops.errors import ConfigurationError
from fabric_ops.topology.choices import DeviceRole, Platform

__all__ = ["SubscriptionProfile"]


class SubscriptionProfile(models.Model):
    """Paths, modes and intervals for the devices of one role and/or platform (blank = any).

    ``subscriptions`` is a list of ``{"path": "/interfaces/...", "mode": "SAMPLE"|"ON_CHANGE", "interval_s": 1}``.
    The most specific enabled row wins (role+platform > role > platform > neither); with no matching row the
    built-in default of ``fabric_ops.telemetry.subscriptions`` applies. Collectors read profiles at start:
    restart them after a change (no hot reconfiguration, on purpose).
    """

    class Encoding(models.TextChoices):
        PROTO = "proto", "PROTO (typed values)"
        JSON = "json", "JSON"
        JSON_IETF = "json_ietf", "JSON_IETF (RFC 7951)"

    name = models.SlugField(max_length=64, unique=True)
    role = models.CharField(max_length=20, choices=DeviceRole.choices, blank=True)
    platform = models.CharField(max_length=20, choices=Platform.choices, blank=True)
    encoding = models.CharField(max_length=10, choices=Encoding.choices, default=Encoding.PROTO)
    subscriptions = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=("role", "platform"), name="telemetry_profile_one_per_role_platform")
        ]

    def __str__(self) -> str:
        return self.name

    def to_profile(self):
        """The immutable :class:`~fabric_ops.telemetry.subscriptions.Profile` a collector uses."""
        from fabric_ops.telemetry.subscriptions import Profile, SubscriptionSpec

        if not isinstance(self.subscriptions, list):
            raise ConfigurationError(f"subscription profile {self.name!r}: subscriptions must be a list")
        specs = tuple(
            SubscriptionSpec.from_dict(entry, f"subscription profile {self.name!r}") for entry in self.subscriptions
        )
        return Profile(self.name, specs, self.encoding)

    def clean(self) -> None:
        try:
            self.to_profile()
        except ConfigurationError as exc:
            raise ValidationError(str(exc)) from exc
