from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "fabric_ops.health"
    label = "health"
    verbose_name = "Health: detection, incidents and remediation"
