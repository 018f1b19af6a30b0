"""Our NAPALM huawei_vrp driver against the emulated CloudEngine over real SSH, validated with NAPALM's models."""

from __future__ import annotations

import time

import pytest
from napalm.base import models
from napalm.base.exceptions import CommitError, ConnectAuthError, ConnectionException, MergeConfigException
from napalm.base.test.helpers import test_model as matches_model

from fabric_ops.devices.connection import driver_class
from fabric_ops.devices.credentials import Credential
from fabric_ops.devices.drivers.huawei_vrp import HuaweiVRPDriver
from fabric_ops.lab import huawei_vrp
from fabric_ops.lab.state import make_switch
from fabric_ops.telemetry.influxd import free_port

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]


PORT = free_port("127.11.1.1")  # kernel-picked: parallel runs of this file (CI and a developer) never collide
CREDENTIAL = Credential("netops", "driver-pass")

# The RoCE example of docs/lab-huawei-vrp.md, kept here so the documented grammar stays accepted.
ROCE = """\
dcb pfc
 priority 3
 priority 3 deadlock-detect time 10
#
dcb pfc deadlock-detect interval 10
#
drop-profile roce-ecn
 color green buffer-size low-limit 153600 high-limit 1536000 discard-percentage 20
#
interface 400GE1/0/1
 mtu 9216
 trust dscp
 dcb pfc enable mode manual
 qos queue 3 wred roce-ecn
 qos queue 3 ecn
 qos pq 6 to 7
#
"""


@pytest.fixture(scope="module")
def lab():
    leaf = make_switch("leaf7", "huawei_vrp", "127.11.1.1", ssh_port=PORT)
    leaf.model, leaf.serial, leaf.os_version = "CE9860-4C-EI", "2102353169DMK7000042", "V300R023C00"
    leaf.interfaces["400GE1/0/1"].address = "10.1.0.1/31"
    leaf.interfaces["400GE1/0/1"].peer = ("spine7", "400GE1/0/3")
    spare = make_switch("leaf8", "huawei_vrp", "127.11.1.2", ssh_port=PORT)
    server = huawei_vrp.serve([leaf, spare], CREDENTIAL)
    yield leaf
    server.stop()


@pytest.fixture
def switch(lab):
    lab.alive = True
    for iface in lab.interfaces.values():
        iface.description, iface.mtu, iface.admin_up = "", 1500, True
    huawei_vrp.initialise(lab)
    return lab


@pytest.fixture
def driver(switch):
    device = HuaweiVRPDriver(
        switch.mgmt_address, CREDENTIAL.username, CREDENTIAL.password, timeout=10, optional_args={"port": PORT}
    )
    device.open()
    yield device
    device.close()


def running(driver) -> str:
    return driver.get_config(retrieve="running")["running"]


def body(config: str) -> list[str]:
    """Configuration lines without the timestamp comments and section separators."""
    return [line for line in config.splitlines() if not line.startswith("!") and line.strip() not in ("#", "")]


def test_device_layer_picks_this_driver():
    assert driver_class("huawei_vrp") is HuaweiVRPDriver


