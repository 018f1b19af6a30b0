"""The EOS emulation driven only through the unmodified NAPALM ``eos`` driver, pyeapi and raw HTTP.

Each test gets its own loopback address in 127.10.0.0/16 so runs never collide; getters are validated
against NAPALM's own TypedDict models the way ``napalm/base/test/getters.py`` does.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import socket
import ssl
import threading
import time

import pyeapi
import pytest
from napalm import get_network_driver
from napalm.base import models
from napalm.base.exceptions import CommandErrorException, ConnectionException, MergeConfigException
from napalm.base.test.helpers import test_model as napalm_model_ok

from fabric_ops.devices.credentials import Credential
from fabric_ops.lab import eos
from fabric_ops.lab.state import QosSettings, make_switch
from fabric_ops.telemetry.influxd import free_port

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

EOS_PORT = free_port("127.10.0.2")  # kernel-picked: parallel runs of this file never collide
EOS_CRED = Credential("admin", "lab-secret-pw")
_addresses = itertools.count(1)

ROCE_CONFIG = """
qos map dscp 26 to traffic-class 3
qos map dscp 48 to traffic-class 6
priority-flow-control pause watchdog default timeout 0.2
priority-flow-control pause watchdog default recovery-time 0.4
priority-flow-control pause watchdog action drop
interface Ethernet1/1
   mtu 9214
   priority-flow-control on
   priority-flow-control priority 3 no-drop
   priority-flow-control pause watchdog
   tx-queue 3
      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes max-mark-probability 20
   tx-queue 6
      priority strict
interface Ethernet2/1
   mtu 9214
   priority-flow-control on
   priority-flow-control priority 3 no-drop
