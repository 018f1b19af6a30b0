"""Table-driven tests of the pure detectors: input samples -> expected finding (or none)."""

from __future__ import annotations

import pytest

from fabric_ops.errors import ConfigurationError
from fabric_ops.health.detectors import congestion as cg
from fabric_ops.health.detectors import device as dv
from fabric_ops.health.detectors import link as lk
from fabric_ops.health.detectors.base import NS, Sample, sustained, with_overrides

T0 = 1_800_000_000 * NS
CT = cg.CongestionThresholds()
LT = lk.LinkThresholds()


def series(measurement: str, values: list, field: str, *, step: float = 1.0, **tags) -> list[Sample]:
    base = {"device": "leaf1", "interface": "Ethernet1/1", **tags}
    return [
        Sample(measurement, base, {field: v} if v is not None else {}, T0 + int(i * step * NS))
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("values", "seconds", "limit", "held"),
    [
        ([5, 5, 5, 5, 5, 5], 5, 5, True),  # exactly at the limit over the whole window
        ([5, 5, 5, 5, 5, 4], 5, 5, False),  # last sample below
        ([5, 5, 5], 5, 5, False),  # window not covered yet: one burst is not sustained
        ([1, 9, 9, 9, 9, 9, 9], 5, 5, True),  # the old low value is outside the window
        ([9, 9, None, 9, 9, 9], 5, 5, False),  # a missing value breaks the run
        ([9], 0, 5, True),  # zero seconds = the latest sample decides
    ],
)
def test_sustained(values, seconds, limit, held):
    assert sustained(series("queue", values, "x"), lambda s: s.value("x"), limit, seconds)[0] is held


@pytest.mark.parametrize(
    ("values", "active", "expected"),
    [
        ([60_000] * 6, False, 60_000),
        ([60_000] * 3, False, None),  # too short
        ([60_000] * 5 + [20_000], False, None),  # dipped below the raise level
        ([20_000], True, 20_000),  # active: stays until below the clear level
        ([5_000], True, None),
        ([0] * 10, False, None),
    ],
)
def test_ecn_marking(values, active, expected):
    finding = cg.ecn_marking(series("queue", values, "ecn_marked_pps", queue="3"), CT, active)
    assert (finding.value if finding else None) == expected
    if finding:
        assert (finding.kind, finding.subject) == ("ecn-marking", "Ethernet1/1/3")


@pytest.mark.parametrize(
    ("rx", "tx", "expected"),
    [
        ([2000] * 6, [0] * 6, 2000),
        ([0] * 6, [1500] * 6, 1500),  # pauses sent count as well
        ([2000] * 4, [0] * 4, None),
        ([900] * 6, [0] * 6, None),
    ],
)
def test_pfc_pause(rx, tx, expected):
    samples = [
        Sample("pfc", {"device": "leaf1", "interface": "Et1", "priority": "3"},
               {"rx_pause_ps": r, "tx_pause_ps": t}, T0 + i * NS)
        for i, (r, t) in enumerate(zip(rx, tx, strict=True))
    ]  # fmt: skip
    finding = cg.pfc_pause(samples, CT)
    assert (finding.value if finding else None) == expected


SAT400 = cg.pause_saturation_rate(400)


def test_saturation_rate_is_one_frame_per_half_quantum():
    assert pytest.approx(23_842, rel=1e-3) == SAT400


@pytest.mark.parametrize(
    ("rx", "step", "window_ms", "storm"),
    [
        ([SAT400, SAT400], 1.0, 200, True),  # fully paused for a second > 200 ms
        ([0, SAT400 * 0.5], 1.0, 200, False),  # half paused: back-pressure, not a storm
        ([0, SAT400 * 0.9], 0.1, 200, False),  # 90 ms paused so far: under the window
        ([0, SAT400, SAT400, SAT400], 0.1, 200, True),  # 300 ms
        ([SAT400, SAT400, 100, SAT400], 1.0, 2000, False),  # the run restarted: 1 s < 2 s window
        ([SAT400] * 4, 1.0, 2000, True),
    ],
)
def test_pfc_storm_paused_longer_than_the_watchdog_window(rx, step, window_ms, storm):
    th = with_overrides(CT, {"storm_window_ms": window_ms})
    finding = cg.pfc_storm(series("pfc", rx, "rx_pause_ps", step=step, priority="3"), th, 400)
    assert (finding is not None) is storm
    if finding:
        assert finding.kind == "pfc-storm" and finding.subject == "Ethernet1/1/3"


