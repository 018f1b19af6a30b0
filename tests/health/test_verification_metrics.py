"""``link-utilisation``: the busiest direction of a link at either end, as a fraction of its speed, from values
newer than the commit (a costed-out link stays up with its background traffic, so "drained" is a fraction)."""

from __future__ import annotations

import pytest

from fabric_ops.health.verification import Subject, measure

PORTS = (("leaf1", "Ethernet5/1"), ("spine1", "400GE1/0/1"))
SPEEDS = {"leaf1:Ethernet5/1": 400, "spine1:400GE1/0/1": 400}


def reader(values: dict[tuple[str, str], tuple[int, float, float]]):
    """Latest values as the collector's handoff keeps them: device -> series -> {ts, fields}."""

    def read(device: str):
        return {
            f"interface|interface={ifname}": {"ts": ts, "fields": {"out_bps": out, "in_bps": rx}}
            for (dev, ifname), (ts, out, rx) in values.items()
            if dev == device
        }

    return read


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({PORTS[0]: (20, 0.8e9, 0.8e9), PORTS[1]: (20, 0.8e9, 0.8e9)}, 0.002),  # background only
        ({PORTS[0]: (20, 200e9, 0.8e9), PORTS[1]: (20, 0.8e9, 200e9)}, 0.5),  # still carrying one way
        ({PORTS[0]: (20, 0.8e9, 0.8e9), PORTS[1]: (5, 0.8e9, 300e9)}, None),  # spine end not fresh yet
        ({PORTS[0]: (20, 0.8e9, 0.8e9)}, None),  # spine end unknown
    ],
)
def test_link_utilisation(values, expected):
    subject = Subject(ports=PORTS, extra={"port_speed_gbps": SPEEDS})
    value = measure("link-utilisation", subject, 10, reader(values))
    assert value == (pytest.approx(expected) if expected is not None else None)


def test_link_utilisation_needs_the_port_speed():
    subject = Subject(ports=PORTS, extra={"port_speed_gbps": {}})
    assert measure("link-utilisation", subject, 10, reader({p: (20, 1e9, 1e9) for p in PORTS})) is None


def states(values: dict[tuple[str, str], tuple[bool, bool]]):
    """Latest interface values with the ON_CHANGE state leaves: (admin_up, oper_up) per port."""

    def read(device: str):
        return {
            f"interface|interface={ifname}": {"ts": 1, "fields": {"admin_up": admin, "oper_up": oper}}
            for (dev, ifname), (admin, oper) in values.items()
            if dev == device
        }

    return read


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({PORTS[0]: (False, False), PORTS[1]: (False, False)}, 1.0),  # the shutdown is in force at both ends
        ({PORTS[0]: (True, False), PORTS[1]: (True, False)}, 0.0),  # down by the fault itself (a flap), not shut
        ({PORTS[0]: (False, False), PORTS[1]: (True, False)}, 0.0),  # one end not shut yet
        ({PORTS[0]: (False, True), PORTS[1]: (False, False)}, 0.0),  # admin-down but still up: not in force
        ({PORTS[0]: (False, False)}, None),  # the far end unknown
    ],
)
def test_link_shut(values, expected):
    assert measure("link-shut", Subject(ports=PORTS), 0, states(values)) == expected


# --- each field's own sample time (issue 6) --------------------------------------------------------------------
# The interface series mixes 1 s discard counters and 10 s traffic counters (pfc and queue series: 1 s pause and
# drop counters, 10 s totals and watchdog), so a series' ``ts`` says nothing about the age of one of its rates.

LEAF = PORTS[0]
STALE_TRAFFIC = {"ts": 25, "fields": {"out_bps": 200e9, "in_bps": 0.8e9, "in_discards_ps": 0.0},
                 "field_ts": {"out_bps": 5, "in_bps": 5}}  # fmt: skip


def entries(per_device: dict[str, dict[str, dict]]):
    return lambda device: per_device.get(device, {})


