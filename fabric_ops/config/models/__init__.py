"""Configuration intents and the record of what was pushed, one module per domain."""

from .intents import IntentAssignment, RoceProfile, UnderlayProfile
from .jobs import ComplianceResult, ConfigBackup, DeviceConfigState, DeviceJob, PushJob

__all__ = [
    "ComplianceResult",
    "ConfigBackup",
    "DeviceConfigState",
    "DeviceJob",
    "IntentAssignment",
    "PushJob",
    "RoceProfile",
    "UnderlayProfile",
]
