"""The lab's gNMI server, driven only through pygnmi (gNMIclient and the pygnmicli console script).

Listeners use 127.12.0.0/16 (this suite's block). Values are set directly on the SwitchState, the way the
physics engine moves them, and must arrive through real gRPC.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from pygnmi.client import gNMIclient, gNMIException
from pygnmi.create_gnmi_path import gnmi_path_generator
from pygnmi.spec.v080 import gnmi_pb2

from fabric_ops.devices.credentials import Credential
from fabric_ops.lab.gnmi import GnmiPathError, self_signed_certificate, serve, wire
from fabric_ops.lab.gnmi.paths import group_leaves, resolve
from fabric_ops.lab.gnmi.subscribe import Plan
from fabric_ops.lab.state import OpticalChannelState, make_switch
from fabric_ops.telemetry.influxd import free_port

pytestmark = [pytest.mark.lab]

CRED = Credential("admin", "lab-secret")
PORT = free_port("127.12.1.1")  # kernel-picked: parallel runs of this file never collide
MS = 1_000_000


def _switches():
    leaf = make_switch("leaf1", "eos", "127.12.1.1", ports=4, gnmi_port=PORT)
    vrp = make_switch("ce1", "huawei_vrp", "127.12.1.2", ports=2, gnmi_port=PORT)
    dci = make_switch("dci1", "eos", "127.12.1.3", ports=2, gnmi_port=PORT, role="dci")
    dci.channels[1] = OpticalChannelState(1, "OCH-1/1", "Ethernet1/1", 193100.0, spans=["span-a"])
    down = make_switch("flaky1", "eos", "127.12.1.4", ports=2, gnmi_port=PORT)
    return {s.hostname: s for s in (leaf, vrp, dci, down)}


@pytest.fixture(scope="module")
def lab():
    switches = _switches()
    server = serve(list(switches.values()), CRED)
    yield switches
    server.stop()


def client(host: str, password: str = CRED.password, **kw) -> gNMIclient:
    return gNMIclient(target=(host, PORT), username=CRED.username, password=password, insecure=True, **kw)


def updates(response: dict) -> dict[str, object]:
    return {u["path"]: u.get("val") for n in response.get("notification", []) for u in n.get("update", [])}


def stream_until(sub, predicate, timeout: float = 5.0):
    """Read subscription updates until predicate(update) is true; return (update, seen list)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            update = sub.get_update(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        seen.append(update)
        if predicate(update):
            return update, seen
    raise AssertionError(f"condition not met within {timeout}s; saw {seen[-3:]}")


def paths_of(update: dict) -> dict[str, object]:
    return {u["path"]: u.get("val") for u in update.get("update", {}).get("update", [])}


# --- Capabilities and Get ----------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_capabilities_lists_models_encodings_and_version(lab):
    with client("127.12.1.1") as gc:
        caps = gc.capabilities()
    models = {m["name"]: m for m in caps["supported_models"]}
    assert models["openconfig-interfaces"]["organization"] == "OpenConfig working group"
    assert models["openconfig-interfaces"]["version"] == "3.7.2"
    assert {"openconfig-qos", "openconfig-platform-transceiver", "openconfig-terminal-device"} <= set(models)
    assert {"json", "json_ietf"} <= set(caps["supported_encodings"])
    assert caps["gnmi_version"] == "0.7.0"  # what EOS reports
    with client("127.12.1.2") as gc:
        assert gc.capabilities()["gnmi_version"] == "0.8.0"


@pytest.mark.timeout(30)
def test_get_wildcards_and_leaf_values(lab):
    leaf = lab["leaf1"]
    leaf.interfaces["Ethernet2/1"].oper_up = False
    leaf.interfaces["Ethernet1/1"].queues[3].dropped_pkts = 42
    leaf.interfaces["Ethernet1/1"].pfc_rx_pause[3] = 7
    try:
        with client("127.12.1.1") as gc:
            got = updates(
                gc.get(
                    path=[
                        "/interfaces/interface[name=*]/state/oper-status",
                        "/qos/interfaces/interface[interface-id=Ethernet1/1]/output/queues/queue[name=3]/state/dropped-pkts",
                        "/qos/interfaces/interface[interface-id=*]/pfc/pfc-priorities/pfc-priority[dot1p=3]/state/statistics/pause-frames-rx",
                    ]
                )
            )
    finally:
        leaf.interfaces["Ethernet2/1"].oper_up = True
    assert got["interfaces/interface[name=Ethernet1/1]/state/oper-status"] == "UP"
    assert got["interfaces/interface[name=Ethernet2/1]/state/oper-status"] == "DOWN"
    assert len([p for p in got if p.endswith("oper-status")]) == 4
    assert (
        got["qos/interfaces/interface[interface-id=Ethernet1/1]/output/queues/queue[name=3]/state/dropped-pkts"] == 42
    )
    rx = (
        "qos/interfaces/interface[interface-id=Ethernet1/1]/pfc/pfc-priorities/pfc-priority[dot1p=3]"
        "/state/statistics/pause-frames-rx"
    )
    assert got[rx] == 7


@pytest.mark.timeout(30)
def test_get_with_prefix_and_one_notification_per_path(lab):
    lab["leaf1"].interfaces["Ethernet3/1"].in_octets = 123456789
    with client("127.12.1.1") as gc:
        response = gc.get(
            prefix="/interfaces/interface[name=Ethernet3/1]",
            path=["state/counters/in-octets", "state/admin-status"],
        )
    assert len(response["notification"]) == 2
    got = updates(response)
    assert got["interfaces/interface[name=Ethernet3/1]/state/counters/in-octets"] == 123456789
    assert got["interfaces/interface[name=Ethernet3/1]/state/admin-status"] == "UP"


@pytest.mark.timeout(30)
def test_get_container_json_ietf_is_rfc7951(lab):
    lab["leaf1"].interfaces["Ethernet1/1"].out_octets = 2**40
    with client("127.12.1.1") as gc:
        got = updates(gc.get(path=["/interfaces/interface[name=Ethernet1/1]/state"], encoding="json_ietf"))
    state = got["interfaces/interface[name=Ethernet1/1]/state"]
    assert state["openconfig-interfaces:oper-status"] == "UP"
    assert state["openconfig-interfaces:counters"]["out-octets"] == str(2**40)  # 64-bit integers are strings
    assert state["openconfig-platform-transceiver:transceiver"] == "Ethernet1/1-transceiver"


@pytest.mark.timeout(30)
def test_get_optics_dci_and_system(lab):
    dci = lab["dci1"]
    dci.interfaces["Ethernet1/1"].optics[2].input_power_dbm = -7.25
    dci.channels[1].q_value_db = 8.5
    dci.channels[1].osnr_db = 17.25
    with client("127.12.1.3") as gc:
        got = updates(
            gc.get(
                path=[
                    "/components/component[name=Ethernet1/1-transceiver]/transceiver/physical-channels/channel[index=3]/state/input-power/instant",
                    "/terminal-device/logical-channels/channel[index=1]/otn/state/q-value/instant",
                    "/components/component[name=OCH-1/1]/optical-channel/state/osnr/instant",
                    "/components/component[name=OCH-1/1]/optical-channel/state/frequency",
                    "/system/state/hostname",
                    "/system/cpus/cpu[index=*]/state/total/instant",
                    "/system/memory/state/physical",
                ]
            )
        )
    base = "components/component[name=Ethernet1/1-transceiver]/transceiver/physical-channels/channel[index=3]"
    assert got[base + "/state/input-power/instant"] == -7.25
    assert got["terminal-device/logical-channels/channel[index=1]/otn/state/q-value/instant"] == 8.5
    assert got["components/component[name=OCH-1/1]/optical-channel/state/osnr/instant"] == 17.25
    assert got["components/component[name=OCH-1/1]/optical-channel/state/frequency"] == 193100000  # MHz
    assert got["system/state/hostname"] == "dci1"
    assert got["system/cpus/cpu[index=ALL]/state/total/instant"] == 5
    assert got["system/memory/state/physical"] == 32 * 1024**3


@pytest.mark.timeout(30)
def test_get_proto_encoding_returns_typed_leaves(lab):
    lab["ce1"].interfaces["400GE1/0/1"].in_errors = 9
    with client("127.12.1.2") as gc:
        got = updates(gc.get(path=["/interfaces/interface[name=400GE1/0/1]/state/counters"], encoding="proto"))
    assert got["interfaces/interface[name=400GE1/0/1]/state/counters/in-errors"] == 9
    assert len(got) == 10  # a container is returned leaf by leaf with scalar values


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/interfaces/interface[name=Ethernet99/1]/state", grpc.StatusCode.NOT_FOUND),
        ("/no-such-model/thing", grpc.StatusCode.NOT_FOUND),
        ("/interfaces/interface[ifname=Ethernet1/1]/state", grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_get_errors(lab, path, code):
    with client("127.12.1.1") as gc, pytest.raises(gNMIException) as info:
        gc.get(path=[path])
    assert info.value.orig_exc.code() == code
    assert "leaf1" in info.value.orig_exc.details()


@pytest.mark.timeout(30)
def test_get_datatype_filters(lab):
    with client("127.12.1.1") as gc:
        config = updates(gc.get(path=["/interfaces/interface[name=Ethernet1/1]"], datatype="config"))
        operational = updates(gc.get(path=["/interfaces/interface[name=Ethernet1/1]/state"], datatype="operational"))
    entry = config["interfaces/interface[name=Ethernet1/1]"]
    assert entry["config"] == {
        "name": "Ethernet1/1",
        "type": "iana-if-type:ethernetCsmacd",
        "mtu": 1500,
        "description": "",
        "enabled": True,
    }
    assert "state" not in entry
    state = operational["interfaces/interface[name=Ethernet1/1]/state"]
    assert "oper-status" in state and "counters" in state
    assert "mtu" not in state and "name" not in state  # mirrors of configuration are not operational


@pytest.mark.timeout(30)
def test_get_unknown_origin_is_unimplemented(lab):
    with client("127.12.1.1") as gc, pytest.raises(gNMIException) as info:
        gc.get(path=["cli:show version"])
    assert info.value.orig_exc.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.timeout(30)
def test_wrong_password_is_unauthenticated(lab):
    gc = client("127.12.1.1", password="wrong")
    with pytest.raises(gNMIException) as info:
        gc.connect()
    gc.close()
    assert info.value.orig_exc.code() == grpc.StatusCode.UNAUTHENTICATED


# --- Subscribe ---------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_stream_sample_counts_intervals_and_moving_values(lab):
    iface = lab["leaf1"].interfaces["Ethernet4/1"]
    with client("127.12.1.1") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [
                    {
                        "path": "/interfaces/interface[name=Ethernet4/1]/state/counters/in-octets",
                        "mode": "sample",
                        "sample_interval": 200 * MS,
                    }
                ],
                "encoding": "json",
            }
        )
        first = sub.get_update(timeout=5)
        assert first["sync_response"] is True
        samples = []
        for _ in range(6):
            iface.in_octets += 1000
            samples.append(sub.get_update(timeout=5))
        sub.close()
    stamps = [s["update"]["timestamp"] for s in samples]
    gaps = sorted((b - a) / 1e9 for a, b in itertools.pairwise(stamps))
    # Ticks sit on a 200 ms grid; on a loaded machine one may run late, so judge the median and the minimum.
    assert 0.15 < gaps[len(gaps) // 2] < 0.3, gaps
    assert gaps[0] > 0.05, gaps  # never two samples for one tick
    values = [paths_of(s)["interfaces/interface[name=Ethernet4/1]/state/counters/in-octets"] for s in samples]
    assert values == sorted(values) and values[-1] > values[0]
    assert all(len(s["update"]["update"]) == 1 for s in samples)


@pytest.mark.timeout(30)
def test_sync_response_follows_the_initial_updates(lab):
    with client("127.12.1.1") as gc:
        raw = gc.subscribe(
            subscribe={
                "subscription": [
                    {"path": "/interfaces/interface[name=*]/state/oper-status", "mode": "on_change"},
                    {"path": "/system/state/hostname", "mode": "sample", "sample_interval": 10_000 * MS},
                ],
                "mode": "stream",
                "encoding": "json",
            }
        )
        kinds = []
        for message in raw:
            kinds.append("sync" if message.sync_response else len(message.update.update))
            if message.sync_response:
                break
        raw.cancel()
    assert kinds[-1] == "sync"
    assert sum(kinds[:-1]) == 5  # 4 oper-status + hostname, all before sync_response


@pytest.mark.timeout(30)
def test_on_change_sends_changes_only_and_heartbeats(lab):
    leaf = lab["leaf1"]
    path = "/interfaces/interface[name=*]/state/oper-status"
    with client("127.12.1.1") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [{"path": path, "mode": "on_change", "heartbeat_interval": 1500 * MS}],
                "encoding": "json",
            }
        )
        initial = sub.get_update(timeout=5)
        assert len(initial["update"]["update"]) == 4
        leaf.interfaces["Ethernet3/1"].oper_up = False
        try:
            change, _ = stream_until(sub, lambda u: "update" in u, timeout=3)
            assert paths_of(change) == {"interfaces/interface[name=Ethernet3/1]/state/oper-status": "DOWN"}
            beat, _ = stream_until(sub, lambda u: len(u.get("update", {}).get("update", [])) == 4, timeout=4)
            assert paths_of(beat)["interfaces/interface[name=Ethernet3/1]/state/oper-status"] == "DOWN"
        finally:
            leaf.interfaces["Ethernet3/1"].oper_up = True
            sub.close()


