"""Alerting pages (over fabric_ops.alerting): open alert groups (operators acknowledge them), rules, the route
tree, receivers (never a secret), silences (operators create and expire them), and the delivery log filtered by
receiver and status.

Acknowledging a group from the page is :func:`fabric_ops.alerting.acknowledgement.acknowledge_group`, as from a
signed link or the alerting API: escalation stops and the incidents behind its alerts are acknowledged by the
same person (one audit row per incident, plus ``alert-ack`` on the group), source ``web``.

Silences use the alerting API's serializer for validation (same rules as ``/alerting/api/silences/``) and write
the same audit rows, with source ``web``. Receivers show their endpoint with any credential in it masked
(user:password, query values), the *name* of their secret-store entry, and options with secret-looking keys masked:
the secret values themselves are never read here.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from fabric_ops.alerting import clock
from fabric_ops.alerting.acknowledgement import acknowledge_group, incident_id_of, incident_model
from fabric_ops.alerting.api import SilenceSerializer
from fabric_ops.alerting.choices import AlertStatus, DeliveryStatus, GroupState, SilenceKind
from fabric_ops.alerting.models import (
    AlertGroup,
    AlertRule,
    EscalationPolicy,
    InhibitRule,
    Notification,
    OnCallSchedule,
    Receiver,
    Route,
    Silence,
)
from fabric_ops.alerting.routing import RouteTree
from fabric_ops.web import audit
from fabric_ops.web.models import AuditEntry

from .base import (
    ALERTING_READ,
    DELIVERIES_READ,
    GROUP_ACK,
    GROUPS_READ,
    INCIDENTS_READ,
    PAGE_SIZE,  # offset_page's default; a name here so tests can shrink the deliveries page
    SILENCE_ADD,
    SILENCE_EXPIRE,
    offset_page,
    page,
    render_page,
)

logger = logging.getLogger(__name__)

GROUPS_MAX = 200
MASK = audit.MASK
WEB = AuditEntry.Source.WEB


def safe_url(url: str) -> str:
    """The endpoint without anything that can be a credential: user info and query values are masked."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme:  # SMTP host:port
        return url if "@" not in url else MASK
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    query = "&".join(f"{k}={MASK}" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def safe_options(options: Any) -> dict[str, Any]:
    return audit.mask(options) if isinstance(options, dict) else {}


def _nav(request: HttpRequest, current: str, context: dict[str, Any]) -> dict[str, Any]:
    user = request.user
    return {"section": current, "may_deliveries": user.has_perms(DELIVERIES_READ),
            "may_groups": user.has_perms(GROUPS_READ), **context}  # fmt: skip


def group_rows() -> list[dict[str, Any]]:
    """Open alert groups (not closed) holding a firing alert, newest first: their firing alerts, the incidents
    behind them (with whether each is acknowledged), and the escalation in effect (policy, step, next due)."""
    tree = RouteTree.load()
    policies = {p.pk: p for p in EscalationPolicy.objects.prefetch_related("steps")}
    groups = (
        AlertGroup.objects.exclude(state=GroupState.CLOSED)
        .filter(alerts__status=AlertStatus.FIRING)
        .distinct()
        .select_related("route")
        .order_by("-created_at")[:GROUPS_MAX]
    )
    groups = list(groups)
    firing: dict[int, list[Any]] = {g.pk: [] for g in groups}
    for link in AlertGroup.alerts.through.objects.filter(alertgroup__in=groups, alert__status=AlertStatus.FIRING) \
            .select_related("alert").order_by("-alert__starts_at"):  # fmt: skip
        firing[link.alertgroup_id].append(link.alert)
    ids = {i for alerts in firing.values() for a in alerts if (i := incident_id_of(a.source)) is not None}
    incidents: dict[int, Any] = {}
    if ids and (model := incident_model()) is not None:
        incidents = model.objects.in_bulk(ids)
    rows = []
    for group in groups:
        alerts = firing[group.pk]
        mine = [incidents[i] for a in alerts if (i := incident_id_of(a.source)) in incidents]
        policy = policies.get(tree.settings_of(group.route_id).escalation_id or 0) if tree.root else None
        steps = list(policy.steps.all()) if policy is not None else []
        rows.append({"g": group, "alerts": alerts, "incidents": mine, "policy": policy, "steps": len(steps),
                     "active": group.state == GroupState.ACTIVE})  # fmt: skip
    return rows


@page(*GROUPS_READ)
def groups(request: HttpRequest) -> HttpResponse:
    """Open alert groups, live (htmx every 10 s); operators acknowledge one here."""
    user = request.user
    return render_page(
        request,
        "web/alerting/groups.html",
        _nav(request, "groups", {"rows": group_rows(), "may_ack": user.has_perms(GROUP_ACK),
                                 "may_incidents": user.has_perms(INCIDENTS_READ)}),
    )  # fmt: skip


@require_POST
@page(*GROUP_ACK)
def group_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():  # the group's row held: of two operators pressing at once, one acknowledges
        group = get_object_or_404(AlertGroup.objects.select_for_update(), pk=pk)
        if group.state != GroupState.ACTIVE:
            who = f" by {group.acknowledged_by}" if group.acknowledged_by else ""
            messages.error(request, f"alert group {group.pk} is already {group.state}{who}")
            return redirect("web:alerting-groups")
        group = acknowledge_group(group.pk, request.user.get_username(), by=request.user, source=WEB, request=request)
        audit.record(request.user, "alert-ack", group, {"state": [GroupState.ACTIVE, group.state]}, request,
                     source=WEB)  # fmt: skip
    messages.success(request, f"alert group {group.pk} acknowledged: escalation stopped")
    return redirect("web:alerting-groups")


@page(*ALERTING_READ)
def rules(request: HttpRequest) -> HttpResponse:
    return render_page(
        request,
        "web/alerting/rules.html",
        _nav(request, "rules", {"rules": list(AlertRule.objects.order_by("source", "name")),
                                "inhibit_rules": list(InhibitRule.objects.order_by("name"))}),
    )  # fmt: skip


def _tree(tree: RouteTree, route: Route, receivers: dict[int, str], policies: dict[int, str]) -> dict[str, Any]:
    settings = tree.settings_of(route.pk)
    return {
        "route": route,
        "receiver": receivers.get(settings.receiver_id or 0, ""),
        "receiver_inherited": route.receiver_id is None,
        "escalation": policies.get(settings.escalation_id or 0, ""),
        "settings": settings,
        "children": [_tree(tree, c, receivers, policies) for c in tree.children.get(route.pk, [])],
    }


@page(*ALERTING_READ)
def routes(request: HttpRequest) -> HttpResponse:
    tree = RouteTree.load()
    receivers = dict(Receiver.objects.values_list("pk", "name"))
    policies = {p.pk: p.name for p in EscalationPolicy.objects.all()}
    root = _tree(tree, tree.root, receivers, policies) if tree.root is not None else None
    escalation = list(EscalationPolicy.objects.prefetch_related("steps__receiver", "steps__schedule").order_by("name"))
    now = clock.now()
    schedules = [{"schedule": s, "on_call": s.receiver_name_at(now)} for s in OnCallSchedule.objects.order_by("name")]
    return render_page(
        request,
        "web/alerting/routes.html",
        _nav(request, "routes", {"root": root, "policies": escalation, "schedules": schedules}),
    )


@page(*ALERTING_READ)
def receivers(request: HttpRequest) -> HttpResponse:
    rows = []
    for receiver in Receiver.objects.order_by("name"):
        last = receiver.notifications.order_by("-created_at").first()
        rows.append({"r": receiver, "endpoint": safe_url(receiver.url), "options": safe_options(receiver.options),
                     "last": last})  # fmt: skip
    return render_page(request, "web/alerting/receivers.html", _nav(request, "receivers", {"rows": rows}))


def silence_rows() -> list[dict[str, Any]]:
    now = clock.now()
    out = []
    for silence in Silence.objects.order_by("-starts_at")[:200]:
        if silence.active_at(now):
            state = "active"
        elif silence.starts_at > now and not silence.expired_early_at:
            state = "pending"
        else:
            state = "expired"
        out.append({"s": silence, "state": state})
    return out


@page(*ALERTING_READ)
def silences(request: HttpRequest) -> HttpResponse:
    """GET: silences (active, pending, expired) and, for operators, the form. POST: create one (validated like
    the API: matchers, an end after the start, a comment)."""
    errors: Any = None
    values: dict[str, Any] = {"hours": "2", "kind": SilenceKind.SILENCE}
    if request.method == "POST":
        if not request.user.has_perms(SILENCE_ADD):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("needs alerting.add_silence")
        values = request.POST.dict()
        now = clock.now()
        try:
            hours = float(values.get("hours", "0"))
        except ValueError:
            hours = -1.0
        data = {
            "matchers": [m.strip() for m in values.get("matchers", "").splitlines() if m.strip()],
            "starts_at": now,
            "ends_at": now + timedelta(hours=hours) if 0 < hours <= 24 * 90 else now,
            "comment": values.get("comment", ""),
            "kind": values.get("kind", SilenceKind.SILENCE),
        }
        incoming = SilenceSerializer(data=data)
        if incoming.is_valid():
            silence = incoming.save(created_by=request.user.get_username())
            changes = {"matchers": [None, silence.matchers], "ends_at": [None, silence.ends_at.isoformat()]}
            audit.record(request.user, "create", silence, changes, request, source=WEB)
            messages.success(request, f"silence {silence.pk} created until {silence.ends_at:%Y-%m-%d %H:%M} UTC")
            return redirect("web:alerting-silences")
        errors = dict(incoming.errors)
        if not 0 < hours <= 24 * 90:
            errors["hours"] = ["between a few minutes and 90 days (2160 hours)"]
    return render_page(
        request,
        "web/alerting/silences.html",
        _nav(request, "silences", {"rows": silence_rows(), "errors": errors, "values": values,
                                   "kinds": SilenceKind.choices, "may_add": request.user.has_perms(SILENCE_ADD),
                                   "may_expire": request.user.has_perms(SILENCE_EXPIRE)}),
        status=400 if errors else 200,
    )  # fmt: skip


@require_POST
@page(*SILENCE_EXPIRE)
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    silence = get_object_or_404(Silence, pk=pk)
    now = clock.now()
    if silence.active_at(now) or (silence.starts_at > now and not silence.expired_early_at):
        silence.expired_early_at = now
        silence.save(update_fields=["expired_early_at"])
        audit.record(request.user, "expire", silence, {"expired_early_at": [None, now.isoformat()]}, request,
                     source=WEB)  # fmt: skip
        messages.success(request, f"silence {silence.pk} expired")
    else:
        messages.error(request, f"silence {silence.pk} has already ended")
    return redirect("web:alerting-silences")


@page(*ALERTING_READ, *DELIVERIES_READ)
def deliveries(request: HttpRequest) -> HttpResponse:
    """The delivery log: notifications newest first with every attempt, filtered by receiver and status."""
    rows = Notification.objects.select_related("receiver", "group").prefetch_related("log").order_by("-created_at")
    receiver = request.GET.get("receiver", "")
    status = request.GET.get("status", "")
    if receiver:
        rows = rows.filter(receiver__name=receiver)
    if status in DeliveryStatus.values:
        rows = rows.filter(status=status)
    page_of = offset_page(request, rows, PAGE_SIZE)
    # Receiver names are free text (``&``, ``#``, spaces): the paging links carry them URL-encoded.
    query = urlencode([(k, v) for k, v in (("receiver", receiver), ("status", status)) if v])
    return render_page(
        request,
        "web/alerting/deliveries.html",
        _nav(request, "deliveries", {
            **page_of, "receiver": receiver, "status": status, "query": query,
            "statuses": DeliveryStatus.choices, "receivers": list(Receiver.objects.order_by("name")
                                                                   .values_list("name", flat=True)),
        }),
    )  # fmt: skip
