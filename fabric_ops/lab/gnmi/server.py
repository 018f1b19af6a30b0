"""gNMI over gRPC for every emulated switch, all served from one asyncio loop in one thread.

gRPC does not tell a handler which local address a call arrived on, so each
switch gets its own ``grpc.aio`` server bound to ``mgmt_address:gnmi_port``;
all of them share the loop. Sampling is driven by the loop's timers
(``call_at``), not by a thread per subscription, which is what lets one
process carry hundreds of switches.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import hmac
import logging
import math
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import grpc
from pygnmi.spec.v080 import gnmi_pb2

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError
from fabric_ops.lab.state import SwitchState

from . import wire
from .paths import (
    MODELS,
    MODULE_NAMES,
    ROOT,
    Cursor,
    GnmiPathError,
    ReqElem,
    TemplateLeaf,
    evaluate,
    group_leaves,
    leaves_under,
    render_json,
    resolve,
    wanted,
)
from .subscribe import Plan

logger = logging.getLogger(__name__)

MIN_SAMPLE_INTERVAL_NS = 100_000_000  # 100 ms; below is INVALID_ARGUMENT, 0 means "as fast as the target can"
DEFAULT_SAMPLE_INTERVAL_NS = 10_000_000_000  # TARGET_DEFINED counters
ON_CHANGE_SCAN_S = 0.1  # how often ON_CHANGE leaves are compared with their last value
LATE_THRESHOLD_S = 0.1  # a sample tick is "late" when it runs more than this after its scheduled time
# Bytes queued per RPC (a collector slower than its subscription) beyond which new full SAMPLE messages are
# dropped, as a switch drops telemetry it cannot send; ON_CHANGE and suppress_redundant deltas are never dropped.
MAX_PENDING_BYTES = 2 << 20
ALIVE_SCAN_S = 0.1
SETUP_CONCURRENCY = 2  # subscriptions being resolved/compiled at once (interleaved with sample ticks)

ENCODINGS = (wire.JSON, wire.JSON_IETF, wire.PROTO)
ORIGINS = {"", "openconfig", "rfc7951"} | MODULE_NAMES
GNMI_VERSION = {"eos": "0.7.0"}  # what EOS reports; others report the proto version pygnmi ships


class RpcError(Exception):
    """A gNMI request the target rejects with a gRPC status."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass
class Stats:
    """Counters the benchmark reads; written only from the loop thread."""

    ticks: int = 0
    late_ticks: int = 0
    max_late_s: float = 0.0
    notifications: int = 0
    updates: int = 0
    bytes: int = 0
    dropped_messages: int = 0
    sessions: int = 0
    late_histogram: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))

    def tick(self, late_s: float) -> None:
        self.ticks += 1
        if late_s > LATE_THRESHOLD_S:
            self.late_ticks += 1
        if late_s > self.max_late_s:
            self.max_late_s = late_s
        bucket = "<10ms" if late_s < 0.01 else "<50ms" if late_s < 0.05 else "<100ms" if late_s < 0.1 else ">=100ms"
        self.late_histogram[bucket] += 1


def _elems(path: gnmi_pb2.Path) -> list[ReqElem]:
    if path.elem:
        return [(e.name, dict(e.key)) for e in path.elem]
    return [(name, {}) for name in path.element]  # deprecated string elements (no keys)


def _origin_ok(prefix: gnmi_pb2.Path, path: gnmi_pb2.Path) -> bool:
    return (path.origin or prefix.origin) in ORIGINS


_CLOSE = object()


@dataclass
class _Abort:
    code: grpc.StatusCode
    details: str


