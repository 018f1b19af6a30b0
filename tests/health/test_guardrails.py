"""Guardrails on hand-checked fabrics: the blast radius comes from the real graph API over the ORM."""

from __future__ import annotations

import pytest

from fabric_ops.health import guardrails as g
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.graph.results import BlastRadius
from fabric_ops.topology.models import Fabric, Link, Pod, Site
from tests.topology.factories import Built, two_sites, two_tier

LIMITS = g.Limits()


def four_uplinks(name: str = "g4") -> Built:
    """2 leaves x 4 spines, one 400G link per pair: each leaf has 4 uplinks (1600G); host h on both leaves."""
    site = Site.objects.create(name=f"{name}-site", city="Austin")
    built = Built(Fabric.objects.create(name=name, kind="rail-optimized", site=site))
    pod = Pod.objects.create(fabric=built.fabric, name="pod1", index=1)
    for s in range(1, 5):
        built.device(f"{name}-spine{s}", "spine", pod=pod)
    for leaf in (1, 2):
        built.device(f"{name}-leaf{leaf}", "leaf", pod=pod)
        for s in range(1, 5):
            built.link(f"{name}-leaf{leaf}", f"{name}-spine{s}")
    built.host(f"{name}-h", [f"{name}-leaf1", f"{name}-leaf2"])
    return built


def verdict(fabrics, **request) -> g.Verdict:
    return g.evaluate(FabricGraph.load(fabrics, refresh=True).blast_radius(**request), LIMITS)


@pytest.mark.django_db
def test_first_fault_on_a_leaf_passes_and_the_second_on_the_same_leaf_is_refused():
    b = four_uplinks()
    first = b.links["g4-leaf1-g4-spine1"]
    ok = verdict(["g4"], links=[first.pk])
    assert ok.allowed, ok.reasons  # 3 of 4 uplinks = exactly 75 %
    assert ok.figures["min_remaining_uplink_fraction"] == 0.75

    Link.objects.filter(pk=first.pk).update(state="drained")  # the first remediation drained it
    second = verdict(["g4"], links=[b.links["g4-leaf1-g4-spine2"].pk])
    assert not second.allowed
    assert second.reasons == (
        "g4-leaf1 would keep 50% of its uplink capacity (800 of 1600 Gbps), below the 75% minimum",
    )
    other_leaf = verdict(["g4"], links=[b.links["g4-leaf2-g4-spine2"].pk])
    assert other_leaf.allowed  # the same fault on another leaf is fine


@pytest.mark.django_db
def test_a_leaf_cut_off_is_a_partition():
    b = two_tier()
    cut = verdict(["f2"], links=[b.links["f2-leaf1-f2-spine1"].pk, b.links["f2-leaf1-f2-spine2"].pk])
    assert not cut.allowed
    assert any(r.startswith("the fabric would partition: f2-leaf1") for r in cut.reasons), cut.reasons
    # a spine takes half of every leaf's uplinks: 50 % < 75 %
    spine = verdict(["f2"], devices=["f2-spine1"])
    assert not spine.allowed and "50%" in spine.reasons[0]


@pytest.mark.django_db
def test_dci_one_wavelength_moves_both_split_the_sites():
    b = two_sites()
    names = ["dx-fab-a", "dx-fab-b", "dx-dci"]
    assert verdict(names, spans=["dx-north"]).allowed
    both = verdict(names, spans=["dx-north", "dx-south"])
    assert not both.allowed
    assert any("sites would lose DCI connectivity" in r for r in both.reasons), both.reasons
    assert b.spans


def test_an_isolated_host_is_refused():
    br = BlastRadius(links=(1,), removed_link_ids=(1,), isolated_hosts=("h9",), max_host_lost_fraction=1.0)
    assert g.evaluate(br, LIMITS).reasons == ("GPU host(s) would be isolated: h9",)


def test_an_empty_request_is_refused_never_read_as_all():
    assert not g.evaluate(BlastRadius(), LIMITS).allowed


