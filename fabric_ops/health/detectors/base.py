"""The common vocabulary of every detector: one sample type in, one finding type out.

A :class:`Sample` is what the telemetry collector hands to detection (``fabric_ops.telemetry.handoff``: a
measurement, its tags, its fields and the switch's timestamp in ns), so a detector never knows whether its input
came from the Redis stream, a replay or a test table. Detectors are pure functions of a short, time-ordered
history of one series (plus thresholds and, when they need it, a little topology context such as the port
speed); they return a :class:`Finding` while the condition holds and ``None`` once it has cleared. The engine
(``fabric_ops.health.engine``) keeps the histories and turns findings into alarms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from itertools import pairwise
from typing import Any

NS = 1_000_000_000


@dataclass(frozen=True)
class Sample:
    """One telemetry sample of one series (e.g. ``queue`` of ``leaf1`` ``interface=Et1,queue=3``)."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, Any]
    ts: int  # switch timestamp, epoch ns

    @property
    def device(self) -> str:
        return self.tags.get("device", "")

    def value(self, name: str, default: float | None = None) -> Any:
        return self.fields.get(name, default)


@dataclass(frozen=True)
class Finding:
    """A detector's verdict: which condition, where, with the value and the threshold that decided it."""

    kind: str  # the detector kind, matched by playbooks: "link-flap", "pfc-storm", ...
    device: str
    subject: str = ""  # interface, "interface/priority", channel name; "" for the whole device
    value: float = 0.0
    threshold: float = 0.0
    message: str = ""
    ts: int = 0  # switch timestamp of the sample that decided it (the "fault seen" time)
    severity: str = "major"
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.device, self.subject)


def window(samples: Sequence[Sample], seconds: float) -> list[Sample]:
    """The samples of the last ``seconds`` (by switch time), oldest first; all of them if ``seconds`` <= 0."""
    if not samples:
        return []
    if seconds <= 0:
        return [samples[-1]]
    start = samples[-1].ts - int(seconds * NS)
    return [s for s in samples if s.ts >= start]


def sustained(
    samples: Sequence[Sample], value: Callable[[Sample], float | None], limit: float, seconds: float
) -> tuple[bool, float]:
    """Whether ``value`` stayed >= ``limit`` on every sample of the last ``seconds`` and the samples cover them.

    Returns (held, the smallest value in the window). A window that does not reach back ``seconds`` (too few
    samples yet) does not hold: one spike is not "sustained". Samples with no value break the run.

    Every value here is a rate over one sample interval, so the oldest sample in the window covers one interval
    back: 10 s samples 10.005 s apart (a switch's clock ticks are never exact) cover 30 s with three in the window.
    Counting from the oldest sample's own time instead needed four samples within exactly 30 s, which jitter made
    a coin toss and a slow clock never. The interval is the closest spacing seen in the window, and never more
    than the gap to the sample before it: the handoff publishes rates only while they are non-zero, so that
    sample may be an unrelated burst a minute older, and a single sample in the window proves no interval.
    """
    recent = window(samples, seconds)
    values = [value(s) for s in recent]
    if not values or any(v is None for v in values):
        return False, 0.0
    low = min(values)  # type: ignore[type-var]
    if seconds <= 0:
        return low >= limit, float(low)
    start = recent[0].ts
    if len(recent) >= 2:
        interval = min(b.ts - a.ts for a, b in pairwise(recent))
        before = len(samples) - len(recent) - 1  # window() keeps a suffix of the (oldest-first) samples
        start -= min(interval, start - samples[before].ts) if before >= 0 else interval
    covered = recent[-1].ts - start >= int(seconds * NS * 0.999)
    return covered and low >= limit, float(low)


def hysteresis_limit(active: bool, raise_at: float, clear_at: float) -> float:
    """An active alarm stays until the value drops below ``clear_at``; a new one needs ``raise_at``."""
    return clear_at if active else raise_at


def with_overrides(defaults: Any, overrides: Mapping[str, Any] | None) -> Any:
    """A thresholds dataclass with some fields replaced; an unknown name is an error naming it."""
    if not overrides:
        return defaults
    known = {f.name for f in fields(defaults)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        from fabric_ops.errors import ConfigurationError

        raise ConfigurationError(
            f"unknown threshold(s) {', '.join(unknown)} for {type(defaults).__name__}; "
            f"known: {', '.join(sorted(known))}"
        )
    return replace(defaults, **{k: type(getattr(defaults, k))(v) for k, v in overrides.items()})
