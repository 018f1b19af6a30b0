"""Health of the platform's parts, for /api/health/: database, broker, InfluxDB, Celery workers, collectors.

Each check returns ``{"ok": bool, "latency_ms": float | None, "error": str, ...details}`` and never raises.
Collectors report through the telemetry handoff (Redis hashes, ``fabric_ops.telemetry.handoff``); health
lists what is there and never invents a collector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 1.0


def redact_url(url: str) -> str:
    """The URL without its password (broker URLs may carry one)."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return parts.geturl()


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"ok": True, "error": "", **check()}
    except Exception as exc:  # a health check reports failures, whatever they are
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result.setdefault("latency_ms", round((time.perf_counter() - started) * 1000, 1))
    return result


def check_database() -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"vendor": connection.vendor}

    return _timed(run)


def broker_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=CHECK_TIMEOUT_S, socket_timeout=CHECK_TIMEOUT_S
    )


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL

    def run() -> dict[str, Any]:
        if urlsplit(url).scheme in ("redis", "rediss", "unix"):
            broker_redis().ping()
        else:  # another transport (AMQP ...): a kombu connection proves the broker answers
            from fabric_ops.celery import app

            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_S)
        return {"url": redact_url(url)}

    return _timed(run)


def check_influxdb() -> dict[str, Any]:
    from fabric_ops.telemetry.query import InfluxQuery

    def run() -> dict[str, Any]:
        query = InfluxQuery.from_settings(timeout=CHECK_TIMEOUT_S * 2)
        try:
            answer = query.health()
        finally:
            query.close()
        return {"ok": answer["ok"], "error": answer.get("error", ""), "url": answer["url"],
                "version": answer["version"], "latency_ms": answer["latency_ms"]}  # fmt: skip

    return _timed(run)


def check_workers() -> dict[str, Any]:
    from fabric_ops.celery import app

    def run() -> dict[str, Any]:
        replies = app.control.inspect(timeout=CHECK_TIMEOUT_S).ping() or {}
        workers = sorted(replies)
        return {"ok": bool(workers), "workers": workers, "error": "" if workers else "no Celery worker answered"}

    return _timed(run)


def check_collectors() -> dict[str, Any]:
    """The collectors' own reports (``fabric_ops.telemetry.handoff``: a Redis hash per collector shard and per
    device, each entry stamped ``updated_at``); an entry not refreshed within 10 s is a collector gone."""
    from fabric_ops.telemetry.handoff import collection_health

    def run() -> dict[str, Any]:
        health = collection_health()
        collectors = [{"shard": shard, **entry} for shard, entry in sorted(health["collectors"].items())]
        devices = health["devices"].values()
        summary = {
            "devices": len(health["devices"]),
            "devices_streaming": sum(1 for d in devices if d.get("state") == "streaming" and not d["stale"]),
            "devices_stale": sum(1 for d in devices if d["stale"]),
        }
        if not collectors:
            return {"ok": False, "collectors": [], **summary, "error": "no collector has reported"}
        stale = [str(c["shard"]) for c in collectors if c["stale"]]
        error = f"not reporting (stale): shard {', '.join(stale)}" if stale else ""
        return {"ok": not stale, "collectors": collectors, **summary, "error": error}

    return _timed(run)


def platform_health() -> dict[str, Any]:
    """Every component's check; the network-bound ones run in parallel so the whole answer takes about 1 s."""
    components: dict[str, Any] = {"database": check_database()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            "broker": pool.submit(check_broker),
            "influxdb": pool.submit(check_influxdb),
            "workers": pool.submit(check_workers),
            "collectors": pool.submit(check_collectors),
        }
        for name, future in futures.items():
            components[name] = future.result()
    ok = all(c["ok"] for c in components.values())
    return {"status": "ok" if ok else "degraded", "components": components}
