from .incidents import Alarm, Incident
from .remediation import ActionRecord, Cooldown, RemediationRun

__all__ = ["ActionRecord", "Alarm", "Cooldown", "Incident", "RemediationRun"]
