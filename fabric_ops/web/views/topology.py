"""Topology page: a fabric (and its DCI neighbours) drawn by Cytoscape.js from a server-computed preset layout.

Force layouts do not finish in a browser at 4,000+ switches, and a Clos has an obvious drawing anyway: one
row per tier (optical, DCI, superspine, spine, leaf, hosts), nodes ordered by pod/plane then index, long
tiers wrapped onto several rows. The layout is computed here, so the browser only paints.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict, defaultdict
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from fabric_ops.topology.choices import DeviceRole
from fabric_ops.topology.models import Fabric, GpuHost, GpuNic, Link
from fabric_ops.web.api.topology import fabric_graph

from . import telemetry
from .base import TOPOLOGY_READ, page, render_page

logger = logging.getLogger(__name__)

# Row of each role, top to bottom; other fabrics' switches (DCI far ends) go on the top rows.
TIER_OF_ROLE = {
    DeviceRole.AMPLIFIER: 0,
    DeviceRole.OPTICAL_TERMINAL: 0,
    DeviceRole.DCI: 1,
    DeviceRole.SUPERSPINE: 2,
    DeviceRole.SPINE: 3,
    DeviceRole.BORDER_LEAF: 4,
    DeviceRole.LEAF: 4,
}
HOST_TIER = 5
EXTERNAL_TIER = -1
X_STEP = 40.0  # px between neighbours in a row
ROW_STEP = 60.0  # px between wrapped rows of one tier
TIER_GAP = 260.0  # px between tiers
MAX_ROW = 200  # nodes per row before a tier wraps
# Above this many links a browser canvas stops being interactive (Cytoscape.js: ~40 s to first paint for 100k
# edges in headless Chromium), so by default only the links that need attention are sent: not up, not carrying
# traffic, or DCI. Every switch is still drawn; "all links" asks for the rest.
LARGE_EDGES = 6000
# Layouts (and filter choices) kept per process, keyed by what they depend on: the nodes' names, roles, fabrics,
# sites, pods, planes and external flags (not lifecycles). Computing one for 4,160 switches took ~70 ms (natural
# sort keys), more than building the rest of the answer; the key costs ~2 ms.
LAYOUT_CACHE_SIZE = 16
LAYOUT_KEY_FIELDS = ("name", "role", "fabric", "site", "pod", "plane", "external")
_layouts: OrderedDict[tuple, tuple[list[list[float]], dict[str, list[str]]]] = OrderedDict()
_layouts_lock = threading.Lock()


def _natural(text: str | None) -> tuple:
    """'pod10' after 'pod9'."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text or ""))


def preset_layout(nodes: list[list[Any]], fields: list[str]) -> list[list[float]]:
    """``[x, y]`` per node row: tiers top to bottom, each tier centred and wrapped every :data:`MAX_ROW` nodes."""
    col = {name: i for i, name in enumerate(fields)}
    tiers: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(nodes):
        if row[col["external"]]:
            tier = EXTERNAL_TIER
        elif row[col["role"]] == "host":
            tier = HOST_TIER
        else:
            tier = TIER_OF_ROLE.get(row[col["role"]], 4)
        tiers[tier].append(i)
    widest = max((min(len(m), MAX_ROW) for m in tiers.values()), default=1)
    positions: list[list[float]] = [[0.0, 0.0] for _ in nodes]
    y = 0.0
    for tier in sorted(tiers):
        members = sorted(
            tiers[tier],
            key=lambda i: (
                nodes[i][col["fabric"]],
                _natural(nodes[i][col["pod"]] or nodes[i][col["plane"]]),
                nodes[i][col["role"]] == DeviceRole.BORDER_LEAF,
                _natural(nodes[i][col["name"]]),
            ),
        )
        rows = math.ceil(len(members) / MAX_ROW)
        for r in range(rows):
            chunk = members[r * MAX_ROW : (r + 1) * MAX_ROW]
            # Spread short rows over the widest one so a 4-spine tier sits above 2,000 leaves, not in a corner.
            step = X_STEP * max(1.0, (widest - 1) / max(1, len(chunk) - 1)) if len(chunk) > 1 else 0.0
            x0 = -step * (len(chunk) - 1) / 2
            for k, i in enumerate(chunk):
                positions[i] = [round(x0 + k * step), round(y + r * ROW_STEP)]  # whole pixels: a shorter answer
        y += (rows - 1) * ROW_STEP + TIER_GAP
    return positions


def with_hosts(graph: dict[str, Any], fabric: Fabric) -> None:
    """Add the fabric's GPU hosts as nodes and their NIC cables as edges (kind ``nic``, id ``nic<pk>``)."""
    fields = graph["node_fields"]
    index = {row[0]: i for i, row in enumerate(graph["nodes"])}
    hosts = list(GpuHost.objects.filter(fabric=fabric).values_list("id", "name", "pod__name"))
    host_index = {}
    site = fabric.site.name if fabric.site_id else None
    for host_id, name, pod in hosts:
        row = dict.fromkeys(fields)
        row.update(name=name, role="host", fabric=fabric.name, site=site, pod=pod, lifecycle="active", external=False)
        host_index[host_id] = len(graph["nodes"])
        graph["nodes"].append([row[f] for f in fields])
    nics = GpuNic.objects.filter(host__fabric=fabric).values_list(
        "id", "host_id", "leaf_interface__device__hostname", "speed_gbps", "leaf_interface__admin_up"
    )
    for nic_id, host_id, leaf, speed, admin_up in nics:
        if leaf in index:
            state = "up" if admin_up else "down"
            graph["edges"].append([f"nic{nic_id}", host_index[host_id], index[leaf], "nic", speed, state, admin_up])
    graph["counts"]["hosts"] = len(hosts)


