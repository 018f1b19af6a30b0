"""Physics of the virtual lab: counters, ECMP, queues under each RoCE configuration, optics.

The lab runs without sockets on a manual clock, so every number is deterministic.
"""

from __future__ import annotations

import pytest

from fabric_ops.errors import LabError
from fabric_ops.lab.api import Lab
from fabric_ops.lab.physics import (
    PFC_XOFF_BYTES,
    QUEUE_LIMIT_BYTES,
    queue_outcome,
    wred_probability,
)
from fabric_ops.lab.routing import Job
from fabric_ops.lab.state import EcnProfile, QosSettings
from fabric_ops.lab.synthetic import clos

ECN = EcnProfile(min_kbytes=150, max_kbytes=1500, max_probability=0.1)
ROCE = QosSettings(pfc_priorities=frozenset({3}), ecn={3: ECN}, dscp_to_tc={26: 3})


def make_lab(**kwargs) -> Lab:
    """2 leaves x 2 spines, 2 single-NIC hosts per leaf; bare switches (no platform config)."""
    shape = {"leaves": 2, "spines": 2, "hosts_per_leaf": 2}
    shape.update(kwargs.pop("shape", {}))
    return Lab.start(clos(**shape), serve=False, manual_clock=True, initialise=False, **kwargs)


def set_qos(lab: Lab, qos: QosSettings) -> None:
    for switch in lab.switches.values():
        switch.apply_config_effects(qos, {})


def snapshot(lab: Lab, host: str, ifname: str) -> dict:
    iface = lab.switches[host].interfaces[ifname]
    return {
        "out": iface.out_octets,
        "in": iface.in_octets,
        "drops": sum(q.dropped_pkts for q in iface.queues),
        "marks": sum(q.ecn_marked_pkts for q in iface.queues),
        "tx_pause": sum(iface.pfc_tx_pause),
        "rx_pause": sum(iface.pfc_rx_pause),
    }


def delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in before}


def fabric_totals(lab: Lab) -> dict:
    totals = {"drops": 0, "marks": 0, "tx_pause": 0, "rx_pause": 0}
    for switch in lab.switches.values():
        for iface in switch.interfaces.values():
            totals["drops"] += sum(q.dropped_pkts for q in iface.queues)
            totals["marks"] += sum(q.ecn_marked_pkts for q in iface.queues)
            totals["tx_pause"] += sum(iface.pfc_tx_pause)
            totals["rx_pause"] += sum(iface.pfc_rx_pause)
    return totals


def test_counters_agree_at_both_ends_of_every_link():
    with make_lab(shape={"leaves": 3, "spines": 2, "hosts_per_leaf": 3}) as lab:
        lab.advance(3.0)
        checked = 0
        for link in lab.engine.links:
            if link.b_if is None:
                continue
            assert link.a_if.out_octets == link.b_if.in_octets > 0
            assert link.b_if.out_octets == link.a_if.in_octets > 0
            assert link.a_if.out_unicast_pkts == link.b_if.in_unicast_pkts
            checked += 1
        assert checked == 6


def test_job_load_sets_host_port_utilisation():
    with make_lab(jobs=[Job("train", load=0.7)]) as lab:
        lab.advance(2.0)
        iface = lab.switches["leaf1"].interfaces["Ethernet1/1"]
        assert iface.in_utilisation == pytest.approx(0.7, abs=0.05)
        assert iface.out_utilisation == pytest.approx(0.7, abs=0.05)


