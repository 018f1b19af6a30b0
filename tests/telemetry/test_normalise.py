"""Normalisation tables: paths -> series/field, TypedValue decoding, counters -> rates (wrap, reset), sessions.

Notifications are real gnmi_pb2 messages built with pygnmi's own path generator, as they arrive off the wire.
"""

from __future__ import annotations

import pytest
from pygnmi.create_gnmi_path import gnmi_path_generator
from pygnmi.spec.v080 import gnmi_pb2

from fabric_ops.telemetry.normalise import (
    U64,
    DeviceMeta,
    Normaliser,
    counter_delta,
    counter_rate,
    describe,
    handoff_samples,
    typed_value,
)
from fabric_ops.telemetry.points import TelemetryEvent

S = 1_000_000_000
META = DeviceMeta(
    "leaf1", "dc1", "sjc", "leaf", "eos", {"Ethernet1/1": ("17", "spine1:Ethernet3/1"), "Ethernet2/1": ("", "")}
)
BASE = {"device": "leaf1", "fabric": "dc1", "site": "sjc", "role": "leaf"}
IF1 = {**BASE, "interface": "Ethernet1/1", "link": "17", "peer": "spine1:Ethernet3/1"}


def elems(path: str):
    return [(e.name, dict(e.key)) for e in gnmi_path_generator(path).elem]


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/interfaces/interface[name=Et1]/state/oper-status", ("interface", {"interface": "Et1"}, "oper_up", "up")),
        (
            "/openconfig-interfaces:interfaces/interface[name=Et1]/state/counters/in-octets",
            ("interface", {"interface": "Et1"}, "in_bps", "rate"),
        ),
        (
            "/interfaces/interface[name=Et1]/ethernet/state/counters/in-mac-pause-frames",
            ("interface", {"interface": "Et1"}, "in_pause_ps", "rate"),
        ),
        (
            "/interfaces/interface[name=Et1]/state/counters/carrier-transitions",
            ("interface", {"interface": "Et1"}, "carrier_transitions", "count"),
        ),
        (
            "/qos/interfaces/interface[interface-id=Et1]/output/queues/queue[name=3]/state/ecn-marked-pkts",
            ("queue", {"interface": "Et1", "queue": "3"}, "ecn_marked_pps", "rate"),
        ),
        (
            "/qos/interfaces/interface[interface-id=Et1]/output/queues/queue[name=3]/state/avg-queue-len",
            ("queue", {"interface": "Et1", "queue": "3"}, "depth_bytes", "int"),
        ),
        (
            "/qos/interfaces/interface[interface-id=Et1]/pfc/pfc-priorities/pfc-priority[dot1p=3]"
            "/state/statistics/pause-frames-rx",
            ("pfc", {"interface": "Et1", "priority": "3"}, "rx_pause_ps", "rate"),
        ),
        (
            "/qos/interfaces/interface[interface-id=Et1]/pfc/pfc-queue/pfc-queue[queue=3]"
            "/state/statistics/storm-detected",
            ("pfc", {"interface": "Et1", "priority": "3"}, "watchdog_storms", "count"),
        ),
        (
            "/components/component[name=Et1-transceiver]/transceiver/physical-channels/channel[index=2]"
            "/state/input-power/instant",
            ("optics", {"interface": "Et1", "lane": "2"}, "input_power_dbm", "float"),
        ),
        (
            "/components/component[name=Et1-transceiver]/transceiver/state/pre-fec-ber/instant",
            ("optics", {"interface": "Et1"}, "pre_fec_ber", "float"),
        ),
        (
            "/components/component[name=Et1-transceiver]/state/temperature/instant",
            ("optics", {"interface": "Et1"}, "temperature_c", "float"),
        ),
        (
            "/components/component[name=OCH-1]/optical-channel/state/osnr/instant",
            ("dci_channel", {"channel": "OCH-1"}, "osnr_db", "float"),
        ),
        (
            "/components/component[name=OCH-1]/optical-channel/state/frequency",
            ("dci_channel", {"channel": "OCH-1"}, "frequency_mhz", "int"),
        ),
        (
            "/terminal-device/logical-channels/channel[index=1]/otn/state/q-value/instant",
            ("dci_channel", {"index": "1"}, "q_value_db", "float"),
        ),
        ("/system/cpus/cpu[index=ALL]/state/total/instant", ("system", {}, "cpu_pct", "float")),
        ("/system/state/boot-time", ("system", {}, "boot_time_ns", "boot")),
        ("/system/memory/state/used", ("system", {}, "memory_used_bytes", "int")),
        # known containers, leaves we do not store
        ("/interfaces/interface[name=Et1]/state/mtu", None),
        ("/interfaces/interface[name=Et1]/config/enabled", None),
        ("/components/component[name=Et1-transceiver]/state/type", None),
        ("/system/state/current-datetime", None),
        # structurally wrong
        ("/interfaces/interface/state/oper-status", None),  # no key
        ("/qos/interfaces/interface[interface-id=Et1]/output/queues/queue/state/dropped-pkts", None),
        ("/nonsense", None),
        ("/", None),
    ],
)
def test_describe(path, expected):
    leaf = describe(elems(path))
    if expected is None:
        assert leaf is None
    else:
        assert (leaf.measurement, dict(leaf.tags), leaf.field, leaf.conv) == expected


