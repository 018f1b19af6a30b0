"""REST endpoints of the alerting app: silences (list, create, expire) and alert groups (list).

Permissions are Django model permissions (view/add/change), the same classes the rest of the API uses; every
change is written to the audit log. Acknowledge/resolve endpoints live in views.py (they share the signed link).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from fabric_ops.errors import FabricOpsError

from . import clock
from .acknowledgement import record_audit
from .matchers import parse_all
from .models import AlertGroup, Silence
from .views import CanHandleAlerts, GroupSerializer

try:  # the web app's permission class (model permissions incl. view_); plain DRF's when web is not installed
    from fabric_ops.web.permissions import ModelPermissions as _Perms
except ImportError:  # pragma: no cover - web is part of the product; keep this app importable on its own
    from rest_framework.permissions import DjangoModelPermissions as _Perms


class SilenceSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = ["id", "kind", "matchers", "starts_at", "ends_at", "created_by", "comment", "created_at",
                  "expired_early_at", "active"]  # fmt: skip
        read_only_fields = ["created_by", "created_at", "expired_early_at"]

    def get_active(self, obj: Silence) -> bool:
        return obj.active_at(clock.now())

    def validate_matchers(self, value: Any) -> list:
        if not isinstance(value, list) or not value:
            raise serializers.ValidationError('a non-empty list of matchers, e.g. ["device=leaf1"]')
        try:
            parse_all(value)
        except (FabricOpsError, KeyError, TypeError) as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["ends_at"] <= attrs["starts_at"]:
            raise serializers.ValidationError({"ends_at": "must be after starts_at"})
        if not attrs.get("comment", "").strip():
            raise serializers.ValidationError({"comment": "say why (who reads it at 3 am needs to know)"})
        return attrs


class SilenceList(generics.ListCreateAPIView):
    queryset = Silence.objects.all()
    serializer_class = SilenceSerializer
    permission_classes = [_Perms]

    def perform_create(self, serializer: SilenceSerializer) -> None:
        silence = serializer.save(created_by=self.request.user.get_username())
        changes = {"matchers": [None, silence.matchers], "ends_at": [None, silence.ends_at.isoformat()]}
        record_audit(self.request.user, "create", silence, self.request, "api", changes)


@extend_schema(request=None, responses=SilenceSerializer)
@api_view(["POST"])
@permission_classes([_Perms])
def expire_silence(request: Request, pk: int) -> Response:
    silence = Silence.objects.filter(pk=pk).first()
    if silence is None:
        return Response({"detail": f"silence {pk} not found"}, status=404)
    now = clock.now()
    if silence.active_at(now) or silence.starts_at > now:
        silence.expired_early_at = now
        silence.save(update_fields=["expired_early_at"])
        record_audit(request.user, "expire", silence, request, "api", {"expired_early_at": [None, now.isoformat()]})
    return Response(SilenceSerializer(silence).data)


expire_silence.cls.queryset = Silence.objects.all()  # lets the model-permission class find the model


class GroupList(generics.ListAPIView):
    serializer_class = GroupSerializer
    permission_classes = [CanHandleAlerts]

    def get_queryset(self) -> Any:
        states = self.request.query_params.get("state")
        qs = AlertGroup.objects.all()
        return qs.filter(state__in=states.split(",")) if states else qs.exclude(state="closed")
