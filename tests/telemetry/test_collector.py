"""The collector end to end: the virtual lab (gNMI over gRPC, pygnmi unmodified) -> InfluxDB 1.6 (real influxd
behind the write proxy) and Redis (latest values, events, health).

The lab fabrics come from inventory/lab.yml, moved to this suite's loopback block (127.16.0.0/16). Profiles are
the defaults with every SAMPLE interval at 1 s (a SubscriptionProfile row, which also exercises the model), so a
test sees two samples of every counter within seconds.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from fabric_ops.lab.api import Lab
from fabric_ops.telemetry.collector import Collector, CollectorConfig
from fabric_ops.telemetry.handoff import Handoff, collection_health, latest_values, read_events
from fabric_ops.telemetry.influxd import free_port
from fabric_ops.telemetry.models import SubscriptionProfile
from fabric_ops.telemetry.normalise import MEASUREMENTS
from fabric_ops.telemetry.query import InfluxQuery
from fabric_ops.telemetry.sharding import Shard
from fabric_ops.telemetry.subscriptions import DEFAULT_PROFILES
from fabric_ops.telemetry.targets import load_targets
from fabric_ops.telemetry.writer import InfluxWriter
from fabric_ops.topology.inventory import import_inventory
from fabric_ops.topology.models import Device, Link

pytestmark = [pytest.mark.django_db, pytest.mark.lab, pytest.mark.timeout(120)]

LAB_INVENTORY = Path(django_settings.INVENTORY_DIR) / "lab.yml"
FABRICS = ["sjc-ai", "dci"]


def fast_rows() -> None:
    for (role, platform), profile in DEFAULT_PROFILES.items():
        SubscriptionProfile.objects.create(
            name=f"fast-{role or 'any'}",
            role=role,
            platform=platform,
            subscriptions=[{"path": s.path, "mode": s.mode, "interval_s": 1} for s in profile.subscriptions],
        )


@pytest.fixture
def lab_db(settings, tmp_path):
    settings.SECRETS_DIR = tmp_path / "secrets"
    import_inventory(LAB_INVENTORY)
    port = free_port("127.16.0.1")  # not 6030: two runs of this folder (yours and a full suite) may overlap
    for index, device in enumerate(Device.objects.order_by("hostname"), start=1):
        device.mgmt_address = f"127.16.0.{index}"
        device.gnmi_port = port
        device.save(update_fields=["mgmt_address", "gnmi_port"])
    fast_rows()


@pytest.fixture
def lab(lab_db):
    with Lab.start(FABRICS, frontends=("gnmi",)) as running:
        yield running


@pytest.fixture
def sink(influx, database, tmp_path):
    """A writer into a fresh database and a query on it."""
    writer = InfluxWriter(
        url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "spool", flush_interval=0.2
    ).start()
    query = InfluxQuery(influx.url, f"{database}/autogen")
    yield writer, query
    writer.close(timeout=5)


@pytest.fixture
def handoff():
    prefix = f"fabric_ops:test:{uuid.uuid4().hex[:8]}"
    h = Handoff(prefix=prefix, interval=0.05).start()
    yield h
    h.close()
    client = redis.Redis.from_url(h.url)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


FAST = CollectorConfig(backoff_initial=0.2, backoff_cap=1.0, supervise_interval=0.1, sync_timeout=20)


def wait_for(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout} s")


def all_streaming(collector: Collector) -> bool:
    return all(s.state == "streaming" for s in collector.sessions.values())


def test_every_measurement_arrives_with_tags_and_rates(lab, sink, handoff):
    writer, query = sink
    targets = [t for fabric in FABRICS for t in load_targets(fabric)]
    assert {t.hostname for t in targets} == set(lab.switches)
    collector = Collector(targets, writer, handoff, FAST).start()
    try:
        wait_for(lambda: all_streaming(collector), 30, "every device streaming")
        time.sleep(3.5)  # three 1 s samples after the dump
    finally:
        collector.stop()
    assert writer.flush(10)

    for measurement in MEASUREMENTS:
        series = query.raw(f'SELECT * FROM "{measurement}" GROUP BY * LIMIT 1')
        assert series, f"no {measurement} points"
        for s in series:
            tags = s["tags"]
            device = Device.objects.select_related("fabric", "site").get(hostname=tags["device"])
            assert (tags["fabric"], tags["site"], tags["role"]) == (device.fabric.name, device.site.name, device.role)

    # every fabric link: link id and peer on both ends, and what one end sends the other receives
    link = Link.objects.select_related("a_interface__device", "b_interface__device").filter(kind="fabric").first()
    a, b = link.a_interface, link.b_interface
    rows = query.raw(
        f'SELECT mean("out_bps") FROM "interface" WHERE "device"=\'{a.device.hostname}\' AND '
        f'"interface"=\'{a.name}\' GROUP BY "link", "peer"'
    )
    assert rows and rows[0]["tags"] == {"link": str(link.pk), "peer": f"{b.device.hostname}:{b.name}"}
    out_a = rows[0]["values"][0][1]
    rows = query.raw(
        f'SELECT mean("in_bps") FROM "interface" WHERE "device"=\'{b.device.hostname}\' AND '
        f'"interface"=\'{b.name}\' GROUP BY "link", "peer"'
    )
    in_b = rows[0]["values"][0][1]
    assert out_a > 1e8, "a fabric link carries at least the lab's background load"
    assert in_b == pytest.approx(out_a, rel=0.2)
    # host ports carry the NIC as peer
    host_rows = query.raw('SELECT last("in_bps") FROM "interface" WHERE "peer" =~ /^host:/ GROUP BY "peer"')
    assert host_rows
    # DCI channels carry OSNR/Q for a named channel on both routers
    dci = query.raw('SELECT last("osnr_db"), last("q_value_db") FROM "dci_channel" GROUP BY "device", "channel"')
    assert dci and all(r["values"][0][1] > 10 and r["values"][0][2] > 5 for r in dci)

    # nothing malformed from a healthy lab, every device synced once, no gap
    health = collector.device_health()
    assert all(h["malformed"] == 0 and h["gaps"] == 0 and h["reconnects"] == 0 for h in health.values()), health
    # latest values and health reach Redis for the UI and detection
    handoff.publish_once(force=True)
    latest = latest_values(a.device.hostname, prefix=handoff.prefix)
    assert f"interface|interface={a.name}" in latest
    assert "oper_up" in latest[f"interface|interface={a.name}"]["fields"]
    published = collection_health(prefix=handoff.prefix)
    assert set(published["devices"]) == set(lab.switches)
    assert published["collectors"]["0/1"]["devices"] == len(lab.switches)


def test_link_down_is_handed_off_without_influxdb(lab, sink, handoff):
    writer, _ = sink
    leaf = "sjc-leaf1"
    collector = Collector(load_targets("sjc-ai"), writer, handoff, FAST).start()
    try:
        wait_for(lambda: all_streaming(collector), 30, "streaming")
        iface = next(i for i in lab.switch(leaf).interfaces.values() if i.kind == "fabric")
        lab.inject("link-down", f"{leaf}:{iface.name}")

        def down_event():
            for _, entry in read_events(prefix=handoff.prefix):
                data = entry["data"]
                if entry["type"] == "state" and entry["device"] == leaf and data["tags"]["interface"] == iface.name:
                    return data
            return None

        data = wait_for(down_event, 5, "oper-status change on the events stream")
        assert (data["field"], data["old"], data["new"]) == ("oper_up", True, False)
        assert data["tags"]["peer"].startswith("sjc-spine")
    finally:
        collector.stop()


def test_switch_reboot_and_switch_down_are_survived(lab, sink, handoff):
    writer, query = sink
    collector = Collector(load_targets("sjc-ai"), writer, handoff, FAST).start()
    try:
        wait_for(lambda: all_streaming(collector), 30, "streaming")
        lab.inject("switch-reboot", "sjc-leaf2", down_seconds=2)
        down = lab.inject("switch-down", "sjc-leaf3")
        rebooted, dead = collector.sessions["sjc-leaf2"], collector.sessions["sjc-leaf3"]
        wait_for(lambda: not dead.connected and dead.reconnects >= 1, 10, "switch-down noticed and retried")
        assert dead.state in ("connecting", "backoff")
        wait_for(lambda: rebooted.gap_count == 1 and rebooted.state == "streaming", 20, "reboot survived")
        lab.clear(down["id"])
        wait_for(lambda: dead.gap_count == 1 and dead.state == "streaming", 20, "switch back up and resynced")
        for session in (rebooted, dead):  # rates resume after the resync
            wait_for(
                lambda s=session: query.count("pfc", "rx_pause_ps", tags={"device": s.device}, start=s.gaps[-1].end_ns),
                10,
                f"{session.device} data after the gap",
            )
    finally:
        collector.stop()
    assert writer.flush(10)
    for session in (rebooted, dead):
        gap = session.gaps[-1]
        assert gap.seconds > 1 and gap.reason in ("unavailable", "eof", "cancelled")
        # the gap is in InfluxDB, and data resumed after it
        rows = query.raw(f'SELECT "seconds" FROM "collector_gap" WHERE "device"=\'{session.device}\'')
        assert rows and rows[0]["values"][0][1] == pytest.approx(gap.seconds)
        after = query.count("pfc", "rx_pause_ps", tags={"device": session.device}, start=gap.end_ns)
        assert after > 0
    kinds = [(e["device"], e["data"]["state"]) for _, e in read_events(prefix=handoff.prefix) if e["type"] == "stream"]
    for device in ("sjc-leaf2", "sjc-leaf3"):
        assert kinds.index((device, "lost")) < kinds.index((device, "restored"))
    # the rebooted switch restarted its counters: rates resumed without a negative spike
    negatives = query.raw('SELECT min("in_discards_ps") FROM "interface" WHERE "device"=\'sjc-leaf2\'')
    assert negatives[0]["values"][0][1] >= 0


def test_shards_collect_disjoint_devices_covering_the_fabric(lab_db):
    owned = [{t.hostname for t in load_targets(shard=Shard(i, 3))} for i in range(3)]
    everything = {t.hostname for t in load_targets()}
    assert set().union(*owned) == everything
    assert sum(len(o) for o in owned) == len(everything)


def test_collect_command_plans_a_shard(lab_db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("telemetry", "collect", "--fabric", "dci", "--shard", "0/1", "--plan", stdout=out)
    lines = out.getvalue().split("\n")
    assert {line.split()[0] for line in lines if line} == set(
        Device.objects.filter(fabric__name="dci").exclude(platform="optical").values_list("hostname", flat=True)
    )
    assert all("default-dci" in line or "fast-dci" in line for line in lines if line)


def test_build_collector_for_a_shard(lab_db, settings, tmp_path):
    from fabric_ops.telemetry.service import build_collector

    settings.FABRIC_OPS_INFLUX_SPOOL_DIR = tmp_path / "spool"
    collector, writer, handoff = build_collector("dci", "1/2", redis=False)
    try:
        expected = {t.hostname for t in load_targets("dci", Shard(1, 2))}
        assert set(collector.sessions) == expected and handoff is None
        assert collector.config.shard == "1/2" and writer.flush_interval == 0.25
        assert writer.describe()["spool_dir"] == str(tmp_path / "spool" / "collector-1-of-2")
    finally:
        writer.close(timeout=1)
