"""One incident, one alert per incident rule, whatever happens to its labels during its life (docs/alerting.md).

The labels of an incident's alert change while it lives (link-down becomes link-flap, a channel incident is
re-keyed into a span incident, a needs-human rule adds ``page=true``); on-call must never see two firing alerts
for one incident and rule, and an alert whose rule stops matching resolves. Real webhook receiver on loopback,
Celery task functions under a controlled clock.
"""

from __future__ import annotations

import pytest

from fabric_ops.alerting.models import Alert, AlertGroup, AlertRule
from fabric_ops.health.models import Incident

from .conftest import pump

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


@pytest.fixture
def announce(db) -> AlertRule:
    """Like the demo's rule: announce incidents automation is working on (no labels of its own)."""
    return AlertRule.objects.create(name="announce", source="incident", incident_statuses=["open", "mitigating"])


def _save(incident: Incident, capture, **fields) -> Incident:
    for name, value in fields.items():
        setattr(incident, name, value)
    with capture(execute=True):
        incident.save()
    return incident


def _open(capture, **fields) -> Incident:
    defaults = {"kind": "link-down", "root_key": "link:1", "status": "open", "severity": "major", "summary": "s",
                "scope_kind": "link", "fabric": "f", "device": "leaf1", "interface": "Et1"}  # fmt: skip
    with capture(execute=True):
        return Incident.objects.create(**{**defaults, **fields})


def _firing(incident: Incident) -> list[Alert]:
    return list(Alert.objects.filter(source=f"incident:{incident.pk}", status="firing"))


def _alerts(requests) -> list[tuple[str, str, str]]:
    """(notification status, alert status, alertname) of every alert in every captured notification."""
    return [(r.body["status"], a["status"], a["labels"]["alertname"]) for r in requests for a in r.body["alerts"]]


def test_kind_change_updates_the_alert_in_place_and_moves_its_group(
    root_route, announce, http_capture, outbox, manual_clock, django_capture_on_commit_callbacks
) -> None:
    capture = django_capture_on_commit_callbacks
    incident = _open(capture)
    manual_clock.advance(30)
    pump(manual_clock)
    [alert] = _firing(incident)
    assert _alerts(http_capture.requests) == [("firing", "firing", "LinkDown")]

    _save(incident, capture, kind="link-flap")
    [again] = _firing(incident)
    assert again.pk == alert.pk, "the same alert, updated in place"
    assert again.labels["alertname"] == "LinkFlap" and again.labels["kind"] == "link-flap"
    assert again.fingerprint == alert.fingerprint
    _save(incident, capture, summary="still flapping")  # a re-sync with the same labels changes nothing
    assert len(_firing(incident)) == 1

    manual_clock.advance(300)
    pump(manual_clock)
    # group_by alertname: the LinkDown group closes with its alert resolved, the LinkFlap group pages it.
    assert sorted(_alerts(http_capture.requests[1:])) == [
        ("firing", "firing", "LinkFlap"),
        ("resolved", "resolved", "LinkDown"),
    ]
    assert AlertGroup.objects.exclude(state="closed").count() == 1
    assert [a["fingerprint"] for a in http_capture.requests[-1].body["alerts"]] == [alert.fingerprint]

    _save(incident, capture, status="resolved")
    manual_clock.advance(300)
    pump(manual_clock)
    assert _alerts(http_capture.requests[3:]) == [("resolved", "resolved", "LinkFlap")]
    assert not _firing(incident) and not AlertGroup.objects.exclude(state="closed").exists()


def test_label_change_inside_one_group_is_announced_again(
    root_route, announce, http_capture, outbox, manual_clock, django_capture_on_commit_callbacks
) -> None:
    root_route.group_by = ["incident"]  # the demo's route: one stream per incident
    root_route.save()
    capture = django_capture_on_commit_callbacks
    incident = _open(capture)
    manual_clock.advance(30)
    pump(manual_clock)
    _save(incident, capture, kind="link-flap")
    manual_clock.advance(300)
    pump(manual_clock)
    assert _alerts(http_capture.requests) == [("firing", "firing", "LinkDown"), ("firing", "firing", "LinkFlap")]
    assert Alert.objects.count() == 1 and AlertGroup.objects.count() == 1
    manual_clock.advance(300)
    pump(manual_clock)
    assert len(http_capture.requests) == 2, "announced once, then unchanged until repeat_interval"


