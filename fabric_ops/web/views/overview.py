"""Overview: per fabric inventory, link states, compliance, capacity; platform health; top ports; recent jobs."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse

from fabric_ops.config.models import ComplianceResult, PushJob
from fabric_ops.health.choices import ACTIVE_STATUSES
from fabric_ops.health.models import Incident
from fabric_ops.topology.choices import LinkState
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Device, Fabric, Link
from fabric_ops.web import health

from . import telemetry
from .base import TOPOLOGY_READ, gbps, page, render_page

logger = logging.getLogger(__name__)


def fabric_summaries() -> list[dict[str, Any]]:
    """One row per fabric: devices by role and lifecycle, links by state, compliance of the latest check.

    Aggregate queries only (a handful in total, whatever the fabric size).
    """
    fabrics = list(Fabric.objects.select_related("site").order_by("name"))
    roles: dict[int, Counter] = defaultdict(Counter)
    lifecycles: dict[int, Counter] = defaultdict(Counter)
    for fab, role, lifecycle, n in Device.objects.values_list("fabric_id", "role", "lifecycle").annotate(n=Count("id")):
        roles[fab][role] += n
        lifecycles[fab][lifecycle] += n
    links: dict[int, Counter] = defaultdict(Counter)
    # A link belongs to the fabric of its A end (DCI links to the DCI backbone's side the inventory put first).
    for fab, state, n in Link.objects.values_list("a_interface__device__fabric_id", "state").annotate(n=Count("id")):
        links[fab][state] += n
    latest = ComplianceResult.objects.filter(device=OuterRef("pk")).order_by("-checked_at", "-id")
    compliance: dict[int, Counter] = defaultdict(Counter)
    checked = Device.objects.annotate(
        last_id=Subquery(latest.values("id")[:1]), last_compliant=Subquery(latest.values("compliant")[:1])
    ).filter(last_id__isnull=False)
    for fab, compliant in checked.values_list("fabric_id", "last_compliant"):
        compliance[fab]["compliant" if compliant else ("unknown" if compliant is None else "drift")] += 1
    out = []
    for fab in fabrics:
        out.append(
            {
                "fabric": fab,
                "roles": sorted(roles[fab.pk].items()),
                "lifecycles": sorted(lifecycles[fab.pk].items()),
                "devices": sum(roles[fab.pk].values()),
                "links": {s: links[fab.pk].get(s, 0) for s in (LinkState.UP, LinkState.DOWN, LinkState.DRAINED)},
                "links_total": sum(links[fab.pk].values()),
                "compliance": dict(compliance[fab.pk]),
            }
        )
    return out


@page(*TOPOLOGY_READ)
def overview(request: HttpRequest) -> HttpResponse:
    jobs = list(PushJob.objects.annotate(device_count=Count("devices")).order_by("-created_at")[:8])
    incidents = Incident.objects.filter(status__in=ACTIVE_STATUSES).order_by("-detected_at")
    return render_page(
        request,
        "web/overview.html",
        {
            "fabrics": fabric_summaries(),
            "jobs": jobs,
            "open_incidents": list(incidents[:10]),
            "open_incident_count": incidents.count(),
        },
    )


@page(*TOPOLOGY_READ)
def overview_health(request: HttpRequest) -> HttpResponse:
    """Fragment (htmx, polled): DB, broker, InfluxDB, collectors, workers from the API's health checks."""
    report = health.platform_health()
    return render_page(request, "web/fragments/health.html", {"health": report})


@page(*TOPOLOGY_READ)
def overview_top_ports(request: HttpRequest) -> HttpResponse:
    """Fragment (htmx, polled): top ports by ECN marks, PFC pauses and errors, or why telemetry is unavailable."""
    tables, reason = telemetry.top_ports(n=10, start="5m")
    return render_page(request, "web/fragments/top_ports.html", {"tables": tables, "reason": reason})


@page(*TOPOLOGY_READ)
def overview_capacity(request: HttpRequest) -> HttpResponse:
    """Fragment (htmx, lazy): leaf uplink capacity now vs as built, per fabric, from the cached graph."""
    rows = []
    for fab in Fabric.objects.order_by("name"):
        try:
            graph = FabricGraph.load([fab.name], max_age=30.0)
            leaves = graph.leaves()
            if not leaves:
                continue
            effective = sum(graph.uplink_capacities(effective=True).values())
            design = sum(graph.design_uplink_capacity(leaf) for leaf in leaves)
        except Exception as exc:  # one broken fabric must not hide the others' figures
            logger.warning("overview: capacity of %s: %s", fab.name, exc)
            rows.append({"fabric": fab.name, "error": str(exc)})
            continue
        rows.append({"fabric": fab.name, "effective": gbps(effective), "design": gbps(design),
                     "percent": round(100 * effective / design, 1) if design else None})  # fmt: skip
    return render_page(request, "web/fragments/capacity.html", {"rows": rows})
