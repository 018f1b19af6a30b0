"""Incidents, their alarms, remediation runs and their actions (fabric_ops.health): read, plus approving a run
that waits for a person (operators: ``health.change_remediationrun``). Approval executes the remediation, so it
is queued to a worker (``web.approve_remediation``) and the answer is 202.
"""

from __future__ import annotations

import logging

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fabric_ops.config.redaction import redact
from fabric_ops.health.choices import RunStatus
from fabric_ops.health.models import ActionRecord, Alarm, Incident, RemediationRun
from fabric_ops.web import audit

logger = logging.getLogger(__name__)


class IncidentSerializer(serializers.ModelSerializer):
    alarm_count = serializers.IntegerField(source="alarms.count", read_only=True)

    class Meta:
        model = Incident
        fields = "__all__"
        read_only_fields = [f.name for f in Incident._meta.fields]


class AlarmSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alarm
        fields = "__all__"
        read_only_fields = [f.name for f in Alarm._meta.fields]


class RemediationRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = RemediationRun
        fields = "__all__"
        read_only_fields = [f.name for f in RemediationRun._meta.fields]


class ActionRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActionRecord
        fields = "__all__"
        read_only_fields = [f.name for f in ActionRecord._meta.fields]

    def to_representation(self, instance: ActionRecord) -> dict:
        data = super().to_representation(instance)
        for name in ("diff", "result"):  # device texts: redacted like every other configuration text
            if data.get(name):
                data[name] = redact(data[name])
        return data


class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Incident.objects.all()
    serializer_class = IncidentSerializer
    filterset_fields = ["status", "kind", "severity", "scope_kind", "fabric", "device", "span", "link_id"]
    ordering_fields = ["detected_at", "severity", "status"]


class AlarmViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Alarm.objects.all()
    serializer_class = AlarmSerializer
    filterset_fields = ["incident", "kind", "device"]
    ordering_fields = ["raised_at", "last_seen_at"]


class RemediationRunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = RemediationRun.objects.all()
    serializer_class = RemediationRunSerializer
    filterset_fields = ["incident", "status", "playbook", "mode", "target_key"]
    ordering_fields = ["created_at", "finished_at"]
    action_permissions = {"approve": ["health.change_remediationrun"]}

    @extend_schema(request=None, responses={202: RemediationRunSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve a run awaiting approval; a worker executes it. 409 when it is not waiting."""
        from fabric_ops.web.tasks import approve_remediation

        run = self.get_object()
        if run.status != RunStatus.AWAITING_APPROVAL:
            return Response({"detail": f"{run} is {run.status}, not awaiting approval"}, status=409)
        username = request.user.get_username()
        # Nothing the worker reads is written here, so the task can go out at once (no on_commit needed); the
        # audit row is written only once the broker took it.
        try:
            approve_remediation.apply_async(args=[run.pk, username], retry=False)
        except Exception as exc:  # the broker's errors vary by transport
            logger.error("remediation %s approval could not be queued: %s", run.pk, exc)
            return Response({"detail": f"not queued: broker unreachable ({exc})"}, status=503)
        audit.record(request.user, "approve", run, {"approved_by": [None, username]}, request)
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)


class ActionRecordViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ActionRecord.objects.select_related("run")
    serializer_class = ActionRecordSerializer
    filterset_fields = ["run", "phase", "status", "action"]
