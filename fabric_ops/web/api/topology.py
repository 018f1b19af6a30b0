"""Fabric-wide views: the node/edge graph the UI draws, and what-if (blast radius) analysis."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fabric_ops.topology.choices import Lifecycle, LinkState, PodKind
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Device, Fabric, Link, OpticalChannel
from fabric_ops.web.permissions import NamedPermissions

logger = logging.getLogger(__name__)

TOPOLOGY_READ = ("topology.view_device", "topology.view_link")
NODE_FIELDS = ["name", "role", "fabric", "site", "pod", "plane", "lifecycle", "external"]
EDGE_FIELDS = ["id", "a", "b", "kind", "capacity_gbps", "state", "live"]
# Literal id lists beyond this size go to the database as a subquery instead.
MAX_LITERAL_IDS = 20000


def get_fabric(name: str) -> Fabric:
    try:
        return Fabric.objects.get(name=name)
    except Fabric.DoesNotExist:
        raise Http404(f"no fabric named {name!r}") from None


def fabric_graph(fabric: Fabric) -> dict[str, Any]:
    """Nodes and edges of one fabric plus the far ends of its links into other fabrics (DCI), column-wise.

    ``nodes`` rows follow ``node_fields``; ``edges`` rows follow ``edge_fields`` with ``a``/``b`` as indexes into
    ``nodes``. ``live`` is what the graph analysis calls carrying traffic: link up, both switches active and every
    optical span under it up. A few ``values_list`` queries, no model instances: thousands of switches and
    hundreds of thousands of links answer in well under a second.
    """
    columns = ("id", "hostname", "role", "fabric__name", "site__name", "pod__name", "pod__kind", "lifecycle")
    own = list(Device.objects.filter(fabric=fabric).order_by("id").values_list(*columns))
    own_ids = [row[0] for row in own]
    ids: Any = own_ids if len(own_ids) <= MAX_LITERAL_IDS else Device.objects.filter(fabric=fabric).values("id")
    link_columns = ("id", "a_interface__device_id", "b_interface__device_id", "kind", "capacity_gbps", "state")
    by_id: dict[int, tuple] = {}
    for side in ("a_interface__device_id__in", "b_interface__device_id__in"):
        for row in Link.objects.filter(**{side: ids}).values_list(*link_columns):
            by_id[row[0]] = row
    links = [by_id[k] for k in sorted(by_id)]
    index = {row[0]: i for i, row in enumerate(own)}
    far_ids = sorted({end for row in links for end in row[1:3] if end not in index})
    far = list(Device.objects.filter(id__in=far_ids).order_by("id").values_list(*columns)) if far_ids else []
    nodes = []
    active = []
    for external, rows in ((False, own), (True, far)):
        for dev_id, hostname, role, fab, site, pod, pod_kind, lifecycle in rows:
            index.setdefault(dev_id, len(nodes))
            is_plane = pod_kind == PodKind.PLANE
            nodes.append([hostname, role, fab, site, None if is_plane else pod, pod if is_plane else None,
                          lifecycle, external])  # fmt: skip
            active.append(lifecycle == Lifecycle.ACTIVE)
    spans_down = set(
        OpticalChannel.objects.filter(link_id__in=[r[0] for r in links if r[3] == "dci"])
        .filter(spans__state__in=[s for s in LinkState.values if s != LinkState.UP])
        .values_list("link_id", flat=True)
    )
    edges = []
    for link_id, a_dev, b_dev, kind, capacity, state in links:
        a, b = index[a_dev], index[b_dev]
        live = state == LinkState.UP and active[a] and active[b] and link_id not in spans_down
        edges.append([link_id, a, b, kind, capacity, state, live])
    return {
        "fabric": fabric.name,
        "kind": fabric.kind,
        "node_fields": NODE_FIELDS,
        "nodes": nodes,
        "edge_fields": EDGE_FIELDS,
        "edges": edges,
        "counts": {"nodes": len(nodes), "external_nodes": len(far), "edges": len(edges)},
    }


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