"""


def eos_address() -> str:
    n = next(_addresses)
    return f"127.10.{n // 250}.{n % 250 + 1}"


def eos_make(hostname: str = "leaf1", ports: int = 4):
    switch = make_switch(hostname, "eos", eos_address(), ports=ports, eapi_port=EOS_PORT)
    e1 = switch.interfaces["Ethernet1/1"]
    e1.peer, e1.kind, e1.description = ("spine1", "Ethernet3/1"), "fabric", "to spine1 Ethernet3/1"
    e2 = switch.interfaces["Ethernet2/1"]
    e2.peer, e2.kind = ("host:gpu-node-1", "eth2"), "host"
    switch.asn, switch.loopback = 65101, "10.255.0.11"
    eos.initialise(switch)
    return switch


@pytest.fixture
def eos_switch():
    switch = eos_make()
    server = eos.serve([switch], EOS_CRED)
    yield switch
    server.stop()
    eos.platform_of(switch).stop_timers()


def eos_driver(switch, password: str = EOS_CRED.password, transport: str = "https"):
    driver_cls = get_network_driver("eos")
    return driver_cls(
        switch.mgmt_address,
        EOS_CRED.username,
        password,
        timeout=10,
        optional_args={"port": switch.eapi_port, "transport": transport},
    )


@pytest.fixture
def eos_device(eos_switch):
    device = eos_driver(eos_switch)
    device.open()
    yield device
    device.close()


def eos_raw(switch, payload: dict | bytes, password: str = EOS_CRED.password) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection(
        switch.mgmt_address, switch.eapi_port, timeout=10, context=ssl._create_unverified_context()
    )
    token = base64.b64encode(f"{EOS_CRED.username}:{password}".encode()).decode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    conn.request("POST", "/command-api", body, {"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def eos_running(switch) -> str:
    return eos.platform_of(switch).running.text()


# --- connection ---------------------------------------------------------------------------------------------


def test_open_close_is_alive(eos_switch):
    device = eos_driver(eos_switch)
    device.open()
    assert device.is_alive() == {"is_alive": True}
    assert device._eos_version.version >= "4.23.0"  # open() refuses older EOS: we must report a modern one
    device.close()


def test_wrong_password_is_refused(eos_switch):
    device = eos_driver(eos_switch, password="wrong")
    # The unmodified driver lets pyeapi's ConnectionError (HTTP 401) escape open(); the device layer translates it.
    with pytest.raises((pyeapi.eapilib.ConnectionError, ConnectionException), match="Unauthorized"):
        device.open()
    status, _ = eos_raw(eos_switch, {"jsonrpc": "2.0", "method": "runCmds", "params": {"cmds": ["show version"]}}, "x")
    assert status == 401


def test_dead_switch_refuses_then_recovers(eos_switch):
    eos_switch.alive = False
    with pytest.raises((pyeapi.eapilib.ConnectionError, ConnectionException)):
        eos_driver(eos_switch).open()
    eos_switch.alive = True
    device = eos_driver(eos_switch)
    device.open()
    assert device.get_facts()["hostname"] == "leaf1"
    device.close()


def test_plain_http_transport_on_the_same_port(eos_switch):
    device = eos_driver(eos_switch, transport="http")
    device.open()
    assert device.get_facts()["hostname"] == "leaf1"
    device.close()


# --- getters ------------------------------------------------------------------------------------------------


def test_get_facts(eos_device, eos_switch):
    facts = eos_device.get_facts()
    assert napalm_model_ok(models.FactsDict, facts)
    assert facts["hostname"] == "leaf1"
    assert facts["vendor"] == "Arista"
    assert facts["interface_list"][:4] == ["Ethernet1/1", "Ethernet2/1", "Ethernet3/1", "Ethernet4/1"]
    assert "Loopback0" in facts["interface_list"] and "Management1" in facts["interface_list"]
    assert 0 <= facts["uptime"] < 60


def test_get_interfaces_follow_live_state(eos_device, eos_switch):
    with eos_switch.lock:
        eos_switch.interfaces["Ethernet3/1"].oper_up = False
        eos_switch.interfaces["Ethernet4/1"].admin_up = False
    interfaces = eos_device.get_interfaces()
    for data in interfaces.values():
        assert napalm_model_ok(models.InterfaceDict, data)
    assert interfaces["Ethernet1/1"]["is_up"] and interfaces["Ethernet1/1"]["is_enabled"]
    assert interfaces["Ethernet1/1"]["description"] == "to spine1 Ethernet3/1"
    assert interfaces["Ethernet1/1"]["speed"] == 400000.0
    assert (interfaces["Ethernet3/1"]["is_up"], interfaces["Ethernet3/1"]["is_enabled"]) == (False, True)
    assert (interfaces["Ethernet4/1"]["is_up"], interfaces["Ethernet4/1"]["is_enabled"]) == (False, False)


def test_get_interfaces_counters(eos_device, eos_switch):
    with eos_switch.lock:
        port = eos_switch.interfaces["Ethernet1/1"]
        port.in_octets, port.out_octets, port.in_errors, port.out_discards = 123456, 654321, 7, 9
    counters = eos_device.get_interfaces_counters()
    for data in counters.values():
        assert napalm_model_ok(models.InterfaceCounterDict, data)
    assert counters["Ethernet1/1"]["rx_octets"] == 123456
    assert counters["Ethernet1/1"]["tx_octets"] == 654321
    assert counters["Ethernet1/1"]["rx_errors"] == 7
    assert counters["Ethernet1/1"]["tx_discards"] == 9


def test_get_lldp_neighbors(eos_device, eos_switch):
    neighbours = eos_device.get_lldp_neighbors()
    for entries in neighbours.values():
        for entry in entries:
            assert napalm_model_ok(models.LLDPNeighborDict, entry)
    assert neighbours == {
        "Ethernet1/1": [{"hostname": "spine1", "port": "Ethernet3/1"}],
        "Ethernet2/1": [{"hostname": "gpu-node-1", "port": "eth2"}],
    }
    with eos_switch.lock:
        eos_switch.interfaces["Ethernet1/1"].oper_up = False
    assert "Ethernet1/1" not in eos_device.get_lldp_neighbors()


def test_get_lldp_neighbors_detail(eos_device):
    detail = eos_device.get_lldp_neighbors_detail()
    for entries in detail.values():
        for entry in entries:
            assert napalm_model_ok(models.LLDPNeighborDetailDict, entry)
    spine = detail["Ethernet1/1"][0]
    assert spine["remote_system_name"] == "spine1"
    assert spine["remote_port"] == "Ethernet3/1"
    assert spine["remote_system_capab"] == ["bridge", "router"]
    assert spine["remote_chassis_id"].upper().startswith("00:1C:73")
    assert detail["Ethernet2/1"][0]["remote_system_capab"] == ["station"]
    only = eos_device.get_lldp_neighbors_detail(interface="Ethernet1/1")
    assert list(only) == ["Ethernet1/1"]


def test_get_config(eos_device):
    config = eos_device.get_config()
    assert napalm_model_ok(models.ConfigDict, config)
    running = config["running"]
    assert running.startswith("! Command: show running-config\n")
    assert "\nhostname leaf1\n" in running
    assert "\ninterface Ethernet1/1\n   description to spine1 Ethernet3/1\n   no switchport\n" in running
    assert "\nrouter bgp 65101\n   router-id 10.255.0.11\n" in running
    assert running.rstrip().endswith("end")
    assert "hostname leaf1" in config["startup"]
    assert config["candidate"] == ""
    sanitized = eos_device.get_config(retrieve="running", sanitized=True)["running"]
    assert "<removed>" in sanitized and "$6$" not in sanitized


def test_get_optics_reads_lane_values(eos_device, eos_switch):
    with eos_switch.lock:
        eos_switch.interfaces["Ethernet1/1"].optics[0].input_power_dbm = -7.25
    optics = eos_device.get_optics()
    for data in optics.values():
        for channel in data["physical_channels"]["channel"]:
            assert isinstance(channel["index"], int)
            for field in ("input_power", "output_power", "laser_bias_current"):
                assert all(isinstance(v, float) for v in channel["state"][field].values())
    assert optics["Ethernet1/1"]["physical_channels"]["channel"][0]["state"]["input_power"]["instant"] == -7.25


def test_transceiver_dom_is_per_lane(eos_switch):
    with eos_switch.lock:
        eos_switch.interfaces["Ethernet1/1"].optics[5].input_power_dbm = -11.5
    node = pyeapi.client.Node(
        pyeapi.client.make_connection(
            "https", host=eos_switch.mgmt_address, port=EOS_PORT, username="admin", password=EOS_CRED.password
        )
    )
    dom = node.enable("show interfaces transceiver dom thresholds")[0]["result"]["interfaces"]["Ethernet1/1"]
    rx = dom["parameters"]["rxPower"]
    assert len(rx["channels"]) == 8 and rx["channels"]["6"] == -11.5
    assert rx["threshold"]["lowAlarm"] < rx["threshold"]["lowWarn"]


def test_cli_text_json_and_invalid(eos_device):
    out = eos_device.cli(["show version", "show hostname"])
    assert "Arista DCS-7060DX5-64S-F" in out["show version"]
    assert "leaf1" in out["show hostname"]
    assert eos_device.cli(["show clock"], encoding="json")["show clock"]["timezone"] == "UTC"
    assert (
        "router bgp 65101"
        in eos_device.cli(["show running-config | section router bgp"])["show running-config | section router bgp"]
    )
    with pytest.raises(CommandErrorException):
        eos_device.cli(["show bogus"])


def test_eapi_error_shape(eos_switch):
    status, body = eos_raw(
        eos_switch,
        {
            "jsonrpc": "2.0",
            "method": "runCmds",
            "id": "7",
            "params": {"version": 1, "cmds": ["show hostname", "show foo"]},
        },
    )
    reply = json.loads(body)
    assert status == 200 and reply["id"] == "7"
    assert reply["error"]["code"] == 1002
    assert reply["error"]["message"] == "CLI command 2 of 2 'show foo' failed: invalid command"
    assert reply["error"]["data"][0]["hostname"] == "leaf1"
    assert reply["error"]["data"][1] == {"errors": ["Invalid input (at token 1: 'foo')"]}
    _, body = eos_raw(eos_switch, {"jsonrpc": "2.0", "method": "nope", "id": 1, "params": {}})
    assert json.loads(body)["error"]["code"] == -32601
    _, body = eos_raw(eos_switch, b"{not json")
    assert json.loads(body)["error"]["code"] == -32700


# --- configuration ------------------------------------------------------------------------------------------


def test_merge_compare_commit_confirm(eos_device, eos_switch):
    eos_device.load_merge_candidate(config=ROCE_CONFIG)
    diff = eos_device.compare_config()
    assert "+qos map dscp 26 to traffic-class 3" in diff
    assert "+   mtu 9214" in diff and "+   priority-flow-control priority 3 no-drop" in diff
    raw = eos_device._run_commands([f"show session-config named {eos_device.config_session} diffs"], encoding="text")
    header = raw[0]["output"].splitlines()[:2]
    assert header == ["--- system:/running-config", f"+++ session:/{eos_device.config_session}-session-config"]
    assert eos_switch.qos == QosSettings()  # nothing happens before commit

    eos_device.commit_config(revert_in=300)
    assert eos_device.has_pending_commit()
    assert eos_switch.qos.pfc_priorities == frozenset({3})
    eos_device.confirm_commit()
    assert not eos_device.has_pending_commit()
    assert eos_device.compare_config() == ""
    config = eos_device.get_config()
    assert "qos map dscp 26 to traffic-class 3" in config["running"]
    assert "qos map dscp 26 to traffic-class 3" in config["startup"]  # confirm_commit writes memory


@pytest.mark.timeout(30)
def test_unconfirmed_commit_reverts_by_itself(eos_device, eos_switch):
    before = eos_running(eos_switch)
    eos_device.load_merge_candidate(config="interface Ethernet3/1\n   shutdown\n" + ROCE_CONFIG)
    eos_device.commit_config(revert_in=2)
    assert eos_device.has_pending_commit()
    assert eos_switch.interfaces["Ethernet3/1"].admin_up is False
    assert eos_switch.qos.ecn[3].min_kbytes == 150
    deadline = time.time() + 10
    while eos_device.has_pending_commit() and time.time() < deadline:
        time.sleep(0.25)
    assert not eos_device.has_pending_commit()
    assert eos_running(eos_switch) == before
    assert eos_switch.qos == QosSettings()
    assert eos_switch.interfaces["Ethernet3/1"].admin_up is True


def test_discard_config(eos_device, eos_switch):
    before = eos_running(eos_switch)
    eos_device.load_merge_candidate(config="hostname other-name\n")
    assert "+hostname other-name" in eos_device.compare_config()
    eos_device.discard_config()
    assert eos_device.compare_config() == ""
    assert eos_running(eos_switch) == before
    assert eos.platform_of(eos_switch).sessions == {}


def test_rollback_restores_previous_config(eos_device, eos_switch):
    before = eos_running(eos_switch)
    eos_device.load_merge_candidate(config="interface Ethernet4/1\n   description temporary\n   shutdown\n")
    eos_device.commit_config()
    assert eos_switch.interfaces["Ethernet4/1"].admin_up is False
    assert eos_switch.interfaces["Ethernet4/1"].description == "temporary"
    eos_device.rollback()
    assert eos_running(eos_switch) == before
    assert eos_switch.interfaces["Ethernet4/1"].admin_up is True
    assert eos_switch.interfaces["Ethernet4/1"].description == ""


def test_rollback_of_pending_commit_timer(eos_device, eos_switch):
    before = eos_running(eos_switch)
    eos_device.load_merge_candidate(config=ROCE_CONFIG)
    eos_device.commit_config(revert_in=300)
    eos_device.rollback()
    assert not eos_device.has_pending_commit()
    assert eos_running(eos_switch) == before
    assert eos_switch.qos == QosSettings()


def test_load_replace_candidate(eos_device, eos_switch):
    running = eos_device.get_config(retrieve="running")["running"]
    replacement = running.replace("hostname leaf1", "hostname leaf1-new").replace(
        "router bgp 65101\n   router-id 10.255.0.11\n", ""
    )
    eos_device.load_replace_candidate(config=replacement)
    diff = eos_device.compare_config()
    assert "-hostname leaf1\n+hostname leaf1-new" in diff
    assert "-router bgp 65101" in diff
    eos_device.commit_config()
    assert eos_device.get_facts()["hostname"] == "leaf1-new"
    assert "router bgp" not in eos_running(eos_switch)


def test_rejected_line_leaves_running_untouched(eos_device, eos_switch):
    before = eos_running(eos_switch)
    bad = "interface Ethernet1/1\n   mtu 9214\n   flux-capacitor on\n"
    with pytest.raises(MergeConfigException, match="Invalid input"):
        eos_device.load_merge_candidate(config=bad)
    assert eos_device.compare_config() == ""
    assert eos_running(eos_switch) == before
    assert eos.platform_of(eos_switch).sessions == {}
    with pytest.raises(MergeConfigException):
        eos_device.load_merge_candidate(config="interface Ethernet1/1\n   mtu 99999\n")
    with pytest.raises(MergeConfigException):
        eos_device.load_merge_candidate(config="interface Ethernet77/1\n")
    assert eos_running(eos_switch) == before


def test_roce_config_changes_switch_qos(eos_device, eos_switch):
    seen = []
    eos_switch.listeners.append(lambda sw, changed: seen.append(list(changed)))
    extra = (
        "interface Ethernet3/1\n   shutdown\nrouter bgp 65101\n   maximum-paths 64 ecmp 64\n"
        "   neighbor 10.0.0.0 remote-as 65000\n   neighbor 10.0.0.0 bfd\n"
    )
    eos_device.load_merge_candidate(config=ROCE_CONFIG + extra)
    eos_device.commit_config()
    qos = eos_switch.qos
    assert qos.dscp_to_tc == {26: 3, 48: 6}
    assert qos.pfc_priorities == frozenset({3})
    assert qos.ecn[3].min_kbytes == 150 and qos.ecn[3].max_kbytes == 1500 and qos.ecn[3].max_probability == 0.2
    assert qos.pfc_watchdog and qos.pfc_watchdog_timeout_ms == 200 and qos.pfc_watchdog_action == "drop"
    assert qos.strict_priority_tcs == frozenset({6})
    assert eos_switch.interfaces["Ethernet1/1"].mtu == 9214
    assert eos_switch.interfaces["Ethernet3/1"].admin_up is False
    assert ["Ethernet3/1"] in seen
    # a second merge with "no" lines takes PFC away again
    eos_device.load_merge_candidate(
        config="interface Ethernet1/1\n   no priority-flow-control\n"
        "interface Ethernet2/1\n   no priority-flow-control\n"
    )
    eos_device.commit_config()
    assert eos_switch.qos.pfc_priorities == frozenset()


def test_session_lock_and_sessions_listing(eos_device, eos_switch):
    other = eos_driver(eos_switch)
    other.open()
    eos_device.load_merge_candidate(config="ntp server 10.0.0.123 iburst\n")
    from napalm.base.exceptions import SessionLockedException

    with pytest.raises(SessionLockedException):
        other._lock()  # the driver's own lock check sees our pending session
    sessions = other._run_commands(["show configuration sessions"])[0]["sessions"]
    assert sessions[eos_device.config_session]["state"] == "pending"
    eos_device.discard_config()
    other.close()


def test_reboot_restores_startup_and_drops_timers(eos_device, eos_switch):
    startup = eos.platform_of(eos_switch).startup.text()
    eos_device.load_merge_candidate(config=ROCE_CONFIG)
    eos_device.commit_config(revert_in=300)
    assert eos_switch.qos.pfc_priorities
    eos.reboot(eos_switch)
    assert eos_running(eos_switch) == startup
    assert eos_switch.qos == QosSettings()
    assert eos.platform_of(eos_switch).sessions == {}


# --- scale --------------------------------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_256_switches_in_one_process():
    switches = [
        make_switch(
            f"leaf{n}", "eos", f"127.10.200.{n}" if n < 255 else f"127.10.201.{n - 254}", ports=4, eapi_port=EOS_PORT
        )
        for n in range(1, 257)
    ]
    threads_before = threading.active_count()
    server = eos.serve(switches, EOS_CRED)
    try:
        sample = switches[::16]
        for switch in sample:  # a commit-confirm pushed to many switches at once, never confirmed
            device = eos_driver(switch)
            device.open()
            assert device.get_facts()["hostname"] == switch.hostname
            device.load_merge_candidate(config="interface Ethernet1/1\n   shutdown\n")
            device.commit_config(revert_in=3)
            device.config_session = None  # leave the timer running when closing
            device.close()
        assert all(s.interfaces["Ethernet1/1"].admin_up is False for s in sample)
        # one acceptor, <= 8 workers, one shared commit-timer thread: not one thread per switch or per timer
        assert server.thread_count <= 9
        assert threading.active_count() - threads_before <= 10
        deadline = time.time() + 15
        while any(s.interfaces["Ethernet1/1"].admin_up is False for s in sample) and time.time() < deadline:
            time.sleep(0.2)
        assert all(s.interfaces["Ethernet1/1"].admin_up for s in sample)
    finally:
        server.stop()


def test_configure_terminal_via_pyeapi_takes_effect(eos_switch):
    node = pyeapi.client.Node(
        pyeapi.client.make_connection(
            "https", host=eos_switch.mgmt_address, port=EOS_PORT, username="admin", password=EOS_CRED.password
        )
    )
    node.config(["interface Ethernet3/1", "shutdown", "description parked"])
    assert eos_switch.interfaces["Ethernet3/1"].admin_up is False
    assert eos_switch.interfaces["Ethernet3/1"].description == "parked"
    tree = node.enable("show running-config")[0]["result"]["cmds"]
    assert tree["interface Ethernet3/1"]["cmds"] == {"description parked": None, "shutdown": None}


def test_request_in_flight_fails_when_switch_dies(eos_device, eos_switch):
    def die(switch, changed):
        switch.alive = False

    eos_switch.listeners.append(die)
    eos_device.load_merge_candidate(config="interface Ethernet4/1\n   shutdown\n")
    with pytest.raises(pyeapi.eapilib.ConnectionError):
        eos_device.commit_config()
    eos_switch.listeners.remove(die)
    eos_switch.alive = True
    assert eos_device.get_facts()["hostname"] == "leaf1"


def test_get_interfaces_ip(eos_device):
    addresses = eos_device.get_interfaces_ip()
    for data in addresses.values():
        for family in ("ipv4", "ipv6"):
            for entry in data.get(family, {}).values():
                assert napalm_model_ok(models.InterfacesIPDictEntry, entry)
    assert addresses["Loopback0"]["ipv4"] == {"10.255.0.11": {"prefix_length": 32}}
    eos_device.load_merge_candidate(config="interface Ethernet1/1\n   ip address 10.0.1.0/31\n")
    eos_device.commit_config()
    assert eos_device.get_interfaces_ip()["Ethernet1/1"]["ipv4"] == {"10.0.1.0": {"prefix_length": 31}}


@pytest.mark.timeout(30)
def test_commit_timer_saves_a_locked_out_api(eos_device, eos_switch):
    eos_device.load_merge_candidate(config="management api http-commands\n   shutdown\n")
    eos_device.commit_config(revert_in=2)
    with pytest.raises(pyeapi.eapilib.ConnectionError):
        eos_driver(eos_switch).open()
    deadline = time.time() + 10
    while time.time() < deadline:  # nobody can confirm: the timer reverts and eAPI comes back
        try:
            probe = eos_driver(eos_switch)
            probe.open()
            break
        except pyeapi.eapilib.ConnectionError:
            time.sleep(0.25)
    assert probe.get_facts()["hostname"] == "leaf1"
    assert not probe.has_pending_commit()
    probe.close()


@pytest.mark.parametrize("eos_version", ["4.31.2F", "4.33.1F"])
def test_pending_commit_in_both_session_formats(eos_version):
    switch = eos_make("leaf-v")
    switch.os_version = eos_version
    server = eos.serve([switch], EOS_CRED)
    try:
        device = eos_driver(switch)
        device.open()
        device.load_merge_candidate(config="ntp server 10.0.0.123\n")
        device.commit_config(revert_in=120)
        raw = device._run_commands(["show configuration sessions detail"])[0]
        assert ("commitTimerSessionName" in raw) == (eos_version >= "4.32")
        assert device._get_pending_commits()[device.config_session] in range(115, 121)
        device.confirm_commit()
        assert not device.has_pending_commit()
        device.close()
    finally:
        server.stop()
        eos.platform_of(switch).stop_timers()


@pytest.mark.timeout(60)
def test_concurrent_clients_on_many_switches():
    switches = [eos_make(f"leaf-c{n}") for n in range(6)]
    server = eos.serve(switches, EOS_CRED)
    errors: list[BaseException] = []

    def worker(switch):
        try:
            device = eos_driver(switch)
            device.open()
            for _ in range(3):
                assert device.get_facts()["hostname"] == switch.hostname
            device.load_merge_candidate(config=f"interface Ethernet4/1\n   description {switch.hostname}\n")
            device.commit_config()
            device.close()
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in switches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [s.interfaces["Ethernet4/1"].description for s in switches] == [s.hostname for s in switches]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def eos_grammar_device():
    switch = eos_make("leaf-g")
    server = eos.serve([switch], EOS_CRED)
    device = eos_driver(switch)
    device.open()
    yield device
    device.close()
    server.stop()


# candidate -> a line that must appear in the diff (accepted), or None (refused with MergeConfigException)
EOS_GRAMMAR_CASES = [
    ("qos map dscp 26 to traffic-class 3", "+qos map dscp 26 to traffic-class 3"),
    ("qos map dscp 24 26 to traffic-class 3", "+qos map dscp 24 26 to traffic-class 3"),
    ("qos map dscp 64 to traffic-class 3", None),
    ("qos map dscp 26 to traffic-class 8", None),
    (
        "priority-flow-control pause watchdog default timeout 0.2",
        "+priority-flow-control pause watchdog default timeout 0.2",
    ),
    ("priority-flow-control pause watchdog default recovery-time 0.4 forced", "+priority-flow-control pause watchdog"),
    ("priority-flow-control pause watchdog action drop", "+priority-flow-control pause watchdog action drop"),
    ("priority-flow-control pause watchdog action explode", None),
    ("interface Ethernet1/1\npriority-flow-control on", "+   priority-flow-control on"),
    ("interface Ethernet1/1\npriority-flow-control priority 3 no-drop", "+   priority-flow-control priority 3 no-drop"),
    ("interface Ethernet1/1\npriority-flow-control priority 9 no-drop", None),
    (
        "interface Et1/1\ntx-queue 3\nrandom-detect ecn minimum-threshold 100 kbytes maximum-threshold 1 mbytes",
        "+      random-detect ecn minimum-threshold 100 kbytes maximum-threshold 1 mbytes",
    ),
    (
        "interface Ethernet1/1\ntx-queue 3\nrandom-detect ecn minimum-threshold 9 furlongs maximum-threshold 1 kbytes",
        None,
    ),
    ("interface Ethernet1/1\nshutdown", "+   shutdown"),
    ("interface Ethernet1/1\nno switchport\nip address 10.1.0.0/31", "+   ip address 10.1.0.0/31"),
    ("interface Ethernet1/1\nip address 10.1.0.0", None),
    ("interface Ethernet1/1\nmtu 9214", "+   mtu 9214"),
    ("interface Ethernet1/1\nmtu 9215", None),
    ("router bgp 65101\nmaximum-paths 64 ecmp 64", "+   maximum-paths 64 ecmp 64"),
    ("router bgp 65101\nneighbor 10.0.0.0 remote-as 65000\nneighbor 10.0.0.0 bfd", "+   neighbor 10.0.0.0 bfd"),
    ("router bgp 65999", None),
    ("router bfd\ninterval 300 min-rx 300 multiplier 3 default", "+   interval 300 min-rx 300 multiplier 3 default"),
    ("ip load-sharing trident fields ip source-ip destination-ip source-port destination-port", "+ip load-sharing"),
    ("ntp server 10.0.0.1 iburst", "+ntp server 10.0.0.1 iburst"),
    ("logging host 10.0.0.2", "+logging host 10.0.0.2"),
    ("management api gnmi\ntransport grpc default\nport 6031", "+      port 6031"),
    ("spanning-tree mode none\nspanning-tree mode mstp", "-spanning-tree mode none"),
    ("hostname bad_name!", None),
    ("flux-capacitor on", None),
]


@pytest.mark.parametrize(("candidate", "expected"), EOS_GRAMMAR_CASES)
def test_documented_grammar(eos_grammar_device, candidate, expected):
    device = eos_grammar_device
    if expected is None:
        with pytest.raises(MergeConfigException, match=r"Invalid input|already running"):
            device.load_merge_candidate(config=candidate)
        assert device.compare_config() == ""
        return
    device.load_merge_candidate(config=candidate)
    try:
        assert expected in device.compare_config()
    finally:
        device.discard_config()


def test_serve_with_the_labs_own_tls_pair(tmp_path):
    from fabric_ops.lab.eos.server import ensure_certificate

    cert, key = ensure_certificate(tmp_path)
    switch = eos_make("leaf-tls")
    server = eos.serve([switch], EOS_CRED, tls=(cert.read_bytes(), key.read_bytes()))
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        conn = http.client.HTTPSConnection(switch.mgmt_address, EOS_PORT, timeout=10, context=context)
        token = base64.b64encode(f"{EOS_CRED.username}:{EOS_CRED.password}".encode()).decode()
        body = json.dumps({"jsonrpc": "2.0", "method": "runCmds", "id": 1, "params": {"cmds": ["show hostname"]}})
        conn.request("POST", "/command-api", body, {"Authorization": f"Basic {token}"})
        assert json.loads(conn.getresponse().read())["result"][0]["hostname"] == "leaf-tls"  # verified against cert
        conn.close()
    finally:
        server.stop()


def test_banner_heredoc_and_replace_round_trip(eos_device):
    eos_device.load_merge_candidate(config="banner login\nAuthorised access only\n  (lab)\nEOF\n" + ROCE_CONFIG)
    assert "+Authorised access only" in eos_device.compare_config()
    eos_device.commit_config()
    running = eos_device.get_config(retrieve="running")["running"]
    assert "\nbanner login\nAuthorised access only\n(lab)\nEOF\n" in running  # NAPALM strips each line
    # replacing the running-config with itself changes nothing: parse and render agree
    eos_device.load_replace_candidate(config=running)
    assert eos_device.compare_config() == ""
    eos_device.discard_config()
    eos_device.load_merge_candidate(config="no banner login\n")
    assert "-banner login" in eos_device.compare_config()
    eos_device.discard_config()


def test_autocomplete_only_when_asked(eos_switch):
    abbreviated = (
        "int Et1/1\nmtu 9214\npriority-flow-control prio 3 no-d\ntx-q 3\nrandom-detect ecn min 10 kb max 20 kb\n"
    )
    strict = eos_driver(eos_switch)
    strict.open()
    with pytest.raises(CommandErrorException):
        strict.cli(["sh ver"])
    with pytest.raises(MergeConfigException):
        strict.load_merge_candidate(config=abbreviated)
    strict.close()

    driver_cls = get_network_driver("eos")
    relaxed = driver_cls(
        eos_switch.mgmt_address,
        EOS_CRED.username,
        EOS_CRED.password,
        timeout=10,
        optional_args={"port": EOS_PORT, "transport": "https", "eos_autoComplete": True},
    )
    relaxed.open()
    # NAPALM passes autoComplete only when loading configuration; show commands go through pyeapi directly
    assert relaxed._run_commands(["sh ver"], autoComplete=True)[0]["modelName"] == "DCS-7060DX5-64S-F"
    relaxed.load_merge_candidate(config=abbreviated)
    diff = relaxed.compare_config()
    assert "+   priority-flow-control priority 3 no-drop" in diff
    assert "+      random-detect ecn minimum-threshold 10 kbytes maximum-threshold 20 kbytes" in diff
    relaxed.discard_config()
    relaxed.close()


def test_interfaces_status_and_show_in_config_mode(eos_device, eos_switch):
    with eos_switch.lock:
        eos_switch.interfaces["Ethernet3/1"].oper_up = False
    status = eos_device.cli(["show interfaces status"], encoding="json")["show interfaces status"]
    assert status["interfaceStatuses"]["Ethernet1/1"]["linkStatus"] == "connected"
    assert status["interfaceStatuses"]["Ethernet1/1"]["vlanInformation"]["interfaceMode"] == "routed"
    assert status["interfaceStatuses"]["Ethernet3/1"]["linkStatus"] == "notconnect"
    out = eos_device._run_commands(
        [
            "configure session peek",
            "interface Ethernet4/1",
            "mtu 9000",
            "show session-config diffs | include mtu",
            "abort",
        ],
        encoding="text",
    )
    assert out[3]["output"] == "+   mtu 9000\n"


def test_get_environment_follows_switch_state(eos_device, eos_switch):
    with eos_switch.lock:
        eos_switch.cpu_utilisation = 37.5
        eos_switch.memory_used_bytes = 8 * 1024**3
    env = eos_device.get_environment()
    for kind, model in (("fans", models.FanDict), ("power", models.PowerDict), ("temperature", models.TemperatureDict)):
        assert all(napalm_model_ok(model, data) for data in env[kind].values())
    assert all(napalm_model_ok(models.CPUDict, data) for data in env["cpu"].values())
    assert napalm_model_ok(models.MemoryDict, env["memory"])
    assert env["cpu"][0]["%usage"] == pytest.approx(37.5, abs=0.2)
    assert env["memory"]["used_ram"] == 8 * 1024**2  # KiB
    assert env["memory"]["available_ram"] == 32 * 1024**2
    assert all(fan["status"] for fan in env["fans"].values())
    assert all(psu["status"] for psu in env["power"].values())
    assert set(env["temperature"]) == {"TempSensor1", "TempSensor2", "TempSensor3"}


def test_no_form_of_one_priority_keeps_pfc_on_the_port(eos_device, eos_switch):
    """'no priority-flow-control priority 0' removes that priority only, not 'priority-flow-control on'."""
    eos_device.load_merge_candidate(
        config="interface Ethernet1/1\n   priority-flow-control on\n   priority-flow-control priority 3 no-drop\n"
        "   priority-flow-control priority 4 no-drop\n   no priority-flow-control priority 0\n"
        "   no priority-flow-control priority 4\n"
    )
    eos_device.commit_config()
    running = eos_running(eos_switch)
    assert "   priority-flow-control on\n" in running
    assert "priority 3 no-drop" in running and "priority 4 no-drop" not in running
    assert eos_switch.qos.pfc_priorities == {3}


# --- shared configuration trees (copy-on-write) -------------------------------------------------------------


def _terminal(switch, *lines: str) -> None:
    node = pyeapi.client.Node(
        pyeapi.client.make_connection(
            "https", host=switch.mgmt_address, port=EOS_PORT, username="admin", password=EOS_CRED.password
        )
    )
    node.config(list(lines))


def test_configure_terminal_after_write_memory_leaves_startup_alone(eos_device, eos_switch):
    """write memory shares the running tree with the startup-config; a later terminal edit must not reach it."""
    eos_device.cli(["write memory"])
    _terminal(eos_switch, "interface Ethernet3/1", "description after-save")
    assert "description after-save" in eos_device.get_config(retrieve="running")["running"]
    assert "description after-save" not in eos_device.get_config(retrieve="startup")["startup"]
    diffs = eos_device.cli(["show running-config diffs"])["show running-config diffs"]
    assert "+      description after-save" in diffs or "+   description after-save" in diffs


def test_terminal_edit_during_commit_timer_is_undone_by_abort(eos_device, eos_switch):
    """The commit checkpoint is the old running tree itself: edits made meanwhile go to a copy, not to it."""
    eos_device.load_merge_candidate(config="interface Ethernet3/1\n   description committed\n")
    eos_device.commit_config(revert_in=300)
    _terminal(eos_switch, "interface Ethernet4/1", "description meanwhile")
    assert "description meanwhile" in eos_running(eos_switch)
    eos_device.rollback()  # aborts the pending session: back to the checkpoint, as EOS does
    running = eos_running(eos_switch)
    assert "description committed" not in running and "description meanwhile" not in running
    assert eos_switch.interfaces["Ethernet4/1"].description != "meanwhile"


def test_session_opened_mid_terminal_request_does_not_catch_its_lines(eos_switch):
    """A session opened between two lines of a configure-terminal request shares the running tree; the next
    line must land in the (copied) running-config at the same place, not in the session's base."""
    from fabric_ops.lab.eos.cli import CliSession

    platform = eos.platform_of(eos_switch)
    cli = CliSession(platform, "admin")
    for command in ("enable", "configure", "interface Ethernet3/1"):
        cli.execute(command, "json")
    session = platform.open_session("other", "admin")
    cli.execute("description typed-later", "json")
    cli.finish()
    assert "   description typed-later" in platform.running.text().splitlines()
    assert "description typed-later" not in session.base.text()
    assert "description typed-later" not in session.config.text()
    assert eos_switch.interfaces["Ethernet3/1"].description == "typed-later"


