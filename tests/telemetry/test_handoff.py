"""The Redis handoff: events in order on the stream, bounded backlog while Redis is away, latest values, health."""

from __future__ import annotations

import uuid

import pytest
import redis

from fabric_ops.telemetry.handoff import (
    Handoff,
    collection_health,
    field_ts,
    fresh_fields,
    latest_values,
    read_events,
    series_field,
)
from fabric_ops.telemetry.normalise import Change

pytestmark = [pytest.mark.timeout(30)]


@pytest.fixture
def prefix():
    name = f"fabric_ops:test:{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)


def test_events_keep_their_order_and_the_backlog_keeps_the_newest(prefix):
    handoff = Handoff(prefix=prefix, backlog=5)
    for i in range(8):
        handoff.stream("leaf1", i, "lost", reason=f"r{i}")
    assert handoff.stats["dropped"] == 3
    handoff.publish_once(force=True)
    entries = read_events(prefix=prefix)
    assert [e["ts"] for _, e in entries] == [3, 4, 5, 6, 7]
    assert entries[0][1]["data"] == {"state": "lost", "reason": "r3"} and entries[0][1]["type"] == "stream"


def test_redis_away_loses_nothing_within_the_bound(prefix):
    down = Handoff("redis://127.16.9.9:1/0", prefix, backlog=100)  # nothing listens there
    down.changes("leaf1", [Change("interface", {"device": "leaf1", "interface": "Et1"}, "oper_up", True, False, 5)])
    with pytest.raises(redis.RedisError):
        down.publish_once(force=True)
    with pytest.raises(redis.RedisError):
        down.publish_once(force=True)
    assert down.stats["dropped"] == 0 and len(down._events) == 1


def test_latest_values_and_health(prefix):
    handoff = Handoff(prefix=prefix)
    rows = [
        ("leaf1", "queue", {"device": "leaf1", "interface": "Et1", "queue": "3", "peer": "x:y"}, 7, {"ecn": 1.0}, {})
    ]
    handoff.add_latest_source(lambda: iter(rows))
    handoff.set_health_source(lambda: ({"leaf1": {"connected": True}}, {"0/1": {"devices": 1}}))
    handoff.publish_once(force=True)
    assert series_field("queue", rows[0][2]) == "queue|interface=Et1,queue=3"
    assert latest_values("leaf1", prefix=prefix) == {"queue|interface=Et1,queue=3": {"ts": 7, "fields": {"ecn": 1.0}}}
    health = collection_health(prefix=prefix)
    assert health["devices"]["leaf1"]["connected"] is True and health["devices"]["leaf1"]["stale"] is False
    assert health["collectors"]["0/1"]["devices"] == 1
    assert collection_health(prefix=prefix, stale_after=-1)["devices"]["leaf1"]["stale"] is True


def test_a_failing_latest_source_does_not_stop_the_publisher(prefix):
    """One exception from a source (a collector bug) must not kill the publisher thread: events, latest values
    and health would stop for every device of the shard while the collector keeps collecting."""
    import time

    calls = {"n": 0}

    def source():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("Set changed size during iteration")
        yield ("leaf1", "interface", {"device": "leaf1", "interface": "Et1"}, 9, {"oper_up": False}, {})

    handoff = Handoff(prefix=prefix, interval=0.05)
    handoff.add_latest_source(source)
    handoff._last_health = -10.0  # latest values due at the first round
    handoff.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not latest_values("leaf1", prefix=prefix):
            time.sleep(0.05)
        handoff.stream("leaf1", 11, "lost", reason="after the failure")
        while time.monotonic() < deadline and not read_events(prefix=prefix):
            time.sleep(0.05)
    finally:
        handoff.close()
    assert calls["n"] >= 2
    assert latest_values("leaf1", prefix=prefix) == {"interface|interface=Et1": {"ts": 9, "fields": {"oper_up": False}}}
    assert [e["ts"] for _, e in read_events(prefix=prefix)] == [11]
    assert handoff.stats["errors"] >= 1


def test_latest_values_carry_each_fields_own_sample_time(prefix):
    """A series mixing 1 s and 10 s subscriptions: ``ts`` is the newest sample, ``field_ts`` lists the fields
    sampled before it; an entry without it (all fields sampled together, or written by an older collector)
    dates every field at ``ts``."""
    s = 1_000_000_000
    handoff = Handoff(prefix=prefix)
    tags = {"device": "leaf1", "interface": "Et1"}
    rows = [
        ("leaf1", "interface", tags, 13 * s, {"in_bps": 8e9, "in_discards_ps": 0.0}, {"in_bps": 10 * s}),
        ("leaf1", "pfc", {**tags, "priority": "3"}, 13 * s, {"rx_pause_ps": 0.0, "tx_pause_ps": 0.0}, {}),
    ]
    handoff.add_latest_source(lambda: iter(rows))
    handoff.publish_once(force=True)
    latest = latest_values("leaf1", prefix=prefix)
    interface, pfc = latest["interface|interface=Et1"], latest["pfc|interface=Et1,priority=3"]
    assert interface == {"ts": 13 * s, "fields": {"in_bps": 8e9, "in_discards_ps": 0.0}, "field_ts": {"in_bps": 10 * s}}
    assert pfc == {"ts": 13 * s, "fields": {"rx_pause_ps": 0.0, "tx_pause_ps": 0.0}}  # nothing older: as before
    assert (field_ts(interface, "in_bps"), field_ts(interface, "in_discards_ps")) == (10 * s, 13 * s)
    assert field_ts(pfc, "tx_pause_ps") == 13 * s
    # a traffic rate sampled before the commit (at 11 s) is not known yet, however fresh its series' ts
    assert fresh_fields(interface, ("in_bps", "out_bps"), 11 * s) is None
    assert fresh_fields(interface, ("in_bps", "out_bps"), 10 * s) == {"in_bps": 8e9}
    assert fresh_fields(interface, ("in_discards_ps",), 11 * s) == {"in_discards_ps": 0.0}
    assert fresh_fields(interface, ("out_bps",), 0) is None and fresh_fields(None, ("in_bps",), 0) is None


def test_a_state_change_is_published_at_once_and_samples_wait_for_the_tick(prefix):
    """A link down is what detection reacts to fastest: it must not sit out the publisher's tick (5 s here)."""
    import time

    from fabric_ops.telemetry.points import TelemetryEvent

    handoff = Handoff(prefix=prefix, interval=5.0).start()
    try:
        time.sleep(0.2)  # the thread is waiting on its tick
        handoff.samples("leaf1", [TelemetryEvent("pfc", 1, {"device": "leaf1", "interface": "Et1"}, {"rx": 1.0})])
        time.sleep(0.5)
        assert read_events(prefix=prefix) == []  # samples ride the tick
        started = time.monotonic()
        handoff.changes(
            "leaf1", [Change("interface", {"device": "leaf1", "interface": "Et1"}, "oper_up", True, False, 2)]
        )
        while not read_events(prefix=prefix) and time.monotonic() - started < 4.0:
            time.sleep(0.005)
        waited = time.monotonic() - started
        assert [e["type"] for _, e in read_events(prefix=prefix)] == ["sample", "state"]  # order kept
        assert waited < 1.0, f"the state change waited {waited:.2f} s for the tick"
    finally:
        handoff.close()
