from django.apps import AppConfig


class TopologyConfig(AppConfig):
    name = "fabric_ops.topology"
    verbose_name = "Topology (source of truth)"
