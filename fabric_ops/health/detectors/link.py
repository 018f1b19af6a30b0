"""Link-fault detectors: oper-down, flapping, CRC/FCS errors, FEC and pre-FEC BER, optical Rx power, DCI OSNR/Q.

Inputs: oper-state changes (the collector's ``state`` events, :class:`StateChange`), ``interface`` samples
(``in_fcs_errors_ps``, ``in_crc_errors_ps``, ``in_pps``, ``carrier_transitions``), ``optics`` samples
(``fec_uncorrectable_ps``, ``pre_fec_ber``, per lane ``input_power_dbm``) and ``dci_channel`` samples
(``osnr_db``, ``q_value_db``, ``pre_fec_ber``). Why these defaults:

* Flapping: 3 transitions in 60 s. One bounce is a reboot or a re-seat; three in a minute is a failing optic or
  cable that will keep tearing down BGP and re-hashing every flow (CorrOpt's criterion is similar).
* CRC/FCS: a frame error ratio above 1e-6 (the IEEE 802.3 BER objective is 1e-12; RoCE go-back-N makes every
  lost frame cost a window of retransmissions), sustained 10 s, with at least 1 error/s.
* FEC: any uncorrectable codeword is packet loss; pre-FEC BER above 2.4e-4 (the KP4 RS(544,514) limit) raises,
  and clears only below 1e-5 (hysteresis: BER hovering around the limit must not open and close incidents).
* Optical Rx power: below -10 dBm (4x 100G-DR-style receivers' sensitivity is about -8.4 dBm at 1 lane; -10 is
  "losing the link"), or falling faster than 0.05 dB/min towards it so that the predicted time to threshold is
  under 24 h (fix it in a maintenance window, not at 3 a.m.).
* DCI: OSNR below 18 dB or Q below 7 dB (coherent 400G DP-16QAM needs ~ 20-23 dB OSNR at EOL margin; Q 7 dB is a
  pre-FEC BER near 1e-3-1e-2 where oFEC stops correcting); clears 1 dB above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import NS, Finding, Sample, hysteresis_limit, sustained


@dataclass(frozen=True)
class StateChange:
    """A state leaf that changed (the collector's ``state`` event): ``oper_up`` False -> True, ..."""

    device: str
    interface: str
    field: str
    old: Any
    new: Any
    ts: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkThresholds:
    flap_transitions: int = 3
    flap_window_s: float = 60.0
    fcs_error_ratio: float = 1e-6
    fcs_min_errors_per_s: float = 1.0
    fcs_sustain_s: float = 10.0
    fec_uncorrectable_per_s: float = 1.0
    pre_fec_ber_raise: float = 2.4e-4
    pre_fec_ber_clear: float = 1e-5
    rx_power_min_dbm: float = -10.0
    rx_power_clear_dbm: float = -9.0
    rx_trend_min_db_per_min: float = 0.05
    rx_trend_window_s: float = 1800.0
    rx_trend_min_samples: int = 5
    rx_trend_min_span_s: float = 300.0  # a slope fitted over a minute or two of noise means nothing
    rx_trend_horizon_h: float = 24.0
    dci_osnr_min_db: float = 18.0
    dci_q_min_db: float = 7.0
    dci_clear_margin_db: float = 1.0


def oper_down(change: StateChange) -> Finding | None:
    """An interface whose operational state went from up to down."""
    if change.field != "oper_up" or change.new is not False or change.old is not True:
        return None
    return Finding(
        "link-down", change.device, change.interface, 0.0, 1.0, f"{change.interface} went oper-down", change.ts,
        "major", {"oper_up": False},
    )  # fmt: skip


def flapping(changes: Sequence[StateChange], th: LinkThresholds, now_ns: int | None = None) -> Finding | None:
    """Oper-state changes of one interface: at least N transitions within the window ending now."""
    ups = [c for c in changes if c.field == "oper_up" and c.old is not None and c.new != c.old]
    if not ups:
        return None
    end = now_ns if now_ns is not None else ups[-1].ts
    recent = [c for c in ups if c.ts >= end - int(th.flap_window_s * NS)]
    if len(recent) < th.flap_transitions:
        return None
    last = recent[-1]
    return Finding(
        "link-flap", last.device, last.interface, float(len(recent)), float(th.flap_transitions),
        f"{len(recent)} oper-state transitions in {th.flap_window_s:g} s", recent[0].ts, "major",
        {"transitions": len(recent), "first_ns": recent[0].ts, "last_ns": last.ts, "now_up": bool(last.new)},
    )  # fmt: skip


def flapping_from_counter(samples: Sequence[Sample], th: LinkThresholds) -> Finding | None:
    """The same verdict from ``carrier_transitions`` counter samples (when state events were missed)."""
    recent = [s for s in samples if s.value("carrier_transitions") is not None]
    if len(recent) < 2:
        return None
    end = recent[-1].ts
    inside = [s for s in recent if s.ts >= end - int(th.flap_window_s * NS)]
    delta = inside[-1].value("carrier_transitions") - inside[0].value("carrier_transitions")
    if delta < th.flap_transitions:
        return None
    last = inside[-1]
    return Finding(
        "link-flap", last.device, last.tags.get("interface", ""), float(delta), float(th.flap_transitions),
        f"{delta} carrier transitions in {th.flap_window_s:g} s", inside[0].ts, "major", {"transitions": delta},
    )  # fmt: skip


def crc_errors(samples: Sequence[Sample], th: LinkThresholds, active: bool = False) -> Finding | None:
    """``interface`` samples: FCS/CRC error ratio above the limit, sustained."""

    def ratio(s: Sample) -> float | None:
        errors = max(s.value("in_fcs_errors_ps", 0.0) or 0.0, s.value("in_crc_errors_ps", 0.0) or 0.0)
        if errors < th.fcs_min_errors_per_s:
            return 0.0
        frames = (s.value("in_pps", 0.0) or 0.0) + errors
        return errors / frames if frames else 0.0

    held, low = sustained(samples, ratio, th.fcs_error_ratio, 0 if active else th.fcs_sustain_s)
    if not held:
        return None
    last = samples[-1]
    return Finding(
        "crc-errors", last.device, last.tags.get("interface", ""), low, th.fcs_error_ratio,
        f"frame error ratio {low:.2e} for {th.fcs_sustain_s:g} s", last.ts, "major",
        {"fcs_error_ratio": low, "in_fcs_errors_ps": last.value("in_fcs_errors_ps")},
    )  # fmt: skip


def fec_uncorrectable(samples: Sequence[Sample], th: LinkThresholds, active: bool = False) -> Finding | None:
    """``optics`` samples of one port: uncorrectable FEC codewords (= lost frames)."""
    if not samples:
        return None
    last = samples[-1]
    value = last.value("fec_uncorrectable_ps")
    if value is None or value < th.fec_uncorrectable_per_s:
        return None
    return Finding(
        "fec-uncorrectable", last.device, last.tags.get("interface", ""), value, th.fec_uncorrectable_per_s,
        f"{value:.0f} uncorrectable FEC codewords/s", last.ts, "major", {"fec_uncorrectable_ps": value},
    )  # fmt: skip


def pre_fec_ber(samples: Sequence[Sample], th: LinkThresholds, active: bool = False) -> Finding | None:
    """``optics`` samples of one port: pre-FEC BER above the FEC limit, with hysteresis."""
    if not samples:
        return None
    last = samples[-1]
    value = last.value("pre_fec_ber")
    if value is None or value < hysteresis_limit(active, th.pre_fec_ber_raise, th.pre_fec_ber_clear):
        return None
    return Finding(
        "pre-fec-ber", last.device, last.tags.get("interface", ""), value, th.pre_fec_ber_raise,
        f"pre-FEC BER {value:.2e} (limit {th.pre_fec_ber_raise:.1e})", last.ts, "major", {"pre_fec_ber": value},
    )  # fmt: skip


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of (x, y) points; slope 0 when x does not vary."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return slope, my - slope * mx


def rx_power(samples: Sequence[Sample], th: LinkThresholds, active: bool = False) -> Finding | None:
    """``optics`` lane samples (``input_power_dbm``) of one port: below the floor, or trending to it.

    The trend is a least-squares line over the window; ``time_to_threshold_s`` is when that line crosses the
    floor. Only a fall faster than ``rx_trend_min_db_per_min`` with a crossing inside the horizon is reported
    (noise on a flat signal fits slopes of either sign).
    """
    points = [(s.ts / NS, s.value("input_power_dbm")) for s in samples if s.value("input_power_dbm") is not None]
    if not points:
        return None
    last = samples[-1]
    subject = last.tags.get("interface", "")
    current = points[-1][1]
    floor = hysteresis_limit(active, th.rx_power_min_dbm, th.rx_power_clear_dbm)
    if current < floor:
        return Finding(
            "optic-rx-low", last.device, subject, current, th.rx_power_min_dbm,
            f"Rx power {current:.2f} dBm below {th.rx_power_min_dbm:g} dBm", last.ts, "major",
            {"input_power_dbm": current, "lane": last.tags.get("lane", "")},
        )  # fmt: skip
    start = points[-1][0] - th.rx_trend_window_s
    recent = [(x, y) for x, y in points if x >= start]
    if len(recent) < th.rx_trend_min_samples or recent[-1][0] - recent[0][0] < th.rx_trend_min_span_s:
        return None
    slope, intercept = linear_fit(recent)
    per_min = slope * 60
    if per_min > -th.rx_trend_min_db_per_min:
        return None
    now_x = recent[-1][0]
    predicted_now = slope * now_x + intercept
    seconds = (th.rx_power_min_dbm - predicted_now) / slope
    if seconds > th.rx_trend_horizon_h * 3600:
        return None
    return Finding(
        "optic-rx-trend", last.device, subject, round(per_min, 4), -th.rx_trend_min_db_per_min,
        f"Rx power {current:.2f} dBm falling {-per_min:.2f} dB/min; reaches {th.rx_power_min_dbm:g} dBm in "
        f"{max(0.0, seconds) / 60:.1f} min", last.ts, "minor",
        {"input_power_dbm": current, "db_per_minute": round(per_min, 4),
         "time_to_threshold_s": round(max(0.0, seconds), 1)},
    )  # fmt: skip


def dci_degradation(samples: Sequence[Sample], th: LinkThresholds, active: bool = False) -> Finding | None:
    """``dci_channel`` samples of one wavelength: OSNR or Q below the floor (clears ``dci_clear_margin_db`` above)."""
    if not samples:
        return None
    last = samples[-1]
    margin = th.dci_clear_margin_db if active else 0.0
    osnr, q = last.value("osnr_db"), last.value("q_value_db")
    low_osnr = osnr is not None and osnr < th.dci_osnr_min_db + margin
    low_q = q is not None and q < th.dci_q_min_db + margin
    if not (low_osnr or low_q):
        return None
    what = f"OSNR {osnr:.1f} dB" if low_osnr else f"Q {q:.1f} dB"
    return Finding(
        "dci-degradation", last.device, last.tags.get("channel", ""), float(osnr if low_osnr else q),
        th.dci_osnr_min_db if low_osnr else th.dci_q_min_db, f"wavelength {last.tags.get('channel', '')}: {what}",
        last.ts, "major", {"osnr_db": osnr, "q_value_db": q, "pre_fec_ber": last.value("pre_fec_ber")},
    )  # fmt: skip
