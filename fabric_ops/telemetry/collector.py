"""The gNMI collector: one pygnmi subscription per device, normalised into InfluxDB and handed to detection.

Why our own read loop and not ``subscribe2()``/``subscribe_stream()``: pygnmi's
``StreamSubscriber`` reads the RPC in a private thread which, when the switch reboots, stores the error in
``.error`` and dies while the consumer blocks forever on its queue (pygnmi issues #104 and #112: the silent
collector this module exists to prevent); it also decodes every update through ``telemetryParser`` into dicts
and path strings, which costs more than the rest of the pipeline together. We use pygnmi for what it does well
(channel, credentials, TLS, capabilities, building the SubscribeRequest from a dict with
``_build_subscriptionrequest``) and call ``Subscribe`` with pygnmi's generated stub on pygnmi's channel,
reading the responses in a thread we own and watch, so that:

* every end of a stream is seen where it happens (gRPC status, end of stream, our own cancel) and leads to a
  reconnect with capped exponential backoff and jitter (:func:`backoff_delay`);
* a stream that stays open but goes quiet is cancelled by the supervisor (nothing within ``stall_factor`` x the
  profile's fastest interval), and the hole is recorded as a gap;
* nothing from a session reaches InfluxDB or detection before its ``sync_response`` (events are held, then
  released; a session that dies before syncing has its held events discarded and counted);
* a subscription thread that dies anyway (a bug, a BaseException) is noticed by the supervisor and restarted;
* a malformed update is counted by the normaliser and skipped;
* memory is bounded: gRPC's flow control stops the switch when we fall behind (the switch then drops samples,
  as real switches do), held pre-sync events are capped, the writer's queue spills to disk, the handoff backlog
  is a bounded deque.
"""

from __future__ import annotations

import logging
import random
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from pygnmi.client import gNMIclient
from pygnmi.spec.v080.gnmi_pb2_grpc import gNMIStub

from fabric_ops.devices.credentials import resolve
from fabric_ops.telemetry.handoff import Handoff
from fabric_ops.telemetry.normalise import Normaliser, handoff_samples
from fabric_ops.telemetry.points import TelemetryEvent
from fabric_ops.telemetry.targets import DeviceTarget

logger = logging.getLogger(__name__)

__all__ = ["Collector", "CollectorConfig", "DeviceSession", "Gap", "backoff_delay"]

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before reconnect ``attempt`` (1, 2, ...): min(cap, initial x 2^(attempt-1)) with +-25 % jitter.

    Jitter so that a whole fabric coming back after a power event does not reconnect in lock step.
    """
    base = min(cap, initial * (2 ** max(0, attempt - 1)))
    return base * (rng or random).uniform(0.75, 1.25)


@dataclass(frozen=True)
class CollectorConfig:
    backoff_initial: float = 1.0
    backoff_cap: float = 30.0
    stall_factor: float = 3.0  # nothing within this x the fastest interval -> stall
    sync_timeout: float = 60.0  # connect + initial dump must finish within this
    connect_timeout: float = 10.0
    presync_max_events: int = 500_000
    supervise_interval: float = 0.25
    # The supervisor woke this much later than it asked to: the process itself was not running (a starved machine),
    # so no session could read either; stall clocks restart instead of blaming the switches (and re-syncing all).
    starved_after: float = 0.5
    gap_history: int = 20
    shard: str = "0/1"


@dataclass(frozen=True)
class Gap:
    """A hole in a device's data: from the last message before the stream was lost to the next sync."""

    device: str
    start_ns: int
    end_ns: int
    reason: str

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class _Stop(Exception):
    pass


