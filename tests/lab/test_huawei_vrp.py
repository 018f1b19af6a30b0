"""The emulated CloudEngine driven through unmodified netmiko (huawei_vrpv8 / huawei) over real SSH."""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import paramiko
import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError
from fabric_ops.lab import huawei_vrp
from fabric_ops.lab.state import make_switch
from fabric_ops.telemetry.influxd import free_port

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]


PORT = free_port("127.11.0.1")  # kernel-picked: parallel runs of this file (CI and a developer) never collide
CREDENTIAL = Credential("admin", "s3cret-lab")


@pytest.fixture(scope="module")
def lab():
    leaf = make_switch("leaf1", "huawei_vrp", "127.11.0.1", ssh_port=PORT)
    spine = make_switch("spine1", "huawei_vrp", "127.11.0.2", ssh_port=PORT)
    leaf.interfaces["400GE1/0/1"].address = "10.0.0.1/31"
    leaf.interfaces["400GE1/0/1"].peer = ("spine1", "400GE1/0/1")
    leaf.interfaces["400GE1/0/2"].peer = ("host:gpu1", "eth0")
    spine.interfaces["400GE1/0/1"].address = "10.0.0.0/31"
    spine.interfaces["400GE1/0/1"].peer = ("leaf1", "400GE1/0/1")
    server = huawei_vrp.serve([leaf, spine], CREDENTIAL)
    yield leaf, spine
    server.stop()


@pytest.fixture
def leaf(lab):
    switch = lab[0]
    switch.alive = True
    for iface in switch.interfaces.values():  # initialise() builds the config from these inventory values
        iface.description, iface.mtu, iface.admin_up = "", 1500, True
    huawei_vrp.initialise(switch)  # a fresh configuration for every test
    return switch


def connect(switch, device_type="huawei_vrpv8", password=CREDENTIAL.password, **extra):
    return ConnectHandler(
        device_type=device_type,
        host=switch.mgmt_address,
        port=switch.ssh_port,
        username=CREDENTIAL.username,
        password=password,
        conn_timeout=5,
        **extra,
    )


@contextmanager
def session(switch, **kwargs):
    """A netmiko session closed by dropping the SSH connection (netmiko's disconnect() spends 2 s probing)."""
    conn = connect(switch, **kwargs)
    try:
        yield conn
    finally:
        conn.paramiko_cleanup()


def configure(conn, lines: list[str]) -> str:
    """Type lines in the system view one by one (what send_config_set does, without its 2 s mode probes)."""
    output = ""
    if conn.find_prompt().startswith("<"):
        output += conn.send_command("system-view", expect_string=r"\]\s*$")
    for line in lines:
        output += conn.send_command(line, expect_string=r"\]\s*$", strip_prompt=False)
    return output


def commit(conn, command: str = "commit") -> str:
    output = conn.send_command(command, expect_string=r"\]\s*$")
    conn.send_command("return", expect_string=r">\s*$")
    return output


def running(conn) -> str:
    return conn.send_command("display current-configuration")


def test_prompts_and_display_commands(leaf):
    iface = leaf.interfaces["400GE1/0/1"]
    iface.in_octets, iface.in_unicast_pkts, iface.in_fcs_errors = 123456789, 4242, 17
    iface.optics[0].input_power_dbm = -3.21
    with session(leaf) as conn:
        assert conn.base_prompt == "leaf1"
        assert conn.find_prompt() == "<leaf1>"
        version = conn.send_command("display version")
        assert "Huawei Versatile Routing Platform Software" in version
        assert "HUAWEI CE8851-32CQ8DQ-P uptime is" in version
        config = running(conn)
        assert config.startswith("!Software Version")
        assert "sysname leaf1" in config
        assert "interface 400GE1/0/1\n undo portswitch\n ip address 10.0.0.1 31" in config
        assert config.rstrip().endswith("#\nreturn")
        assert conn.send_command("display current-configuration | include ^sysname") == "sysname leaf1"
        block = conn.send_command("display current-configuration interface 400GE1/0/1")
        assert "ip address 10.0.0.1 31" in block and "400GE1/0/2" not in block
        detail = conn.send_command("display interface 400GE1/0/1")
        assert "400GE1/0/1 current state : UP" in detail
        assert "Input : 123456789 bytes, 4242 packets" in detail
        assert "CRC: 17 packets" in detail
        assert "Internet Address is 10.0.0.1/31" in detail
        brief = conn.send_command("display interface brief")
        assert any(line.startswith("400GE1/0/4") for line in brief.splitlines())
        lldp = conn.send_command("display lldp neighbor brief")
        assert "spine1" in lldp and "gpu1" in lldp
        assert "System name                        :spine1" in conn.send_command("display lldp neighbor")
        assert "Registered" in conn.send_command("display device")
        assert "RX Power (dBm)                        :-3.21" in conn.send_command("display transceiver verbose")
        assert "+00:00" in conn.send_command("display clock")
        # Abbreviated keywords work as on the device.
        assert "sysname leaf1" in conn.send_command("dis cur")


