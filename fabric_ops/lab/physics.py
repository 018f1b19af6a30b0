"""The lab's physics: one engine thread turns configuration, jobs and faults into counters and gauges.

Each tick (default 200 ms) the engine

1. lets active faults move (flaps toggle, optics decay, reboots finish);
2. settles link oper state from admin state, switch liveness, faults and optical signal,
   and re-routes when any link changed;
3. offers every routed flow to the egress queues it crosses and settles each queue
   from the switch's *running* QoS settings (:func:`queue_outcome`): DCQCN (ECN)
   slows senders, PFC pauses the upstream ports, and without either the queue drops;
   a port with PFC disabled for the class (``pfc_disabled``) ignores a storm's pauses and drops instead
   of pausing, and a BGP cost-out (``bgp_prepend``) re-routes flows off its link (``routing.Router``);
4. adds the carried bytes to both ends of every link (so tx on one end is exactly
   rx on the other), and every second refreshes optics, FEC and CPU/memory gauges.

Routing is cached; a tick is O(channels + flows crossing a congested queue).
Time and randomness are injectable so tests can step the engine deterministically.
"""

from __future__ import annotations

import logging
import operator
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import optical
from .routing import Channel, Flow, Job, LabLink, Router, job_pairs
from .spec import LabSpec, NicSpec
from .state import TRAFFIC_CLASSES, EcnProfile, InterfaceState, QueueCounters, SwitchState

logger = logging.getLogger(__name__)
_THROTTLE = operator.attrgetter("throttle")

ROCE_DSCP = 26
ROCE_FRAME_BYTES = 4160  # 4096-byte RoCE MTU payload plus IB/UDP/IP/Ethernet headers
BG_FRAME_BYTES = 600
BACKGROUND_LOAD = 0.002  # routing, LLDP, telemetry: keeps idle links' counters moving
QUEUE_LIMIT_BYTES = 12 * 1024 * 1024  # per-queue tail-drop limit of a lossy queue
PFC_XOFF_BYTES = 2 * 1024 * 1024  # a lossless queue sits here while it pauses its senders
BURST_FACTOR = 4.0  # collectives are bursty: a 90% loaded port queues like M/M/1 times this
ECN_ABSORB = 4.0  # DCQCN brings senders down by up to this factor before the buffer overflows
PAUSE_QUANTA = 65535
OPTICS_PERIOD = 1.0
OPTICS_MAX_PERIOD = 10.0  # production collectors sample optics every 10 s
DEAD_LASER_DBM = -40.0


@dataclass(frozen=True)
class QueueOutcome:
    depth: float  # bytes
    mark: float  # ECN marking probability of transmitted packets
    throttle: float  # fraction of offered rate the senders keep (DCQCN or PFC back-pressure)
    survive: float  # fraction of arrivals not dropped
    pause: float  # fraction of time the queue pauses its upstream


def wred_probability(depth: float, ecn: EcnProfile | None) -> float:
    """WRED-style ECN: 0 below min, linear to max_probability at max, every packet above max."""
    if ecn is None:
        return 0.0
    lo, hi = ecn.min_kbytes * 1024, ecn.max_kbytes * 1024
    if depth < lo:
        return 0.0
    if depth >= hi:
        return 1.0
    return (depth - lo) / max(1.0, hi - lo) * ecn.max_probability


