"""Lab lifecycle: building from the database, the control channel, `manage.py lab` as a real process, end to end.

Listeners use 127.13.0.0/16 (this suite's block).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError
from fabric_ops.lab.api import Lab, LabClient
from fabric_ops.lab.control import ControlServer
from fabric_ops.lab.spec import build_from_db
from fabric_ops.lab.synthetic import clos
from fabric_ops.telemetry.influxd import free_ports

ROOT = Path(__file__).resolve().parents[2]


EAPI, SSH, GNMI = free_ports("127.13.0.1", 3)  # kernel-picked: parallel runs never collide


def seed_tiny_fabric(third_octet: int = 2, ports: tuple[int, int, int] = (EAPI, SSH, GNMI)) -> None:
    """A 3-switch fabric (EOS spine and leaf, VRP leaf, 2 GPU hosts) plus a DCI pair over an optical span."""
    from fabric_ops.topology.models import (
        Device,
        Fabric,
        GpuHost,
        GpuNic,
        Interface,
        Link,
        OpticalChannel,
        OpticalSpan,
        Site,
        Transceiver,
    )

    dr4 = Transceiver.objects.create(
        name="400G-DR4", form_factor="QSFP-DD", speed_gbps=400, lanes=4, reach_m=500, typical_power_w=10
    )
    zr = Transceiver.objects.create(
        name="400G-ZR+", form_factor="QSFP-DD", speed_gbps=400, lanes=1, reach_m=1_200_000, typical_power_w=21,
        coherent=True,
    )  # fmt: skip
    s1 = Site.objects.create(name="s1", city="San Jose")
    s2 = Site.objects.create(name="s2", city="Los Angeles")
    tiny = Fabric.objects.create(name="tiny", kind="rail-optimized", site=s1)
    dci = Fabric.objects.create(name="dci", kind="dci-backbone")
    n = iter(range(1, 100))

    def device(name, role, platform, fabric=tiny, site=s1, addr=True):
        return Device.objects.create(
            hostname=name, fabric=fabric, site=site, role=role, platform=platform, credential="lab",
            mgmt_address=f"127.13.{third_octet}.{next(n)}" if addr else None, eapi_port=ports[0], ssh_port=ports[1],
            gnmi_port=ports[2],
        )  # fmt: skip

    spine = device("spine1", "spine", "eos")
    leaf1 = device("leaf1", "leaf", "eos")
    leaf2 = device("leaf2", "leaf", "huawei_vrp")
    device("ols1", "optical-terminal", "optical", addr=False)

    def iface(dev, name, xcvr=dr4):
        return Interface.objects.create(device=dev, name=name, speed_gbps=400, lanes=xcvr.lanes, transceiver=xcvr)

    Link.objects.create(a_interface=iface(leaf1, "Ethernet2/1"), b_interface=iface(spine, "Ethernet1/1"),
                        capacity_gbps=400)  # fmt: skip
    Link.objects.create(a_interface=iface(leaf2, "400GE1/0/2"), b_interface=iface(spine, "Ethernet2/1"),
                        capacity_gbps=400)  # fmt: skip
    for i, (leaf, port) in enumerate(((leaf1, "Ethernet1/1"), (leaf2, "400GE1/0/1"))):
        host = GpuHost.objects.create(name=f"gpu{i + 1}", fabric=tiny)
        GpuNic.objects.create(host=host, rail=0, name="nic0", speed_gbps=400, leaf_interface=iface(leaf, port))
    iface(spine, "Ethernet3/1")  # uncabled

    dci1 = device("dci1", "dci", "eos", fabric=dci)
    dci2 = device("dci2", "dci", "eos", fabric=dci, site=s2)
    span = OpticalSpan.objects.create(name="s1-s2", a_site=s1, b_site=s2, length_km=600, loss_db=132,
                                      amplifier_count=7)  # fmt: skip
    wave = Link.objects.create(a_interface=iface(dci1, "Ethernet1/1", zr), b_interface=iface(dci2, "Ethernet1/1", zr),
                               kind="dci", capacity_gbps=400)  # fmt: skip
    channel = OpticalChannel.objects.create(name="ch-193100", link=wave, frequency_ghz=193100.0)
    channel.spans.add(span)


# ------------------------------------------------------------------ the spec
@pytest.mark.django_db
def test_build_from_db_makes_switches_links_nics_and_channels():
    seed_tiny_fabric()
    spec = build_from_db(None)
    assert sorted(spec.switches) == ["dci1", "dci2", "leaf1", "leaf2", "spine1"]  # the optical terminal is skipped
    assert spec.credential == "lab"
    leaf1, leaf2, spine = spec.switches["leaf1"], spec.switches["leaf2"], spec.switches["spine1"]
    assert (leaf1.platform, leaf2.platform) == ("eos", "huawei_vrp")
    assert (leaf1.mgmt_address, leaf1.eapi_port, leaf1.ssh_port, leaf1.gnmi_port) == ("127.13.2.2", EAPI, SSH, GNMI)
    assert leaf1.interfaces["Ethernet2/1"].peer == ("spine1", "Ethernet1/1")
    assert spine.interfaces["Ethernet2/1"].peer == ("leaf2", "400GE1/0/2")
    assert leaf2.interfaces["400GE1/0/1"].peer == ("host:gpu2", "nic0")
    assert leaf2.interfaces["400GE1/0/1"].kind == "host"
    assert spine.interfaces["Ethernet3/1"].peer is None
    assert len(leaf1.interfaces["Ethernet2/1"].optics) == 4
    kinds = sorted(link.kind for link in spec.links)
    assert kinds == ["dci", "fabric", "fabric", "host", "host"]
    assert {(n.host, n.leaf, n.interface) for n in spec.nics} == {
        ("gpu1", "leaf1", "Ethernet1/1"),
        ("gpu2", "leaf2", "400GE1/0/1"),
    }
    channel = spec.switches["dci2"].channels[1]
    assert (channel.name, channel.interface, channel.spans) == ("ch-193100", "Ethernet1/1", ["s1-s2"])
    assert spec.spans["s1-s2"].amplifier_count == 7

    only_tiny = build_from_db(["tiny"])
    assert sorted(only_tiny.switches) == ["leaf1", "leaf2", "spine1"]
    with pytest.raises(LabError, match="unknown fabric\\(s\\): nope"):
        build_from_db(["nope"])


@pytest.mark.django_db
def test_build_from_db_runs_physics_over_the_dci_span():
    seed_tiny_fabric()
    with Lab.start(None, serve=False, manual_clock=True, initialise=False) as lab:
        lab.advance(1.0)
        channel = lab.switches["dci1"].channels[1]
        assert 24 < channel.osnr_db < 32 and lab.switches["dci1"].interfaces["Ethernet1/1"].oper_up
        lab.inject("dci-span-degradation", "s1-s2", osnr_drop_db=3)
        lab.advance(1.0)
        assert channel.osnr_db < 26


@pytest.mark.django_db
def test_build_from_the_demo_inventory_file():
    from fabric_ops.lab.spec import build_from_inventory

    spec = build_from_inventory(ROOT / "inventory" / "lab.yml")
    assert len(spec.switches) > 10 and len(spec.fabrics) >= 2
    assert all(s.mgmt_address.startswith("127.") for s in spec.switches.values())
    dci = [s for s in spec.switches.values() if s.role == "dci"]
    assert dci and all(s.channels for s in dci)
    assert spec.spans and spec.nics
    with Lab.start(spec, serve=False, manual_clock=True, initialise=False) as lab:
        lab.advance(1.0)
        assert lab.status()["links"]["down"] == 0
        channel = next(iter(dci[0].channels.values()))
        assert 20 < channel.osnr_db < 35 and channel.pre_fec_ber < 2e-2


@pytest.mark.django_db
def test_device_without_loopback_mgmt_address_is_refused():
    from fabric_ops.topology.models import Device

    seed_tiny_fabric()
    Device.objects.filter(hostname="leaf1").update(mgmt_address="10.0.0.1")
    with pytest.raises(LabError, match=r"leaf1: mgmt_address 10\.0\.0\.1 is not a loopback address"):
        build_from_db(["tiny"])


# -------------------------------------------------------- the control channel
@pytest.fixture
def controlled_lab():
    lab = Lab.start(clos(base_address="127.13.4.1"), serve=False, initialise=False)
    stopped = []
    server = ControlServer(lab, on_shutdown=lambda: stopped.append(True), host="127.13.4.200").start()
    yield lab, server, stopped
    server.stop()
    lab.stop()


@pytest.mark.timeout(30)
def test_control_channel_requires_the_token(controlled_lab):
    _, server, _ = controlled_lab
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {server.token}"}):
        request = urllib.request.Request(server.url + "/v1/status", headers=header)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 401
    with pytest.raises(LabError, match="missing or wrong bearer token"):
        LabClient(server.url, "not-the-token").status()


@pytest.mark.timeout(30)
def test_control_channel_inject_status_clear_shutdown(controlled_lab):
    lab, server, stopped = controlled_lab
    client = LabClient(server.url, server.token)
    record = client.inject("link-down", "leaf1:Ethernet3/1", duration=60)
    assert record["kind"] == "link-down" and record["duration"] == 60
    assert not lab.switches["leaf1"].interfaces["Ethernet3/1"].oper_up
    status = client.status()
    assert status["switches"] == 4 and status["links"]["down"] == 1 and status["ticks"] > 0
    assert [f["id"] for f in status["faults"] if f["active"]] == [record["id"]]
    with pytest.raises(LabError, match="period='x' is not a number"):
        client.inject("link-flap", "leaf1:Ethernet4/1", period="x")
    with pytest.raises(LabError, match="unknown fault id 'f42'"):
        client.clear("f42")
    assert client.clear(record["id"])[0]["cleared_by"] == "operator"
    client.inject("crc-errors", "leaf2:Ethernet3/1", rate=0.001)
    assert len(client.clear(all=True)) == 1
    assert client.set_jobs([{"name": "big", "load": 0.8}])[0]["load"] == 0.8
    assert client.jobs()[0]["name"] == "big" and lab.engine.jobs[0].load == 0.8
    with pytest.raises(LabError, match="load 3 is out of range"):
        client.set_jobs([{"load": 3}])
    client.shutdown()
    assert stopped == [True]


@pytest.mark.timeout(30)
def test_control_channel_refuses_bad_lengths_and_drops_stalled_clients(controlled_lab, monkeypatch):
    import socket

    _, server, _ = controlled_lab
    host, port = server.server_address[:2]
    for length in ("-5", "ten"):
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(
                f"POST /v1/faults HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
                f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode()
            )
            reply = conn.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 400") and "Content-Length" in reply, reply
    # a client that sends half a request is cut off after the handler's timeout instead of holding a thread
    from fabric_ops.lab.control import REQUEST_TIMEOUT, _Handler

    assert _Handler.timeout == REQUEST_TIMEOUT <= 30
    monkeypatch.setattr("fabric_ops.lab.control._Handler.timeout", 0.5)
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"GET /v1/status HTTP/1.1\r\n")
        started = time.monotonic()
        assert conn.recv(4096) == b""  # closed by the server
        assert time.monotonic() - started < 4


def test_lab_client_names_a_control_file_without_url_or_token(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "control.json").write_text('{"url": "http://127.0.0.1:1"}')
    with pytest.raises(LabError, match=r"control\.json: lab control file lacks token"):
        LabClient()


def test_lab_start_refuses_an_empty_selection():
    with pytest.raises(LabError, match="empty list of switches or fabrics"):
        Lab.start([], serve=False)


# ------------------------------------------------------- `manage.py lab` itself
def _manage(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _env(base: Path) -> dict:
    env = dict(os.environ)
    env.update(
        FABRIC_OPS_VAR_DIR=str(base / "var"),
        DATABASE_URL=f"sqlite:///{base / 'lab.sqlite3'}",
        FABRIC_OPS_LOG_LEVEL="INFO",
    )
    env.pop("FABRIC_OPS_SECRETS_DIR", None)
    for key in [k for k in env if k.startswith("FABRIC_OPS_CRED_")]:
        env.pop(key)
    return env


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory) -> Path:
    """Migrate and seed a SQLite file once; each test copies it (the lab process cannot see pytest's DB)."""
    base = tmp_path_factory.mktemp("labdb")
    env = _env(base)
    migrated = _manage(env, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    seed = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); "
         f"from tests.lab.test_lifecycle import seed_tiny_fabric; seed_tiny_fabric(3, {(EAPI, SSH, GNMI)})"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "fabric_ops.settings"}, capture_output=True, text=True,
    )  # fmt: skip
    assert seed.returncode == 0, seed.stderr
    return base / "lab.sqlite3"


