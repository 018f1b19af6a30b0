"""Default gNMI subscriptions per role/platform, and the profile a device gets.

Intervals follow what detection needs: congestion (PFC pauses, ECN marks, drops) is a seconds-scale event and is
sampled every second; other counters and optics move slowly and are sampled every 10 s; oper-status is streamed
ON_CHANGE so a link going down is seen at once; DCI optical channels (OSNR, Q, pre-FEC BER) every second because a
degrading span is the early warning for a whole city pair. Paths are OpenConfig (the PFC and ECN-mark leaves are
vendor augments, see docs/telemetry-paths.md).

A :class:`~fabric_ops.telemetry.models.SubscriptionProfile` row overrides the defaults for a role and/or a
platform (most specific match wins); with no rows, :data:`DEFAULT_PROFILES` apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.errors import ConfigurationError

__all__ = ["DEFAULT_PROFILES", "Profile", "SubscriptionSpec", "default_profile", "resolve_profile"]

MODES = ("SAMPLE", "ON_CHANGE", "TARGET_DEFINED")
ENCODINGS = ("proto", "json", "json_ietf")
SECOND_NS = 1_000_000_000


@dataclass(frozen=True)
class SubscriptionSpec:
    """One gNMI Subscription: a path, its mode and (SAMPLE) interval in seconds."""

    path: str
    mode: str = "SAMPLE"
    interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(f"subscription {self.path!r}: mode {self.mode!r} is not one of {MODES}")
        if self.mode == "SAMPLE" and not self.interval_s > 0:
            raise ConfigurationError(f"subscription {self.path!r}: SAMPLE needs interval_s > 0")
        if not self.path.startswith("/"):
            raise ConfigurationError(f"subscription {self.path!r}: a path must start with '/'")

    def to_pygnmi(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "mode": self.mode.lower()}
        if self.mode == "SAMPLE":
            entry["sample_interval"] = int(self.interval_s * SECOND_NS)
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "profile") -> SubscriptionSpec:
        try:
            return cls(str(data["path"]), str(data.get("mode", "SAMPLE")).upper(), float(data.get("interval_s", 10)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: bad subscription entry {dict(data)!r}: {exc}") from exc


@dataclass(frozen=True)
class Profile:
    """What one device is subscribed to (one Subscribe RPC carries every entry)."""

    name: str
    subscriptions: tuple[SubscriptionSpec, ...]
    encoding: str = "proto"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ConfigurationError(f"profile {self.name!r}: encoding {self.encoding!r} is not one of {ENCODINGS}")
        if not self.subscriptions:
            raise ConfigurationError(f"profile {self.name!r} has no subscriptions")

    @property
    def min_interval_s(self) -> float:
        """The fastest SAMPLE interval: the stall detector expects a message at least this often."""
        samples = [s.interval_s for s in self.subscriptions if s.mode == "SAMPLE"]
        return min(samples) if samples else 10.0

    def request(self) -> dict[str, Any]:
        """The ``subscribe=`` dict pygnmi's gNMIclient takes (STREAM mode)."""
        return {
            "mode": "stream",
            "encoding": self.encoding,
            "subscription": [s.to_pygnmi() for s in self.subscriptions],
        }


QOS_IF = "/qos/interfaces/interface[interface-id=*]"
ON_CHANGE = (
    SubscriptionSpec("/interfaces/interface[name=*]/state/oper-status", "ON_CHANGE"),
    SubscriptionSpec("/interfaces/interface[name=*]/state/admin-status", "ON_CHANGE"),
    SubscriptionSpec("/system/state/boot-time", "ON_CHANGE"),
)
FAST = (  # 1 s: what congestion detection needs
    SubscriptionSpec(f"{QOS_IF}/pfc/pfc-priorities/pfc-priority[dot1p=*]/state/statistics", "SAMPLE", 1),
    SubscriptionSpec(f"{QOS_IF}/pfc/pfc-queue/pfc-queue[queue=*]/state/statistics", "SAMPLE", 1),
    SubscriptionSpec(f"{QOS_IF}/output/queues/queue[name=*]/state/ecn-marked-pkts", "SAMPLE", 1),
    SubscriptionSpec(f"{QOS_IF}/output/queues/queue[name=*]/state/dropped-pkts", "SAMPLE", 1),
    SubscriptionSpec("/interfaces/interface[name=*]/state/counters/in-discards", "SAMPLE", 1),
    SubscriptionSpec("/interfaces/interface[name=*]/state/counters/out-discards", "SAMPLE", 1),
)
SLOW = (  # 10 s: everything else
    SubscriptionSpec("/interfaces/interface[name=*]/state/counters", "SAMPLE", 10),
    SubscriptionSpec("/interfaces/interface[name=*]/ethernet/state/counters", "SAMPLE", 10),
    SubscriptionSpec(f"{QOS_IF}/output/queues/queue[name=*]/state", "SAMPLE", 10),
    SubscriptionSpec("/components/component[name=*]/transceiver", "SAMPLE", 10),
    SubscriptionSpec("/components/component[name=*]/state/temperature", "SAMPLE", 10),
    SubscriptionSpec("/system/cpus", "SAMPLE", 10),
    SubscriptionSpec("/system/memory", "SAMPLE", 10),
)
DCI = (  # 1 s: coherent wavelengths (OSNR, Q, ESNR, pre-FEC BER)
    SubscriptionSpec("/terminal-device/logical-channels/channel[index=*]/state", "ON_CHANGE"),
    SubscriptionSpec("/components/component[name=*]/optical-channel/state", "SAMPLE", 1),
    SubscriptionSpec("/terminal-device/logical-channels/channel[index=*]/otn/state", "SAMPLE", 1),
)

# Keyed by (role, platform); "" matches any. The same paths serve EOS and VRP (both answer OpenConfig).
DEFAULT_PROFILES: dict[tuple[str, str], Profile] = {
    ("", ""): Profile("default-switch", ON_CHANGE + FAST + SLOW),
    ("dci", ""): Profile("default-dci", ON_CHANGE + FAST + SLOW + DCI),
}


def _specificity(role: str, platform: str) -> int:
    return (2 if role else 0) + (1 if platform else 0)


def _pick(candidates: Iterable[tuple[str, str, Any]], role: str, platform: str) -> Any | None:
    best, best_rank = None, -1
    for c_role, c_platform, value in candidates:
        if c_role not in ("", role) or c_platform not in ("", platform):
            continue
        rank = _specificity(c_role, c_platform)
        if rank > best_rank:
            best, best_rank = value, rank
    return best


def default_profile(role: str, platform: str) -> Profile:
    """The built-in profile for a role/platform."""
    return _pick(((r, p, prof) for (r, p), prof in DEFAULT_PROFILES.items()), role, platform)


def resolve_profile(role: str, platform: str, rows: Iterable[Any] | None = None) -> Profile:
    """The profile for a device: the most specific enabled SubscriptionProfile row, else the built-in default.

    ``rows`` are SubscriptionProfile instances (passed in so a collector loads them once for all its devices).
    """
    if rows is None:
        from fabric_ops.telemetry.models import SubscriptionProfile

        rows = list(SubscriptionProfile.objects.filter(enabled=True))
    row = _pick(((r.role, r.platform, r) for r in rows if r.enabled), role, platform)
    if row is None:
        return default_profile(role, platform)
    return row.to_profile()
