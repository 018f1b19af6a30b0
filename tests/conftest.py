"""Shared fixtures. Tests use the real database (PostgreSQL in CI) and real sockets."""

import os

# Device locks of this test run live under their own Redis prefix, apart from a running demo's locks.
os.environ.setdefault("FABRIC_OPS_LOCK_PREFIX", f"fabric_ops-test-{os.getpid()}")