class DeviceSession:
    """One device: its subscription thread, normaliser and health. Restartable (the supervisor does it)."""

    def __init__(self, target: DeviceTarget, collector: Collector) -> None:
        self.target = target
        self.device = target.hostname
        self.collector = collector
        self.config = collector.config
        self.normaliser = Normaliser(target.meta)
        self.thread: threading.Thread | None = None
        self._call: Any = None
        self._call_lock = threading.Lock()
        self._abort_reason: str | None = None
        self._rng = random.Random(hash(self.device))
        # health (written by the session thread, read by the supervisor: plain attributes under the GIL)
        self.state = "starting"  # starting | connecting | syncing | streaming | backoff | stopped
        self.connected = False
        self.synced = False
        self.session_started = 0.0  # monotonic
        self.last_message = 0.0  # monotonic
        self.last_message_wall_ns = 0
        self.last_update_ns = 0  # switch timestamp of the newest notification
        self.lag_s = 0.0
        self.messages = 0
        self.notifications = 0
        self.reconnects = 0
        self.sessions = 0
        self.attempt = 0
        self.stalls = 0
        self.thread_restarts = 0
        self.presync_discarded = 0
        self.presync_dropped = 0
        self.write_invalid = 0
        self.delivered = 0  # events handed to the writer
        self.last_error = ""
        self.gaps: deque[Gap] = deque(maxlen=self.config.gap_history)
        self.gap_count = 0
        self._lost_at_ns: int | None = None
        self._lost_reason = ""

    # --- thread management -----------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self._thread_main, name=f"gnmi-{self.device}", daemon=True)
        self.thread.start()

    def abort(self, reason: str) -> None:
        """Cancel the current RPC from another thread (stall, shutdown); the session thread reconnects."""
        with self._call_lock:
            call = self._call
            self._abort_reason = reason
        if call is not None:
            call.cancel()

    def _thread_main(self) -> None:
        stop = self.collector.stopping
        while not stop.is_set():
            try:
                self._session()
                self.last_error = "stream ended by the target"
                reason = "eof"
            except _Stop:
                break
            except grpc.RpcError as exc:
                reason = self._abort_reason or _rpc_reason(exc)
                self.last_error = f"{reason}: {_rpc_details(exc)}"
            except Exception as exc:  # pygnmi raises bare Exception on connect; keep the thread alive
                reason = self._abort_reason or "error"
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.debug("gNMI %s: session failed", self.device, exc_info=True)
            self._session_lost(reason)
            if stop.is_set():
                break
            self.attempt += 1
            delay = backoff_delay(self.attempt, self.config.backoff_initial, self.config.backoff_cap, self._rng)
            self.state = "backoff"
            logger.warning("gNMI %s: %s; reconnecting in %.1f s", self.device, self.last_error, delay)
            if stop.wait(delay):
                break
            self.reconnects += 1
        self.state = "stopped"
        self.connected = False

    def _session_lost(self, reason: str) -> None:
        with self._call_lock:
            self._call = None
            self._abort_reason = None
        was_synced = self.synced
        self.connected = False
        self.synced = False
        if was_synced and self._lost_at_ns is None and not self.collector.stopping.is_set():
            # the gap starts at the last data we had, not when we noticed
            self._lost_at_ns = self.last_message_wall_ns or time.time_ns()
            self._lost_reason = reason
            self.collector.handoff_stream(self, self._lost_at_ns, "lost", reason=reason)

    # --- one Subscribe RPC -----------------------------------------------------------------------------
    def _session(self) -> None:
        target = self.target
        stop = self.collector.stopping
        self.state = "connecting"
        self.session_started = time.monotonic()
        self.last_message = self.session_started
        credential = resolve(target.credential)
        metadata = (("username", credential.username), ("password", credential.password))
        client = gNMIclient(
            target=(target.address, target.port),
            username=credential.username,
            password=credential.password,
            insecure=target.insecure,
            path_cert=target.tls_ca,  # pygnmi: the root CA bundle the switch's certificate must chain to
            gnmi_timeout=self.config.connect_timeout,
            grpc_options=list(GRPC_OPTIONS),
        )
        try:
            client.connect()
            if stop.is_set():
                raise _Stop
            request = client._build_subscriptionrequest(target.profile.request())
            done = threading.Event()
            call = gNMIStub(_channel_of(client)).Subscribe(_open_request_stream(request, done), metadata=metadata)
            with self._call_lock:
                self._call = call
                if self._abort_reason is not None:  # aborted while connecting
                    call.cancel()
            self.connected = True
            self.state = "syncing"
            self.sessions += 1
            self.normaliser.begin_session()
            try:
                self._stream(call)
            finally:
                done.set()
                call.cancel()
        finally:
            try:
                client.close()
            except Exception:  # closing a half-open channel must not hide the real error
                logger.debug("gNMI %s: close failed", self.device, exc_info=True)
        if stop.is_set():
            raise _Stop

    def _stream(self, call: Any) -> None:
        held: list[TelemetryEvent] = []
        held_changes = []
        presync_max = self.config.presync_max_events
        try:
            self._read(call, held, held_changes, presync_max)
        finally:
            if not self.synced:
                self.presync_discarded += len(held)

    def _read(self, call: Any, held: list, held_changes: list, presync_max: int) -> None:
        normaliser = self.normaliser
        collector = self.collector
        for response in call:
            now = time.monotonic()
            self.last_message = now
            self.last_message_wall_ns = wall = time.time_ns()
            self.messages += 1
            which = response.WhichOneof("response")
            if which == "update":
                notification = response.update
                self.notifications += 1
                ts = notification.timestamp
                if ts > self.last_update_ns:
                    self.last_update_ns = ts
                    self.lag_s = (wall - ts) / 1e9
                events, changes = normaliser.process(notification)
                if self.synced:
                    collector.deliver(self, events, changes)
                else:
                    if len(held) + len(events) > presync_max:
                        self.presync_dropped += len(events)
                    else:
                        held.extend(events)
                    held_changes.extend(changes)
            elif which == "sync_response":
                if self.synced:
                    continue
                changes = normaliser.sync() + held_changes
                self.synced = True
                self.state = "streaming"
                self.attempt = 0
                collector.deliver(self, held, [])
                held.clear()
                held_changes.clear()
                gap_closed = self._close_gap()
                collector.handoff_changes(self, changes, during_gap=gap_closed)
            elif which == "error":  # deprecated in gNMI 0.7 but still sent by some targets
                raise RuntimeError(f"target error {response.error.code}: {response.error.message}")

    def _close_gap(self) -> bool:
        if self._lost_at_ns is None:
            return False
        gap = Gap(self.device, self._lost_at_ns, time.time_ns(), self._lost_reason)
        self._lost_at_ns = None
        self.gaps.append(gap)
        self.gap_count += 1
        self.collector.record_gap(self, gap)
        return True

    # --- health ----------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        counts = self.normaliser.counts
        now = time.monotonic()
        return {
            "device": self.device,
            "fabric": self.target.meta.fabric,
            "state": self.state,
            "connected": self.connected,
            "synced": self.synced,
            "last_update_ns": self.last_update_ns,
            "seconds_since_message": round(now - self.last_message, 3) if self.last_message else None,
            "lag_s": round(self.lag_s, 3),
            "messages": self.messages,
            "updates": counts.updates,
            "events": counts.events,
            "delivered": self.delivered,
            "malformed": counts.malformed,
            "ignored": counts.ignored,
            "counter_resets": counts.resets,
            "counter_wraps": counts.wraps,
            "drops": self.presync_discarded + self.presync_dropped + self.write_invalid,
            "reconnects": self.reconnects,
            "stalls": self.stalls,
            "thread_restarts": self.thread_restarts,
            "gaps": self.gap_count,
            "recent_gaps": [
                {"start_ns": g.start_ns, "end_ns": g.end_ns, "seconds": round(g.seconds, 3), "reason": g.reason}
                for g in self.gaps
            ],
            "in_gap_since_ns": self._lost_at_ns,
            "last_error": self.last_error,
        }


