from django.apps import AppConfig


class LabConfig(AppConfig):
    name = "fabric_ops.lab"
    verbose_name = "Virtual lab"
