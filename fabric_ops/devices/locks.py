"""Per-device locks in Redis, so that two jobs (or a job and a remediation) never touch one switch at once.

A lock is a Redis key with an owner token and a time-to-live: a worker that
dies mid-change frees the switch when the TTL runs out instead of wedging it
forever. Release only deletes the key if we still own it (compare-and-delete
in a Lua script), so a slow job cannot release a lock that expired and was
taken by someone else.
"""

from __future__ import annotations

import functools
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
LOCK_PREFIX = os.environ.get("FABRIC_OPS_LOCK_PREFIX", "fabric_ops")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class DeviceBusy(DeviceError):
    """Another job holds the device's lock."""


@functools.cache
def _client() -> redis.Redis:
    """One pooled client per process, with timeouts: a hung Redis must fail a push, not freeze it."""
    url = LOCK_REDIS_URL or settings.CELERY_BROKER_URL
    if not url.startswith("redis"):
        url = "redis://127.0.0.1:6379/0"
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def lock_key(hostname: str) -> str:
    """The Redis key of a device's lock; FABRIC_OPS_LOCK_PREFIX keeps test runs apart from a running platform."""
    return f"{LOCK_PREFIX}:device-lock:{hostname}"


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
    try:
        while not client.set(lock_key(hostname), token, nx=True, ex=ttl_seconds):
            if time.monotonic() >= deadline:
                raise DeviceBusy(hostname, f"locked by {holder(hostname) or 'another job'}")
            time.sleep(0.1)
    except redis.RedisError as exc:
        raise DeviceError(hostname, f"lock service unavailable: {exc}") from exc
    logger.debug("lock taken on %s by %s", hostname, owner)
    try:
        yield
    finally:
        try:
            client.eval(_RELEASE, 1, lock_key(hostname), token)
        except redis.RedisError as exc:  # the TTL frees it; never mask the block's own outcome
            logger.warning("lock on %s not released (%s); it expires in %d s", hostname, exc, ttl_seconds)
        else:
            logger.debug("lock released on %s by %s", hostname, owner)
