"""Compliance over many devices against the virtual lab: bulk rendering, same results as one device at a time.

The lab fabric comes from inventory/lab.yml, moved to this module's own loopback block (127.23.0.0/24) and to
kernel-picked ports (free_port), so these tests collide neither with a running demo nor with other lab tests or runs.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fabric_ops.config.compliance import check_compliance, check_compliance_many
from fabric_ops.config.models import ComplianceResult, IntentAssignment
from fabric_ops.config.push import create_job, run_job
from fabric_ops.lab.api import Lab
from fabric_ops.topology.models import Device
from tests.config.conftest import place_lab_inventory

pytestmark = [pytest.mark.django_db, pytest.mark.lab, pytest.mark.timeout(180)]


def captured_sql(queries: CaptureQueriesContext, verb: str) -> list[str]:
    """The captured statements that start with ``verb``: the query-count tests count reads and writes apart."""
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(verb)]


def select_sql(queries: CaptureQueriesContext) -> list[str]:
    return captured_sql(queries, "SELECT")


def insert_sql(queries: CaptureQueriesContext) -> list[str]:
    return captured_sql(queries, "INSERT")


@pytest.fixture
def lab(settings, tmp_path):
    """sjc-ai: 4 VRP spines, 8 EOS leaves (gNMI too: a push is verified over it before it is confirmed)."""
    settings.SECRETS_DIR = tmp_path / "secrets"
    place_lab_inventory("127.23.0")
    with Lab.start(["sjc-ai"], manual_clock=True) as running:
        yield running


def fabric_devices() -> list[Device]:
    return list(
        Device.objects.filter(fabric__name="sjc-ai").exclude(platform="optical").select_related("fabric", "site")
    )


def outcome(result: ComplianceResult) -> tuple:
    return result.device.hostname, result.compliant, result.diff, result.error


def test_bulk_compliance_matches_one_device_at_a_time(lab):
    devices = fabric_devices()
    pushed = [d for d in devices if d.hostname in ("sjc-leaf1", "sjc-spine1")]
    assert run_job(create_job(pushed, requested_by="alice").pk).status == "succeeded"
    broken = next(d for d in devices if d.hostname == "sjc-leaf2")
    # Saved without validation, as a stale assignment would be after its interface was renamed: no render.
    IntentAssignment.objects.create(fabric=broken.fabric, device=broken, overrides={"bgp_cost_out": ["Ethernet99/1"]})

    bulk = [outcome(r) for r in check_compliance_many(devices)]
    single = [outcome(check_compliance(d)) for d in devices]

    assert bulk == single
    by_host = {host: (compliant, error) for host, compliant, _, error in bulk}
    assert by_host["sjc-leaf1"] == (True, "") and by_host["sjc-spine1"] == (True, "")
    assert by_host["sjc-leaf2"][0] is None and "Ethernet99/1" in by_host["sjc-leaf2"][1]
    assert by_host["sjc-leaf3"][0] is False and by_host["sjc-spine2"][0] is False  # nothing pushed there
    assert ComplianceResult.objects.count() == 2 * len(devices)


def test_bulk_compliance_reads_do_not_grow_with_the_number_of_devices(lab):
    devices = fabric_devices()
    assert len(devices) == 12
    with CaptureQueriesContext(connection) as few:
        assert len(list(check_compliance_many(devices[:2]))) == 2
    with CaptureQueriesContext(connection) as many:
        assert len(list(check_compliance_many(devices))) == 12

    reads, writes = select_sql, insert_sql
    assert len(reads(many)) == len(reads(few)) <= 8, reads(many)
    assert len(writes(few)) == 2 and len(writes(many)) == 12  # one result row per device, written as it is checked
    assert len(many.captured_queries) <= 8 + len(devices)
    # One device at a time, the same fleet reads the source of truth again for every device.
    with CaptureQueriesContext(connection) as single:
        for device in devices:
            check_compliance(device)
    assert len(reads(single)) > 3 * len(reads(many))


def test_the_compliance_command_checks_a_fabric_in_bulk(lab):
    out = StringIO()
    with CaptureQueriesContext(connection) as queries:
        call_command("config", "compliance", "--fabric", "sjc-ai", stdout=out)
    lines = out.getvalue().splitlines()
    assert sum(" NOT compliant" in line for line in lines) == 12  # nothing pushed yet
    assert "sjc-ai: {'compliant': 0, 'non_compliant': 12, 'unknown': 0, 'never_checked': 0}" in lines
    reads = select_sql(queries)
    assert len(reads) <= 12, reads  # selection, the bulk render's reads, the summary: none per device


def test_bulk_compliance_reads_the_intent_again_for_each_batch(lab, monkeypatch):
    """Each check talks to a switch (seconds): the intent is read per small batch, not once for a whole fleet."""
    from fabric_ops.config import compliance

    devices = fabric_devices()
    monkeypatch.setattr(compliance, "RENDER_BATCH", 5)
    with CaptureQueriesContext(connection) as one_batch:
        assert len(list(check_compliance_many(devices[:5]))) == 5
    with CaptureQueriesContext(connection) as three_batches:
        assert len(list(check_compliance_many(devices))) == 12  # 5 + 5 + 2

    def reads(queries) -> int:
        return len(select_sql(queries))

    assert reads(three_batches) == 3 * reads(one_batch)
