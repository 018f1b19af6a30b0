"""Fault injection: validation, records, each fault's effect on switch state, and automatic clearing."""

from __future__ import annotations

import pytest

from fabric_ops.errors import LabError
from fabric_ops.lab.api import Lab
from fabric_ops.lab.spec import spec_from_switches
from fabric_ops.lab.state import QosSettings
from fabric_ops.lab.synthetic import clos, dci_pair

PFC_ONLY = QosSettings(pfc_priorities=frozenset({3}), dscp_to_tc={26: 3})


@pytest.fixture
def lab():
    with Lab.start(clos(), serve=False, manual_clock=True, initialise=False) as running:
        running.advance(1.0)
        yield running


def port(lab: Lab, target: str):
    host, ifname = target.split(":", 1)
    return lab.switches[host].interfaces[ifname]


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("kind", "target", "params", "duration", "message"),
    [
        ("meteor-strike", "leaf1", {}, None, "unknown fault kind 'meteor-strike'"),
        ("link-down", "leaf9:Ethernet3/1", {}, None, "unknown switch 'leaf9'"),
        ("link-down", "leaf1:Ethernet99/1", {}, None, "has no interface 'Ethernet99/1'"),
        ("link-down", "link:424242", {}, None, "no link with id 424242"),
        ("link-down", "leaf1", {}, None, "expected switch:ifname"),
        ("link-down", "", {}, None, "a target is required"),
        ("link-flap", "leaf1:Ethernet3/1", {"period": "fast"}, None, "period='fast' is not a number"),
        ("link-flap", "leaf1:Ethernet3/1", {"period": "0"}, None, "period='0' is out of range"),
        ("link-flap", "leaf1:Ethernet3/1", {"perid": "2"}, None, "unknown parameter(s) perid (allowed: period)"),
        ("crc-errors", "leaf1:Ethernet3/1", {"rate": "2"}, None, "rate='2' is out of range"),
        ("pfc-storm", "leaf1:Ethernet3/1", {}, None, "port has no GPU NIC cabled to it"),
        ("pfc-storm", "host:gpu1-1:nic7", {}, None, "no GPU NIC 'nic7' on host 'gpu1-1'"),
        ("pfc-storm", "host:gpu1-1:nic0", {"priority": "3.5"}, None, "must be a whole number"),
        ("pfc-storm", "host:gpu1-1:nic0", {"priority": "8"}, None, "priority='8' is out of range"),
        ("incast", "host:gpu1-1:nic0", {"fan_in": "0"}, None, "fan_in='0' is out of range"),
        ("switch-down", "spine7", {}, None, "unknown switch 'spine7'"),
        ("dci-span-degradation", "span-x", {}, None, "unknown span 'span-x'"),
        ("link-down", "leaf1:Ethernet3/1", {}, "-5", "--for must be between 0 and 604800"),
        ("link-down", "leaf1:Ethernet3/1", {}, "soon", "--for 'soon' is not a number"),
    ],
)
def test_invalid_faults_are_rejected_with_a_clear_message(lab, kind, target, params, duration, message):
    with pytest.raises(LabError) as err:
        lab.inject(kind, target, duration=duration, **params)
    assert message in str(err.value)
    assert lab.status()["faults"] == []


def test_same_fault_twice_on_a_target_is_refused(lab):
    first = lab.inject("link-down", "leaf1:Ethernet3/1")
    with pytest.raises(LabError, match=f"fault {first['id']} \\(link-down\\) is already active on link:"):
        lab.inject("link-down", "spine1:Ethernet1/1")  # the other end of the same link


def test_unknown_and_repeated_clear(lab):
    with pytest.raises(LabError, match="unknown fault id 'f99'"):
        lab.clear("f99")
    record = lab.inject("link-down", "leaf1:Ethernet3/1")
    lab.clear(record["id"])
    with pytest.raises(LabError, match="already cleared"):
        lab.clear(record["id"])


