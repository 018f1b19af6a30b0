"""Per-device locks in Redis, so that two jobs (or a job and a remediation) never touch one switch at once.

A lock is a Redis key with an owner token and a time-to-live: a worker that
dies mid-change frees the switch when the TTL runs out instead of wedging it
forever. Release only deletes the key if we still own it (compare-and-delete
in a Lua script), so a slow job cannot release a lock that expired and was
taken by someone else.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

from fabric_ops.errors import DeviceError

logger = logging.getLogger(__name__)

# Redis for locks; defaults to the broker's Redis so a single-machine install needs nothing more.
LOCK_REDIS_URL = os.environ.get("FABRIC_OPS_LOCK_REDIS_URL", "")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class DeviceBusy(DeviceError):
    """Another job holds the device's lock."""


def _client() -> redis.Redis:
    url = LOCK_REDIS_URL or settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        url = "redis://127.0.0.1:6379/0"
    return redis.Redis.from_url(url)


def lock_key(hostname: str) -> str:
    return f"fabric_ops:device-lock:{hostname}"


def holder(hostname: str) -> str | None:
    """Who holds the lock of ``hostname`` (the owner description), or None."""
    value = _client().get(lock_key(hostname))
    return value.decode().split("|", 1)[1] if value else None


@contextmanager
def device_lock(hostname: str, owner: str, ttl_seconds: int = 900, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the device's lock for the block; raise DeviceBusy naming the holder if it is taken.

    ``owner`` describes the job ("push job 12", "remediation 7") and is shown to
    whoever is refused. ``wait_seconds`` lets a caller queue briefly behind
    another job instead of failing at once.
    """
    client = _client()
    token = f"{secrets.token_hex(8)}|{owner}"
    deadline = time.monotonic() + wait_seconds
    while not client.set(lock_key(hostname), token, nx=True, ex=ttl_seconds):
        if time.monotonic() >= deadline:
            raise DeviceBusy(hostname, f"locked by {holder(hostname) or 'another job'}")
        time.sleep(0.1)
    logger.debug("lock taken on %s by %s", hostname, owner)
    try:
        yield
    finally:
        client.eval(_RELEASE, 1, lock_key(hostname), token)
        logger.debug("lock released on %s by %s", hostname, owner)
