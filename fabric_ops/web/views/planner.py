"""Planner: what-if (remove links, switches or optical spans: blast radius and the 75 % guardrail verdict) and the
bill of materials of a fabric. Read-only analysis: nothing is changed, so nothing is audited."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse

from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.generators import bill_of_materials
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Fabric, OpticalSpan
from fabric_ops.web.api.topology import WhatIfRequest, fabrics_for

from .base import TOPOLOGY_READ, page, render_page

logger = logging.getLogger(__name__)
MAX_LEAF_ROWS = 200  # the table shows the worst leaves; the totals cover all of them


def _ints(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def what_if(fabric: Fabric, data: dict[str, Any]) -> dict[str, Any]:
    """Run the blast radius for the validated request; a dict the template renders."""
    graph = FabricGraph.load(fabrics_for(fabric, data["spans"]))
    result = graph.blast_radius(links=data["links"], devices=data["devices"], spans=data["spans"])
    threshold = data["min_uplink_fraction"]
    leaves = sorted(result.leaves, key=lambda leaf: (not leaf.removed, leaf.remaining_fraction))
    return {
        "result": result,
        "leaves": leaves[:MAX_LEAF_ROWS],
        "leaves_more": max(0, len(leaves) - MAX_LEAF_ROWS),
        "hosts": sorted(result.hosts, key=lambda h: -h.lost_fraction)[:MAX_LEAF_ROWS],
        "threshold": threshold,
        "threshold_percent": round(threshold * 100, 1),
        "passes": result.passes(threshold),
        "fabrics_loaded": list(graph.topology.fabric_names),
    }


@page(*TOPOLOGY_READ)
def planner(request: HttpRequest) -> HttpResponse:
    """GET: the forms (and a BOM with ?bom=<fabric>). POST: what-if (CSRF-protected, read-only)."""
    fabrics = list(Fabric.objects.order_by("name"))
    spans = list(OpticalSpan.objects.order_by("name"))
    context: dict[str, Any] = {"fabrics": fabrics, "spans": spans, "values": {"threshold": "0.75"}}
    status = 200
    if request.method == "POST":
        post = request.POST
        context["values"] = {"fabric": post.get("fabric", ""), "links": post.get("links", ""),
                             "devices": post.get("devices", ""), "spans": post.getlist("spans"),
                             "threshold": post.get("threshold", "0.75")}  # fmt: skip
        incoming = WhatIfRequest(data={"links": _ints(post.get("links", "")), "devices": _ints(post.get("devices", "")),
                                       "spans": post.getlist("spans"),
                                       "min_uplink_fraction": post.get("threshold") or 0.75})  # fmt: skip
        fabric = next((f for f in fabrics if f.name == post.get("fabric")), None)
        if fabric is None:
            context["errors"] = {"fabric": [f"unknown fabric {post.get('fabric')!r}"]}
        elif not incoming.is_valid():
            context["errors"] = incoming.errors
        else:
            try:
                context["what_if"] = what_if(fabric, incoming.validated_data)
            except FabricOpsError as exc:  # unknown link ids, hostnames or spans: named in the message
                context["errors"] = {"request": [str(exc)]}
        status = 400 if context.get("errors") else 200
    bom_name = request.GET.get("bom") or request.POST.get("bom")
    if bom_name:
        fabric = next((f for f in fabrics if f.name == bom_name), None)
        if fabric is not None:
            bom = bill_of_materials(fabric).as_dict()
            context["bom"] = bom
            context["bom_fabric"] = fabric.name
            context["bom_optics_total"] = sum(bom["optics"].values())
    return render_page(request, "web/planner.html", context, status=status)
