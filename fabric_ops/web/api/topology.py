"""Fabric-wide views: the node/edge graph the UI draws, and what-if (blast radius) analysis."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.http import Http404
from django.utils.decorators import method_decorator
from django.views.decorators.gzip import gzip_page
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Fabric, OpticalChannel
from fabric_ops.web.graphdata import EDGE_FIELDS, NODE_FIELDS, fabric_graph

__all__ = ["EDGE_FIELDS", "NODE_FIELDS", "FabricGraphView", "WhatIfView", "fabric_graph", "get_fabric"]
from fabric_ops.web.permissions import NamedPermissions

logger = logging.getLogger(__name__)

TOPOLOGY_READ = ("topology.view_device", "topology.view_link")


def get_fabric(name: str) -> Fabric:
    try:
        return Fabric.objects.get(name=name)
    except Fabric.DoesNotExist:
        raise Http404(f"no fabric named {name!r}") from None


GRAPH_RESPONSE = inline_serializer(
    "FabricGraph",
    {
        "fabric": serializers.CharField(),
        "kind": serializers.CharField(),
        "node_fields": serializers.ListField(child=serializers.CharField()),
        "nodes": serializers.ListField(child=serializers.ListField(child=serializers.JSONField())),
        "edge_fields": serializers.ListField(child=serializers.CharField()),
        "edges": serializers.ListField(child=serializers.ListField(child=serializers.JSONField())),
        "counts": serializers.DictField(child=serializers.IntegerField()),
    },
)


@method_decorator(gzip_page, name="dispatch")  # 8.6 MB of JSON at 4,192 switches is 0.7 MB gzipped; no secret in it
class FabricGraphView(APIView):
    """GET /api/topology/<fabric>/graph/: the fabric's switches and links for the topology renderer."""

    permission_classes = [NamedPermissions]
    required_permissions = TOPOLOGY_READ

    @extend_schema(responses={200: GRAPH_RESPONSE}, operation_id="topology_graph")
    def get(self, request: Request, fabric: str) -> Response:
        return Response(fabric_graph(get_fabric(fabric)))


class WhatIfRequest(serializers.Serializer):
    links = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list)
    devices = serializers.ListField(child=serializers.CharField(max_length=63), required=False, default=list)
    spans = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    min_uplink_fraction = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, default=0.75)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs["links"] or attrs["devices"] or attrs["spans"]):
            raise serializers.ValidationError("name links, devices or spans to remove; an empty request is never 'all'")
        return attrs


def fabrics_for(fabric: Fabric, spans: list[str]) -> list[str]:
    """The fabric, plus the fabrics at both ends of DCI links riding the named spans (needed to judge them)."""
    names = {fabric.name}
    if spans:
        rows = OpticalChannel.objects.filter(spans__name__in=spans).values_list(
            "link__a_interface__device__fabric__name", "link__b_interface__device__fabric__name"
        )
        for a, b in rows:
            names.update((a, b))
    return sorted(names)


class WhatIfView(APIView):
    """POST /api/topology/<fabric>/what-if/: what removing links, switches or optical spans would cost.

    Read-only analysis (it changes nothing, so it is not audited and viewers may run it).
    """

    permission_classes = [NamedPermissions]
    required_permissions = TOPOLOGY_READ

    @extend_schema(
        request=WhatIfRequest,
        responses={200: OpenApiTypes.OBJECT},
        parameters=[OpenApiParameter("fabric", str, OpenApiParameter.PATH)],
        operation_id="topology_what_if",
    )
    def post(self, request: Request, fabric: str) -> Response:
        fab = get_fabric(fabric)
        incoming = WhatIfRequest(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        graph = FabricGraph.load(fabrics_for(fab, data["spans"]))
        result = graph.blast_radius(links=data["links"], devices=data["devices"], spans=data["spans"])
        threshold = data["min_uplink_fraction"]
        body = dataclasses.asdict(result)
        body.update(
            fabric=fab.name,
            fabrics_loaded=list(graph.topology.fabric_names),
            partitioned=result.partitioned,
            min_uplink_fraction=threshold,
            passes=result.passes(threshold),
        )
        return Response(body)