def test_shut_link_carries_nothing_and_ecmp_moves_its_load():
    with make_lab() as lab:
        leaf = lab.switches["leaf1"]
        up1, up2 = "Ethernet3/1", "Ethernet4/1"  # to spine1 and spine2
        lab.advance(1.0)
        b1, b2 = snapshot(lab, "leaf1", up1), snapshot(lab, "leaf1", up2)
        lab.advance(2.0)
        before_1 = delta(b1, snapshot(lab, "leaf1", up1))["out"]
        before_2 = delta(b2, snapshot(lab, "leaf1", up2))["out"]
        assert before_1 > 0 and before_2 > 0

        leaf.apply_config_effects(leaf.qos, {up1: False})
        spine_end = lab.switches["spine1"].interfaces["Ethernet1/1"]
        assert not leaf.interfaces[up1].oper_up and not spine_end.oper_up  # at once, not at the next tick
        assert leaf.interfaces[up1].carrier_transitions == 1 and spine_end.carrier_transitions == 1
        lab.advance(0.2)
        a1, a2 = snapshot(lab, "leaf1", up1), snapshot(lab, "leaf1", up2)
        lab.advance(2.0)
        after_1 = delta(a1, snapshot(lab, "leaf1", up1))["out"]
        after_2 = delta(a2, snapshot(lab, "leaf1", up2))["out"]
        assert after_1 == 0 and delta(a1, snapshot(lab, "leaf1", up1))["in"] == 0
        assert after_2 == pytest.approx(before_1 + before_2, rel=0.05)

        leaf.apply_config_effects(leaf.qos, {up1: True})
        lab.advance(1.0)
        assert leaf.interfaces[up1].oper_up and leaf.interfaces[up1].carrier_transitions == 2
        assert delta(a1, snapshot(lab, "leaf1", up1))["out"] > 0


@pytest.mark.parametrize(
    ("name", "qos", "expect"),
    [
        ("no RoCE config", QosSettings(), {"drops": True, "marks": False, "pauses": False}),
        ("PFC without DSCP map", QosSettings(pfc_priorities=frozenset({3})), {"drops": True, "pauses": False}),
        (
            "PFC on the RoCE class",
            QosSettings(pfc_priorities=frozenset({3}), dscp_to_tc={26: 3}),
            {"drops": False, "marks": False, "pauses": True},
        ),
        (
            "ECN only",
            QosSettings(ecn={3: ECN}, dscp_to_tc={26: 3}),
            {"drops": False, "marks": True, "pauses": False},
        ),
        ("PFC and ECN", ROCE, {"drops": False, "marks": True}),
        (
            "PFC on another priority",
            QosSettings(pfc_priorities=frozenset({4}), dscp_to_tc={26: 3}),
            {"drops": True, "pauses": False},
        ),
    ],
)
def test_incast_outcome_follows_running_qos(name, qos, expect):
    with make_lab() as lab:
        set_qos(lab, qos)
        lab.inject("incast", "host:gpu1-1:nic0", fan_in=3, load=1.0)
        lab.advance(2.0)
        totals = fabric_totals(lab)
        if "drops" in expect:
            assert (totals["drops"] > 0) == expect["drops"], (name, totals)
        if "marks" in expect:
            assert (totals["marks"] > 0) == expect["marks"], (name, totals)
        if "pauses" in expect:
            assert (totals["tx_pause"] > 0) == expect["pauses"], (name, totals)
            assert totals["tx_pause"] == totals["rx_pause"] + _tx_pause_towards_nics(lab), (name, totals)


def _tx_pause_towards_nics(lab: Lab) -> int:
    """Pause frames a leaf sends to a GPU NIC have no switch receiver to count them."""
    return sum(
        sum(iface.pfc_tx_pause)
        for switch in lab.switches.values()
        for iface in switch.interfaces.values()
        if iface.kind == "host"
    )


def test_pushing_roce_config_turns_drops_into_pauses_and_marks():
    with make_lab() as lab:
        lab.inject("incast", "host:gpu1-1:nic0", fan_in=3)
        lab.advance(2.0)
        port = "Ethernet1/1"
        before = snapshot(lab, "leaf1", port)
        lab.advance(2.0)
        lossy = delta(before, snapshot(lab, "leaf1", port))
        assert lossy["drops"] > 0 and lossy["marks"] == 0
        assert lab.switches["leaf1"].interfaces[port].queues[0].depth_bytes == QUEUE_LIMIT_BYTES

        set_qos(lab, ROCE)
        lab.advance(0.2)
        before = snapshot(lab, "leaf1", port)
        totals_before = fabric_totals(lab)
        lab.advance(2.0)
        lossless = delta(before, snapshot(lab, "leaf1", port))
        assert lossless["drops"] == 0 and lossless["marks"] > 0
        assert fabric_totals(lab)["drops"] == totals_before["drops"]


