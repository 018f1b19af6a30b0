"""The demo's scripted fault scenario: a visitor watches detection, remediation, guardrails and alerting act.

Faults go into the running lab through its control channel, exactly as an
operator's chaos drill would; what the platform does about them is read back
from the incidents it records and the alerts the demo's local receiver gets.
Nothing here touches the platform's own logic.

Each step names the outcome it expects (``mitigated``, or ``needs-human`` for
a guardrail refusal) and a window from its injection; the scenario ends when
every step has met its outcome or missed its window, and says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.errors import FabricOpsError
from fabric_ops.lab.control import LabClient


@dataclass(frozen=True)
class Step:
    name: str
    at_s: float  # earliest start, seconds after the scenario starts
    kind: str  # lab fault kind
    target: str
    duration_s: float
    why: str
    expect: str = "mitigated"  # the incident status that ends the step: "mitigated" or "needs-human"
    incident_kinds: tuple[str, ...] = ()  # detector kinds the incident may carry (it can change kind)
    params: dict[str, Any] = field(default_factory=dict)
    after: str = ""  # inject only once this step has met its outcome
    window_s: float = 150.0  # from injection to the expected outcome


@dataclass(frozen=True)
class IncidentRow:
    id: int
    kind: str
    status: str
    device: str = ""
    interface: str = ""
    span: str = ""
    reason: str = ""
    severity: str = ""

    @property
    def where(self) -> str:
        return self.span or f"{self.device} {self.interface}".strip()


@dataclass
class Outcome:
    step: Step
    fault: dict[str, Any] | None = None
    injected_at: float | None = None  # scenario seconds
    incident: int | None = None
    statuses: list[str] = field(default_factory=list)
    reason: str = ""
    alerts: list[str] = field(default_factory=list)  # "firing:open", "resolved:mitigating", ... as received
    ok: bool = False
    done_at: float | None = None
    problem: str = ""
    severity: str = ""
    before: set[int] = field(default_factory=set)  # incidents already seen when the fault went in

    @property
    def finished(self) -> bool:
        return self.ok or bool(self.problem)


# Targets from inventory/lab.yml. The refusal step waits until the first flap on sjc-leaf1 is drained: draining a
# second uplink would leave the leaf 2 of its 4 uplinks (50 %), below the 75 % guardrail of the link-flap playbook.
FLAP_KINDS = ("link-flap", "link-down")
DEMO_STEPS = (
    Step(
        "flap",
        10,
        "link-flap",
        "sjc-leaf1:Ethernet5/1",
        240,
        "a flapping 400G uplink: expect a drain",
        incident_kinds=FLAP_KINDS,
        params={"period": 4},
    ),
    Step(
        "pfc-storm",
        25,
        "pfc-storm",
        "host:sjc-gpu2:nic3",
        120,
        "a NIC stuck sending pauses: expect the PFC watchdog",
        incident_kinds=("pfc-storm", "lossless-drops", "pfc-pause"),
    ),
    Step(
        "dci-span",
        40,
        "dci-span-degradation",
        "sjc-lax-coastal",
        150,
        "OSNR falls 3.5 dB on one fibre route (Q under 7 dB, not yet dark): one span incident, its wavelengths "
        "moved to the other route",
        incident_kinds=("dci-degradation",),
        params={"osnr_drop_db": 3.5},
    ),
    Step(
        "refusal",
        55,
        "link-flap",
        "sjc-leaf1:Ethernet6/1",
        120,
        "a second flapping uplink on sjc-leaf1 while the first is drained: the guardrail must refuse",
        expect="needs-human",
        incident_kinds=FLAP_KINDS,
        params={"period": 4},
        after="flap",
    ),
)


def demo_jobs(hosts_by_site: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The demo's GPU traffic: realistic for a two-city training setup, and congested nowhere while healthy.

    Each city trains on its own hosts (a ring all-reduce that stays on each rail's leaf, 40 % of NIC line rate,
    plus 5 % of cross-rail all-to-all that crosses the spines), and a geo-distributed job synchronises between
    the cities at 5 % (the DCI wavelengths run ~20 % full; ~40 % when one fibre route is drained). Leaf uplinks
    average ~10 % (~13 % with one uplink drained), below the ECMP-imbalance floor; no port comes near the
    ECN threshold (~90 % utilisation with the pushed RoCE profile). The lab's default (one ring over every host,
    alternating cities, 50 %) offers the DCI twice its capacity: ECN marks on every DCI and spine port.
    """
    jobs: list[dict[str, Any]] = []
    for site, hosts in sorted(hosts_by_site.items()):
        if len(hosts) < 2:
            continue
        jobs.append({"name": f"{site}-train", "hosts": sorted(hosts), "load": 0.4, "pattern": "ring"})
        jobs.append(
            {"name": f"{site}-moe", "hosts": sorted(hosts), "load": 0.05, "pattern": "all-to-all", "cross_rail": True}
        )
    every = sorted(h for hosts in hosts_by_site.values() for h in hosts)
    if len(hosts_by_site) > 1 and len(every) > 1:
        jobs.append({"name": "geo-sync", "hosts": every, "load": 0.05, "pattern": "ring"})
    return jobs


