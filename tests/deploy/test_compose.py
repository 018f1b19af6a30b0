"""The production stack in docker/ as an operator would use it: copy the example env file, validate with compose.

No Docker engine runs on these machines, so nothing is started here: Debian's docker-compose (1.29) parses,
interpolates and validates the file, which catches schema errors, bad anchors and missing files.
"""

import shutil
import subprocess
from pathlib import Path

import yaml
from django.conf import settings

DOCKER_DIR = Path(settings.BASE_DIR) / "docker"


def test_compose_file_is_valid_with_the_example_env(tmp_path):
    stack = tmp_path / "docker"
    shutil.copytree(DOCKER_DIR, stack)
    shutil.copy(stack / "fabric_ops.env.example", stack / "fabric_ops.env")
    result = subprocess.run(
        ["docker-compose", "-f", str(stack / "compose.yml"), "config"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"postgres", "redis", "influxdb", "web", "worker", "beat", "collector-0", "collector-1"} <= set(services)
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "influxdb", "web", "worker"))
    assert services["collector-1"]["command"][-2:] == ["--shard", "1/2"]


def test_compose_refuses_a_missing_env_file(tmp_path):
    stack = tmp_path / "docker"
    shutil.copytree(DOCKER_DIR, stack)  # no fabric_ops.env: an operator must create it from the example
    result = subprocess.run(
        ["docker-compose", "-f", str(stack / "compose.yml"), "config"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "fabric_ops.env" in result.stderr


def test_image_runs_as_non_root():
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert "USER fabricops" in runtime and "useradd --system --uid 10001" in runtime