def test_pfc_pauses_are_counted_at_both_ends_of_a_fabric_link():
    with make_lab() as lab:
        set_qos(lab, QosSettings(pfc_priorities=frozenset({3}), dscp_to_tc={26: 3}))
        lab.inject("incast", "host:gpu1-1:nic0", fan_in=3)
        lab.advance(2.0)
        for link in lab.engine.links:
            if link.b_if is not None:
                assert link.a_if.pfc_tx_pause == link.b_if.pfc_rx_pause
                assert link.b_if.pfc_tx_pause == link.a_if.pfc_rx_pause
        uplinks = [lab.switches["leaf1"].interfaces[n] for n in ("Ethernet3/1", "Ethernet4/1")]
        assert all(i.pfc_tx_pause[3] > 0 for i in uplinks)
        assert all(sum(q.dropped_pkts for q in i.queues) == 0 for i in uplinks)


@pytest.mark.parametrize(
    ("depth_kb", "expected"),
    [(0, 0.0), (149, 0.0), (150, 0.0), (825, 0.05), (1499, 0.0999), (1500, 1.0), (5000, 1.0)],
)
def test_wred_probability(depth_kb, expected):
    assert wred_probability(depth_kb * 1024, ECN) == pytest.approx(expected, abs=1e-3)


def test_wred_without_profile_never_marks():
    assert wred_probability(QUEUE_LIMIT_BYTES, None) == 0.0


@pytest.mark.parametrize(
    ("u", "lossless", "ecn", "throttle", "survive", "paused"),
    [
        (0.5, False, None, 1.0, 1.0, False),
        (2.0, False, None, 1.0, 0.5, False),
        (2.0, True, None, 0.5, 1.0, True),
        (2.0, False, ECN, 0.5, 1.0, False),
        (8.0, False, ECN, 0.25, 0.5, False),  # beyond what DCQCN absorbs: drops again
        (8.0, True, ECN, 0.125, 1.0, True),
    ],
)
def test_queue_outcome_table(u, lossless, ecn, throttle, survive, paused):
    out = queue_outcome(u, lossless, ecn)
    assert out.throttle == pytest.approx(throttle)
    assert out.survive == pytest.approx(survive)
    assert (out.pause > 0) == paused
    if lossless and u > 1 and not ecn:
        assert out.depth == PFC_XOFF_BYTES


def test_same_seed_same_counters():
    results = []
    for _ in range(2):
        with make_lab(seed=7) as lab:
            lab.inject("incast", "host:gpu2-1:nic0", fan_in=2)
            lab.advance(3.0)
            iface = lab.switches["leaf2"].interfaces["Ethernet1/1"]
            results.append((iface.out_octets, iface.queues[0].dropped_pkts, iface.optics[0].input_power_dbm))
    assert results[0] == results[1]


def test_unused_ports_are_down_and_silent():
    with make_lab(shape={"ports": 8}) as lab:
        lab.advance(1.0)
        spare = lab.switches["leaf1"].interfaces["Ethernet8/1"]
        assert spare.peer is None and not spare.oper_up
        assert spare.out_octets == spare.in_octets == 0


def test_optics_gauges_and_system_gauges_move():
    with make_lab() as lab:
        lab.advance(2.0)
        leaf = lab.switches["leaf1"]
        iface = leaf.interfaces["Ethernet3/1"]
        assert len(iface.optics) == 4
        assert all(-3.0 < lane.input_power_dbm < 0.0 for lane in iface.optics)
        assert 1e-10 < iface.pre_fec_ber < 1e-7
        assert iface.fec_corrected_blocks > 0 and iface.fec_uncorrectable_blocks == 0
        assert 0 < leaf.cpu_utilisation < 100
        assert 0 < leaf.memory_used_bytes < leaf.memory_total_bytes


