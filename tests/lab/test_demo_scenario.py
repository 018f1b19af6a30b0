"""`manage.py demo` for real: start-up to a healthy /api/health/, the fault scenario, alerts, Ctrl-C.

The demo runs as a subprocess with everything of its own: a var dir (SQLite, InfluxDB data, lab control file,
logs, the alert log), the sample inventory moved to 127.66.0.0/16 (the real demo and other tests use
127.64.0.0/16), free ports for the UI and InfluxDB, Redis database 9 with its own key prefix and Celery queue.
Only the scenario's start times are shortened (``--scenario-pace``); detection, remediation and alerting run
at their production settings. What the demo narrates is checked against its database and its alert log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from fabric_ops.telemetry.influxd import free_port

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1200)]

START_DEADLINE_S = 420  # to a healthy /api/health/ on a loaded 2-core machine
SCENARIO_DEADLINE_S = 600  # from healthy to the scenario's verdict
STOP_DEADLINE_S = 120


class Demo:
    """The subprocess and its narration, read line by line in a thread."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the demo only, as from a terminal running `make demo`
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with self.log.open("w") as out:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))
                out.write(line)
                out.flush()

    def wait_for(self, pattern: str, deadline_s: float) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + deadline_s
        seen = 0
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(self.lines)
            if self.process.poll() is not None:
                time.sleep(0.5)  # let the reader drain
                break
            time.sleep(0.5)
        tail = "\n".join(self.lines[-40:])
        pytest.fail(f"no line matching {pattern!r} within {deadline_s} s (exit {self.process.poll()}):\n{tail}")

    def join(self) -> None:
        self._reader.join(timeout=10)

    def child_pids(self) -> dict[str, int]:
        pids = {}
        for line in self.lines:
            match = re.search(r"==> \S+ (\S+) started \(pid (\d+),", line)
            if match:
                pids[match.group(1)] = int(match.group(2))
        return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose (its parent, the demo, reaps it on exit)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def demo_env(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    inventory = tmp_path / "lab.yml"
    source = Path(settings.INVENTORY_DIR / "lab.yml").read_text()
    assert source.count("127.64.") >= 28
    inventory.write_text(source.replace("127.64.", "127.66."))
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.lab.demo_settings",
            "FABRIC_OPS_DEMO_TEST_QUEUE": f"demo-test-{tag}",
            "FABRIC_OPS_VAR_DIR": str(var),
            "FABRIC_OPS_DEMO_INVENTORY": str(inventory),
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
            "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/9",
            "FABRIC_OPS_TELEMETRY_REDIS_URL": "redis://127.0.0.1:6379/9",
            "FABRIC_OPS_TELEMETRY_REDIS_PREFIX": f"demo-test-{tag}",
            "FABRIC_OPS_INFLUX_URL": f"http://127.0.0.1:{free_port()}",
            "FABRIC_OPS_EXTERNAL_URL": "http://127.0.0.1:1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return var, env


def test_make_demo_start_up_scenario_alerts_and_ctrl_c(demo_env, tmp_path):
    var, env = demo_env
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "manage.py", "demo", "--address", address, "--scenario", "1", "--scenario-pace", "0.3"]
    demo = Demo(argv, env, tmp_path / "demo.out")
    pids: dict[str, int] = {}
    try:
        token = demo.wait_for(r"API token (\w+) ", START_DEADLINE_S).group(1)
        demo.wait_for(r"/api/health/: ok \(", START_DEADLINE_S)
        # the demo's own check passed; ask again as a visitor would
        request = urllib.request.Request(f"http://{address}/api/health/", headers={"Authorization": f"Token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert response.status == 200 and body["status"] == "ok", body
        assert {"database", "broker", "influxdb", "workers", "collectors"} <= set(body["components"])

        verdict = demo.wait_for(r"scenario \+\d+s: done: (\d+)/(\d+) steps as expected(.*)", SCENARIO_DEADLINE_S)
        pids = demo.child_pids()
        narration = "\n".join(demo.lines)
        assert verdict.group(1) == verdict.group(2) == "4", f"{verdict.group(0)}\n{narration[-6000:]}"

        # the incidents each step claimed, checked in the demo's database rather than in its narration
        claimed = {}
        for step in ("flap", "pfc-storm", "dci-span", "refusal"):
            match = re.search(rf"incident (\d+) [\w-]+ on [^:]+: \S+ \[{step}\]", narration)
            assert match, f"no incident narrated for {step}:\n{narration[-6000:]}"
            claimed[step] = int(match.group(1))
        db = sqlite3.connect(f"file:{var / 'fabric_ops.sqlite3'}?mode=ro", uri=True, timeout=30)
        rows = {
            pk: (kind, status, device, interface, span, reason, severity)
            for pk, kind, status, device, interface, span, reason, severity in db.execute(
                "SELECT id, kind, status, device, interface, span, reason, severity FROM health_incident"
            )
        }
        db.close()
        flap, storm, span, refusal = (rows[claimed[s]] for s in ("flap", "pfc-storm", "dci-span", "refusal"))
        assert flap[0] == "link-flap" and flap[1] in ("mitigated", "resolved"), flap
        assert storm[0] == "pfc-storm" and storm[1] in ("mitigated", "resolved"), storm
        assert span[0] == "dci-degradation" and span[4] == "sjc-lax-coastal" and span[1] in ("mitigated", "resolved")
        assert refusal[0] == "link-flap" and refusal[1] == "needs-human" and "50%" in refusal[5], refusal

        # the local receiver got the alerts through the alerting app (route, webhook receiver, Celery worker)
        alerts = [json.loads(line) for line in (var / "demo-alerts.log").read_text().splitlines()]
        by_incident: dict[str, list[tuple[str, str]]] = {}
        for alert in alerts:
            by_incident.setdefault(alert["incident"], []).append((alert["status"], alert["incident_status"]))
        for step in ("flap", "pfc-storm", "dci-span"):
            statuses = {s for s, _ in by_incident.get(str(claimed[step]), [])}
            # a critical incident (a PFC storm that starts as one) stays paged until it resolves, minutes later
            expected = {"firing"} if rows[claimed[step]][6] == "critical" else {"firing", "resolved"}
            assert statuses >= expected, (step, rows[claimed[step]], by_incident.get(str(claimed[step])))
        refused = [a for a in alerts if a["incident"] == str(claimed["refusal"]) and a["status"] == "firing"]
        assert any(a["incident_status"] == "needs-human" and a["reason"] for a in refused), refused
        assert all(a["receiver"] == "demo-console" for a in alerts)
    finally:
        if demo.process.poll() is None:
            demo.process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = demo.process.wait(timeout=STOP_DEADLINE_S)
            demo.join()
        except subprocess.TimeoutExpired:
            code = None
        pids = pids or demo.child_pids()
        left = {name: pid for name, pid in pids.items() if _alive(pid)}
        for pid in left.values():  # never leave our own children behind, even when the test fails
            os.killpg(pid, signal.SIGKILL)
        if code is None:
            demo.process.kill()
            demo.process.wait()
    assert code == 0, "\n".join(demo.lines[-30:])
    assert not left, f"still running after Ctrl-C: {left}"
    assert set(pids) >= {"influxdb", "lab", "collector", "detection", "worker", "beat", "web"}
    stopped = {m.group(1) for line in demo.lines if (m := re.search(r"==> \S+ (.+) stopped$", line))}
    assert stopped >= set(pids) | {"alert receiver"}, demo.lines[-20:]