def test_plain_huawei_device_type_and_system_view(leaf):
    with session(leaf, device_type="huawei") as conn:
        conn.config_mode()
        assert conn.find_prompt() == "[~leaf1]"
        conn.send_command("interface 400GE1/0/3", expect_string=r"\]")
        assert conn.find_prompt() == "[~leaf1-400GE1/0/3]"  # entering an existing view changes nothing
        conn.send_command("description pending", expect_string=r"\]")
        assert conn.find_prompt() == "[*leaf1-400GE1/0/3]"
        conn.send_command("quit", expect_string=r"\]")
        assert conn.find_prompt() == "[*leaf1]"
        conn.send_command("clear configuration candidate", expect_string=r"\]")
        assert conn.find_prompt() == "[~leaf1]"
        conn.send_command("interface LoopBack7", expect_string=r"\]")
        assert conn.find_prompt() == "[*leaf1-LoopBack7]"  # a new view is a change
        conn.send_command("clear configuration candidate", expect_string=r"\]")


def test_send_config_set_commit_and_effects(leaf):
    with session(leaf) as conn:
        conn.send_config_set(["interface 400GE1/0/2", "description to-gpu1", "mtu 9216", "shutdown"])
        assert conn.find_prompt() == "[*leaf1-400GE1/0/2]"
        assert "description to-gpu1" not in running(conn)  # still only in the candidate
        assert leaf.interfaces["400GE1/0/2"].admin_up
        changes = conn.send_command("display configuration candidate changes")
        assert "interface 400GE1/0/2\n+ description to-gpu1\n+ mtu 9216\n+ shutdown" in changes
        conn.commit()
        assert conn.find_prompt() == "<leaf1>"
        assert "interface 400GE1/0/2\n description to-gpu1\n mtu 9216\n shutdown" in running(conn)
    port = leaf.interfaces["400GE1/0/2"]
    assert (port.description, port.mtu, port.admin_up) == ("to-gpu1", 9216, False)
    with session(leaf) as conn:
        configure(conn, ["interface 400GE1/0/2", "undo shutdown", "undo description"])
        commit(conn)
    assert (port.description, port.admin_up) == ("", True)


def test_rejected_lines_print_vrp_errors_and_stay_out_of_the_candidate(leaf):
    with session(leaf) as conn:
        output = configure(conn, ["interface 400GE1/0/1", "foo bar", "mtu 99999", "description ok"])
        assert "                   ^\nError: Unrecognized command found at '^' position." in output
        assert "Error: Wrong parameter found at '^' position." in output
        for line, message in [
            ("interface", "Incomplete command"),
            ("shutdown now", "Too many parameters"),
            ("interface 400GE1/0/99", "Wrong parameter"),
            ("d", "Ambiguous command"),
        ]:
            reply = conn.send_command(line, expect_string=r"\]\s*$")
            assert f"Error: {message} found at '^' position." in reply, (line, reply)
        changes = conn.send_command("display configuration candidate changes")
        assert "foo" not in changes and "99999" not in changes and "description ok" in changes
        commit(conn)
        config = running(conn)
    assert "foo bar" not in config and "mtu 99999" not in config
    assert leaf.interfaces["400GE1/0/1"].description == "ok"


