"""`manage.py telemetry ...` against real processes: influx-local serves the demo, write-check proves a setup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from fabric_ops.telemetry.influxd import free_port, wait_for_port

from .conftest import HOST

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(30)
def test_write_check_round_trips(influx, database, settings, tmp_path, capsys):
    settings.FABRIC_OPS_INFLUX_URL = influx.url
    settings.FABRIC_OPS_INFLUX_BUCKET = f"{database}/autogen"
    call_command("telemetry", "write-check", "--spool-dir", str(tmp_path / "s"))
    assert "ok: wrote and read back" in capsys.readouterr().out


@pytest.mark.timeout(30)
def test_write_check_reports_an_unreachable_influxdb(settings, tmp_path):
    settings.FABRIC_OPS_INFLUX_URL = f"http://{HOST}:{free_port(HOST)}"
    settings.FABRIC_OPS_INFLUX_TIMEOUT_S = 1
    with pytest.raises(CommandError, match="unreachable"):
        call_command("telemetry", "write-check", "--spool-dir", str(tmp_path / "s"))


@pytest.mark.timeout(60)
def test_influx_local_serves_the_product_and_stops_cleanly(tmp_path):
    port = free_port(HOST)
    env = {
        **os.environ,
        "FABRIC_OPS_VAR_DIR": str(tmp_path),
        "FABRIC_OPS_INFLUX_URL": f"http://{HOST}:{port}",
        "FABRIC_OPS_INFLUX_BUCKET": "demo/autogen",
    }
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "telemetry", "influx-local"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(HOST, port, 20)
        check = subprocess.run(
            [sys.executable, "manage.py", "telemetry", "write-check"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stderr
        assert (tmp_path / "influxdb" / "data" / "demo").is_dir()  # the database lives under var/
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        influxd_pid_alive = subprocess.run(["pgrep", "-f", f"{tmp_path}/influxdb/influxd.conf"], capture_output=True)
        assert influxd_pid_alive.returncode == 1  # influxd stopped with it
    finally:
        proc.kill()


@pytest.mark.timeout(30)
def test_influx_setup_creates_the_database_idempotently(influx, settings, capsys):
    settings.FABRIC_OPS_INFLUX_URL = influx.url
    settings.FABRIC_OPS_INFLUX_BUCKET = "made_by_setup/autogen"
    for _ in range(2):
        call_command("telemetry", "influx-setup")
        assert "database 'made_by_setup' ready" in capsys.readouterr().out
    names = {row[0] for row in influx.server.query("SHOW DATABASES")["results"][0]["series"][0]["values"]}
    assert "made_by_setup" in names
    settings.FABRIC_OPS_INFLUX_BUCKET = "made_by_setup/no_such_rp"
    with pytest.raises(CommandError, match="retention policy 'no_such_rp' does not exist"):
        call_command("telemetry", "influx-setup")
