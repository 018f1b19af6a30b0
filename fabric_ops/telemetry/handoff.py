"""What the collector hands to the rest of the platform through Redis, without an InfluxDB round trip.

Three things, all under one key prefix (setting ``FABRIC_OPS_TELEMETRY_REDIS_PREFIX``, default
``fabric_ops:telemetry``) on ``FABRIC_OPS_TELEMETRY_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``):

* ``<prefix>:events`` — a Redis stream (XADD, capped ~100k entries) of state changes, stream lost/restored and
  threshold-relevant samples, for detection to consume with XREAD/XREADGROUP. Entry fields (all strings):
  ``type`` (``state`` | ``stream`` | ``sample``), ``device``, ``ts`` (switch timestamp, epoch ns) and
  ``data`` (JSON; see docs/telemetry.md for each type).
* ``<prefix>:latest:<device>`` — a hash per device: field ``<measurement>|<k=v,...>`` (the tags below the
  device, sorted) -> JSON ``{"ts": ns, "fields": {...}, "field_ts": {name: ns}}``: ``ts`` is the newest sample of
  the series, ``field_ts`` (left out when empty) the sample time of each field sampled before it. One series mixes
  subscriptions of different intervals (interface: 1 s discards, 10 s traffic), so whoever judges a value's age
  reads its own time (:func:`field_ts`), never ``ts``. The key expires ``latest_ttl`` seconds after the last
  write, so a device no collector reports on disappears instead of showing stale numbers.
* ``<prefix>:health:devices`` (hash device -> JSON) and ``<prefix>:health:collectors`` (hash shard -> JSON),
  each entry carrying ``updated_at``; readers treat an entry older than a few seconds as "collector gone".

Why Redis: it is already the platform's broker (Celery), a stream gives detection ordering, replay after a
restart and consumer groups, and hashes give the UI one round trip per device. The publisher is one thread with a
bounded in-memory backlog: when Redis is away the newest events are kept and the overflow is counted, never
blocking a subscription thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis

from fabric_ops.telemetry.normalise import Change
from fabric_ops.telemetry.points import TelemetryEvent

logger = logging.getLogger(__name__)

URGENT_MIN_GAP_S = 0.01  # batches a burst of state changes (a switch down is hundreds) into few pipelines

__all__ = ["Handoff", "collection_health", "field_ts", "fresh_fields", "latest_values", "read_events", "series_field"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "fabric_ops:telemetry"
STREAM_MAXLEN = 100_000


def _setting(name: str, default: str) -> str:
    try:
        from django.conf import settings

        value = getattr(settings, name, None)
        if value:
            return str(value)
    except Exception:  # settings not configured (a script): fall back to the environment
        pass
    return os.environ.get(name, default)


def redis_url() -> str:
    return _setting("FABRIC_OPS_TELEMETRY_REDIS_URL", DEFAULT_URL)


def redis_prefix() -> str:
    return _setting("FABRIC_OPS_TELEMETRY_REDIS_PREFIX", DEFAULT_PREFIX)


def series_field(measurement: str, tags: Mapping[str, str]) -> str:
    """The hash field of a series in ``<prefix>:latest:<device>``: ``queue|interface=Et1,queue=3``."""
    skip = {"device", "fabric", "site", "role", "link", "peer"}
    inner = ",".join(f"{k}={tags[k]}" for k in sorted(tags) if k not in skip)
    return f"{measurement}|{inner}"


# (device, measurement, tags, newest ns, fields, {field sampled before the newest: its ns})
LatestRow = tuple[str, str, dict[str, str], int, dict[str, Any], dict[str, int]]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class Handoff:
    """Publishes events, latest values and health to Redis from one background thread."""

    def __init__(
        self,
        url: str | None = None,
        prefix: str | None = None,
        *,
        backlog: int = 100_000,
        interval: float = 0.1,
        latest_ttl: float = 120.0,
        stream_maxlen: int = STREAM_MAXLEN,
    ) -> None:
        self.url = url or redis_url()
        self.prefix = prefix or redis_prefix()
        self.interval = interval
        self.latest_ttl = latest_ttl
        self.stream_maxlen = stream_maxlen
        self._client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        self._events: deque[tuple[str, str, int, str]] = deque(maxlen=backlog)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._urgent = threading.Event()  # a state change or a stream lost/restored: publish now, not at the tick
        self._thread: threading.Thread | None = None
        self._sources: list[Callable[[], Iterable[LatestRow]]] = []
        self._health: Callable[[], tuple[dict[str, dict], dict[str, dict]]] | None = None
        self._last_health = 0.0
        self.stats = {"events": 0, "published": 0, "dropped": 0, "latest": 0, "errors": 0, "last_error": ""}

    # --- producers (subscription threads) -------------------------------------------------------------
    def _push(self, kind: str, device: str, ts: int, data: dict[str, Any]) -> None:
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.stats["dropped"] += 1
            self._events.append((kind, device, ts, _json(data)))
            self.stats["events"] += 1
        if kind != "sample":  # detection's fastest path (a link down): it waits for no tick
            self._urgent.set()

    def changes(self, device: str, changes: Iterable[Change], during_gap: bool = False) -> None:
        for c in changes:
            self._push(
                "state",
                device,
                c.timestamp_ns,
                {
                    "measurement": c.measurement,
                    "tags": dict(c.tags),
                    "field": c.field,
                    "old": c.old,
                    "new": c.new,
                    "during_gap": during_gap,
                },
            )

    def samples(self, device: str, events: Iterable[TelemetryEvent]) -> None:
        for e in events:
            self._push(
                "sample",
                device,
                e.timestamp_ns,
                {"measurement": e.name, "tags": dict(e.tags), "fields": dict(e.fields)},
            )

    def stream(self, device: str, ts: int, state: str, **data: Any) -> None:
        """``state``: ``lost`` (with reason) or ``restored`` (with gap_s)."""
        self._push("stream", device, ts, {"state": state, **data})

    def add_latest_source(self, source: Callable[[], Iterable[LatestRow]]) -> None:
        """``source()`` -> (device, measurement, tags, newest ns, fields, {field sampled before ns: its ns}) of the
        series that moved; called each second."""
        self._sources.append(source)

    def set_health_source(self, source: Callable[[], tuple[dict[str, dict], dict[str, dict]]]) -> None:
        """``source()`` -> ({device: health}, {shard: collector health}); published each second."""
        self._health = source

    # --- the publisher thread -------------------------------------------------------------------------
    def start(self) -> Handoff:
        self._thread = threading.Thread(target=self._run, name="telemetry-handoff", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            if backoff == self.interval:  # healthy: the tick, or sooner for a state change (at most every 10 ms)
                self._urgent.wait(backoff)
                self._stop.wait(URGENT_MIN_GAP_S)
            elif self._stop.wait(backoff):  # Redis away: back off, whatever is urgent
                break
            self._urgent.clear()
            if self._stop.is_set():
                break
            try:
                self.publish_once()
                backoff = self.interval
            except redis.RedisError as exc:
                self.stats["errors"] += 1
                self.stats["last_error"] = str(exc)
                logger.warning("telemetry handoff: Redis at %s unavailable: %s", self.url, exc)
                backoff = min(5.0, backoff * 2)
            except Exception as exc:  # a source's bug must not end the thread: the whole shard would go silent
                self.stats["errors"] += 1
                self.stats["last_error"] = repr(exc)
                logger.exception("telemetry handoff: publishing failed; retrying")
                backoff = min(5.0, backoff * 2)

    def publish_once(self, force: bool = False) -> None:
        """Publish pending events; once a second (or when forced) latest values and health too."""
        with self._lock:
            batch = list(self._events)
            self._events.clear()
        if batch:
            pipe = self._client.pipeline(transaction=False)
            key = f"{self.prefix}:events"
            for kind, device, ts, data in batch:
                pipe.xadd(key, {"type": kind, "device": device, "ts": str(ts), "data": data},
                          maxlen=self.stream_maxlen, approximate=True)  # fmt: skip
            try:
                pipe.execute()
            except redis.RedisError:
                with self._lock:  # put them back in front of newer ones; the bound keeps the newest
                    pending = batch + list(self._events)
                    overflow = max(0, len(pending) - (self._events.maxlen or len(pending)))
                    self.stats["dropped"] += overflow
                    self._events.clear()
                    self._events.extend(pending[overflow:])
                raise
            self.stats["published"] += len(batch)
        now = time.monotonic()
        if force or now - self._last_health >= 1.0:
            self._last_health = now
            self._publish_latest()
            self._publish_health()

    def _publish_latest(self) -> None:
        per_device: dict[str, dict[str, str]] = {}
        for source in self._sources:
            for device, measurement, tags, ts, fields, older in source():
                entry = {"ts": ts, "fields": fields, "field_ts": older} if older else {"ts": ts, "fields": fields}
                per_device.setdefault(device, {})[series_field(measurement, tags)] = _json(entry)
        if not per_device:
            return
        pipe = self._client.pipeline(transaction=False)
        ttl = max(1, int(self.latest_ttl))
        for device, mapping in per_device.items():
            key = f"{self.prefix}:latest:{device}"
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, ttl)
            self.stats["latest"] += len(mapping)
        pipe.execute()

    def _publish_health(self) -> None:
        if self._health is None:
            return
        devices, collectors = self._health()
        now = time.time()
        pipe = self._client.pipeline(transaction=False)
        if devices:
            pipe.hset(
                f"{self.prefix}:health:devices",
                mapping={d: _json({**h, "updated_at": now}) for d, h in devices.items()},
            )
        if collectors:
            pipe.hset(
                f"{self.prefix}:health:collectors",
                mapping={s: _json({**h, "updated_at": now}) for s, h in collectors.items()},
            )
        pipe.execute()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and publish what is left (best effort within ``timeout``)."""
        self._stop.set()
        self._urgent.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.publish_once(force=True)
        except redis.RedisError as exc:
            logger.warning("telemetry handoff: %d events not published at close: %s", len(self._events), exc)
        self._client.close()


