from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "fabric_ops.config"
    label = "fabricconfig"  # "config" alone is too generic a label for Django's app registry
    verbose_name = "Configuration intents, rendering and push"
