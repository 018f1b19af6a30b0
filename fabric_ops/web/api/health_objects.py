"""Incidents, their alarms, remediation runs and their actions (fabric_ops.health): read, plus what a person
does about them (``fabric_ops.web.incident_actions``): acknowledge / resolve an incident
(``health.change_incident``), approve / reject / roll back a run (``health.change_remediationrun``). Approval and
rollback push configuration, so they are queued to a worker and the answer is 202.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from fabric_ops.config.redaction import redact
from fabric_ops.health.models import ActionRecord, Alarm, Incident, RemediationRun
from fabric_ops.web import incident_actions
from fabric_ops.web.models.audit import AuditEntry

API = AuditEntry.Source.API

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


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=incident_actions.NOTE_MAX)


class ResolveSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=incident_actions.NOTE_MAX, help_text="How it was resolved (required)")


def _act(serializer: type, call: Callable[[], Any], code: int = 200) -> Response:
    """Run one incident action for the API: 409 when the state does not allow it, 503 when not queued."""
    try:
        obj = call()
    except incident_actions.ActionRefused as exc:
        return Response({"detail": str(exc)}, status=409)
    except incident_actions.NotQueued as exc:
        return Response({"detail": str(exc)}, status=503)
    except ValueError as exc:
        return Response({"note": [str(exc)]}, status=400)
    return Response(serializer(obj).data, status=code)


class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Incident.objects.all()
    serializer_class = IncidentSerializer
    filterset_fields = {
        **{name: ["exact"] for name in ("status", "kind", "severity", "scope_kind", "fabric", "device", "span",
                                        "link_id", "acknowledged_by")},
        "acknowledged_at": ["isnull"],  # ?acknowledged_at__isnull=true: nobody owns it yet
    }  # fmt: skip
    ordering_fields = ["detected_at", "severity", "status"]
    action_permissions = {
        "acknowledge": ["health.view_incident", "health.change_incident"],
        "resolve": ["health.view_incident", "health.change_incident"],
    }

    @extend_schema(request=None, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Take ownership: who and when; the incident's alert groups stop escalating. 409 if resolved or
        already acknowledged."""
        incident = self.get_object()
        return _act(
            IncidentSerializer, lambda: incident_actions.acknowledge(incident.pk, request.user, request, source=API)
        )

    @extend_schema(request=ResolveSerializer, responses={200: IncidentSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Resolve by hand with a note. 409 while a run acts on it or a drain it made is still in place; runs
        waiting for approval are rejected with it."""
        incident = self.get_object()
        body = ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data["note"]
        return _act(
            IncidentSerializer,
            lambda: incident_actions.resolve(incident.pk, request.user, note, request, source=API),
        )


class AlarmViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Alarm.objects.all()
    serializer_class = AlarmSerializer
    filterset_fields = ["incident", "kind", "device"]
    ordering_fields = ["raised_at", "last_seen_at"]


RUN_ACTION_PERMS = ["health.view_remediationrun", "health.change_remediationrun"]


class RemediationRunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = RemediationRun.objects.all()
    serializer_class = RemediationRunSerializer
    filterset_fields = ["incident", "status", "playbook", "mode", "target_key"]
    ordering_fields = ["created_at", "finished_at"]
    action_permissions = {"approve": RUN_ACTION_PERMS, "reject": RUN_ACTION_PERMS, "rollback": RUN_ACTION_PERMS}

    @extend_schema(request=None, responses={202: RemediationRunSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """Approve a run awaiting approval; a worker executes it. 409 when it is not waiting."""
        run = self.get_object()
        return _act(
            RemediationRunSerializer,
            lambda: incident_actions.approve(run.pk, request.user, request, source=API),
            status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=NoteSerializer, responses={200: RemediationRunSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """Decline a run awaiting approval (status refused, rejected_by); the playbook cools down on the target."""
        run = self.get_object()
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        note = body.validated_data.get("note", "")
        return _act(
            RemediationRunSerializer,
            lambda: incident_actions.reject(run.pk, request.user, note, request, source=API),
        )

    @extend_schema(request=None, responses={202: RemediationRunSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        """Undo a verified drain through the restore path on a worker (links up, push, verify). 409 unless a
        drain of this run is in place."""
        run = self.get_object()
        return _act(
            RemediationRunSerializer,
            lambda: incident_actions.rollback(run.pk, request.user, request, source=API),
            status.HTTP_202_ACCEPTED,
        )


class ActionRecordViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ActionRecord.objects.select_related("run")
    serializer_class = ActionRecordSerializer
    filterset_fields = ["run", "phase", "status", "action"]