@pytest.mark.timeout(30)
def test_target_defined_streams_state_on_change(lab):
    leaf = lab["leaf1"]
    with client("127.12.1.1") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [{"path": "/interfaces/interface[name=Ethernet2/1]/state", "mode": "target_defined"}],
                "encoding": "json",
            }
        )
        initial = sub.get_update(timeout=5)
        assert "interfaces/interface[name=Ethernet2/1]/state/counters/in-octets" in paths_of(initial)
        leaf.interfaces["Ethernet2/1"].admin_up = False
        try:
            change, _ = stream_until(sub, lambda u: "update" in u, timeout=3)
        finally:
            leaf.interfaces["Ethernet2/1"].admin_up = True
            sub.close()
    got = paths_of(change)
    assert got["interfaces/interface[name=Ethernet2/1]/state/admin-status"] == "DOWN"
    assert got["interfaces/interface[name=Ethernet2/1]/state/enabled"] is False
    assert not any("counters" in p for p in got)  # counters are sampled (10 s), not sent on change


@pytest.mark.timeout(30)
def test_suppress_redundant_sends_only_changed_leaves(lab):
    iface = lab["ce1"].interfaces["400GE1/0/2"]
    with client("127.12.1.2") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [
                    {
                        "path": "/interfaces/interface[name=400GE1/0/2]/state/counters",
                        "mode": "sample",
                        "sample_interval": 100 * MS,
                        "suppress_redundant": True,
                    }
                ],
                "encoding": "json",
            }
        )
        initial = sub.get_update(timeout=5)
        assert len(initial["update"]["update"]) == 10
        with pytest.raises(TimeoutError):
            sub.get_update(timeout=0.5)  # nothing changed: nothing sent
        iface.in_discards += 5
        change = sub.get_update(timeout=3)
        sub.close()
    assert list(paths_of(change)) == ["interfaces/interface[name=400GE1/0/2]/state/counters/in-discards"]


