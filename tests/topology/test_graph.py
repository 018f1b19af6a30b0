"""Graph queries against small fabrics whose answers were worked out by hand (see factories.py)."""

from __future__ import annotations

import pytest

from fabric_ops.errors import TopologyError
from fabric_ops.topology.graph import BlastRadius, FabricGraph
from fabric_ops.topology.models import Device, Link, OpticalSpan

from .factories import three_tier, two_sites, two_tier

pytestmark = pytest.mark.django_db


def leaf(result: BlastRadius, hostname: str):
    return next(row for row in result.leaves if row.hostname == hostname)


def host(result: BlastRadius, name: str):
    return next(row for row in result.hosts if row.name == name)


# -- two-tier: 4 leaves x 2 spines, 400G links ------------------------------------------------------------------------


@pytest.fixture
def f2():
    built = two_tier("f2")
    return built, FabricGraph.load(["f2"], refresh=True)


def test_two_tier_paths_and_capacity(f2):
    _, graph = f2
    paths = graph.ecmp_paths("f2-leaf1", "f2-leaf4")
    assert (paths.count, paths.hops, paths.bottleneck_gbps, paths.min_link_gbps) == (2, 2, 800.0, 400.0)
    assert graph.uplink_capacity("f2-leaf1") == 800.0
    assert graph.uplink_capacity("f2-spine1") == 0.0  # top of a 2-tier fabric
    assert graph.bisection_bandwidth() == 1600.0
    assert graph.counts() == {
        "devices": 6,
        "links": 8,
        "links_carrying": 8,
        "gpu_hosts": 4,
        "gpu_nics": 8,
        "optical_spans": 0,
    }
    assert graph.role_counts() == {"leaf": 4, "spine": 2}


def test_blast_radius_of_one_link(f2):
    built, graph = f2
    link = built.links["f2-leaf1-f2-spine1"]
    result = graph.blast_radius(links=[link.pk])
    assert [row.hostname for row in result.leaves] == ["f2-leaf1"]
    row = leaf(result, "f2-leaf1")
    assert (row.before_gbps, row.after_gbps, row.lost_fraction, row.remaining_fraction) == (800.0, 400.0, 0.5, 0.5)
    assert result.min_remaining_uplink_fraction == 0.5
    assert result.capacity_lost_gbps == 400.0
    # h1 and h2 each have one of their two NICs on leaf1, which lost half its uplinks: 1/4 of the host.
    assert {(h.name, h.lost_fraction, h.nics_lost) for h in result.hosts} == {("f2-h1", 0.25, 0), ("f2-h2", 0.25, 0)}
    assert not result.partitioned
    assert not result.passes(0.75)
    assert result.removed_link_ids == (link.pk,)


def test_blast_radius_of_a_spine(f2):
    _, graph = f2
    result = graph.blast_radius(devices=["f2-spine1"])
    assert len(result.leaves) == 4
    assert all(row.remaining_fraction == 0.5 and not row.removed for row in result.leaves)
    assert result.capacity_lost_gbps == 1600.0
    assert {h.lost_fraction for h in result.hosts} == {0.5}
    assert result.partitions == ()
    assert result.min_remaining_uplink_fraction == 0.5


def test_leaf_losing_all_uplinks_is_partitioned(f2):
    built, graph = f2
    result = graph.blast_radius(links=[built.links["f2-leaf1-f2-spine1"].pk, built.links["f2-leaf1-f2-spine2"].pk])
    assert result.partitions == (("f2-leaf1",),)
    assert leaf(result, "f2-leaf1").partitioned
    assert result.min_remaining_uplink_fraction == 0.0
    assert host(result, "f2-h1").nics_lost == 1
    assert host(result, "f2-h1").lost_fraction == 0.5
    assert result.isolated_hosts == ()
    assert result.partitioned and not result.passes()


def test_removing_a_leaf_costs_its_host_nics(f2):
    _, graph = f2
    result = graph.blast_radius(devices=["f2-leaf1"])
    row = leaf(result, "f2-leaf1")
    assert row.removed and row.after_gbps == 0.0
    assert result.min_remaining_uplink_fraction == 1.0  # only surviving leaves count
    assert result.host_capacity_lost_gbps == 800.0
    assert {(h.name, h.lost_fraction, h.nics_lost) for h in result.hosts} == {("f2-h1", 0.5, 1), ("f2-h2", 0.5, 1)}
    assert result.partitions == ()
    # Removing both rails of h1 and h2 isolates them, and no switch is cut off.
    both = graph.blast_radius(devices=["f2-leaf1", "f2-leaf2"])
    assert both.isolated_hosts == ("f2-h1", "f2-h2")
    assert both.partitions == ()