class Session:
    """One Subscribe RPC: its plans, timers and outgoing queue."""

    def __init__(self, switch_server: SwitchServer, request: gnmi_pb2.SubscriptionList) -> None:
        self.sw = switch_server
        self.switch = switch_server.switch
        self.stats = switch_server.hub.stats
        self.loop = switch_server.hub.loop
        self.mode = request.mode
        self.updates_only = request.updates_only
        if request.encoding not in ENCODINGS:
            raise RpcError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{self.switch.hostname}: encoding {wire.ENCODING_NAMES.get(request.encoding, request.encoding)}"
                " is not supported (JSON, JSON_IETF, PROTO are)",
            )
        if not request.subscription:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "SubscriptionList has no subscription")
        self.encoding = request.encoding
        target = request.prefix.target
        bundle = switch_server.hub.bundle
        self.out: collections.deque = collections.deque()
        self.pending_bytes = 0
        self.wakeup = asyncio.Event()
        self.handles: list[asyncio.TimerHandle] = []
        self.dump = Plan(self.encoding, bundle, target)  # ONCE and POLL
        self.samples: dict[tuple[int, bool, int], Plan] = {}
        self.changes: dict[int, Plan] = {}
        self.request = request
        for sub in request.subscription:  # reject bad intervals before anything is sent
            self._interval(sub.heartbeat_interval, "heartbeat_interval")
            self._interval(sub.sample_interval, "sample_interval")

    async def build(self) -> None:
        """Resolve the paths and compile the plans, yielding to the loop between steps.

        Done on the loop thread in small steps rather than in a worker thread: under CPU contention a
        worker thread holding the GIL starves the loop's sample ticks far worse than interleaving does.
        """
        request = self.request
        target = request.prefix.target
        stream = self.mode == gnmi_pb2.SubscriptionList.STREAM
        for sub in request.subscription:
            groups = self._resolve(request.prefix, sub.path)
            await asyncio.sleep(0)
            if not stream:
                for cursor, leaves in groups:
                    self.dump.add(cursor, leaves)
                continue
            heartbeat = sub.heartbeat_interval
            if sub.mode == gnmi_pb2.SAMPLE:
                interval = sub.sample_interval or MIN_SAMPLE_INTERVAL_NS
                plan = self._plan(
                    self.samples, (interval, sub.suppress_redundant, heartbeat), target, sub.suppress_redundant
                )
                for cursor, leaves in groups:
                    plan.add(cursor, leaves)
            elif sub.mode == gnmi_pb2.ON_CHANGE:
                plan = self._plan(self.changes, heartbeat, target, True)
                for cursor, leaves in groups:
                    plan.add(cursor, leaves)
            else:  # TARGET_DEFINED: state leaves on change, counters and gauges sampled
                interval = sub.sample_interval or DEFAULT_SAMPLE_INTERVAL_NS
                for cursor, leaves in groups:
                    on_change = [t for t in leaves if t.leaf.on_change]
                    sampled = [t for t in leaves if not t.leaf.on_change]
                    if on_change:
                        self._plan(self.changes, heartbeat, target, True).add(cursor, on_change)
                    if sampled:
                        key = (interval, sub.suppress_redundant, heartbeat)
                        self._plan(self.samples, key, target, sub.suppress_redundant).add(cursor, sampled)
        for plan in (self.dump, *self.samples.values(), *self.changes.values()):
            for _ in plan.finalize_steps():
                await asyncio.sleep(0)

    def _plan(self, plans: dict, key: Any, target: str, delta: bool) -> Plan:
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = Plan(self.encoding, self.sw.hub.bundle, target, delta)
        return plan

    def _interval(self, value: int, name: str) -> int:
        if value and value < MIN_SAMPLE_INTERVAL_NS:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{self.switch.hostname}: {name} {value} ns is below the minimum of {MIN_SAMPLE_INTERVAL_NS} ns",
            )
        return value

    def _resolve(self, prefix: gnmi_pb2.Path, path: gnmi_pb2.Path) -> list[tuple[Cursor, tuple[TemplateLeaf, ...]]]:
        """Groups and leaves of one subscription path; a path that matches nothing keeps the RPC open."""
        if not _origin_ok(prefix, path):
            logger.info("%s: subscription origin %r not served", self.switch.hostname, path.origin or prefix.origin)
            return []
        try:
            return group_leaves(self.switch, _elems(prefix) + _elems(path))
        except GnmiPathError as exc:
            logger.info("%s: subscription path ignored: %s", self.switch.hostname, exc)
            return []

    # --- output ---------------------------------------------------------------------------------
    def push(self, message: Any, droppable: bool = False) -> None:
        if droppable and self.pending_bytes > MAX_PENDING_BYTES:
            self.stats.dropped_messages += 1
            return
        if isinstance(message, bytes):
            self.pending_bytes += len(message)
        self.out.append(message)
        self.wakeup.set()

    def emit(self, plan: Plan, full: bool, droppable: bool = False) -> None:
        rendered = plan.render(self.switch, full)
        if not rendered:
            return
        ts = time.time_ns()
        for message in plan.notifications(rendered, ts):
            self.stats.notifications += 1
            self.stats.bytes += len(message)
            self.push(message, droppable)
        self.stats.updates += sum([r[2] for r in rendered])

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.out.clear()
        self.pending_bytes = 0
        self.push(_Abort(code, details))

    # --- lifecycle ------------------------------------------------------------------------------
    async def prime(self) -> tuple[list[bytes], int]:
        """Render the initial values, one plan at a time (before any timer of this RPC exists)."""
        streaming = (*self.samples.values(), *self.changes.values())
        messages: list[bytes] = []
        updates = 0
        for plan in (self.dump, *streaming):
            rendered = plan.render(self.switch, True)
            if not self.updates_only:  # with updates_only the render only records the current values
                messages += plan.notifications(rendered, time.time_ns())
                updates += sum([r[2] for r in rendered])
            await asyncio.sleep(0)
        return messages, updates

    def start(self, initial: list[bytes], updates: int) -> None:
        """Queue the initial updates and sync_response, then start the timers (STREAM) or close (ONCE)."""
        for message in initial:
            self.stats.notifications += 1
            self.stats.bytes += len(message)
            self.push(message)
        self.stats.updates += updates
        self.push(wire.SYNC_RESPONSE)
        if self.mode == gnmi_pb2.SubscriptionList.ONCE:
            self.push(_CLOSE)
            return
        if self.mode != gnmi_pb2.SubscriptionList.STREAM:
            return
        now = self.loop.time()
        phase = (zlib.crc32(self.switch.hostname.encode()) % 1000) / 1000.0
        for (interval_ns, suppress, heartbeat_ns), plan in self.samples.items():
            interval = interval_ns / 1e9
            self._schedule(self._sample_tick, plan, interval, suppress, heartbeat_ns / 1e9, now, phase)
        for heartbeat_ns, plan in self.changes.items():
            self._schedule(self._change_tick, plan, ON_CHANGE_SCAN_S, True, heartbeat_ns / 1e9, now, phase)

    def _schedule(self, fn, plan, interval, delta_only, heartbeat, now, phase) -> None:
        # Align ticks to a per-switch phase so hundreds of switches do not all sample in the same instant.
        first = math.ceil((now - phase * interval) / interval) * interval + phase * interval
        if first - now < interval / 2:
            first += interval
        state = {"due": first, "last_full": now}
        handle = self.loop.call_at(first, fn, plan, interval, delta_only, heartbeat, state)
        self.handles.append(handle)

    def _reschedule(self, fn, plan, interval, delta_only, heartbeat, state) -> None:
        due = state["due"] + interval
        now = self.loop.time()
        while due <= now:  # fell behind by a whole interval: those sample ticks are missed, count them late
            if fn == self._sample_tick:
                self.stats.tick(now - due)
            due += interval
        state["due"] = due
        handle = self.loop.call_at(due, fn, plan, interval, delta_only, heartbeat, state)
        self.handles.append(handle)
        if len(self.handles) > 64:
            self.handles = [h for h in self.handles if not h.cancelled() and h.when() >= now]

    def _sample_tick(self, plan: Plan, interval: float, suppress: bool, heartbeat: float, state: dict) -> None:
        now = self.loop.time()
        self.stats.tick(now - state["due"])
        try:
            if self.switch.alive:
                full = not suppress or (heartbeat and now - state["last_full"] >= heartbeat)
                if full:
                    state["last_full"] = now
                self.emit(plan, bool(full), droppable=not suppress)
        finally:
            self._reschedule(self._sample_tick, plan, interval, suppress, heartbeat, state)

    def _change_tick(self, plan: Plan, interval: float, _: bool, heartbeat: float, state: dict) -> None:
        now = self.loop.time()
        try:
            if self.switch.alive:
                full = bool(heartbeat) and now - state["last_full"] >= heartbeat
                if full:
                    state["last_full"] = now
                self.emit(plan, full)
        finally:
            self._reschedule(self._change_tick, plan, interval, True, heartbeat, state)

    def poll(self) -> None:
        self.emit(self.dump, True)
        self.push(wire.SYNC_RESPONSE)

    def close(self) -> None:
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()