@pytest.mark.parametrize(
    "prev, cur, expected",
    [
        (100, 150, (50, "ok")),
        (100, 100, (0, "ok")),
        (U64 - 10, 5, (15, "wrap")),
        (U64 - 1, 0, (1, "wrap")),
        (1_000_000, 10, (None, "reset")),  # a reboot: counters restart from zero
        (U64 // 2, 10, (None, "reset")),  # not near the top: not a wrap
    ],
)
def test_counter_delta(prev, cur, expected):
    assert counter_delta(prev, cur) == expected


@pytest.mark.parametrize(
    "prev, cur, ts, scale, expected",
    [
        (None, 10, S, 1, (None, "first")),
        ((0, 0), 1000, S, 1, (1000.0, "ok")),
        ((0, 0), 1000, S, 8, (8000.0, "ok")),  # octets -> bits
        ((0, 0), 1000, 10 * S, 1, (100.0, "ok")),
        ((0, 0), 1000, S // 2, 1, (2000.0, "ok")),
        ((U64 - 500, 0), 500, S, 1, (1000.0, "wrap")),
        ((5000, 0), 10, S, 1, (None, "reset")),
        ((10, S), 20, S, 1, (None, "stale")),  # same timestamp
        ((10, 2 * S), 20, S, 1, (None, "stale")),  # older
    ],
)
def test_counter_rate(prev, cur, ts, scale, expected):
    assert counter_rate(prev, cur, ts, scale) == expected


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"uint_val": 7}, 7),
        ({"int_val": -3}, -3),
        ({"string_val": "UP"}, "UP"),
        ({"bool_val": True}, True),
        ({"double_val": 1.5}, 1.5),
        ({"json_val": b"   123"}, 123),  # the lab's fixed-width JSON numbers
        ({"json_ietf_val": b'"18446744073709551615"'}, "18446744073709551615"),
        ({"decimal_val": gnmi_pb2.Decimal64(digits=-215, precision=2)}, -2.15),
    ],
)
def test_typed_value(kwargs, expected):
    assert typed_value(gnmi_pb2.TypedValue(**kwargs)) == expected


@pytest.mark.parametrize("kwargs", [{}, {"json_val": b"{not json"}, {"bytes_val": b"\x00"}])
def test_typed_value_refuses(kwargs):
    with pytest.raises(ValueError):
        typed_value(gnmi_pb2.TypedValue(**kwargs))


