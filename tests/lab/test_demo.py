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
    call_command("demo", no_serve=True)
    login_file = tmp_path / "secrets" / "demo-admin.json"
    login = json.loads(login_file.read_text())
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(login["password"]) and admin.is_superuser
    assert set(Fabric.objects.values_list("name", flat=True)) >= {"sjc-ai", "lax-ai"}
    assert Device.objects.filter(platform="eos").exists() and Device.objects.filter(platform="huawei_vrp").exists()
    devices = Device.objects.count()

    call_command("demo", no_serve=True)  # a second run keeps the login and changes nothing
    assert json.loads(login_file.read_text()) == login
    assert Device.objects.count() == devices
    assert "no changes" in capsys.readouterr().out
