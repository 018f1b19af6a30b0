"""Settings of the Celery worker subprocess in test_celery_worker.py: the product's, with a short visibility
timeout so that a message a killed worker never acknowledged is re-delivered within seconds, not an hour."""

from fabric_ops.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 5}
