"""Self-inflicted incidents: a port FabricOps shut on purpose (a drain, a span's move-dci) going down is expected,
not a new fault. Real database; the detection loop test also uses real Redis (a private key prefix)."""

from __future__ import annotations

import json
import time

import pytest

from fabric_ops.health import incidents
from fabric_ops.health.choices import IncidentStatus, RunStatus
from fabric_ops.health.detect import DetectionLoop
from fabric_ops.health.detectors.base import NS, Finding
from fabric_ops.health.models import ActionRecord, Incident, RemediationRun
from fabric_ops.health.topology import build_index
from fabric_ops.topology.models import Link
from tests.topology.factories import two_sites

T0 = 1_800_000_000 * NS


def ends(link: Link) -> list[tuple[str, str]]:
    return [(link.a_interface.device.hostname, link.a_interface.name),
            (link.b_interface.device.hostname, link.b_interface.name)]  # fmt: skip


def downs(link: Link) -> list[Finding]:
    return [Finding("link-down", device, port, ts=T0) for device, port in ends(link)]


@pytest.mark.django_db
def test_a_drained_link_going_down_opens_nothing_until_it_is_restored():
    b = two_sites()
    link = b.links["dx-a-leaf1-dx-a-spine#1"]
    Link.objects.filter(pk=link.pk).update(state="drained")
    idx = build_index()
    held: list[Finding] = []
    assert incidents.record(downs(link), idx, suppressed=held) == []
    assert Incident.objects.count() == 0
    assert sorted(f.key for f in held) == sorted(f.key for f in downs(link))
    # another link's port going down is a fault as before
    other = b.links["dx-a-leaf1-dx-a-spine#2"]
    ((incident, new),) = incidents.record(downs(other)[:1], idx)
    assert new and incident.root_key == f"link:{other.pk}"
    # restored (no longer drained) and still down: it alarms normally
    Link.objects.filter(pk=link.pk).update(state="up")
    ((incident, new),) = incidents.record(downs(link), idx, suppressed=held)
    assert new and incident.root_key == f"link:{link.pk}" and incident.alarms.count() == 2


@pytest.mark.django_db
def test_the_dci_links_a_span_remediation_holds_are_expected_down():
    """move-dci drained the span's DCI links: the run's undo holds them even where Link.state says up (a person
    edited it, or the reservation is being re-read), as long as the run is in force and not restored."""
    b = two_sites()
    span_incident = Incident.objects.create(kind="dci-degradation", root_key="span:dx-north", scope_kind="span",
                                            span="dx-north", summary="span")  # fmt: skip
    dci = [b.links["dx-a-dci-dx-b-dci#1"], b.links["dx-a-dci-dx-b-dci#2"]]
    run = RemediationRun.objects.create(incident=span_incident, playbook="dci-degradation", status=RunStatus.SUCCEEDED,
                                        idempotency_key="incident-x:dci:0", target_key="span:dx-north")  # fmt: skip
    ActionRecord.objects.create(run=run, sequence=1, action="move-dci", target="span:dx-north", status="done",
                                params={"undo": {"links": [dci[0].pk], "state": "up"}})  # fmt: skip
    idx = build_index()
    held: list[Finding] = []
    assert incidents.record(downs(dci[0]), idx, suppressed=held) == []
    assert len(held) == 2 and Incident.objects.count() == 1
    assert incidents.all_clear_since(span_incident) is None  # nothing attached to it: its alarms stay its own
    # a DCI link the run does not hold is a fault
    ((incident, new),) = incidents.record(downs(dci[1])[:1], idx)
    assert new and incident.root_key == f"link:{dci[1].pk}"
    # once the run was restored its undo no longer holds the link
    RemediationRun.objects.filter(pk=run.pk).update(status=RunStatus.RESTORED)
    ((incident, new),) = incidents.record(downs(dci[0]), idx)
    assert new and incident.root_key == f"link:{dci[0].pk}" and incident.status == IncidentStatus.OPEN


@pytest.mark.django_db(transaction=True)
def test_the_loop_holds_back_a_drained_port_and_alarms_once_restored_while_still_down(client, prefix):
    """The state change arrives once; the loop must offer the held-back finding again after the restore."""
    b = two_sites()
    link = b.links["dx-a-leaf1-dx-a-spine#1"]
    Link.objects.filter(pk=link.pk).update(state="drained")
    dispatched: list[int] = []
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: dispatched.append(pk),
                         start_id="0-0", devices=[d for d, _ in ends(link)], scan_interval=60)  # fmt: skip
    now = time.time_ns()
    for device, port in ends(link):
        data = {"measurement": "interface", "tags": {"interface": port}, "field": "oper_up", "old": True, "new": False}
        client.xadd(f"{prefix}:events", {"type": "state", "device": device, "ts": str(now), "data": json.dumps(data)})
    loop.run_once(block_ms=10)
    assert Incident.objects.count() == 0 and dispatched == []
    assert loop.suppressed == {("link-down", d, p) for d, p in ends(link)}
    loop.refresh_s = 0.0
    loop.run_once(block_ms=10)  # still drained: held back again
    assert Incident.objects.count() == 0
    Link.objects.filter(pk=link.pk).update(state="up")  # restored; the ports stay down (no new state change)
    loop.run_once(block_ms=10)
    incident = Incident.objects.get()
    assert incident.root_key == f"link:{link.pk}" and dispatched == [incident.pk]
    assert incident.alarms.count() == 2 and loop.suppressed == set()
    # the checkpoint carries what is held back (a new consumer would otherwise never offer it again)
    Link.objects.filter(pk=link.pk).update(state="drained")
    loop.suppressed = {("link-down", d, p) for d, p in ends(link)}
    assert loop.checkpoint()
    other = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, resume=True,
                          devices=[d for d, _ in ends(link)])  # fmt: skip
    assert other.suppressed == loop.suppressed