def notification(ts: int, updates: list[tuple[str, dict]], prefix: str = "") -> gnmi_pb2.Notification:
    n = gnmi_pb2.Notification(timestamp=ts)
    if prefix:
        n.prefix.CopyFrom(gnmi_path_generator(prefix))
    for path, value in updates:
        n.update.add(path=gnmi_path_generator(path), val=gnmi_pb2.TypedValue(**value))
    return n


CTR = "/interfaces/interface[name=Ethernet1/1]/state/counters/"
OPER = "/interfaces/interface[name=Ethernet1/1]/state/oper-status"


def by_name(events: list[TelemetryEvent]) -> dict[str, TelemetryEvent]:
    return {e.name: e for e in events}


def test_counters_become_rates_with_tags_from_the_source_of_truth():
    n = Normaliser(META)
    n.begin_session()
    events, _ = n.process(notification(10 * S, [(CTR + "in-octets", {"uint_val": 1000}), (OPER, {"string_val": "UP"})]))
    assert events == [TelemetryEvent("interface", 10 * S, IF1, {"oper_up": True})]  # no rate from one sample
    n.sync()
    events, _ = n.process(notification(12 * S, [(CTR + "in-octets", {"uint_val": 3000})]))
    assert events == [TelemetryEvent("interface", 12 * S, IF1, {"in_bps": 8000.0})]
    # the same leaf with the interface in the prefix (one Notification per interface, as EOS sends them)
    events, _ = n.process(
        notification(
            13 * S, [("state/counters/in-octets", {"uint_val": 4000})], "/interfaces/interface[name=Ethernet1/1]"
        )
    )
    assert events == [TelemetryEvent("interface", 13 * S, IF1, {"in_bps": 8000.0})]


def test_wrap_reset_and_reboot():
    n = Normaliser(META)
    n.sync()
    n.process(notification(1 * S, [(CTR + "in-errors", {"uint_val": U64 - 5})]))
    events, _ = n.process(notification(2 * S, [(CTR + "in-errors", {"uint_val": 5})]))
    assert events[0].fields == {"in_errors_ps": 10.0} and n.counts.wraps == 1
    events, _ = n.process(notification(3 * S, [(CTR + "in-errors", {"uint_val": 1})]))  # reset: no point
    assert events == [] and n.counts.resets == 1
    events, _ = n.process(notification(4 * S, [(CTR + "in-errors", {"uint_val": 4})]))  # new baseline
    assert events[0].fields == {"in_errors_ps": 3.0}
    # a new boot time forgets every baseline sampled before it, even when the new counter happens to be higher;
    # one sampled after the boot (the dump may carry counters before boot-time) stays
    n.process(notification(5 * S, [("/system/state/boot-time", {"uint_val": 1})]))
    n.process(notification(6 * S + 1, [(CTR + "out-errors", {"uint_val": 7})]))
    n.process(notification(6 * S + 2, [("/system/state/boot-time", {"uint_val": 6 * S})]))
    events, _ = n.process(
        notification(7 * S, [(CTR + "in-errors", {"uint_val": 100}), (CTR + "out-errors", {"uint_val": 9})])
    )
    assert [e.fields for e in events] == [{"out_errors_ps": pytest.approx(2.0, rel=1e-6)}]


def test_malformed_updates_are_counted_and_skipped():
    n = Normaliser(META)
    n.sync()
    n.process(notification(1 * S, [(CTR + "in-discards", {"uint_val": 10})]))
    events, _ = n.process(
        notification(
            2 * S,
            [
                (CTR + "in-octets", {"string_val": "lots"}),  # wrong type
                (OPER, {"uint_val": 1}),  # an enumeration as a number
                (CTR + "in-errors", {"json_val": b"{broken"}),  # not JSON
                (CTR + "out-errors", {}),  # no value
                (CTR + "in-fcs-errors", {"int_val": -1}),  # a negative counter
                ("/interfaces/interface/state/oper-status", {"string_val": "UP"}),  # no key: not ours
                (CTR + "in-discards", {"uint_val": 30}),  # the good one survives
            ],
        )
    )
    assert events == [TelemetryEvent("interface", 2 * S, IF1, {"in_discards_ps": 20.0})]
    assert n.counts.malformed == 5 and n.counts.ignored == 1


