"""Guardrails: pure checks that an action never costs the training jobs more than the fault itself.

Every check takes the :class:`~fabric_ops.topology.graph.results.BlastRadius` of what the action would remove
(computed on the current state, so links drained earlier already count) plus a few counters, and returns a
:class:`Verdict` with every reason it refuses. A refused action leaves its incident in ``needs-human`` with the
reasons. Defaults (settings ``FABRIC_OPS_HEALTH_GUARDRAILS``, a playbook's ``guardrails`` override them):

* ``min_uplink_fraction`` 0.75 — every surviving leaf keeps >= 75 % of its design uplink capacity (with equal-speed
  uplinks this is also 75 % of its ECMP paths). CorrOpt's rule: disable a corrupting link only while every ToR
  keeps enough paths.
* no partition of a fabric, no site split, no isolated GPU host (``max_host_lost_fraction`` 0.5 on any host);
* ``max_drained_per_pod`` 4 — links drained by automation at once in one pod/plane: past that, the faults are
  probably one common cause (a bad batch of optics, a power feed) that needs a human;
* a BGP cost-out counts exactly like a shutdown: the costed-out link's capacity is lost (the remediation passes
  the links already costed out to the blast radius and to the per-pod count, as it does with drained ones);
* ``max_actions_per_window`` 20 per ``window_s`` 600 s fabric-wide — a detector gone mad must not drain the fabric.

An empty or wildcard target is refused outright: "drain nothing" must never become "drain everything".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fabric_ops.topology.graph.results import BlastRadius

WILDCARDS = {"", "*", "all", "any", "none", "null"}


@dataclass(frozen=True)
class Limits:
    min_uplink_fraction: float = 0.75
    max_host_lost_fraction: float = 0.5
    max_drained_per_pod: int = 4
    max_actions_per_window: int = 20
    window_s: float = 600.0

    @classmethod
    def build(cls, *layers: Mapping[str, Any] | None) -> Limits:
        """Defaults, then each layer (settings, then the playbook's ``guardrails``)."""
        known = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for layer in layers:
            for key, value in (layer or {}).items():
                if key in known:
                    values[key] = int(value) if known[key] == "int" else float(value)
        return cls(**values)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reasons: tuple[str, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reasons": list(self.reasons), "figures": dict(self.figures)}


def target_problem(
    links: Iterable[Any] = (), devices: Iterable[Any] = (), spans: Iterable[Any] = (), ports: Iterable[Any] = ()
) -> str | None:
    """Why a target is unacceptable (empty, or a wildcard), or None. ``ports`` are interface names an action
    names on its devices (disable-pfc): an empty or wildcard one is refused too, never read as "every port"."""
    ports = list(ports)
    named = [*links, *devices, *spans, *ports]
    if not named:
        return "the action names no target; an empty target is never read as 'all'"
    bad = [str(n) for n in named if n is None or str(n).strip().lower() in WILDCARDS or "*" in str(n)]
    if bad:
        return f"wildcard target(s) {', '.join(repr(b) for b in bad)} refused: name the objects"
    return None


def check_capacity(br: BlastRadius, limits: Limits) -> list[str]:
    """Leaf uplink capacity, partitions, site splits, isolated hosts, host bandwidth."""
    reasons = []
    if br.min_remaining_uplink_fraction < limits.min_uplink_fraction - 1e-9:
        worst = min((leaf for leaf in br.leaves if not leaf.removed), key=lambda leaf: leaf.remaining_fraction)
        reasons.append(
            f"{worst.hostname} would keep {worst.remaining_fraction:.0%} of its uplink capacity "
            f"({worst.after_gbps:g} of {worst.design_gbps:g} Gbps), below the {limits.min_uplink_fraction:.0%} minimum"
        )
    if br.partitions:
        parts = "; ".join(", ".join(p) for p in br.partitions)
        reasons.append(f"the fabric would partition: {parts} cut off")
    if br.site_partitions:
        splits = "; ".join(" | ".join(",".join(g) for g in split) for split in br.site_partitions)
        reasons.append(f"sites would lose DCI connectivity: {splits}")
    if br.isolated_hosts:
        reasons.append(f"GPU host(s) would be isolated: {', '.join(br.isolated_hosts)}")
    elif br.max_host_lost_fraction > limits.max_host_lost_fraction + 1e-9:
        worst_host = max(br.hosts, key=lambda h: h.lost_fraction)
        reasons.append(
            f"GPU host {worst_host.name} would lose {worst_host.lost_fraction:.0%} of its bandwidth "
            f"(limit {limits.max_host_lost_fraction:.0%})"
        )
    return reasons


def check_drain_caps(drained_by_pod: Mapping[str, int], new_by_pod: Mapping[str, int], limits: Limits) -> list[str]:
    """Links drained by automation per pod/plane, counting the ones this action adds."""
    reasons = []
    for pod, new in sorted(new_by_pod.items()):
        total = drained_by_pod.get(pod, 0) + new
        if total > limits.max_drained_per_pod:
            reasons.append(f"pod {pod} would have {total} drained links, above the cap of {limits.max_drained_per_pod}")
    return reasons


def check_rate(recent_actions: int, limits: Limits) -> list[str]:
    """Fabric-wide rate limit of automatic actions."""
    if recent_actions >= limits.max_actions_per_window:
        return [
            f"{recent_actions} automatic actions in the last {limits.window_s:g} s reached the fabric-wide limit "
            f"of {limits.max_actions_per_window}"
        ]
    return []


def evaluate(
    br: BlastRadius,
    limits: Limits,
    *,
    drained_by_pod: Mapping[str, int] | None = None,
    new_by_pod: Mapping[str, int] | None = None,
    recent_actions: int = 0,
) -> Verdict:
    """Every guardrail at once; allowed only when none refuses. The figures go into the audit record."""
    if br.empty:
        return Verdict(False, ("the action removes nothing that the topology knows; refusing an empty target",))
    reasons = [
        *check_capacity(br, limits),
        *check_drain_caps(drained_by_pod or {}, new_by_pod or {}, limits),
        *check_rate(recent_actions, limits),
    ]
    figures = {
        "limits": asdict(limits),
        "removed_link_ids": list(br.removed_link_ids),
        "min_remaining_uplink_fraction": round(br.min_remaining_uplink_fraction, 4),
        "capacity_lost_gbps": br.capacity_lost_gbps,
        "partitioned": br.partitioned,
        "isolated_hosts": list(br.isolated_hosts),
        "max_host_lost_fraction": round(br.max_host_lost_fraction, 4),
        "recent_actions": recent_actions,
    }
    return Verdict(not reasons, tuple(reasons), figures)
