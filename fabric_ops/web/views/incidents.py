"""Incidents (over fabric_ops.health): list, and the incident page — timeline, evidence, impact, remediation runs
with their actions and diffs, live while anything moves — plus what an operator does about it (acknowledge,
resolve with a note, approve / reject a run waiting for a person, roll back a drain). The actions are
``fabric_ops.web.incident_actions``, the same functions the API calls; the audit rows say source ``web``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from fabric_ops.config.redaction import redact
from fabric_ops.health.choices import ACTIVE_STATUSES, IncidentStatus, RunStatus
from fabric_ops.health.models import Incident, RemediationRun
from fabric_ops.health.models.remediation import ACTIVE_RUN_STATUSES
from fabric_ops.web import incident_actions
from fabric_ops.web.models import AuditEntry

from .base import INCIDENT_CHANGE, INCIDENTS_READ, RUN_CHANGE, page, render_page

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
TIMELINE_MAX = 300
WEB = AuditEntry.Source.WEB


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


def timeline(incident: Incident, alarms: list, runs: list, audit_rows: list) -> list[dict[str, Any]]:
    """Everything that happened to the incident, oldest first: the fault, detection, alarms raised and cleared,
    remediation runs and each of their actions, people's acknowledgements and decisions (audit rows)."""
    events: list[tuple[datetime, str, str]] = []

    def add(when: datetime | None, what: str, who: str = "") -> None:
        if when is not None:
            events.append((when, what, who))

    add(incident.fault_seen_at, "fault seen by the switch")
    add(incident.detected_at, f"detected: {incident.kind} on {incident.root_key}", "detection")
    for alarm in alarms:
        subject = f"{alarm.device} {alarm.subject}".strip()
        add(alarm.raised_at, f"alarm {alarm.kind} {subject} raised: {alarm.message}", "detection")
        add(alarm.cleared_at, f"alarm {alarm.kind} {subject} cleared", "detection")
    for run in runs:
        who = f"playbook:{run.playbook}"
        add(run.created_at, f"remediation {run.pk} ({run.playbook}, {run.mode}) proposed", who)
        add(run.started_at, f"remediation {run.pk} started" + (f", approved by {run.approved_by}"
                                                               if run.approved_by else ""), who)  # fmt: skip
        for act in run.actions.all():
            add(act.started_at, f"{act.phase} {act.action} on {act.target} started", who)
            add(act.finished_at, f"{act.phase} {act.action} on {act.target}: {act.status}", who)
        add(run.committed_at, f"remediation {run.pk} committed", who)
        add(run.verified_at, f"remediation {run.pk} verified", who)
        add(run.rejected_at, f"remediation {run.pk} rejected", run.rejected_by)
        if run.finished_at and not run.rejected_at:
            add(run.finished_at, f"remediation {run.pk} {run.get_status_display().lower()}", who)
        add(run.restored_at, f"remediation {run.pk}: drain restored", who)
    add(incident.acknowledged_at, "acknowledged", incident.acknowledged_by)
    for entry in audit_rows:
        add(entry.timestamp, f"{entry.action} ({entry.get_source_display()}) {entry.object_repr}", entry.actor)
    add(incident.resolved_at, f"resolved: {incident.reason}" if incident.reason else "resolved")
    events.sort(key=lambda e: e[0])
    return [{"at": at, "what": what, "who": who} for at, what, who in events[-TIMELINE_MAX:]]


def _audit_rows(request: HttpRequest, incident: Incident, runs: list) -> list[AuditEntry]:
    """People's actions on the incident and its runs, for those who may read the audit log (operators)."""
    if not request.user.has_perm("web.view_auditentry"):
        return []
    mine = Q(object_type="health.incident", object_id=str(incident.pk)) | Q(
        object_type="health.remediationrun", object_id__in=[str(r.pk) for r in runs]
    )
    return list(AuditEntry.objects.filter(mine).order_by("-timestamp")[:100])


