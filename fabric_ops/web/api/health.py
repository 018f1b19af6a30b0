"""/api/health/ (authenticated: what is up and what is not) and /api/health/live/ (anonymous, load balancers)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric_ops.web.health import platform_health


class HealthView(APIView):
    """Each component with ok/error and latency; 200 when all are ok, 503 when any is not."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT}, operation_id="health")
    def get(self, request: Request) -> Response:
        body = platform_health()
        return Response(body, status=200 if body["status"] == "ok" else 503)


class LiveView(APIView):
    """Liveness for load balancers: the web process answers. Says nothing else, so it needs no login."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        responses={200: inline_serializer("Live", {"status": serializers.CharField()})}, operation_id="health_live"
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