def _matches(step: Step, fault: dict[str, Any] | None, row: IncidentRow) -> bool:
    if row.kind not in step.incident_kinds:
        return False
    if step.kind == "dci-span-degradation":
        return row.span == step.target
    ports = set((fault or {}).get("ports") or [])
    return f"{row.device}:{row.interface}" in ports


def run_scenario(
    client: LabClient,
    incidents: Callable[[], Iterable[IncidentRow]],
    say: Callable[[str], None],
    *,
    steps: tuple[Step, ...] = DEMO_STEPS,
    alerts: Callable[[int], list[str]] | None = None,
    watch_s: float = 600.0,
    poll_s: float = 2.0,
    pace: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[Outcome]:
    """Inject ``steps``, narrate every incident change and each step's outcome; return the outcomes.

    ``alerts(incident_id)`` (optional) lists the alerts the local receiver got for an incident as
    ``"<alert status>:<incident status>"``: a step then also needs its alerts — one firing and one resolved for a
    mitigated incident, ``firing:needs-human`` for a refusal. ``pace`` scales the steps' start times (tests run
    the scenario sooner). The scenario returns when every step has finished or ``watch_s`` has passed.
    """
    started = clock()
    outcomes = {s.name: Outcome(s) for s in steps}
    seen: dict[int, str] = {}  # incident -> status at the last poll
    told: dict[int, str] = {}  # incident -> status last narrated
    claimed: set[int] = set()
    brief, brief_seen, brief_told_at = 0, set(), 0.0
    pending = list(steps)

    def elapsed() -> float:
        return clock() - started

    def tell(message: str) -> None:
        say(f"scenario +{elapsed():.0f}s: {message}")

    while elapsed() < watch_s:
        for step in list(pending):
            if step.at_s * pace > elapsed() or (step.after and not outcomes[step.after].ok):
                if step.after and outcomes[step.after].problem:
                    pending.remove(step)
                    outcomes[step.name].problem = f"not injected: step {step.after!r} did not succeed"
                    tell(f"{step.name}: {outcomes[step.name].problem}")
                continue
            pending.remove(step)
            out = outcomes[step.name]
            what = f"{step.kind} on {step.target} for {step.duration_s:g} s"
            try:
                out.fault = client.inject(step.kind, step.target, duration=step.duration_s, **step.params)
            except FabricOpsError as exc:  # one refused step must not end the demo
                out.problem = f"could not inject {what}: {exc}"
                tell(f"{step.name}: {out.problem}")
                continue
            out.injected_at = elapsed()
            out.before = set(seen)
            tell(f"{step.name}: injected {what} ({step.why}) [{out.fault['id']}]")
        rows = list(incidents())
        others: list[str] = []
        for row in rows:
            owner = next((o for o in outcomes.values() if o.incident == row.id), None)
            if owner is None and row.status != "resolved" and row.id not in claimed:
                # A step's incident: opened after its injection, of its kinds, where it injected (an incident can
                # change kind or be re-keyed into a span incident after it was first seen).
                owner = next(
                    (
                        o
                        for o in outcomes.values()
                        if o.incident is None and o.fault and row.id not in o.before and _matches(o.step, o.fault, row)
                    ),
                    None,
                )
                if owner is not None:
                    owner.incident = row.id
                    claimed.add(row.id)
            previous, seen[row.id] = seen.get(row.id), row.status
            if told.get(row.id) == row.status:
                continue
            if owner is not None:
                told[row.id] = row.status
                reason = f": {row.reason}" if row.reason and row.status in ("needs-human", "failed") else ""
                tell(f"incident {row.id} {row.kind} on {row.where}: {row.status} [{owner.step.name}]{reason}")
                owner.statuses.append(row.status)
                owner.reason, owner.severity = row.reason, row.severity
                continue
            if row.id not in told:
                if row.status == "resolved":  # opened and resolved (folded into a root cause) between two polls
                    if row.id not in brief_seen:
                        brief_seen.add(row.id)
                        brief += 1
                    continue
                if row.status == "open" and previous != "open":  # tell it once it lasts (or moves on)
                    continue
            told[row.id] = row.status
            others.append(f"{row.id} {row.kind} on {row.where} {row.status}")
        if others:
            tell(f"other incidents (not injected by the scenario): {', '.join(others)}")
        if brief and elapsed() - brief_told_at >= 30:
            tell(f"{brief} short-lived incident(s) opened and folded into their root cause within seconds")
            brief, brief_told_at = 0, elapsed()
        for out in outcomes.values():
            if out.finished or out.injected_at is None:
                continue
            if out.incident is not None:
                out.alerts = alerts(out.incident) if alerts else []
            status = seen.get(out.incident) if out.incident is not None else None
            if status == out.step.expect and _alerts_ok(out, alerts is not None):
                out.ok, out.done_at = True, elapsed()
                took = out.done_at - out.injected_at
                note = f"; alerts received: {', '.join(out.alerts)}" if alerts else ""
                if alerts and out.severity == "critical" and out.step.expect == "mitigated":
                    note += " (critical: its page stays open until the incident resolves)"
                tell(f"{out.step.name}: {status} {took:.0f} s after injection{note}")
            elif elapsed() - out.injected_at > out.step.window_s:
                last = f"incident {out.incident} is {status}" if out.incident is not None else "no incident"
                alerts_note = f", alerts {out.alerts or 'none'}" if alerts else ""
                what = f"{out.step.expect} with its alerts" if alerts else out.step.expect
                out.problem = f"not {what} within {out.step.window_s:g} s ({last}{alerts_note})"
                tell(f"{out.step.name}: {out.problem}")
        if not pending and all(o.finished for o in outcomes.values()):
            break
        time.sleep(poll_s)
    if brief:
        tell(f"{brief} short-lived incident(s) opened and folded into their root cause within seconds")
    for out in outcomes.values():
        if not out.finished:
            out.problem = f"unfinished after {watch_s:g} s"
    good = sum(o.ok for o in outcomes.values())
    tell(
        f"done: {good}/{len(outcomes)} steps as expected"
        + "".join(f"; {o.step.name}: {o.problem}" for o in outcomes.values() if not o.ok)
        + "; faults still active clear by themselves"
    )
    return list(outcomes.values())


def _alerts_ok(out: Outcome, checking: bool) -> bool:
    """A mitigated incident's alert fired and resolved; a refusal's fired with its status. A critical incident
    (a PFC storm) keeps paging while mitigated — the shipped ``incident-critical`` rule covers every active
    status — and resolves only with the incident: its firing alert is enough here."""
    if not checking:
        return True
    fired = any(a.startswith("firing") for a in out.alerts)
    if out.step.expect == "mitigated":
        return fired and (out.severity == "critical" or any(a.startswith("resolved") for a in out.alerts))
    return f"firing:{out.step.expect}" in out.alerts