def incident_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    alarms = list(incident.alarms.order_by("raised_at"))
    runs = list(incident.runs.prefetch_related("actions").order_by("-id")[:20])
    for run in runs:
        run.action_rows = list(run.actions.all())
        for act in run.action_rows:
            act.diff, act.result = redact(act.diff), redact(act.result)
        run.can_roll_back = incident_actions.can_roll_back(run)  # a succeeded run, not restored
        # An approval / rollback already queued for a worker: shown, and its button hidden (a second is refused).
        run.queued_action = None
        if run.status == RunStatus.AWAITING_APPROVAL:
            run.queued_action = incident_actions.queued(run, "approve")
        elif run.can_roll_back:
            run.queued_action = incident_actions.queued(run, "rollback")
    user = request.user
    live = incident.status != IncidentStatus.RESOLVED or any(r.status in ACTIVE_RUN_STATUSES for r in runs)
    return {
        "incident": incident,
        "alarms": alarms,
        "runs": runs,
        "timeline": timeline(incident, alarms, runs, _audit_rows(request, incident, runs)),
        "impact": incident.impact or {},
        "live": live,
        "may_change": user.has_perms(INCIDENT_CHANGE),
        "may_run": user.has_perms(RUN_CHANGE),
        "note_max": incident_actions.NOTE_MAX,
    }


@page(*INCIDENTS_READ)
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = get_object_or_404(Incident, pk=pk)
    return render_page(request, "web/incident.html", incident_context(request, incident))


@page(*INCIDENTS_READ)
def incident_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The changing part of the incident page, polled by htmx every 5 s until the incident is over."""
    incident = get_object_or_404(Incident, pk=pk)
    return render_page(request, "web/fragments/incident_live.html", incident_context(request, incident))


def _do(request: HttpRequest, incident_id: int, call: Callable[[], Any], done: str) -> HttpResponse:
    """Run one action; refusals (state, missing note, broker) become a message on the page, like job approval."""
    try:
        call()
    except (incident_actions.ActionRefused, incident_actions.NotQueued, ValueError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("web:incident", pk=incident_id)


@require_POST
@page(*INCIDENT_CHANGE)
def incident_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    incident = get_object_or_404(Incident, pk=pk)
    call = lambda: incident_actions.acknowledge(incident.pk, request.user, request, source=WEB)  # noqa: E731
    return _do(request, incident.pk, call, f"incident {incident.pk} acknowledged")


@require_POST
@page(*INCIDENT_CHANGE)
def incident_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    incident = get_object_or_404(Incident, pk=pk)
    note = request.POST.get("note", "")
    call = lambda: incident_actions.resolve(incident.pk, request.user, note, request, source=WEB)  # noqa: E731
    return _do(request, incident.pk, call, f"incident {incident.pk} resolved")


def _run_action(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    run = get_object_or_404(RemediationRun, pk=pk)
    if name == "approve":
        call = lambda: incident_actions.approve(run.pk, request.user, request, source=WEB)  # noqa: E731
        done = f"remediation {run.pk} approved: a worker runs it now"
    elif name == "reject":
        note = request.POST.get("note", "")
        call = lambda: incident_actions.reject(run.pk, request.user, note, request, source=WEB)  # noqa: E731
        done = f"remediation {run.pk} rejected"
    else:
        call = lambda: incident_actions.rollback(run.pk, request.user, request, source=WEB)  # noqa: E731
        done = f"remediation {run.pk}: rollback queued (links back up, push, verify)"
    return _do(request, run.incident_id, call, done)


@require_POST
@page(*RUN_CHANGE)
def run_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_action(request, pk, "approve")


@require_POST
@page(*RUN_CHANGE)
def run_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_action(request, pk, "reject")


@require_POST
@page(*RUN_CHANGE)
def run_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    return _run_action(request, pk, "rollback")