def test_pfc_storm_from_a_watchdog_trigger():
    samples = series("pfc", [0, 0, 1], "watchdog_storms", priority="3")
    assert cg.pfc_storm(samples, CT, 400).evidence == {"watchdog_storms": 1}
    assert cg.pfc_storm(series("pfc", [1, 1], "watchdog_storms", priority="3"), CT, 400) is None


@pytest.mark.parametrize(
    ("queue", "drops", "expected"),
    [("3", 50, 50), ("3", 0, None), ("0", 50, None)],  # only lossless queues count
)
def test_lossless_drops(queue, drops, expected):
    finding = cg.lossless_drops(series("queue", [drops], "dropped_pps", queue=queue), CT, frozenset({"3"}))
    assert (finding.value if finding else None) == expected


@pytest.mark.parametrize(
    ("gbps", "active", "hot"),
    [([380] * 31, False, True), ([380] * 20, False, False), ([380] * 30 + [300], False, False), ([330], True, True),
     ([300], True, False)],
)  # fmt: skip
def test_hot_link(gbps, active, hot):
    finding = cg.hot_link(series("interface", [g * 1e9 for g in gbps], "out_bps"), CT, 400, active)
    assert (finding is not None) is hot


@pytest.mark.parametrize("step", [10.0, 10.005, 10.2, 9.9])
def test_hot_link_from_10s_traffic_samples_whatever_their_jitter(step):
    """The default profile samples traffic every 10 s, and a switch's ticks are never exactly 10 s apart: 40 s of
    390G on a 400G port is a hot link at any spacing (counting the window from its oldest sample's own time missed
    every slightly-late spacing for good)."""
    samples = series("interface", [390e9] * 5, "out_bps", step=step)
    assert cg.hot_link(samples, CT, 400, False) is not None
    assert cg.hot_link(samples[:2], CT, 400, False) is None  # two 10 s rates are 20 s of it, not 30 s


def test_sustained_counts_the_interval_the_oldest_rate_in_the_window_measures():
    jittered = [Sample("queue", {}, {"x": v}, T0 + int(i * 1.001 * NS)) for i, v in enumerate([1, 9, 9, 9, 9, 9])]
    # the window (last 5 s) holds the five 9s; the first of them measured the second before it
    assert sustained(jittered, lambda s: s.value("x"), 5, 5)[0] is True
    assert sustained(jittered[1:], lambda s: s.value("x"), 5, 5)[0] is True  # with or without the 1 before it
    assert sustained(jittered[2:], lambda s: s.value("x"), 5, 5)[0] is False  # 4 s: not yet


def at(*points: tuple[float, float]) -> list[Sample]:
    return [Sample("queue", {}, {"x": v}, T0 + int(t * NS)) for t, v in points]


@pytest.mark.parametrize(
    ("points", "seconds", "why"),
    [
        (((0, 60_000), (21, 60_000)), 5, "two isolated 1 s bursts (the handoff publishes only non-zero rates)"),
        (((0, 5), (40, 2000)), 5, "one burst after a minute of silence"),
        (((0, 1), (35, 390), (45, 390)), 30, "a 10 s traffic sample missed: 20 s of evidence, not 30"),
        (((44.7, 1), (45, 390), (55, 390), (65, 390)), 30, "a 1 s counter 0.3 s before: credit 0.3 s, not 10"),
    ],
)
def test_sustained_never_credits_more_than_one_sample_interval(points, seconds, why):
    assert sustained(at(*points), lambda s: s.value("x"), 300, seconds)[0] is False, why