@pytest.fixture
def lab_env(tmp_path, seeded_db):
    shutil.copy(seeded_db, tmp_path / "lab.sqlite3")
    return _env(tmp_path), tmp_path / "var" / "lab"


@pytest.mark.timeout(300)  # a dozen Django start-ups; slow only on a loaded machine
def test_lab_up_status_inject_clear_down_as_processes(lab_env):
    env, lab_dir = lab_env
    up = subprocess.Popen(
        [sys.executable, "manage.py", "lab", "up", "--fabric", "tiny"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        control = lab_dir / "control.json"
        deadline = time.monotonic() + 60
        while not control.exists() and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert control.exists(), up.stderr.read() if up.poll() is not None else "lab up did not come up in 60 s"
        assert stat.S_IMODE(control.stat().st_mode) == 0o600
        data = json.loads(control.read_text())
        assert data["pid"] == up.pid and data["url"].startswith("http://127.0.0.1:")
        assert (lab_dir / "lab.pid").read_text().strip() == str(up.pid)

        status = _manage(env, "lab", "status", "--json")
        assert status.returncode == 0, status.stderr
        parsed = json.loads(status.stdout)
        assert parsed["switches"] == 3 and parsed["fabrics"] == ["tiny"]
        assert parsed["platforms"] == {"eos": "initialised", "huawei_vrp": "initialised"}
        assert parsed["frontends"]["eos"] == "serving 2" and parsed["frontends"]["huawei_vrp"] == "serving 1"

        again = _manage(env, "lab", "up", "--fabric", "tiny")
        assert again.returncode != 0 and "a lab is already running" in again.stderr

        injected = _manage(env, "lab", "inject", "link-down", "leaf1:Ethernet2/1", "--for", "30")
        assert injected.returncode == 0, injected.stderr
        fault = json.loads(injected.stdout)
        bad = _manage(env, "lab", "inject", "link-flap", "leaf1:Ethernet2/1", "period=-1")
        assert bad.returncode != 0 and "period='-1' is out of range" in bad.stderr
        human = _manage(env, "lab", "status")
        assert "1 active fault(s)" in human.stdout and "link-down" in human.stdout
        assert "links 3 up / 1 down" in human.stdout  # 2 fabric links + 2 host links

        cleared = _manage(env, "lab", "clear", fault["id"])
        assert cleared.returncode == 0 and json.loads(cleared.stdout)[0]["cleared_by"] == "operator"

        down = _manage(env, "lab", "down")
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=30) == 0
        assert not control.exists() and not (lab_dir / "lab.pid").exists()
        gone = _manage(env, "lab", "status")
        assert gone.returncode != 0 and "no lab is running" in gone.stderr
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=30)


