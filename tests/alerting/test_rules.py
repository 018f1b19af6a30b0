"""Telemetry rules over latest values (the collector's Redis hash shape): pure evaluation as a table, and the
for-duration / resolve cycle under a controlled clock."""

from __future__ import annotations

import pytest

from fabric_ops.alerting.models import Alert, AlertRule, RuleState
from fabric_ops.alerting.rules import evaluate, evaluate_telemetry_rules, parse_series

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


def optics(power: float, port: str = "Et1") -> dict:
    return {f"optics|interface={port}": {"ts": 1, "fields": {"input_power_dbm": power, "temperature_c": 40.0}}}


def test_parse_series() -> None:
    assert parse_series("queue|interface=Et1,queue=3") == ("queue", {"interface": "Et1", "queue": "3"})
    assert parse_series("system|") == ("system", {})


@pytest.mark.parametrize(
    ("latest", "hits"),
    [
        (optics(-20.0), [("Et1", -20.0)]),
        (optics(-14.0), []),  # "<" is strict
        (optics(-3.0), []),
        ({**optics(-20.0), **optics(-21.0, "Et2")}, [("Et1", -20.0), ("Et2", -21.0)]),
        ({"optics|interface=Et1": {"fields": {"input_power_dbm": None}}}, []),
        ({"interface|interface=Et1": {"fields": {"input_power_dbm": -30.0}}}, []),  # other measurement
    ],
)
def test_evaluate_table(latest, hits) -> None:
    rule = AlertRule.objects.get(name="optic-rx-power-low")
    found = evaluate(rule, "leaf1", latest)
    assert [(labels["interface"], value) for labels, value in found] == hits
    for labels, _ in found:
        assert labels["alertname"] == "OpticRxPowerLow" and labels["device"] == "leaf1"
        assert labels["severity"] == "major"


def test_for_duration_then_resolve(root_route, outbox, manual_clock) -> None:
    AlertRule.objects.exclude(name="optic-rx-power-low").update(enabled=False)
    values = {"leaf1": optics(-20.0), "leaf2": optics(-2.0)}

    def run() -> int:
        return evaluate_telemetry_rules(devices=values, latest=values.__getitem__)

    assert run() == 0 and RuleState.objects.count() == 1, "pending, not yet 60 s"
    manual_clock.advance(59)
    assert run() == 0
    manual_clock.advance(1)
    assert run() == 1
    alert = Alert.objects.get()
    assert alert.labels["device"] == "leaf1" and alert.status == "firing"
    assert "input_power_dbm = -20" in alert.annotations["summary"]
    manual_clock.advance(10)
    run()
    assert Alert.objects.get().received_count == 2, "the same alert, deduplicated"
    values["leaf1"] = optics(-5.0)
    run()
    assert Alert.objects.get().status == "resolved" and not RuleState.objects.exists()


def test_cli_fire_silence_groups_and_test_receiver(root_route, http_capture, outbox, manual_clock) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("alerting", "fire", "alertname=LinkDown", "device=leaf1", "--summary", "Et1 down", stdout=out)
    call_command("alerting", "fire", "alertname=LinkDown", "device=leaf1", stdout=out)
    assert "received 2x" in out.getvalue()
    call_command("alerting", "silence", "device=leaf1", "--author", "alice", "--comment", "swap", stdout=out)
    call_command("alerting", "groups", stdout=out)
    assert "firing=1" in out.getvalue()
    call_command("alerting", "test-receiver", "team-webhook", stdout=out)
    assert http_capture.requests[-1].body["commonLabels"]["alertname"] == "FabricOpsTest"
    http_capture.script("/team", (400, {"error": "nope"}))
    with pytest.raises(CommandError, match="not delivered"):
        call_command("alerting", "test-receiver", "team-webhook", stdout=out)
    with pytest.raises(CommandError, match="matcher"):
        call_command("alerting", "silence", "bad matcher", "--author", "a", "--comment", "c", stdout=out)
    call_command("alerting", "resolve", "alertname=LinkDown", "device=leaf1", stdout=out)
    assert "resolved" in out.getvalue()


ET2_RX = (
    "/components/component[name=Et2-transceiver]/transceiver/physical-channels/channel[index=*]"
    "/state/input-power/instant"
)
ETH11 = "/interfaces/interface[name=Ethernet1/1]/state/oper-status"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/interfaces/interface[name=*]/state/counters/in-fcs-errors", ("interface", "in_fcs_errors_ps", ())),
        (ETH11, ("interface", "oper_up", ("interface=Ethernet1/1",))),  # a "/" inside the key value
        (ET2_RX, ("optics", "input_power_dbm", ("interface=Et2",))),
        ("/openconfig-system:system/state/hostname", None),  # not a leaf the collector stores
        ("/interfaces/interface/state/counters/in-octets", None),  # list keys are required
    ],
)
def test_gnmi_paths_resolve_through_the_collector_normaliser(path, expected) -> None:
    from fabric_ops.alerting.rules import resolve_path
    from fabric_ops.errors import ConfigurationError

    if expected is None:
        with pytest.raises(ConfigurationError, match="not a leaf"):
            resolve_path(path)
    else:
        assert resolve_path(path) == expected


