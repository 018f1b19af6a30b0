"""Settings of the `manage.py demo` subprocess in test_demo_scenario.py: the product's, with a Celery queue of
its own so that the demo's worker and beat never exchange tasks with another test's (or a real demo's) on the
same Redis."""

import os

from fabric_ops.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ.get("FABRIC_OPS_DEMO_TEST_QUEUE", "demo-test")