@pytest.mark.timeout(300)
def test_lab_up_stops_cleanly_on_sigterm(lab_env):
    env, lab_dir = lab_env
    up = subprocess.Popen([sys.executable, "manage.py", "lab", "up", "--fabric", "tiny"], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (lab_dir / "control.json").exists() and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (lab_dir / "control.json").exists()
        up.terminate()
        assert up.wait(timeout=30) == 0
        assert not (lab_dir / "control.json").exists()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


# ------------------------------------------------------------------ end to end
ROCE_EOS = """qos map dscp 26 to traffic-class 3
interface {port}
   priority-flow-control on
   priority-flow-control priority 3 no-drop
   tx-queue 3
      random-detect ecn minimum-threshold 150 kbytes maximum-threshold 1500 kbytes max-mark-probability 10
"""


@pytest.mark.timeout(120)
def test_roce_config_pushed_with_napalm_turns_drops_into_pauses_and_marks():
    from napalm import get_network_driver

    credential = Credential("admin", "lab-e2e-secret")
    switches = clos(base_address="127.13.5.1", eapi_port=EAPI, gnmi_port=GNMI)
    with Lab.start(switches, credential=credential, frontends=("eos", "gnmi"), tick=0.2, max_duty=None) as lab:
        lab.inject("incast", "host:gpu1-1:nic0", fan_in=3)
        _wait_ticks(lab, 3)
        leaf = lab.switches["leaf1"]
        port = leaf.interfaces["Ethernet1/1"]
        drops_before = sum(q.dropped_pkts for q in port.queues)
        assert drops_before > 0 and port.queues[3].ecn_marked_pkts == 0

        driver = get_network_driver("eos")(
            leaf.mgmt_address, credential.username, credential.password, timeout=20,
            optional_args={"port": EAPI, "transport": "https"},
        )  # fmt: skip
        driver.open()
        try:
            ports = [n for n, i in leaf.interfaces.items() if i.peer is not None]
            driver.load_merge_candidate(config="".join(ROCE_EOS.format(port=p) for p in ports))
            assert "priority-flow-control priority 3 no-drop" in driver.compare_config()
            driver.commit_config()
        finally:
            driver.close()
        assert leaf.qos.dscp_to_tc.get(26) == 3 and 3 in leaf.qos.pfc_priorities

        _wait_ticks(lab, 2)  # every tick from here on runs under the new configuration
        with leaf.lock:
            drops = sum(q.dropped_pkts for q in port.queues)
            marks = port.queues[3].ecn_marked_pkts
        _wait_ticks(lab, 5)
        with leaf.lock:
            assert sum(q.dropped_pkts for q in port.queues) == drops  # no more drops at the hot port
            assert port.queues[3].ecn_marked_pkts > marks  # DCQCN marking instead
            assert port.queues[3].transmit_pkts > 0

        # The same change seen the way the collector sees it: gNMI Get with pygnmi.
        from pygnmi.client import gNMIclient

        base = "/qos/interfaces/interface[interface-id=Ethernet1/1]/output/queues/queue[name=3]/state"
        with gNMIclient(
            target=(leaf.mgmt_address, GNMI), username=credential.username, password=credential.password,
            insecure=True, timeout=20,
        ) as client:  # fmt: skip
            first = _gnmi_values(client.get(path=[f"{base}/ecn-marked-pkts", f"{base}/dropped-pkts"]))
            _wait_ticks(lab, 3)
            second = _gnmi_values(client.get(path=[f"{base}/ecn-marked-pkts", f"{base}/dropped-pkts"]))
        assert second["ecn-marked-pkts"] > first["ecn-marked-pkts"] > 0
        assert second["dropped-pkts"] == first["dropped-pkts"]


def _wait_ticks(lab: Lab, count: int, timeout: float = 30.0) -> None:
    """Wait for ``count`` physics ticks (real time; a loaded machine stretches them)."""
    target = lab.engine.ticks + count
    deadline = time.monotonic() + timeout
    while lab.engine.ticks < target:
        assert time.monotonic() < deadline, f"physics did not tick {count} times in {timeout} s"
        time.sleep(0.05)


def _gnmi_values(response: dict) -> dict[str, int]:
    """Leaf name -> value from a pygnmi Get response."""
    out = {}
    for notification in response["notification"]:
        for update in notification["update"]:
            out[update["path"].rsplit("/", 1)[-1]] = int(update["val"])
    return out