def test_rule_on_a_gnmi_path(db) -> None:
    rule = AlertRule.objects.create(name="et2-rx", source="telemetry", path=ET2_RX, op="<", threshold=-10)
    latest = {
        "optics|interface=Et1,lane=1": {"fields": {"input_power_dbm": -20.0}},
        "optics|interface=Et2,lane=1": {"fields": {"input_power_dbm": -20.0}},
        "optics|interface=Et2,lane=2": {"fields": {"input_power_dbm": -2.0}},
    }
    found = evaluate(rule, "leaf1", latest)
    assert [(labels["interface"], labels["lane"]) for labels, _ in found] == [("Et2", "1")]


def test_a_bad_rule_does_not_stop_the_others(root_route, outbox, manual_clock) -> None:
    AlertRule.objects.exclude(name="optic-rx-power-low").update(enabled=False)
    AlertRule.objects.filter(name="optic-rx-power-low").update(for_s=0)
    AlertRule.objects.create(name="broken", source="telemetry", path="/system/state/hostname", op=">", threshold=1)
    values = {"leaf1": optics(-20.0)}
    assert evaluate_telemetry_rules(devices=values, latest=values.__getitem__) == 1


# -- optic-rx-power-low pages only for a port that is up and in service ----------------------------------------------
def _port(power: float, port: str, *, oper: bool | None = True, admin: bool | None = True) -> dict:
    values = optics(power, port)
    fields = {k: v for k, v in (("oper_up", oper), ("admin_up", admin)) if v is not None}
    if fields:
        values[f"interface|interface={port}"] = {"ts": 1, "fields": {**fields, "in_bps": 1e9}}
    return values


def test_shipped_rx_power_rule_requires_the_port_up_and_in_service() -> None:
    rule = AlertRule.objects.get(name="optic-rx-power-low")
    assert "link_state!~drained|down|planned" in rule.tag_matchers, "the shipped condition (migration 0004)"
    latest = {
        **_port(-20.0, "Et1"),  # a real fault: up, low power
        **_port(-40.0, "Et2", oper=False),  # the peer's laser is off
        **_port(-40.0, "Et3", oper=False, admin=False),  # shut
        **_port(-20.0, "Et4", oper=None, admin=None),  # no interface series: unknown state still pages
    }
    found = evaluate(rule, "leaf1", latest)
    assert [labels["interface"] for labels, _ in found] == ["Et1", "Et4"]
    assert not any(name in labels for labels, _ in found for name in ("port_oper_up", "link_state")), (
        "context labels are for matching only"
    )


def test_rx_power_rule_reads_drain_and_cost_out_from_the_database(root_route, outbox, manual_clock) -> None:
    from fabric_ops.config.models import IntentAssignment
    from fabric_ops.topology.models import Link
    from tests.topology.factories import two_tier

    AlertRule.objects.exclude(name="optic-rx-power-low").update(enabled=False)
    AlertRule.objects.filter(name="optic-rx-power-low").update(for_s=0)
    built = two_tier("rx")
    drained = built.links["rx-leaf1-rx-spine1"]
    healthy = built.links["rx-leaf1-rx-spine2"]
    costed = built.links["rx-leaf2-rx-spine1"]
    Link.objects.filter(pk=drained.pk).update(state="drained")
    IntentAssignment.objects.create(
        fabric=built.fabric, device=built.devices["rx-leaf2"], overrides={"bgp_cost_out": [costed.a_interface.name]}
    )
    # Telemetry alone cannot tell: every port reports up (a drain's push may not have landed yet).
    values = {
        "rx-leaf1": {**_port(-40.0, drained.a_interface.name), **_port(-20.0, healthy.a_interface.name)},
        "rx-leaf2": _port(-20.0, costed.a_interface.name),
    }
    assert evaluate_telemetry_rules(devices=values, latest=values.__getitem__) == 1
    alert = Alert.objects.get()
    assert (alert.labels["device"], alert.labels["interface"]) == ("rx-leaf1", healthy.a_interface.name)
    assert alert.status == "firing"
    # the healthy link is drained in turn: its alert resolves at the next evaluation
    Link.objects.filter(pk=healthy.pk).update(state="drained")
    manual_clock.advance(10)
    assert evaluate_telemetry_rules(devices=values, latest=values.__getitem__) == 0
    alert.refresh_from_db()
    assert alert.status == "resolved"