def test_drained_and_down_links_carry_nothing(f2):
    built, _ = f2
    Link.objects.filter(pk=built.links["f2-leaf2-f2-spine1"].pk).update(state="drained")
    Link.objects.filter(pk=built.links["f2-leaf3-f2-spine1"].pk).update(state="down")
    graph = FabricGraph.load(["f2"])  # bulk update sends no signal: the fingerprint must notice
    assert graph.uplink_capacity("f2-leaf2") == 400.0
    assert graph.design_uplink_capacity("f2-leaf2") == 800.0
    assert graph.bisection_bandwidth() == 1200.0
    paths = graph.ecmp_paths("f2-leaf1", "f2-leaf2")
    assert (paths.count, paths.bottleneck_gbps) == (1, 400.0)
    # Draining an already drained link costs nothing.
    again = graph.blast_radius(links=[built.links["f2-leaf2-f2-spine1"].pk])
    assert again.leaves == () and again.capacity_lost_gbps == 0.0 and not again.partitioned
    # Its last live uplink: the leaf is cut off, measured against its 800G design capacity.
    last = graph.blast_radius(links=[built.links["f2-leaf2-f2-spine2"].pk])
    row = leaf(last, "f2-leaf2")
    assert (row.before_gbps, row.after_gbps, row.lost_fraction, row.partitioned) == (400.0, 0.0, 1.0, True)


def test_drained_device_carries_nothing(f2):
    Device.objects.filter(hostname="f2-spine2").update(lifecycle="drained")
    graph = FabricGraph.load(["f2"])
    assert graph.uplink_capacity("f2-leaf1") == 400.0
    assert graph.ecmp_paths("f2-leaf1", "f2-leaf3").count == 1
    result = graph.blast_radius(devices=["f2-spine1"])
    # The fabric shatters into four equal parts: none of them is "the rest", all are reported.
    assert result.partitions == (("f2-leaf1",), ("f2-leaf2",), ("f2-leaf3",), ("f2-leaf4",))
    assert all(row.partitioned for row in result.leaves)
    assert result.isolated_hosts == ("f2-h1", "f2-h2", "f2-h3", "f2-h4")


def test_host_whose_other_rail_is_already_down_is_isolated(f2):
    Device.objects.filter(hostname="f2-leaf2").update(lifecycle="maintenance")
    graph = FabricGraph.load(["f2"])
    result = graph.blast_radius(devices=["f2-leaf1"])
    assert result.isolated_hosts == ("f2-h1", "f2-h2")
    # Half of each host's NIC speed was already gone; this change takes the other half.
    assert {(h.name, h.lost_fraction, h.nics_lost) for h in result.hosts} == {("f2-h1", 0.5, 1), ("f2-h2", 0.5, 1)}


def test_unknown_names_raise_topology_error(f2):
    _, graph = f2
    with pytest.raises(TopologyError) as excinfo:
        graph.blast_radius(links=[999999], devices=["no-such-switch"], spans=["no-such-span"])
    message = str(excinfo.value)
    assert "link 999999" in message and "device no-such-switch" in message and "optical span no-such-span" in message
    with pytest.raises(TopologyError, match="devices must be a list"):
        graph.blast_radius(devices="f2-leaf1")
    with pytest.raises(TopologyError, match="nope"):
        graph.ecmp_paths("f2-leaf1", "nope")
    with pytest.raises(TopologyError, match="missing-fabric"):
        FabricGraph.load(["missing-fabric"])


def test_empty_request_is_empty_not_everything(f2):
    _, graph = f2
    result = graph.blast_radius(links=[], devices=[], spans=[])
    assert result == BlastRadius()
    assert result.empty and result.leaves == () and result.capacity_lost_gbps == 0.0
    assert result.passes()


def test_cache_reuses_and_invalidates(f2):
    built, graph = f2
    assert FabricGraph.load(["f2"]) is graph
    FabricGraph.invalidate()
    fresh = FabricGraph.load(["f2"])
    assert fresh is not graph
    assert FabricGraph.load(["f2"]) is fresh
    link = built.links["f2-leaf1-f2-spine1"]
    link.state = "down"
    link.save()
    assert FabricGraph.load(["f2"]) is not fresh


