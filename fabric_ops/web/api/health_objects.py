"""Incidents, their alarms, remediation runs and their actions (fabric_ops.health), read-only.

Acknowledging and approving stay with the health app's own entry points (its approval runs the remediation,
which must go through a worker, not a web request); these endpoints let scripts and the UI read everything.
"""

from __future__ import annotations

from rest_framework import serializers, viewsets

from fabric_ops.config.redaction import redact
from fabric_ops.health.models import ActionRecord, Alarm, Incident, RemediationRun


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


class ActionRecordViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ActionRecord.objects.select_related("run")
    serializer_class = ActionRecordSerializer
    filterset_fields = ["run", "phase", "status", "action"]
