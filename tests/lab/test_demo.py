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