def test_getters_match_napalm_models(driver, switch):
    switch.interfaces["400GE1/0/1"].in_octets = 987654
    switch.interfaces["400GE1/0/1"].out_unicast_pkts = 321
    switch.interfaces["400GE1/0/2"].in_errors = 5
    assert driver.is_alive() == {"is_alive": True}

    facts = driver.get_facts()
    assert matches_model(models.FactsDict, facts)
    assert facts["hostname"] == "leaf7" and facts["vendor"] == "Huawei"
    assert facts["model"] == "CE9860-4C-EI" and facts["serial_number"] == "2102353169DMK7000042"
    assert "V300R023C00" in facts["os_version"]
    assert "400GE1/0/4" in facts["interface_list"]

    interfaces = driver.get_interfaces()
    for data in interfaces.values():
        assert matches_model(models.InterfaceDict, data)
    assert interfaces["400GE1/0/1"]["is_up"] and interfaces["400GE1/0/1"]["speed"] == 400000.0
    assert interfaces["400GE1/0/1"]["mac_address"].count(":") == 5

    counters = driver.get_interfaces_counters()
    for data in counters.values():
        assert matches_model(models.InterfaceCounterDict, data)
    assert counters["400GE1/0/1"]["rx_octets"] == 987654
    assert counters["400GE1/0/1"]["tx_unicast_packets"] == 321
    assert counters["400GE1/0/2"]["rx_errors"] == 5

    lldp = driver.get_lldp_neighbors()
    assert lldp == {"400GE1/0/1": [{"hostname": "spine7", "port": "400GE1/0/3"}]}
    for neighbours in lldp.values():
        assert all(matches_model(models.LLDPNeighborDict, n) for n in neighbours)
    detail = driver.get_lldp_neighbors_detail()
    assert all(matches_model(models.LLDPNeighborDetailDict, n) for n in detail["400GE1/0/1"])
    assert detail["400GE1/0/1"][0]["remote_system_name"] == "spine7"

    config = driver.get_config()
    assert matches_model(models.ConfigDict, config)
    assert "sysname leaf7" in config["running"] and "sysname leaf7" in config["startup"]
    assert config["candidate"] == ""

    switch.interfaces["400GE1/0/1"].optics[2].input_power_dbm = -7.5
    optics = driver.get_optics()
    assert set(optics) == set(switch.interfaces)
    for data in optics.values():  # the checks of napalm's own test_get_optics (nested TypedDicts)
        for channel in data["physical_channels"]["channel"]:
            assert isinstance(channel["index"], int) and len(channel) == 2
            for field in ("input_power", "output_power", "laser_bias_current"):
                assert matches_model(models.OpticsStateDict, channel["state"][field])
    lanes = optics["400GE1/0/1"]["physical_channels"]["channel"]
    assert len(lanes) == 8 and lanes[2]["state"]["input_power"]["instant"] == -7.5

    output = driver.cli(["display clock", "display version"])
    assert "+00:00" in output["display clock"] and "CE9860-4C-EI" in output["display version"]


def test_merge_commit_trial_then_confirm(driver, switch):
    driver.load_merge_candidate(config="interface 400GE1/0/2\n description to-gpu-7\n mtu 9216\n")
    diff = driver.compare_config()
    assert "interface 400GE1/0/2\n+ description to-gpu-7\n+ mtu 9216" in diff
    assert "to-gpu-7" in driver.get_config(retrieve="candidate")["candidate"]
    assert "to-gpu-7" not in running(driver)
    driver.commit_config(revert_in=2)
    assert driver.has_pending_commit()
    assert switch.interfaces["400GE1/0/2"].description == "to-gpu-7"
    with pytest.raises(CommitError):
        driver.commit_config(revert_in=5)  # one trial at a time
    driver.confirm_commit()
    assert not driver.has_pending_commit()
    time.sleep(2.5)
    assert switch.interfaces["400GE1/0/2"].mtu == 9216
    assert "description to-gpu-7" in running(driver)
    assert driver.compare_config() == ""


def test_unconfirmed_trial_reverts_by_itself(driver, switch):
    before = body(running(driver))
    driver.load_merge_candidate(config="interface 400GE1/0/3\n shutdown\n")
    driver.commit_config(revert_in=1)
    assert not switch.interfaces["400GE1/0/3"].admin_up
    deadline = time.time() + 5
    while driver.has_pending_commit() and time.time() < deadline:
        time.sleep(0.2)
    assert not driver.has_pending_commit()
    assert switch.interfaces["400GE1/0/3"].admin_up
    assert body(running(driver)) == before


def test_rejected_line_raises_with_device_text_and_changes_nothing(driver, switch):
    before = body(running(driver))
    with pytest.raises(MergeConfigException) as caught:
        driver.load_merge_candidate(config="interface 400GE1/0/1\n description half\n mtu 123456\n")
    assert "Error: Wrong parameter found at '^' position." in str(caught.value)
    assert "mtu 123456" in str(caught.value)
    assert driver.compare_config() == ""
    with pytest.raises(MergeConfigException, match="Unrecognized command"):
        driver.load_merge_candidate(config="frobnicate everything\n")
    assert body(running(driver)) == before
    assert switch.interfaces["400GE1/0/1"].description == ""


def test_discard_keeps_running(driver, switch):
    before = body(running(driver))
    driver.load_merge_candidate(config="interface 400GE1/0/4\n description never\n")
    assert driver.compare_config()
    driver.discard_config()
    assert driver.compare_config() == ""
    driver.commit_config()
    assert body(running(driver)) == before


