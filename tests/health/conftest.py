"""Fixtures of the health tests that talk to the detection loop through real Redis."""

import uuid

import pytest
import redis


@pytest.fixture
def client():
    return redis.Redis.from_url("redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix(client, settings):
    """A private telemetry key prefix (the handoff stream, latest values, detection state), removed afterwards."""
    value = f"fabric_ops:test-health:{uuid.uuid4().hex[:8]}"
    settings.FABRIC_OPS_TELEMETRY_REDIS_PREFIX = value
    yield value
    for key in client.scan_iter(f"{value}:*"):
        client.delete(key)