def queue_outcome(u: float, lossless: bool, ecn: EcnProfile | None, blocked: bool = False) -> QueueOutcome:
    """Settle one egress queue offered ``u`` times its service rate (steady state over a tick).

    ``blocked`` means the peer is pausing this queue (a PFC storm honoured by the switch).
    """
    if blocked:
        if lossless:
            return QueueOutcome(PFC_XOFF_BYTES, 0.0, 0.0, 1.0, 1.0 if u > 0 else 0.0)
        return QueueOutcome(QUEUE_LIMIT_BYTES, 0.0, 1.0, 0.0, 0.0)
    if u <= 1.0:
        depth = min(QUEUE_LIMIT_BYTES, ROCE_FRAME_BYTES * BURST_FACTOR * u / max(1e-6, 1.0 - u))
        if lossless:
            depth = min(depth, PFC_XOFF_BYTES)
        return QueueOutcome(depth, wred_probability(depth, ecn), 1.0, 1.0, 0.0)
    residual = u
    depth = 0.0
    if ecn is not None:
        residual = u / min(u, ECN_ABSORB)
        lo, hi = ecn.min_kbytes * 1024, ecn.max_kbytes * 1024
        depth = lo + (hi - lo) * min(0.9, 0.25 + 0.15 * (u - 1.0))
    if residual <= 1.0:
        return QueueOutcome(depth, wred_probability(depth, ecn), 1.0 / u, 1.0, 0.0)
    if lossless:
        return QueueOutcome(PFC_XOFF_BYTES, wred_probability(PFC_XOFF_BYTES, ecn), 1.0 / u, 1.0, 1.0 - 1.0 / residual)
    mark = wred_probability(QUEUE_LIMIT_BYTES, ecn)
    return QueueOutcome(QUEUE_LIMIT_BYTES, mark, 1.0 / u * residual, 1 / residual, 0.0)


def pause_refresh_seconds(speed_bps: float) -> float:
    """A switch re-sends XOFF at half the pause time one frame buys (65535 quanta of 512 bit times)."""
    return PAUSE_QUANTA * 512 / max(speed_bps, 1.0) / 2


class _PortOptics:
    """Fault inputs for one port's receiver and its per-lane baseline."""

    __slots__ = ("base", "ber_override", "crc_rate", "decay_db", "decay_seen", "laser_on", "margin", "min_base")

    def __init__(self, base: list[float]) -> None:
        self.base = base
        self.min_base = min(base)
        self.margin: float | None = None  # worst lane's margin over sensitivity at the last lane refresh
        self.laser_on = True
        self.decay_seen = 0.0
        self.decay_db = 0.0
        self.ber_override: float | None = None
        self.crc_rate = 0.0


