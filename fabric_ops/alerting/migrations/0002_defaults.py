"""Built-in defaults: the root route, incident and telemetry rules, and inhibit rules (docs/alerting.md).

Operators change these rows freely; the migration only creates what does not exist yet (by name).
"""

from django.db import migrations

RULES = [
    {"name": "incident-needs-human", "source": "incident", "incident_statuses": ["needs-human", "failed"],
     "labels": {"page": "true"},
     "annotations": {"description": "Automation could not fix this (guardrail, approval, or remediation failed)."}},
    {"name": "incident-critical", "source": "incident", "min_severity": "critical",
     "incident_statuses": ["open", "mitigating", "mitigated", "failed", "needs-human"],
     "labels": {"page": "true"}},
    {"name": "optic-temperature-high", "source": "telemetry", "measurement": "optics", "field": "temperature_c",
     "op": ">", "threshold": 75.0, "for_s": 120.0, "severity": "warning"},
    {"name": "optic-rx-power-low", "source": "telemetry", "measurement": "optics", "field": "input_power_dbm",
     "op": "<", "threshold": -14.0, "for_s": 60.0, "severity": "major"},
]

INHIBITS = [
    # A switch that is down explains every alert on its interfaces and links, at both ends of each link.
    {"name": "device-down-inhibits-its-links", "source_matchers": ["alertname=~DeviceUnreachable|DeviceDown"],
     "target_matchers": ["scope=~link|interface|device", "alertname!~DeviceUnreachable|DeviceDown"],
     "equal": ["device"]},
    {"name": "device-down-inhibits-peer-links", "source_matchers": ["alertname=~DeviceUnreachable|DeviceDown"],
     "target_matchers": ["scope=~link|interface"], "equal": ["device=peer_device"]},
    {"name": "device-down-inhibits-telemetry-lost", "source_matchers": ["alertname=DeviceUnreachable"],
     "target_matchers": ["alertname=TelemetryLost"], "equal": ["device"]},
    # Alertmanager's classic: a critical alert mutes the warning of the same thing.
    {"name": "critical-inhibits-warning", "source_matchers": ["severity=critical"],
     "target_matchers": ["severity=~warning|minor"], "equal": ["alertname", "device", "interface"]},
]


def create(apps, schema_editor):
    Route = apps.get_model("alerting", "Route")
    AlertRule = apps.get_model("alerting", "AlertRule")
    InhibitRule = apps.get_model("alerting", "InhibitRule")
    if not Route.objects.filter(parent__isnull=True).exists():
        Route.objects.create(
            name="root", group_by=["alertname", "fabric", "site"], group_wait_s=30, group_interval_s=300,
            repeat_interval_s=4 * 3600,
        )
    for rule in RULES:
        AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)
    for rule in INHIBITS:
        InhibitRule.objects.get_or_create(name=rule["name"], defaults=rule)


def remove(apps, schema_editor):
    apps.get_model("alerting", "AlertRule").objects.filter(name__in=[r["name"] for r in RULES]).delete()
    apps.get_model("alerting", "InhibitRule").objects.filter(name__in=[r["name"] for r in INHIBITS]).delete()
    apps.get_model("alerting", "Route").objects.filter(name="root", receiver__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("alerting", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
