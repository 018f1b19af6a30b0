"""The demo's fault scenario drives a real lab over its control channel and narrates incident changes."""

from fabric_ops.lab.api import Lab
from fabric_ops.lab.control import ControlServer, LabClient
from fabric_ops.lab.scenario import Step, run_scenario
from fabric_ops.lab.synthetic import clos


def test_scenario_injects_on_schedule_and_reports_each_incident_change_once():
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.13.200.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    lines: list[str] = []
    polls = iter([[], [(1, "link-flap", "open", "leaf1 Ethernet3/1")], [(1, "link-flap", "open", "leaf1 Ethernet3/1")]])
    try:
        run_scenario(
            LabClient(control.url, control.token, timeout=5),
            lambda: next(polls, [(1, "link-flap", "mitigated", "leaf1 Ethernet3/1")]),
            lines.append,
            steps=(Step(0, "link-flap", "leaf1:Ethernet3/1", 30, "flap", {"period": 4}),),
            watch_s=0.5,
            poll_s=0.05,
        )
        faults = lab.status()["faults"]
    finally:
        control.stop()
        lab.stop()
    assert [f["kind"] for f in faults] == ["link-flap"] and faults[0]["params"]["period"] == 4
    assert lines[0].startswith("scenario: injected link-flap on leaf1:Ethernet3/1 for 30 s (flap)")
    assert [line for line in lines if "scenario: incident" in line] == [
        "scenario: incident 1 link-flap on leaf1 Ethernet3/1: open",
        "scenario: incident 1 link-flap on leaf1 Ethernet3/1: mitigated",
    ]


def test_a_refused_step_is_reported_and_the_scenario_goes_on():
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.13.201.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    lines: list[str] = []
    try:
        run_scenario(
            LabClient(control.url, control.token, timeout=5),
            list,
            lines.append,
            steps=(
                Step(0, "pfc-storm", "host:nobody:nic9", 30, "bad target"),
                Step(0, "link-down", "leaf1:Ethernet3/1", 30, "good target"),
            ),
            watch_s=0.3,
            poll_s=0.05,
        )
        kinds = [f["kind"] for f in lab.status()["faults"]]
    finally:
        control.stop()
        lab.stop()
    assert lines[0].startswith("scenario: could not inject pfc-storm on host:nobody:nic9") and "nobody" in lines[0]
    assert kinds == ["link-down"]