def test_max_age_skips_the_freshness_query(f2, django_assert_num_queries):
    built, graph = f2
    Link.objects.filter(pk=built.links["f2-leaf1-f2-spine1"].pk).update(state="down")
    with django_assert_num_queries(0):
        assert FabricGraph.load(["f2"], max_age=60) is graph  # confirmed moments ago: trusted without a query
    fresh = FabricGraph.load(["f2"])
    assert fresh is not graph and fresh.uplink_capacity("f2-leaf1") == 400.0


def test_networkx_view(f2):
    _, graph = f2
    g = graph.nx
    assert g.number_of_nodes() == 6 + 4
    assert g.number_of_edges() == 8 + 8
    assert g.nodes["f2-leaf3"]["role"] == "leaf"
    assert sum(1 for *_, d in g.edges(data=True) if d["kind"] == "nic") == 8


# -- three-tier: 2 pods x (2 leaves + 2 spines) under 2 superspines ---------------------------------------------------


@pytest.fixture
def f3():
    built = three_tier("f3")
    return built, FabricGraph.load(["f3"], refresh=True)


def test_three_tier_paths(f3):
    _, graph = f3
    local = graph.ecmp_paths("f3-p1-leaf1", "f3-p1-leaf2")
    assert (local.count, local.hops, local.bottleneck_gbps) == (2, 2, 800.0)
    remote = graph.ecmp_paths("f3-p1-leaf1", "f3-p2-leaf1")
    assert (remote.count, remote.hops, remote.bottleneck_gbps) == (8, 4, 800.0)
    assert graph.bisection_bandwidth() == 1600.0
    assert graph.uplink_capacity("f3-p1-spine1") == 800.0


def test_spine_losing_an_uplink_costs_its_leaves_proportionally(f3):
    built, graph = f3
    result = graph.blast_radius(links=[built.links["f3-p1-spine1-f3-ss1"].pk])
    assert sorted(row.hostname for row in result.leaves) == ["f3-p1-leaf1", "f3-p1-leaf2"]
    # Each leaf: 400G into a full spine + 400G into a half spine = 600 of 800.
    assert all(row.after_gbps == 600.0 and row.remaining_fraction == 0.75 for row in result.leaves)
    assert result.min_remaining_uplink_fraction == 0.75
    assert result.passes(0.75)
    assert host(result, "f3-p1-h").lost_fraction == 0.25


def test_superspine_removal(f3):
    _, graph = f3
    result = graph.blast_radius(devices=["f3-ss1"])
    assert len(result.leaves) == 4
    assert result.min_remaining_uplink_fraction == 0.5
    assert not result.partitioned


def test_spine_without_uplinks_is_capacity_loss_not_partition(f3):
    built, graph = f3
    links = [built.links["f3-p1-spine1-f3-ss1"].pk, built.links["f3-p1-spine1-f3-ss2"].pk]
    result = graph.blast_radius(links=links)
    assert result.min_remaining_uplink_fraction == 0.5
    assert result.partitions == ()  # the spine still reaches the other spine through its leaves


def test_pod_cut_off(f3):
    built, graph = f3
    links = [built.links[f"f3-p1-spine{s}-f3-ss{ss}"].pk for s in (1, 2) for ss in (1, 2)]
    result = graph.blast_radius(links=links)
    assert result.partitions == (("f3-p1-leaf1", "f3-p1-leaf2", "f3-p1-spine1", "f3-p1-spine2"),)
    assert result.isolated_hosts == ("f3-p1-h",)
    assert result.min_remaining_uplink_fraction == 0.0
    assert all(row.partitioned for row in result.leaves)


# -- two sites joined by DCI over optical spans -----------------------------------------------------------------------


@pytest.fixture
def dx():
    built = two_sites("dx")
    return built, FabricGraph.load(refresh=True)


def test_span_removes_the_dci_link_riding_it(dx):
    built, graph = dx
    result = graph.blast_radius(spans=["dx-north"])
    assert result.removed_link_ids == (built.links["dx-a-dci-dx-b-dci#1"].pk,)
    assert result.dci_capacity_lost_gbps == 400.0
    assert not result.partitioned
    assert result.leaves == ()


def test_both_spans_partition_the_sites(dx):
    _, graph = dx
    result = graph.blast_radius(spans=["dx-north", "dx-south"])
    assert result.site_partitions == ((("dx-a",), ("dx-b",)),)
    assert result.partitioned and not result.passes()
    # Inside each site nothing is cut off: the leaves keep their uplinks and hosts their NICs.
    assert result.partitions == () and result.isolated_hosts == () and result.leaves == ()
    assert result.dci_capacity_lost_gbps == 800.0