def test_set_jobs_changes_the_load_and_validates():
    with make_lab() as lab:
        lab.advance(1.0)
        port = lab.switches["leaf1"].interfaces["Ethernet1/1"]
        assert port.out_utilisation == pytest.approx(0.5, abs=0.05)
        lab.set_jobs([{"name": "idle", "load": 0.0}])
        lab.advance(0.4)
        assert port.out_utilisation < 0.01  # background only
        lab.set_jobs([{"name": "a2a", "load": 0.9, "pattern": "all-to-all", "hosts": ["gpu1-1", "gpu2-1"]}])
        lab.advance(0.4)
        assert port.out_utilisation == pytest.approx(0.9, abs=0.05)
        assert lab.switches["leaf1"].interfaces["Ethernet2/1"].out_utilisation < 0.01  # gpu1-2 is not in the job
        for bad, message in [
            ({"load": 2}, "load 2 is out of range"),
            ({"pattern": "tree"}, "pattern 'tree' is not one of"),
            ({"hosts": ["gpu9-9"]}, "unknown GPU host"),
            ({"lod": 0.5}, "unknown field"),
        ]:
            with pytest.raises(LabError, match=message):
                lab.set_jobs([bad])
        assert lab.jobs()[0]["name"] == "a2a"


def rail_optimized() -> list:
    """Two rails: host h has nic0 on leaf1 and nic1 on leaf2 (one leaf per rail, as in a rail-optimized pod)."""
    switches = clos(leaves=2, spines=2, hosts_per_leaf=2)
    leaf2 = next(s for s in switches if s.hostname == "leaf2")
    for h, name in enumerate(("Ethernet1/1", "Ethernet2/1")):
        leaf2.interfaces[name].peer = (f"host:gpu1-{h + 1}", "nic1")
    return switches


@pytest.mark.parametrize(("cross_rail", "uplinks_busy"), [(False, False), (True, True)])
def test_same_rail_traffic_stays_on_the_leaf_cross_rail_crosses_spines(cross_rail, uplinks_busy):
    job = Job("train", load=0.6, cross_rail=cross_rail)
    with Lab.start(rail_optimized(), serve=False, manual_clock=True, initialise=False, jobs=[job]) as lab:
        lab.advance(1.0)
        leaf1 = lab.switches["leaf1"]
        assert leaf1.interfaces["Ethernet1/1"].out_utilisation == pytest.approx(0.6, abs=0.05)
        uplink_load = sum(leaf1.interfaces[n].out_utilisation for n in ("Ethernet3/1", "Ethernet4/1"))
        assert (uplink_load > 0.5) == uplinks_busy, uplink_load


def _uplink_out(lab: Lab, seconds: float, ports: tuple[tuple[str, str], ...]) -> list[int]:
    before = [snapshot(lab, h, p) for h, p in ports]
    lab.advance(seconds)
    return [delta(b, snapshot(lab, h, p))["out"] + delta(b, snapshot(lab, h, p))["in"] for b, (h, p) in
            zip(before, ports, strict=True)]  # fmt: skip


def test_bgp_cost_out_moves_traffic_off_a_link_that_stays_up_and_undoing_it_brings_it_back():
    from dataclasses import replace

    with make_lab() as lab:
        leaf, spine = lab.switches["leaf1"], lab.switches["spine1"]
        up1, up2, spine_port = "Ethernet3/1", "Ethernet4/1", "Ethernet1/1"  # leaf1 -> spine1, spine2
        lab.advance(1.0)
        idle = 2 * 2.0 * 400e9 * 0.002 / 8 * 1.5  # both directions' background for 2 s, with margin
        before = _uplink_out(lab, 2.0, (("leaf1", up1), ("leaf1", up2)))
        assert before[0] > 10 * idle and before[1] > 10 * idle

        # Both ends prepend towards each other (what the cost-out action configures).
        leaf.apply_config_effects(replace(leaf.qos, bgp_prepend={up1: 3}), {})
        spine.apply_config_effects(replace(spine.qos, bgp_prepend={spine_port: 3}), {})
        lab.advance(0.4)
        after = _uplink_out(lab, 2.0, (("leaf1", up1), ("leaf1", up2)))
        assert leaf.interfaces[up1].oper_up and spine.interfaces[spine_port].oper_up
        assert leaf.interfaces[up1].carrier_transitions == 0  # drained without a flap
        assert 0 < after[0] < idle  # only background (BGP, LLDP) still crosses it
        assert after[1] == pytest.approx(before[0] + before[1], rel=0.1)

        leaf.apply_config_effects(replace(leaf.qos, bgp_prepend={}), {})
        spine.apply_config_effects(replace(spine.qos, bgp_prepend={}), {})
        lab.advance(0.4)
        restored = _uplink_out(lab, 2.0, (("leaf1", up1), ("leaf1", up2)))
        assert restored[0] == pytest.approx(before[0], rel=0.1)


