"""Path and capacity queries over links that carry traffic now (hosts are never transit)."""

from __future__ import annotations

from collections import deque
from itertools import combinations

import networkx as nx

from .loader import LEAF_TIER, Topology
from .results import PathSummary

__all__ = ["bisection_bandwidth", "ecmp_paths"]


def _bfs(topo: Topology, source: int, stop_at: int | None = None, max_depth: int | None = None) -> dict[int, int]:
    """Hop distances from ``source``; stops after the level holding ``stop_at`` or at ``max_depth``."""
    dist = {source: 0}
    queue = deque([source])
    limit = max_depth
    while queue:
        node = queue.popleft()
        d = dist[node]
        if limit is not None and d >= limit:
            continue
        for nbr, li in topo.adj[node]:
            if nbr not in dist and topo.link_live[li]:
                dist[nbr] = d + 1
                if nbr == stop_at and limit is None:
                    limit = d + 1
                queue.append(nbr)
    return dist


def ecmp_paths(topo: Topology, a: int, b: int) -> PathSummary:
    """Count equal-cost shortest paths a -> b and the max flow through them."""
    if a == b:
        return PathSummary(count=1, hops=0, bottleneck_gbps=0.0, min_link_gbps=0.0)
    if not (topo.dev_active[a] and topo.dev_active[b]):
        return PathSummary(count=0, hops=None, bottleneck_gbps=0.0)
    dist_a = _bfs(topo, a, stop_at=b)
    if b not in dist_a:
        return PathSummary(count=0, hops=None, bottleneck_gbps=0.0)
    hops = dist_a[b]
    dist_b = _bfs(topo, b, max_depth=hops)
    # Edges of the shortest-path DAG, parallel links kept apart for counting and summed for capacity.
    dag = nx.DiGraph()
    counts = {a: 1}
    min_link = float("inf")
    order = sorted((n for n in dist_a if n in dist_b and dist_a[n] + dist_b[n] == hops), key=dist_a.__getitem__)
    for node in order:
        for nbr, li in topo.adj[node]:
            if not topo.link_live[li] or dist_a.get(nbr) != dist_a[node] + 1 or dist_b.get(nbr) != hops - dist_a[nbr]:
                continue
            counts[nbr] = counts.get(nbr, 0) + counts.get(node, 0)
            cap = topo.link_cap[li]
            min_link = min(min_link, cap)
            if dag.has_edge(node, nbr):
                dag[node][nbr]["capacity"] += cap
            else:
                dag.add_edge(node, nbr, capacity=cap)
    flow = nx.maximum_flow_value(dag, a, b) if dag.number_of_edges() else 0.0
    return PathSummary(count=counts.get(b, 0), hops=hops, bottleneck_gbps=float(flow), min_link_gbps=min_link)


def bisection_bandwidth(topo: Topology) -> float:
    """Bisection bandwidth of a folded Clos, in Gbps.

    Splitting the leaves into two equal halves, traffic between the halves must cross
    every tier: the cut is at most half of each tier's live uplink capacity, and in a
    symmetric Clos the smallest of those halves is the exact answer. With several
    sites the DCI links can be the narrower cut, so the smallest live DCI capacity
    across any split of the sites into two groups is taken too (exact for two sites).
    """
    by_tier: dict[int, float] = {}
    for node in range(topo.n_dev):
        t = topo.dev_tier[node]
        if not t or not topo.dev_active[node]:
            continue
        live = sum(topo.link_cap[li] for li in topo.uplinks[node] if topo.link_live[li])
        if topo.uplinks[node]:
            by_tier[t] = by_tier.get(t, 0.0) + live
    if not any(topo.dev_tier[n] == LEAF_TIER for n in range(topo.n_dev)):
        return 0.0
    candidates = [total / 2 for total in by_tier.values()]
    leaf_sites = sorted({topo.dev_site[n] for n in range(topo.n_dev) if topo.dev_tier[n] == LEAF_TIER})
    if len(leaf_sites) > 1:
        candidates.append(_site_min_cut(topo, leaf_sites))
    return min(candidates) if candidates else 0.0


def _site_min_cut(topo: Topology, sites: list[str]) -> float:
    """Smallest live inter-site capacity separating the leaf-bearing sites into two non-empty groups."""
    between: dict[tuple[str, str], float] = {}
    for li in topo.inter_site_links:
        if topo.link_live[li]:
            pair = tuple(sorted((topo.dev_site[topo.link_a[li]], topo.dev_site[topo.link_b[li]])))
            between[pair] = between.get(pair, 0.0) + topo.link_cap[li]
    graph = nx.Graph()
    graph.add_nodes_from(sites)
    for (x, y), cap in between.items():
        graph.add_edge(x, y, weight=cap)
    if len(graph) <= 16:
        best = float("inf")
        others = sorted(set(graph) - {sites[0]})
        for size in range(len(others) + 1):
            for group in combinations(others, size):
                side = {sites[0], *group}
                if not any(s not in side for s in sites):
                    continue
                cut = sum(d["weight"] for x, y, d in graph.edges(data=True) if (x in side) != (y in side))
                best = min(best, cut)
        return best
    cut, _ = nx.stoer_wagner(graph) if nx.is_connected(graph) else (0.0, None)
    return float(cut)
