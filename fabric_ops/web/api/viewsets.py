"""Model endpoints. Topology is read-only except drain/undrain fields for operators; intents are admin-written;
push jobs are created and approved by operators; results, backups and the audit log are read-only.
Every change goes through :class:`AuditedMixin`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from fabric_ops.config.models import (
    ComplianceResult,
    ConfigBackup,
    DeviceJob,
    IntentAssignment,
    PushJob,
    RoceProfile,
    UnderlayProfile,
)
from fabric_ops.config.models.jobs import JobStatus
from fabric_ops.config.push import approve_job, create_job
from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.models import (
    Device,
    Fabric,
    GpuHost,
    Interface,
    Link,
    OpticalChannel,
    OpticalSpan,
    Pod,
    Site,
    Transceiver,
)
from fabric_ops.web import audit
from fabric_ops.web.models import AuditEntry

from . import filters, serializers
from .fastlist import FastListMixin

logger = logging.getLogger(__name__)


class AuditedMixin:
    """Writes an audit row for every create, update and delete made through the viewset."""

    def perform_create(self, serializer: Any) -> None:
        obj = serializer.save()
        audit.record(self.request.user, "create", obj, audit.diff(None, audit.snapshot(obj)), self.request)

    def perform_update(self, serializer: Any) -> None:
        before = audit.snapshot(serializer.instance)
        obj = serializer.save()
        changes = audit.diff(before, audit.snapshot(obj))
        if changes:  # a PATCH of read-only fields, or of a value to itself, changed nothing
            audit.record(self.request.user, "update", obj, changes, self.request)

    def perform_destroy(self, instance: Any) -> None:
        before, pk, text = audit.snapshot(instance), instance.pk, str(instance)
        instance.delete()
        audit.record(self.request.user, "delete", instance, audit.diff(before, None), self.request, object_id=pk,
                     object_repr=text)  # fmt: skip


class ReadOnly(FastListMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ReadAndPatch(FastListMixin, AuditedMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Read, plus PATCH of the few fields the serializer leaves writable (PUT would imply a full rewrite)."""

    http_method_names = ["get", "patch", "head", "options"]


