"""Congestion detectors: ECN marking, PFC pauses and storms, lossless drops, hot links, ECMP imbalance, incast.

Inputs are the collector's ``queue`` (``ecn_marked_pps``, ``dropped_pps``, ``transmit_bps``), ``pfc``
(``rx_pause_ps``, ``tx_pause_ps``, ``watchdog_storms``) and ``interface`` (``out_bps``, ``in_bps``) samples.
Why these defaults:

* ECN marking is DCQCN working; only a sustained high rate (> 50k marks/s for 5 s) says a queue is persistently
  past its WRED minimum, i.e. a hot spot rather than a burst.
* PFC pauses are the last line before loss; > 1000 pause frames/s for 5 s means back-pressure is spreading.
* A PFC storm is a port paused (almost) continuously for longer than the PFC watchdog window (200 ms by
  default, ``RoceProfile.pfc_watchdog_detection_ms``): a switch re-sends XOFF every half pause quantum
  (65535 x 512 bit times), so at 400G a continuously paused port receives ~23.8k frames/s. A watchdog that fired
  (``watchdog_storms`` increased) is a storm by definition.
* Any drop on a lossless class is a misconfiguration or a storm being broken; it is always reported.
* Hot link: > 90 % of line rate for 30 s. ECMP imbalance: the busiest uplink of a leaf carries > 1.5x the mean of
  its uplinks (with the mean above 20 %, so idle fabrics do not alarm); it clears below 1.3x. It is the leaf's
  finding, not the busiest uplink's (that one changes from sample to sample).
* Incast: a host-facing port is > 95 % busy while its queue marks or drops, and the traffic comes in from several
  uplinks (``fan_in`` >= 3 senders' worth of ingress on the leaf's uplinks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .base import NS, Finding, Sample, hysteresis_limit, sustained

PAUSE_QUANTA_BITS = 65535 * 512


@dataclass(frozen=True)
class CongestionThresholds:
    ecn_marks_per_s: float = 50_000.0
    ecn_clear_marks_per_s: float = 10_000.0
    ecn_sustain_s: float = 5.0
    pfc_pauses_per_s: float = 1_000.0
    pfc_clear_pauses_per_s: float = 100.0
    pfc_sustain_s: float = 5.0
    storm_paused_fraction: float = 0.8  # share of the time a port must be paused to count as "continuously"
    storm_window_ms: float = 200.0  # the PFC watchdog window
    lossless_drops_per_s: float = 1.0
    hot_link_utilisation: float = 0.9
    hot_link_clear_utilisation: float = 0.8
    hot_link_sustain_s: float = 30.0
    ecmp_imbalance_ratio: float = 1.5
    ecmp_clear_ratio: float = 1.3  # hysteresis: a ratio hovering around 1.5 must not open and close alarms
    ecmp_min_mean_utilisation: float = 0.2
    incast_utilisation: float = 0.95
    incast_min_senders: int = 3


def pause_saturation_rate(speed_gbps: float) -> float:
    """Pause frames per second that keep a port of ``speed_gbps`` paused without a gap."""
    return 2 * speed_gbps * 1e9 / PAUSE_QUANTA_BITS


def ecn_marking(samples: Sequence[Sample], th: CongestionThresholds, active: bool = False) -> Finding | None:
    """``queue`` samples of one queue: a sustained ECN-mark rate."""
    limit = hysteresis_limit(active, th.ecn_marks_per_s, th.ecn_clear_marks_per_s)
    held, low = sustained(samples, lambda s: s.value("ecn_marked_pps"), limit, 0 if active else th.ecn_sustain_s)
    if not held:
        return None
    last = samples[-1]
    queue = last.tags.get("queue", "")
    return Finding(
        "ecn-marking", last.device, f"{last.tags.get('interface', '')}/{queue}", low, th.ecn_marks_per_s,
        f"queue {queue} marks {low:.0f} pkts/s for {th.ecn_sustain_s:g} s", last.ts, "minor",
        {"ecn_marked_pps": low},
    )  # fmt: skip


def pfc_pause(samples: Sequence[Sample], th: CongestionThresholds, active: bool = False) -> Finding | None:
    """``pfc`` samples of one port/priority: sustained pause frames sent or received."""
    limit = hysteresis_limit(active, th.pfc_pauses_per_s, th.pfc_clear_pauses_per_s)

    def rate(s: Sample) -> float | None:
        rx, tx = s.value("rx_pause_ps"), s.value("tx_pause_ps")
        if rx is None and tx is None:
            return None
        return max(rx or 0.0, tx or 0.0)

    held, low = sustained(samples, rate, limit, 0 if active else th.pfc_sustain_s)
    if not held:
        return None
    last = samples[-1]
    prio = last.tags.get("priority", "")
    return Finding(
        "pfc-pause", last.device, f"{last.tags.get('interface', '')}/{prio}", low, th.pfc_pauses_per_s,
        f"priority {prio} pauses {low:.0f} frames/s for {th.pfc_sustain_s:g} s", last.ts, "minor",
        {"pause_ps": low, "priority": prio},
    )  # fmt: skip


def pfc_storm(
    samples: Sequence[Sample], th: CongestionThresholds, speed_gbps: float, active: bool = False
) -> Finding | None:
    """``pfc`` samples of one port/priority: paused continuously for longer than the watchdog window.

    The time paused in each sampling interval is (received pause rate / saturation rate) x interval; a run of
    intervals each paused >= ``storm_paused_fraction`` whose paused time adds up past the window is a storm.
    A watchdog trigger (``watchdog_storms`` went up) is one too.
    """
    if not samples:
        return None
    last = samples[-1]
    subject = f"{last.tags.get('interface', '')}/{last.tags.get('priority', '')}"
    storms = [s.value("watchdog_storms") for s in samples if s.value("watchdog_storms") is not None]
    if len(storms) >= 2 and storms[-1] > storms[0]:
        return Finding(
            "pfc-storm", last.device, subject, float(storms[-1] - storms[0]), 0.0,
            "the switch's PFC watchdog detected a pause storm", last.ts, "critical", {"watchdog_storms": storms[-1]},
        )  # fmt: skip
    saturation = pause_saturation_rate(speed_gbps)
    paused_s = 0.0
    fraction = 0.0
    for prev, cur in zip(reversed(samples[:-1]), reversed(samples), strict=False):
        rx = cur.value("rx_pause_ps")
        if rx is None:
            break
        frac = min(1.0, rx / saturation)
        if frac < th.storm_paused_fraction:
            break
        fraction = frac if not paused_s else min(fraction, frac)
        paused_s += frac * (cur.ts - prev.ts) / NS
    if paused_s * 1000 < th.storm_window_ms:
        return None
    return Finding(
        "pfc-storm", last.device, subject, round(paused_s, 3), th.storm_window_ms / 1000,
        f"paused {fraction:.0%} of the time for {paused_s:.1f} s (watchdog window {th.storm_window_ms:g} ms)",
        last.ts, "critical", {"paused_seconds": round(paused_s, 3), "paused_fraction": round(fraction, 3),
                              "rx_pause_ps": last.value("rx_pause_ps")},
    )  # fmt: skip


def lossless_drops(
    samples: Sequence[Sample], th: CongestionThresholds, lossless_queues: frozenset[str], active: bool = False
) -> Finding | None:
    """``queue`` samples: drops on a queue that PFC should make lossless."""
    if not samples:
        return None
    last = samples[-1]
    if last.tags.get("queue", "") not in lossless_queues:
        return None
    drops = last.value("dropped_pps")
    if drops is None or drops < th.lossless_drops_per_s:
        return None
    return Finding(
        "lossless-drops", last.device, f"{last.tags.get('interface', '')}/{last.tags.get('queue', '')}", drops,
        th.lossless_drops_per_s, f"lossless queue {last.tags.get('queue')} drops {drops:.0f} pkts/s", last.ts,
        "major", {"dropped_pps": drops},
    )  # fmt: skip


def hot_link(
    samples: Sequence[Sample], th: CongestionThresholds, speed_gbps: float, active: bool = False
) -> Finding | None:
    """``interface`` samples of one port: utilisation (the busier direction) sustained above the limit."""
    limit = hysteresis_limit(active, th.hot_link_utilisation, th.hot_link_clear_utilisation)
    capacity = speed_gbps * 1e9

    def util(s: Sample) -> float | None:
        out_bps, in_bps = s.value("out_bps"), s.value("in_bps")
        if out_bps is None and in_bps is None:
            return None
        return max(out_bps or 0.0, in_bps or 0.0) / capacity

    held, low = sustained(samples, util, limit, 0 if active else th.hot_link_sustain_s)
    if not held:
        return None
    last = samples[-1]
    return Finding(
        "hot-link", last.device, last.tags.get("interface", ""), round(low, 4), th.hot_link_utilisation,
        f"{low:.0%} of {speed_gbps:g}G for {th.hot_link_sustain_s:g} s", last.ts, "minor", {"utilisation": low},
    )  # fmt: skip


def ecmp_imbalance(
    device: str, uplink_utilisation: Mapping[str, float], th: CongestionThresholds, ts: int = 0, active: bool = False
) -> Finding | None:
    """One leaf's uplinks (interface -> utilisation 0..1, carrying links only): the busiest vs the mean.

    The finding is the leaf's (subject ""): which uplink is the busiest changes from one sample to the next while
    the imbalance itself persists, so keying it by that uplink would open a new alarm every time it changed. The
    busiest uplink is in the evidence.
    """
    if len(uplink_utilisation) < 2:
        return None
    values = list(uplink_utilisation.values())
    mean = sum(values) / len(values)
    if mean < th.ecmp_min_mean_utilisation:
        return None
    busiest = max(uplink_utilisation, key=uplink_utilisation.__getitem__)
    ratio = uplink_utilisation[busiest] / mean
    if ratio < hysteresis_limit(active, th.ecmp_imbalance_ratio, th.ecmp_clear_ratio):
        return None
    return Finding(
        "ecmp-imbalance", device, "", round(ratio, 3), th.ecmp_imbalance_ratio,
        f"{busiest} carries {ratio:.2f}x the mean of {len(values)} uplinks ({mean:.0%})", ts, "minor",
        {"busiest": busiest, "utilisation": dict(uplink_utilisation), "mean": mean},
    )  # fmt: skip


def incast(
    device: str,
    interface: str,
    *,
    egress_utilisation: float,
    marking_or_dropping: bool,
    senders: int,
    th: CongestionThresholds,
    ts: int = 0,
) -> Finding | None:
    """A host-facing leaf port saturated by many senders while its queue marks or drops."""
    if egress_utilisation < th.incast_utilisation or not marking_or_dropping or senders < th.incast_min_senders:
        return None
    return Finding(
        "incast", device, interface, round(egress_utilisation, 4), th.incast_utilisation,
        f"{senders} senders saturate {interface} ({egress_utilisation:.0%}) and its queue marks/drops", ts,
        "major", {"senders": senders, "utilisation": egress_utilisation},
    )  # fmt: skip
