"""Push jobs against the virtual lab, through the unmodified NAPALM drivers.

The lab fabric comes from inventory/lab.yml; its switches are moved to this
module's own loopback block (127.15.0.0/16) so these tests never collide with
a running demo lab or with other lab tests.
"""

from __future__ import annotations

import shutil
import time

import pytest
from django.conf import settings as django_settings

from fabric_ops.config.compliance import check_compliance, fabric_summary
from fabric_ops.config.models import IntentAssignment, RoceProfile
from fabric_ops.config.models.jobs import DeviceStatus, JobStatus
from fabric_ops.config.push import create_job, run_job
from fabric_ops.devices.connection import open_driver
from fabric_ops.devices.locks import device_lock
from fabric_ops.lab.api import Lab
from fabric_ops.topology.models import Device
from tests.config.conftest import place_lab_inventory

pytestmark = [pytest.mark.django_db, pytest.mark.lab, pytest.mark.timeout(120)]


@pytest.fixture
def lab_fabric(settings, tmp_path):
    """sjc-ai from the lab inventory, on 127.15.0.x, with a throw-away lab credential."""
    settings.SECRETS_DIR = tmp_path / "secrets"
    return place_lab_inventory("127.15.0")


@pytest.fixture
def lab(lab_fabric):
    with Lab.start(["sjc-ai"], manual_clock=True) as running:
        yield running


def leaves(*names: str) -> list[Device]:
    return list(Device.objects.filter(hostname__in=names).select_related("fabric", "site").order_by("hostname"))


def running_config(device: Device) -> str:
    with open_driver(device) as driver:
        return driver.get_config(retrieve="running")["running"]


def test_push_commits_and_a_second_push_changes_nothing(lab):
    devices = leaves("sjc-leaf1", "sjc-leaf2")
    job = run_job(create_job(devices, requested_by="alice", canary_count=1).pk)
    rows = {r.device.hostname: r for r in job.devices.select_related("device")}
    assert job.status == JobStatus.SUCCEEDED, job.summary
    assert [rows[h].wave for h in ("sjc-leaf1", "sjc-leaf2")] == [0, 1]  # canary first
    assert {r.status for r in rows.values()} == {DeviceStatus.CONFIRMED}
    assert "+qos map dscp 26 to traffic-class 3" in rows["sjc-leaf1"].diff
    assert "sha512 <removed>" in rows["sjc-leaf1"].diff or "secret" not in rows["sjc-leaf1"].diff
    assert "priority-flow-control priority 3 no-drop" in running_config(devices[0])
    assert devices[0].config_state.last_success_job_id == job.pk

    again = run_job(create_job(devices, requested_by="alice").pk)
    assert again.status == JobStatus.SUCCEEDED
    assert set(again.devices.values_list("status", flat=True)) == {DeviceStatus.NO_CHANGE}


def test_full_push_to_a_mixed_vendor_fabric_is_idempotent(lab, lab_fabric):
    devices = list(Device.objects.filter(fabric=lab_fabric).select_related("fabric", "site"))
    assert {d.platform for d in devices} == {"eos", "huawei_vrp"}
    job = run_job(create_job(devices, requested_by="alice", canary_count=1, wave_percent=50).pk)
    assert job.status == JobStatus.SUCCEEDED, job.summary
    assert job.devices.filter(status=DeviceStatus.CONFIRMED).count() == len(devices)
    spine = lab.switch("sjc-spine1")  # CloudEngine: dcb pfc + drop-profile + diffserv domain took effect
    assert spine.qos.pfc_priorities == {3} and spine.qos.dscp_to_tc[26] == 3 and spine.qos.ecn[3].min_kbytes == 150
    assert spine.qos.pfc_watchdog_timeout_ms == 200
    again = run_job(create_job(devices, requested_by="alice", wave_percent=100).pk)
    assert set(again.devices.values_list("status", flat=True)) == {DeviceStatus.NO_CHANGE}