def test_one_end_cost_out_moves_only_the_traffic_towards_it():
    from dataclasses import replace

    with make_lab() as lab:
        leaf = lab.switches["leaf1"]
        up1 = "Ethernet3/1"
        lab.advance(1.0)
        leaf.apply_config_effects(replace(leaf.qos, bgp_prepend={up1: 2}), {})  # leaf1 prepends towards spine1
        lab.advance(0.4)
        b = snapshot(lab, "leaf1", up1)
        lab.advance(2.0)
        d = delta(b, snapshot(lab, "leaf1", up1))
        # Other leaves avoid spine1 to reach leaf1: nothing comes in but background; leaf1 still sends on it.
        assert d["in"] < 2.0 * 400e9 * 0.002 / 8 * 1.5 < d["out"] / 10


def test_cost_out_of_the_only_path_keeps_carrying():
    from dataclasses import replace

    with make_lab(shape={"spines": 1}) as lab:
        leaf, spine = lab.switches["leaf1"], lab.switches["spine1"]
        leaf.apply_config_effects(replace(leaf.qos, bgp_prepend={"Ethernet3/1": 3}), {})
        spine.apply_config_effects(replace(spine.qos, bgp_prepend={"Ethernet1/1": 3}), {})
        lab.advance(0.4)
        b = snapshot(lab, "leaf1", "Ethernet3/1")
        lab.advance(2.0)
        assert delta(b, snapshot(lab, "leaf1", "Ethernet3/1"))["out"] > 2.0 * 400e9 * 0.1 / 8  # prepending is no drain


def test_pfc_disabled_on_a_storming_port_ignores_the_storm_and_stops_the_spreading():
    from dataclasses import replace

    qos = QosSettings(pfc_priorities=frozenset({3}), dscp_to_tc={26: 3})
    with make_lab() as lab:
        set_qos(lab, qos)
        leaf = lab.switches["leaf1"]
        host_port, uplink = leaf.interfaces["Ethernet1/1"], leaf.interfaces["Ethernet3/1"]
        lab.inject("pfc-storm", "leaf1:Ethernet1/1")
        lab.advance(1.0)
        out = host_port.out_octets
        lab.advance(1.0)
        assert host_port.out_octets - out < 0.01 * 400e9 / 8  # paused: only background leaves
        assert uplink.pfc_tx_pause[3] > 0  # and the pause spreads to the uplinks

        leaf.apply_config_effects(replace(qos, pfc_disabled={"Ethernet1/1": frozenset({3})}), {})
        lab.advance(0.4)
        out, spread, received = host_port.out_octets, uplink.pfc_tx_pause[3], host_port.pfc_rx_pause[3]
        lab.advance(1.0)
        assert host_port.out_octets - out > 0.2 * 400e9 / 8  # the port sends again, ignoring the pauses
        assert uplink.pfc_tx_pause[3] == spread  # nothing spreads any more
        assert host_port.pfc_rx_pause[3] > received  # the NIC still storms; the frames are still counted

        leaf.apply_config_effects(qos, {})  # PFC back on the port while the storm lasts: paused again
        lab.advance(0.4)
        out = host_port.out_octets
        lab.advance(1.0)
        assert host_port.out_octets - out < 0.01 * 400e9 / 8


def test_pfc_disabled_port_drops_where_it_used_to_pause():
    from dataclasses import replace

    qos = QosSettings(pfc_priorities=frozenset({3}), dscp_to_tc={26: 3})
    with make_lab() as lab:
        set_qos(lab, qos)
        leaf2 = lab.switches["leaf2"]
        target = leaf2.interfaces["Ethernet1/1"]
        lab.inject("incast", "leaf2:Ethernet1/1", fan_in=3)
        lab.advance(1.0)
        assert target.queues[3].dropped_pkts == 0  # lossless: it pauses instead
        leaf2.apply_config_effects(replace(qos, pfc_disabled={"Ethernet1/1": frozenset({3})}), {})
        lab.advance(1.0)
        assert target.queues[3].dropped_pkts > 0
