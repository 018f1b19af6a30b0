"""The node/edge data of one fabric for the topology renderer, fast enough to poll at 4,000+ switches.

Structure (who is cabled to whom) changes rarely and costs two scans of the link table at that size; state
(lifecycles, link and span states) changes all the time but only a few rows are ever not "up"/"active".
So the structure is cached per fabric in the process, keyed by a cheap fingerprint of row counts and max ids,
and each call overlays the current state read with small queries: every device's lifecycle in the fabric, the
links that are not up, and the DCI links riding a span that is not up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max

from fabric_ops.topology.choices import Lifecycle, LinkState, PodKind
from fabric_ops.topology.graph import cache as graph_cache
from fabric_ops.topology.models import Device, Fabric, Link, OpticalChannel, Pod

logger = logging.getLogger(__name__)

NODE_FIELDS = ["name", "role", "fabric", "site", "pod", "plane", "lifecycle", "external"]
EDGE_FIELDS = ["id", "a", "b", "kind", "capacity_gbps", "state", "live"]
# Literal id lists beyond this size go to the database as a subquery instead.
MAX_LITERAL_IDS = 20000
CACHE_SIZE = 8  # fabrics whose structure one process keeps (a 4,192-switch fabric's is ~20 MB)


@dataclass(frozen=True)
class Structure:
    """Cabling of one fabric. ``edges`` are ready-made rows for the common case (state up, live); calls copy the
    list and replace only the rows that differ, found through ``edge_at`` (link id) and ``node_edges``.
    Rows are shared between answers and never mutated."""

    nodes: list[tuple]  # (name, role, fabric, site, pod, plane, external)
    node_ids: list[int]
    edges: list[list]  # [link id, a index, b index, kind, capacity, "up", True]
    edge_at: dict[int, int]  # link id -> position in edges
    node_edges: list[list[int]]  # node index -> positions of its edges
    external: int


_cache: OrderedDict[int, tuple[tuple, Structure]] = OrderedDict()
_lock = threading.Lock()


def fingerprint() -> tuple:
    """Counts and max ids of the tables that shape the graph (any add, delete or re-cabling changes them), plus
    the graph cache's in-process version, which every save/delete of a topology row in this process bumps (so a
    deleted-and-reused id on SQLite is seen too)."""
    parts: list[Any] = [graph_cache._version]
    for model in (Device, Pod, OpticalChannel):
        agg = model.objects.aggregate(n=Count("id"), top=Max("id"))
        parts += [agg["n"], agg["top"]]
    agg = Link.objects.aggregate(n=Count("id"), top=Max("id"), a=Max("a_interface_id"), b=Max("b_interface_id"))
    parts += list(agg.values())
    return tuple(parts)


def invalidate() -> None:
    with _lock:
        _cache.clear()


def load_structure(fabric: Fabric) -> Structure:
    columns = ("id", "hostname", "role", "fabric__name", "site__name", "pod__name", "pod__kind")
    own = list(Device.objects.filter(fabric=fabric).order_by("id").values_list(*columns))
    own_ids = [row[0] for row in own]
    link_columns = ("id", "a_interface__device_id", "b_interface__device_id", "kind", "capacity_gbps")
    index = {row[0]: i for i, row in enumerate(own)}
    if 2 * len(own_ids) >= Device.objects.count():
        # Most of the database: one sequential read beats two index lookups per link (as the graph loader does).
        rows = Link.objects.order_by("id").values_list(*link_columns)
        links = [r for r in rows if r[1] in index or r[2] in index]
    else:
        ids: Any = own_ids if len(own_ids) <= MAX_LITERAL_IDS else Device.objects.filter(fabric=fabric).values("id")
        by_id: dict[int, tuple] = {}
        for side in ("a_interface__device_id__in", "b_interface__device_id__in"):
            for row in Link.objects.filter(**{side: ids}).values_list(*link_columns):
                by_id[row[0]] = row
        links = [by_id[k] for k in sorted(by_id)]
    far_ids = sorted({end for row in links for end in row[1:3] if end not in index})
    far = list(Device.objects.filter(id__in=far_ids).order_by("id").values_list(*columns)) if far_ids else []
    nodes, node_ids = [], []
    for external, rows in ((False, own), (True, far)):
        for dev_id, hostname, role, fab, site, pod, pod_kind in rows:
            index.setdefault(dev_id, len(nodes))
            plane = pod_kind == PodKind.PLANE
            nodes.append((hostname, role, fab, site, None if plane else pod, pod if plane else None, external))
            node_ids.append(dev_id)
    up = LinkState.UP.value
    edges = [[link_id, index[a], index[b], kind, capacity, up, True] for link_id, a, b, kind, capacity in links]
    node_edges: list[list[int]] = [[] for _ in nodes]
    for position, edge in enumerate(edges):
        node_edges[edge[1]].append(position)
        node_edges[edge[2]].append(position)
    edge_at = {edge[0]: position for position, edge in enumerate(edges)}
    return Structure(nodes, node_ids, edges, edge_at, node_edges, len(far))


def structure(fabric: Fabric) -> Structure:
    stamp = fingerprint()
    with _lock:
        hit = _cache.get(fabric.pk)
        if hit is not None and hit[0] == stamp:
            _cache.move_to_end(fabric.pk)
            return hit[1]
    started = time.perf_counter()
    built = load_structure(fabric)
    logger.debug("graph structure of %s: %d nodes, %d edges in %.2f s", fabric.name, len(built.nodes),
                 len(built.edges), time.perf_counter() - started)  # fmt: skip
    with _lock:
        _cache[fabric.pk] = (stamp, built)
        _cache.move_to_end(fabric.pk)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return built


def fabric_graph(fabric: Fabric) -> dict[str, Any]:
    """Nodes and edges of one fabric plus the far ends of its links into other fabrics (DCI), column-wise.

    ``nodes`` rows follow ``node_fields``; ``edges`` rows follow ``edge_fields`` with ``a``/``b`` as indexes into
    ``nodes``. ``live`` is what the graph analysis calls carrying traffic: link up, both switches active and every
    optical span under it up.
    """
    shape = structure(fabric)
    lifecycles = _lifecycles(shape, fabric)
    not_up = dict(Link.objects.exclude(state=LinkState.UP).values_list("id", "state"))
    dark = set(
        OpticalChannel.objects.filter(spans__state__in=[s for s in LinkState.values if s != LinkState.UP]).values_list(
            "link_id", flat=True
        )
    )
    lifecycle = [lifecycles.get(dev_id, Lifecycle.ACTIVE) for dev_id in shape.node_ids]
    active = [value == Lifecycle.ACTIVE for value in lifecycle]
    nodes = [[*row[:6], lifecycle[i], row[6]] for i, row in enumerate(shape.nodes)]
    # Only edges touching something not up/active can differ from the prepared rows.
    suspects = {shape.edge_at[i] for i in (*not_up, *dark) if i in shape.edge_at}
    for i, is_active in enumerate(active):
        if not is_active:
            suspects.update(shape.node_edges[i])
    edges = list(shape.edges)
    up = LinkState.UP.value
    for position in suspects:
        link_id, a, b, kind, capacity = edges[position][:5]
        state = not_up.get(link_id, up)
        live = state == up and active[a] and active[b] and link_id not in dark
        edges[position] = [link_id, a, b, kind, capacity, state, live]
    return {
        "fabric": fabric.name,
        "kind": fabric.kind,
        "node_fields": NODE_FIELDS,
        "nodes": nodes,
        "edge_fields": EDGE_FIELDS,
        "edges": edges,
        "counts": {"nodes": len(nodes), "external_nodes": shape.external, "edges": len(edges)},
    }


def _lifecycles(shape: Structure, fabric: Fabric) -> dict[int, str]:
    """Lifecycle by device id for every node: the fabric's devices (by the fabric index) plus the far ends."""
    devices = Device.objects.all()
    found = dict(devices.filter(fabric=fabric).values_list("id", "lifecycle"))
    far = shape.node_ids[len(shape.node_ids) - shape.external :]
    if far:
        found.update(devices.filter(id__in=far).values_list("id", "lifecycle"))
    return found