def test_ecn_marking_is_not_raised_by_isolated_bursts():
    bursts = at((0, 60_000), (21, 60_000))
    assert cg.ecn_marking([Sample("queue", {"queue": "3"}, {"ecn_marked_pps": s.value("x")}, s.ts)
                           for s in bursts], CT) is None  # fmt: skip


@pytest.mark.parametrize(
    ("utils", "expected"),
    [
        ({"up1": 0.9, "up2": 0.3, "up3": 0.3, "up4": 0.3}, "up1"),  # 0.9 / 0.45 = 2.0
        ({"up1": 0.5, "up2": 0.5, "up3": 0.4, "up4": 0.4}, None),  # balanced
        ({"up1": 0.3, "up2": 0.01, "up3": 0.01}, None),  # idle fabric: the mean is under 20 %
        ({"up1": 0.9}, None),  # one uplink: nothing to compare
    ],
)
def test_ecmp_imbalance(utils, expected):
    finding = cg.ecmp_imbalance("leaf1", utils, CT)
    assert (finding.evidence["busiest"] if finding else None) == expected
    if finding:
        assert finding.key == ("ecmp-imbalance", "leaf1", "")  # the leaf's, whichever uplink is the busiest


@pytest.mark.parametrize(("ratio", "active", "raised"), [(1.4, False, False), (1.4, True, True), (1.2, True, False)])
def test_ecmp_imbalance_hysteresis(ratio, active, raised):
    utils = {"up1": 0.4 * 3 * ratio / (4 - ratio), "up2": 0.4, "up3": 0.4, "up4": 0.4}  # up1 / mean == ratio
    assert (cg.ecmp_imbalance("leaf1", utils, CT, active=active) is not None) is raised


@pytest.mark.parametrize(
    ("util", "marking", "senders", "incast"),
    [(0.99, True, 3, True), (0.99, False, 8, False), (0.9, True, 8, False), (0.99, True, 2, False)],
)
def test_incast(util, marking, senders, incast):
    finding = cg.incast("leaf1", "Et1", egress_utilisation=util, marking_or_dropping=marking, senders=senders, th=CT)
    assert (finding is not None) is incast


def change(old, new, t, field="oper_up"):
    return lk.StateChange("leaf1", "Et1", field, old, new, T0 + int(t * NS))


@pytest.mark.parametrize(
    ("c", "down"),
    [(change(True, False, 0), True), (change(False, True, 0), False), (change(None, False, 0), False),
     (change(True, False, 0, field="admin_up"), False)],
)  # fmt: skip
def test_oper_down(c, down):
    assert (lk.oper_down(c) is not None) is down


@pytest.mark.parametrize(
    ("times", "now", "flapping"),
    [
        ([0, 5, 10], None, True),  # 3 transitions in 10 s
        ([0, 5], None, False),
        ([0, 50, 100], None, False),  # 3 transitions, but spread over 100 s
        ([0, 5, 10], 100, False),  # long ago: it stopped flapping
    ],
)
def test_flapping(times, now, flapping):
    changes = [change(i % 2 == 0, i % 2 == 1, t) for i, t in enumerate(times)]
    finding = lk.flapping(changes, LT, None if now is None else T0 + now * NS)
    assert (finding is not None) is flapping


@pytest.mark.parametrize(("counts", "flapping"), [([10, 11, 13], True), ([10, 11, 11], False)])
def test_flapping_from_the_carrier_transitions_counter(counts, flapping):
    assert (lk.flapping_from_counter(series("interface", counts, "carrier_transitions"), LT) is not None) is flapping


