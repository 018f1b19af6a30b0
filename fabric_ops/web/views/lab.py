"""Lab page: the running virtual lab's status and faults (polled), inject and clear (operators, audited).

The lab is reached only through its control channel (``LabClient``, what ``/api/lab/`` uses); when no lab runs
the page says so and offers nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from fabric_ops.errors import LabError, LabUnavailable
from fabric_ops.lab.control import control_file
from fabric_ops.lab.faults import FAULT_KINDS
from fabric_ops.web import audit
from fabric_ops.web.api.lab import InjectRequest, lab_client

from .base import LAB_CONTROL, LAB_READ, page, render_page

logger = logging.getLogger(__name__)


def lab_running() -> bool:
    """Cheap check for the navigation: a lab publishes its control file while it runs."""
    return control_file().exists()


def lab_status() -> tuple[dict[str, Any] | None, str]:
    try:
        return lab_client().status(), ""
    except LabError as exc:
        return None, str(exc)


def status_context() -> dict[str, Any]:
    status, reason = lab_status()
    faults = (status or {}).get("faults", [])
    active = [f for f in faults if not f.get("cleared_at")]
    cleared = [f for f in faults if f.get("cleared_at")][-20:][::-1]
    return {"status": status, "reason": reason, "active": active, "cleared": cleared,
            "kinds": sorted(FAULT_KINDS)}  # fmt: skip


@page(*LAB_READ)
def lab(request: HttpRequest) -> HttpResponse:
    return render_page(request, "web/lab.html", status_context())


@page(*LAB_READ)
def lab_faults(request: HttpRequest) -> HttpResponse:
    """Fragment polled by htmx: status figures and the fault table."""
    return render_page(request, "web/fragments/lab_status.html", status_context())


def _params(text: str) -> dict[str, Any]:
    """``key=value`` pairs (space or comma separated); numbers become numbers, like ``manage.py lab inject``."""
    out: dict[str, Any] = {}
    for item in text.replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"parameter {item!r} is not key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@require_POST
@page(*LAB_CONTROL)
def lab_inject(request: HttpRequest) -> HttpResponse:
    try:
        params = _params(request.POST.get("params", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("web:lab")
    incoming = InjectRequest(data={"kind": request.POST.get("kind", ""), "target": request.POST.get("target", ""),
                                   "duration": request.POST.get("duration") or None, "params": params})  # fmt: skip
    if not incoming.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in incoming.errors.items()))
        return redirect("web:lab")
    data = incoming.validated_data
    try:
        fault = lab_client().inject(data["kind"], data["target"], duration=data["duration"], **data["params"])
    except LabUnavailable as exc:
        messages.error(request, f"lab unavailable: {exc}")
        return redirect("web:lab")
    except LabError as exc:
        messages.error(request, str(exc))
        return redirect("web:lab")
    audit.record(
        request.user, "inject", None, {k: [None, v] for k, v in data.items()}, request,
        object_type="lab.fault", object_id=fault.get("id"), object_repr=f"{data['kind']} on {data['target']}",
        source=audit.Source.WEB,
    )  # fmt: skip
    messages.success(request, f"fault {fault.get('id')} injected: {fault.get('kind')} on {fault.get('target')}")
    return redirect("web:lab")


@require_POST
@page(*LAB_CONTROL)
def lab_clear(request: HttpRequest) -> HttpResponse:
    fault_id = request.POST.get("id", "")
    clear_all = request.POST.get("all") == "1"
    if bool(fault_id) == clear_all:
        messages.error(request, "give either a fault id or all")
        return redirect("web:lab")
    try:
        client = lab_client()
        cleared = client.clear(all=True) if clear_all else client.clear(fault_id)
    except LabError as exc:
        messages.error(request, str(exc))
        return redirect("web:lab")
    for fault in cleared:
        audit.record(
            request.user, "clear", None, {"active": [True, False]}, request, object_type="lab.fault",
            object_id=fault.get("id"), object_repr=f"{fault.get('kind')} on {fault.get('target')}",
            source=audit.Source.WEB,
        )  # fmt: skip
    messages.success(request, f"cleared {len(cleared)} fault(s)")
    return redirect("web:lab")
