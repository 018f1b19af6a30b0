"""Read the source of truth into compact index arrays.

Only ``values_list`` queries: a 100k-GPU fabric has ~300k links and ~100k NICs,
and building a model instance per row would cost more than the whole graph. Every
device, link, host, NIC and span gets a dense integer index; the queries work on
plain Python lists indexed by those integers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..choices import DeviceRole, Lifecycle, LinkKind, LinkState, PodKind
from ..models import Device, GpuHost, GpuNic, Link, OpticalChannel, OpticalSpan

logger = logging.getLogger(__name__)

# Position in the Clos hierarchy; 0 = outside it (DCI routers, optical gear).
ROLE_TIER: dict[str, int] = {
    DeviceRole.LEAF: 1,
    DeviceRole.BORDER_LEAF: 1,
    DeviceRole.SPINE: 2,
    DeviceRole.SUPERSPINE: 3,
}
LEAF_TIER = 1


@dataclass
class Topology:
    """Dense arrays of one load. Read-only after ``finish()``; queries never mutate it."""

    fabric_names: tuple[str, ...]
    # devices
    dev_id: list[int] = field(default_factory=list)
    dev_name: list[str] = field(default_factory=list)
    dev_role: list[str] = field(default_factory=list)
    dev_tier: list[int] = field(default_factory=list)
    dev_fabric: list[str] = field(default_factory=list)
    dev_site: list[str] = field(default_factory=list)
    dev_pod: list[str | None] = field(default_factory=list)
    dev_plane: list[str | None] = field(default_factory=list)
    dev_active: list[bool] = field(default_factory=list)
    dev_index: dict[str, int] = field(default_factory=dict)
    # links
    link_id: list[int] = field(default_factory=list)
    link_a: list[int] = field(default_factory=list)
    link_b: list[int] = field(default_factory=list)
    link_cap: list[float] = field(default_factory=list)
    link_state: list[str] = field(default_factory=list)
    link_kind: list[str] = field(default_factory=list)
    link_spans: list[tuple[int, ...]] = field(default_factory=list)
    link_live: list[bool] = field(default_factory=list)
    link_index: dict[int, int] = field(default_factory=dict)
    link_channel: dict[int, str] = field(default_factory=dict)  # link index -> optical channel name
    # GPU hosts and their NICs
    host_name: list[str] = field(default_factory=list)
    host_fabric: list[str] = field(default_factory=list)
    host_speed: list[float] = field(default_factory=list)
    host_index: dict[str, int] = field(default_factory=dict)
    nic_host: list[int] = field(default_factory=list)
    nic_leaf: list[int] = field(default_factory=list)
    nic_speed: list[float] = field(default_factory=list)
    nic_rail: list[int] = field(default_factory=list)
    # optical spans
    span_name: list[str] = field(default_factory=list)
    span_sites: list[tuple[str, str]] = field(default_factory=list)
    span_up: list[bool] = field(default_factory=list)
    span_links: list[list[int]] = field(default_factory=list)
    span_index: dict[str, int] = field(default_factory=dict)
    span_fabrics: list[set[str]] = field(default_factory=list)  # fabrics at the ends of the DCI links it carries
    # derived (finish())
    adj: list[list[tuple[int, int]]] = field(default_factory=list)
    uplinks: list[list[int]] = field(default_factory=list)
    downlinks: list[list[int]] = field(default_factory=list)
    link_child: list[int] = field(default_factory=list)  # lower end of a hierarchy uplink, else -1
    link_parent: list[int] = field(default_factory=list)  # upper end of a hierarchy uplink, else -1
    design_up: list[float] = field(default_factory=list)
    eff: list[float] = field(default_factory=list)
    eff_cap: list[float] = field(default_factory=list)
    host_live_nics: list[int] = field(default_factory=list)  # NICs on active leaves, per host
    leaf_hosts: list[list[tuple[int, float]]] = field(default_factory=list)  # (host, NIC Gbps) per leaf
    comp: list[int] = field(default_factory=list)
    inter_site_links: list[int] = field(default_factory=list)
    load_seconds: float = 0.0

    @property
    def n_dev(self) -> int:
        return len(self.dev_name)

    def other(self, link: int, node: int) -> int:
        """The far end of ``link`` seen from ``node``."""
        a = self.link_a[link]
        return self.link_b[link] if a == node else a

    def finish(self) -> None:
        """Derive adjacency, the up/down split of the hierarchy, effective capacities and components."""
        n = self.n_dev
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        uplinks: list[list[int]] = [[] for _ in range(n)]
        downlinks: list[list[int]] = [[] for _ in range(n)]
        design = [0.0] * n
        child = [-1] * len(self.link_id)
        parent = [-1] * len(self.link_id)
        tier, fabric_kind, planned = self.dev_tier, LinkKind.FABRIC.value, LinkState.PLANNED.value
        rows = zip(self.link_a, self.link_b, self.link_kind, self.link_state, self.link_cap, strict=True)
        for li, (a, b, kind, state, cap) in enumerate(rows):
            adj[a].append((b, li))
            adj[b].append((a, li))
            ta, tb = tier[a], tier[b]
            if ta and tb and ta != tb and kind == fabric_kind:
                low, high = (a, b) if ta < tb else (b, a)
                child[li], parent[li] = low, high
                uplinks[low].append(li)
                downlinks[high].append(li)
                if state != planned:
                    design[low] += cap
        self.adj, self.uplinks, self.downlinks, self.design_up = adj, uplinks, downlinks, design
        self.link_child, self.link_parent = child, parent
        self.eff = [0.0] * n
        self.eff_cap = [0.0] * n
        for node in sorted(range(n), key=lambda i: -tier[i]):
            if tier[node]:
                self.eff[node], self.eff_cap[node] = self._effective(node)
        self.leaf_hosts = [[] for _ in range(n)]
        self.host_live_nics = [0] * len(self.host_name)
        for host, leaf, speed in zip(self.nic_host, self.nic_leaf, self.nic_speed, strict=True):
            self.leaf_hosts[leaf].append((host, speed))
            if self.dev_active[leaf]:
                self.host_live_nics[host] += 1
        self.comp = self._components()
        site = self.dev_site
        self.inter_site_links = [
            li for li in range(len(self.link_id)) if site[self.link_a[li]] != site[self.link_b[li]]
        ]

    def _effective(self, node: int) -> tuple[float, float]:
        """(effective up-fraction, effective uplink Gbps) of ``node`` from its parents' fractions.

        A node without built uplinks is the top of its hierarchy and keeps 1.0 while active.
        """
        if not self.dev_active[node]:
            return 0.0, 0.0
        design = self.design_up[node]
        if design <= 0:
            return 1.0, 0.0
        total = sum(
            self.link_cap[li] * self.eff[self.link_parent[li]] for li in self.uplinks[node] if self.link_live[li]
        )
        return total / design, total

    def _components(self) -> list[int]:
        """Components of each site's switch graph over links that carry traffic now.

        Hosts are not transit, and DCI links are left out: losing DCI splits sites (reported
        per site), not the fabric inside a site.
        """
        comp = [-1] * self.n_dev
        site = self.dev_site
        label = 0
        for start in range(self.n_dev):
            if comp[start] != -1:
                continue
            comp[start] = label
            stack = [start]
            while stack:
                node = stack.pop()
                for nbr, li in self.adj[node]:
                    if comp[nbr] == -1 and self.link_live[li] and site[nbr] == site[node]:
                        comp[nbr] = label
                        stack.append(nbr)
            label += 1
        return comp


def load_topology(fabric_names: list[str] | None = None) -> Topology:
    """Build a :class:`Topology` from the database; ``None`` loads every fabric."""
    started = time.perf_counter()
    names = tuple(sorted(set(fabric_names))) if fabric_names is not None else ()
    topo = Topology(fabric_names=names)

    devices = Device.objects.all()
    if fabric_names is not None:
        devices = devices.filter(fabric__name__in=names)
    rows = devices.order_by("id").values_list(
        "id", "hostname", "role", "fabric__name", "site__name", "pod__name", "pod__kind", "lifecycle"
    )
    id_to_idx: dict[int, int] = {}
    for dev_id, hostname, role, fabric, site, pod, pod_kind, lifecycle in rows:
        id_to_idx[dev_id] = len(topo.dev_id)
        topo.dev_id.append(dev_id)
        topo.dev_name.append(hostname)
        topo.dev_role.append(role)
        topo.dev_tier.append(ROLE_TIER.get(role, 0))
        topo.dev_fabric.append(fabric)
        topo.dev_site.append(site)
        topo.dev_pod.append(pod if pod_kind == PodKind.POD else None)
        topo.dev_plane.append(pod if pod_kind == PodKind.PLANE else None)
        # Drained or in-maintenance switches carry no traffic; planned ones are not built yet.
        topo.dev_active.append(lifecycle == Lifecycle.ACTIVE)
    topo.dev_index = {name: i for i, name in enumerate(topo.dev_name)}

    spans = OpticalSpan.objects.order_by("id").values_list("id", "name", "a_site__name", "b_site__name", "state")
    span_id_to_idx: dict[int, int] = {}
    for span_id, name, a_site, b_site, state in spans:
        span_id_to_idx[span_id] = len(topo.span_name)
        topo.span_name.append(name)
        topo.span_sites.append((a_site, b_site))
        topo.span_up.append(state == LinkState.UP)
        topo.span_links.append([])
        topo.span_fabrics.append(set())
    topo.span_index = {name: i for i, name in enumerate(topo.span_name)}

    # Channel -> spans, keyed by the DCI link the channel carries.
    link_spans: dict[int, list[int]] = {}
    channel_link: dict[int, int] = {}
    channel_name: dict[int, str] = {}  # by link id
    channel_fabrics: dict[int, tuple[str, str]] = {}
    channels = OpticalChannel.objects.values_list(
        "id", "link_id", "name", "link__a_interface__device__fabric__name", "link__b_interface__device__fabric__name"
    )
    for channel_id, link_id, name, fabric_a, fabric_b in channels:
        channel_link[channel_id] = link_id
        channel_name[link_id] = name
        channel_fabrics[channel_id] = (fabric_a, fabric_b)
    for channel_id, span_id in OpticalChannel.spans.through.objects.values_list("opticalchannel_id", "opticalspan_id"):
        link_spans.setdefault(channel_link[channel_id], []).append(span_id_to_idx[span_id])
        topo.span_fabrics[span_id_to_idx[span_id]].update(channel_fabrics[channel_id])

    columns = ("id", "a_interface__device_id", "b_interface__device_id", "capacity_gbps", "state", "kind")
    if fabric_names is None or 2 * len(id_to_idx) >= Device.objects.count():
        # Most of the database: one sequential read beats index lookups; foreign rows are dropped below.
        # A plain (client-side) fetch: a server-side cursor WITH HOLD costs PostgreSQL a second copy.
        link_rows = list(Link.objects.order_by("id").values_list(*columns))
    else:
        # Two indexed lookups instead of one OR across two joins (which PostgreSQL answers with full scans);
        # literal ids let the planner see how few devices a small fabric has.
        loaded = (
            list(id_to_idx) if len(id_to_idx) <= 20000 else Device.objects.filter(fabric__name__in=names).values("id")
        )
        by_id = {}
        for side in ("a_interface__device_id__in", "b_interface__device_id__in"):
            for row in Link.objects.filter(**{side: loaded}).values_list(*columns):
                by_id[row[0]] = row
        link_rows = [by_id[k] for k in sorted(by_id)]
    get = id_to_idx.get
    # Columnar: keep rows whose both ends were loaded (the far end may be in a fabric not asked for), then transpose.
    kept = [
        (link_id, a, b, float(capacity), state, kind)
        for link_id, a_dev, b_dev, capacity, state, kind in link_rows
        if (a := get(a_dev)) is not None and (b := get(b_dev)) is not None
    ]
    del link_rows
    if kept:
        ids, ends_a, ends_b, caps, states, kinds = zip(*kept, strict=True)
        topo.link_id, topo.link_a, topo.link_b = list(ids), list(ends_a), list(ends_b)
        topo.link_cap, topo.link_state, topo.link_kind = list(caps), list(states), list(kinds)
    del kept
    active = topo.dev_active
    up = LinkState.UP.value
    topo.link_live = [
        state == up and active[a] and active[b]
        for state, a, b in zip(topo.link_state, topo.link_a, topo.link_b, strict=True)
    ]
    no_spans: tuple[int, ...] = ()
    topo.link_spans = [no_spans] * len(topo.link_id)
    position = {link_id: li for li, link_id in enumerate(topo.link_id)}
    for link_id, riding in link_spans.items():
        li = position.get(link_id)
        if li is None:
            continue
        topo.link_spans[li] = tuple(riding)
        for span in riding:
            topo.span_links[span].append(li)
        topo.link_live[li] = topo.link_live[li] and all(topo.span_up[span] for span in riding)
    topo.link_index = position
    topo.link_channel = {topo.link_index[k]: v for k, v in channel_name.items() if k in topo.link_index}

    hosts = GpuHost.objects.all()
    nics = GpuNic.objects.all()
    if fabric_names is not None:
        hosts = hosts.filter(fabric__name__in=names)
        nics = nics.filter(host__fabric__name__in=names)
    host_id_to_idx: dict[int, int] = {}
    for host_id, name, fabric in hosts.order_by("id").values_list("id", "name", "fabric__name"):
        host_id_to_idx[host_id] = len(topo.host_name)
        topo.host_name.append(name)
        topo.host_fabric.append(fabric)
    topo.host_index = {name: i for i, name in enumerate(topo.host_name)}
    topo.host_speed = [0.0] * len(topo.host_name)
    nic_rows = nics.order_by("id").values_list("host_id", "leaf_interface__device_id", "speed_gbps", "rail")
    host_get = host_id_to_idx.get
    kept_nics = [
        (h, leaf, float(speed), rail)
        for host_id, leaf_dev, speed, rail in nic_rows
        if (h := host_get(host_id)) is not None and (leaf := get(leaf_dev)) is not None
    ]
    if kept_nics:
        nic_host, nic_leaf, nic_speed, nic_rail = zip(*kept_nics, strict=True)
        topo.nic_host, topo.nic_leaf, topo.nic_speed, topo.nic_rail = (
            list(nic_host),
            list(nic_leaf),
            list(nic_speed),
            list(nic_rail),
        )
    for h, speed in zip(topo.nic_host, topo.nic_speed, strict=True):
        topo.host_speed[h] += speed

    topo.finish()
    topo.load_seconds = time.perf_counter() - started
    logger.info(
        "graph loaded: %d devices, %d links, %d hosts, %d NICs, %d spans in %.2f s",
        topo.n_dev,
        len(topo.link_id),
        len(topo.host_name),
        len(topo.nic_host),
        len(topo.span_name),
        topo.load_seconds,
    )
    return topo
