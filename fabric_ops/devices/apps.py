from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "fabric_ops.devices"
    verbose_name = "Device access"
