"""The demo's fault scenario drives a real lab over its control channel, narrates incident changes, and judges
each step by its incident's status and the alerts the receiver got."""

import json
import urllib.request

from fabric_ops.lab.api import Lab
from fabric_ops.lab.control import ControlServer, LabClient
from fabric_ops.lab.demo_alerts import AlertReceiver
from fabric_ops.lab.scenario import IncidentRow, Step, demo_jobs, run_scenario
from fabric_ops.lab.synthetic import clos, dci_pair

FLAP = Step(
    "flap", 0, "link-flap", "leaf1:Ethernet3/1", 30, "flap", incident_kinds=("link-flap",), params={"period": 4}
)


def _scripted(*polls):
    """An incidents() callable that answers the given polls in turn, then repeats the last one."""
    answers = list(polls)

    def incidents():
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return incidents


def test_scenario_injects_on_schedule_matches_its_incident_and_reports_each_change_once():
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.13.200.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    lines: list[str] = []
    flap = IncidentRow(1, "link-flap", "open", "leaf1", "Ethernet3/1")
    other = IncidentRow(2, "ecn-marking", "open", "spine1", "Ethernet1/1")
    try:
        outcomes = run_scenario(
            LabClient(control.url, control.token, timeout=5),
            _scripted(
                [], [flap, other], [flap, other], [IncidentRow(1, "link-flap", "mitigated", "leaf1", "Ethernet3/1")]
            ),
            lines.append,
            steps=(FLAP,),
            watch_s=5,
            poll_s=0.01,
        )
        faults = lab.status()["faults"]
    finally:
        control.stop()
        lab.stop()
    assert [f["kind"] for f in faults] == ["link-flap"] and faults[0]["params"]["period"] == 4
    assert "flap: injected link-flap on leaf1:Ethernet3/1 for 30 s (flap)" in lines[0]
    changes = [line.split(": ", 1)[1] for line in lines if ": incident " in line or ": other incidents" in line]
    assert changes == [
        "incident 1 link-flap on leaf1 Ethernet3/1: open [flap]",
        "other incidents (not injected by the scenario): 2 ecn-marking on spine1 Ethernet1/1 open",
        "incident 1 link-flap on leaf1 Ethernet3/1: mitigated [flap]",
    ]
    (out,) = outcomes
    assert out.ok and out.incident == 1 and out.statuses == ["open", "mitigated"]
    assert "done: 1/1 steps as expected" in lines[-1]


def test_a_step_needs_its_alerts_and_misses_its_window_without_them():
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.13.202.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    lines: list[str] = []
    step = Step("flap", 0, "link-flap", "leaf1:Ethernet3/1", 30, "flap", incident_kinds=("link-flap",), window_s=0.3)
    refusal = Step(
        "refusal", 0, "link-down", "leaf2:Ethernet3/1", 30, "down", expect="needs-human", incident_kinds=("link-down",)
    )
    got = {1: ["firing:open"], 2: ["firing:open", "firing:needs-human"]}
    try:
        outcomes = run_scenario(
            LabClient(control.url, control.token, timeout=5),
            _scripted(
                [
                    IncidentRow(1, "link-flap", "mitigated", "leaf1", "Ethernet3/1"),
                    IncidentRow(2, "link-down", "needs-human", "leaf2", "Ethernet3/1", reason="would keep 50%"),
                ]
            ),
            lines.append,
            steps=(step, refusal),
            alerts=lambda incident: got.get(incident, []),
            watch_s=5,
            poll_s=0.01,
        )
    finally:
        control.stop()
        lab.stop()
    flap, refused = outcomes
    assert (
        not flap.ok
        and "not mitigated with its alerts within 0.3 s (incident 1 is mitigated, alerts ['firing:open'])"
        in flap.problem
    )
    assert refused.ok and refused.reason == "would keep 50%"
    assert any("incident 2 link-down on leaf2 Ethernet3/1: needs-human [refusal]: would keep 50%" in x for x in lines)
    assert "done: 1/2 steps as expected; flap: not mitigated with its alerts" in lines[-1]


def test_a_refused_injection_is_reported_the_scenario_goes_on_and_a_dependent_step_is_skipped():
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.13.201.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    lines: list[str] = []
    try:
        outcomes = run_scenario(
            LabClient(control.url, control.token, timeout=5),
            list,
            lines.append,
            steps=(
                Step("bad", 0, "pfc-storm", "host:nobody:nic9", 30, "bad target"),
                Step("good", 0, "link-down", "leaf1:Ethernet3/1", 30, "good target", window_s=0.2),
                Step("later", 0, "link-down", "leaf2:Ethernet3/1", 30, "after bad", after="bad"),
            ),
            watch_s=5,
            poll_s=0.01,
        )
        kinds = [f["kind"] for f in lab.status()["faults"]]
    finally:
        control.stop()
        lab.stop()
    assert "bad: could not inject pfc-storm on host:nobody:nic9" in lines[0] and "nobody" in lines[0]
    assert kinds == ["link-down"]
    assert [o.ok for o in outcomes] == [False, False, False]
    assert "not injected: step 'bad' did not succeed" in outcomes[2].problem