def test_lines_that_reference_missing_things_are_refused(leaf):
    with session(leaf) as conn:
        output = configure(
            conn,
            [
                "interface 400GE1/0/3",
                "qos queue 3 wred nosuch",
                "ip address 10.9.9.0 31",
                "dcb pfc enable gold mode manual",
                "undo portswitch",
                "ip address 10.9.9.0 31",
                "quit",
                "dcb pfc gold",
                "priority 3",
                "interface 400GE1/0/3",
                "dcb pfc enable gold mode manual",
            ],
        )
        assert "Error: The drop profile nosuch does not exist." in output
        assert "Error: The interface is a Layer 2 interface." in output
        assert "Error: The PFC profile gold does not exist." in output
        changes = conn.send_command("display configuration candidate changes")
        assert "wred nosuch" not in changes
        assert "+ undo portswitch\n+ ip address 10.9.9.0 31\n+ dcb pfc enable gold mode manual" in changes
        commit(conn)
    assert leaf.qos.pfc_priorities == frozenset({3})


def test_leaving_with_uncommitted_changes_asks(leaf):
    with session(leaf) as conn:
        configure(conn, ["interface 400GE1/0/3", "description pending"])
        question = conn.send_command("return", expect_string=r"\[Y\(yes\)/N\(no\)/C\(cancel\)\]:")
        assert "Uncommitted configurations found, commit them before exiting?" in question
        assert "Please choose" in conn.send_command("maybe", expect_string=r"\[Y/N/C\]:")
        conn.send_command("c", expect_string=r"\]")
        assert conn.find_prompt() == "[*leaf1-400GE1/0/3]"
        conn.send_command("return", expect_string=r":")
        conn.send_command("n", expect_string=r">")
        assert conn.find_prompt() == "<leaf1>"
        assert "pending" not in running(conn)
        configure(conn, ["interface 400GE1/0/3", "description kept"])
        conn.send_command("return", expect_string=r":")
        conn.send_command("y", expect_string=r">")
        assert "description kept" in running(conn)


def test_commit_trial_reverts_unless_confirmed(leaf):
    with session(leaf) as conn:
        configure(conn, ["interface 400GE1/0/4", "description trial-1"])
        output = conn.send_command("commit trial 1", expect_string=r"\]")
        assert "roll back" in output
        assert "Running" in conn.send_command("display configuration trial status")
        assert leaf.interfaces["400GE1/0/4"].description == "trial-1"
        time.sleep(1.6)
        assert leaf.interfaces["400GE1/0/4"].description == ""
        assert "trial-1" not in running(conn)
        assert "No trial" in conn.send_command("display configuration trial status")

        configure(conn, ["interface 400GE1/0/4", "description trial-2"])
        conn.send_command("commit trial 1", expect_string=r"\]")
        assert "confirmed" in conn.send_command("commit", expect_string=r"\]")
        time.sleep(1.4)
        assert "description trial-2" in running(conn)
        listing = conn.send_command("display configuration commit list")
        assert "1000000002" in listing and "1000000001" not in listing  # the expired trial left no point


def test_abort_trial_and_rollback_last(leaf):
    with session(leaf) as conn:
        configure(conn, ["interface 400GE1/0/4", "description first"])
        commit(conn)
        configure(conn, ["interface 400GE1/0/4", "description second"])
        conn.send_command("commit trial 60", expect_string=r"\]")
        conn.send_command("abort trial", expect_string=r"\[Y/N\]:")
        assert "rollback succeeded" in conn.send_command("y", expect_string=r"\]")
        assert leaf.interfaces["400GE1/0/4"].description == "first"
        conn.send_command("return", expect_string=r">\s*$")
        history = conn.send_command("display configuration commit changes last 1")
        assert "Commit ID: 1000000001" in history and "+ description first" in history
        conn.send_command("rollback configuration last 1", expect_string=r"\[Y/N\]:")
        conn.send_command("y", expect_string=r">")
        assert leaf.interfaces["400GE1/0/4"].description == ""
        assert "description first" not in running(conn)


