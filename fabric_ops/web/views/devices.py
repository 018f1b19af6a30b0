"""Device and link detail: inventory, interface and optic state, config history, compliance, last-hour charts."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from fabric_ops.config.models import ComplianceResult, DeviceConfigState, DeviceJob
from fabric_ops.config.redaction import redact
from fabric_ops.topology.choices import Lifecycle, LinkState
from fabric_ops.topology.models import Device, Interface, Link
from fabric_ops.web import audit

from . import telemetry
from .base import DEVICE_CHANGE, LINK_CHANGE, TOPOLOGY_READ, page, render_page

logger = logging.getLogger(__name__)


def _latest_by_interface(device: str, measurement: str, field: str) -> tuple[dict[str, Any], str]:
    rows, reason = telemetry.telemetry_read(
        lambda q: q.latest(measurement, field, tags={"device": device}, group_by=("interface",), start="10m")
    )
    return ({r.tags.get("interface", ""): r.value for r in rows} if rows is not None else {}), reason


def interface_rows(device: Device) -> tuple[list[dict[str, Any]], str]:
    """Every interface with its peer, link, optic, and (when telemetry answers) oper state and Rx power."""
    interfaces = list(
        Interface.objects.filter(device=device)
        .select_related("transceiver", "link_as_a__b_interface__device", "link_as_b__a_interface__device")
        .order_by("name")
    )
    oper, reason = _latest_by_interface(device.hostname, "interface", "oper_up")
    rx_power, _ = _latest_by_interface(device.hostname, "optics", "input_power_dbm") if not reason else ({}, reason)
    rows = []
    for iface in interfaces:
        link, peer = None, None
        if hasattr(iface, "link_as_a"):
            link, peer = iface.link_as_a, iface.link_as_a.b_interface
        elif hasattr(iface, "link_as_b"):
            link, peer = iface.link_as_b, iface.link_as_b.a_interface
        rows.append({"iface": iface, "link": link, "peer": peer, "oper_up": oper.get(iface.name),
                     "rx_power": rx_power.get(iface.name)})  # fmt: skip
    return rows, reason


@page(*TOPOLOGY_READ)
def device_detail(request: HttpRequest, hostname: str) -> HttpResponse:
    device = get_object_or_404(Device.objects.select_related("fabric", "site", "pod"), hostname=hostname)
    rows, reason = interface_rows(device)
    jobs = list(DeviceJob.objects.filter(device=device).select_related("job").order_by("-job__created_at")[:10])
    for row in jobs:
        row.diff, row.error = redact(row.diff), redact(row.error)
    compliance = ComplianceResult.objects.filter(device=device).order_by("-checked_at", "-id").first()
    if compliance is not None:
        compliance.diff = redact(compliance.diff)
    state = DeviceConfigState.objects.filter(device=device).select_related("last_attempt_job").first()
    chart_iface = request.GET.get("interface") or next((r["iface"].name for r in rows if r["link"]), "")
    return render_page(
        request,
        "web/device.html",
        {"device": device, "interfaces": rows, "telemetry_reason": reason, "jobs": jobs, "compliance": compliance,
         "config_state": state, "chart_interface": chart_iface,
         "lifecycle_actions": [(v, label) for v, label in (("drained", "Drain"), ("maintenance", "Maintenance"),
                               ("active", "Activate")) if v != device.lifecycle and device.lifecycle != "planned"]},
    )  # fmt: skip


@page(*TOPOLOGY_READ)
def interface_charts(request: HttpRequest, hostname: str) -> JsonResponse:
    """The last hour of one interface for the canvas charts: ``{"charts": [...], "reason": ""}``."""
    device = get_object_or_404(Device, hostname=hostname)
    name = request.GET.get("interface", "")
    if not Interface.objects.filter(device=device, name=name).exists():
        raise Http404(f"{hostname} has no interface {name!r}")
    charts, reason = telemetry.interface_charts(device.hostname, name)
    return JsonResponse({"device": device.hostname, "interface": name, "charts": charts or [], "reason": reason})


@page(*TOPOLOGY_READ)
def link_detail(request: HttpRequest, pk: int) -> HttpResponse:
    link = get_object_or_404(
        Link.objects.select_related(
            "a_interface__device", "b_interface__device", "a_interface__transceiver", "b_interface__transceiver"
        ),
        pk=pk,
    )
    channel = getattr(link, "optical_channel", None) if hasattr(link, "optical_channel") else None
    spans = list(channel.spans.order_by("name")) if channel else []
    ends = [(link.a_interface.device.hostname, link.a_interface.name), (link.b_interface.device.hostname,
            link.b_interface.name)]  # fmt: skip
    oper = {}
    reason = ""
    for dev, ifname in ends:
        values, reason = _latest_by_interface(dev, "interface", "oper_up")
        oper[dev] = values.get(ifname)
        if reason:
            break
    incidents = []
    try:
        from fabric_ops.health.models import Incident

        incidents = list(Incident.objects.filter(Q(link_id=link.pk)).order_by("-detected_at")[:10])
    except Exception as exc:  # the health app is optional for this page
        logger.debug("link page: no incidents: %s", exc)
    return render_page(
        request,
        "web/link.html",
        {"link": link, "channel": channel, "spans": spans, "ends": ends, "oper": oper, "telemetry_reason": reason,
         "incidents": incidents},
    )  # fmt: skip


# What an operator may set from a page: draining takes traffic off, undraining puts it back.
LINK_STATES = {LinkState.UP, LinkState.DRAINED}
DEVICE_LIFECYCLES = {Lifecycle.ACTIVE, Lifecycle.DRAINED, Lifecycle.MAINTENANCE}


@require_POST
@page(*LINK_CHANGE)
def link_set_state(request: HttpRequest, pk: int) -> HttpResponse:
    """Drain or undrain a link in the source of truth (what remediation playbooks do), audited."""
    new = request.POST.get("state", "")
    if new not in LINK_STATES:
        messages.error(request, f"state must be one of {', '.join(sorted(LINK_STATES))}, not {new!r}")
        return redirect("web:link", pk=pk)
    with transaction.atomic():
        link = get_object_or_404(Link.objects.select_for_update(), pk=pk)
        old = link.state
        if old != new:
            link.state = new
            link.save(update_fields=["state"])  # signals invalidate the graph cache
            audit.record(request.user, "update", link, {"state": [old, new]}, request, source=audit.Source.WEB)
    messages.success(request, f"link {pk}: {old} -> {new}")
    return redirect("web:link", pk=pk)


@require_POST
@page(*DEVICE_CHANGE)
def device_set_lifecycle(request: HttpRequest, hostname: str) -> HttpResponse:
    """Drain, put in maintenance or reactivate a switch in the source of truth, audited."""
    new = request.POST.get("lifecycle", "")
    if new not in DEVICE_LIFECYCLES:
        messages.error(request, f"lifecycle must be one of {', '.join(sorted(DEVICE_LIFECYCLES))}, not {new!r}")
        return redirect("web:device", hostname=hostname)
    with transaction.atomic():
        device = get_object_or_404(Device.objects.select_for_update(), hostname=hostname)
        old = device.lifecycle
        if old != new:
            device.lifecycle = new
            device.save(update_fields=["lifecycle"])
            audit.record(request.user, "update", device, {"lifecycle": [old, new]}, request, source=audit.Source.WEB)
    messages.success(request, f"{hostname}: {old} -> {new}")
    return redirect("web:device", hostname=hostname)