class SwitchServer:
    """The gNMI service of one switch."""

    def __init__(self, hub: LabServer, switch: SwitchState) -> None:
        self.hub = hub
        self.switch = switch
        self.sessions: set[Session] = set()
        self.server: grpc.aio.Server | None = None
        version = GNMI_VERSION.get(switch.platform, "0.8.0")
        self.capabilities = gnmi_pb2.CapabilityResponse(
            supported_models=[gnmi_pb2.ModelData(name=n, organization=o, version=v) for n, o, v in MODELS],
            supported_encodings=list(ENCODINGS),
            gNMI_version=version,
        )

    # --- checks ---------------------------------------------------------------------------------
    def _check(self, context: grpc.aio.ServicerContext) -> None:
        if not self.switch.alive:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, f"{self.switch.hostname} is not answering (switch down)")
        metadata = dict(context.invocation_metadata() or ())
        username, password = metadata.get("username", ""), metadata.get("password", "")
        expected = self.hub.credential
        ok_user = hmac.compare_digest(str(username).encode(), expected.username.encode())
        ok_pass = hmac.compare_digest(str(password).encode(), expected.password.encode())
        if not (ok_user and ok_pass):
            logger.info("%s: gNMI authentication failed for user %r", self.switch.hostname, username)
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, "authentication failed: bad username or password")

    # --- RPCs -----------------------------------------------------------------------------------
    async def Capabilities(self, request, context):  # noqa: N802 - gRPC method name
        try:
            self._check(context)
        except RpcError as exc:
            await context.abort(exc.code, exc.details)
        return self.capabilities

    async def Set(self, request, context):  # noqa: N802
        try:
            self._check(context)
        except RpcError as exc:
            await context.abort(exc.code, exc.details)
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{self.switch.hostname}: gNMI Set is not offered by the lab; configure through the platform API",
        )

    async def Get(self, request: gnmi_pb2.GetRequest, context) -> bytes:  # noqa: N802
        try:
            self._check(context)
            return self._get(request)
        except RpcError as exc:
            await context.abort(exc.code, exc.details)

    def _get(self, request: gnmi_pb2.GetRequest) -> bytes:
        switch = self.switch
        encoding = request.encoding
        if encoding not in ENCODINGS:
            raise RpcError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{switch.hostname}: encoding {wire.ENCODING_NAMES.get(encoding, encoding)} is not supported",
            )
        prefix = wire.encode_path((), target=request.prefix.target)
        paths = list(request.path) or [gnmi_pb2.Path()]
        notifications = []
        for path in paths:
            if not _origin_ok(request.prefix, path):
                raise RpcError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{switch.hostname}: origin {(path.origin or request.prefix.origin)!r} is not served",
                )
            elems = _elems(request.prefix) + _elems(path)
            shown = "/" + "/".join(n + "".join(f"[{k}={v}]" for k, v in keys.items()) for n, keys in elems)
            try:
                cursors = resolve(switch, elems)
            except GnmiPathError as exc:
                raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{switch.hostname}: {shown}: {exc}") from exc
            if not cursors:
                raise RpcError(grpc.StatusCode.NOT_FOUND, f"{switch.hostname}: path {shown} does not exist")
            updates: list[bytes] = []
            with switch.lock:
                ts = time.time_ns()
                for cursor in cursors:
                    for cur in self._split_root(cursor):
                        updates.extend(self._get_updates(cur, encoding, request.type))
            notifications.append(wire.encode_notification(ts, prefix, updates))
        return wire.get_response(notifications)

    def _split_root(self, cursor: Cursor) -> list[Cursor]:
        if cursor.node is not ROOT:
            return [cursor]
        return [cursor.child(child) for child in ROOT.children.values()]

    def _get_updates(self, cursor: Cursor, encoding: int, datatype: int) -> list[bytes]:
        switch = self.switch
        if cursor.node.leaf is not None or encoding == wire.PROTO:
            out = []
            for ref in leaves_under(switch, cursor):
                if not wanted(ref.leaf, datatype):
                    continue
                value = evaluate(ref, switch)
                if value is None:
                    continue
                tv = wire.value_encoder(ref.leaf.kind, ref.leaf.fd, encoding)(value)
                out.append(wire.encode_update(wire.update_head(wire.encode_path(ref.path)), tv))
            return out
        value = render_json(switch, cursor, encoding, datatype)
        if value is None:
            return []
        import json

        text = json.dumps(value, separators=(",", ":")).encode()
        tag = b"\x5a" if encoding == wire.JSON_IETF else b"\x52"
        return [wire.encode_update(wire.update_head(wire.encode_path(cursor.path)), wire.field(tag, text))]

    async def Subscribe(self, request_iterator, context):  # noqa: N802
        session: Session | None = None
        reader: asyncio.Task | None = None
        try:
            self._check(context)
            try:
                first = await request_iterator.__anext__()
            except StopAsyncIteration:
                raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "Subscribe RPC closed before a request") from None
            if not first.HasField("subscribe"):
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "the first SubscribeRequest must carry a SubscriptionList (no subscription to poll or alias)",
                )
            # Resolving paths and the first render are the expensive part of a subscription; they run in
            # small steps so a storm of new subscriptions does not stall the sample ticks of existing ones.
            session = Session(self, first.subscribe)
            async with self.hub.setup_slots:  # a few at a time: each then starts streaming sooner
                await session.build()
                initial, updates = await session.prime()
            gc.freeze()  # see LabServer._start
        except RpcError as exc:
            await context.abort(exc.code, exc.details)
        self.sessions.add(session)
        self.hub.stats.sessions += 1
        reader = asyncio.ensure_future(self._read(session, request_iterator))
        try:
            session.start(initial, updates)
            while True:
                while not session.out:
                    session.wakeup.clear()
                    await session.wakeup.wait()
                message = session.out.popleft()
                if message is _CLOSE:
                    return
                if isinstance(message, _Abort):
                    await context.abort(message.code, message.details)
                session.pending_bytes -= len(message)
                yield message
        finally:
            session.close()
            self.sessions.discard(session)
            self.hub.stats.sessions -= 1
            if reader is not None:
                reader.cancel()

    async def _read(self, session: Session, request_iterator) -> None:
        """Further client messages on an open Subscribe: polls, or protocol errors."""
        try:
            async for request in request_iterator:
                if request.HasField("poll"):
                    if session.mode != gnmi_pb2.SubscriptionList.POLL:
                        session.abort(grpc.StatusCode.INVALID_ARGUMENT, "Poll received on a non-POLL subscription")
                        return
                    if self.switch.alive:
                        session.poll()
                elif request.HasField("subscribe"):
                    session.abort(
                        grpc.StatusCode.INVALID_ARGUMENT, "a SubscriptionList was already received on this RPC"
                    )
                    return
                elif request.HasField("aliases"):
                    session.abort(grpc.StatusCode.UNIMPLEMENTED, "client-defined aliases are not supported")
                    return
            # The client half-closed its side: nothing more can be polled; end the RPC cleanly.
            session.push(_CLOSE)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the RPC is being torn down (client cancelled)
            logger.debug("%s: subscribe reader ended: %s", self.switch.hostname, exc)