def test_save_and_reboot(leaf):
    with session(leaf) as conn:
        configure(conn, ["interface 400GE1/0/3", "description saved"])
        commit(conn)
        assert "Save the configuration successfully" in conn.save_config()
        assert "description saved" in conn.send_command("display saved-configuration")
        configure(conn, ["interface 400GE1/0/3", "description unsaved"])
        commit(conn)
    huawei_vrp.reboot(leaf)
    assert leaf.interfaces["400GE1/0/3"].description == "saved"
    with session(leaf) as conn:
        assert "description saved" in running(conn)


def test_wrong_password_is_refused(leaf):
    with pytest.raises(NetmikoAuthenticationException):
        connect(leaf, password="wrong")


def test_switch_down_closes_sessions_and_refuses(leaf):
    conn = connect(leaf)
    leaf.alive = False
    try:
        deadline = time.time() + 3
        refused = False
        while time.time() < deadline and not refused:
            probe = socket.socket()
            probe.settimeout(1)
            refused = probe.connect_ex((leaf.mgmt_address, leaf.ssh_port)) != 0
            probe.close()
            time.sleep(0.05)
        assert refused
        transport = conn.remote_conn.get_transport()
        while transport.is_active() and time.time() < deadline:  # the close is in flight
            time.sleep(0.05)
        assert not transport.is_active()
        with pytest.raises((NetmikoTimeoutException, paramiko.SSHException, OSError)):
            connect(leaf)
    finally:
        leaf.alive = True
        conn.disconnect()
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            with session(leaf) as again:
                assert again.find_prompt() == "<leaf1>"
                break
        except NetmikoTimeoutException:
            time.sleep(0.1)
    else:
        pytest.fail("switch did not answer again after coming back")


ROCE = [
    "dcb pfc",
    "priority 3",
    "quit",
    "dcb pfc deadlock-detect interval 10",
    "drop-profile roce-ecn",
    "color green buffer-size low-limit 153600 high-limit 1536000 discard-percentage 20",
    "quit",
    "diffserv domain default",
    "ip-dscp-inbound 48 phb cs6 green",
    "quit",
    "interface 400GE1/0/1",
    "mtu 9216",
    "trust dscp",
    "dcb pfc enable mode manual",
    "qos queue 3 wred roce-ecn",
    "qos queue 3 ecn",
    "qos pq 6 to 7",
    "dcb pfc",
    "priority 3 deadlock-detect time 5",
]


def test_roce_configuration_changes_qos(leaf):
    assert leaf.qos.pfc_priorities == frozenset() and leaf.qos.ecn == {}
    with session(leaf) as conn:
        output = configure(conn, ROCE)
        assert "Error" not in output
        commit(conn)
    qos = leaf.qos
    assert qos.pfc_priorities == frozenset({3})
    assert qos.ecn[3].min_kbytes == 150 and qos.ecn[3].max_kbytes == 1500 and qos.ecn[3].max_probability == 0.2
    assert qos.dscp_to_tc[26] == 3 and qos.dscp_to_tc[48] == 6
    assert qos.pfc_watchdog and qos.pfc_watchdog_timeout_ms == 50
    assert qos.strict_priority_tcs == frozenset({6, 7})
    assert leaf.interfaces["400GE1/0/1"].mtu == 9216


@pytest.mark.timeout(120)
def test_one_process_serves_256_switches():
    port = free_port("127.11.2.1")
    switches = [make_switch(f"sw{i:03d}", "huawei_vrp", f"127.11.2.{i}", ssh_port=port, ports=2) for i in range(256)]
    server = huawei_vrp.serve(switches, CREDENTIAL)
    try:
        for switch in (switches[0], switches[128], switches[255]):
            with session(switch) as conn:
                assert conn.find_prompt() == f"<{switch.hostname}>"
    finally:
        server.stop()


def _raw_client(switch) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        switch.mgmt_address,
        port=switch.ssh_port,
        username=CREDENTIAL.username,
        password=CREDENTIAL.password,
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
    )
    return client


def _read_until(channel, marker: str, timeout: float = 5.0) -> str:
    data = ""
    deadline = time.time() + timeout
    while marker not in data:
        assert time.time() < deadline, f"never saw {marker!r} in {data[-300:]!r}"
        if channel.recv_ready():
            data += channel.recv(65536).decode()
        else:
            time.sleep(0.01)
    return data


