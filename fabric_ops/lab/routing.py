"""The lab's own forwarding: directed channels per link, GPU job flows, and per-hop ECMP hashing.

Routing is recomputed only when a link's oper state, a BGP cost-out or the set of flows changes,
never per tick. A BGP cost-out (a switch prepending its AS to what it advertises over one session) makes the
channel *towards* that switch longer by the prepended AS numbers: the peer's best paths avoid the link while an
shorter path exists elsewhere, and the link stays oper-up, carrying only background traffic (the only path
still carries: prepending is no shutdown). Each switch hashes each queue pair independently over its
equal-cost next hops (like a real ASIC hashing the RoCE UDP source port), so a failed link moves exactly the
flows that hashed onto it.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from dataclasses import dataclass, field

from .spec import LinkSpec, NicSpec
from .state import InterfaceState, SwitchState

logger = logging.getLogger(__name__)


class Channel:
    """One direction of a link: the egress queue of ``tx_if`` feeding the receiver ``rx_if``.

    ``tx_sw``/``tx_if`` is None when a GPU NIC transmits, ``rx_sw``/``rx_if`` when a NIC receives.
    The per-tick fields are scratch space the engine overwrites every tick.
    """

    __slots__ = (
        "bg",
        "cap",
        "carried",
        "depth",
        "drop_bps",
        "feeders",
        "flows",
        "link",
        "mark",
        "pause",
        "roce",
        "rx_if",
        "rx_optics",
        "rx_sw",
        "storm",
        "survive",
        "throttle",
        "tx_if",
        "tx_sw",
    )

    def __init__(self, link: LabLink, tx: tuple[SwitchState | None, InterfaceState | None], rx: tuple) -> None:
        self.link = link
        self.tx_sw, self.tx_if = tx
        self.rx_sw, self.rx_if = rx
        self.cap = link.spec.capacity_gbps * 1e9
        self.roce = 0.0  # offered RoCE bps from routed flows
        self.flows: list[Flow] = []
        self.storm: int | None = None  # priority a PFC storm from the NIC behind this egress pauses
        self.bg = self.carried = self.depth = self.drop_bps = self.mark = self.pause = 0.0
        self.survive = self.throttle = 1.0
        self.rx_optics = None  # the receiver's fault inputs (CRC rate), set by the engine
        self.feeders: dict[Channel, float] = {}


class LabLink:
    """A link at run time: its two ends, its oper state and why it is down."""

    __slots__ = ("a_if", "a_sw", "ab", "b_if", "b_sw", "ba", "fault_down", "signal_ok", "spec", "up")

    def __init__(self, spec: LinkSpec, switches: dict[str, SwitchState]) -> None:
        self.spec = spec
        self.a_sw = switches[spec.a[0]]
        self.a_if = self.a_sw.interfaces[spec.a[1]]
        self.b_sw = switches.get(spec.b[0])
        self.b_if = self.b_sw.interfaces[spec.b[1]] if self.b_sw else None
        self.fault_down = 0  # link-down / flap faults holding it down
        self.signal_ok = True  # set by optics: loss of signal or loss of frame takes the link down
        self.up = True
        self.ab = Channel(self, (self.a_sw, self.a_if), (self.b_sw, self.b_if))
        self.ba = Channel(self, (self.b_sw, self.b_if), (self.a_sw, self.a_if))

    def should_be_up(self) -> bool:
        if self.fault_down or not self.signal_ok:
            return False
        if not (self.a_sw.alive and self.a_if.admin_up):
            return False
        return self.b_sw is None or (self.b_sw.alive and self.b_if.admin_up)

    def ends(self) -> list[tuple[SwitchState, InterfaceState]]:
        out = [(self.a_sw, self.a_if)]
        if self.b_sw is not None:
            out.append((self.b_sw, self.b_if))
        return out


@dataclass
class Flow:
    """One RoCE queue pair's traffic from a NIC to a NIC, with the channels it crosses."""

    id: int
    src: NicSpec
    dst: NicSpec
    rate: float  # bps offered
    tag: str = ""  # job name or fault id
    path: list[Channel] = field(default_factory=list)