def test_record_has_id_kind_target_params_and_timestamps(lab):
    wall_before = lab.engine.wall_ns()
    record = lab.inject("link-flap", "leaf1:Ethernet3/1", period="4")
    assert record["id"] == "f1"
    assert record["kind"] == "link-flap"
    assert record["target"].startswith("link:")
    assert record["params"] == {"period": 4.0}
    assert record["injected_at"] == wall_before
    assert record["cleared_at"] is None and record["active"]
    assert record["ports"] == ["leaf1:Ethernet3/1", "spine1:Ethernet1/1"]
    assert lab.inject("crc-errors", "spine1:Ethernet2/1")["ports"] == ["spine1:Ethernet2/1"]
    assert lab.inject("pfc-storm", "leaf2:Ethernet1/1")["ports"] == ["leaf2:Ethernet1/1", "host:gpu2-1:nic0"]
    assert lab.inject("switch-down", "spine2")["ports"] == []
    lab.advance(1.0)
    cleared = lab.clear("f1")[0]
    assert cleared["cleared_at"] - record["injected_at"] == 1_000_000_000
    assert cleared["cleared_by"] == "operator" and not cleared["active"]


def test_for_seconds_clears_automatically(lab):
    record = lab.inject("link-down", "leaf1:Ethernet3/1", duration=1.0)
    lab.advance(0.8)
    assert not port(lab, "leaf1:Ethernet3/1").oper_up
    lab.advance(0.4)
    status = {f["id"]: f for f in lab.status()["faults"]}
    assert status[record["id"]]["cleared_by"] == "timer"
    assert port(lab, "leaf1:Ethernet3/1").oper_up


def test_clear_all(lab):
    lab.inject("link-down", "leaf1:Ethernet3/1")
    lab.inject("crc-errors", "leaf2:Ethernet3/1")
    assert len(lab.clear(all=True)) == 2
    assert not any(f["active"] for f in lab.status()["faults"])


# ---------------------------------------------------------------- link faults
@pytest.mark.parametrize("target", ["leaf1:Ethernet3/1", "spine1:Ethernet1/1", "link:1", "1"])
def test_link_down_by_either_end_or_id(lab, target):
    link = lab.engine.link_by_port[("leaf1", "Ethernet3/1")]
    assert link.spec.id == 1
    lab.inject("link-down", target)
    a, b = port(lab, "leaf1:Ethernet3/1"), port(lab, "spine1:Ethernet1/1")
    assert not a.oper_up and not b.oper_up
    assert a.admin_up and b.admin_up  # the cable failed, not the configuration
    out = a.out_octets
    lab.advance(1.0)
    assert a.out_octets == out
    assert port(lab, "leaf1:Ethernet4/1").out_utilisation > 0.9  # ECMP moved everything to the other uplink


def test_link_flap_toggles_with_its_period(lab):
    iface = port(lab, "leaf1:Ethernet3/1")
    lab.inject("link-flap", "leaf1:Ethernet3/1", period=2)
    states = []
    for _ in range(8):
        lab.advance(0.5)
        states.append(iface.oper_up)
    assert states == [False, True, True, False, False, True, True, False]
    assert iface.carrier_transitions == 5


def test_host_link_by_nic_name(lab):
    lab.inject("link-down", "host:gpu2-2:nic0")
    assert not port(lab, "leaf2:Ethernet2/1").oper_up


def test_crc_errors_count_at_the_named_receiver_only(lab):
    lab.inject("crc-errors", "leaf1:Ethernet3/1", rate=0.01)
    named, other = port(lab, "leaf1:Ethernet3/1"), port(lab, "spine1:Ethernet1/1")
    lab.advance(2.0)
    assert named.in_fcs_errors > 0 and named.in_errors >= named.in_fcs_errors
    assert other.in_fcs_errors == 0
    lab.clear("f1")
    before = named.in_fcs_errors
    lab.advance(2.0)
    assert named.in_fcs_errors == before