def test_replace_and_rollback(driver, switch):
    original = running(driver)
    desired = original.replace(" undo portswitch\n ip address 10.1.0.1 31\n", " description replaced\n")
    desired = desired.replace("lldp enable\n", "")
    driver.load_replace_candidate(config=desired)
    diff = driver.compare_config()
    assert "- undo portswitch" in diff and "- ip address 10.1.0.1 31" in diff and "+ description replaced" in diff
    assert "-lldp enable" in diff
    driver.commit_config()
    assert body(running(driver)) == body(desired)
    assert switch.interfaces["400GE1/0/1"].description == "replaced"
    driver.rollback()
    assert body(running(driver)) == body(original)
    assert switch.interfaces["400GE1/0/1"].description == ""


def test_roce_push_changes_the_data_plane(driver, switch):
    assert switch.qos.pfc_priorities == frozenset()
    driver.load_merge_candidate(config=ROCE)
    driver.commit_config(revert_in=30)
    driver.confirm_commit()
    qos = switch.qos
    assert qos.pfc_priorities == frozenset({3})
    assert (qos.ecn[3].min_kbytes, qos.ecn[3].max_kbytes, qos.ecn[3].max_probability) == (150, 1500, 0.2)
    assert qos.dscp_to_tc[26] == 3 and qos.dscp_to_tc[48] == 6
    assert qos.pfc_watchdog and qos.pfc_watchdog_timeout_ms == 100
    assert qos.strict_priority_tcs == frozenset({6, 7})
    assert switch.interfaces["400GE1/0/1"].mtu == 9216
    driver.load_merge_candidate(config=ROCE)
    assert driver.compare_config() == ""  # idempotent: the same push changes nothing
    driver.discard_config()
    driver.load_replace_candidate(config=running(driver))
    assert driver.compare_config() == ""  # replacing with what is running changes nothing either
    driver.discard_config()


def test_wrong_password(switch):
    device = HuaweiVRPDriver(switch.mgmt_address, CREDENTIAL.username, "nope", timeout=5, optional_args={"port": PORT})
    with pytest.raises(ConnectAuthError):
        device.open()


def test_switch_down_is_a_connection_error(switch):
    switch.alive = False
    try:
        time.sleep(0.5)  # the accept loop notices within one poll
        device = HuaweiVRPDriver(
            switch.mgmt_address, CREDENTIAL.username, CREDENTIAL.password, timeout=3, optional_args={"port": PORT}
        )
        with pytest.raises(ConnectionException):
            device.open()
    finally:
        switch.alive = True


RUNNING = """\
!Software Version V300R023C10SPC500
#
sysname leaf7
#
lldp enable
#
interface 400GE1/0/1
 undo portswitch
 ip address 10.1.0.1 31
 shutdown
#
interface LoopBack9
 ip address 10.255.0.9 32
#
bgp 65001
 peer 10.1.0.0 as-number 65100
 #
 ipv4-family unicast
  maximum load-balancing 32
#
return
"""


def _steps(running: str, desired: str) -> list[tuple[str, int]]:
    from fabric_ops.devices.drivers.vrp_config import parse, replace_steps

    return [(step.command, step.depth) for step in replace_steps(parse(running), parse(desired))]


def test_replace_steps_table():
    # Same configuration in another order and without comments: nothing to type.
    reordered = "interface LoopBack9\n ip address 10.255.0.9 32\n" + RUNNING.replace(
        "interface LoopBack9\n ip address 10.255.0.9 32\n#\n", ""
    )
    assert _steps(RUNNING, reordered) == []
    desired = (
        RUNNING.replace(" shutdown\n", " description up\n")
        .replace("lldp enable\n", "")
        .replace("interface LoopBack9\n ip address 10.255.0.9 32\n#\n", "")
        .replace("maximum load-balancing 32", "maximum load-balancing 64")
    )
    assert _steps(RUNNING, desired) == [
        ("undo interface LoopBack9", 0),
        ("undo lldp enable", 0),
        ("interface 400GE1/0/1", 0),
        ("undo shutdown", 1),
        ("description up", 1),
        ("quit", 1),
        ("bgp 65001", 0),
        ("ipv4-family unicast", 1),
        ("undo maximum load-balancing 32", 2),
        ("maximum load-balancing 64", 2),
        ("quit", 2),
        ("quit", 1),
    ]
    # A physical port that disappears from the intent is cleared line by line, never deleted.
    port_block = "interface 400GE1/0/1\n undo portswitch\n ip address 10.1.0.1 31\n shutdown\n#\n"
    without_port = RUNNING.replace(port_block, "")
    assert _steps(RUNNING, without_port) == [
        ("interface 400GE1/0/1", 0),
        ("undo shutdown", 1),
        ("undo ip address 10.1.0.1 31", 1),
        ("portswitch", 1),
        ("quit", 1),
    ]
