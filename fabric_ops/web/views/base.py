"""What every page shares: login + permission checks, the audit call, and small formatting helpers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from fabric_ops.web.roles import role_of

logger = logging.getLogger(__name__)

# Permissions of the pages, by what they show or do (codenames as in fabric_ops/web/roles.py).
TOPOLOGY_READ = ("topology.view_device", "topology.view_link")
JOBS_READ = ("fabricconfig.view_pushjob", "fabricconfig.view_devicejob")
JOBS_CREATE = ("fabricconfig.add_pushjob", "fabricconfig.run_pushjob")
JOBS_APPROVE = ("fabricconfig.approve_pushjob",)
LAB_READ = ("web.view_lab",)
LAB_CONTROL = ("web.view_lab", "web.inject_fault")
INCIDENTS_READ = ("health.view_incident",)
# Acknowledge / resolve an incident; approve / reject / roll back its remediation runs (operators).
INCIDENT_CHANGE = ("health.view_incident", "health.change_incident")
RUN_CHANGE = ("health.view_incident", "health.view_remediationrun", "health.change_remediationrun")
# Alerting pages: configuration and the delivery log are read by every role; silences are made by operators.
ALERTING_READ = ("alerting.view_alertrule", "alerting.view_route", "alerting.view_receiver", "alerting.view_silence")
DELIVERIES_READ = ("alerting.view_notification", "alerting.view_deliveryattempt")
# Open alert groups: seen by every role; acknowledged by operators (the alerting API checks change_alertgroup).
GROUPS_READ = ("alerting.view_alertgroup", "alerting.view_alert")
GROUP_ACK = ("alerting.view_alertgroup", "alerting.change_alertgroup")
SILENCE_ADD = ("alerting.view_silence", "alerting.add_silence")
SILENCE_EXPIRE = ("alerting.view_silence", "alerting.change_silence")
# Drain / undrain: the only changes the UI makes to the source of truth (as the API allows operators).
LINK_CHANGE = ("topology.view_link", "topology.change_link")
DEVICE_CHANGE = ("topology.view_device", "topology.change_device")


def require(request: HttpRequest, perms: Iterable[str]) -> None:
    """Raise 403 unless the user holds every permission: buttons are hidden in templates, this is the real check."""
    perms = tuple(perms)
    if not request.user.has_perms(perms):
        logger.info("page: %s lacks %s for %s %s", request.user, ", ".join(perms), request.method, request.path)
        raise PermissionDenied(f"needs {', '.join(perms)}")


def page(*perms: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorator: login required (redirect to the login page), then ``perms`` (403)."""

    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            require(request, perms)
            return view(request, *args, **kwargs)

        return login_required(inner)

    return wrap


def can(user: Any) -> dict[str, bool]:
    """What the templates may offer this user (each action is checked again on POST)."""
    return {
        "push": user.has_perms(JOBS_CREATE),
        "approve": user.has_perms(JOBS_APPROVE),
        "inject": user.has_perms(LAB_CONTROL),
        "lab": user.has_perms(LAB_READ),
        "jobs": user.has_perms(JOBS_READ),
        "incidents": user.has_perms(INCIDENTS_READ),
        "alerting": user.has_perms(ALERTING_READ),
        "alert_groups": user.has_perms(GROUPS_READ),
        "audit": user.has_perm("web.view_auditentry"),
        "drain_link": user.has_perms(LINK_CHANGE),
        "drain_device": user.has_perms(DEVICE_CHANGE),
    }


def ui_context(request: HttpRequest) -> dict[str, Any]:
    """Navigation and permission flags for base.html."""
    from fabric_ops.lab.control import control_file

    user = request.user
    if not user.is_authenticated:
        return {}
    flags = can(user)
    # The Lab entry shows only while a lab runs (it publishes its control file for that long).
    return {"can": flags, "role": role_of(user), "lab_nav": flags["lab"] and control_file().exists()}


def gbps(value: float | int | None) -> str:
    """400 -> '400G', 25600 -> '25.6T'."""
    if value is None:
        return "-"
    return f"{value / 1000:,.1f}T" if value >= 1000 else f"{value:,.0f}G"


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, **kwargs: Any
) -> HttpResponse:
    """``render`` plus the navigation/permission context every page needs."""
    from django.shortcuts import render

    return render(request, template, {**ui_context(request), **(context or {})}, **kwargs)


PAGE_SIZE = 50


def offset_page(request: HttpRequest, rows: Any, size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of a queryset by ``?offset=`` (a bad offset is the first page), plus the newer/older offsets.

    Fetches one row more than the page to know whether there is an older page, without counting the table.
    """
    try:
        offset = max(0, int(request.GET.get("offset", "0")))
    except ValueError:
        offset = 0
    fetched = list(rows[offset : offset + size + 1])
    return {
        "rows": fetched[:size],
        "offset": offset,
        "next_offset": offset + size if len(fetched) > size else None,
        "prev_offset": max(0, offset - size) if offset else None,
    }