def test_dci_router_cut_off_from_its_site(dx):
    built, graph = dx
    links = [built.links["dx-a-spine-dx-a-dci#1"].pk, built.links["dx-a-spine-dx-a-dci#2"].pk]
    result = graph.blast_radius(links=links)
    assert result.partitions == (("dx-a-dci",),)
    # Its wavelengths are still lit, but they no longer join site a to anything.
    assert result.site_partitions == ((("dx-a",), ("dx-b",)),)
    assert result.dci_capacity_lost_gbps == 0.0


def test_span_already_down(dx):
    _, graph = dx
    OpticalSpan.objects.filter(name="dx-south").update(state="down")
    graph = FabricGraph.load()
    assert graph.blast_radius(spans=["dx-south"]).dci_capacity_lost_gbps == 0.0
    assert graph.blast_radius(spans=["dx-north"]).site_partitions == ((("dx-a",), ("dx-b",)),)


def test_dci_bisection_and_paths(dx):
    _, graph = dx
    # Leaf tier: 3 leaves x 800G / 2 = 1200; the DCI cut is 2 x 400G = 800.
    assert graph.bisection_bandwidth() == 800.0
    paths = graph.ecmp_paths("dx-a-leaf1", "dx-b-leaf1")
    # leaf -2-> spine -2-> dci -2-> dci -2-> spine -2-> leaf
    assert (paths.count, paths.hops, paths.bottleneck_gbps) == (32, 5, 800.0)


def test_networkx_view_carries_the_optical_layer(dx):
    built, graph = dx
    link = built.links["dx-a-dci-dx-b-dci#1"]
    edge = graph.nx.edges["dx-a-dci", "dx-b-dci", link.pk]
    assert (edge["kind"], edge["channel"], edge["spans"]) == ("dci", "dx-ch1", ("dx-north",))
    assert graph.nx.nodes["dx-b-leaf1"]["site"] == "dx-b"


def test_load_subset_of_fabrics(dx):
    graph = FabricGraph.load(["dx-fab-a"])
    assert sorted(graph.devices()) == ["dx-a-leaf1", "dx-a-leaf2", "dx-a-spine"]
    assert graph.counts()["gpu_hosts"] == 1
    with pytest.raises(TopologyError, match="dx-b-leaf1"):
        graph.blast_radius(devices=["dx-b-leaf1"])
    # The span's DCI links live in the backbone fabric: answering "no impact" would be a lie.
    with pytest.raises(
        TopologyError, match=r"optical span dx-north carries links of fabric\(s\) dx-dci: load them too"
    ):
        graph.blast_radius(spans=["dx-north"])
    with_dci = FabricGraph.load(["dx-fab-a", "dx-fab-b", "dx-dci"])
    assert with_dci.blast_radius(spans=["dx-north"]).dci_capacity_lost_gbps == 400.0


# -- incremental answers agree with a full recomputation on a generated Clos -------------------------------------------


def _reference(graph: FabricGraph, dead_links: set[int], dead_devices: set[str]):
    """Recompute from scratch: effective leaf capacities on a patched copy, partitions with networkx."""
    import copy

    import networkx as nx

    topo = copy.copy(graph.topology)
    dead_idx = {topo.dev_index[d] for d in dead_devices}
    topo.dev_active = [active and i not in dead_idx for i, active in enumerate(topo.dev_active)]
    topo.link_live = [
        live
        and topo.link_id[li] not in dead_links
        and topo.dev_active[topo.link_a[li]]
        and topo.dev_active[topo.link_b[li]]
        for li, live in enumerate(topo.link_live)
    ]
    topo.finish()
    after = {topo.dev_name[i]: topo.eff_cap[i] for i in range(topo.n_dev) if topo.dev_tier[i] == 1}
    switches = nx.Graph()
    switches.add_nodes_from(n for n, d in graph.nx.nodes(data=True) if d["kind"] == "device" and n not in dead_devices)
    switches.add_edges_from(
        (u, v)
        for u, v, key, d in graph.nx.edges(keys=True, data=True)
        if d["kind"] != "nic"
        and d["carrying"]
        and key not in dead_links
        and u not in dead_devices
        and v not in dead_devices
    )
    parts = sorted((sorted(c) for c in nx.connected_components(switches)), key=len, reverse=True)
    return after, parts


