"""What-if and the graph endpoint, checked against the graph analysis and the rows they come from."""

from __future__ import annotations

import dataclasses

import pytest

from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.models import Device, Link
from fabric_ops.web.models import AuditEntry

pytestmark = pytest.mark.timeout(60)


def test_what_if_matches_the_graph_analysis(clients, fabric) -> None:
    link = fabric.links["dx-a-leaf1-dx-a-spine#1"]
    answer = clients["viewer"].post(
        "/api/topology/dx-fab-a/what-if/", {"links": [link.pk], "min_uplink_fraction": 0.4}, format="json"
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    expected = dataclasses.asdict(FabricGraph.load(["dx-fab-a"]).blast_radius(links=[link.pk]))
    assert body["removed_link_ids"] == [link.pk]
    assert body["leaves"] == [dict(leaf) for leaf in expected["leaves"]]
    assert body["leaves"][0]["hostname"] == "dx-a-leaf1"
    assert body["leaves"][0]["remaining_fraction"] == pytest.approx(0.5)
    assert (body["passes"], body["partitioned"], body["min_uplink_fraction"]) == (True, False, 0.4)
    strict = clients["viewer"].post("/api/topology/dx-fab-a/what-if/", {"links": [link.pk]}, format="json").json()
    assert strict["passes"] is False, "half the uplinks fails the default 75% guardrail"
    assert AuditEntry.objects.count() == 0, "analysis changes nothing and is not audited"


def test_what_if_spine_partitions_the_site(clients, fabric) -> None:
    body = clients["viewer"].post("/api/topology/dx-fab-a/what-if/", {"devices": ["dx-a-spine"]}, format="json").json()
    assert body["partitioned"] is True
    assert body["passes"] is False
    assert "dx-a-h" in body["isolated_hosts"]


def test_what_if_span_loads_the_fabrics_under_it(clients, fabric) -> None:
    body = clients["viewer"].post("/api/topology/dx-fab-a/what-if/", {"spans": ["dx-north"]}, format="json").json()
    assert set(body["fabrics_loaded"]) == {"dx-fab-a", "dx-dci"}
    assert body["dci_capacity_lost_gbps"] == 400.0
    assert body["site_partitions"] == [], "the south span still joins the sites"
    both = (
        clients["viewer"]
        .post("/api/topology/dx-fab-a/what-if/", {"spans": ["dx-north", "dx-south"]}, format="json")
        .json()
    )
    assert both["site_partitions"] and both["partitioned"] is True


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, "never 'all'"),
        ({"links": [], "devices": [], "spans": []}, 400, "never 'all'"),
        ({"devices": ["ghost"]}, 400, "ghost"),
        ({"links": [987654]}, 400, "987654"),
        ({"links": ["x"]}, 400, "valid integer"),
    ],
)
def test_what_if_refuses_bad_requests(clients, fabric, body, status, text) -> None:
    answer = clients["viewer"].post("/api/topology/dx-fab-a/what-if/", body, format="json")
    assert answer.status_code == status
    assert text in answer.content.decode()


def test_unknown_fabric_is_404(clients, fabric) -> None:
    assert clients["viewer"].post("/api/topology/nope/what-if/", {"links": [1]}, format="json").status_code == 404
    assert clients["viewer"].get("/api/topology/nope/graph/").status_code == 404


def test_graph_nodes_edges_and_dci_far_ends(clients, fabric) -> None:
    fabric.links["dx-a-leaf2-dx-a-spine#1"].state = "down"
    fabric.links["dx-a-leaf2-dx-a-spine#1"].save()
    body = clients["viewer"].get("/api/topology/dx-fab-a/graph/").json()
    nodes = [dict(zip(body["node_fields"], row, strict=True)) for row in body["nodes"]]
    edges = [dict(zip(body["edge_fields"], row, strict=True)) for row in body["edges"]]
    own = {n["name"] for n in nodes if not n["external"]}
    assert own == set(Device.objects.filter(fabric__name="dx-fab-a").values_list("hostname", flat=True))
    assert {n["name"] for n in nodes if n["external"]} == {"dx-a-dci"}, "the spine's DCI router is drawn as a far end"
    assert len(edges) == Link.objects.filter(a_interface__device__fabric__name="dx-fab-a").count()
    by_id = {e["id"]: e for e in edges}
    down = by_id[fabric.links["dx-a-leaf2-dx-a-spine#1"].pk]
    assert (down["state"], down["live"]) == ("down", False)
    up = by_id[fabric.links["dx-a-leaf1-dx-a-spine#1"].pk]
    assert up["live"] is True
    assert {nodes[up["a"]]["name"], nodes[up["b"]]["name"]} == {"dx-a-leaf1", "dx-a-spine"}
    assert body["counts"] == {"nodes": len(nodes), "external_nodes": 1, "edges": len(edges)}