# --- readers (detection, UI, /api/health) ----------------------------------------------------------------


def _client(client: redis.Redis | None) -> redis.Redis:
    return client or redis.Redis.from_url(redis_url(), socket_timeout=2, socket_connect_timeout=2)


def latest_values(device: str, *, client: redis.Redis | None = None, prefix: str | None = None) -> dict[str, dict]:
    """``{"interface|interface=Et1": {"ts": ns, "fields": {...}, "field_ts": {...}}, ...}`` for one device (empty
    if unknown). Judge a field's age by :func:`field_ts`."""
    raw = _client(client).hgetall(f"{prefix or redis_prefix()}:latest:{device}")
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def field_ts(entry: Mapping[str, Any], name: str) -> int:
    """When the switch sampled field ``name`` of a latest-values entry (epoch ns; 0 if the entry has no time).

    A field not in ``field_ts`` was sampled at ``ts``; so was every field of an entry published before
    ``field_ts`` existed (the only time such an entry knows)."""
    older = entry.get("field_ts")
    if older:
        sampled = older.get(name)
        if sampled is not None:
            return int(sampled)
    return int(entry.get("ts", 0))


def fresh_fields(entry: Mapping[str, Any] | None, names: Iterable[str], since_ns: int) -> dict[str, Any] | None:
    """The fields ``names`` of an entry, if at least one is there and every one there was sampled at or after
    ``since_ns``; else None (not known yet). A field absent from the entry is absent from the result."""
    if entry is None:
        return None
    fields = entry.get("fields") or {}
    out = {name: fields[name] for name in names if name in fields}
    if not out or any(field_ts(entry, name) < since_ns for name in out):
        return None
    return out


