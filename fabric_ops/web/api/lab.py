"""The virtual lab through the API: status, inject and clear, proxied to the running lab's control channel.

Answers 503 with the reason when no lab is running (or it does not answer), 400 when the lab refuses a fault.
"""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric_ops.lab.control import LabClient
from fabric_ops.web import audit
from fabric_ops.web.permissions import NamedPermissions

logger = logging.getLogger(__name__)

LAB_TIMEOUT_S = 10.0


def lab_client() -> LabClient:
    """A client for the running lab (var/lab/control.json); raises LabUnavailable when there is none."""
    return LabClient(timeout=LAB_TIMEOUT_S)


class InjectRequest(serializers.Serializer):
    kind = serializers.CharField(max_length=40, help_text="fault kind, e.g. link-down, pfc-storm, optical-decay")
    target = serializers.CharField(max_length=200, help_text="e.g. leaf1:Ethernet49/1, spine3, host:gpu1:nic3")
    duration = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0.1,
                                      help_text="seconds; empty keeps the fault until cleared")  # fmt: skip
    params = serializers.DictField(required=False, default=dict)


class ClearRequest(serializers.Serializer):
    id = serializers.CharField(required=False, max_length=64)
    all = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("id")) == bool(attrs.get("all")):
            raise serializers.ValidationError("give either a fault id or all=true")
        return attrs


class LabStatusView(APIView):
    """GET /api/lab/: the running lab's status (switches, links, faults); 503 when no lab runs."""

    permission_classes = [NamedPermissions]
    required_permissions = ("web.view_lab",)

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT}, operation_id="lab_status")
    def get(self, request: Request) -> Response:
        return Response(lab_client().status())


class LabInjectView(APIView):
    """POST /api/lab/inject/: inject a fault (operators: ``web.inject_fault``); 201 + the fault record."""

    permission_classes = [NamedPermissions]
    required_permissions = ("web.view_lab", "web.inject_fault")

    @extend_schema(request=InjectRequest, responses={201: OpenApiTypes.OBJECT}, operation_id="lab_inject")
    def post(self, request: Request) -> Response:
        incoming = InjectRequest(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        fault = lab_client().inject(data["kind"], data["target"], duration=data["duration"], **data["params"])
        audit.record(
            request.user, "inject", None, {k: [None, v] for k, v in data.items()}, request,
            object_type="lab.fault", object_id=fault.get("id"), object_repr=f"{data['kind']} on {data['target']}",
        )  # fmt: skip
        return Response(fault, status=status.HTTP_201_CREATED)


class LabClearView(APIView):
    """POST /api/lab/clear/ ``{"id": "..."}`` or ``{"all": true}``: clear faults; answers the cleared records."""

    permission_classes = [NamedPermissions]
    required_permissions = ("web.view_lab", "web.inject_fault")

    @extend_schema(request=ClearRequest, responses={200: OpenApiTypes.OBJECT}, operation_id="lab_clear")
    def post(self, request: Request) -> Response:
        incoming = ClearRequest(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        client = lab_client()
        cleared = client.clear(all=True) if data.get("all") else client.clear(data["id"])
        for fault in cleared:
            audit.record(
                request.user, "clear", None, {"active": [True, False]}, request, object_type="lab.fault",
                object_id=fault.get("id"), object_repr=f"{fault.get('kind')} on {fault.get('target')}",
            )  # fmt: skip
        return Response(cleared)
