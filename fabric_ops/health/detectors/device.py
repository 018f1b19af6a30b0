"""Device detectors: unreachable, telemetry lost.

Inputs are the collector's ``stream`` events (``lost`` with a reason, ``restored`` with the gap) and the time of
the last sample seen per device. Why these defaults: the collector itself reports a stream that stalls (3 silent
intervals) as ``lost``; silence is the backstop for a collector that died or lags, and a loaded collector can lag
by 10-20 s without losing anything, so 30 s without a sample is "telemetry lost"; a device is
"unreachable" (rather than "telemetry lost") when the collector's reason says the connection itself failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import NS, Finding

UNREACHABLE_MARKERS = ("unavailable", "connect", "refused", "timed out", "deadline", "unreachable", "no route")


@dataclass(frozen=True)
class DeviceThresholds:
    telemetry_lost_s: float = 30.0


def device_stream(device: str, event: Mapping[str, Any], ts: int) -> Finding | None:
    """A collector ``stream`` event: ``lost`` -> unreachable or telemetry-lost by its reason; others -> None."""
    if event.get("state") != "lost":
        return None
    reason = str(event.get("reason", ""))
    unreachable = any(m in reason.lower() for m in UNREACHABLE_MARKERS)
    kind = "device-unreachable" if unreachable else "telemetry-lost"
    return Finding(kind, device, "", 0.0, 0.0, f"telemetry stream lost: {reason}", ts, "critical", {"reason": reason})


def telemetry_silence(device: str, last_sample_ns: int | None, now_ns: int, th: DeviceThresholds) -> Finding | None:
    """No sample from ``device`` for longer than the limit (also covers a collector that died)."""
    if last_sample_ns is None:
        return None
    silent = (now_ns - last_sample_ns) / NS
    if silent < th.telemetry_lost_s:
        return None
    return Finding(
        "telemetry-lost", device, "", round(silent, 1), th.telemetry_lost_s, f"no telemetry for {silent:.0f} s",
        last_sample_ns, "major", {"silent_s": round(silent, 1)},
    )  # fmt: skip