def test_demo_traffic_keeps_each_city_busy_and_the_dci_light():
    jobs = demo_jobs({"sjc": ["sjc-gpu2", "sjc-gpu1"], "lax": ["lax-gpu1", "lax-gpu2"], "tiny": ["t1"]})
    by_name = {j["name"]: j for j in jobs}
    assert set(by_name) == {"lax-train", "lax-moe", "sjc-train", "sjc-moe", "geo-sync"}
    assert by_name["sjc-train"]["hosts"] == ["sjc-gpu1", "sjc-gpu2"] and by_name["sjc-moe"]["cross_rail"]
    assert set(by_name["geo-sync"]["hosts"]) == {"sjc-gpu1", "sjc-gpu2", "lax-gpu1", "lax-gpu2", "t1"}
    # a NIC never offers more than its line rate
    for host in ("sjc-gpu1", "lax-gpu2"):
        assert sum(j["load"] for j in jobs if host in j["hosts"]) <= 1.0


def test_alert_receiver_logs_and_narrates_each_alert(tmp_path):
    lines: list[str] = []
    receiver = AlertReceiver(tmp_path / "alerts.log", say=lines.append).start()
    payload = {
        "receiver": "demo-console",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "LinkFlap", "incident": "7", "device": "leaf1", "interface": "Et5/1"},
                "annotations": {"status": "needs-human", "reason": "would keep 50%", "summary": "flapping"},
            }
        ],
    }
    try:
        for _ in range(2):  # a group's next notification lists the same alert again
            request = urllib.request.Request(
                receiver.url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
    finally:
        receiver.stop()
    logged = [json.loads(x) for x in (tmp_path / "alerts.log").read_text().splitlines()]
    assert [(r["alertname"], r["incident"], r["incident_status"]) for r in logged] == [
        ("LinkFlap", "7", "needs-human")
    ] * 2
    assert receiver.for_incident(7) == ["firing:needs-human"] and receiver.for_incident(8) == []
    assert lines == ["alert FIRING LinkFlap on leaf1 Et5/1 (incident 7, needs-human): would keep 50%"]


def test_alert_receiver_tells_alike_alerts_of_one_notification_on_one_line(tmp_path):
    lines: list[str] = []
    receiver = AlertReceiver(tmp_path / "alerts.log", say=lines.append)
    lane = {"status": "resolved", "labels": {"alertname": "OpticRxPowerLow", "device": "dci1", "interface": "Et5/1"}}
    receiver.accept({"alerts": [dict(lane, fingerprint=f"fp{n}") for n in range(4)]})
    receiver.accept({"alerts": [dict(lane, fingerprint="fp0")]})
    assert lines == ["alert RESOLVED OpticRxPowerLow on dci1 Et5/1 x4"]
    assert len((tmp_path / "alerts.log").read_text().splitlines()) == 5


def test_an_incident_rekeyed_into_its_span_is_claimed_and_short_lived_ones_are_counted():
    lab = Lab.start(dci_pair(base_address="127.13.203.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    span = next(iter({s for sw in lab.switches.values() for ch in sw.channels.values() for s in ch.spans}))
    lines: list[str] = []
    step = Step("span", 0, "dci-span-degradation", span, 30, "span", incident_kinds=("dci-degradation",))
    channel = IncidentRow(1, "dci-degradation", "open", "dci1", "", "")  # first seen as one wavelength's
    folded = IncidentRow(2, "dci-degradation", "resolved", "dci1", "", "")
    try:
        outcomes = run_scenario(
            LabClient(control.url, control.token, timeout=5),
            _scripted(
                [],
                [channel, folded],
                [IncidentRow(1, "dci-degradation", "mitigating", span=span), folded],
                [IncidentRow(1, "dci-degradation", "mitigated", span=span), folded],
            ),
            lines.append,
            steps=(step,),
            watch_s=5,
            poll_s=0.01,
        )
    finally:
        control.stop()
        lab.stop()
    (out,) = outcomes
    assert out.ok and out.incident == 1 and out.statuses == ["mitigating", "mitigated"]
    assert any("1 short-lived incident(s) opened and folded" in line for line in lines)
    assert not any("other incidents" in line for line in lines)


def test_a_critical_incident_is_done_when_mitigated_and_paged_its_alert_resolves_only_with_it():
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.13.204.1"), serve=False, thread=False)
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    lines: list[str] = []
    storm = Step("storm", 0, "link-down", "leaf1:Ethernet3/1", 30, "x", incident_kinds=("pfc-storm",))
    try:
        (out,) = run_scenario(
            LabClient(control.url, control.token, timeout=5),
            _scripted([IncidentRow(1, "pfc-storm", "mitigated", "leaf1", "Ethernet3/1", severity="critical")]),
            lines.append,
            steps=(storm,),
            alerts=lambda incident: ["firing:open"],
            watch_s=5,
            poll_s=0.01,
        )
    finally:
        control.stop()
        lab.stop()
    assert out.ok and out.severity == "critical"
    assert any("storm: mitigated" in x and "its page stays open until the incident resolves" in x for x in lines)