def test_needs_human_adds_page_to_the_same_alert_and_reaches_the_paging_route(
    root_route, announce, http_capture, outbox, manual_clock, django_capture_on_commit_callbacks
) -> None:
    from fabric_ops.alerting.models import Receiver, Route

    pager = Receiver.objects.create(name="pager", kind="webhook", url=f"{http_capture.url}/pager")
    Route.objects.create(name="paging", parent=root_route, matchers=["page=true"], receiver=pager,
                         group_by=["incident"])  # fmt: skip
    capture = django_capture_on_commit_callbacks
    incident = _open(capture)
    manual_clock.advance(30)
    pump(manual_clock)
    [first] = _firing(incident)
    assert "page" not in first.labels and first.annotations["rules"] == "announce"
    assert _alerts(http_capture.to("/team")) == [("firing", "firing", "LinkDown")] and not http_capture.to("/pager")

    _save(incident, capture, status="needs-human", reason="guardrail: last uplink")
    [paged] = _firing(incident)
    assert paged.pk == first.pk and paged.labels["page"] == "true", "page=true added in place, not a second alert"
    assert paged.annotations["rules"] == "incident-needs-human" and paged.annotations["status"] == "needs-human"
    manual_clock.advance(300)
    pump(manual_clock)
    assert _alerts(http_capture.to("/pager")) == [("firing", "firing", "LinkDown")]
    assert [a["labels"]["page"] for a in http_capture.to("/pager")[0].body["alerts"]] == ["true"]
    # A matching child route takes the alert from its parent (Alertmanager): the root's group, which had
    # notified it, closes it instead of leaving it open next to the page.
    assert _alerts(http_capture.to("/team")) == [("firing", "firing", "LinkDown"), ("resolved", "resolved", "LinkDown")]
    assert [a.labels.get("page") for a in Alert.objects.filter(status="resolved")] == [None], "the copy as notified"
    assert list(Alert.objects.filter(status="firing")) == [paged]

    _save(incident, capture, status="resolved")
    manual_clock.advance(300)
    pump(manual_clock)
    assert _alerts(http_capture.to("/pager")[1:]) == [("resolved", "resolved", "LinkDown")]
    assert len(http_capture.to("/team")) == 2


def test_rules_that_start_and_stop_matching_change_labels_not_identity(
    root_route, django_capture_on_commit_callbacks
) -> None:
    AlertRule.objects.create(name="every-incident", source="incident", labels={"team": "net"})
    capture = django_capture_on_commit_callbacks
    incident = _open(capture)
    [alert] = _firing(incident)
    assert alert.labels["team"] == "net" and "page" not in alert.labels
    _save(incident, capture, status="needs-human", severity="critical")  # needs-human and critical match too
    [again] = _firing(incident)
    assert again.pk == alert.pk and again.labels["page"] == "true" and again.labels["severity"] == "critical"
    assert again.annotations["rules"] == "every-incident,incident-critical,incident-needs-human"
    _save(incident, capture, status="open", severity="major")  # back under automation: only the generic rule
    [back] = _firing(incident)
    assert back.pk == alert.pk and "page" not in back.labels and back.labels["severity"] == "major"
    AlertRule.objects.filter(name="every-incident").update(enabled=False)
    _save(incident, capture, summary="no rule matches any more")
    assert not _firing(incident)
    assert Alert.objects.filter(source=f"incident:{incident.pk}").count() == 1, "never a second alert"


def test_an_alert_from_before_per_incident_identity_resolves(root_route, django_capture_on_commit_callbacks) -> None:
    from fabric_ops.alerting.ingest import raise_alert

    capture = django_capture_on_commit_callbacks
    incident = _open(capture, status="needs-human")
    [current] = _firing(incident)
    Alert.objects.filter(pk=current.pk).update(status="resolved")
    legacy = raise_alert({**current.labels, "legacy": "1"}, source=f"incident:{incident.pk}")  # label fingerprint
    _save(incident, capture, summary="next sync")
    legacy.refresh_from_db()
    assert legacy.status == "resolved" and [a.fingerprint for a in _firing(incident)] == [current.fingerprint]


def test_channel_incident_rekeyed_into_a_span_keeps_its_alert(
    root_route, announce, http_capture, outbox, manual_clock, django_capture_on_commit_callbacks
) -> None:
    root_route.group_by = ["incident"]
    root_route.save()
    capture = django_capture_on_commit_callbacks
    incident = _open(capture, kind="dci-degradation", root_key="channel:ch1", scope_kind="channel", channel="ch1",
                     device="", interface="")  # fmt: skip
    manual_clock.advance(30)
    pump(manual_clock)
    [alert] = _firing(incident)
    # what health's _fold_channels_into_span does to the oldest member
    _save(incident, capture, root_key="span:north", scope_kind="span", span="north", channel="")
    [folded] = _firing(incident)
    assert folded.pk == alert.pk and folded.labels["span"] == "north" and "channel" not in folded.labels
    manual_clock.advance(300)
    pump(manual_clock)
    assert [[(a["status"], a["labels"].get("scope")) for a in r.body["alerts"]] for r in http_capture.requests] == [
        [("firing", "channel")],
        [("firing", "span")],
    ]