def test_graph_dci_liveness_follows_the_spans(clients, fabric) -> None:
    span = fabric.spans["north"]
    span.state = "down"
    span.save()
    body = clients["viewer"].get("/api/topology/dx-dci/graph/").json()
    edges = [dict(zip(body["edge_fields"], row, strict=True)) for row in body["edges"]]
    dci = {e["id"]: e for e in edges if e["kind"] == "dci"}
    north = fabric.links["dx-a-dci-dx-b-dci#1"].pk
    south = fabric.links["dx-a-dci-dx-b-dci#2"].pk
    assert (dci[north]["state"], dci[north]["live"]) == ("up", False), "a link over a down span carries nothing"
    assert dci[south]["live"] is True


def test_graph_query_count_does_not_grow_with_the_fabric(clients, fabric, django_assert_max_num_queries) -> None:
    with django_assert_max_num_queries(20):  # cold: fingerprint, structure (devices, links, far ends), state
        clients["viewer"].get("/api/topology/dx-fab-a/graph/")
    with django_assert_max_num_queries(12):  # warm: fingerprint and the state overlay only
        clients["viewer"].get("/api/topology/dx-fab-a/graph/")


def test_device_drain_is_audited_with_before_and_after(clients, fabric) -> None:
    leaf = fabric.devices["dx-a-leaf1"]
    answer = clients["operator"].patch(f"/api/devices/{leaf.pk}/", {"lifecycle": "drained"}, format="json")
    assert answer.status_code == 200
    entry = AuditEntry.objects.get()
    assert entry.changes == {"lifecycle": ["active", "drained"]}
    assert (entry.object_type, entry.object_id, entry.object_repr) == ("topology.device", str(leaf.pk), "dx-a-leaf1")
    what_if = clients["viewer"].post("/api/topology/dx-fab-a/what-if/", {"devices": ["dx-a-leaf1"]}, format="json")
    assert what_if.json()["capacity_lost_gbps"] == 0.0, "a drained leaf already carries nothing"


def test_graph_state_follows_bulk_updates_and_structure_follows_recabling(clients, fabric) -> None:
    """The structure is cached; state is read on every call, even when it changed without model signals."""
    from fabric_ops.web import graphdata

    def graph() -> tuple[dict, dict]:
        body = clients["viewer"].get("/api/topology/dx-fab-a/graph/").json()
        nodes = {row[0]: row for row in body["nodes"]}
        return {e[0]: e for e in body["edges"]}, nodes

    edges, _ = graph()
    link = fabric.links["dx-a-leaf1-dx-a-spine#2"]
    assert edges[link.pk][5:] == ["up", True]
    Link.objects.filter(pk=link.pk).update(state="drained")  # no signal, like a worker's bulk update
    Device.objects.filter(hostname="dx-a-leaf2").update(lifecycle="maintenance")
    edges, nodes = graph()
    assert edges[link.pk][5:] == ["drained", False]
    assert nodes["dx-a-leaf2"][6] == "maintenance"
    leaf2_links = [lk for key, lk in fabric.links.items() if key.startswith("dx-a-leaf2-")]
    for lk in leaf2_links:
        assert edges[lk.pk][6] is False, "a link of a switch in maintenance carries nothing"
    Link.objects.filter(pk=link.pk).update(state="up")
    Device.objects.filter(hostname="dx-a-leaf2").update(lifecycle="active")
    assert graph()[0][link.pk][5:] == ["up", True]

    graphdata.invalidate()
    before = len(graph()[0])
    fabric.link("dx-a-leaf1", "dx-a-spine", n=3)
    assert len(graph()[0]) == before + 1, "re-cabling reaches the cached structure"


def test_graph_is_gzipped_when_asked(clients, fabric) -> None:
    import gzip
    import json

    plain = clients["viewer"].get("/api/topology/dx-fab-a/graph/")
    packed = clients["viewer"].get("/api/topology/dx-fab-a/graph/", headers={"Accept-Encoding": "gzip"})
    assert packed["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(packed.content)) == plain.json()
