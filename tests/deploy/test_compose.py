"""The production stack in docker/ as an operator would use it: copy the example env file, validate with compose.

No Docker engine runs on these machines, so nothing is started here: Debian's docker-compose (1.29) parses,
interpolates and validates the file, which catches schema errors, bad anchors and missing files.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

DOCKER_DIR = Path(settings.BASE_DIR) / "docker"


ENV_FILES = ("fabric_ops.env", "postgres.env", "influxdb.env")
APP_SERVICES = ("web", "worker", "beat", "collector-0", "collector-1")


def _stack_with_env(tmp_path: Path, skip: str = "") -> Path:
    stack = tmp_path / "docker"
    shutil.copytree(DOCKER_DIR, stack)
    for name in ENV_FILES:
        if name != skip:
            shutil.copy(stack / f"{name}.example", stack / name)
    return stack


def _config(stack: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker-compose", "-f", str(stack / "compose.yml"), "config"], capture_output=True, text=True, timeout=60
    )


def test_compose_file_is_valid_with_the_example_env(tmp_path):
    result = _config(_stack_with_env(tmp_path))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"postgres", "redis", "influxdb", "web", "worker", "beat", "collector-0", "collector-1"} <= set(services)
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "influxdb", "web", "worker"))
    assert services["collector-1"]["command"][-2:] == ["--shard", "1/2"]
    # nothing long-running starts against an unmigrated schema
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    # migrate reads settings, which need the token file InfluxDB's first start writes
    assert set(services["migrate"]["depends_on"]) == {"postgres", "influxdb"}


def _env_keys(path: Path) -> set[str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {line.split("=", 1)[0] for line in lines}


def test_each_service_gets_only_its_own_secrets(tmp_path):
    """The app never sees the database superuser's settings or the InfluxDB admin token: it gets a scoped token."""
    app_keys = _env_keys(DOCKER_DIR / "fabric_ops.env.example")
    assert not any(key.startswith(("POSTGRES_", "DOCKER_INFLUXDB_INIT_")) for key in app_keys), app_keys
    assert "FABRIC_OPS_INFLUX_TOKEN" not in app_keys
    config = yaml.safe_load(_config(_stack_with_env(tmp_path)).stdout)
    services = config["services"]
    for name in (*APP_SERVICES, "migrate"):
        environment = services[name]["environment"]
        assert not any(key.startswith("DOCKER_INFLUXDB_INIT_") for key in environment), name
        assert environment["FABRIC_OPS_INFLUX_TOKEN_FILE"] == "/run/secrets/influxdb/token", name
        assert any(v.endswith(":/run/secrets/influxdb:ro") for v in services[name]["volumes"]), name
    assert "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" in services["influxdb"]["environment"]
    assert "POSTGRES_PASSWORD" in services["postgres"]["environment"]
    init = (DOCKER_DIR / "influxdb-init.sh").read_text()
    assert "--read-bucket" in init and "--write-bucket" in init and "/run/fabric_ops-influx/token" in init


def test_settings_read_the_influx_token_from_its_file(tmp_path):
    token = tmp_path / "token"
    token.write_text("scoped-token-123\n")
    code = "from django.conf import settings; print(settings.FABRIC_OPS_INFLUX_TOKEN)"
    env = {**os.environ, "FABRIC_OPS_INFLUX_TOKEN_FILE": str(token), "DJANGO_SETTINGS_MODULE": "fabric_ops.settings"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "scoped-token-123", run.stderr
    env["FABRIC_OPS_INFLUX_TOKEN_FILE"] = str(tmp_path / "missing")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and f"FABRIC_OPS_INFLUX_TOKEN_FILE={tmp_path / 'missing'}" in run.stderr


def test_compose_refuses_a_missing_env_file(tmp_path):
    for missing in ENV_FILES:  # an operator must create each from its example
        result = _config(_stack_with_env(tmp_path / missing, skip=missing))
        assert result.returncode != 0, missing
        assert missing in result.stderr


def test_image_runs_as_non_root():
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert "USER fabricops" in runtime and "useradd --system --uid 10001" in runtime
