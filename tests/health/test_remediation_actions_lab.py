"""The BGP cost-out and per-port PFC-off actions against the lab, through the push machinery (NAPALM over eAPI to
the EOS leaves, netmiko/NAPALM over SSH to the CloudEngine spines), and undone by restore.

The traffic is read from the lab's own counters on a manual clock (the physics' ground truth); the playbooks'
telemetry verification is left out here (``verification=None``: it needs the collector, and the closed-loop test
runs it) — everything else is the real path: playbook, guardrails, push jobs with diff, commit-confirm and device
locks, audit records, restore. The lab fabric is inventory/lab.yml on its own loopback block (127.26.0.0/16).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from fabric_ops.config.models import IntentAssignment
from fabric_ops.config.models.jobs import JobStatus
from fabric_ops.config.push import create_job, run_job
from fabric_ops.devices.connection import open_driver
from fabric_ops.health.choices import IncidentStatus, RunStatus
from fabric_ops.health.models import Alarm, Incident, RemediationRun
from fabric_ops.health.playbooks import load_playbooks
from fabric_ops.health.remediation import next_attempt, remediate, restore
from fabric_ops.health.topology import invalidate, load_index
from fabric_ops.lab.api import Lab
from fabric_ops.lab.routing import Job
from fabric_ops.topology.graph import FabricGraph
from fabric_ops.topology.inventory import import_inventory
from fabric_ops.topology.models import Device, Link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab, pytest.mark.timeout(300)]

LAB_INVENTORY = Path(django_settings.INVENTORY_DIR) / "lab.yml"
LEAF, UPLINK = "sjc-leaf1", "Ethernet5/1"  # -> sjc-spine1 400GE1/0/1
SPINE, SPINE_PORT = "sjc-spine1", "400GE1/0/1"
HOST_PORT = "Ethernet1/1"  # a GPU NIC on sjc-leaf1


@pytest.fixture
def lab(settings, tmp_path):
    settings.SECRETS_DIR = tmp_path / "secrets"
    settings.FABRIC_OPS_HEALTH_REVERT_IN = 60
    import_inventory(LAB_INVENTORY)
    for index, device in enumerate(Device.objects.order_by("hostname"), start=1):
        device.mgmt_address = f"127.26.0.{index}"
        device.save(update_fields=["mgmt_address"])
    invalidate()
    FabricGraph.invalidate()
    with Lab.start(["sjc-ai"], manual_clock=True) as running:
        # Rail-optimised: same-rail collectives stay on their leaf; a cross-rail job crosses the spines.
        running.engine.set_jobs([Job("train", load=0.5, cross_rail=True)])
        yield running
    invalidate()
    FabricGraph.invalidate()


def devices(*names: str) -> list[Device]:
    return list(Device.objects.filter(hostname__in=names).select_related("fabric", "site").order_by("hostname"))


def push(*names: str) -> None:
    job = run_job(create_job(devices(*names), requested_by="test", canary_count=len(names)).pk)
    assert job.status == JobStatus.SUCCEEDED, job.summary


def running(hostname: str) -> str:
    with open_driver(devices(hostname)[0]) as driver:
        return driver.get_config(retrieve="running")["running"]


def octets(lab: Lab, hostname: str, ifname: str) -> int:
    iface = lab.switches[hostname].interfaces[ifname]
    return iface.out_octets + iface.in_octets


def carried(lab: Lab, ports: list[tuple[str, str]], seconds: float = 2.0) -> list[float]:
    """Bytes/s each port moved (both directions) over ``seconds`` of lab time."""
    lab.advance(0.4)  # let a re-route settle first
    before = [octets(lab, h, p) for h, p in ports]
    lab.advance(seconds)
    return [(octets(lab, h, p) - b) / seconds for (h, p), b in zip(ports, before, strict=True)]


def playbook(name: str):
    book = next(b for b in load_playbooks() if b.name == name)
    return dataclasses.replace(book, verification=None)  # traffic is checked from the lab's counters below


def test_bgp_cost_out_drains_the_link_without_shutting_it_and_restore_brings_the_traffic_back(lab):
    push(LEAF, SPINE)  # addresses and BGP sessions on both ends (what the lab's routing reads the prepends from)
    uplinks = [(LEAF, f"Ethernet{i}/1") for i in range(5, 9)]
    idle = 400e9 / 8 * 0.002 * 2 * 1.5  # one link's background (BGP, LLDP) both ways, with margin
    before = carried(lab, uplinks)
    assert min(before) > 20 * idle, before  # every uplink carries RoCE
    link = Link.objects.get(a_interface__device__hostname=LEAF, a_interface__name=UPLINK)
    transitions = lab.switches[LEAF].interfaces[UPLINK].carrier_transitions
    incident = Incident.objects.create(kind="pre-fec-ber", root_key=f"link:{link.pk}", scope_kind="link",
                                       link_id=link.pk, device=LEAF, interface=UPLINK,
                                       summary="pre-FEC BER")  # fmt: skip
    Alarm.objects.create(incident=incident, kind="pre-fec-ber", device=LEAF, subject=UPLINK, value=1e-3,
                         threshold=2.4e-4, message="pre-FEC BER 1e-3", evidence={"pre_fec_ber": 1e-3},
                         seen_at=timezone.now())  # fmt: skip

    run = remediate(incident.pk, playbooks=[playbook("pre-fec-ber")], index=load_index(max_age=0))
    assert run.status == RunStatus.SUCCEEDED, run.reason
    assert run.guardrail["allowed"] and run.guardrail["figures"]["min_remaining_uplink_fraction"] == 0.75
    action = run.actions.get(phase="act", action="cost-out-link")
    assert action.push_job.requested_by == "playbook:pre-fec-ber"
    assert set(action.push_job.devices.values_list("status", flat=True)) == {"confirmed"}
    # 10.1.0.0/31: sjc-leaf1 Ethernet5/1 is .0, sjc-spine1 400GE1/0/1 is .1; both ends prepend towards the other
    assert "+   neighbor 10.1.0.1 route-map FABRICOPS-COST-OUT out" in action.diff
    assert "peer 10.1.0.0 route-policy FABRICOPS-COST-OUT export" in action.diff
    assert action.diff.count("route-map FABRICOPS-COST-OUT out") == 1  # that session only
    assert "neighbor 10.1.0.1 route-map FABRICOPS-COST-OUT out" in running(LEAF)
    assert "  peer 10.1.0.0 route-policy FABRICOPS-COST-OUT export" in running(SPINE)
    assert Link.objects.get(pk=link.pk).state == "up"  # drained by BGP, not shut
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.MITIGATED and run.restore_after is not None

    after = carried(lab, uplinks)
    assert lab.switches[LEAF].interfaces[UPLINK].oper_up and lab.switches[SPINE].interfaces[SPINE_PORT].oper_up
    assert lab.switches[LEAF].interfaces[UPLINK].carrier_transitions == transitions  # no flap, no BGP reset
    assert after[0] < idle, after  # only background is left on the costed-out link
    assert sum(after[1:]) == pytest.approx(sum(before), rel=0.1)  # the others took its load

    with pytest.raises(Exception, match="restore needs approval"):
        restore(run.pk)  # pre-fec-ber restores with approval
    restored = restore(run.pk, approved_by="alice")
    assert restored.status == RunStatus.RESTORED, restored.reason
    step = restored.actions.get(phase="restore")
    assert step.action == "restore-cost-out-link" and step.status == "done"
    assert step.push_job.requested_by == "playbook:pre-fec-ber"
    assert "route-map FABRICOPS-COST-OUT out" not in running(LEAF)
    assert "route-policy FABRICOPS-COST-OUT export" not in running(SPINE).replace(" undo peer", "")
    overrides = IntentAssignment.objects.get(device__hostname=LEAF).overrides
    assert "bgp_cost_out" not in overrides
    back = carried(lab, uplinks)
    assert back[0] > 20 * idle and back[0] == pytest.approx(before[0], rel=0.15), (before, back)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_disable_pfc_on_a_storming_port_stops_the_spreading_and_restore_turns_it_back_on(lab):
    # The watchdog did not contain this storm (here: it is off on the leaf), so the pauses spread to the uplinks.
    device = devices(LEAF)[0]
    IntentAssignment.objects.create(fabric=device.fabric, device=device, overrides={"pfc_watchdog": False})
    push(LEAF)
    leaf = lab.switches[LEAF]
    host_port = leaf.interfaces[HOST_PORT]
    uplinks = [leaf.interfaces[f"Ethernet{i}/1"] for i in range(5, 9)]

    def spread() -> int:
        return sum(i.pfc_tx_pause[3] for i in uplinks)

    lab.inject("pfc-storm", f"{LEAF}:{HOST_PORT}", priority=3)
    lab.advance(1.0)
    out, paused = host_port.out_octets, spread()
    lab.advance(1.0)
    assert host_port.out_octets - out < 0.01 * 400e9 / 8  # stormed: the leaf honours the NIC's pauses
    assert spread() > paused  # and pauses its uplinks in turn
    incident = Incident.objects.create(kind="pfc-storm", root_key=f"port:{LEAF}:{HOST_PORT}", scope_kind="interface",
                                       device=LEAF, interface=HOST_PORT, summary="PFC storm")  # fmt: skip

    # The first step (pfc-storm: the watchdog) acted and its verification failed; re-evaluation retries.
    books = [playbook("pfc-storm"), playbook("pfc-storm-persistent")]
    key = f"incident-{incident.pk}:pfc-storm:0"
    RemediationRun.objects.create(incident=incident, playbook="pfc-storm", idempotency_key=key,
                                  target_key=f"device:{LEAF}", status=RunStatus.FAILED)  # fmt: skip
    Incident.objects.filter(pk=incident.pk).update(status=IncidentStatus.FAILED)
    again = remediate(incident.pk, playbooks=books, index=load_index(max_age=0))  # a re-delivery: no escalation
    assert again.playbook == "pfc-storm" and again.status == RunStatus.FAILED
    run = remediate(incident.pk, playbooks=books, index=load_index(max_age=0), attempt=next_attempt(incident))
    assert run.playbook == "pfc-storm-persistent" and run.status == RunStatus.SUCCEEDED, run.reason
    assert run.target_key == f"port:{LEAF}:{HOST_PORT}"
    action = run.actions.get(phase="act", action="disable-pfc")
    assert "priority-flow-control priority 3 drop" in action.diff
    text = running(LEAF)
    block = text.split(f"interface {HOST_PORT}\n", 1)[1].split("!", 1)[0]
    assert "priority-flow-control priority 3 drop" in block
    assert text.count("priority-flow-control priority 3 no-drop") >= 7  # every other RoCE port stays lossless

    lab.advance(0.4)
    out, paused, received = host_port.out_octets, spread(), host_port.pfc_rx_pause[3]
    lab.advance(1.0)
    assert host_port.out_octets - out > 0.2 * 400e9 / 8  # the NIC's pauses are ignored: the port sends again
    assert spread() == paused  # nothing spreads into the fabric any more
    assert host_port.pfc_rx_pause[3] > received  # the NIC is still storming (the incident stays until it stops)

    lab.clear(all=True)
    restored = restore(run.pk, approved_by="alice")
    assert restored.status == RunStatus.RESTORED, restored.reason
    assert IntentAssignment.objects.get(device__hostname=LEAF).overrides == {"pfc_watchdog": False}
    block = running(LEAF).split(f"interface {HOST_PORT}\n", 1)[1].split("!", 1)[0]
    assert "priority-flow-control priority 3 no-drop" in block
    lab.inject("pfc-storm", f"{LEAF}:{HOST_PORT}", priority=3)  # PFC is back: a new storm is honoured again
    lab.advance(1.0)
    out = host_port.out_octets
    lab.advance(1.0)
    assert host_port.out_octets - out < 0.01 * 400e9 / 8
