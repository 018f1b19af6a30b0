"""The demo's scripted fault scenario: a visitor watches detection, remediation and guardrails act.

Faults go into the running lab through its control channel, exactly as an
operator's chaos drill would; what the platform does about them is read back
from the incidents it records. Nothing here touches the platform's own logic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.errors import FabricOpsError
from fabric_ops.lab.control import LabClient


@dataclass(frozen=True)
class Step:
    at_s: float  # seconds after the scenario starts
    kind: str
    target: str
    duration_s: float
    why: str
    params: dict[str, Any] = field(default_factory=dict)


# Targets from inventory/lab.yml. The second fault on sjc-leaf1 comes while its first uplink is drained:
# draining another would leave the leaf at 50 % of its uplinks, below the 75 % guardrail.
DEMO_STEPS = (
    Step(10, "link-flap", "sjc-leaf1:Ethernet5/1", 150, "a flapping 400G uplink: expect a drain", {"period": 4}),
    Step(40, "pfc-storm", "host:sjc-gpu2:nic3", 90, "a NIC stuck sending pauses: expect the PFC watchdog"),
    Step(70, "dci-span-degradation", "sjc-lax-coastal", 120, "OSNR falls on a fibre route: one incident, not four"),
    Step(100, "link-down", "sjc-leaf1:Ethernet6/1", 90, "a second fault on sjc-leaf1: the guardrail must refuse"),
)


def run_scenario(
    client: LabClient,
    incidents: Callable[[], list[tuple[int, str, str, str]]],
    say: Callable[[str], None],
    *,
    steps: tuple[Step, ...] = DEMO_STEPS,
    watch_s: float = 240.0,
    poll_s: float = 5.0,
) -> None:
    """Inject ``steps`` on schedule and report every incident state change until ``watch_s`` has passed."""
    started = time.monotonic()
    pending = list(steps)
    seen: dict[int, str] = {}
    while time.monotonic() - started < watch_s:
        elapsed = time.monotonic() - started
        while pending and pending[0].at_s <= elapsed:
            step = pending.pop(0)
            what = f"{step.kind} on {step.target} for {step.duration_s:g} s"
            try:
                record = client.inject(step.kind, step.target, duration=step.duration_s, **step.params)
            except FabricOpsError as exc:  # one refused step must not end the demo
                say(f"scenario: could not inject {what}: {exc}")
                continue
            say(f"scenario: injected {what} ({step.why}) [{record['id']}]")
        for number, kind, status, where in incidents():
            if seen.get(number) != status:
                seen[number] = status
                say(f"scenario: incident {number} {kind} on {where}: {status}")
        time.sleep(poll_s)
    say(f"scenario: done ({len(seen)} incident(s)); faults still active clear by themselves")