class AuditedModelViewSet(FastListMixin, AuditedMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


# -- topology --------------------------------------------------------------------------------------------------
class SiteViewSet(ReadOnly):
    queryset = Site.objects.all()
    serializer_class = serializers.SiteSerializer
    filterset_fields = ["name", "city"]
    ordering_fields = ["name", "city"]


class FabricViewSet(ReadOnly):
    queryset = Fabric.objects.select_related("site")
    serializer_class = serializers.FabricSerializer
    filterset_fields = ["name", "kind", "site"]
    ordering_fields = ["name"]


class PodViewSet(ReadOnly):
    queryset = Pod.objects.select_related("fabric")
    serializer_class = serializers.PodSerializer
    filterset_class = filters.PodFilter


class TransceiverViewSet(ReadOnly):
    queryset = Transceiver.objects.all()
    serializer_class = serializers.TransceiverSerializer
    filterset_fields = ["name", "form_factor", "speed_gbps", "coherent"]


class DeviceViewSet(ReadAndPatch):
    """PATCH ``{"lifecycle": "drained"}`` drains a switch in the source of truth (operators)."""

    queryset = Device.objects.select_related("fabric", "site", "pod")
    serializer_class = serializers.DeviceSerializer
    filterset_class = filters.DeviceFilter
    ordering_fields = ["hostname", "role", "index", "lifecycle"]


class InterfaceViewSet(ReadOnly):
    # (device_id, name) is the unique index: ordering by the device's hostname would sort every interface per page.
    queryset = Interface.objects.select_related("device", "transceiver").order_by("device_id", "name")
    serializer_class = serializers.InterfaceSerializer
    filterset_class = filters.InterfaceFilter
    ordering_fields = ["device", "name"]


class LinkViewSet(ReadAndPatch):
    """PATCH ``{"state": "drained"}`` drains a link in the source of truth (operators)."""

    queryset = Link.objects.select_related("a_interface__device", "b_interface__device")
    serializer_class = serializers.LinkSerializer
    filterset_class = filters.LinkFilter
    ordering_fields = ["id", "state", "capacity_gbps"]


class OpticalSpanViewSet(ReadAndPatch):
    queryset = OpticalSpan.objects.select_related("a_site", "b_site")
    serializer_class = serializers.OpticalSpanSerializer
    filterset_class = filters.OpticalSpanFilter
    ordering_fields = ["name", "length_km"]


class OpticalChannelViewSet(ReadOnly):
    queryset = OpticalChannel.objects.prefetch_related("spans")
    serializer_class = serializers.OpticalChannelSerializer
    filterset_class = filters.OpticalChannelFilter


class GpuHostViewSet(ReadOnly):
    queryset = GpuHost.objects.select_related("fabric").prefetch_related("nics__leaf_interface__device")
    serializer_class = serializers.GpuHostSerializer
    filterset_class = filters.GpuHostFilter
    ordering_fields = ["name", "index"]


# -- intents (admin writes) ---------------------------------------------------------------------------------------
class RoceProfileViewSet(AuditedModelViewSet):
    queryset = RoceProfile.objects.all()
    serializer_class = serializers.RoceProfileSerializer
    filterset_fields = ["name"]


class UnderlayProfileViewSet(AuditedModelViewSet):
    queryset = UnderlayProfile.objects.all()
    serializer_class = serializers.UnderlayProfileSerializer
    filterset_fields = ["name"]


class IntentAssignmentViewSet(AuditedModelViewSet):
    queryset = IntentAssignment.objects.select_related("fabric", "device", "roce_profile", "underlay_profile")
    serializer_class = serializers.IntentAssignmentSerializer
    filterset_class = filters.IntentAssignmentFilter


# -- push jobs ----------------------------------------------------------------------------------------------------
def enqueue_push(job_id: int) -> None:
    """Queue ``config.run_push_job`` once the surrounding transaction commits (the worker must see the rows).

    If the broker is unreachable the job stays pending and says why in its summary, instead of the request
    failing after the job was already recorded.
    """
    from fabric_ops.config.tasks import run_push_job

    def send() -> None:
        try:
            run_push_job.apply_async(args=[job_id], retry=False)
        except Exception as exc:  # kombu/redis errors vary by transport; the job row must say it was not queued
            logger.error("push job %s could not be queued: %s", job_id, exc)
            PushJob.objects.filter(pk=job_id).update(summary=f"not queued: broker unreachable ({exc})")

    transaction.on_commit(send)


class PushJobViewSet(FastListMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Create = request a push (operators: ``fabricconfig.add_pushjob`` + ``fabricconfig.run_pushjob``);
    approve = someone else with ``fabricconfig.approve_pushjob``. A job that needs no approval is queued at once;
    the answer is 202 + the job.
    """

    # A correlated count per answered job, not GROUP BY over every job's device rows before the page is cut.
    queryset = PushJob.objects.annotate(
        device_count=Coalesce(
            Subquery(DeviceJob.objects.filter(job=OuterRef("pk")).order_by().values("job").annotate(n=Count("*"))
                     .values("n")),
            0,
        )
    )  # fmt: skip
    serializer_class = serializers.PushJobSerializer
    filterset_class = filters.PushJobFilter
    ordering_fields = ["created_at", "status"]
    action_permissions = {
        "create": ["fabricconfig.add_pushjob", "fabricconfig.run_pushjob"],
        "approve": ["fabricconfig.approve_pushjob"],
    }

    def get_serializer_class(self) -> type:
        return serializers.PushJobCreateSerializer if self.action == "create" else serializers.PushJobSerializer

    def _answer(self, job: PushJob, code: int) -> Response:
        job = self.get_queryset().get(pk=job.pk)
        return Response(serializers.PushJobSerializer(job, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=serializers.PushJobCreateSerializer, responses={202: serializers.PushJobSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = serializers.PushJobCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        devices = data.pop("selected")
        for key in ("devices", "fabric", "roles"):
            data.pop(key, None)
        if getattr(settings, "FABRIC_OPS_PUSH_REQUIRE_APPROVAL", False) and not data["dry_run"]:
            data["require_approval"] = True  # two-person rule for every change that reaches a switch
        with transaction.atomic():
            job = create_job(devices, requested_by=request.user.get_username(), **data)
            job.user = request.user
            job.save(update_fields=["user"])
            changes = {
                "devices": [None, sorted(d.hostname for d in devices)],
                **{k: [None, v] for k, v in data.items()},
                "status": [None, job.status],
            }
            audit.record(request.user, "create", job, changes, request)
            if job.status == JobStatus.PENDING:
                enqueue_push(job.pk)
        logger.info("push job %s by %s: %d devices, %s", job.pk, job.requested_by, len(devices), job.status)
        return self._answer(job, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: serializers.PushJobSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve a job awaiting approval and queue it. The requester can never approve their own job."""
        with transaction.atomic():
            job = PushJob.objects.select_for_update().get(pk=self.get_object().pk)
            if job.requested_by == request.user.get_username() or (job.user_id and job.user_id == request.user.pk):
                raise PermissionDenied("the requester cannot approve their own push job")
            if job.status != JobStatus.AWAITING_APPROVAL:
                return Response({"detail": f"{job} is {job.status}, not awaiting approval"}, status=409)
            try:
                approve_job(job, request.user.get_username())
            except FabricOpsError as exc:
                return Response({"detail": str(exc)}, status=409)
            audit.record(
                request.user, "approve", job,
                {"status": [JobStatus.AWAITING_APPROVAL, job.status], "approved_by": [None, job.approved_by]}, request,
            )  # fmt: skip
            enqueue_push(job.pk)
        return self._answer(job, status.HTTP_202_ACCEPTED)


class DeviceJobViewSet(ReadOnly):
    queryset = DeviceJob.objects.select_related("device")
    serializer_class = serializers.DeviceJobSerializer
    filterset_class = filters.DeviceJobFilter


class ConfigBackupViewSet(ReadOnly):
    queryset = ConfigBackup.objects.select_related("device")
    serializer_class = serializers.ConfigBackupSerializer
    filterset_class = filters.ConfigBackupFilter
    ordering_fields = ["taken_at"]


class ComplianceResultViewSet(ReadOnly):
    queryset = ComplianceResult.objects.select_related("device")
    serializer_class = serializers.ComplianceResultSerializer
    filterset_class = filters.ComplianceResultFilter
    ordering_fields = ["checked_at"]


class AuditEntryViewSet(ReadOnly):
    """The audit log (operators and admins: ``web.view_auditentry``)."""

    queryset = AuditEntry.objects.all()
    serializer_class = serializers.AuditEntrySerializer
    filterset_class = filters.AuditEntryFilter
    ordering_fields = ["timestamp"]