def test_a_knob_removed_from_the_intent_is_removed_from_the_switches(lab, lab_fabric):
    devices = leaves("sjc-leaf2") + list(Device.objects.filter(hostname="sjc-spine2").select_related("fabric", "site"))
    two = RoceProfile.objects.create(name="two-lossless", lossless_priorities=[3, 4])
    assignment = IntentAssignment.objects.create(fabric=lab_fabric, roce_profile=two, overrides={"bfd": True})
    assert run_job(create_job(devices, requested_by="alice").pk).status == JobStatus.SUCCEEDED
    assert {lab.switch(d.hostname).qos.pfc_priorities for d in devices} == {frozenset({3, 4})}

    assignment.roce_profile, assignment.overrides = None, {"bfd": False}
    assignment.save()
    assert run_job(create_job(devices, requested_by="alice").pk).status == JobStatus.SUCCEEDED
    assert {lab.switch(d.hostname).qos.pfc_priorities for d in devices} == {frozenset({3})}
    leaf_config, spine_config = running_config(devices[0]), running_config(devices[1])
    assert "priority-flow-control priority 4 no-drop" not in leaf_config
    assert " bfd" not in leaf_config.split("router bgp", 1)[1]
    assert "peer 10.1.0.2 bfd enable" not in spine_config


def test_dry_run_shows_the_diff_and_changes_nothing(lab):
    device = leaves("sjc-leaf3")[0]
    before = running_config(device)
    job = run_job(create_job([device], requested_by="alice", dry_run=True).pk)
    row = job.devices.get()
    assert row.status == DeviceStatus.DIFFED
    assert "+qos map dscp 48 to traffic-class 6" in row.diff
    assert running_config(device) == before
    assert not hasattr(device, "config_state") or device.config_state.last_attempt_at is None


def eos_template_ending_with(lines: str, settings, tmp_path) -> None:
    """Render from a copy of the shipped templates whose EOS template ends with ``lines`` (a bug no intent shows)."""
    templates = tmp_path / "templates"
    shutil.copytree(django_settings.NETWORK_TEMPLATES_DIR, templates)
    eos = templates / "eos" / "device.j2"
    eos.write_text(eos.read_text() + lines)
    settings.NETWORK_TEMPLATES_DIR = templates


def test_rejected_line_fails_the_device_with_its_own_error_and_leaves_it_untouched(lab, settings, tmp_path):
    # A template bug the intent validation cannot see: a line EOS refuses, after valid RoCE lines.
    eos_template_ending_with("interface Ethernet1/1\n   mtu 99999\n", settings, tmp_path)
    device = leaves("sjc-leaf4")[0]
    before = running_config(device)
    job = run_job(create_job([device], requested_by="alice").pk)
    row = job.devices.get()
    assert (job.status, row.status) == (JobStatus.FAILED, DeviceStatus.FAILED)
    assert "Invalid input" in row.error and "99999" in row.error
    assert running_config(device) == before
    assert device.config_state.last_success_at is None


def test_invalid_merged_intent_is_refused_before_anything_is_sent(lab, lab_fabric):
    device = leaves("sjc-leaf4")[0]
    IntentAssignment.objects.create(fabric=lab_fabric, device=device, overrides={"mtu": "9214\n   shutdown"})
    before = running_config(device)
    row = run_job(create_job([device], requested_by="alice").pk).devices.get()
    assert row.status == DeviceStatus.FAILED
    assert "render failed" in row.error and "sjc-leaf4" in row.error and "mtu" in row.error
    assert running_config(device) == before


