"""Configuration intents (what every switch should look like), one module per domain."""

from .intents import IntentAssignment, RoceProfile, UnderlayProfile

__all__ = ["IntentAssignment", "RoceProfile", "UnderlayProfile"]