@pytest.mark.parametrize(
    ("links", "devices", "spans", "problem"),
    [
        ([], [], [], "names no target"),
        ([12], [], [], None),
        ([], ["*"], [], "wildcard"),
        ([], ["leaf*"], [], "wildcard"),
        ([], ["all"], [], "wildcard"),
        ([None], [], [], "wildcard"),
        ([], [""], [], "wildcard"),
        ([], [], ["sjc-lax-coastal"], None),
    ],
)
def test_target_problem(links, devices, spans, problem):
    found = g.target_problem(links, devices, spans)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("drained", "new", "allowed"),
    [({"pod1": 3}, {"pod1": 1}, True), ({"pod1": 4}, {"pod1": 1}, False), ({"pod2": 4}, {"pod1": 1}, True)],
)
def test_drain_cap_per_pod(drained, new, allowed):
    assert (not g.check_drain_caps(drained, new, LIMITS)) is allowed


@pytest.mark.parametrize(("recent", "allowed"), [(19, True), (20, False)])
def test_fabric_wide_rate_limit(recent, allowed):
    assert (not g.check_rate(recent, LIMITS)) is allowed


def test_limits_layer_settings_then_playbook():
    limits = g.Limits.build({"min_uplink_fraction": 0.5, "max_drained_per_pod": "2"}, {"min_uplink_fraction": 0.6})
    assert (limits.min_uplink_fraction, limits.max_drained_per_pod) == (0.6, 2)


# --- a BGP cost-out counts exactly like a shutdown --------------------------------------------------------------
def _verdict_for(action: str, link: Link, limits: dict | None = None):
    """What remediation's guardrail check says about ``action`` on ``link``, on the current source of truth."""
    from fabric_ops.health import remediation
    from fabric_ops.health.models import Incident
    from fabric_ops.health.playbooks import Action, Playbook, Verification
    from fabric_ops.health.topology import load_index

    index = load_index(max_age=0)
    book = Playbook("t", "t.yml:1", ("pre-fec-ber",), (Action(action),), guardrails=limits or {},
                    verification=Verification("link-utilisation", "<=", 0.01, 30))  # fmt: skip
    incident = Incident(kind="pre-fec-ber", scope_kind="link", link_id=link.pk)
    return remediation._guardrail_verdict(incident, book, remediation.plan(incident, book, index), index)


def _cost_out(link: Link) -> None:
    from fabric_ops.health import remediation
    from fabric_ops.health.topology import load_index

    remediation._port_overrides(remediation._cost_out_changes(list(load_index(max_age=0).link_ends[link.pk])),
                                 add=True)  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("first", ["drain-link", "cost-out-link"])
@pytest.mark.parametrize("second", ["drain-link", "cost-out-link"])
def test_cost_out_and_shutdown_count_the_same_against_the_leaf_minimum(first, second):
    from fabric_ops.health.remediation import costed_out_links
    from fabric_ops.health.topology import load_index

    b = four_uplinks()
    one, two = b.links["g4-leaf1-g4-spine1"], b.links["g4-leaf1-g4-spine2"]
    FabricGraph.invalidate()
    ok = _verdict_for(first, one)
    assert ok.allowed, ok.reasons  # 3 of 4 uplinks left: exactly 75 %
    assert ok.figures["min_remaining_uplink_fraction"] == 0.75 and ok.figures["capacity_lost_gbps"] == 400

    if first == "drain-link":
        Link.objects.filter(pk=one.pk).update(state="drained")
        FabricGraph.invalidate()
    else:
        _cost_out(one)  # the link stays "up" in the source of truth: only the port overrides say it is drained
        assert costed_out_links(load_index(max_age=0)) == {one.pk}
        assert Link.objects.get(pk=one.pk).state == "up"
    refused = _verdict_for(second, two)
    assert not refused.allowed
    assert refused.reasons == (
        "g4-leaf1 would keep 50% of its uplink capacity (800 of 1600 Gbps), below the 75% minimum",
    )
    assert _verdict_for(second, b.links["g4-leaf2-g4-spine2"]).allowed  # another leaf is fine


@pytest.mark.django_db
def test_cost_outs_count_against_the_per_pod_cap():
    b = four_uplinks()
    cap = {"max_drained_per_pod": 1}
    FabricGraph.invalidate()
    assert _verdict_for("cost-out-link", b.links["g4-leaf2-g4-spine2"], cap).allowed
    _cost_out(b.links["g4-leaf1-g4-spine1"])
    refused = _verdict_for("cost-out-link", b.links["g4-leaf2-g4-spine2"], cap)
    assert refused.reasons == ("pod g4/pod1 would have 2 drained links, above the cap of 1",)
