"""Detection: read the collector's handoff stream, run the engine, open incidents, dispatch remediation.

There is one active consumer per stream, whichever runs it: the ``health.detect`` Celery task (the default: beat
starts it, every run re-queues itself) or the foreground process ``manage.py health detect``. Both go through
:func:`run_leased`: the consumer holds a Redis lease (``<prefix>:health:lease``, a token with a TTL it renews every
round); anyone else who finds the lease taken stands by. The engine's histories live in the consumer's memory and
are checkpointed to Redis (``<prefix>:health:state``: the engine state *and* the stream id it has consumed up to,
written only while the lease is still held) every few seconds and when a run ends. The next consumer continues
from the checkpoint: in the same worker process it keeps its in-memory engine, elsewhere it loads the checkpoint
and re-reads the stream from the checkpoint's id, so a killed worker loses nothing: the entries it had read after
its last checkpoint are read again (recording a finding twice is idempotent: alarms are keyed, incidents are keyed
by root cause). The last id read is also kept in ``<prefix>:health:cursor`` (without a checkpoint a consumer
starts there). New incidents are handed to ``dispatch(incident_id, delay)``: by default the ``health.remediate``
Celery task, delayed by a short hold-down for faults whose symptoms arrive spread out (a span degrades wavelength by
wavelength; a dead switch's peers notice before the collector gives up on it), so correlation can fold them into
one incident before anyone acts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings

from fabric_ops.telemetry.handoff import read_events, redis_prefix, redis_url

from . import incidents
from .choices import IncidentStatus
from .detectors.base import Finding
from .engine import DetectionEngine, Result
from .topology import load_index

logger = logging.getLogger(__name__)

HOLD_KINDS = {"dci-degradation": 2.0, "device-unreachable": 2.0, "link-down": 1.0}
Dispatch = Callable[[int, float], Any]


def celery_dispatch(incident_id: int, delay: float) -> None:
    from .tasks import remediate_task

    remediate_task.apply_async(args=[incident_id], countdown=delay)


STATE_VERSION = 1


class Lease:
    """One active consumer per stream: a Redis key holding the holder's token, with a TTL the holder renews.

    Renewal, release and the checkpoint write are scripts that act only while the key still holds *this* token, so
    a consumer that stalled past its TTL (and was replaced) can neither extend, drop nor overwrite the new one's.
    """

    RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
    RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

    def __init__(self, client: redis.Redis, key: str, ttl_s: float) -> None:
        self.client, self.key, self.ttl_ms = client, key, max(1000, int(ttl_s * 1000))
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(self.client.eval(self.RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        self.client.eval(self.RELEASE, 1, self.key, self.token)

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if value else None


def arrivals_from_health(health: dict[bytes, bytes], now: float, stale_after: float = 10.0) -> dict[str, int]:
    """Per device, when its collector last received a message from it (ns), from the collector's health hash
    (``seconds_since_message`` at ``updated_at``); entries the collector stopped refreshing say nothing."""
    out = {}
    for key, value in health.items():
        entry = json.loads(value)
        since, updated = entry.get("seconds_since_message"), entry.get("updated_at", 0)
        if since is not None and entry.get("synced") and now - updated <= stale_after:
            out[key.decode()] = int((updated - since) * 1e9)
    return out


class DetectionLoop:
    # lease, state, state id, cursor <- token, blob, id, last id: written only while the lease is ours
    SAVE = (
        "if ARGV[1] ~= '' and redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "
        "redis.call('set', KEYS[2], ARGV[2]) redis.call('set', KEYS[3], ARGV[3]) redis.call('set', KEYS[4], ARGV[4]) "
        "return 1"
    )

    def __init__(self, *, client: redis.Redis | None = None, prefix: str | None = None,
                 dispatch: Dispatch | None = None, scan_interval: float = 1.0, start_id: str | None = None,
                 devices: list[str] | None = None, resume: bool = False) -> None:  # fmt: skip
        """``resume``: continue from the last checkpoint (engine memory and its stream id) if there is one."""
        self.client = client or redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2)
        self.prefix = prefix or redis_prefix()
        self.dispatch = dispatch or celery_dispatch
        self.scan_interval = self.base_scan_interval = scan_interval
        self.index = load_index(max_age=0)
        self._index_at = time.monotonic()
        self.engine = DetectionEngine(self.index)
        self.cursor_key = f"{self.prefix}:health:cursor"
        self.state_key, self.state_id_key = f"{self.prefix}:health:state", f"{self.prefix}:health:state-id"
        self.state_id = ""  # the checkpoint this loop's memory corresponds to
        self.checkpoint_stats = {"saved": 0, "bytes": 0, "seconds": 0.0, "restored_from": ""}
        # findings that recording held back as expected (a port down on a link FabricOps drained): offered again
        # every refresh_s while the engine holds them, so a restored link that stays down alarms as usual
        self.suppressed: set[tuple[str, str, str]] = set()
        self._suppressed_at = 0.0
        stored = self.client.get(self.cursor_key)
        self.last_id = start_id or (stored.decode() if stored else "$")
        if resume and not start_id:
            self.restore()
        if self.last_id == "$":  # start at the stream's end: history before the loop existed is not replayed
            info = (
                self.client.xinfo_stream(f"{self.prefix}:events")
                if self.client.exists(f"{self.prefix}:events")
                else None
            )
            self.last_id = info["last-generated-id"].decode() if info else "0-0"
            # where this consumer started is kept at once: a first round that fails half-way is read again
            self.client.set(self.cursor_key, self.last_id, nx=True)
        self.devices = devices
        self._last_scan = 0.0
        self._decoded: dict[tuple[str, bytes], tuple[bytes, str, dict[str, Any]]] = {}
        self.arrivals: dict[str, int] = {}
        self._recorded: dict[tuple[str, str, str], float] = {}
        self.refresh_s = 5.0
        self.stats = {"entries": 0, "raised": 0, "cleared": 0, "incidents": 0, "expected_down": 0}

    # --- checkpoints -----------------------------------------------------------------------------------
    def checkpoint(self, lease: Lease | None = None) -> bool:
        """Save the engine's memory with the stream id it has consumed up to; False if ``lease`` was lost."""
        started = time.perf_counter()
        state_id = uuid.uuid4().hex
        blob = sign_checkpoint(pickle.dumps(
            {"version": STATE_VERSION, "id": state_id, "last_id": self.last_id, "engine": self.engine.memory(),
             "suppressed": sorted(self.suppressed), "saved_at": time.time()}, protocol=pickle.HIGHEST_PROTOCOL,
        ))  # fmt: skip
        keys = (lease.key if lease else "-", self.state_key, self.state_id_key, self.cursor_key)
        saved = bool(self.client.eval(self.SAVE, 4, *keys, lease.token if lease else "", blob, state_id, self.last_id))
        if saved:
            self.state_id = state_id
            self.checkpoint_stats["saved"] += 1
            self.checkpoint_stats["bytes"] = len(blob)
            self.checkpoint_stats["seconds"] = round(time.perf_counter() - started, 4)
        return saved

    def stored_state_id(self) -> str:
        value = self.client.get(self.state_id_key)
        return value.decode() if value else ""

    def restore(self) -> bool:
        """Load the last checkpoint (its engine memory; reading resumes at its stream id). False if none fits."""
        blob = self.client.get(self.state_key)
        if not blob:
            return False
        try:
            # Unpickled only when signed with this deployment's SECRET_KEY: the Celery broker takes JSON only, so
            # write access to Redis alone must not become code execution in a worker.
            state = pickle.loads(verified_checkpoint(blob))
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"checkpoint version {state.get('version')}, expected {STATE_VERSION}")
            self.engine.load_memory(state["engine"])
        except Exception as exc:  # an unreadable checkpoint costs the histories, not detection itself
            logger.warning("health detection: checkpoint unusable (%s); starting with an empty memory", exc)
            self.engine = DetectionEngine(self.index)
            return False
        self.last_id, self.state_id = state["last_id"], state["id"]
        self.suppressed = {tuple(key) for key in state.get("suppressed", ())}
        self.checkpoint_stats["restored_from"] = state["id"]
        logger.info("health detection: continuing from checkpoint %s at %s (saved %.1f s ago)", state["id"],
                    self.last_id, time.time() - state["saved_at"])  # fmt: skip
        return True

    def refresh_index(self, max_age: float = 30.0) -> None:
        """Topology changes (a drained link, a new switch) reach the engine within ``max_age`` seconds."""
        if time.monotonic() - self._index_at >= max_age:
            self.index = self.engine.index = load_index(max_age=max_age)
            self._index_at = time.monotonic()

    def run_once(self, block_ms: int = 200, count: int = 2000) -> Result:
        """One round: read entries, feed the engine, record what they found, scan once a second, record, dispatch.

        The stream's findings (a link down, a storm) are recorded and dispatched *before* the scan: a scan of a
        large fabric reads every device's latest values, and under load that is hundreds of milliseconds a state
        change would otherwise wait in this round. The result returned holds both, stream first.
        """
        self.refresh_index()
        stream = Result()
        entries = read_events(self.last_id, count=count, block_ms=block_ms, client=self.client, prefix=self.prefix)
        for entry_id, entry in entries:
            stream.extend(self.engine.ingest(entry))
            self.last_id = entry_id
        self.stats["entries"] += len(entries)
        self.handle(stream)
        result = Result()
        result.extend(stream)
        now = time.monotonic()
        if now - self._last_scan >= self.scan_interval:
            # never spend more than a third of the time scanning: the stream (state changes, storms) comes first
            latest = self.read_latest()
            scanned = self.engine.scan(time.time_ns(), latest, self.arrivals)
            self._last_scan = time.monotonic()
            self.scan_interval = max(self.base_scan_interval, 3 * (self._last_scan - now))
            self.handle(scanned)
            result.extend(scanned)
        if entries:  # only once the round is recorded: a round that failed half-way is read again (rewind)
            self.client.set(self.cursor_key, self.last_id)
        return result

    def rewind(self) -> None:
        """Go back to the last checkpoint after a round failed half-way (Redis or the database went away).

        The failed round had fed the engine and moved ``last_id`` before its findings were recorded; carrying on
        would lose them for good (a clear is said once). Without a checkpoint, reading resumes at the cursor,
        which only moves after a recorded round.
        """
        self.engine = DetectionEngine(self.index)
        self.suppressed = set()
        self._recorded.clear()
        self.state_id = ""
        if not self.restore():
            stored = self.client.get(self.cursor_key)
            if stored:
                self.last_id = stored.decode()
        logger.warning("health detection: a round failed half-way; continuing from %s", self.last_id)

    def read_latest(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The series the scan detectors need, one pipelined round trip; JSON decoded only for those.

        Interfaces (utilisation, oper state), lossless queues (incast) and optic lanes; per device one fast
        (1 s) PFC series too, for liveness.
        """
        devices = self.devices or list(self.index.device_role)
        pipe = self.client.pipeline(transaction=False)
        for device in devices:
            pipe.hgetall(f"{self.prefix}:latest:{device}")
        pipe.hgetall(f"{self.prefix}:health:devices")
        *replies, health = pipe.execute()
        self.arrivals = arrivals_from_health(health, time.time())
        out: dict[str, dict[str, dict[str, Any]]] = {}
        cache = self._decoded
        for device, raw in zip(devices, replies, strict=True):
            if not raw:
                continue
            wanted: dict[str, dict[str, Any]] = {}
            alive = False
            for key, value in raw.items():
                keep = key.startswith((b"interface|", b"optics|")) or (
                    key.startswith(b"queue|") and key.endswith(b",queue=3")
                )
                if not keep and not alive and key.startswith(b"pfc|"):
                    keep = alive = True
                if keep:
                    # most series move every 10 s, the scan runs every second: decode only what changed
                    hit = cache.get((device, key))
                    if hit is None or hit[0] != value:
                        hit = cache[(device, key)] = (value, key.decode(), json.loads(value))
                    wanted[hit[1]] = hit[2]
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
        if self.suppressed and now - self._suppressed_at >= self.refresh_s:
            # expected-down ports: still drained -> held back again; restored and still down -> an incident now
            self._suppressed_at = now
            offered = {f.key for f in fresh}
            self.suppressed = {key for key in self.suppressed if key in self.engine.active}
            fresh.extend(self.engine.active[key] for key in sorted(self.suppressed) if key not in offered)
        if fresh:
            self.stats["raised"] += len(fresh)
            held: list[Finding] = []
            for incident, new in incidents.record(fresh, self.index, suppressed=held):
                if new and incident.status == IncidentStatus.OPEN:
                    self.stats["incidents"] += 1
                    self.dispatch(incident.pk, HOLD_KINDS.get(incident.kind, 0.0))
            held_keys = {f.key for f in held}
            for finding in fresh:
                if finding.key in held_keys:
                    self.suppressed.add(finding.key)
                    self.stats["expected_down"] += 1
                else:
                    self.suppressed.discard(finding.key)
        gone = [key for key, up in final.items() if not up]
        if gone:
            self.stats["cleared"] += incidents.clear(gone)
            for key in gone:
                self._recorded.pop(key, None)
                self.suppressed.discard(key)


def _checkpoint_key() -> bytes:
    return hashlib.sha256(b"fabric_ops.health.detect checkpoint:" + settings.SECRET_KEY.encode()).digest()


def sign_checkpoint(payload: bytes) -> bytes:
    """HMAC-SHA256 (keyed from SECRET_KEY) in front of the pickled checkpoint."""
    return hmac.new(_checkpoint_key(), payload, hashlib.sha256).digest() + payload


def verified_checkpoint(blob: bytes) -> bytes:
    """The payload of a checkpoint this deployment signed; ValueError for anything else (never unpickled)."""
    mac, payload = blob[:32], blob[32:]
    if len(blob) <= 32 or not hmac.compare_digest(mac, hmac.new(_checkpoint_key(), payload, hashlib.sha256).digest()):
        raise ValueError("checkpoint signature does not match this deployment's SECRET_KEY")
    return payload


def default_loop(**kwargs: Any) -> DetectionLoop:
    return DetectionLoop(scan_interval=float(getattr(settings, "FABRIC_OPS_HEALTH_SCAN_INTERVAL_S", 1.0)), **kwargs)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


# The loop of this process, kept between runs of the Celery task: a worker process that runs the next run too
# continues with its memory instead of loading the checkpoint.
_PROCESS_LOOP: DetectionLoop | None = None


def _loop_for(client: redis.Redis, prefix: str, dispatch: Dispatch | None) -> DetectionLoop:
    global _PROCESS_LOOP
    loop = _PROCESS_LOOP
    if loop is not None and loop.prefix == prefix and loop.state_id and loop.state_id == loop.stored_state_id():
        loop.dispatch = dispatch or loop.dispatch
        return loop  # the last checkpoint is ours: the memory is current
    loop = default_loop(client=client, prefix=prefix, dispatch=dispatch, resume=True)
    _PROCESS_LOOP = loop
    return loop


def retake(lease: Lease, loop: DetectionLoop) -> bool:
    """The lease expired under a consumer that was merely slow (one round longer than the TTL on a starved
    machine): take it back if nobody took it meanwhile and nobody checkpointed since this loop's own checkpoint
    (a consumer that came and went would have: then this memory is stale and the loop must step down)."""
    if not lease.acquire():
        return False
    if loop.stored_state_id() == loop.state_id:
        logger.warning("health detection: the lease had expired (a round longer than its TTL); retaken")
        return True
    lease.release()
    return False


def run_leased(*, budget_s: float | None = None, stop: threading.Event | None = None,
               client: redis.Redis | None = None, prefix: str | None = None, dispatch: Dispatch | None = None,
               standby: bool = False) -> dict[str, Any]:  # fmt: skip
    """Be the stream's one consumer for ``budget_s`` seconds (None: until ``stop``), then checkpoint and let go.

    If another consumer holds the lease: return at once (``standby=False``, the Celery task: the holder re-queues
    itself) or wait for it to go and take over (``standby=True``, the foreground process). Returns what happened:
    ``outcome`` ("done", "busy", "lost": another consumer took over after this one stalled past the lease TTL,
    "stopped"), the loop's stats and the checkpoint's size and cost.
    """
    global _PROCESS_LOOP
    client = client or redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2)
    prefix = prefix or redis_prefix()
    stop = stop or threading.Event()
    ttl = _setting("FABRIC_OPS_HEALTH_DETECT_LEASE_S", 10.0)
    every = _setting("FABRIC_OPS_HEALTH_DETECT_CHECKPOINT_S", 10.0)
    lease = Lease(client, f"{prefix}:health:lease", ttl)
    while not lease.acquire():
        if not standby or stop.is_set():
            return {"outcome": "busy", "holder": lease.holder()}
        stop.wait(min(1.0, ttl / 4))
    deadline = None if budget_s is None else time.monotonic() + budget_s
    outcome = "done"
    loop = None
    try:
        loop = _loop_for(client, prefix, dispatch)
        logger.info("health detection: %s consumes %s:events from %s", lease.token, prefix, loop.last_id)
        saved = time.monotonic()
        failed = False
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                if failed:
                    loop.rewind()
                    failed = False
                loop.run_once()
                if not lease.renew() and not retake(lease, loop):
                    outcome = "lost"
                    break
                if time.monotonic() - saved >= every:
                    if not loop.checkpoint(lease):
                        outcome = "lost"
                        break
                    saved = time.monotonic()
            except redis.RedisError as exc:
                logger.warning("health detection: Redis unavailable: %s", exc)
                failed = True  # the round may have consumed entries it did not record
                stop.wait(2.0)
                if not lease.renew() and not retake(lease, loop):
                    outcome = "lost"
                    break
            except Exception:
                # the database (or anything else) failed a round half-way: no checkpoint of this memory, and the
                # next run — here or in another process — starts again from the last checkpoint
                _PROCESS_LOOP = None
                outcome = "failed"
                raise
        if outcome == "done" and stop.is_set():
            outcome = "stopped"
        if outcome != "lost" and not loop.checkpoint(lease):
            outcome = "lost"
    finally:
        if outcome == "lost":
            _PROCESS_LOOP = None  # another consumer moved on: this memory is stale
            logger.warning("health detection: lease lost to %s; stepping down", lease.holder())
        else:
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                lease.release()
    return {
        "outcome": outcome,
        "consumer": lease.token,
        "last_id": loop.last_id if loop else None,
        "stats": dict(loop.stats) if loop else {},
        "checkpoint": dict(loop.checkpoint_stats) if loop else {},
    }


def run_process(stop: threading.Event, *, client: redis.Redis | None = None, prefix: str | None = None,
                dispatch: Dispatch | None = None) -> None:  # fmt: skip
    """``manage.py health detect``: consume while holding the lease, stand by while a Celery run holds it."""
    while not stop.is_set():
        report = run_leased(stop=stop, client=client, prefix=prefix, dispatch=dispatch, standby=True)
        logger.info("health detection: %s", report)