@pytest.mark.parametrize(
    ("metric", "subject", "latest", "expected"),
    [
        # a pre-commit rate under fresh discard counters: not known yet (the old code read 0.5 / 200.8e9)
        ("link-utilisation", Subject(ports=PORTS, extra={"port_speed_gbps": SPEEDS}),
         {"leaf1": {"interface|interface=Ethernet5/1": STALE_TRAFFIC},
          "spine1": {"interface|interface=400GE1/0/1": {"ts": 20, "fields": {"out_bps": 0.8e9, "in_bps": 0.8e9}}}},
         None),
        ("link-carrying-bps", Subject(ports=(LEAF,)), {"leaf1": {"interface|interface=Ethernet5/1": STALE_TRAFFIC}},
         None),
        # one direction fresh, the other from before the commit: still not known
        ("link-carrying-bps", Subject(ports=(LEAF,)),
         {"leaf1": {"interface|interface=Ethernet5/1": {**STALE_TRAFFIC, "field_ts": {"in_bps": 5}}}}, None),
        ("link-carrying-bps", Subject(ports=(LEAF,)),
         {"leaf1": {"interface|interface=Ethernet5/1": {**STALE_TRAFFIC, "field_ts": {"in_discards_ps": 5}}}},
         200.8e9),
        # an entry from a collector before field_ts: every field at ts, as before
        ("link-carrying-bps", Subject(ports=(LEAF,)),
         {"leaf1": {"interface|interface=Ethernet5/1": {"ts": 20, "fields": {"out_bps": 1e9}}}}, 1e9),
        ("port-pause-rx-ps", Subject(port=LEAF),
         {"leaf1": {"pfc|interface=Ethernet5/1,priority=3":
                    {"ts": 20, "fields": {"rx_pause_ps": 9e4, "watchdog_storms": 1}, "field_ts": {"rx_pause_ps": 5}}}},
         None),
        ("port-pause-rx-ps", Subject(port=LEAF),
         {"leaf1": {"pfc|interface=Ethernet5/1,priority=3": {"ts": 20, "fields": {"watchdog_storms": 1}}}}, None),
        ("device-pause-tx-ps", Subject(port=LEAF),
         {"leaf1": {"pfc|interface=Ethernet1/1,priority=3":
                    {"ts": 20, "fields": {"tx_pause_ps": 5e4, "watchdog_storms": 0}, "field_ts": {"tx_pause_ps": 5}},
                    "pfc|interface=Ethernet2/1,priority=3": {"ts": 20, "fields": {"tx_pause_ps": 7.0}}}},
         7.0),
        ("device-pause-tx-ps", Subject(port=LEAF),
         {"leaf1": {"pfc|interface=Ethernet1/1,priority=3":
                    {"ts": 20, "fields": {"tx_pause_ps": 5e4, "watchdog_storms": 0}, "field_ts": {"tx_pause_ps": 5}}}},
         None),
        ("queue-drops-pps", Subject(port=LEAF),
         {"leaf1": {"queue|interface=Ethernet5/1,queue=3":
                    {"ts": 20, "fields": {"dropped_pps": 3e3, "transmit_pps": 1.0}, "field_ts": {"dropped_pps": 5}}}},
         None),
        ("queue-ecn-marks-pps", Subject(port=LEAF),
         {"leaf1": {"queue|interface=Ethernet5/1,queue=3":
                    {"ts": 20, "fields": {"ecn_marked_pps": 0.0, "depth_bytes": 1}, "field_ts": {"depth_bytes": 5}}}},
         0.0),
    ],
)  # fmt: skip
def test_freshness_is_judged_by_the_fields_read(metric, subject, latest, expected):
    assert measure(metric, subject, 10, entries(latest)) == expected


def test_a_stale_traffic_rate_under_fresh_counters_is_not_yet_known_through_redis(client, prefix):
    """The collector's path end to end on real Redis: normaliser -> Collector._latest -> Handoff -> latest hash ->
    the verifier's reader. A 10 s traffic sample from before a cost-out commit, then 1 s discard samples after
    it: link-utilisation must wait for the first traffic sample after the commit (it read the 50% from before)."""
    from types import SimpleNamespace

    from pygnmi.create_gnmi_path import gnmi_path_generator
    from pygnmi.spec.v080 import gnmi_pb2

    from fabric_ops.health.verification import redis_reader
    from fabric_ops.telemetry.collector import Collector
    from fabric_ops.telemetry.handoff import Handoff
    from fabric_ops.telemetry.normalise import DeviceMeta, Normaliser

    s = 1_000_000_000
    t0 = 1_700_000_000 * s

    def feed(normaliser: Normaliser, ifname: str, at_s: int, octets: int | None, discards: int) -> None:
        counters = f"/interfaces/interface[name={ifname}]/state/counters/"
        leaves = [("in-discards", discards)] + ([] if octets is None else [("in-octets", 0), ("out-octets", octets)])
        note = gnmi_pb2.Notification(timestamp=t0 + at_s * s)
        for leaf, value in leaves:
            note.update.add(path=gnmi_path_generator(counters + leaf), val=gnmi_pb2.TypedValue(uint_val=value))
        normaliser.process(note)

    normalisers = {dev: Normaliser(DeviceMeta(dev, "dc1", "sjc", "leaf", "eos")) for dev, _ in PORTS}
    collector = Collector([], writer=None)
    collector.sessions = {dev: SimpleNamespace(normaliser=n) for dev, n in normalisers.items()}  # type: ignore[misc]
    handoff = Handoff("redis://127.0.0.1:6379/0", prefix)
    handoff.add_latest_source(collector._latest)
    subject = Subject(ports=PORTS, extra={"port_speed_gbps": SPEEDS})
    read = redis_reader(client, prefix)

    for dev, ifname in PORTS:
        feed(normalisers[dev], ifname, 0, 0, 0)
        feed(normalisers[dev], ifname, 10, 250 * 10**9, 0)  # 200 Gb/s out over 0-10 s: before the commit
    commit = t0 + 10 * s + s // 2
    for second in (11, 12, 13):  # the 1 s discard counters keep the series' ts fresh
        for dev, ifname in PORTS:
            feed(normalisers[dev], ifname, second, None, second)
    handoff.publish_once(force=True)
    entry = read("leaf1")["interface|interface=Ethernet5/1"]
    assert entry["ts"] == t0 + 13 * s  # existing readers: the newest sample of the series
    assert measure("link-utilisation", subject, commit, read) is None
    assert measure("link-carrying-bps", subject, commit, read) is None

    for dev, ifname in PORTS:  # the first traffic sample after the commit: background only
        feed(normalisers[dev], ifname, 20, 250 * 10**9 + 10**9, 20)
    handoff.publish_once(force=True)
    assert measure("link-utilisation", subject, commit, read) == pytest.approx(0.002)