def test_output_pages_until_screen_length_zero(leaf):
    client = _raw_client(leaf)
    try:
        shell = client.invoke_shell()
        _read_until(shell, "<leaf1>")
        shell.send("display current-configuration\n")
        first = _read_until(shell, "---- More ----")
        assert "sysname leaf1" in first and "return" not in first.split("display current-configuration", 1)[1]
        shell.send(" ")
        rest = _read_until(shell, "return\r\n<leaf1>")
        assert "user-interface vty 0 4" in rest
        shell.send("display current-configuration\n")
        _read_until(shell, "---- More ----")
        shell.send("q")
        stopped = _read_until(shell, "<leaf1>")
        assert "user-interface" not in stopped
        shell.send("screen-length 0 temporary\n")
        _read_until(shell, "current user terminal interface only.")
        shell.send("display current-configuration\n")
        whole = _read_until(shell, "return\r\n<leaf1>")
        assert "---- More ----" not in whole
    finally:
        client.close()


def test_exec_channel_runs_one_command(leaf):
    client = _raw_client(leaf)
    try:
        _stdin, stdout, _stderr = client.exec_command("display version", timeout=5)
        text = stdout.read().decode()
        assert "VRP (R) software" in text and "<leaf1>" not in text
    finally:
        client.close()


GRAMMAR_CASES = [
    # (view, typed line, expected normalised text or error kind, error column)
    ("system", "int 400ge 1/0/2", "interface 400GE1/0/2", None),
    ("system", "interface LoopBack 0", "interface LoopBack0", None),
    ("system", "interface 400GE1/0/9", "wrong", 10),
    ("system", "interface", "incomplete", 10),
    ("system", "frobnicate", "unrecognized", 0),
    ("system", "dcb pfc deadlock-detect interval 10", "dcb pfc deadlock-detect interval 10", None),
    ("system", "dcb pfc deadlock-detect interval 0", "wrong", 33),
    ("interface", "dcb pfc enable mode manual", "dcb pfc enable mode manual", None),
    ("interface", "dcb pfc enable mode sometimes", "unrecognized", 20),
    ("interface", "qos queue 3 wred roce", "qos queue 3 wred roce", None),
    ("interface", "qos queue 8 ecn", "wrong", 10),
    ("interface", "ip address 10.0.0.1 255.255.255.254", "ip address 10.0.0.1 255.255.255.254", None),
    ("interface", "ip address 10.0.0.300 31", "wrong", 11),
    ("interface", "shutdown now", "toomany", 9),
    ("interface", "mtu", "incomplete", 4),
    ("drop", "color green low-limit 20 high-limit 80 discard-percentage 10", None, None),
    ("drop", "color blue low-limit 20 high-limit 80 discard-percentage 10", "unrecognized", 6),
    ("bgp", "peer 10.0.0.0 as-number 65001", "peer 10.0.0.0 as-number 65001", None),
    ("bgp-af", "maximum load-balancing 64", "maximum load-balancing 64", None),
    ("lb", "ipv4 field sip dip sport dport protocol", "ipv4 field sip dip sport dport protocol", None),
    ("lb", "ipv4 field sip sip", "wrong", 15),
    ("ai-ecn", "assign queue 3 model ai_ecn_hpc", "assign queue 3 model ai_ecn_hpc", None),
]


@pytest.mark.parametrize(("view", "line", "expected", "column"), GRAMMAR_CASES)
def test_grammar_table(view, line, expected, column):
    from fabric_ops.lab.huawei_vrp.grammar import VIEWS, Context, Failure, match

    context = Context({f"400ge1/0/{i}": f"400GE1/0/{i}" for i in range(1, 5)})
    result = match(VIEWS[view], line, context)
    if column is None:
        assert not isinstance(result, Failure), result
        assert result.text == (expected or line)
    else:
        assert isinstance(result, Failure)
        assert (result.kind, result.column) == (expected, column)


