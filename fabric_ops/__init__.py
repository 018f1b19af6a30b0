"""FabricOps: automation and observability for GPU training cluster networks."""

from fabric_ops.celery import app as celery_app

__all__ = ["celery_app"]
