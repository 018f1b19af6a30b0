"""The detection loop end to end below the collector: handoff entries in Redis -> DetectionLoop -> alarms in the
database. Real Redis (a private key prefix), real database; the entries are what the collector's handoff writes."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis

from fabric_ops.health.detect import DetectionLoop
from fabric_ops.health.detectors.base import NS
from fabric_ops.health.models import Alarm
from tests.topology.factories import two_sites

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client():
    return redis.Redis.from_url("redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix(client, settings):
    value = f"fabric_ops:test-detect:{uuid.uuid4().hex[:8]}"
    settings.FABRIC_OPS_TELEMETRY_REDIS_PREFIX = value
    yield value
    for key in client.scan_iter(f"{value}:*"):
        client.delete(key)


def xadd(client, prefix: str, kind: str, device: str, ts: int, **data) -> None:
    client.xadd(f"{prefix}:events", {"type": kind, "device": device, "ts": str(ts), "data": json.dumps(data)})


def flap(client, prefix: str, device: str, interface: str, start_ns: int, transitions: int) -> None:
    for i in range(transitions):
        xadd(client, prefix, "state", device, start_ns + i * NS, measurement="interface",
             tags={"interface": interface}, field="oper_up", old=i % 2 == 0, new=i % 2 == 1)  # fmt: skip


def test_a_late_flap_that_ages_out_in_the_same_round_leaves_no_alarm_open(client, prefix):
    """The restore-phase flake of test_closed_loop_lab: a backlog of old transitions (the loop was busy, the
    collector lagged) raises a flap and the same round's scan ages it out. Recording the raise after the clear left
    the alarm open in the database while the engine no longer held it: nothing would ever clear it."""
    b = two_sites()
    link = b.links["dx-a-leaf1-dx-a-spine#1"]
    device, port = link.a_interface.device.hostname, link.a_interface.name
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, start_id="0-0",
                         devices=[device])  # fmt: skip
    flap(client, prefix, device, port, time.time_ns() - 100 * NS, 4)  # 60 s window: long over by now
    loop.run_once(block_ms=10)
    alarms = Alarm.objects.filter(device=device, subject=port)
    assert {a.kind for a in alarms} == {"link-down", "link-flap"}  # it happened: the evidence is kept
    assert [k for k in loop.engine.active if k[2] == port] == []
    assert [a.kind for a in alarms if a.cleared_at is None] == []  # and the database agrees with the engine


def test_a_flap_still_inside_its_window_stays_open_until_the_scan_ages_it_out(client, prefix, settings):
    settings.FABRIC_OPS_HEALTH_THRESHOLDS = {"link": {"flap_window_s": 3, "flap_transitions": 3}}
    b = two_sites()
    link = b.links["dx-a-leaf1-dx-a-spine#1"]
    device, port = link.a_interface.device.hostname, link.a_interface.name
    dispatched: list[int] = []
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: dispatched.append(pk),
                         start_id="0-0", devices=[device], scan_interval=0.2)  # fmt: skip
    flap(client, prefix, device, port, time.time_ns() - 2 * NS, 3)  # the last transition is now
    loop.run_once(block_ms=10)
    open_flap = Alarm.objects.get(kind="link-flap", device=device, subject=port)
    assert open_flap.cleared_at is None and len(dispatched) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Alarm.objects.get(pk=open_flap.pk).cleared_at is None:
        loop.run_once(block_ms=100)  # no new entry arrives: only the time-based re-evaluation can clear it
    assert Alarm.objects.get(pk=open_flap.pk).cleared_at is not None
    assert ("link-flap", device, port) not in loop.engine.active