def is_problem(edge: list[Any]) -> bool:
    """A link worth drawing in a large fabric: not up and carrying, or a DCI wavelength (few, and what cities share)."""
    return edge[5] != "up" or not edge[6] or edge[3] == "dci"


def problem_edges(graph: dict[str, Any]) -> None:
    """Keep only :func:`is_problem` links; ``counts`` says how many were left out."""
    total = len(graph["edges"])
    # is_problem() inlined: this runs over every link of the fabric (53k at 4,160 switches) on each call.
    graph["edges"] = [e for e in graph["edges"] if e[5] != "up" or not e[6] or e[3] == "dci"]
    graph["counts"].update(edges_total=total, edges_hidden=total - len(graph["edges"]))
    graph["links"] = "problems"


def graph_payload(fabric: Fabric, *, hosts: bool = False, links: str = "auto") -> dict[str, Any]:
    """The API's graph of the fabric plus ``positions`` and the filter choices.

    ``links``: ``all``, ``problems`` (see :func:`is_problem`) or ``auto`` (problems above :data:`LARGE_EDGES`).
    """
    graph = fabric_graph(fabric)
    graph["links"] = "all"
    if hosts:  # before the filter, so a large fabric's healthy NIC cables are left out too
        with_hosts(graph, fabric)
    graph["counts"].update(edges_total=len(graph["edges"]), edges_hidden=0)
    if links == "problems" or (links == "auto" and len(graph["edges"]) > LARGE_EDGES):
        problem_edges(graph)
    graph["positions"], graph["choices"] = layout_and_choices(graph["nodes"], graph["node_fields"])
    return graph


def layout_and_choices(nodes: list[list[Any]], fields: list[str]) -> tuple[list[list[float]], dict[str, list[str]]]:
    """:func:`preset_layout` and the filter choices (site/pod/plane/role values), cached (see LAYOUT_CACHE_SIZE).
    The answer's lists are shared between calls: callers must not change them."""
    cols = [fields.index(name) for name in LAYOUT_KEY_FIELDS]
    key = tuple(tuple(row[c] for c in cols) for row in nodes)
    with _layouts_lock:
        hit = _layouts.get(key)
        if hit is not None:
            _layouts.move_to_end(key)
            return hit
    col = {name: i for i, name in enumerate(fields)}
    choices = {
        name: sorted({row[col[name]] for row in nodes if row[col[name]]}, key=_natural)
        for name in ("site", "pod", "plane", "role")
    }
    built = (preset_layout(nodes, fields), choices)
    with _layouts_lock:
        _layouts[key] = built
        while len(_layouts) > LAYOUT_CACHE_SIZE:
            _layouts.popitem(last=False)
    return built


@page(*TOPOLOGY_READ)
def topology_index(request: HttpRequest) -> HttpResponse:
    fabrics = list(Fabric.objects.order_by("name"))
    return render_page(request, "web/topology_index.html", {"fabrics": fabrics})


@page(*TOPOLOGY_READ)
def topology(request: HttpRequest, fabric: str) -> HttpResponse:
    fab = get_object_or_404(Fabric, name=fabric)
    return render_page(request, "web/topology.html", {"fabric": fab, "fabrics": Fabric.objects.order_by("name")})


@page(*TOPOLOGY_READ)
def topology_graph(request: HttpRequest, fabric: str) -> JsonResponse:
    """GET ?hosts=1 to include GPU hosts, ?links=all|problems|auto. Positions are stable between calls."""
    fab = get_object_or_404(Fabric, name=fabric)
    links = request.GET.get("links", "auto")
    if links not in ("all", "problems", "auto"):
        links = "auto"
    return JsonResponse(graph_payload(fab, hosts=request.GET.get("hosts") == "1", links=links))


@page(*TOPOLOGY_READ)
def topology_state(request: HttpRequest, fabric: str) -> JsonResponse:
    """Polled every few seconds: link states and liveness, switch lifecycles, and utilisation when telemetry answers.

    ``edges``: ``[[link_id, state, live, utilisation or null, a, b, kind, capacity_gbps], ...]`` (a/b index the
    graph's nodes); ``nodes``: ``{hostname: lifecycle}``. ``?links=problems`` answers only :func:`is_problem` links
    (the page adds and removes edges to match), so polling a large fabric stays small.
    """
    fab = get_object_or_404(Fabric, name=fabric)
    graph = fabric_graph(fab)
    if request.GET.get("links") == "problems":
        problem_edges(graph)
    util, reason = telemetry.link_utilisation()
    edge_util: dict[int, float] = {}
    if util:
        wanted = {e[0] for e in graph["edges"]}
        ends = Link.objects.filter(Q(a_interface__device__fabric=fab) | Q(b_interface__device__fabric=fab)).values_list(
            "id", "a_interface__device__hostname", "a_interface__name", "b_interface__device__hostname",
            "b_interface__name", "capacity_gbps",
        )  # fmt: skip
        for link_id, a_dev, a_if, b_dev, b_if, capacity in ends:
            if link_id not in wanted:
                continue
            bps = max(util.get((a_dev, a_if), 0.0), util.get((b_dev, b_if), 0.0))
            if capacity:
                edge_util[link_id] = round(min(1.0, bps / (capacity * 1e9)), 4)
    name_col = graph["node_fields"].index("name")
    life_col = graph["node_fields"].index("lifecycle")
    return JsonResponse(
        {
            "edges": [[e[0], e[5], e[6], edge_util.get(e[0]), e[1], e[2], e[3], e[4]] for e in graph["edges"]],
            "links": graph.get("links", "all"),
            "nodes": {row[name_col]: row[life_col] for row in graph["nodes"]},
            "telemetry": "" if util is not None else reason,
        }
    )