@pytest.mark.parametrize(
    ("fcs", "pps", "seconds", "expected"),
    [
        (100, 1e6, 11, True),  # 1e-4 > 1e-6
        (100, 1e6, 5, False),  # not sustained yet
        (0.5, 1e3, 11, False),  # under one error a second
        (1, 1e9, 11, False),  # 1e-9 < 1e-6
    ],
)
def test_crc_errors(fcs, pps, seconds, expected):
    samples = [
        Sample("interface", {"device": "leaf1", "interface": "Et1"}, {"in_fcs_errors_ps": fcs, "in_pps": pps},
               T0 + i * NS)
        for i in range(seconds)
    ]  # fmt: skip
    assert (lk.crc_errors(samples, LT) is not None) is expected


@pytest.mark.parametrize(
    ("ber", "active", "raised"),
    [(3e-4, False, True), (1e-4, False, False), (1e-4, True, True), (5e-6, True, False), (None, False, False)],
)
def test_pre_fec_ber_with_hysteresis(ber, active, raised):
    assert (lk.pre_fec_ber(series("optics", [ber], "pre_fec_ber"), LT, active) is not None) is raised


@pytest.mark.parametrize(("value", "raised"), [(5.0, True), (0.0, False), (0.5, False)])
def test_fec_uncorrectable(value, raised):
    assert (lk.fec_uncorrectable(series("optics", [value], "fec_uncorrectable_ps"), LT) is not None) is raised


@pytest.mark.parametrize(
    ("powers", "kind", "ttt"),
    [
        ([-2.0] * 10, None, None),  # flat
        ([-11.0], "optic-rx-low", None),  # below the floor
        ([-2.0 - 0.1 * i for i in range(10)], "optic-rx-trend", (-2.9 - -10.0) / 0.1),  # 0.1 dB/min: 71 min to go
        ([-2.0 - 0.01 * i for i in range(10)], None, None),  # 0.01 dB/min: slower than the trend threshold
        ([-2.0, -2.3, -1.9, -2.2, -2.0, -2.1], None, None),  # noise
    ],
)
def test_rx_power_floor_and_trend(powers, kind, ttt):
    samples = series("optics", powers, "input_power_dbm", step=60.0, lane="1")
    finding = lk.rx_power(samples, LT)
    assert (finding.kind if finding else None) == kind
    if ttt is not None:
        assert finding.evidence["time_to_threshold_s"] / 60 == pytest.approx(ttt, rel=1e-3)
        assert finding.evidence["db_per_minute"] == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("osnr", "q", "active", "raised"),
    [(25.0, 8.0, False, False), (17.0, 8.0, False, True), (25.0, 6.0, False, True), (18.5, 8.0, True, True),
     (19.5, 8.5, True, False)],
)  # fmt: skip
def test_dci_degradation(osnr, q, active, raised):
    samples = [Sample("dci_channel", {"device": "sjc-dci1", "channel": "ch1"}, {"osnr_db": osnr, "q_value_db": q}, T0)]
    finding = lk.dci_degradation(samples, LT, active)
    assert (finding is not None) is raised
    if finding:
        assert finding.subject == "ch1"


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"state": "lost", "reason": "StatusCode.UNAVAILABLE: failed to connect"}, "device-unreachable"),
        ({"state": "lost", "reason": "stalled: nothing for 3.0 s"}, "telemetry-lost"),
        ({"state": "restored", "gap_s": 4.0}, None),
    ],
)
def test_device_stream(event, kind):
    finding = dv.device_stream("leaf1", event, T0)
    assert (finding.kind if finding else None) == kind


@pytest.mark.parametrize(("last", "now", "lost"), [(0, 31, True), (0, 29, False), (None, 100, False)])
def test_telemetry_silence(last, now, lost):
    finding = dv.telemetry_silence(
        "leaf1", None if last is None else T0 + last * NS, T0 + now * NS, dv.DeviceThresholds()
    )
    assert (finding is not None) is lost


def test_unknown_threshold_is_refused_by_name():
    with pytest.raises(ConfigurationError, match="flap_count"):
        with_overrides(LT, {"flap_count": 3})
    assert with_overrides(LT, {"flap_transitions": "5"}).flap_transitions == 5
