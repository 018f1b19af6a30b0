"""The detection loop: read the collector's handoff stream, run the engine, open incidents, dispatch remediation.

One loop per deployment (``manage.py health detect``), like the collector: the engine's histories live in its
memory, and the stream (with its entry ids) lets a restarted loop pick up where it left off — the last id read is
kept in Redis (``<prefix>:health:cursor``). New incidents are handed to ``dispatch(incident_id, delay)``: by
default the ``health.remediate`` Celery task, delayed by a short hold-down for faults whose symptoms arrive
spread out (a span degrades wavelength by wavelength; a dead switch's peers notice before the collector gives up
on it), so correlation can fold them into one incident before anyone acts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings

from fabric_ops.telemetry.handoff import read_events, redis_prefix, redis_url

from . import incidents
from .choices import IncidentStatus
from .engine import DetectionEngine, Result
from .topology import load_index

logger = logging.getLogger(__name__)

HOLD_KINDS = {"dci-degradation": 2.0, "device-unreachable": 2.0, "link-down": 1.0}
Dispatch = Callable[[int, float], Any]


def celery_dispatch(incident_id: int, delay: float) -> None:
    from .tasks import remediate_task

    remediate_task.apply_async(args=[incident_id], countdown=delay)


class DetectionLoop:
    def __init__(self, *, client: redis.Redis | None = None, prefix: str | None = None,
                 dispatch: Dispatch | None = None, scan_interval: float = 1.0, start_id: str | None = None,
                 devices: list[str] | None = None) -> None:  # fmt: skip
        self.client = client or redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2)
        self.prefix = prefix or redis_prefix()
        self.dispatch = dispatch or celery_dispatch
        self.scan_interval = self.base_scan_interval = scan_interval
        self.index = load_index(max_age=0)
        self.engine = DetectionEngine(self.index)
        self.cursor_key = f"{self.prefix}:health:cursor"
        stored = self.client.get(self.cursor_key)
        self.last_id = start_id or (stored.decode() if stored else "$")
        if self.last_id == "$":  # start at the stream's end: history before the loop existed is not replayed
            info = (
                self.client.xinfo_stream(f"{self.prefix}:events")
                if self.client.exists(f"{self.prefix}:events")
                else None
            )
            self.last_id = info["last-generated-id"].decode() if info else "0-0"
        self.devices = devices
        self._last_scan = 0.0
        self._recorded: dict[tuple[str, str, str], float] = {}
        self.refresh_s = 5.0
        self.stats = {"entries": 0, "raised": 0, "cleared": 0, "incidents": 0}

    def run_once(self, block_ms: int = 200, count: int = 2000) -> Result:
        """One round: read entries, feed the engine, scan once a second, record findings, dispatch."""
        result = Result()
        entries = read_events(self.last_id, count=count, block_ms=block_ms, client=self.client, prefix=self.prefix)
        for entry_id, entry in entries:
            result.extend(self.engine.ingest(entry))
            self.last_id = entry_id
        self.stats["entries"] += len(entries)
        if entries:
            self.client.set(self.cursor_key, self.last_id)
        now = time.monotonic()
        if now - self._last_scan >= self.scan_interval:
            # never spend more than a third of the time scanning: the stream (state changes, storms) comes first
            latest = self.read_latest()
            result.extend(self.engine.scan(time.time_ns(), latest))
            self._last_scan = time.monotonic()
            self.scan_interval = max(self.base_scan_interval, 3 * (self._last_scan - now))
        self.handle(result)
        return result

    def read_latest(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The series the scan detectors need, one pipelined round trip; JSON decoded only for those.

        Interfaces (utilisation, oper state), lossless queues (incast) and optic lanes; per device one fast
        (1 s) PFC series too, for liveness.
        """
        devices = self.devices or list(self.index.device_role)
        pipe = self.client.pipeline(transaction=False)
        for device in devices:
            pipe.hgetall(f"{self.prefix}:latest:{device}")
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for device, raw in zip(devices, pipe.execute(), strict=True):
            if not raw:
                continue
            wanted: dict[str, dict[str, Any]] = {}
            alive = False
            for key, value in raw.items():
                name = key.decode()
                keep = name.startswith(("interface|", "optics|")) or (
                    name.startswith("queue|") and name.endswith(",queue=3")
                )
                if not keep and not alive and name.startswith("pfc|"):
                    keep = alive = True
                if keep:
                    wanted[name] = json.loads(value)
            out[device] = wanted
        return out

    def handle(self, result: Result) -> None:
        """Record a round's findings in the database, applying the last word per key.

        A key cleared and raised again within the round is cleared first, then re-recorded (fresh, whatever the
        refresh throttle says: the database must not keep it cleared while the engine holds it). A key whose last
        word is "cleared" is cleared *after* the raises are recorded: a lagging stream can hand the engine an old
        flap that the same round's scan then ages out, and recording the raise after the clear would leave an
        alarm open in the database that the engine no longer holds, so nothing would ever clear it.
        """
        final = result.final
        reopened = [key for key in dict.fromkeys(result.cleared) if final.get(key)]
        if reopened:
            self.stats["cleared"] += incidents.clear(reopened)
            for key in reopened:
                self._recorded.pop(key, None)
        # An active finding is re-reported with every sample; the incident needs it once, then every few seconds.
        now = time.monotonic()
        fresh = []
        for finding in result.raised:
            if now - self._recorded.get(finding.key, -1e9) >= self.refresh_s:
                self._recorded[finding.key] = now
                fresh.append(finding)
        if fresh:
            self.stats["raised"] += len(fresh)
            for incident, new in incidents.record(fresh, self.index):
                if new and incident.status == IncidentStatus.OPEN:
                    self.stats["incidents"] += 1
                    self.dispatch(incident.pk, HOLD_KINDS.get(incident.kind, 0.0))
        gone = [key for key, up in final.items() if not up]
        if gone:
            self.stats["cleared"] += incidents.clear(gone)
            for key in gone:
                self._recorded.pop(key, None)

    def run(self, stop: threading.Event) -> None:
        logger.info("health detection: reading %s:events from %s", self.prefix, self.last_id)
        while not stop.is_set():
            try:
                self.run_once()
            except redis.RedisError as exc:
                logger.warning("health detection: Redis unavailable: %s", exc)
                stop.wait(2.0)


def default_loop(**kwargs: Any) -> DetectionLoop:
    return DetectionLoop(scan_interval=float(getattr(settings, "FABRIC_OPS_HEALTH_SCAN_INTERVAL_S", 1.0)), **kwargs)