def _channel_of(client: gNMIclient) -> grpc.Channel:
    """The gRPC channel pygnmi opened (TLS, credentials, options): pygnmi 0.8 keeps it name-mangled."""
    channel = getattr(client, "_gNMIclient__channel", None)
    if channel is None:
        raise RuntimeError("pygnmi's gNMIclient has no channel after connect() (pygnmi version changed?)")
    return channel


def _open_request_stream(request: Any, done: threading.Event):
    """The client side of Subscribe: the SubscriptionList, then held open until the session ends.

    Why held open: a target may end a STREAM subscription when the client half-closes (the lab does), so the
    request side stays open for the life of the session, as pygnmi's own StreamSubscriber does.
    """
    yield request
    done.wait()


def _rpc_reason(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    if code == grpc.StatusCode.CANCELLED:
        return "cancelled"
    if code == grpc.StatusCode.UNAVAILABLE:
        return "unavailable"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "unauthenticated"
    return code.name.lower() if code is not None else "rpc-error"


def _rpc_details(exc: grpc.RpcError) -> str:
    try:
        return exc.details() or str(exc)
    except Exception:
        return str(exc)


class Collector:
    """All sessions of one shard, their supervisor, the writer and the handoff.

    ``writer`` is anything with ``write_many(events) -> skipped`` (the product passes an
    :class:`~fabric_ops.telemetry.writer.InfluxWriter`); ``handoff`` may be None (no Redis, e.g. a benchmark).
    """

    def __init__(
        self,
        targets: list[DeviceTarget],
        writer: Any,
        handoff: Handoff | None = None,
        config: CollectorConfig | None = None,
    ) -> None:
        self.config = config or CollectorConfig()
        self.writer = writer
        self.handoff = handoff
        self.stopping = threading.Event()
        self.sessions = {t.hostname: DeviceSession(t, self) for t in targets}
        self._supervisor: threading.Thread | None = None
        self.started_at = time.time()
        self.gap_writes = 0
        self._last_check = 0.0
        self._stall_epoch = 0.0  # stall clocks run from the later of a session's last message and this
        self.starved_s = 0.0
        if handoff is not None:
            handoff.add_latest_source(self._latest)
            handoff.set_health_source(self._health_for_handoff)

    # --- called from session threads -------------------------------------------------------------------
    def deliver(self, session: DeviceSession, events: list[TelemetryEvent], changes: list) -> None:
        if events:
            session.delivered += len(events)
            session.write_invalid += self.writer.write_many(events) or 0
            if self.handoff is not None:
                samples = handoff_samples(events)
                if samples:
                    self.handoff.samples(session.device, samples)
        if changes and self.handoff is not None:
            self.handoff.changes(session.device, changes)

    def handoff_changes(self, session: DeviceSession, changes: list, during_gap: bool) -> None:
        if changes and self.handoff is not None:
            self.handoff.changes(session.device, changes, during_gap=during_gap)

    def handoff_stream(self, session: DeviceSession, ts: int, state: str, **data: Any) -> None:
        if self.handoff is not None:
            self.handoff.stream(session.device, ts, state, **data)

    def record_gap(self, session: DeviceSession, gap: Gap) -> None:
        """A closed gap goes to InfluxDB (``collector_gap``) and to detection (stream restored)."""
        logger.warning("gNMI %s: gap of %.1f s (%s) closed", gap.device, gap.seconds, gap.reason)
        tags = dict(session.target.meta.base_tags())
        tags["reason"] = gap.reason
        event = TelemetryEvent("collector_gap", gap.start_ns, tags, {"seconds": gap.seconds, "end_ns": gap.end_ns})
        self.writer.write_many([event])
        self.gap_writes += 1
        self.handoff_stream(session, gap.end_ns, "restored", gap_s=round(gap.seconds, 3), reason=gap.reason)

    # --- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> Collector:
        for session in self.sessions.values():
            session.start()
        self._supervisor = threading.Thread(target=self._supervise, name="gnmi-supervisor", daemon=True)
        self._supervisor.start()
        logger.info("collector shard %s: %d devices", self.config.shard, len(self.sessions))
        return self

    def _supervise(self) -> None:
        while not self.stopping.wait(self.config.supervise_interval):
            try:
                self.check()
            except Exception:  # the supervisor must outlive anything it finds
                logger.exception("collector supervisor check failed")

    def check(self) -> None:
        """Stall detection and dead-thread detection (also callable directly, e.g. from tests).

        A stream is stalled when nothing came for ``stall_factor`` x its fastest interval *while this process could
        run*: if the supervisor itself wakes up late (the machine starved the process), the sessions could not read
        either, and tearing every stream down for a full re-sync would only add load and gaps (a 48-switch benchmark
        on a loaded 2-core machine saw 300 such "stalls" in 4 minutes).
        """
        now = time.monotonic()
        if self._last_check:
            late = now - self._last_check - self.config.supervise_interval
            if late > self.config.starved_after:
                self.starved_s += late
                self._stall_epoch = now
        self._last_check = now
        for session in self.sessions.values():
            thread = session.thread
            if thread is not None and not thread.is_alive() and not self.stopping.is_set():
                session.thread_restarts += 1
                logger.error("gNMI %s: subscription thread died; restarting it", session.device)
                session._session_lost("thread-died")
                session.start()
                continue
            if session.state == "streaming":
                limit = self.config.stall_factor * session.target.profile.min_interval_s
                if now - max(session.last_message, self._stall_epoch) > limit:
                    session.stalls += 1
                    logger.warning("gNMI %s: nothing for %.1f s (limit %.1f s): stalled", session.device,
                                   now - session.last_message, limit)  # fmt: skip
                    session.abort("stall")
            elif session.state in ("syncing", "connecting") and (
                now - session.session_started > self.config.sync_timeout
            ):
                session.stalls += 1
                session.abort("sync-timeout")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every session (cancel their RPCs) and the supervisor; the caller closes writer and handoff."""
        self.stopping.set()
        for session in self.sessions.values():
            session.abort("shutdown")
        deadline = time.monotonic() + timeout
        for session in self.sessions.values():
            if session.thread is not None:
                session.thread.join(max(0.0, deadline - time.monotonic()))
        if self._supervisor is not None:
            self._supervisor.join(1)

    # --- health and latest ------------------------------------------------------------------------------
    def device_health(self) -> dict[str, dict[str, Any]]:
        return {name: s.health() for name, s in self.sessions.items()}

    def health(self) -> dict[str, Any]:
        devices = self.device_health()
        writer_stats = self.writer.stats() if hasattr(self.writer, "stats") else {}
        return {
            "shard": self.config.shard,
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "devices": len(devices),
            "connected": sum(1 for d in devices.values() if d["connected"]),
            "synced": sum(1 for d in devices.values() if d["synced"]),
            "updates": sum(d["updates"] for d in devices.values()),
            "malformed": sum(d["malformed"] for d in devices.values()),
            "reconnects": sum(d["reconnects"] for d in devices.values()),
            "gaps": sum(d["gaps"] for d in devices.values()),
            "starved_s": round(self.starved_s, 1),  # time the supervisor could not run (stall clocks restarted)
            "writer": writer_stats,
            "handoff": dict(self.handoff.stats) if self.handoff is not None else {},
        }

    def _health_for_handoff(self) -> tuple[dict[str, dict], dict[str, dict]]:
        return self.device_health(), {self.config.shard: self.health()}

    def _latest(self):
        """(device, measurement, tags, newest ns, fields, {older field: ns}) of the series that moved."""
        for name, session in self.sessions.items():
            for row in session.normaliser.take_dirty():
                yield (name, *row)


def run_until_signal(
    collector: Collector, writer: Any, handoff: Handoff | None, on_tick: Callable | None = None
) -> None:
    """Run in the main thread until SIGTERM/SIGINT, then stop sessions, flush the writer (spooling what InfluxDB
    does not take in time) and publish the last handoff entries."""
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    collector.start()
    try:
        while not done.wait(1.0):
            if on_tick is not None:
                on_tick()
    finally:
        logger.info("collector shard %s: stopping", collector.config.shard)
        collector.stop()
        writer.close()
        if handoff is not None:
            handoff.close()
