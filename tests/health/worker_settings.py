"""Settings of the Celery worker subprocess in test_celery_worker.py: the product's, with a short visibility
timeout so that a message a killed worker never acknowledged is re-delivered within seconds, not an hour."""

from fabric_ops.settings import *  # noqa: F403

# unacked_mutex_expire: a worker killed while it held kombu's restore mutex must not block restores for 5 minutes
# unacked_restore_interval/throttle: sweep for abandoned messages every second (kombu's default is ~100 s)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 5,
    "unacked_mutex_expire": 5,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
# the killed worker's run is resumed once its heartbeat is this old (production: 60 s)
FABRIC_OPS_HEALTH_STALE_RUN_S = 8.0
