"""/api/health/ against the real parts: PostgreSQL/SQLite, Redis, influxd, a Celery worker, the collectors' handoff."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric_ops.celery import app as celery_app
from fabric_ops.telemetry.handoff import Handoff
from fabric_ops.telemetry.influxd import LocalInfluxd
from fabric_ops.web.health import platform_health, redact_url

from .conftest import TEST_BROKER_URL

pytestmark = pytest.mark.timeout(90)

HOST = "127.17.0.2"
CLOSED = "127.17.0.3"  # nothing listens there


@pytest.fixture(scope="module")
def influxd(tmp_path_factory) -> Iterator[LocalInfluxd]:
    server = LocalInfluxd(tmp_path_factory.mktemp("influxd"), host=HOST)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def handoff(broker, settings) -> Iterator[Handoff]:
    """The collector's own publisher (fabric_ops.telemetry.handoff) on the test Redis DB."""
    settings.FABRIC_OPS_TELEMETRY_REDIS_URL = TEST_BROKER_URL
    publisher = Handoff(TEST_BROKER_URL)
    try:
        yield publisher
    finally:
        publisher._client.close()


def report(publisher: Handoff, collectors: dict[str, dict], devices: dict[str, dict]) -> None:
    publisher.set_health_source(lambda: (devices, collectors))
    publisher.publish_once(force=True)


@pytest.fixture
def worker(broker, tmp_path) -> Iterator[str]:
    """A real Celery worker on the test broker (its own queue, so it never takes another test's job)."""
    name = f"web-health-{os.getpid()}@localhost"
    env = {**os.environ, "CELERY_BROKER_URL": TEST_BROKER_URL, "FABRIC_OPS_VAR_DIR": str(tmp_path)}
    celery = str(Path(sys.executable).with_name("celery"))
    cmd = [celery, "-A", "fabric_ops", "worker", "--pool=solo", "-n", name, "-Q", "web-health-test",
           "--without-mingle", "--without-gossip", "-l", "warning"]  # fmt: skip
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 45
        while name not in (celery_app.control.inspect(timeout=0.5, destination=[name]).ping() or {}):
            if process.poll() is not None:
                pytest.fail(f"worker exited: {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("worker did not answer ping in 45 s")
        yield name
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_every_component_ok(clients, settings, influxd, worker, broker, handoff) -> None:
    settings.FABRIC_OPS_INFLUX_URL = influxd.url
    report(
        handoff, {"0": {"host": "c0", "devices": 2}}, {"leaf1": {"state": "streaming"}, "leaf2": {"state": "backoff"}}
    )
    answer = clients["nobody"].get("/api/health/")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "ok"
    components = body["components"]
    assert set(components) == {"database", "broker", "influxdb", "workers", "collectors"}
    for name, component in components.items():
        assert component["ok"] is True, (name, component)
        assert component["error"] == ""
        assert isinstance(component["latency_ms"], float)
    assert components["influxdb"]["version"].startswith("1.")
    assert worker in components["workers"]["workers"]
    collectors = components["collectors"]
    [collector] = collectors["collectors"]
    assert (collector["shard"], collector["host"], collector["devices"], collector["stale"]) == ("0", "c0", 2, False)
    assert (collectors["devices"], collectors["devices_streaming"], collectors["devices_stale"]) == (2, 1, 0)


def test_each_failure_is_reported_by_name(clients, settings, broker, handoff, db) -> None:
    settings.FABRIC_OPS_INFLUX_URL = f"http://{CLOSED}:8086"
    answer = clients["nobody"].get("/api/health/")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded"
    components = body["components"]
    assert components["database"]["ok"] is True
    assert components["broker"]["ok"] is True
    assert components["influxdb"]["ok"] is False and "unreachable" in components["influxdb"]["error"]
    assert components["workers"] == {**components["workers"], "ok": False, "workers": []}
    assert components["workers"]["error"] == "no Celery worker answered"
    assert components["collectors"]["ok"] is False
    assert components["collectors"]["error"] == "no collector has reported"


def test_broker_down(settings, broker, db) -> None:
    settings.CELERY_BROKER_URL = f"redis://:hunter2@{CLOSED}:6379/0"
    broker_state = platform_health()["components"]["broker"]
    assert broker_state["ok"] is False
    assert "hunter2" not in json.dumps(broker_state), "the broker password never appears"


def test_stale_collector(broker, handoff, db) -> None:
    report(handoff, {"0": {"devices": 1}, "1": {"devices": 1}}, {"leaf1": {"state": "streaming"}})
    key = f"{handoff.prefix}:health:collectors"
    gone = json.loads(broker.hget(key, "1"))
    broker.hset(key, "1", json.dumps({**gone, "updated_at": time.time() - 300}))  # shard 1 stopped reporting
    state = platform_health()["components"]["collectors"]
    assert state["ok"] is False
    assert state["error"] == "not reporting (stale): shard 1"
    assert {c["shard"]: c["stale"] for c in state["collectors"]} == {"0": False, "1": True}


def test_live_and_auth(clients) -> None:
    assert clients["anonymous"].get("/api/health/").status_code == 401
    assert clients["anonymous"].get("/api/health/live/").json() == {"status": "ok"}


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@10.0.0.1:6380/0") == "redis://:***@10.0.0.1:6380/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
