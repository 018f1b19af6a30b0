"""Blast radius: what a set of removed links, devices and optical spans costs.

Works on the precomputed :class:`~.loader.Topology` without copying it: capacity
changes propagate down the hierarchy only from what is removed, and partitions
are found by growing searches from the cut points that stop as soon as all but
one of them have met, so one link on a 100k-GPU fabric touches a few thousand
entries at most.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ...errors import TopologyError
from ..choices import LinkKind
from .loader import LEAF_TIER, Topology
from .results import BlastRadius, HostImpact, LeafImpact

__all__ = ["blast_radius"]

_EPS = 1e-9


def _resolve(
    topo: Topology, links: Iterable[int], devices: Iterable[str], spans: Iterable[str]
) -> tuple[list[int], list[int], list[int]]:
    """Map ids/names to indices, naming every unknown one in a single error."""
    link_idx, dev_idx, span_idx, unknown = [], [], [], []
    for link in links:
        try:
            i = topo.link_index.get(int(link))
        except (TypeError, ValueError):
            i = None
        (unknown.append(f"link {link}") if i is None else link_idx.append(i))
    for name in devices:
        i = topo.dev_index.get(name)
        (unknown.append(f"device {name}") if i is None else dev_idx.append(i))
    partial = []
    for name in spans:
        i = topo.span_index.get(name)
        (unknown.append(f"optical span {name}") if i is None else span_idx.append(i))
        # Answering for a span whose DCI links were not loaded would silently report "no impact".
        if i is not None and topo.fabric_names and (missing := topo.span_fabrics[i] - set(topo.fabric_names)):
            partial.append(f"optical span {name} carries links of fabric(s) {', '.join(sorted(missing))}")
    if partial:
        raise TopologyError(f"{'; '.join(partial)}: load them too")
    if unknown:
        scope = ", ".join(topo.fabric_names) if topo.fabric_names else "all fabrics"
        raise TopologyError(f"not in the loaded topology ({scope}): {', '.join(unknown)}")
    return link_idx, dev_idx, span_idx


def _propagate(topo: Topology, dead_links: set[int], dead_nodes: set[int]) -> tuple[dict[int, float], dict[int, float]]:
    """New effective up-fractions and uplink Gbps of every hierarchy node whose capacity changes.

    Works on deltas, top tier first: a dead uplink takes ``capacity x parent fraction``
    off its child; a parent whose fraction drops by d takes ``capacity x d`` off each
    child over its surviving downlinks. One spine uplink therefore touches that
    spine's downlinks only, never the children's other uplinks.
    """
    tier, child_of, parent_of, cap, eff = topo.dev_tier, topo.link_child, topo.link_parent, topo.link_cap, topo.eff
    loss: dict[int, float] = {}
    pending: dict[int, set[int]] = {}
    for li in dead_links:
        child = child_of[li]
        if child >= 0:
            loss[child] = loss.get(child, 0.0) + cap[li] * eff[parent_of[li]]
            pending.setdefault(tier[child], set()).add(child)
    new_eff: dict[int, float] = {}
    new_cap: dict[int, float] = {}
    for node in dead_nodes:
        if tier[node]:
            new_eff[node], new_cap[node] = 0.0, 0.0
    for level in range(max(pending, default=0), 0, -1):  # children are added to lower levels as we go
        for node in pending.get(level, ()):
            if node in dead_nodes:
                continue
            after = max(0.0, topo.eff_cap[node] - loss[node])
            design = topo.design_up[node]
            frac = after / design if design > 0 else 1.0
            if abs(after - topo.eff_cap[node]) <= _EPS * max(1.0, design):
                continue
            new_eff[node], new_cap[node] = frac, after
            drop = eff[node] - frac
            for li in topo.downlinks[node]:
                if topo.link_live[li] and li not in dead_links:
                    child = child_of[li]
                    loss[child] = loss.get(child, 0.0) + cap[li] * drop
                    pending.setdefault(tier[child], set()).add(child)
    return new_eff, new_cap


def _separated(topo: Topology, terminals: set[int], dead_links: set[int], dead_nodes: set[int]) -> list[list[int]]:
    """Groups of devices cut off from the rest of their (pre-change) component inside their site.

    Every piece a component falls into contains a terminal (a surviving end of a
    removed link), so it is enough to grow one search per terminal, one node per
    search per round, merging searches that meet. A search that runs out of nodes
    is a separated piece; once a single search is left it is grown only until it is
    larger than every piece that split off, which makes it "the rest" without walking
    it. If it runs out first, every part except a strictly largest one is reported
    (equal halves are both cut off). Round-robin growth bounds the cost by the size
    of the pieces that split off, not by the size of the fabric.
    """
    by_comp: dict[int, list[int]] = {}
    for t in terminals:
        by_comp.setdefault(topo.comp[t], []).append(t)
    adj, live, site = topo.adj, topo.link_live, topo.dev_site
    pieces: list[list[int]] = []
    for terms in by_comp.values():
        if len(terms) < 2:
            continue
        parent = list(range(len(terms)))

        def find(g: int, parent: list[int] = parent) -> int:
            while parent[g] != g:
                parent[g] = parent[parent[g]]
                g = parent[g]
            return g

        owner = {t: g for g, t in enumerate(terms)}
        frontier = [deque([t]) for t in terms]
        members = [[t] for t in terms]
        running = set(range(len(terms)))
        exhausted: list[list[int]] = []
        while len(running) > 1:
            for g in list(running):
                if g not in running:
                    continue
                queue = frontier[g]
                if not queue:
                    running.discard(g)
                    exhausted.append(members[g])
                    if len(running) <= 1:
                        break
                    continue
                node = queue.popleft()
                cur = g
                for nbr, li in adj[node]:
                    if not live[li] or li in dead_links or nbr in dead_nodes or site[nbr] != site[node]:
                        continue
                    o = owner.get(nbr)
                    if o is None:
                        owner[nbr] = cur
                        frontier[cur].append(nbr)
                        members[cur].append(nbr)
                        continue
                    h = find(o)
                    if h == cur:
                        continue
                    # Two searches met (an exhausted one cannot be reached): merge the smaller into the larger.
                    big, small = (cur, h) if len(members[cur]) >= len(members[h]) else (h, cur)
                    parent[small] = big
                    frontier[big].extend(frontier[small])
                    members[big].extend(members[small])
                    frontier[small] = deque()
                    members[small] = []
                    running.discard(small)
                    cur = big
                if len(running) <= 1:
                    break
        parts = exhausted
        if running and exhausted:
            # The last search is "the rest" only if it is strictly the largest part: grow it just past the
            # largest piece that split off (cheap); if it runs out first, the component shattered.
            g = running.pop()
            largest = max(len(piece) for piece in exhausted)
            queue = frontier[g]
            while queue and len(members[g]) <= largest:
                node = queue.popleft()
                for nbr, li in adj[node]:
                    if (
                        live[li]
                        and li not in dead_links
                        and nbr not in dead_nodes
                        and nbr not in owner
                        and site[nbr] == site[node]
                    ):
                        owner[nbr] = g
                        queue.append(nbr)
                        members[g].append(nbr)
            if queue:
                pieces.extend(exhausted)  # the survivor is strictly larger than every piece: it is the rest
                continue
            parts = [*exhausted, members[g]]
        if len(parts) > 1:
            sizes = sorted((len(part) for part in parts), reverse=True)
            if sizes[0] > sizes[1]:
                parts = [part for part in parts if len(part) < sizes[0]]
        pieces.extend(parts)
    return pieces


def _site_groups(
    topo: Topology, dead_links: set[int], dead_nodes: set[int], cut_off: set[int]
) -> list[tuple[tuple[str, ...], ...]]:
    """For every set of sites joined by DCI now that would split, the groups it splits into.

    A DCI link only joins two sites if neither end was cut off from its own site's fabric.
    """
    inter = topo.inter_site_links
    if not cut_off and not any(li in dead_links for li in inter):
        return []

    def groups(alive: Iterable[int]) -> dict[str, str]:
        root: dict[str, str] = {}

        def find(s: str) -> str:
            root.setdefault(s, s)
            while root[s] != s:
                root[s] = root[root[s]]
                s = root[s]
            return s

        for li in alive:
            root[find(topo.dev_site[topo.link_a[li]])] = find(topo.dev_site[topo.link_b[li]])
        return {s: find(s) for s in list(root)}

    before = groups(li for li in inter if topo.link_live[li])
    after = groups(
        li
        for li in inter
        if topo.link_live[li]
        and li not in dead_links
        and topo.link_a[li] not in dead_nodes
        and topo.link_b[li] not in dead_nodes
        and topo.link_a[li] not in cut_off
        and topo.link_b[li] not in cut_off
    )
    result = []
    by_before: dict[str, list[str]] = {}
    for site, r in before.items():
        by_before.setdefault(r, []).append(site)
    for sites in by_before.values():
        split: dict[str, list[str]] = {}
        for site in sites:
            split.setdefault(after.get(site, site), []).append(site)
        if len(split) > 1:
            result.append(tuple(sorted(tuple(sorted(g)) for g in split.values())))
    return sorted(result)


def blast_radius(
    topo: Topology, links: Iterable[int] = (), devices: Iterable[str] = (), spans: Iterable[str] = ()
) -> BlastRadius:
    """See :meth:`FabricGraph.blast_radius`."""
    for label, value in (("links", links), ("devices", devices), ("spans", spans)):
        if isinstance(value, str | bytes | int):
            raise TopologyError(f"blast_radius: {label} must be a list, got {value!r}")
    links, devices, spans = tuple(links), tuple(devices), tuple(spans)
    if not (links or devices or spans):
        return BlastRadius()
    link_idx, dev_idx, span_idx = _resolve(topo, links, devices, spans)

    removed = set(link_idx)
    for s in span_idx:
        removed.update(topo.span_links[s])
    for d in dev_idx:
        removed.update(li for _, li in topo.adj[d])
    named = set(dev_idx)
    dead_nodes = {d for d in dev_idx if topo.dev_active[d]}
    dead_links = {li for li in removed if topo.link_live[li]}

    new_eff, new_cap = _propagate(topo, dead_links, dead_nodes)

    terminals: set[int] = set()
    for li in dead_links:
        for end in (topo.link_a[li], topo.link_b[li]):
            if end not in dead_nodes:
                terminals.add(end)
    pieces = _separated(topo, terminals, dead_links, dead_nodes)
    cut_off = {node for piece in pieces for node in piece}

    # Leaves: removed, capacity changed, or cut off.
    affected = {n for n in new_eff if topo.dev_tier[n] == LEAF_TIER}
    affected |= {n for n in named if topo.dev_tier[n] == LEAF_TIER}
    affected |= {n for n in cut_off if topo.dev_tier[n] == LEAF_TIER}
    leaf_rows: list[LeafImpact] = []
    nic_loss: dict[int, tuple[float, bool]] = {}  # leaf -> (fraction of its NICs' bandwidth lost, NICs lost outright)
    min_remaining = 1.0
    uplink_lost = 0.0
    for leaf in sorted(affected, key=topo.dev_name.__getitem__):
        before = topo.eff_cap[leaf]
        design = topo.design_up[leaf]
        is_removed = leaf in named
        is_cut = leaf in cut_off
        after = 0.0 if is_removed else new_cap.get(leaf, before)
        lost = (before - after) / before if before > 0 else 0.0
        remaining = after / design if design > 0 else (0.0 if is_removed or is_cut else 1.0)
        if is_removed or is_cut:
            remaining = 0.0
        leaf_rows.append(
            LeafImpact(
                hostname=topo.dev_name[leaf],
                before_gbps=before,
                after_gbps=after,
                design_gbps=design,
                lost_fraction=lost,
                remaining_fraction=remaining,
                removed=is_removed,
                partitioned=is_cut and not is_removed,
            )
        )
        uplink_lost += before - after
        if not is_removed:
            min_remaining = min(min_remaining, remaining)
        if topo.dev_active[leaf]:
            nic_loss[leaf] = (1.0, True) if (is_removed or is_cut) else (lost, False)

    host_lost: dict[int, float] = {}
    host_nics_lost: dict[int, int] = {}
    host_cap_lost = 0.0
    for leaf, (frac, outright) in nic_loss.items():
        if frac <= _EPS:
            continue
        attached = topo.leaf_hosts[leaf]
        if outright:
            for h, speed in attached:
                host_lost[h] = host_lost.get(h, 0.0) + speed
                host_nics_lost[h] = host_nics_lost.get(h, 0) + 1
                host_cap_lost += speed
        else:
            for h, speed in attached:
                host_lost[h] = host_lost.get(h, 0.0) + speed * frac
    host_rows = []
    isolated = []
    for h in sorted(host_lost, key=topo.host_name.__getitem__):
        total = topo.host_speed[h]
        frac = min(1.0, host_lost[h] / total) if total else 0.0
        # Isolated: every NIC that worked before is now on a removed or cut-off leaf.
        is_isolated = host_nics_lost.get(h, 0) >= topo.host_live_nics[h] > 0
        if is_isolated:
            isolated.append(topo.host_name[h])
        host_rows.append(HostImpact(topo.host_name[h], frac, host_nics_lost.get(h, 0), is_isolated))

    return BlastRadius(
        links=links,
        devices=devices,
        spans=spans,
        removed_link_ids=tuple(sorted(topo.link_id[li] for li in removed)),
        leaves=tuple(leaf_rows),
        hosts=tuple(host_rows),
        capacity_lost_gbps=sum(topo.link_cap[li] for li in dead_links),
        leaf_uplink_lost_gbps=uplink_lost,
        host_capacity_lost_gbps=host_cap_lost,
        dci_capacity_lost_gbps=sum(topo.link_cap[li] for li in dead_links if topo.link_kind[li] == LinkKind.DCI),
        min_remaining_uplink_fraction=min_remaining,
        max_host_lost_fraction=max((r.lost_fraction for r in host_rows), default=0.0),
        partitions=tuple(sorted(tuple(sorted(topo.dev_name[n] for n in piece)) for piece in pieces)),
        isolated_hosts=tuple(isolated),
        site_partitions=tuple(_site_groups(topo, dead_links, dead_nodes, cut_off)),
    )
