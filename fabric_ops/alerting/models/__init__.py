from .alerts import Alert, AlertGroup, DeliveryAttempt, Notification, RuleState
from .config import (
    AlertRule,
    EscalationPolicy,
    EscalationStep,
    InhibitRule,
    OnCallSchedule,
    Receiver,
    Route,
    Silence,
)

__all__ = [
    "Alert",
    "AlertGroup",
    "AlertRule",
    "DeliveryAttempt",
    "EscalationPolicy",
    "EscalationStep",
    "InhibitRule",
    "Notification",
    "OnCallSchedule",
    "Receiver",
    "Route",
    "RuleState",
    "Silence",
]
