"""FabricGraph: the query API over the topology that guardrails, the CLI and the UI call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cached_property

import networkx as nx

from ...errors import TopologyError
from ..models import Fabric
from . import cache
from .blast import blast_radius
from .loader import LEAF_TIER, Topology, load_topology
from .paths import bisection_bandwidth, ecmp_paths
from .results import BlastRadius, PathSummary

logger = logging.getLogger(__name__)

__all__ = ["FabricGraph"]


class FabricGraph:
    """Read-only view of one or more fabrics with the questions operators and guardrails ask.

    Obtain it with :meth:`load`, which returns a cached instance while the database
    has not changed; every query is a pure method that never mutates the graph, so a
    single instance can be shared by threads.
    """

    def __init__(self, topology: Topology):
        self.topology = topology

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, fabric_names: list[str] | None = None, *, refresh: bool = False, max_age: float = 0.0) -> FabricGraph:
        """Return the graph of ``fabric_names`` (all fabrics when None), from the process cache when still fresh.

        Freshness costs a few aggregate queries (tens of ms on a 100k-GPU database);
        ``max_age`` seconds skips even those when the cached graph was confirmed that
        recently (for bursts of guardrail checks). Unknown fabric names raise
        TopologyError. ``refresh=True`` forces a rebuild.
        """
        key = tuple(sorted(set(fabric_names))) if fabric_names is not None else None
        if max_age > 0 and not refresh:
            hit = cache.recent(key, max_age)
            if hit is not None:
                return hit  # type: ignore[return-value]
        if key is not None:
            known = set(Fabric.objects.filter(name__in=key).values_list("name", flat=True))
            missing = [name for name in key if name not in known]
            if missing:
                raise TopologyError(f"unknown fabric(s): {', '.join(missing)}")
        stamp = cache.fingerprint()
        if not refresh:
            hit = cache.get(key, stamp)
            if hit is not None:
                return hit  # type: ignore[return-value]
        logger.debug("building the graph of %s", ", ".join(key) if key is not None else "all fabrics")
        graph = cls(load_topology(list(key) if key is not None else None))
        cache.put(key, stamp, graph)
        return graph

    @staticmethod
    def invalidate() -> None:
        """Forget every cached graph (call after changing topology rows with bulk updates)."""
        cache.invalidate()

    # -- lookups ------------------------------------------------------------------------------------------------
    def _device(self, hostname: str) -> int:
        index = self.topology.dev_index.get(hostname)
        if index is None:
            raise TopologyError(f"device {hostname} is not in the loaded topology")
        return index

    @property
    def load_seconds(self) -> float:
        return self.topology.load_seconds

    def devices(self, role: str | None = None) -> list[str]:
        """Hostnames, optionally of one role, in database order."""
        t = self.topology
        return [t.dev_name[i] for i in range(t.n_dev) if role is None or t.dev_role[i] == role]

    def leaves(self) -> list[str]:
        """Hostnames of leaves and border leaves (the first tier of the Clos)."""
        t = self.topology
        return [t.dev_name[i] for i in range(t.n_dev) if t.dev_tier[i] == LEAF_TIER]

    def counts(self) -> dict[str, int]:
        """Row counts of what was loaded."""
        t = self.topology
        return {
            "devices": t.n_dev,
            "links": len(t.link_id),
            "links_carrying": sum(t.link_live),
            "gpu_hosts": len(t.host_name),
            "gpu_nics": len(t.nic_host),
            "optical_spans": sum(1 for links in t.span_links if links),  # spans under loaded DCI links
        }

    def same_component(self, a: str, b: str) -> bool:
        """Whether two switches are joined by links carrying traffic now within one site (no DCI, no hosts)."""
        t = self.topology
        return t.comp[self._device(a)] == t.comp[self._device(b)]

    def role_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for role in self.topology.dev_role:
            counts[role] = counts.get(role, 0) + 1
        return dict(sorted(counts.items()))

    # -- queries ------------------------------------------------------------------------------------------------
    def ecmp_paths(self, leaf_a: str, leaf_b: str) -> PathSummary:
        """Equal-cost shortest paths between two switches over links that carry traffic now.

        Hosts are never transit. Parallel links count as separate paths; ``bottleneck_gbps``
        is the max flow through the shortest-path DAG (what ideal ECMP could carry).
        """
        return ecmp_paths(self.topology, self._device(leaf_a), self._device(leaf_b))

    def uplink_capacity(self, leaf: str, *, effective: bool = False) -> float:
        """Gbps of the switch's uplinks (to the next Clos tier) that carry traffic now.

        ``effective=True`` weighs each uplink by its parent's own remaining up-fraction
        (a spine that lost half its superspine uplinks passes on half).
        """
        t = self.topology
        i = self._device(leaf)
        if effective:
            return t.eff_cap[i]
        if not t.dev_active[i]:
            return 0.0
        return float(sum(t.link_cap[li] for li in t.uplinks[i] if t.link_live[li]))

    def design_uplink_capacity(self, leaf: str) -> float:
        """Gbps of every built uplink of the switch, whatever its state (the 100% of the guardrail)."""
        return self.topology.design_up[self._device(leaf)]

    def uplink_capacities(self, *, effective: bool = False) -> dict[str, float]:
        """Uplink Gbps of every leaf (see :meth:`uplink_capacity`)."""
        return {name: self.uplink_capacity(name, effective=effective) for name in self.leaves()}

    def bisection_bandwidth(self) -> float:
        """Bisection bandwidth in Gbps over links that carry traffic now (see paths.bisection_bandwidth)."""
        return bisection_bandwidth(self.topology)

    def blast_radius(
        self, links: Iterable[int] = (), devices: Iterable[str] = (), spans: Iterable[str] = ()
    ) -> BlastRadius:
        """What removing these links (ids), devices (hostnames) and optical spans (names) would cost.

        Links and switches that already carry nothing (down, drained, planned) cost nothing
        more. Removing a span removes every DCI link whose channel rides it; removing a
        device removes all its links and its hosts' NICs on it. Unknown ids or names raise
        TopologyError naming each of them; an empty request returns an empty BlastRadius.
        """
        return blast_radius(self.topology, links=links, devices=devices, spans=spans)

    # -- networkx view ------------------------------------------------------------------------------------------
    @cached_property
    def nx(self) -> nx.MultiGraph:
        """A networkx MultiGraph of everything loaded, built on first use.

        Nodes are device hostnames (attrs: kind="device", role, tier, fabric, site, pod,
        plane, active) and GPU host names (kind="host"); edges are links keyed by link
        id (kind fabric/dci, capacity_gbps, state, carrying, channel, spans) and NIC attachments
        keyed ``("nic", host, rail)`` (kind="nic", capacity_gbps, rail).
        """
        t = self.topology
        graph = nx.MultiGraph(fabrics=t.fabric_names)
        for i in range(t.n_dev):
            graph.add_node(
                t.dev_name[i],
                kind="device",
                role=t.dev_role[i],
                tier=t.dev_tier[i],
                fabric=t.dev_fabric[i],
                site=t.dev_site[i],
                pod=t.dev_pod[i],
                plane=t.dev_plane[i],
                active=t.dev_active[i],
            )
        for h, name in enumerate(t.host_name):
            graph.add_node(name, kind="host", fabric=t.host_fabric[h])
        names = t.dev_name
        graph.add_edges_from(
            (
                names[t.link_a[li]],
                names[t.link_b[li]],
                t.link_id[li],
                {
                    "kind": t.link_kind[li],
                    "capacity_gbps": t.link_cap[li],
                    "state": t.link_state[li],
                    "carrying": t.link_live[li],
                    "channel": t.link_channel.get(li),
                    "spans": tuple(t.span_name[s] for s in t.link_spans[li]),
                },
            )
            for li in range(len(t.link_id))
        )
        graph.add_edges_from(
            (
                t.host_name[t.nic_host[n]],
                names[t.nic_leaf[n]],
                ("nic", t.host_name[t.nic_host[n]], t.nic_rail[n]),
                {"kind": "nic", "capacity_gbps": t.nic_speed[n], "rail": t.nic_rail[n]},
            )
            for n in range(len(t.nic_host))
        )
        return graph