def test_effects_table():
    from fabric_ops.lab.huawei_vrp.config import parse
    from fabric_ops.lab.huawei_vrp.effects import compute

    names = ["400GE1/0/1", "400GE1/0/2"]
    base = compute(parse("interface 400GE1/0/1\n mtu 9216\n shutdown\n"), names)
    assert base.qos.pfc_priorities == frozenset() and base.qos.dscp_to_tc == {}
    assert base.admin_up == {"400GE1/0/1": False, "400GE1/0/2": True}
    assert base.mtu == {"400GE1/0/1": 9216, "400GE1/0/2": 1500}
    # A profile defined but applied nowhere does nothing; applied, it makes the priority lossless.
    profile = "dcb pfc\n priority 3\n priority 4\n"
    assert compute(parse(profile), names).qos.pfc_priorities == frozenset()
    applied = compute(parse(profile + "interface 400GE1/0/2\n dcb pfc enable\n"), names).qos
    assert applied.pfc_priorities == frozenset({3, 4}) and applied.pfc_watchdog_timeout_ms == 100
    # ECN thresholds in percent of the queue, and the default profile when no WRED profile is applied.
    pct = compute(
        parse(
            "drop-profile p\n ecn low-limit 10 high-limit 50 discard-percentage 30\ninterface 400GE1/0/1\n"
            " qos queue 3 wred p\n qos queue 3 ecn\n qos queue 4 ecn\n"
        ),
        names,
    ).qos
    assert (pct.ecn[3].min_kbytes, pct.ecn[3].max_kbytes, pct.ecn[3].max_probability) == (409, 2048, 0.3)
    assert pct.ecn[4].min_kbytes == 4096 and pct.ecn[4].max_probability == 1.0
    # DSCP remarking in the default domain moves a code point to another queue.
    remapped = compute(
        parse("diffserv domain default\n ip-dscp-inbound 26 phb af4\ninterface 400GE1/0/1\n trust dscp\n"), names
    ).qos
    assert remapped.dscp_to_tc[26] == 4 and remapped.dscp_to_tc[46] == 5 and remapped.dscp_to_tc[0] == 0
    # AI ECN marks on lossless queues only, and only where no static ECN is configured.
    ai = "ai-service\n ai-ecn\n  ai-ecn enable\n  assign queue 3\n  assign queue 5\n"
    lossless = profile.replace(" priority 4\n", "") + "interface 400GE1/0/1\n dcb pfc enable mode manual\n"
    ai_qos = compute(parse(ai + lossless), names).qos
    assert set(ai_qos.ecn) == {3} and ai_qos.ecn[3].min_kbytes > 0
    assert compute(parse(ai.replace("  ai-ecn enable\n", "") + lossless), names).qos.ecn == {}


def test_a_taken_address_fails_cleanly(lab):
    leaf = lab[0]
    clash = make_switch("clash", "huawei_vrp", leaf.mgmt_address, ssh_port=PORT)
    first = make_switch("first", "huawei_vrp", "127.11.0.9", ssh_port=PORT)
    with pytest.raises(LabError, match=r"clash: cannot listen on 127\.11\.0\.1"):
        huawei_vrp.serve([first, clash], CREDENTIAL)
    # The listener opened before the failure was released: the port can be bound again.
    again = huawei_vrp.serve([first], CREDENTIAL)
    again.stop()


def test_candidates_are_private_per_session_and_commits_merge(leaf):
    with session(leaf) as first, session(leaf) as second:
        configure(first, ["interface 400GE1/0/2", "description from-first"])
        configure(second, ["interface 400GE1/0/3", "description from-second"])
        assert "from-second" not in first.send_command("display configuration candidate changes")
        assert "from-first" not in second.send_command("display configuration candidate changes")
        commit(first)
        commit(second)
    assert leaf.interfaces["400GE1/0/2"].description == "from-first"
    assert leaf.interfaces["400GE1/0/3"].description == "from-second"


def test_reboot_drops_a_pending_trial(leaf):
    with session(leaf) as conn:
        configure(conn, ["interface 400GE1/0/2", "description in-trial"])
        conn.send_command("commit trial 30", expect_string=r"\]")
    assert leaf.interfaces["400GE1/0/2"].description == "in-trial"
    huawei_vrp.reboot(leaf)
    assert leaf.interfaces["400GE1/0/2"].description == ""
    with session(leaf) as conn:
        assert "No trial" in conn.send_command("display configuration trial status")
        assert "in-trial" not in running(conn)