def collection_health(
    *, client: redis.Redis | None = None, prefix: str | None = None, stale_after: float = 10.0
) -> dict[str, Any]:
    """For /api/health and the UI: every collector and device entry, with ``stale`` set when not refreshed."""
    r = _client(client)
    prefix = prefix or redis_prefix()
    now = time.time()
    out: dict[str, Any] = {}
    for name in ("collectors", "devices"):
        entries = {}
        for key, value in r.hgetall(f"{prefix}:health:{name}").items():
            entry = json.loads(value)
            entry["stale"] = now - entry.get("updated_at", 0) > stale_after
            entries[key.decode()] = entry
        out[name] = entries
    return out


def read_events(
    last_id: str = "0-0", *, count: int = 1000, block_ms: int | None = None, client: redis.Redis | None = None,
    prefix: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """Entries after ``last_id`` as (id, {"type", "device", "ts", "data"}) with ``data`` decoded."""
    r = _client(client)
    key = f"{prefix or redis_prefix()}:events"
    result = r.xread({key: last_id}, count=count, block=block_ms)
    out = []
    for _, entries in result or []:
        for entry_id, fields in entries:
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
            decoded["ts"] = int(decoded["ts"])
            decoded["data"] = json.loads(decoded["data"])
            out.append((entry_id.decode(), decoded))
    return out
