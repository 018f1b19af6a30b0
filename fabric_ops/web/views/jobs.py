"""Config push jobs: list, detail with per-device status and diffs (live while running), create, approve.

Creation and approval use the same validation (the API's PushJobCreateSerializer), the same domain functions
(``fabric_ops.config.push.create_job`` / ``approve_job``) and the same queueing as ``/api/push-jobs/``, so a
job made from a page is indistinguishable from one made through the API; its audit row says source ``web``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from fabric_ops.config.models import DeviceJob, PushJob
from fabric_ops.config.models.jobs import JobStatus
from fabric_ops.config.push import approve_job, create_job
from fabric_ops.config.redaction import redact
from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.choices import DeviceRole
from fabric_ops.topology.models import Fabric
from fabric_ops.web import audit
from fabric_ops.web.api.serializers import PushJobCreateSerializer
from fabric_ops.web.api.viewsets import enqueue_push

from .base import JOBS_APPROVE, JOBS_CREATE, JOBS_READ, offset_page, page, render_page

logger = logging.getLogger(__name__)

# Job states in which the page keeps polling for progress.
LIVE_STATUSES = {JobStatus.PENDING, JobStatus.RUNNING, JobStatus.AWAITING_APPROVAL}


@page(*JOBS_READ)
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = PushJob.objects.annotate(device_count=Count("devices")).order_by("-created_at")
    status = request.GET.get("status", "")
    if status:
        jobs = jobs.filter(status=status)
    page_of = offset_page(request, jobs)
    context = {"jobs": page_of.pop("rows"), "status": status, "statuses": JobStatus.choices, **page_of}
    return render_page(request, "web/jobs.html", context)


def job_context(job: PushJob) -> dict[str, Any]:
    rows = list(DeviceJob.objects.filter(job=job).select_related("device").order_by("wave", "device__hostname"))
    for row in rows:
        row.diff, row.error = redact(row.diff), redact(row.error)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    done = sum(n for s, n in counts.items() if s != "pending")
    return {"job": job, "rows": rows, "counts": sorted(counts.items()), "done": done, "total": len(rows),
            "percent": round(100 * done / len(rows)) if rows else 0, "live": job.status in LIVE_STATUSES}  # fmt: skip


@page(*JOBS_READ)
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(PushJob, pk=pk)
    return render_page(request, "web/job.html", job_context(job))


@page(*JOBS_READ)
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """Fragment polled by htmx while the job is live; stops polling (no hx-trigger) once it has finished."""
    job = get_object_or_404(PushJob, pk=pk)
    return render_page(request, "web/fragments/job_progress.html", job_context(job))


@require_POST
@page(*JOBS_APPROVE)
def job_approve(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        job = get_object_or_404(PushJob.objects.select_for_update(), pk=pk)
        if job.requested_by == request.user.get_username() or (job.user_id and job.user_id == request.user.pk):
            raise PermissionDenied("the requester cannot approve their own push job")
        if job.status != JobStatus.AWAITING_APPROVAL:
            messages.error(request, f"{job} is {job.status}, not awaiting approval")
            return redirect("web:job", pk=job.pk)
        try:
            approve_job(job, request.user.get_username())
        except FabricOpsError as exc:
            messages.error(request, str(exc))
            return redirect("web:job", pk=job.pk)
        audit.record(
            request.user, "approve", job,
            {"status": [JobStatus.AWAITING_APPROVAL, job.status], "approved_by": [None, job.approved_by]}, request,
            source=audit.Source.WEB,
        )  # fmt: skip
        enqueue_push(job.pk)
    messages.success(request, f"{job} approved and queued")
    return redirect("web:job", pk=job.pk)


def form_data(post: Any) -> dict[str, Any]:
    """The HTML form's fields as the API serializer's input (checkboxes, multi-selects, a hostname list)."""
    data: dict[str, Any] = {
        "reason": post.get("reason", ""),
        "dry_run": post.get("dry_run") == "on",
        "require_approval": post.get("require_approval") == "on",
    }
    for key in ("canary_count", "wave_percent", "max_failures", "concurrency", "revert_in"):
        if post.get(key, "").strip():
            data[key] = post.get(key).strip()
    if post.get("target") == "devices":
        data["devices"] = [n for n in post.get("devices", "").replace(",", " ").split() if n]
    else:
        data["fabric"] = post.get("fabric", "")
        data["roles"] = post.getlist("roles")
    return data


@page(*JOBS_READ, *JOBS_CREATE)
def job_create(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: validate like the API, record the job and its waves, audit, queue (unless approval)."""
    errors: Any = None
    values: dict[str, Any] = {"target": "fabric", "dry_run": True}
    if request.method == "POST":
        values = {**request.POST.dict(), "roles": request.POST.getlist("roles"),
                  "dry_run": request.POST.get("dry_run") == "on",
                  "require_approval": request.POST.get("require_approval") == "on"}  # fmt: skip
        incoming = PushJobCreateSerializer(data=form_data(request.POST))
        if incoming.is_valid():
            data = dict(incoming.validated_data)
            devices = data.pop("selected")
            for key in ("devices", "fabric", "roles"):
                data.pop(key, None)
            with transaction.atomic():
                job = create_job(devices, requested_by=request.user.get_username(), **data)
                job.user = request.user
                job.save(update_fields=["user"])
                changes = {"devices": [None, sorted(d.hostname for d in devices)],
                           **{k: [None, v] for k, v in data.items()}, "status": [None, job.status]}  # fmt: skip
                audit.record(request.user, "create", job, changes, request, source=audit.Source.WEB)
                if job.status == JobStatus.PENDING:
                    enqueue_push(job.pk)
            logger.info("page: push job %s by %s: %d devices, %s", job.pk, job.requested_by, len(devices), job.status)
            return redirect("web:job", pk=job.pk)
        errors = incoming.errors
    return render_page(
        request,
        "web/job_create.html",
        {"fabrics": Fabric.objects.order_by("name"), "roles": DeviceRole.choices, "errors": errors, "values": values},
        status=400 if errors else 200,
    )