def test_committed_session_takes_no_more_lines(eos_switch):
    """A committed session's tree is the running-config: a client still in that session cannot edit it."""
    from fabric_ops.lab.eos.cli import CliSession
    from fabric_ops.lab.eos.grammar import CliError

    platform = eos.platform_of(eos_switch)
    cli = CliSession(platform, "admin")
    for command in ("enable", "configure session late", "interface Ethernet3/1", "description first"):
        cli.execute(command, "json")
    platform.commit("late", timer_seconds=300)
    with pytest.raises(CliError, match="already been committed"):
        cli.execute("description second", "json")
    cli.finish()
    assert "description first" in platform.running.text() and "description second" not in platform.running.text()
    platform.stop_timers()


def test_cached_rendering_follows_every_edit(eos_device, eos_switch):
    """Rendered configurations are cached per tree; each edit (session lines, terminal lines) shows at once."""
    eos_device.load_merge_candidate(config="interface Ethernet3/1\n   description one\n")
    assert "+   description one" in eos_device.compare_config()
    eos_device.load_merge_candidate(config="interface Ethernet4/1\n   description two\n")  # same session, more lines
    diff = eos_device.compare_config()
    assert "+   description one" in diff and "+   description two" in diff
    eos_device.commit_config()
    assert "description two" in eos_device.get_config(retrieve="running")["running"]
    _terminal(eos_switch, "interface Ethernet4/1", "description three")
    running = eos_device.get_config(retrieve="running")["running"]
    assert "description three" in running and "description two" not in running


