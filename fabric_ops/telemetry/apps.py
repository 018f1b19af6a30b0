from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "fabric_ops.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry"