@pytest.mark.timeout(30)
def test_updates_only_sends_sync_first_then_changes(lab):
    leaf = lab["leaf1"]
    with client("127.12.1.1") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [{"path": "/interfaces/interface[name=*]/state/oper-status", "mode": "on_change"}],
                "updates_only": True,
                "encoding": "json",
            }
        )
        first = sub.get_update(timeout=5)
        assert first == {"update": {}, "sync_response": True}
        leaf.interfaces["Ethernet4/1"].oper_up = False
        try:
            change = sub.get_update(timeout=3)
        finally:
            leaf.interfaces["Ethernet4/1"].oper_up = True
            sub.close()
    assert paths_of(change) == {"interfaces/interface[name=Ethernet4/1]/state/oper-status": "DOWN"}


@pytest.mark.timeout(30)
def test_once_dumps_then_closes(lab):
    with client("127.12.1.2") as gc:
        sub = gc.subscribe_once(
            subscribe={"subscription": [{"path": "/interfaces/interface[name=*]/state/counters"}], "encoding": "json"}
        )
        received = list(sub)  # iteration ends at sync_response
        sub._subscribe_thread.join(5)
        assert not sub._subscribe_thread.is_alive()  # the target closed the RPC
    assert received[-1] == {"sync_response": True}
    assert sum(len(r["update"]["update"]) for r in received[:-1]) == 20