def test_fec_degradation_ramps_pre_fec_ber(lab):
    iface = port(lab, "leaf1:Ethernet3/1")
    healthy_ber = iface.pre_fec_ber
    lab.inject("fec-degradation", "leaf1:Ethernet3/1", target_ber=1e-3, start_ber=1e-8, ramp_seconds=10)
    lab.advance(5.0)
    halfway = iface.pre_fec_ber
    assert 1e-6 < halfway < 3e-5  # log-linear: about 10^-5.5 at half the ramp (optics refresh every second)
    corrected = iface.fec_corrected_blocks
    lab.advance(6.0)
    assert 0.7e-3 < iface.pre_fec_ber < 1.5e-3
    assert iface.fec_corrected_blocks - corrected > 1e6
    assert iface.fec_uncorrectable_blocks > 0  # beyond the KP4 limit
    assert healthy_ber < 1e-7
    lab.clear("f1")
    lab.advance(1.0)
    assert iface.pre_fec_ber < 1e-7


def test_optic_decay_lowers_rx_power_until_loss_of_signal(lab):
    iface = port(lab, "leaf1:Ethernet3/1")
    start = min(lane.input_power_dbm for lane in iface.optics)
    lab.inject("optic-decay", "leaf1:Ethernet3/1", dbm_per_minute=60)
    lab.advance(3.0)
    after = min(lane.input_power_dbm for lane in iface.optics)
    assert start - after == pytest.approx(3.0, abs=0.4)
    assert iface.oper_up and iface.pre_fec_ber > 1e-8
    lab.advance(7.0)  # 10 dB down: below sensitivity (-8 dBm) minus the LOS margin (1 dB)
    assert not iface.oper_up and not port(lab, "spine1:Ethernet1/1").oper_up
    lab.clear("f1")
    lab.advance(1.5)
    assert iface.oper_up


def test_dci_span_degradation_hits_every_wavelength_on_the_span():
    switches = dci_pair(spans=("span-a", "span-b"))
    with Lab.start(spec_from_switches(switches), serve=False, manual_clock=True, initialise=False) as lab:
        lab.advance(1.0)
        ch1, ch2 = lab.switches["dci1"].channels[1], lab.switches["dci2"].channels[1]
        healthy = (ch1.osnr_db, ch1.q_value_db, ch1.pre_fec_ber)
        record = lab.inject("dci-span-degradation", "span-b", osnr_drop_db=5)
        assert record["ports"] == ["dci1:Ethernet1/1", "dci2:Ethernet1/1"]
        lab.advance(1.0)
        for ch in (ch1, ch2):
            assert ch.osnr_db == pytest.approx(healthy[0] - 5, abs=0.5)
            assert ch.q_value_db < healthy[1] - 4
            assert ch.pre_fec_ber > healthy[2] * 10
            assert ch.esnr_db == pytest.approx(ch.osnr_db - 4, abs=0.01)
        assert lab.switches["dci1"].interfaces["Ethernet1/1"].oper_up
        lab.inject("dci-span-degradation", "span-a", osnr_drop_db=10)  # loses frame
        lab.advance(1.5)
        assert not lab.switches["dci1"].interfaces["Ethernet1/1"].oper_up
        lab.clear(all=True)
        lab.advance(1.5)
        assert lab.switches["dci2"].interfaces["Ethernet1/1"].oper_up
        assert ch1.osnr_db == pytest.approx(healthy[0], abs=0.5)


# ------------------------------------------------------------- NIC-side faults
def test_pfc_storm_without_pfc_is_counted_but_ignored(lab):
    host_port = port(lab, "leaf1:Ethernet1/1")
    lab.inject("pfc-storm", "host:gpu1-1:nic0", priority=3)
    out = host_port.out_octets
    lab.advance(1.0)
    assert host_port.pfc_rx_pause[3] > 10_000
    assert host_port.out_octets - out > 0.4 * 400e9 / 8  # no lossless priority: the switch keeps sending