# --- eAPI keep-alive -----------------------------------------------------------------------------------------


def _keepalive_request(conn: http.client.HTTPConnection, command: str = "show hostname") -> dict:
    token = base64.b64encode(f"{EOS_CRED.username}:{EOS_CRED.password}".encode()).decode()
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "runCmds", "params": {"version": 1, "cmds": [command]}})
    conn.request("POST", "/command-api", body, {"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


def test_idle_keepalive_connections_do_not_hold_workers(eos_switch):
    """More idle keep-alive clients than workers: each still gets its next answer at once, on its own connection."""
    context = ssl._create_unverified_context()
    conns = [
        http.client.HTTPSConnection(eos_switch.mgmt_address, EOS_PORT, timeout=3, context=context) for _ in range(12)
    ]
    try:
        for conn in conns:  # 12 connections opened and left idle: the server has 8 workers
            assert _keepalive_request(conn)["result"][0]["hostname"] == "leaf1"
        began = time.monotonic()
        for _ in range(3):
            for conn in conns:
                assert _keepalive_request(conn)["result"][0]["hostname"] == "leaf1"
        assert time.monotonic() - began < 2.5  # a worker blocked on an idle client would wait out its 5 s timeout
        assert all(conn.sock is not None for conn in conns)  # the same connections were reused
    finally:
        for conn in conns:
            conn.close()


def test_pipelined_requests_on_one_connection_are_all_answered(eos_switch):
    token = base64.b64encode(f"{EOS_CRED.username}:{EOS_CRED.password}".encode()).decode()
    requests = b""
    for n in (1, 2):
        body = json.dumps({"jsonrpc": "2.0", "id": n, "method": "runCmds", "params": {"cmds": ["show hostname"]}})
        requests += (
            f"POST /command-api HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    with socket.create_connection((eos_switch.mgmt_address, EOS_PORT), timeout=3) as sock:
        sock.sendall(requests)  # both at once: the second is already buffered when the first is answered
        received = b""
        while received.count(b'"hostname"') < 2:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
    assert b'"id": 1' in received and b'"id": 2' in received


def test_idle_keepalive_connection_is_closed_after_the_timeout(eos_switch, monkeypatch):
    from fabric_ops.lab.eos import server as eos_server

    monkeypatch.setattr(eos_server._EapiHandler, "timeout", 1)
    conn = http.client.HTTPSConnection(
        eos_switch.mgmt_address, EOS_PORT, timeout=3, context=ssl._create_unverified_context()
    )
    _keepalive_request(conn)
    time.sleep(3.0)  # idle past the timeout (the acceptor sweeps once a second)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        _keepalive_request(conn)
    conn.close()