def test_state_changes_only_after_sync_and_across_sessions():
    n = Normaliser(META)
    n.begin_session()
    _, changes = n.process(notification(1 * S, [(OPER, {"string_val": "UP"})]))
    assert changes == [] and n.sync() == []  # first knowledge is not a change
    _, changes = n.process(notification(2 * S, [(OPER, {"string_val": "DOWN"})]))
    assert [(c.field, c.old, c.new, c.timestamp_ns, c.tags["peer"]) for c in changes] == [
        ("oper_up", True, False, 2 * S, "spine1:Ethernet3/1")
    ]
    # the stream is lost; the link comes back while we are away; the next dump reports it at sync
    n.begin_session()
    _, changes = n.process(notification(9 * S, [(OPER, {"string_val": "UP"})]))
    assert changes == []
    assert [(c.old, c.new) for c in n.sync()] == [(False, True)]
    # a session that dies before its sync_response leaves no trace in the known state
    n.begin_session()
    n.process(notification(10 * S, [(OPER, {"string_val": "DOWN"})]))
    n.begin_session()
    n.process(notification(11 * S, [(OPER, {"string_val": "UP"})]))
    assert n.sync() == []


def test_dci_logical_channels_take_the_channel_name():
    meta = DeviceMeta("dci1", "dci", "sjc", "dci", "eos")
    n = Normaliser(meta)
    n.begin_session()
    otn = "/terminal-device/logical-channels/channel[index=1]/otn/state/q-value/instant"
    och = "/components/component[name=OCH-1]/optical-channel/state/osnr/instant"
    events, _ = n.process(notification(1 * S, [(otn, {"double_val": 12.0}), (och, {"double_val": 30.5})]))
    assert [(e.name, e.tags["channel"], e.fields) for e in events] == [("dci_channel", "OCH-1", {"osnr_db": 30.5})]
    n.process(notification(1 * S, [("/terminal-device/logical-channels/channel[index=1]/state/description",
                                    {"string_val": "OCH-1"})]))  # fmt: skip
    n.sync()
    events, _ = n.process(notification(2 * S, [(otn, {"double_val": 11.5}), (och, {"double_val": 30.0})]))
    assert len(events) == 1  # both leaves land in the same series
    assert events[0].tags["channel"] == "OCH-1" and events[0].fields == {"q_value_db": 11.5, "osnr_db": 30.0}


def test_latest_values_merge_per_series():
    n = Normaliser(META)
    n.sync()
    n.process(notification(1 * S, [(OPER, {"string_val": "UP"}), (CTR + "in-octets", {"uint_val": 0})]))
    n.process(notification(2 * S, [(CTR + "in-octets", {"uint_val": 125})]))
    latest = {(m, t.get("interface")): (ts, f, older) for m, t, ts, f, older in n.take_dirty()}
    assert latest == {("interface", "Ethernet1/1"): (2 * S, {"oper_up": True, "in_bps": 1000.0}, {"oper_up": 1 * S})}
    assert n.take_dirty() == []