def test_unreachable_device_fails_with_the_reason_and_the_wave_policy_decides(lab):
    good, dead = leaves("sjc-leaf5", "sjc-leaf6")
    Device.objects.filter(pk=dead.pk).update(mgmt_address="127.15.9.9")  # nothing listens there
    dead.refresh_from_db()
    job = run_job(create_job([dead, good], requested_by="alice", canary_count=1, max_failures=0).pk)
    rows = {r.device.hostname: r for r in job.devices.select_related("device")}
    assert rows["sjc-leaf6"].status == DeviceStatus.UNREACHABLE
    assert "sjc-leaf6" in rows["sjc-leaf6"].error
    assert rows["sjc-leaf5"].status == DeviceStatus.SKIPPED  # the canary failed: the job stops
    assert job.status == JobStatus.STOPPED

    tolerant = run_job(create_job([dead, good], requested_by="alice", canary_count=1, max_failures=1).pk)
    assert tolerant.status == JobStatus.PARTIAL
    assert tolerant.devices.get(device=good).status == DeviceStatus.CONFIRMED


def test_failed_verification_is_not_confirmed_and_the_switch_reverts_by_itself(lab):
    device = leaves("sjc-leaf7")[0]
    before = running_config(device)
    Device.objects.filter(pk=device.pk).update(gnmi_port=1)  # gNMI check fails after the commit
    device.refresh_from_db()
    job = run_job(create_job([device], requested_by="alice", revert_in=3).pk)
    row = job.devices.get()
    assert row.status == DeviceStatus.REVERTED
    assert "gNMI" in row.error and "rolled back" in row.error
    assert "+qos map dscp 26 to traffic-class 3" in row.diff  # it was committed, pending confirmation
    deadline = time.monotonic() + 15
    while "qos map dscp 26" in running_config(device) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running_config(device) == before


def test_a_device_locked_by_another_job_is_refused_naming_the_holder(lab):
    device = leaves("sjc-leaf8")[0]
    with device_lock(device.hostname, "remediation 42"):
        job = run_job(create_job([device], requested_by="alice").pk)
    row = job.devices.get()
    assert row.status == DeviceStatus.BUSY
    assert "remediation 42" in row.error
    assert run_job(create_job([device], requested_by="alice").pk).status == JobStatus.SUCCEEDED


def test_compliance_detects_a_manual_change_made_over_eapi(lab, lab_fabric):
    device = leaves("sjc-leaf1")[0]
    assert check_compliance(device).compliant is False  # nothing pushed yet
    run_job(create_job([device], requested_by="alice").pk)
    assert check_compliance(device).compliant is True
    with open_driver(device) as driver:  # someone "fixes" a threshold by hand
        driver.load_merge_candidate(
            config="interface Ethernet1/1\n   tx-queue 3\n      random-detect ecn minimum-threshold 300 kbytes "
            "maximum-threshold 1500 kbytes max-mark-probability 20\n"
        )
        driver.commit_config()
    result = check_compliance(device)
    assert result.compliant is False
    assert "minimum-threshold 150 kbytes" in result.diff
    assert fabric_summary(lab_fabric)["non_compliant"] == 1


def test_pushing_roce_turns_drops_into_pauses_and_marks(lab):
    leaf = lab.switch("sjc-leaf1")
    host_port = next(i for i in leaf.interfaces.values() if i.kind == "host")
    host, nic = host_port.peer
    lab.inject("incast", f"{host}:{nic}", fan_in=3)

    def totals():  # before the DSCP map RoCE rides TC 0; after it, TC 3: count every queue
        queues = host_port.queues
        return sum(q.dropped_pkts for q in queues), sum(q.ecn_marked_pkts for q in queues), sum(host_port.pfc_tx_pause)

    lab.advance(2.0)
    drops_before, marks_before, pauses_before = totals()
    assert drops_before > 0 and pauses_before == 0  # no PFC: the RoCE class drops

    devices = list(Device.objects.filter(fabric__name="sjc-ai", platform="eos").select_related("fabric", "site"))
    assert run_job(create_job(devices, requested_by="alice", canary_count=1, wave_percent=100).pk).status == (
        JobStatus.SUCCEEDED
    )
    lab.advance(2.0)
    drops_after, marks_after, pauses_after = totals()
    assert drops_after == drops_before  # lossless now
    assert pauses_after > 0 or marks_after > marks_before


# --- the EOS driver's round trips (fabric_ops.devices.drivers.eos) -----------------------------------------


