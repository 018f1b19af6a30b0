"""The demo's start-up path up to serving: database, admin login kept outside the database, lab fabric."""

import json
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from fabric_ops.topology.models import Device, Fabric

pytestmark = pytest.mark.django_db


def test_demo_setup_creates_admin_and_sample_fabric_and_is_repeatable(settings, tmp_path, capsys):
    settings.SECRETS_DIR = tmp_path / "secrets"
    call_command("demo", no_serve=True, any_database=True)
    login_file = tmp_path / "secrets" / "demo-admin.json"
    login = json.loads(login_file.read_text())
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(login["password"]) and admin.is_superuser
    assert set(Fabric.objects.values_list("name", flat=True)) >= {"sjc-ai", "lax-ai"}
    assert Device.objects.filter(platform="eos").exists() and Device.objects.filter(platform="huawei_vrp").exists()
    devices = Device.objects.count()

    call_command("demo", no_serve=True, any_database=True)  # a second run keeps the login and changes nothing
    assert json.loads(login_file.read_text()) == login
    assert Device.objects.count() == devices
    assert "no changes" in capsys.readouterr().out


def test_demo_refuses_a_database_that_is_not_its_own(settings, tmp_path):
    """The test database (PostgreSQL in CI) stands for a real deployment's: the demo must not touch it unasked."""
    from django.core.management.base import CommandError

    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match=r"runs on its own SQLite database under .*--any-database"):
        call_command("demo", no_serve=True)
    assert not Device.objects.exists()  # refused before the inventory import


def test_demo_reset_closes_what_an_earlier_run_left_with_one_audit_row_each():
    """Every incident, run and cooldown the demo closes is in the audit log (source demo), nothing else is."""
    from datetime import timedelta

    from django.utils import timezone

    from fabric_ops.health.models import Cooldown, Incident, RemediationRun
    from fabric_ops.lab.management.commands.demo import Command
    from fabric_ops.web.models import AuditEntry

    def incident(key: str, status: str) -> Incident:
        return Incident.objects.create(kind="link-flap", root_key=key, status=status, summary=f"{key} flapping",
                                       scope_kind="link", fabric="sjc-ai", device="sjc-leaf1")  # fmt: skip

    mitigating, needs_human = incident("link:1", "mitigating"), incident("link:2", "needs-human")
    done = incident("link:3", "resolved")
    run = RemediationRun.objects.create(incident=mitigating, playbook="link-flap", idempotency_key="k1",
                                        target_key="link:1", status="verifying")  # fmt: skip
    finished = RemediationRun.objects.create(incident=done, playbook="link-flap", idempotency_key="k2",
                                             target_key="link:3", status="succeeded")  # fmt: skip
    later = timezone.now() + timedelta(minutes=15)
    cooling = Cooldown.objects.create(playbook="link-flap", target_key="link:1", until=later)
    Cooldown.objects.create(playbook="link-flap", target_key="link:3", until=timezone.now() - timedelta(minutes=1))

    Command().close_stale_incidents()

    for row in (mitigating, needs_human, done, run, finished, cooling):
        row.refresh_from_db()
    assert (mitigating.status, needs_human.status, run.status) == ("resolved", "resolved", "failed")
    assert cooling.until <= timezone.now()
    entries = list(AuditEntry.objects.order_by("id"))
    assert {e.source for e in entries} == {"demo"} and all(e.actor.startswith("demo:") for e in entries)
    assert [(e.action, e.object_type, e.object_id) for e in entries] == [
        ("fail", "health.remediationrun", str(run.pk)),
        ("expire", "health.cooldown", str(cooling.pk)),
        ("resolve", "health.incident", str(mitigating.pk)),
        ("resolve", "health.incident", str(needs_human.pk)),
    ]  # one row per closed object; the resolved incident, the finished run and the past cooldown have none
    by_object = {(e.object_type, e.object_id): e for e in entries}
    assert by_object["health.remediationrun", str(run.pk)].changes["status"] == ["verifying", "failed"]
    assert by_object["health.incident", str(mitigating.pk)].changes["status"] == ["mitigating", "resolved"]
    assert by_object["health.incident", str(mitigating.pk)].changes["via"] == [None, "failed"]
    assert by_object["health.cooldown", str(cooling.pk)].object_repr == "cooldown link-flap on link:1"
    assert all("closed by the demo" in e.changes["reason"][1] for e in entries)

    Command().close_stale_incidents()  # nothing left to close: no more rows
    assert AuditEntry.objects.count() == len(entries)
