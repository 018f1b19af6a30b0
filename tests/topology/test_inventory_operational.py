"""Operational link state owned by remediation survives a re-import of the inventory (docs/inventory.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from fabric_ops.topology.inventory import export_inventory, import_inventory
from fabric_ops.topology.models import Link

LAB = Path(settings.BASE_DIR) / "inventory" / "lab.yml"
pytestmark = pytest.mark.django_db

DRAINED = "sjc-leaf1:Ethernet5/1 <-> sjc-spine1:400GE1/0/1"
LINE = "b: sjc-spine1:400GE1/0/1, subnet: 10.1.0.0/31}"


def _link(a_host: str = "sjc-leaf1", a_if: str = "Ethernet5/1") -> Link:
    return Link.objects.get(a_interface__device__hostname=a_host, a_interface__name=a_if)


def _drain() -> None:
    Link.objects.filter(pk=_link().pk).update(state="drained")  # what remediation's _set_links does


def test_reimport_keeps_a_link_remediation_drained(capsys):
    import_inventory(LAB)
    _drain()
    report = import_inventory(LAB)
    assert _link().state == "drained"
    assert _link("sjc-leaf1", "Ethernet6/1").state == "up", "only the drained link is kept"
    assert not report.changed, "keeping the state is not a change"
    assert report.kept["Link"] == [DRAINED]
    assert "kept drained (remediation)" in report.summary() and DRAINED in report.summary()
    call_command("inventory", "import", str(LAB))
    out = capsys.readouterr().out
    assert "1 kept drained (remediation)" in out and DRAINED in out
    assert _link().state == "drained"


def test_dry_run_reports_the_kept_link_too():
    import_inventory(LAB)
    _drain()
    report = import_inventory(LAB, dry_run=True)
    assert report.kept["Link"] == [DRAINED] and _link().state == "drained"


def test_other_changes_to_a_drained_link_apply_but_the_state_stays(tmp_path):
    import_inventory(LAB)
    _drain()
    changed = tmp_path / "lab.yml"
    changed.write_text(LAB.read_text().replace(LINE, LINE[:-1] + ", capacity_gbps: 100}"))
    report = import_inventory(changed)
    link = _link()
    assert (link.state, link.capacity_gbps) == ("drained", 100)
    assert report.updated["Link"] == [DRAINED] and report.kept["Link"] == [DRAINED]


def test_an_explicit_state_in_the_file_wins(tmp_path):
    import_inventory(LAB)
    _drain()
    changed = tmp_path / "lab.yml"
    changed.write_text(LAB.read_text().replace(LINE, LINE[:-1] + ", state: down}"))
    report = import_inventory(changed)
    assert _link().state == "down"
    assert report.updated["Link"] == [DRAINED] and report.kept["Link"] == []


def test_removing_a_drained_link_from_the_file_deletes_it(tmp_path):
    import_inventory(LAB)
    _drain()
    text = LAB.read_text()
    line = next(x for x in text.splitlines(keepends=True) if LINE in x)
    changed = tmp_path / "lab.yml"
    changed.write_text(text.replace(line, "", 1))
    report = import_inventory(changed)
    assert report.deleted["Link"] == [DRAINED] and report.kept["Link"] == []
    assert not Link.objects.filter(a_interface__device__hostname="sjc-leaf1", a_interface__name="Ethernet5/1")


def test_a_drained_link_exports_drained_and_round_trips(tmp_path):
    import_inventory(LAB)
    _drain()
    out = tmp_path / "export.yml"
    out.write_text(export_inventory())
    report = import_inventory(out)
    assert not report.changed and report.kept["Link"] == [], "the file says drained itself: nothing kept"
    assert _link().state == "drained"
