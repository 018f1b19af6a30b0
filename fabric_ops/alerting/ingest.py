"""The entry points other parts call to raise and resolve alerts (health, telemetry rules, the API, scripts).

from fabric_ops.alerting.ingest import raise_alert, resolve_alert
raise_alert({"alertname": "LinkDown", "severity": "major", "device": "leaf1", "interface": "Et1"},
            {"summary": "leaf1 Et1 down"}, source="incident:42")
resolve_alert({"alertname": "LinkDown", ...})       # or resolve_alert(fingerprint="...")
"""

from .engine import acknowledge, raise_alert, resolve_alert, resolve_group

__all__ = ["acknowledge", "raise_alert", "resolve_alert", "resolve_group"]