class LabServer:
    """The running gNMI service of a set of lab switches (one loop thread); call :meth:`stop` to end it."""

    def __init__(
        self,
        switches: list[SwitchState],
        credential: Credential,
        tls: tuple[bytes, bytes] | None = None,
        bundle: bool = True,
    ) -> None:
        self.credential = credential
        self.tls = tls
        self.bundle = bundle
        self.stats = Stats()
        self.switch_servers = [SwitchServer(self, s) for s in switches]
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="lab-gnmi", daemon=True)
        self._alive_task: asyncio.Task | None = None
        self.setup_slots: asyncio.Semaphore | None = None
        self._stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self, timeout: float = 60.0) -> LabServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        try:
            future.result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        credentials = grpc.ssl_server_credentials([(self.tls[1], self.tls[0])]) if self.tls else None
        for ss in self.switch_servers:
            sw = ss.switch
            server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
            handlers = {
                "Capabilities": grpc.unary_unary_rpc_method_handler(
                    ss.Capabilities,
                    request_deserializer=gnmi_pb2.CapabilityRequest.FromString,
                    response_serializer=gnmi_pb2.CapabilityResponse.SerializeToString,
                ),
                # Get and Subscribe answers are pre-encoded bytes (see wire.py): no serializer.
                "Get": grpc.unary_unary_rpc_method_handler(ss.Get, request_deserializer=gnmi_pb2.GetRequest.FromString),
                "Set": grpc.unary_unary_rpc_method_handler(
                    ss.Set,
                    request_deserializer=gnmi_pb2.SetRequest.FromString,
                    response_serializer=gnmi_pb2.SetResponse.SerializeToString,
                ),
                "Subscribe": grpc.stream_stream_rpc_method_handler(
                    ss.Subscribe, request_deserializer=gnmi_pb2.SubscribeRequest.FromString
                ),
            }
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnmi.gNMI", handlers),))
            address = f"{sw.mgmt_address}:{sw.gnmi_port}"
            try:
                if credentials is not None:
                    bound = server.add_secure_port(address, credentials)
                else:
                    bound = server.add_insecure_port(address)
            except RuntimeError as exc:
                raise LabError(f"{sw.hostname}: cannot listen for gNMI on {address}: {exc}") from exc
            if not bound:
                raise LabError(f"{sw.hostname}: cannot listen for gNMI on {address}")
            await server.start()
            ss.server = server
        self.setup_slots = asyncio.Semaphore(SETUP_CONCURRENCY)
        self._alive_task = asyncio.ensure_future(self._watch_alive())
        # A lab holds millions of long-lived objects (switch state, plans). Python's full collections walk
        # all of them, stopping every thread for up to seconds; freezing them keeps the sample ticks on time.
        # Objects frozen here are still freed by reference counting; only reference cycles would linger.
        gc.freeze()
        logger.info("gNMI serving %d switches%s", len(self.switch_servers), " (TLS)" if self.tls else "")

    async def _watch_alive(self) -> None:
        """Abort open streams of switches that went down (the loop never blocks on a dead switch)."""
        while True:
            await asyncio.sleep(ALIVE_SCAN_S)
            for ss in self.switch_servers:
                if not ss.switch.alive and ss.sessions:
                    for session in list(ss.sessions):
                        session.abort(grpc.StatusCode.UNAVAILABLE, f"{ss.switch.hostname} went down")

    async def _stop(self) -> None:
        if self._alive_task is not None:
            self._alive_task.cancel()
        await asyncio.gather(*(ss.server.stop(0) for ss in self.switch_servers if ss.server is not None))

    def stop(self) -> None:
        """Close every listener and end the loop thread."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
            except Exception as exc:  # stopping must not raise over a half-started server
                logger.warning("gNMI lab server stop: %s", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
        if not self.loop.is_running():
            self.loop.close()

    def snapshot(self) -> dict[str, Any]:
        """A copy of the counters (sample ticks, lateness, traffic) for benchmarks and `lab status`."""
        s = self.stats
        return {
            "switches": len(self.switch_servers),
            "sessions": s.sessions,
            "ticks": s.ticks,
            "late_ticks": s.late_ticks,
            "late_fraction": (s.late_ticks / s.ticks) if s.ticks else 0.0,
            "max_late_s": s.max_late_s,
            "late_histogram": dict(s.late_histogram),
            "notifications": s.notifications,
            "updates": s.updates,
            "bytes": s.bytes,
            "dropped_messages": s.dropped_messages,
        }

    def __enter__(self) -> LabServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    switches: list[SwitchState],
    credential: Credential,
    tls: tuple[bytes, bytes] | None = None,
    *,
    bundle: bool = True,
) -> LabServer:
    """Start gNMI on every switch's ``mgmt_address:gnmi_port`` and return once all are listening.

    ``tls`` is ``(certificate_pem, private_key_pem)``. ``bundle`` puts all updates of one sample of one
    subscription into one Notification (gNMI spec 3.5.2.1 allows it and requires a way to turn it off:
    ``bundle=False`` sends one Notification per interface/component with that entry as prefix).
    """
    return LabServer(switches, credential, tls, bundle).start()
