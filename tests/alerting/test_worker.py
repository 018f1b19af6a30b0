"""End to end through a real ``celery -A fabric_ops worker`` on Redis (not eager mode): an alert is raised, the
flush task runs at its ETA (group_wait), the delivery task gets a 500, retries with backoff, then delivers to the
local HTTP receiver exactly once.

The worker is another process, so it cannot see this process's in-memory test database: the scenario runs on
its own SQLite file, driven through ``manage.py`` (migrate, shell) like an operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/12"

SETUP = """
from fabric_ops.alerting.models import Receiver, Route
from fabric_ops.alerting.ingest import raise_alert
r = Receiver.objects.create(name="hook", kind="webhook", url="{url}/hook", backoff_s=0.3, max_attempts=3)
root = Route.objects.get(parent__isnull=True)
root.receiver = r; root.group_wait_s = 0.5; root.save()
for n in (1, 2, 3):
    raise_alert({{"alertname": "LinkDown", "site": "sjc", "device": "leaf1", "interface": f"Et{{n}}"}})
"""

REPORT = """
import json
from fabric_ops.alerting.models import Notification
print(json.dumps([{"status": n.status, "attempts": n.attempts,
                   "log": list(n.log.values_list("status_code", "outcome"))} for n in Notification.objects.all()]))
"""


def _manage(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(120)
def test_celery_worker_delivers_after_a_500_exactly_once(http_capture, tmp_path) -> None:
    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()
    queue = f"alerting-test-{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'alerting.sqlite3'}",
        "FABRIC_OPS_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": BROKER,
        "CELERY_RESULT_BACKEND": BROKER,
        "FABRIC_OPS_ALERTING_QUEUE": queue,
        "FABRIC_OPS_ALERTING_DISPATCH": "celery",
        "PYTHONPATH": str(ROOT),
    }
    _manage(env, "migrate", "-v0", timeout=90)
    celery = shutil.which("celery", path=str(Path(sys.executable).parent))
    worker = subprocess.Popen(
        [celery, "-A", "fabric_ops", "worker", "--pool=solo", "-Q", queue, "-n", f"{queue}@%h", "-l", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        http_capture.script("/hook", (500, {"error": "receiver restarting"}))
        started = time.monotonic()
        _manage(env, "shell", "-c", SETUP.format(url=http_capture.url))
        while len(http_capture.to("/hook")) < 2 and time.monotonic() - started < 60:
            assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
            time.sleep(0.05)
        time.sleep(1.5)  # room for a (wrong) duplicate to show up
        hooks = http_capture.to("/hook")
        assert len(hooks) == 2, f"expected the 500 and one retry, got {len(hooks)}"
        assert hooks[0].body == hooks[1].body, "the retry re-sends the same notification"
        assert len(hooks[1].body["alerts"]) == 3, "three symptoms, one notification"
        report = json.loads(_manage(env, "shell", "-c", REPORT).strip().splitlines()[-1])
        assert report == [{"status": "sent", "attempts": 2, "log": [[500, "retry"], [200, "sent"]]}]
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
        broker.flushdb()
        broker.close()
