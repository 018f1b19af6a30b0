"""Incidents (read-only pages over fabric_ops.health): open and recent incidents, evidence, impact, remediation."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from fabric_ops.health.choices import ACTIVE_STATUSES, IncidentStatus
from fabric_ops.health.models import Incident

from .base import INCIDENTS_READ, page, render_page

PAGE_SIZE = 100


@page(*INCIDENTS_READ)
def incident_list(request: HttpRequest) -> HttpResponse:
    incidents = Incident.objects.order_by("-detected_at")
    status = request.GET.get("status", "active")
    if status == "active":
        incidents = incidents.filter(status__in=ACTIVE_STATUSES)
    elif status in IncidentStatus.values:
        incidents = incidents.filter(status=status)
    fabric = request.GET.get("fabric", "")
    if fabric:
        incidents = incidents.filter(fabric=fabric)
    return render_page(
        request,
        "web/incidents.html",
        {"incidents": list(incidents[:PAGE_SIZE]), "status": status, "statuses": IncidentStatus.choices,
         "fabric": fabric},
    )  # fmt: skip


@page(*INCIDENTS_READ)
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = get_object_or_404(Incident, pk=pk)
    runs = list(incident.runs.prefetch_related("actions").order_by("-id")[:20])
    return render_page(
        request,
        "web/incident.html",
        {"incident": incident, "alarms": list(incident.alarms.order_by("raised_at")), "runs": runs},
    )