def test_latest_values_keep_each_fields_own_sample_time():
    """The interface series mixes 1 s discard counters and 10 s traffic counters: the discards' samples must not
    make a traffic rate from before (say) a cost-out commit look fresh (issue 6)."""
    t0 = 100 * S
    n = Normaliser(META)
    n.sync()
    traffic, discards = CTR + "in-octets", CTR + "in-discards"
    n.process(notification(t0, [(traffic, {"uint_val": 0}), (discards, {"uint_val": 0})]))
    n.process(notification(t0 + 10 * S, [(traffic, {"uint_val": 1250}), (discards, {"uint_val": 10})]))
    for second in (11, 12, 13):
        n.process(notification(t0 + second * S, [(discards, {"uint_val": 10 + second})]))
    [(_, _, ts, fields, older)] = n.take_dirty()
    assert ts == t0 + 13 * S and older == {"in_bps": t0 + 10 * S}
    assert fields == {"in_bps": 1000.0, "in_discards_ps": 1.0}
    # a 10 s sample delivered after a newer 1 s one (another subscription's message) still lands, at its own time
    n.process(notification(t0 + 21 * S, [(discards, {"uint_val": 50})]))
    n.process(notification(t0 + 20 * S, [(traffic, {"uint_val": 2500})]))
    [(_, _, ts, fields, older)] = n.take_dirty()
    assert ts == t0 + 21 * S and older == {"in_bps": t0 + 20 * S} and fields["in_bps"] == 1000.0
    # ... but never over a newer value of the same field (a gauge: a late counter gives no rate at all)
    flaps = CTR + "carrier-transitions"
    n.process(notification(t0 + 30 * S, [(flaps, {"uint_val": 5})]))
    n.process(notification(t0 + 25 * S, [(flaps, {"uint_val": 3}), (discards, {"uint_val": 60})]))
    [(_, _, ts, fields, older)] = n.take_dirty()
    assert ts == t0 + 30 * S and fields["carrier_transitions"] == 5 and "carrier_transitions" not in older
    assert fields["in_discards_ps"] == 2.5 and older["in_discards_ps"] == t0 + 25 * S


@pytest.mark.parametrize(
    "event, handed_off",
    [
        (TelemetryEvent("pfc", 1, {}, {"rx_pause_ps": 10.0, "tx_pause_ps": 0.0}), True),
        (TelemetryEvent("pfc", 1, {}, {"rx_pause_ps": 0.0, "tx_pause_ps": 0.0}), False),
        (TelemetryEvent("queue", 1, {}, {"ecn_marked_pps": 3.0}), True),
        (TelemetryEvent("queue", 1, {}, {"transmit_pps": 3.0}), False),
        (TelemetryEvent("interface", 1, {}, {"in_fcs_errors_ps": 0.5}), True),
        (TelemetryEvent("interface", 1, {}, {"in_bps": 1e9}), False),
        (TelemetryEvent("dci_channel", 1, {}, {"osnr_db": 30.0}), True),
        (TelemetryEvent("system", 1, {}, {"cpu_pct": 99.0}), False),
    ],
)
def test_handoff_samples(event, handed_off):
    assert handoff_samples([event]) == ([event] if handed_off else [])


def test_take_dirty_from_another_thread_loses_nothing_and_never_raises():
    """The collector's subscription thread processes while the handoff thread takes the dirty series (benchmark
    run of 03:42: ``RuntimeError: Set changed size during iteration`` killed the handoff thread for good)."""
    import sys
    import threading

    n = Normaliser(META)
    n.sync()
    ifaces = [f"/interfaces/interface[name=Ethernet{i}/1]/state/oper-status" for i in range(1, 401)]
    note = notification(1 * S, [(path, {"string_val": "UP"}) for path in ifaces])
    taken: set[tuple[str, str]] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def take() -> None:
        try:
            while not done.is_set():
                taken.update((m, t["interface"]) for m, t, *_ in n.take_dirty())
        except BaseException as exc:  # the failure under test
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows within a few hundred rounds
    thread = threading.Thread(target=take)
    thread.start()
    try:
        for _ in range(2000):
            n.process(note)
            if errors:
                break
    finally:
        done.set()
        thread.join(10)
        sys.setswitchinterval(old)
    assert errors == []
    taken.update((m, t["interface"]) for m, t, *_ in n.take_dirty())
    assert taken == {("interface", f"Ethernet{i}/1") for i in range(1, 401)}
