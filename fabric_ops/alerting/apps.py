from django.apps import AppConfig


class AlertingConfig(AppConfig):
    name = "fabric_ops.alerting"
    label = "alerting"
    verbose_name = "Alerting: rules, routes, receivers, silences, escalation"

    def ready(self) -> None:
        # The incident adapter listens to fabric_ops.health's Incident saves (a thin, removable coupling).
        from . import adapters  # noqa: F401
