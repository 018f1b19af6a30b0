"""The route tree: first match wins, continue_matching, deepest match, inheritance of receiver and timings."""

from __future__ import annotations

import pytest

from fabric_ops.alerting import engine
from fabric_ops.alerting.ingest import raise_alert
from fabric_ops.alerting.models import EscalationPolicy, EscalationStep, Receiver, Route
from fabric_ops.alerting.routing import RouteTree

from .conftest import pump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(30)]


@pytest.fixture
def tree(db) -> dict[str, Route]:
    Route.objects.all().delete()
    rx = {n: Receiver.objects.create(name=n, kind="webhook", url=f"http://127.21.0.1:9/{n}") for n in "abcd"}
    root = Route.objects.create(name="root", receiver=rx["a"], group_by=["alertname"], group_wait_s=10)
    crit = Route.objects.create(name="crit", parent=root, order=1, matchers=["severity=critical"], receiver=rx["b"],
                                continue_matching=True, group_wait_s=0)  # fmt: skip
    Route.objects.create(name="optical", parent=crit, matchers=["team=optical"], receiver=rx["d"])
    sjc = Route.objects.create(name="sjc", parent=root, order=2, matchers=["site=sjc"], receiver=rx["c"],
                               group_by=["alertname", "device"])  # fmt: skip
    Route.objects.create(name="sjc-quiet", parent=root, order=3, matchers=["site=sjc"])  # never reached: sjc wins
    return {r.name: r for r in Route.objects.all()} | {"_sjc": sjc}


@pytest.mark.parametrize(
    ("labels", "routes"),
    [
        ({"alertname": "X"}, ["root"]),
        ({"alertname": "X", "site": "sjc"}, ["sjc"]),
        ({"alertname": "X", "severity": "critical"}, ["crit"]),
        ({"alertname": "X", "severity": "critical", "site": "sjc"}, ["crit", "sjc"]),  # continue
        ({"alertname": "X", "severity": "critical", "team": "optical"}, ["optical"]),  # deepest match
    ],
)
def test_match_table(tree, labels, routes) -> None:
    assert [tree_name(s.route_id) for s in RouteTree.load().match(labels)] == routes


def tree_name(route_id: int) -> str:
    return Route.objects.get(pk=route_id).name


def test_inheritance(tree) -> None:
    settings = RouteTree.load().settings_of(tree["optical"].pk)
    assert settings.receiver_id == Receiver.objects.get(name="d").pk
    assert settings.group_wait_s == 0 and settings.group_by == ("alertname",)  # from crit and root
    assert settings.group_interval_s == 300 and settings.repeat_interval_s == 4 * 3600  # Alertmanager defaults
    sjc = RouteTree.load().settings_of(tree["sjc"].pk)
    assert sjc.group_by == ("alertname", "device") and sjc.group_wait_s == 10


def test_repeating_escalation_policy(root_route, http_capture, outbox, manual_clock) -> None:
    one = Receiver.objects.create(name="one", kind="webhook", url=f"{http_capture.url}/one")
    two = Receiver.objects.create(name="two", kind="webhook", url=f"{http_capture.url}/two")
    policy = EscalationPolicy.objects.create(name="loop", repeat=True)
    EscalationStep.objects.create(policy=policy, order=0, after_s=100, receiver=one)
    EscalationStep.objects.create(policy=policy, order=1, after_s=200, receiver=two)
    root_route.escalation = policy
    root_route.save()
    raise_alert({"alertname": "SpanDown", "span": "north"})
    manual_clock.advance(30)
    pump(manual_clock)

    def step(seconds: float) -> list[str]:
        manual_clock.advance(seconds)
        return [n.receiver.name for n in engine.escalate_due()]

    assert step(199) == [] and step(1) == ["two"], "two after step 1's 200 s"
    assert step(99) == [] and step(1) == ["one"], "repeat: back to one after step 0's 100 s"
    assert step(199) == [] and step(1) == ["two"]