@dataclass
class Job:
    """A training job: every NIC of ``hosts`` runs a collective with the same rail on the other hosts.

    ``load`` is the fraction of NIC line rate each NIC sends. ``ring`` sends to the next and previous host of a
    ring ordered to alternate leaves (so rings cross the spines); ``all-to-all`` spreads over every other host.
    """

    name: str
    hosts: list[str] | None = None  # None: every host of the lab
    load: float = 0.5
    pattern: str = "ring"
    qps: int = 4
    cross_rail: bool = False  # send to the next rail's NIC: in a rail-optimized fabric that crosses the spines


PATTERNS = ("ring", "all-to-all")


def job_from_dict(data: dict, known_hosts: set[str]) -> Job:
    """A Job from JSON (control channel, CLI), validated with messages that name the field at fault."""
    from fabric_ops.errors import LabError

    if not isinstance(data, dict):
        raise LabError("a job must be an object with name, load, pattern, hosts, qps")
    unknown = sorted(set(data) - {"name", "hosts", "load", "pattern", "qps", "cross_rail"})
    if unknown:
        raise LabError(f"job: unknown field(s) {', '.join(unknown)}")
    name = str(data.get("name") or "job")
    try:
        load = float(data.get("load", 0.5))
        qps = int(data.get("qps", 4))
    except (TypeError, ValueError):
        raise LabError(f"job {name}: load must be a number and qps a whole number") from None
    if not 0.0 <= load <= 1.0:
        raise LabError(f"job {name}: load {load:g} is out of range [0, 1] (fraction of NIC line rate)")
    if not 1 <= qps <= 64:
        raise LabError(f"job {name}: qps {qps} is out of range [1, 64]")
    pattern = data.get("pattern", "ring")
    if pattern not in PATTERNS:
        raise LabError(f"job {name}: pattern {pattern!r} is not one of {', '.join(PATTERNS)}")
    hosts = data.get("hosts")
    if hosts is not None:
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise LabError(f"job {name}: hosts must be a list of GPU host names")
        missing = sorted(set(hosts) - known_hosts)
        if missing:
            raise LabError(f"job {name}: unknown GPU host(s) {', '.join(missing[:5])}")
    return Job(name=name, hosts=hosts, load=load, pattern=pattern, qps=qps, cross_rail=bool(data.get("cross_rail")))