class PhysicsEngine:
    """Advance every switch of a lab. ``clock`` is monotonic seconds, ``wall_ns`` the timestamp clock.

    The tick starts at ``tick`` seconds and stretches (up to ``max_tick``) when a tick costs more than
    ``max_duty`` of it (thread CPU time; default 10 % of a core), so a 16k-port lab degrades to coarser
    counter steps (about 1 s) instead of starving the gNMI, eAPI and SSH servers that share the process and
    the GIL: benchmarks/lab.py showed 25 % lets gNMI sample ticks run late at 192 switches, 10 % does not.
    """

    def __init__(
        self,
        spec: LabSpec,
        *,
        jobs: list[Job] | None = None,
        tick: float = 0.2,
        max_tick: float = 1.0,
        max_duty: float | None = 0.1,
        seed: int = 1,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.spec = spec
        self.switches = spec.switches
        self.tick_seconds = self.base_tick = tick
        self.max_tick = max(tick, max_tick)
        self.max_duty = max_duty  # None: fixed tick (tests step by hand anyway)
        self.optics_period = OPTICS_PERIOD
        self.clock = clock
        self.wall_ns = wall_ns
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.links = [LabLink(ls, self.switches) for ls in spec.links]
        self.links_by_id = {lk.spec.id: lk for lk in self.links}
        self.link_by_port: dict[tuple[str, str], LabLink] = {}
        for link in self.links:
            self.link_by_port[link.spec.a] = link
            self.link_by_port[link.spec.b] = link
        self.channels: list[Channel] = [ch for lk in self.links for ch in (lk.ab, lk.ba)]
        self.router = Router(self.links)
        self.hosts = spec.host_nics()
        self.nic_by_key = {(n.host, n.nic): n for n in spec.nics}
        self.jobs = list(jobs) if jobs is not None else [Job("default")]
        self.extra_flows: dict[str, list[tuple[NicSpec, NicSpec, float]]] = {}
        self.flows: list[Flow] = []
        self.optics: dict[tuple[str, str], _PortOptics] = {}
        self.span_drop_db: dict[str, float] = {}
        self.storms: dict[tuple[str, str], tuple[int, float]] = {}  # (leaf, port) -> (priority, since)
        self._watchdog_fired: set[tuple[str, str]] = set()
        self._fed: list[Channel] = []
        self._up_channels: list[Channel] = []
        self._up_nic_channels: list[Channel] = []
        self._up_switch_channels: list[Channel] = []
        self._up_out: dict[str, list[Channel]] = {}
        self._up_in: dict[str, list[Channel]] = {}
        self._optics_round = 0
        self.faults = None  # a FaultManager sets itself here; ticked first on every step
        self.ticks = 0
        self.late_ticks = 0
        self.last_tick_seconds = 0.0
        self.last_tick_cpu_seconds = 0.0
        self.busy_seconds = 0.0
        self._routing_dirty = True
        self._links_dirty = True
        self._prepend_seen: dict[str, dict[str, int]] = {}  # per switch: the BGP cost-outs routing last saw
        self._next_optics = 0.0
        self._last: float | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._out_by_switch: dict[str, list[Channel]] = {h: [] for h in self.switches}
        self._in_by_switch: dict[str, list[Channel]] = {h: [] for h in self.switches}
        for ch in self.channels:
            if ch.tx_sw is not None:
                self._out_by_switch[ch.tx_sw.hostname].append(ch)
            if ch.rx_sw is not None:
                self._in_by_switch[ch.rx_sw.hostname].append(ch)
        self._noise = [self.rng.gauss(0.0, 1.0) for _ in range(4099)]
        self._noise_i = 0
        self._init_ports()
        for ch in self.channels:
            ch.rx_optics = self.optics.get((ch.rx_sw.hostname, ch.rx_if.name)) if ch.rx_sw is not None else None
        for switch in self.switches.values():
            switch.listeners.append(self._on_config)

    # ----------------------------------------------------------------- set-up
    def _init_ports(self) -> None:
        now_ns = self.wall_ns()
        linked = set(self.link_by_port)
        for switch in self.switches.values():
            with switch.lock:
                for name, iface in switch.interfaces.items():
                    key = (switch.hostname, name)
                    lanes = len(iface.optics) or 1
                    base = [-1.5 + 0.4 * self.rng.uniform(-1, 1) for _ in range(lanes)]
                    self.optics[key] = _PortOptics(base)
                    if key not in linked and not any(ch.interface == name for ch in switch.channels.values()):
                        iface.oper_up = False  # nothing cabled: the port has no carrier
                        iface.last_change_ns = now_ns
                        for lane in iface.optics:
                            lane.input_power_dbm = DEAD_LASER_DBM
        for link in self.links:
            up = link.should_be_up()
            link.up = up
            for _sw, iface in link.ends():
                iface.oper_up = up
                iface.last_change_ns = now_ns

    def _on_config(self, switch: SwitchState, changed_admin: list[str]) -> None:
        """Platform listener: admin changes take effect on oper state at once; routing follows on the next tick.

        Never blocks on the engine lock: a platform calls this holding its own lock, while a tick holding the
        engine lock may be rebooting that platform (switch-reboot fault) — waiting here would deadlock both.
        When the engine is busy, the next tick settles the links instead.
        """
        prepend = dict(switch.qos.bgp_prepend)
        if self._prepend_seen.get(switch.hostname, {}) != prepend:  # a BGP cost-out moved: re-route
            self._prepend_seen[switch.hostname] = prepend
            self._routing_dirty = True
            self._wake.set()
        if changed_admin:
            self._links_dirty = True
            if self.lock.acquire(blocking=False):
                try:
                    self.settle_links()
                finally:
                    self.lock.release()
            self._wake.set()

    # ------------------------------------------------------------- fault API
    def mark_routing_dirty(self) -> None:
        self._routing_dirty = True

    def set_incast(self, key: str, pairs: list[tuple[NicSpec, NicSpec, float]] | None) -> None:
        if pairs is None:
            self.extra_flows.pop(key, None)
        else:
            self.extra_flows[key] = pairs
        self._routing_dirty = True

    def set_storm(self, port: tuple[str, str], priority: int | None) -> None:
        if priority is None:
            self.storms.pop(port, None)
            self._watchdog_fired.discard(port)
        else:
            self.storms[port] = (priority, self.now())

    def set_jobs(self, jobs: list[Job]) -> None:
        with self.lock:
            self.jobs = list(jobs)
            self._routing_dirty = True

    def now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------------- ticks
    def step(self, dt: float | None = None) -> None:
        """Advance one tick of ``dt`` seconds (default: the time since the last tick)."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        with self.lock:
            now = self.clock()
            if dt is None:
                dt = self.tick_seconds if self._last is None else max(0.0, now - self._last)
            self._last = now
            if self.faults is not None:
                self.faults.tick(now)
            # Event-driven, plus every 5th tick for anything that flips state behind the engine's back.
            if self._links_dirty or self.ticks % 5 == 0 or (self.faults is not None and self.faults.active):
                self.settle_links()
            if self._routing_dirty:
                self._route()
            if dt > 0:
                self._traffic(dt, now)
            if now >= self._next_optics:
                period = self.optics_period if self.ticks else 0.0
                began = time.thread_time()
                self._optics(max(period, dt), now)
                cost = time.thread_time() - began
                if self.max_duty:  # big labs refresh optics less often rather than starve the front ends
                    self.optics_period = min(OPTICS_MAX_PERIOD, max(OPTICS_PERIOD, cost / (self.max_duty / 2)))
                self._next_optics = now + self.optics_period
            self.ticks += 1
        self.last_tick_seconds = time.perf_counter() - started
        self.last_tick_cpu_seconds = cpu = time.thread_time() - cpu_started  # wall time would count GIL waits
        self.busy_seconds += cpu
        if self.max_duty:  # stretch the tick so physics never takes more than max_duty of one core
            wanted = cpu / self.max_duty
            self.tick_seconds = min(self.max_tick, max(self.base_tick, 0.8 * self.tick_seconds + 0.2 * wanted))

    def settle_links(self) -> None:
        """Bring oper state in line with admin state, liveness, faults and signal; count carrier transitions."""
        self._links_dirty = False
        now_ns = None
        for link in self.links:
            up = link.should_be_up()
            if up == link.up:
                continue
            now_ns = now_ns or self.wall_ns()
            link.up = up
            self._routing_dirty = True
            for switch, iface in link.ends():
                with switch.lock:
                    if iface.oper_up != up:
                        iface.oper_up = up
                        iface.carrier_transitions += 1
                        iface.last_change_ns = now_ns
                    if not up:
                        iface.in_utilisation = iface.out_utilisation = 0.0
                        for q in iface.queues:
                            q.depth_bytes = 0
            logger.info("link %s:%s <-> %s:%s %s", *link.spec.a, *link.spec.b, "up" if up else "down")

    def _route(self) -> None:
        self.router.rebuild()
        for ch in self.channels:
            ch.roce = 0.0
            ch.flows = []
        flows: list[Flow] = []
        pairs = [(s, d, rate, job.name, job.qps) for job in self.jobs for s, d, rate in job_pairs(job, self.hosts)]
        pairs += [(src, dst, rate, key, 4) for key, extra in self.extra_flows.items() for src, dst, rate in extra]
        for src, dst, rate, tag, qps in pairs:
            for _ in range(max(1, qps)):
                flow = Flow(len(flows), src, dst, rate / max(1, qps), tag)
                flow.path = self.router.route(flow, 0)
                flows.append(flow)
                for ch in flow.path:
                    ch.roce += flow.rate
                    ch.flows.append(flow)
        self.flows = flows
        self._up_channels = [ch for ch in self.channels if ch.link.up]
        self._up_nic_channels = [ch for ch in self._up_channels if ch.tx_sw is None]
        self._up_switch_channels = [ch for ch in self._up_channels if ch.tx_sw is not None]
        self._up_out = {h: [ch for ch in chs if ch.link.up] for h, chs in self._out_by_switch.items()}
        self._up_in = {h: [ch for ch in chs if ch.link.up] for h, chs in self._in_by_switch.items()}
        for ch in self._up_channels:
            ch.bg = ch.cap * BACKGROUND_LOAD
            ch.survive = ch.throttle = 1.0
            ch.pause = ch.mark = ch.drop_bps = 0.0
        self._routing_dirty = False
        logger.debug("routed %d flows", len(flows))

    def _traffic(self, dt: float, now: float) -> None:
        jitter = max(0.5, 1.0 + self.rng.gauss(0.0, 0.02))
        for ch in self._fed:
            ch.feeders = {}
        self._fed = []
        for ch in self._up_channels:
            ch.carried = ch.roce * jitter
        # Pass 1: a NIC never sends above its line rate; what it holds back never reaches the fabric.
        for ch in self._up_nic_channels:
            load = ch.carried + ch.bg
            ch.throttle = 1.0
            if load > ch.cap:
                ch.throttle = throttle = ch.cap / load
                for flow in ch.flows:
                    held = flow.rate * jitter * (1.0 - throttle)
                    for c in flow.path:
                        c.carried -= held
        # Pass 2: settle every switch egress queue from its running QoS settings.
        congested: list[Channel] = []
        storms = self.storms
        for ch in self._up_switch_channels:
            qos = ch.tx_sw.qos
            tc = qos.dscp_to_tc.get(ROCE_DSCP, 0)
            cap, bg = ch.cap, ch.cap * BACKGROUND_LOAD
            u = (ch.carried + bg) / cap if tc == 0 else ch.carried / (cap - bg)
            ecn = qos.ecn.get(tc) if qos.ecn else None
            ch.drop_bps = 0.0
            if u <= 0.9 and ecn is None and not storms:  # fast path: an uncongested port
                ch.depth = ROCE_FRAME_BYTES * BURST_FACTOR * u / (1.0 - u)
                ch.mark, ch.throttle, ch.survive, ch.pause, ch.bg = 0.0, 1.0, 1.0, 0.0, bg
                continue
            # PFC disabled on this port for the class (a storming port): it neither honours pauses nor is lossless.
            lossless = tc in qos.pfc_priorities and not (
                qos.pfc_disabled and tc in qos.pfc_disabled.get(ch.tx_if.name, ())
            )
            storm = storms.get((ch.tx_sw.hostname, ch.tx_if.name)) if storms else None
            if storm is not None and storm[0] == tc and lossless:
                blocked = self._storm_blocks(ch.tx_sw, ch.tx_if, now - storm[1])
                if blocked is None:  # the PFC watchdog drops the stormed queue
                    out = QueueOutcome(QUEUE_LIMIT_BYTES, 0.0, 1.0, 0.0, 0.0)
                else:
                    out = queue_outcome(u, True, ecn, blocked)
            else:
                out = queue_outcome(u, lossless, ecn)
            ch.depth, ch.mark, ch.throttle = out.depth, out.mark, out.throttle
            ch.survive, ch.pause = out.survive, out.pause
            ch.bg = bg * out.survive if tc == 0 else bg
            if out.throttle < 1.0 or out.survive < 1.0 or out.pause > 0.0:
                congested.append(ch)
        if congested:
            self._settle_flows(congested, jitter)
        self._write_counters(dt, congested)

    def _storm_blocks(self, sw: SwitchState, iface: InterfaceState, elapsed: float) -> bool | None:
        """A stormed lossless queue is blocked until the PFC watchdog (if configured) fires.

        Returns True while blocked, None when the watchdog drops the queue, False when it ignores the pauses.
        """
        qos = sw.qos
        if not qos.pfc_watchdog or elapsed * 1000 < max(1, qos.pfc_watchdog_timeout_ms):
            return True
        key = (sw.hostname, iface.name)
        if key not in self._watchdog_fired:
            self._watchdog_fired.add(key)
            with sw.lock:
                iface.pfc_watchdog_triggers += 1
            logger.info("%s:%s PFC watchdog fired (%s)", sw.hostname, iface.name, qos.pfc_watchdog_action)
        return None if qos.pfc_watchdog_action == "drop" else False

    def _settle_flows(self, congested: list[Channel], jitter: float) -> None:
        """Walk the flows crossing a congested queue: senders slow to the tightest throttle, drops thin the rest."""
        seen: set[int] = set()
        for ch in congested:
            for flow in ch.flows:
                if flow.id in seen:
                    continue
                seen.add(flow.id)
                path = flow.path
                offered = flow.rate * jitter * path[0].throttle  # what the NIC put on the wire (pass 1)
                rate = offered * min(map(_THROTTLE, path[1:]))
                prev = None
                for c in path:
                    if c.pause > 0.0 and prev is not None:
                        if not c.feeders:
                            self._fed.append(c)
                        c.feeders[prev] = c.feeders.get(prev, 0.0) + offered
                    if c.survive < 1.0:
                        lost = rate * (1.0 - c.survive)
                        c.drop_bps += lost
                        rate -= lost
                    c.carried -= offered - rate
                    prev = c

    def _write_counters(self, dt: float, congested: list[Channel]) -> None:
        """Apply this tick to every switch under its own lock: out on the tx end, the same bytes in on the rx end.

        Both ends compute the byte count with the same expression from the same floats, so they agree exactly.
        """
        scale = dt / 8
        for hostname, switch in self.switches.items():
            if not switch.alive:
                continue
            with switch.lock:
                tc = switch.qos.dscp_to_tc.get(ROCE_DSCP, 0)
                for ch in self._up_out[hostname]:
                    iface = ch.tx_if
                    roce_bytes = int(ch.carried * scale) if ch.carried > 0 else 0
                    bg_bytes = int(ch.bg * scale)
                    roce_pkts = roce_bytes // ROCE_FRAME_BYTES
                    bg_pkts = bg_bytes // BG_FRAME_BYTES
                    iface.out_octets += roce_bytes + bg_bytes
                    iface.out_unicast_pkts += roce_pkts + bg_pkts
                    queue = iface.queues[tc]
                    queue.transmit_octets += roce_bytes
                    queue.transmit_pkts += roce_pkts
                    queue.depth_bytes = int(ch.depth)
                    q0 = iface.queues[0]
                    q0.transmit_octets += bg_bytes
                    q0.transmit_pkts += bg_pkts
                    if ch.mark:
                        queue.ecn_marked_pkts += int(roce_pkts * ch.mark)
                    if ch.survive < 1.0:
                        dropped = int(ch.drop_bps * scale)
                        if tc == 0:
                            dropped += int(ch.cap * BACKGROUND_LOAD * (1.0 - ch.survive) * scale)
                        dropped_pkts = dropped // ROCE_FRAME_BYTES
                        queue.dropped_octets += dropped
                        queue.dropped_pkts += dropped_pkts
                        iface.out_discards += dropped_pkts
                    iface.out_utilisation = (roce_bytes + bg_bytes) / (ch.cap * scale)
                for ch in self._up_in[hostname]:
                    iface = ch.rx_if
                    roce_bytes = int(ch.carried * scale) if ch.carried > 0 else 0
                    bg_bytes = int(ch.bg * scale)
                    pkts = roce_bytes // ROCE_FRAME_BYTES + bg_bytes // BG_FRAME_BYTES
                    iface.in_octets += roce_bytes + bg_bytes
                    iface.in_unicast_pkts += pkts
                    iface.in_utilisation = (roce_bytes + bg_bytes) / (ch.cap * scale)
                    po = ch.rx_optics
                    if po is not None and po.crc_rate:
                        errors = int(pkts * po.crc_rate + self.rng.random())
                        iface.in_errors += errors
                        iface.in_fcs_errors += errors
        self._write_pauses(dt, congested)

    def _write_pauses(self, dt: float, congested: list[Channel]) -> None:
        """PFC frames: a congested lossless queue pauses the ports feeding it; a storming NIC pauses its leaf port."""
        for (leaf, port), (prio, _since) in self.storms.items():
            switch = self.switches[leaf]
            iface = switch.interfaces[port]
            link = self.link_by_port.get((leaf, port))
            if switch.alive and link is not None and link.up:
                with switch.lock:
                    iface.pfc_rx_pause[prio] += int(dt / pause_refresh_seconds(iface.speed_gbps * 1e9))
        for ch in congested:
            if ch.pause <= 0.0 or not ch.feeders:
                continue
            prio = ch.tx_sw.qos.dscp_to_tc.get(ROCE_DSCP, 0)
            frames = ch.pause * dt / pause_refresh_seconds(ch.cap)
            total = sum(ch.feeders.values())
            for feeder, offered in ch.feeders.items():
                n = int(frames * offered / total)
                if not n:
                    continue
                with feeder.rx_sw.lock:
                    feeder.rx_if.pfc_tx_pause[prio] += n
                if feeder.tx_sw is not None:
                    with feeder.tx_sw.lock:
                        feeder.tx_if.pfc_rx_pause[prio] += n

    # ---------------------------------------------------------------- optics
    def _noise_next(self) -> float:
        self._noise_i = (self._noise_i + 1) % len(self._noise)
        return self._noise[self._noise_i]

    def _optics(self, period: float, now: float) -> None:
        """Per-lane power, BER and FEC on linked ports; OSNR/Q/BER on DCI wavelengths; CPU and memory."""
        for link in self.links:
            signal_ok = True
            for switch, iface in link.ends():
                other = link.b_if if iface is link.a_if else link.a_if
                other_sw = link.b_sw if iface is link.a_if else link.a_sw
                laser_on = other is None or (other_sw.alive and other.admin_up)
                ok = self._port_optics(switch, iface, laser_on, link.up, period)
                signal_ok = signal_ok and ok
            for switch, iface in link.ends():
                for ch in switch.channels.values():
                    if ch.interface == iface.name:
                        signal_ok = self._channel(switch, ch, iface) and signal_ok
            if link.signal_ok != signal_ok:
                link.signal_ok = signal_ok
                self._links_dirty = True
        for switch in self.switches.values():
            self._system(switch)
        self._optics_round += 1

    def _port_optics(self, switch: SwitchState, iface: InterfaceState, laser_on: bool, up: bool, period: float) -> bool:
        """Lane readings are rewritten when something moved them (decay, a laser going dark) and every 10th round
        otherwise (noise only); BER and FEC counters advance every round."""
        po = self.optics[(switch.hostname, iface.name)]
        with switch.lock:
            slow = self._optics_round % 10 == 0
            if slow or po.decay_db != po.decay_seen or laser_on != po.laser_on or po.margin is None:
                margin = 99.0
                base = po.base
                for i, lane in enumerate(iface.optics):
                    power = base[i % len(base)] - po.decay_db + 0.05 * self._noise_next()
                    lane.input_power_dbm = round(power if laser_on else DEAD_LASER_DBM, 2)
                    if slow:  # the transmit side drifts slowly
                        lane.output_power_dbm = round(1.0 + 0.03 * self._noise_next(), 2)
                        lane.laser_bias_ma = round(7.5 + 0.05 * self._noise_next(), 2)
                    if power - optical.RX_SENSITIVITY_DBM < margin:
                        margin = power - optical.RX_SENSITIVITY_DBM
                if not iface.optics:
                    margin = 6.0 - po.decay_db
                po.margin, po.laser_on, po.decay_seen = margin, laser_on, po.decay_db
                iface.temperature_c = round(42.0 + 10.0 * max(iface.in_utilisation, iface.out_utilisation), 1)
            ber = po.ber_override if po.ber_override is not None else optical.ber_from_margin(po.margin)
            ber *= 1.0 + 0.1 * self._noise_next()
            iface.pre_fec_ber = ber
            if up and laser_on:
                corrected, uncorrectable = optical.fec_counts(iface.speed_gbps, ber, period)
                iface.fec_corrected_blocks += int(corrected)
                unc = int(uncorrectable)
                if unc:
                    iface.fec_uncorrectable_blocks += unc
                    errors = min(unc, iface.in_unicast_pkts)
                    iface.in_errors += errors
                    iface.in_fcs_errors += errors
        # Loss of signal follows the fault-driven margin only; a peer's laser being off is already "down".
        return po.min_base - po.decay_db - optical.RX_SENSITIVITY_DBM >= optical.LOS_MARGIN_DB and ber < 1e-2

    def _channel(self, switch: SwitchState, ch, iface: InterfaceState) -> bool:
        healthy = [
            optical.span_osnr_db(sp.loss_db, sp.amplifier_count)
            for sp in (self.spec.spans.get(name) for name in ch.spans)
            if sp is not None
        ]
        drop = sum(self.span_drop_db.get(name, 0.0) for name in ch.spans)
        osnr = optical.combine_osnr_db(healthy) - drop + 0.1 * self._noise_next()
        q = optical.q_from_osnr_db(osnr)
        ber = optical.ber_from_q_db(q)
        with switch.lock:
            ch.osnr_db = round(osnr, 2)
            ch.q_value_db = round(q, 2)
            ch.esnr_db = round(osnr - 4.0, 2)
            ch.pre_fec_ber = ber
            ch.input_power_dbm = round(-8.0 - 0.5 * drop + 0.05 * self._noise_next(), 2)
            ch.output_power_dbm = round(-8.0 + 0.02 * self._noise_next(), 2)
            ch.chromatic_dispersion_ps_nm = round(
                17.0 * sum(self.spec.spans[n].length_km for n in ch.spans if n in self.spec.spans), 1
            )
            iface.pre_fec_ber = max(iface.pre_fec_ber, ber)
        return ber < optical.COHERENT_BER_LOF

    def _system(self, switch: SwitchState) -> None:
        if not switch.alive:
            return
        with switch.lock:
            ifaces = switch.interfaces.values()
            load = sum(i.out_utilisation for i in ifaces) / max(1, len(ifaces))
            cpu = 4.0 + 25.0 * load + 1.0 * self._noise_next()
            switch.cpu_utilisation = round(min(100.0, max(0.5, cpu)), 1)
            base = int(switch.memory_total_bytes * 0.19)
            switch.memory_used_bytes = base + int(switch.memory_total_bytes * 0.005 * (1 + self._noise_next()))

    # -------------------------------------------------------------- lifecycle
    def reset_counters(self, switch: SwitchState) -> None:
        """A rebooted switch starts its counters from zero, like the real thing; collectors must cope."""
        with switch.lock:
            for iface in switch.interfaces.values():
                for name in (
                    "in_octets", "out_octets", "in_unicast_pkts", "out_unicast_pkts", "in_errors", "out_errors",
                    "in_fcs_errors", "in_discards", "out_discards", "fec_corrected_blocks", "fec_uncorrectable_blocks",
                    "pfc_watchdog_triggers", "carrier_transitions",
                ):  # fmt: skip
                    setattr(iface, name, 0)
                iface.pfc_rx_pause = [0] * TRAFFIC_CLASSES
                iface.pfc_tx_pause = [0] * TRAFFIC_CLASSES
                iface.queues = [QueueCounters() for _ in range(TRAFFIC_CLASSES)]

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lab-physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # a physics bug must not silently freeze the lab: log it and keep ticking
                logger.exception("physics tick failed")
            next_at += self.tick_seconds
            delay = next_at - time.monotonic()
            if delay < -self.tick_seconds:
                self.late_ticks += 1
                next_at = time.monotonic()
                delay = 0.0
            self._wake.wait(max(0.0, delay))
            self._wake.clear()