class _Wire:
    """Count eAPI requests (pyeapi's execute) and TCP connections (http.client connect) while active."""

    def __init__(self, monkeypatch):
        import http.client

        from pyeapi.eapilib import EapiConnection

        self.requests, self.connections = 0, 0
        execute, connect = EapiConnection.execute, http.client.HTTPConnection.connect

        def counted_execute(conn, *a, **kw):
            self.requests += 1
            return execute(conn, *a, **kw)

        def counted_connect(conn):
            self.connections += 1
            return connect(conn)

        monkeypatch.setattr(EapiConnection, "execute", counted_execute)
        monkeypatch.setattr(http.client.HTTPConnection, "connect", counted_connect)


def test_a_verified_push_takes_9_requests_on_two_connections(lab, monkeypatch):
    from fabric_ops.config.push import push_device
    from fabric_ops.config.rendering import render_device

    device = leaves("sjc-leaf1")[0]
    intended = render_device(device)
    wire = _Wire(monkeypatch)
    outcome = push_device(device, intended, owner="test", dry_run=False, revert_in=120)
    assert outcome.status == DeviceStatus.CONFIRMED, outcome.error
    # open, lock check, load, diff, pending check, commit timer, running config, pending check, confirm
    assert wire.requests == 9
    # NAPALM + stock pyeapi: a TCP + TLS handshake per request (11). Here: the push's, and a new one after the
    # commit, which the verification needs (a kept-alive connection does not prove the API accepts clients).
    assert wire.connections == 2
    assert run_job(create_job([device], requested_by="alice").pk).devices.get().status == DeviceStatus.NO_CHANGE


def test_pending_commit_check_in_one_request_reads_as_napalms(lab, monkeypatch):
    from napalm.eos.eos import EOSDriver

    device = leaves("sjc-leaf2")[0]
    with open_driver(device) as driver:
        assert driver._get_pending_commits() == {}
        driver.load_merge_candidate(config="interface Ethernet1/1\n   description pending-check\n")
        driver.commit_config(revert_in=90)
        wire = _Wire(monkeypatch)
        ours = driver._get_pending_commits()
        assert wire.requests == 1
        theirs = EOSDriver._get_pending_commits(driver)  # NAPALM's own reading, two requests
        assert wire.requests == 3
        assert ours == theirs and set(ours) == {driver.config_session} and 0 < ours[driver.config_session] <= 90
        driver.confirm_commit()
        assert driver._get_pending_commits() == {}


def test_keepalive_connection_is_replaced_after_the_idle_limit(lab, monkeypatch):
    monkeypatch.setenv("FABRIC_OPS_EAPI_KEEPALIVE_S", "0.3")
    device = leaves("sjc-leaf3")[0]
    with open_driver(device) as driver:
        wire = _Wire(monkeypatch)
        driver.get_facts()
        driver.cli(["show clock"])
        assert wire.connections == 0  # both within the limit: the connection of open() was reused
        time.sleep(0.6)
        driver.cli(["show clock"])
        assert wire.connections == 1  # idle too long: a fresh connection, not a possibly stale one


def test_a_push_that_shuts_eapi_fails_verification_on_a_new_connection(lab, settings, tmp_path):
    """The kept-alive connection of the push must not hide that eAPI no longer accepts clients after the commit."""
    eos_template_ending_with("management api http-commands\n   shutdown\n", settings, tmp_path)
    device = leaves("sjc-leaf8")[0]
    before = running_config(device)
    row = run_job(create_job([device], requested_by="alice", revert_in=3).pk).devices.get()
    assert row.status == DeviceStatus.REVERTED, row.error
    assert "+   shutdown" in row.diff and "reverts by itself" in row.error  # not even the rollback gets through
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # nobody confirmed: the commit timer brings eAPI and the old config back
        try:
            if running_config(device) == before:
                break
        except Exception:
            pass
        time.sleep(0.5)
    assert running_config(device) == before
