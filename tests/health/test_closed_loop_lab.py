"""The closed loop against the virtual lab, in process: fault -> gNMI -> collector -> Redis handoff -> detection
-> incident -> playbook -> guardrails -> NAPALM push -> lab physics -> verification from telemetry -> restore.

Everything on the wire is real: the lab's gNMI/eAPI/SSH servers, pygnmi in the collector, NAPALM in the push
jobs, Redis for the handoff and device locks, InfluxDB 1.6 (behind the write proxy) for the collector's writes.
Switches move to this suite's loopback block 127.18.0.0/16; subscription profiles sample every second.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from fabric_ops.config.models import IntentAssignment, RoceProfile
from fabric_ops.config.models.jobs import DeviceJob, DeviceStatus
from fabric_ops.config.push import create_job, run_job
from fabric_ops.health import tasks
from fabric_ops.health.choices import IncidentStatus, RunStatus, ScopeKind
from fabric_ops.health.detect import DetectionLoop
from fabric_ops.health.models import Incident
from fabric_ops.health.playbooks import load_playbooks
from fabric_ops.health.remediation import remediate
from fabric_ops.health.verification import redis_reader
from fabric_ops.lab.api import Lab
from fabric_ops.telemetry.collector import Collector, CollectorConfig
from fabric_ops.telemetry.handoff import Handoff
from fabric_ops.telemetry.models import SubscriptionProfile
from fabric_ops.telemetry.subscriptions import DEFAULT_PROFILES
from fabric_ops.telemetry.targets import load_targets
from fabric_ops.telemetry.writer import InfluxWriter
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.inventory import import_inventory
from fabric_ops.topology.models import Device, Fabric, Link
from tests.telemetry.conftest import database, influx, influx_stack  # noqa: F401 - shared InfluxDB fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab, pytest.mark.timeout(180)]

LAB_INVENTORY = Path(django_settings.INVENTORY_DIR) / "lab.yml"
FAST = CollectorConfig(backoff_initial=0.2, backoff_cap=1.0, supervise_interval=0.1, sync_timeout=30)


@pytest.fixture
def lab_db(settings, tmp_path):
    settings.SECRETS_DIR = tmp_path / "secrets"
    settings.FABRIC_OPS_TELEMETRY_REDIS_PREFIX = f"fabric_ops:test-health:{uuid.uuid4().hex[:8]}"
    # short windows so the test sees flaps start and stop within seconds
    settings.FABRIC_OPS_HEALTH_THRESHOLDS = {"link": {"flap_window_s": 8, "flap_transitions": 3}}
    import_inventory(LAB_INVENTORY)
    for index, device in enumerate(Device.objects.order_by("hostname"), start=1):
        device.mgmt_address = f"127.18.0.{index}"
        device.save(update_fields=["mgmt_address"])
    for (role, platform), profile in DEFAULT_PROFILES.items():
        SubscriptionProfile.objects.create(
            name=f"fast-{role or 'any'}", role=role, platform=platform,
            subscriptions=[{"path": s.path, "mode": s.mode, "interval_s": 1} for s in profile.subscriptions],
        )  # fmt: skip
    FabricGraph.invalidate()
    yield settings.FABRIC_OPS_TELEMETRY_REDIS_PREFIX
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{settings.FABRIC_OPS_TELEMETRY_REDIS_PREFIX}:*"):
        client.delete(key)


class Loop:
    """Lab + collector + handoff + detection loop for one test; remediation is called by the test, in order."""

    def __init__(self, lab: Lab, fabrics: list[str], prefix: str, influx_url: str, bucket: str, spool: Path):
        self.lab = lab
        self.client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        self.handoff = Handoff(prefix=prefix, interval=0.05).start()
        self.writer = InfluxWriter(url=influx_url, bucket=bucket, spool_dir=spool, flush_interval=0.5).start()
        targets = [t for f in fabrics for t in load_targets(f)]
        self.collector = Collector(targets, self.writer, self.handoff, FAST).start()
        self.dispatched: list[int] = []
        self.detect = DetectionLoop(client=self.client, prefix=prefix, start_id="0-0",
                                    dispatch=lambda pk, delay: self.dispatched.append(pk),
                                    devices=[t.hostname for t in targets])  # fmt: skip
        self.read = redis_reader(self.client, prefix)
        wait_for(lambda: all(s.state == "streaming" for s in self.collector.sessions.values()), 60, "collector")

    def until(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.detect.run_once(block_ms=100)
            value = predicate()
            if value:
                return value
        raise AssertionError(f"{what}: not within {timeout} s; stats {self.detect.stats}")

    def close(self) -> None:
        self.collector.stop(timeout=5)
        self.handoff.close()
        self.writer.close(timeout=5)


def wait_for(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def sjc(lab_db, influx, database, tmp_path):  # noqa: F811
    with Lab.start(["sjc-ai"]) as lab:
        loop = Loop(lab, ["sjc-ai"], lab_db, influx.url, f"{database}/autogen", tmp_path / "spool")
        yield loop
        loop.close()


def uplinks(leaf: str) -> list[Link]:
    links = Link.objects.filter(kind="fabric", a_interface__device__hostname=leaf) | Link.objects.filter(
        kind="fabric", b_interface__device__hostname=leaf
    )
    return list(links.select_related("a_interface__device", "b_interface__device").order_by("id"))


def leaf_end(link: Link, leaf: str):
    return link.a_interface if link.a_interface.device.hostname == leaf else link.b_interface


def carried(lab: Lab, link: Link) -> int:
    return sum(
        lab.switch(i.device.hostname).interfaces[i.name].out_octets for i in (link.a_interface, link.b_interface)
    )


def active(kind: str, **kw) -> Incident | None:
    return Incident.objects.filter(kind=kind, status__in=[s for s in IncidentStatus.values if s != "resolved"],
                                   **kw).first()  # fmt: skip


def test_link_flap_is_drained_verified_guarded_and_restored(sjc):
    lab = sjc.lab
    books = load_playbooks()
    first, second = uplinks("sjc-leaf1")[:2]
    port = leaf_end(first, "sjc-leaf1")
    injected = lab.inject("link-flap", f"sjc-leaf1:{port.name}", period=2)

    incident = sjc.until(lambda: active("link-flap", link_id=first.pk), 30, "flap incident")
    assert incident.scope_kind == ScopeKind.LINK and incident.root_key == f"link:{first.pk}"
    assert Incident.objects.filter(link_id=first.pk).count() == 1  # both ends' transitions: one incident
    # opened as link-down, upgraded to link-flap: same incident (on an overloaded machine the collector may also
    # report stalled streams: device-scoped telemetry-lost incidents, not this fault's)
    dispatched = Incident.objects.filter(pk__in=sjc.dispatched).exclude(scope_kind=ScopeKind.DEVICE)
    assert set(dispatched.values_list("pk", flat=True)) == {incident.pk}
    assert incident.fault_seen_at.timestamp() * 1e9 >= injected["injected_at"] - 1e9
    assert incident.impact["removed_link_ids"] == [first.pk]

    run = remediate(incident.pk, playbooks=books, read=sjc.read)
    incident.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.reason, run.verification, run.guardrail)
    assert incident.status == IncidentStatus.MITIGATED
    assert incident.detected_at <= incident.remediation_started_at <= incident.committed_at <= incident.verified_at
    first.refresh_from_db()
    assert first.state == "drained"
    jobs = DeviceJob.objects.filter(job__requested_by="playbook:link-flap")
    assert {j.device.hostname for j in jobs} == {first.a_interface.device.hostname, first.b_interface.device.hostname}
    assert {j.status for j in jobs} == {DeviceStatus.CONFIRMED}
    act = run.actions.get(phase="act", action="drain-link")
    assert act.push_job_id and "shutdown" in act.diff
    # lab physics: the drained link carries nothing, the other uplinks carry the leaf's traffic
    before, others_before = carried(lab, first), sum(carried(lab, link) for link in uplinks("sjc-leaf1")[1:])
    time.sleep(1.5)
    assert carried(lab, first) == before
    assert sum(carried(lab, link) for link in uplinks("sjc-leaf1")[1:]) > others_before
    assert not lab.switch("sjc-leaf1").interfaces[port.name].admin_up

    # a second fault on the same leaf: draining it too would leave sjc-leaf1 at 50 % -> refused, needs a human
    lab.inject("link-flap", f"sjc-leaf1:{leaf_end(second, 'sjc-leaf1').name}", period=2)
    other = sjc.until(lambda: active("link-flap", link_id=second.pk), 30, "second flap incident")
    refused = remediate(other.pk, playbooks=books, read=sjc.read)
    other.refresh_from_db()
    assert refused.status == RunStatus.REFUSED
    assert other.status == IncidentStatus.NEEDS_HUMAN
    assert "sjc-leaf1 would keep 50% of its uplink capacity" in other.reason
    second.refresh_from_db()
    assert second.state == "up"
    assert remediate(other.pk, playbooks=books, read=sjc.read).pk == refused.pk  # re-delivery: no second run

    # the fault is repaired; once the flap alarm has cleared and stayed clean, the scheduled restore brings it back
    lab.clear(all=True)
    # the flap window is 8 s: the alarms age out by time, no new telemetry entry is needed (the drained end stays
    # down). It once stayed open for good: a backlog read after the long remediate raised an old flap and the same
    # round's scan aged it out, and the raise was recorded after the clear (see test_detect_loop.py).
    sjc.until(lambda: incident.alarms.filter(cleared_at__isnull=True).count() == 0, 30, "flap alarm cleared")
    run.restore_after = run.verified_at  # restore.after_clean of 0 s for the test (the playbook says 300 s)
    run.save(update_fields=["restore_after"])
    assert tasks.restore_due()["restored"] == 1
    run.refresh_from_db()
    incident.refresh_from_db()
    first.refresh_from_db()
    assert (run.status, incident.status, first.state) == (RunStatus.RESTORED, IncidentStatus.RESOLVED, "up")
    assert lab.switch("sjc-leaf1").interfaces[port.name].oper_up
    assert run.actions.get(phase="restore").push_job.requested_by == "playbook:link-flap"
    assert tasks.restore_due()["restored"] == 0  # nothing twice


def test_pfc_storm_arms_the_watchdog_on_the_leaf(sjc):
    lab = sjc.lab
    fabric = Fabric.objects.get(name="sjc-ai")
    quiet = RoceProfile.objects.create(name="no-watchdog", pfc_watchdog=False)
    IntentAssignment.objects.create(fabric=fabric, roce_profile=quiet)
    leaf = Device.objects.select_related("fabric", "site").get(hostname="sjc-leaf2")
    spines = list(Device.objects.filter(fabric=fabric, role="spine").select_related("fabric", "site"))
    assert run_job(create_job([leaf, *spines], requested_by="test", canary_count=5, wave_percent=100).pk).summary
    host_port = next(i for i in lab.switch("sjc-leaf2").interfaces.values() if i.kind == "host")
    lab.inject("pfc-storm", f"sjc-leaf2:{host_port.name}", priority=3)

    incident = sjc.until(lambda: active("pfc-storm", device="sjc-leaf2"), 30, "storm incident")
    assert incident.interface == host_port.name
    leaf_state = lab.switch("sjc-leaf2")
    feeders = [p for p in leaf_state.interfaces.values() if p is not host_port]
    paused = sum(p.pfc_tx_pause[3] for p in feeders)
    time.sleep(1.0)
    assert (
        sum(p.pfc_tx_pause[3] for p in feeders) > paused
    )  # the storm spreads: the leaf pauses the NICs feeding the port
    run = remediate(incident.pk, playbooks=load_playbooks(), read=sjc.read)
    incident.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.reason, run.verification)
    assert incident.status == IncidentStatus.MITIGATED
    assert lab.switch("sjc-leaf2").qos.pfc_watchdog and lab.switch("sjc-leaf2").qos.pfc_watchdog_timeout_ms == 100
    assert host_port.pfc_watchdog_triggers >= 1
    assert IntentAssignment.objects.get(device=leaf).overrides["pfc_watchdog_detection_ms"] == 100
    paused = sum(p.pfc_tx_pause[3] for p in feeders)
    time.sleep(1.0)
    assert sum(p.pfc_tx_pause[3] for p in feeders) - paused <= 100  # the watchdog broke the storm (playbook: <= 100/s)
    assert run.actions.get(action="pfc-watchdog").push_job.requested_by == "playbook:pfc-storm"


@pytest.fixture
def dci(lab_db, influx, database, tmp_path):  # noqa: F811
    with Lab.start(["dci"]) as lab:
        loop = Loop(lab, ["dci"], lab_db, influx.url, f"{database}/autogen", tmp_path / "spool")
        yield loop
        loop.close()


def test_dci_span_degradation_is_one_incident_and_moves_traffic_off_the_span(dci):
    lab = dci.lab
    channels = [c for c in lab.switch("sjc-dci1").channels.values() if "sjc-lax-coastal" in c.spans]
    q_before = min(c.q_value_db for c in channels)
    lab.inject("dci-span-degradation", "sjc-lax-coastal", osnr_drop_db=round(q_before - 6.5, 2))

    incident = dci.until(
        lambda: (i := active("dci-degradation", scope_kind=ScopeKind.SPAN)) and i.alarms.values("subject").distinct()
        .count() >= 4 and i, 30, "span incident",
    )  # fmt: skip
    assert incident.root_key == "span:sjc-lax-coastal"
    assert Incident.objects.filter(kind="dci-degradation").exclude(status="resolved").count() == 1
    assert {a.subject for a in incident.alarms.all()} >= {
        "sjc-lax-ch01",
        "sjc-lax-ch03",
        "sjc-lax-ch05",
        "sjc-lax-ch07",
    }
    coastal = set(Link.objects.filter(optical_channel__spans__name="sjc-lax-coastal").values_list("id", flat=True))
    assert set(incident.impact["removed_link_ids"]) == coastal

    playbooks = [dataclasses.replace(b, mode="auto") for b in load_playbooks()]
    run = remediate(incident.pk, playbooks=playbooks, read=dci.read)
    assert run.status == RunStatus.SUCCEEDED, (run.reason, run.verification, run.guardrail)
    assert set(Link.objects.filter(state="drained").values_list("id", flat=True)) == coastal
    inland = Link.objects.filter(optical_channel__spans__name="sjc-lax-inland")
    assert all(lab.switch(lk.a_interface.device.hostname).interfaces[lk.a_interface.name].oper_up for lk in inland)


def test_incast_tunes_ecn_on_the_leaf(sjc):
    lab = sjc.lab
    fabric = Fabric.objects.get(name="sjc-ai")
    devices = list(Device.objects.filter(fabric=fabric).exclude(role="dci").select_related("fabric", "site"))
    assert run_job(create_job(devices, requested_by="test", canary_count=len(devices), wave_percent=100).pk).summary
    victim = next(i for i in lab.switch("sjc-leaf4").interfaces.values() if i.kind == "host")
    lab.inject("incast", f"sjc-leaf4:{victim.name}", fan_in=8)

    incident = sjc.until(lambda: active("incast", device="sjc-leaf4"), 40, "incast incident")
    assert incident.interface == victim.name
    alarm = incident.alarms.get(kind="incast")
    assert alarm.evidence["senders"] >= 3 and alarm.evidence["utilisation"] >= 0.95
    run = remediate(incident.pk, playbooks=load_playbooks(), read=sjc.read)
    incident.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.reason, run.verification)
    assert incident.status == IncidentStatus.MITIGATED
    overrides = IntentAssignment.objects.get(device__hostname="sjc-leaf4").overrides
    assert overrides == {"ecn_min_kbytes": 50, "ecn_max_kbytes": 500, "ecn_max_probability": 50}
    ecn = lab.switch("sjc-leaf4").qos.ecn[3]
    assert (ecn.min_kbytes, ecn.max_kbytes) == (50, 500)  # the running configuration of the leaf changed
    assert lab.switch("sjc-leaf3").qos.ecn[3].min_kbytes == 150  # and only that leaf's
    diff = run.actions.get(action="apply-intent").diff
    assert "minimum-threshold 50 kbytes" in diff
