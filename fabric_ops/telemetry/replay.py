"""A gNMI target that replays recorded (or scripted) SubscribeResponses: benchmarks and fault tests only.

The product never imports this. Why it exists: the benchmark must measure the collector, not the lab's
emulation (a replay costs the source almost nothing per update), and the fault tests need targets that do what a
healthy lab switch never does: stall with the stream open, send updates of the wrong type, send bytes that are
not protobuf at all. It speaks real gRPC on a real socket, so pygnmi and the collector talk to it unmodified.

Each replayed Notification gets a fresh timestamp (now, in ns) so freshness can be measured end to end.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import grpc
from pygnmi.spec.v080 import gnmi_pb2

logger = logging.getLogger(__name__)

__all__ = ["ReplayTarget", "record", "split_responses"]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


SYNC = gnmi_pb2.SubscribeResponse(sync_response=True).SerializeToString()


def stamp(notification_body: bytes, ts_ns: int) -> bytes:
    """``SubscribeResponse{update: Notification{timestamp: ts_ns, <body>}}`` (body = a Notification without ts)."""
    inner = b"\x08" + _varint(ts_ns) + notification_body
    return b"\x0a" + _varint(len(inner)) + inner


def split_responses(responses: Iterable[gnmi_pb2.SubscribeResponse]) -> tuple[list[bytes], list[list[bytes]]]:
    """Recorded responses -> (initial dump bodies, later ticks as lists of bodies), timestamps removed.

    A tick is the run of notifications sharing one timestamp (one sample of one subscription).
    """
    initial: list[bytes] = []
    ticks: list[list[bytes]] = []
    synced = False
    last_ts = None
    for response in responses:
        if response.HasField("sync_response"):
            synced = True
            continue
        if not response.HasField("update"):
            continue
        notification = gnmi_pb2.Notification()
        notification.CopyFrom(response.update)
        ts = notification.timestamp
        notification.timestamp = 0
        body = notification.SerializeToString()
        if not synced:
            initial.append(body)
        elif ts == last_ts and ticks:
            ticks[-1].append(body)
        else:
            ticks.append([body])
        last_ts = ts
    return initial, ticks


def record(
    address: str, port: int, username: str, password: str, request: gnmi_pb2.SubscribeRequest, seconds: float
) -> list[gnmi_pb2.SubscribeResponse]:
    """Record a live target's responses for ``seconds`` after its sync_response (raw gRPC stub)."""
    from pygnmi.spec.v080 import gnmi_pb2_grpc

    channel = grpc.insecure_channel(f"{address}:{port}", options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = gnmi_pb2_grpc.gNMIStub(channel)
    done = threading.Event()

    def requests():  # held open: a target may end the subscription when the client half-closes
        yield request
        done.wait()

    call = stub.Subscribe(requests(), metadata=(("username", username), ("password", password)))
    out: list[gnmi_pb2.SubscribeResponse] = []
    deadline = None
    try:
        for response in call:
            out.append(response)
            if response.HasField("sync_response"):
                deadline = time.monotonic() + seconds
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        done.set()
        call.cancel()
        channel.close()
    return out


@dataclass
class ReplayTarget:
    """Serve ``initial`` + sync_response, then ``ticks`` in a loop (paced by ``period`` seconds, or flat out).

    Controls (thread-safe): ``pause()``/``resume()`` stop sending while keeping the RPC open (a stalled stream);
    ``inject(raw_bytes)`` sends one raw message as is before the next tick (malformed updates); ``loops`` limits
    the cycles (None = forever). ``sent_updates`` counts Update entries sent (for benchmarks).
    """

    address: str
    port: int
    username: str
    password: str
    initial: list[bytes]
    ticks: list[list[bytes]]
    period: float | None = None
    loops: int | None = None
    updates_per_body: dict[int, int] = field(default_factory=dict)
    sent_updates: int = 0
    sessions: int = 0

    def __post_init__(self) -> None:
        self._server: grpc.Server | None = None
        self._running = threading.Event()
        self._running.set()
        self._injected: list[bytes] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counts = {id(b): gnmi_pb2.Notification.FromString(b).update.__len__() for t in self.ticks for b in t}
        self._counts.update({id(b): len(gnmi_pb2.Notification.FromString(b).update) for b in self.initial})

    # --- controls -------------------------------------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def inject(self, raw: bytes) -> None:
        with self._lock:
            self._injected.append(raw)

    # --- gRPC -----------------------------------------------------------------------------------------------
    def _authorised(self, context: grpc.ServicerContext) -> bool:
        md = dict(context.invocation_metadata())
        return md.get("username") == self.username and md.get("password") == self.password

    def _capabilities(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if not self._authorised(context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad credentials")
        return gnmi_pb2.CapabilityResponse(
            supported_encodings=[gnmi_pb2.JSON, gnmi_pb2.JSON_IETF, gnmi_pb2.PROTO], gNMI_version="0.8.0"
        ).SerializeToString()

    def _subscribe(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        if not self._authorised(context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad credentials")
        next(requests)  # the SubscriptionList; what it asks for is what was recorded
        self.sessions += 1
        counts = self._counts
        now = time.time_ns()
        for body in self.initial:
            self.sent_updates += counts[id(body)]
            yield stamp(body, now)
        yield SYNC
        loop = 0
        next_tick = time.monotonic()
        while context.is_active() and not self._stopping.is_set() and (self.loops is None or loop < self.loops):
            for tick in self.ticks:
                if not self._running.is_set():
                    while not self._running.wait(0.05):
                        if not context.is_active() or self._stopping.is_set():
                            return
                    next_tick = time.monotonic()
                if self._injected:
                    with self._lock:
                        injected, self._injected = self._injected, []
                    yield from injected
                if self.period is not None:
                    next_tick += self.period
                    delay = next_tick - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                now = time.time_ns()
                for body in tick:
                    self.sent_updates += counts[id(body)]
                    yield stamp(body, now)
            loop += 1

    def start(self, workers: int = 8) -> ReplayTarget:
        handlers = {
            "Capabilities": grpc.unary_unary_rpc_method_handler(self._capabilities),
            "Subscribe": grpc.stream_stream_rpc_method_handler(self._subscribe),
        }
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("gnmi.gNMI", handlers),))
        bound = server.add_insecure_port(f"{self.address}:{self.port}")
        if not bound:
            raise OSError(f"cannot bind {self.address}:{self.port}")
        self.port = bound
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._running.set()
        if self._server is not None:
            self._server.stop(0).wait(5)