@pytest.mark.timeout(120)
def test_incremental_blast_radius_matches_full_recomputation():
    import random

    from .factories import bulk_clos

    bulk_clos("clos", gpus=512, radix=16)
    graph = FabricGraph.load(["clos"], refresh=True)
    assert graph.role_counts() == {"leaf": 64, "spine": 64, "superspine": 32}
    assert graph.counts()["links"] == 1024 and graph.counts()["gpu_nics"] == 512
    # Non-blocking: every leaf 8 x 400G up, bisection = half of 64 leaves' uplinks.
    assert set(graph.uplink_capacities().values()) == {3200.0}
    assert graph.bisection_bandwidth() == 64 * 3200 / 2
    nx_graph = graph.nx
    link_ids = sorted(k for *_, k, d in nx_graph.edges(keys=True, data=True) if d["kind"] != "nic")
    spines = graph.devices("spine")
    rng = random.Random(7)
    requests = [([rng.choice(link_ids)], []) for _ in range(20)]
    requests += [(rng.sample(link_ids, rng.randint(2, 40)), rng.sample(spines, rng.randint(0, 2))) for _ in range(20)]
    # Cut pod 0 off: every superspine uplink of its spines.
    pod0 = [f"clos-p0-spine{s}" for s in range(8)]
    up_of_pod0 = [k for u, v, k, d in nx_graph.edges(keys=True, data=True) if {u, v} & set(pod0) and "ss" in u + v]
    requests.append((up_of_pod0, []))
    requests.append(([], pod0))
    for links, devices in requests:
        result = graph.blast_radius(links=links, devices=devices)
        after, parts = _reference(graph, set(links), set(devices))
        reported = {row.hostname: row.after_gbps for row in result.leaves}
        for hostname, gbps in after.items():
            assert reported.get(hostname, graph.uplink_capacity(hostname, effective=True)) == pytest.approx(gbps)
        expected_pieces = [tuple(p) for p in parts[1:]] if len(parts) > 1 and len(parts[0]) > len(parts[1]) else []
        assert sorted(result.partitions) == sorted(expected_pieces), (links, devices)
    cut = graph.blast_radius(links=up_of_pod0)
    assert len(cut.partitions) == 1 and len(cut.partitions[0]) == 16  # 8 leaves + 8 spines
    assert len(cut.isolated_hosts) == 8  # one rail group of 8 hosts lives in pod 0


# -- management command -----------------------------------------------------------------------------------------------


def _run(*args: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("fabric", *args, stdout=out)
    return out.getvalue()


def test_fabric_show_command(f2):
    text = _run("show", "f2", "--from", "f2-leaf1", "--to", "f2-leaf3")
    assert "leaf 4, spine 2" in text
    assert "Bisection bandwidth: 1,600 Gbps" in text
    assert "ECMP f2-leaf1 -> f2-leaf3: 2 equal-cost paths of 2 hops, bottleneck 800 Gbps" in text
    assert "min 800 Gbps, median 800 Gbps, max 800 Gbps" in text
    assert "ECMP f2-leaf1 -> f2-leaf4: 2 equal-cost paths" in _run("show", "f2")


def test_show_samples_leaves_that_can_reach_each_other(f2):
    built, _ = f2
    Link.objects.filter(pk__in=[built.links["f2-leaf4-f2-spine1"].pk, built.links["f2-leaf4-f2-spine2"].pk]).update(
        state="down"
    )
    assert "ECMP f2-leaf1 -> f2-leaf3: 2 equal-cost paths" in _run("show", "f2")
    assert FabricGraph.load(["f2"]).ecmp_paths("f2-leaf1", "f2-leaf4").hops is None


def test_fabric_what_if_command(f2, f3):
    import json

    from django.core.management.base import CommandError

    built, _ = f2
    text = _run("what-if", "f2", "--link", str(built.links["f2-leaf1-f2-spine1"].pk))
    assert "f2-leaf1" in text and "50.0%" in text
    assert "Guardrail" in text and "FAIL" in text
    built3, _ = f3
    text = _run("what-if", "f3", "--link", str(built3.links["f3-p1-spine1-f3-ss1"].pk))
    assert "75.0%" in text and ": PASS" in text
    payload = json.loads(_run("what-if", "f3", "--device", "f3-ss1", "--json"))
    assert payload["min_remaining_uplink_fraction"] == 0.5 and payload["passes"] is False
    with pytest.raises(CommandError, match="device ghost"):
        _run("what-if", "f2", "--device", "ghost")
    assert "an empty change removes nothing" in _run("what-if", "f2")