@pytest.mark.timeout(30)
def test_poll_answers_each_poll_with_current_values(lab):
    iface = lab["ce1"].interfaces["400GE1/0/1"]
    path = "interfaces/interface[name=400GE1/0/1]/state/counters/out-octets"
    iface.out_octets = 500
    with client("127.12.1.2") as gc:
        sub = gc.subscribe_poll(subscribe={"subscription": [{"path": "/" + path}], "encoding": "json"})
        # pygnmi sends a Poll and reads up to the next sync_response; the target also answered the
        # subscription itself with a dump (gNMI 3.5.1.2: only updates_only suppresses it), so each read
        # returns the answer before the one its own Poll asked for.
        first = sub.get_update(timeout=5)
        iface.out_octets = 2000
        answers = [sub.get_update(timeout=5) for _ in range(3)]
        sub.close()
    assert paths_of(first) == {path: 500}
    values = [paths_of(a)[path] for a in answers]
    assert all(len(a["update"]["update"]) == 1 and a["sync_response"] for a in answers)
    assert set(values) <= {500, 2000} and values[-2:] == [2000, 2000]


@pytest.mark.timeout(30)
def test_unknown_paths_do_not_kill_the_stream(lab):
    with client("127.12.1.1") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [
                    {"path": "/interfaces/interface[name=Nope9/9]/state/oper-status", "mode": "on_change"},
                    {"path": "/no/such/path", "mode": "sample", "sample_interval": 200 * MS},
                    {"path": "/interfaces/interface[bogus=1]/state", "mode": "on_change"},
                    {"path": "/system/state/hostname", "mode": "sample", "sample_interval": 200 * MS},
                ],
                "encoding": "json",
            }
        )
        initial = sub.get_update(timeout=5)
        later = sub.get_update(timeout=5)
        sub.close()
    assert paths_of(initial) == {"system/state/hostname": "leaf1"}
    assert paths_of(later) == {"system/state/hostname": "leaf1"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("field", ["sample_interval", "heartbeat_interval"])
def test_interval_below_minimum_is_invalid_argument(lab, field):
    with client("127.12.1.1") as gc:
        raw = gc.subscribe(
            subscribe={
                "subscription": [{"path": "/system/state", "mode": "sample", "sample_interval": 1000 * MS, field: MS}],
                "mode": "stream",
                "encoding": "json",
            }
        )
        with pytest.raises(grpc.RpcError) as info:
            next(raw)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "minimum" in info.value.details()


@pytest.mark.timeout(30)
def test_unsupported_encoding_is_unimplemented(lab):
    with client("127.12.1.1") as gc:
        raw = gc.subscribe(
            subscribe={"subscription": [{"path": "/system/state", "mode": "on_change"}], "encoding": "ascii"}
        )
        with pytest.raises(grpc.RpcError) as info:
            next(raw)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.timeout(30)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # pygnmi's thread re-raises
def test_switch_down_aborts_streams_and_refuses_rpcs(lab):
    flaky = lab["flaky1"]
    with client("127.12.1.4") as gc:
        sub = gc.subscribe_stream(
            subscribe={
                "subscription": [{"path": "/interfaces/interface[name=*]/state/oper-status", "mode": "on_change"}]
            }
        )
        sub.get_update(timeout=5)
        flaky.alive = False
        try:
            sub._subscribe_thread.join(5)
            assert not sub._subscribe_thread.is_alive()
            assert sub.error.code() == grpc.StatusCode.UNAVAILABLE
            with pytest.raises(gNMIException) as info:
                gc.get(path=["/system/state/hostname"])
            assert info.value.orig_exc.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            flaky.alive = True
        assert updates(gc.get(path=["/system/state/hostname"])) == {"system/state/hostname": "flaky1"}


@pytest.mark.timeout(60)
def test_tls_with_fetched_certificate_and_with_path_cert(tmp_path: Path):
    switch = make_switch("tls1", "eos", "127.12.2.1", ports=2, gnmi_port=PORT)
    cert, key = self_signed_certificate("tls1", ["127.12.2.1"])
    server = serve([switch], CRED, tls=(cert, key))
    try:
        # pygnmi's insecure=False path: fetch the server certificate, trust it, override the name check.
        with gNMIclient(("127.12.2.1", PORT), username="admin", password=CRED.password, skip_verify=True) as gc:
            assert updates(gc.get(path=["/system/state/hostname"])) == {"system/state/hostname": "tls1"}
        cert_file = tmp_path / "tls1.pem"
        cert_file.write_bytes(cert)
        with gNMIclient(("127.12.2.1", PORT), username="admin", password=CRED.password, path_cert=str(cert_file)) as gc:
            assert gc.capabilities()["gnmi_version"] == "0.7.0"
        plain = gNMIclient(("127.12.2.1", PORT), username="admin", password=CRED.password, insecure=True)
        with pytest.raises(grpc.FutureTimeoutError):
            plain.connect(timeout=2)  # a TLS listener does not speak plaintext gRPC
        plain.close()
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_pygnmicli_get_against_a_lab_switch(lab, tmp_path: Path):
    lab["leaf1"].interfaces["Ethernet1/1"].in_unicast_pkts = 31337
    cli = Path(sys.executable).parent / "pygnmicli"
    result = subprocess.run(
        [
            str(cli),
            "-t",
            f"127.12.1.1:{PORT}",
            "-u",
            CRED.username,
            "-p",
            CRED.password,
            "-i",
            "-o",
            "get",
            "-x",
            "/interfaces/interface[name=Ethernet1/1]/state/counters/in-unicast-pkts",
        ],
        cwd=tmp_path,  # pygnmicli writes log/execution.log in its working directory
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout[result.stdout.index("{") :])
    assert updates(body) == {"interfaces/interface[name=Ethernet1/1]/state/counters/in-unicast-pkts": 31337}


@pytest.mark.timeout(60)
def test_one_notification_per_interface_when_bundling_is_off():
    switch = make_switch("nb1", "eos", "127.12.3.1", ports=3, gnmi_port=PORT)
    server = serve([switch], CRED, bundle=False)
    try:
        with client("127.12.3.1") as gc:
            raw = gc.subscribe(
                subscribe={
                    "subscription": [
                        {
                            "path": "/interfaces/interface[name=*]/state/counters",
                            "mode": "sample",
                            "sample_interval": 10_000 * MS,
                        }
                    ],
                    "mode": "stream",
                    "encoding": "json",
                }
            )
            notifications = []
            for message in raw:
                if message.sync_response:
                    break
                notifications.append(message.update)
            raw.cancel()
    finally:
        server.stop()
    assert len(notifications) == 3
    prefixes = [[(e.name, dict(e.key)) for e in n.prefix.elem] for n in notifications]
    assert prefixes[0] == [("interfaces", {}), ("interface", {"name": "Ethernet1/1"})]
    assert all(len(n.update) == 10 and n.update[0].path.elem[0].name == "state" for n in notifications)


# --- pure encoding and schema tables -----------------------------------------------------------


def _parse_update(part: bytes) -> gnmi_pb2.Update:
    return gnmi_pb2.Notification.FromString(part).update[0]


@pytest.mark.parametrize(
    ("kind", "fd", "encoding", "value", "field", "expected"),
    [
        ("u64", 0, wire.JSON, 2**63 + 5, "json_val", str(2**63 + 5).encode()),
        ("u64", 0, wire.JSON_IETF, 17, "json_ietf_val", b'"17"'),
        ("uint", 0, wire.JSON_IETF, 17, "json_ietf_val", b"17"),
        ("dec", 2, wire.JSON, -2.155, "json_val", b"-2.15"),
        ("dec", 18, wire.JSON_IETF, 1e-9, "json_ietf_val", b'"0.000000001000000000"'),
        ("str", 0, wire.JSON, 'a"b', "json_val", b'"a\\"b"'),
        ("bool", 0, wire.JSON, True, "json_val", b"true"),
        ("u64", 0, wire.PROTO, 2**64 - 1, "uint_val", 2**64 - 1),
        ("dec", 2, wire.PROTO, -7.25, "double_val", -7.25),
        ("ident", 0, wire.PROTO, "openconfig-platform-types:ACTIVE", "string_val", "openconfig-platform-types:ACTIVE"),
    ],
)
def test_value_encoders_round_trip_through_gnmi_pb2(kind, fd, encoding, value, field, expected):
    head = wire.update_head(wire.encode_path([("a", None), ("b", {"k": "v 1"}), ("c", None)]))
    part = wire.encode_update(head, wire.value_encoder(kind, fd, encoding)(value))
    update = _parse_update(part)
    assert update.val.WhichOneof("value") == field
    assert getattr(update.val, field) == expected
    assert [(e.name, dict(e.key)) for e in update.path.elem] == [("a", {}), ("b", {"k": "v 1"}), ("c", {})]


def test_fixed_width_templates_decode_to_the_same_values():
    switch = make_switch("t1", "eos", "127.12.9.9", ports=3)
    for n, iface in enumerate(switch.interfaces.values()):
        iface.in_octets = 10**19 + n
        iface.pfc_tx_pause[3] = 25  # '%' is byte 37: must survive the %-escaping of constant bytes
        iface.optics[0].input_power_dbm = -3.14159
    results = {}
    for encoding, bundle in [(wire.JSON, True), (wire.JSON, False), (wire.PROTO, True), (wire.JSON_IETF, True)]:
        plan = Plan(encoding, bundle)
        for path in ["/interfaces/interface[name=*]/state/counters", "/components/component[name=*]/transceiver"]:
            for cursor, leaves in group_leaves(switch, [(p.name, dict(p.key)) for p in gnmi_path_generator(path).elem]):
                plan.add(cursor, leaves)
        plan.finalize()
        values = {}
        for message in plan.notifications(plan.render(switch, True), 1):
            notification = gnmi_pb2.SubscribeResponse.FromString(message).update
            prefix = [e.name + str(dict(e.key)) for e in notification.prefix.elem]
            for u in notification.update:
                key = "/".join(prefix + [e.name + str(dict(e.key)) for e in u.path.elem])
                kind = u.val.WhichOneof("value")
                value = getattr(u.val, kind)
                values[key] = json.loads(value) if kind in ("json_val", "json_ietf_val") else value
        results[(encoding, bundle)] = values
    assert results[(wire.JSON, True)] == results[(wire.JSON, False)]
    ietf = results[(wire.JSON_IETF, True)]
    assert ietf["interfaces{}/interface{'name': 'Ethernet1/1'}/state{}/counters{}/in-octets{}"] == str(10**19)

    def number(value):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value

    assert ietf.keys() == results[(wire.JSON, True)].keys()
    for key, value in results[(wire.JSON, True)].items():
        assert number(ietf[key]) == (pytest.approx(value) if isinstance(value, float) else number(value)), key
    proto = results[(wire.PROTO, True)]
    json_values = results[(wire.JSON, True)]
    assert proto.keys() == json_values.keys()
    for key, value in proto.items():
        expected = pytest.approx(value, abs=0.005) if isinstance(value, float) else value
        assert json_values[key] == expected, key
    assert any(v == 10**19 + 2 for v in json_values.values())


def test_schema_rejects_wrong_keys_and_resolves_wildcards():
    switch = make_switch("t2", "huawei_vrp", "127.12.9.9", ports=2)
    with pytest.raises(GnmiPathError):
        resolve(switch, [("interfaces", {}), ("interface", {"ifname": "x"})])
    with pytest.raises(GnmiPathError):
        resolve(switch, [("system", {"name": "x"})])
    found = resolve(switch, [("openconfig-interfaces:interfaces", {}), ("interface", {}), ("*", {})])
    assert {c.path[1][1]["name"] for c in found} == {"400GE1/0/1", "400GE1/0/2"}
    assert resolve(switch, [("interfaces", {}), ("interface", {"name": "nope"})]) == []


def test_single_copy_message_matches_the_composed_encoding():
    head = wire.update_head(wire.encode_path([("a", None)]))
    updates_ = [wire.encode_update(head, wire.value_encoder("u64", 0, wire.JSON)(n)) for n in range(300)]
    prefix = wire.encode_path((), target="leaf1")
    composed = wire.subscribe_update(wire.encode_notification(7, prefix, updates_))
    assert wire.subscribe_update_parts(7, prefix, updates_, sum(map(len, updates_))) == composed
    parsed = gnmi_pb2.SubscribeResponse.FromString(composed)
    assert parsed.update.timestamp == 7 and parsed.update.prefix.target == "leaf1" and len(parsed.update.update) == 300