def _mix(a: int, b: int, c: int) -> int:
    """A cheap, process-independent integer hash (Python's str hash is salted per process)."""
    x = (a * 0x9E3779B1 + b * 0x85EBCA77 + c * 0xC2B2AE3D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    return x ^ (x >> 12)


def ring_order(hosts: dict[str, list[NicSpec]]) -> list[str]:
    """Hosts grouped by the leaf of their first NIC, interleaved round-robin across groups."""
    groups: dict[str, list[str]] = {}
    for name in sorted(hosts):
        nics = hosts[name]
        groups.setdefault(nics[0].leaf if nics else "", []).append(name)
    order: list[str] = []
    queues = [groups[k] for k in sorted(groups)]
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    return order


def job_pairs(job: Job, hosts: dict[str, list[NicSpec]]) -> list[tuple[NicSpec, NicSpec, float]]:
    """(source NIC, destination NIC, bps) for every NIC pair a job's collective uses."""
    names = [h for h in ring_order(hosts) if job.hosts is None or h in set(job.hosts)]
    if len(names) < 2:
        return []
    rails = [{n.rail: n for n in hosts[h]} for h in names]
    rail_ids = sorted({r for per_host in rails for r in per_host})
    pairs: list[tuple[NicSpec, NicSpec, float]] = []
    count = len(names)
    for i in range(count):
        if job.pattern == "all-to-all":
            targets = [(j, 1.0 / (count - 1)) for j in range(count) if j != i]
        else:
            targets = [((i + 1) % count, 0.5), ((i - 1) % count, 0.5)]
        for j, share in targets:
            for rail, src in rails[i].items():
                if job.cross_rail and len(rail_ids) > 1:
                    dst = rails[j].get(rail_ids[(rail_ids.index(rail) + 1) % len(rail_ids)])
                else:
                    dst = rails[j].get(rail)
                if dst is not None:
                    pairs.append((src, dst, job.load * share * src.speed_gbps * 1e9))
    return pairs


class Router:
    """Shortest-path ECMP over the lab's up links, recomputed on demand."""

    def __init__(self, links: list[LabLink]) -> None:
        self.links = links
        self.host_out: dict[tuple[str, str], Channel] = {}  # (leaf, ifname) -> NIC -> leaf channel
        self.host_in: dict[tuple[str, str], Channel] = {}  # (leaf, ifname) -> leaf -> NIC channel
        for link in links:
            if link.spec.is_host:
                self.host_out[link.spec.a] = link.ba
                self.host_in[link.spec.a] = link.ab
        self.index: dict[str, int] = {}
        self._dist: dict[str, dict[str, int]] = {}
        self._adj: dict[str, list[Channel]] = {}
        self._cost: dict[Channel, int] = {}  # channels longer than one hop (BGP cost-out of the receiver)

    @staticmethod
    def prepends(link: LabLink) -> tuple[int, int]:
        """AS numbers each end prepends towards the other (a end, b end), from their running configuration."""
        a = link.a_sw.qos.bgp_prepend.get(link.a_if.name, 0) if link.a_sw.alive else 0
        b = link.b_sw.qos.bgp_prepend.get(link.b_if.name, 0) if link.b_sw is not None and link.b_sw.alive else 0
        return a, b

    def rebuild(self) -> None:
        adj: dict[str, list[Channel]] = {}
        cost: dict[Channel, int] = {}
        for link in self.links:
            if link.spec.is_host or link.b_sw is None or not link.up:
                continue
            adj.setdefault(link.a_sw.hostname, []).append(link.ab)
            adj.setdefault(link.b_sw.hostname, []).append(link.ba)
            a, b = self.prepends(link)
            if b:  # b advertises longer paths to a: a's traffic towards b avoids the link
                cost[link.ab] = 1 + b
            if a:
                cost[link.ba] = 1 + a
        for name in adj:
            self.index.setdefault(name, len(self.index))
        self._adj = adj
        self._cost = cost
        self._dist = {}

    def _distances(self, dst: str) -> dict[str, int]:
        dist = self._dist.get(dst)
        if dist is None:
            dist = self._weighted(dst) if self._cost else self._hops(dst)
            self._dist[dst] = dist
        return dist

    def _hops(self, dst: str) -> dict[str, int]:
        dist = {dst: 0}
        todo = deque([dst])
        while todo:
            node = todo.popleft()
            step = dist[node] + 1
            for ch in self._adj.get(node, ()):
                peer = ch.rx_sw.hostname
                if peer not in dist:
                    dist[peer] = step
                    todo.append(peer)
        return dist

    def _weighted(self, dst: str) -> dict[str, int]:
        """AS-path length to ``dst`` from every switch (links are symmetric: walk the reverse channels)."""
        dist = {dst: 0}
        todo = [(0, dst)]
        while todo:
            d, node = heapq.heappop(todo)
            if d > dist.get(node, d):
                continue
            for out in self._adj.get(node, ()):
                back = out.link.ba if out is out.link.ab else out.link.ab  # peer -> node
                peer = out.rx_sw.hostname
                step = d + self._cost.get(back, 1)
                if step < dist.get(peer, step + 1):
                    dist[peer] = step
                    heapq.heappush(todo, (step, peer))
        return dist

    def hop_cost(self, ch: Channel) -> int:
        return self._cost.get(ch, 1)

    def route(self, flow: Flow, qp: int) -> list[Channel]:
        """The channels a flow crosses, or [] when either NIC's link is down or no path exists."""
        first = self.host_out.get((flow.src.leaf, flow.src.interface))
        last = self.host_in.get((flow.dst.leaf, flow.dst.interface))
        if first is None or last is None or not first.link.up or not last.link.up:
            return []
        path = [first]
        node, dst = flow.src.leaf, flow.dst.leaf
        if node != dst:
            dist = self._distances(dst)
            if node not in dist:
                return []
            while node != dst:
                here = dist[node]
                cost = self._cost
                hops = [ch for ch in self._adj[node] if dist.get(ch.rx_sw.hostname, here) == here - cost.get(ch, 1)]
                ch = hops[_mix(flow.id, qp, self.index[node]) % len(hops)]
                path.append(ch)
                node = ch.rx_sw.hostname
        path.append(last)
        return path