def test_pfc_storm_with_pfc_stops_the_port_and_spreads_pauses(lab):
    for switch in lab.switches.values():
        switch.apply_config_effects(PFC_ONLY, {})
    host_port = port(lab, "leaf1:Ethernet1/1")
    lab.inject("pfc-storm", "leaf1:Ethernet1/1")
    lab.advance(0.4)
    out = host_port.out_octets
    lab.advance(1.0)
    assert host_port.pfc_rx_pause[3] > 10_000
    assert host_port.out_octets - out < 0.01 * 400e9 / 8  # only background traffic still leaves
    assert port(lab, "leaf1:Ethernet3/1").pfc_tx_pause[3] > 0  # leaf pauses its uplinks
    assert port(lab, "spine1:Ethernet1/1").pfc_rx_pause[3] > 0
    assert sum(q.dropped_pkts for q in host_port.queues) == 0


def test_pfc_watchdog_drops_the_stormed_queue():
    qos = QosSettings(pfc_priorities=frozenset({3}), dscp_to_tc={26: 3}, pfc_watchdog=True, pfc_watchdog_timeout_ms=200)
    with Lab.start(clos(), serve=False, manual_clock=True, initialise=False) as lab:
        for switch in lab.switches.values():
            switch.apply_config_effects(qos, {})
        lab.inject("pfc-storm", "host:gpu1-1:nic0")
        lab.advance(1.0)
        host_port = port(lab, "leaf1:Ethernet1/1")
        assert host_port.pfc_watchdog_triggers == 1
        assert host_port.queues[3].dropped_pkts > 0
        uplink_pauses = port(lab, "leaf1:Ethernet3/1").pfc_tx_pause[3]
        lab.advance(1.0)
        assert port(lab, "leaf1:Ethernet3/1").pfc_tx_pause[3] == uplink_pauses  # no more spreading


def test_incast_congests_the_target_port(lab):
    host_port = port(lab, "leaf2:Ethernet1/1")
    lab.inject("incast", "leaf2:Ethernet1/1", fan_in=3)
    lab.advance(1.0)
    assert host_port.queues[0].dropped_pkts > 0
    assert host_port.out_utilisation > 0.95
    lab.clear("f1")
    lab.advance(0.4)
    drops = host_port.queues[0].dropped_pkts
    lab.advance(1.0)
    assert host_port.queues[0].dropped_pkts == drops


# -------------------------------------------------------------- switch faults
def test_switch_down_takes_its_links_down_at_the_peers(lab):
    spine = lab.switches["spine1"]
    lab.inject("switch-down", "spine1")
    assert not spine.alive
    for leaf in ("leaf1", "leaf2"):
        assert not port(lab, f"{leaf}:Ethernet3/1").oper_up
        assert port(lab, f"{leaf}:Ethernet4/1").oper_up
    with pytest.raises(LabError, match="already down"):
        lab.inject("switch-reboot", "spine1")
    lab.clear("f1")
    assert spine.alive
    lab.advance(0.2)
    assert port(lab, "leaf1:Ethernet3/1").oper_up


def test_switch_reboot_comes_back_after_down_seconds_with_fresh_counters():
    with Lab.start(clos(), serve=False, manual_clock=True) as lab:  # platform-initialised: reboot runs EOS's
        lab.advance(1.0)
        leaf = lab.switches["leaf1"]
        assert leaf.interfaces["Ethernet3/1"].out_octets > 0
        boot_time = leaf.boot_time
        lab.inject("switch-reboot", "leaf1", down_seconds=2)
        lab.advance(1.0)
        assert not leaf.alive
        assert not port(lab, "spine1:Ethernet1/1").oper_up
        lab.advance(1.2)
        assert leaf.alive and leaf.boot_time > boot_time
        record = lab.status()["faults"][0]
        assert record["cleared_by"] == "completed"
        iface = leaf.interfaces["Ethernet3/1"]
        assert iface.oper_up
        assert iface.out_octets < 400e9 / 8  # restarted from zero less than a second ago
