"""Telemetry models: subscription profiles (what each device streams)."""

from .profiles import SubscriptionProfile

__all__ = ["SubscriptionProfile"]
