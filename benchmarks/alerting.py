#!/usr/bin/env python
"""Benchmark alert latency: incident opened -> webhook received, through a real Celery worker on Redis.

Each incident (fabric_ops.health.Incident, status needs-human) is saved in this process; the alerting adapter
raises its alert, the group's flush task is queued with ETA = group_wait, a separate ``celery -A fabric_ops
worker`` process runs the flush and the delivery task, and a local HTTP receiver records when the webhook
arrives. Routes group by incident so every incident is its own notification. Target: p50 <= 1 s beyond
group_wait.

    .venv/bin/python benchmarks/alerting.py [--incidents 200] [--rate 20] [--group-wait 1.0] [--pool threads] [-c 8]

DATABASE_URL defaults to postgresql://postgres@127.0.0.1:5432/fabricops_alerting_bench, created when missing;
its ``public`` schema is dropped and re-migrated, so only point it at a scratch database (a ``sqlite:///`` file
also works for a quick look, though SQLite serialises the worker's and this process's writes). The broker is
Redis DB 13 on 127.0.0.1 (flushed). The receiver listens on 127.21.1.1. Results: a table on stdout and
benchmarks/results/alerting.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="fabricops-alerting-bench-"))
BROKER = "redis://127.0.0.1:6379/13"
QUEUE = f"alerting-bench-{os.getpid()}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fabric_ops.settings")
os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/fabricops_alerting_bench")
os.environ.update(
    FABRIC_OPS_VAR_DIR=str(TMP), CELERY_BROKER_URL=BROKER, CELERY_RESULT_BACKEND=BROKER,
    FABRIC_OPS_ALERTING_QUEUE=QUEUE, FABRIC_OPS_ALERTING_DISPATCH="celery",
)  # fmt: skip
os.environ.setdefault("FABRIC_OPS_LOG_LEVEL", "WARNING")

TARGET_BEYOND_GROUP_WAIT_P50_S = 1.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Receiver:
    """A loopback webhook that records when each incident's notification arrived."""

    def __init__(self, host: str = "127.21.1.1"):
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                now = time.time()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                for alert in body["alerts"]:
                    key = alert["labels"].get("incident", "")
                    if key in outer.arrivals:
                        outer.duplicates += 1
                    else:
                        outer.arrivals[key] = now
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def prepare_database(url: str) -> None:
    """PostgreSQL: create the scratch database if missing, drop its schema; then migrate from scratch."""
    import dj_database_url

    cfg = dj_database_url.parse(url)
    if cfg["ENGINE"].endswith("postgresql"):
        import psycopg
        from psycopg import sql

        if "bench" not in cfg["NAME"]:
            sys.exit(f"benchmarks/alerting.py: refusing to drop the schema of {cfg['NAME']!r} (no 'bench' in it)")
        conninfo = {"host": cfg["HOST"] or "127.0.0.1", "port": cfg["PORT"] or 5432, "user": cfg["USER"] or "postgres"}
        if cfg.get("PASSWORD"):
            conninfo["password"] = cfg["PASSWORD"]
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cfg["NAME"])))
        with psycopg.connect(dbname=cfg["NAME"], autocommit=True, **conninfo) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="incidents opened per second")
    parser.add_argument("--group-wait", type=float, default=1.0)
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads", "solo"])
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="worker threads (or prefork processes)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "alerting.json"))
    args = parser.parse_args()

    import django
    import redis

    django.setup()
    prepare_database(os.environ["DATABASE_URL"])
    from fabric_ops.alerting.models import Receiver as ReceiverRow
    from fabric_ops.alerting.models import Route
    from fabric_ops.health.models import Incident

    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()
    sink = Receiver()
    hook = ReceiverRow.objects.create(name="bench", kind="webhook", url=sink.url, backoff_s=0.5)
    root = Route.objects.get(parent__isnull=True)
    root.receiver, root.group_by, root.group_wait_s = hook, ["incident"], args.group_wait
    root.save()

    celery = shutil.which("celery", path=str(Path(sys.executable).parent))
    worker = subprocess.Popen(
        [celery, "-A", "fabric_ops", "worker", f"--pool={args.pool}", f"--concurrency={args.concurrency}", "-Q", QUEUE,
         "-n", f"{QUEUE}@%h", "-l", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(TMP / "worker.log").open("wb"),
    )  # fmt: skip
    from fabric_ops.celery import app

    for _ in range(100):  # wait until the worker answers, so its start-up is not counted
        if app.control.ping(destination=[f"{QUEUE}@{platform.node()}"], timeout=0.5):
            break
        if worker.poll() is not None:
            print((TMP / "worker.log").read_text()[-3000:], file=sys.stderr)
            return 1
    opened: dict[str, float] = {}
    save_ms: list[float] = []
    try:
        started = time.monotonic()
        for n in range(args.incidents):
            time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
            t0 = time.time()
            incident = Incident.objects.create(
                kind="link-down", root_key=f"link:bench-{n}", status="needs-human", severity="major",
                summary=f"bench link {n} down", scope_kind="link", device=f"bench-leaf{n % 32}",
                interface=f"Et{n}", fabric="bench",
            )  # fmt: skip
            opened[str(incident.pk)] = t0
            save_ms.append((time.time() - t0) * 1000)
        deadline = time.monotonic() + args.group_wait + 60
        while len(sink.arrivals) < len(opened) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        sink.server.shutdown()
        broker.flushdb()
    latencies = [sink.arrivals[k] - t0 for k, t0 in opened.items() if k in sink.arrivals]
    if len(latencies) < len(opened):
        print(f"{len(opened) - len(latencies)} notifications missing; worker log tail:", file=sys.stderr)
        print((TMP / "worker.log").read_text()[-3000:], file=sys.stderr)
    if not latencies:
        return 1
    beyond = [lat - args.group_wait for lat in latencies]
    result = {
        "benchmark": "alerting: incident opened -> webhook received (real Celery worker, Redis broker)",
        "database": os.environ["DATABASE_URL"].split(":", 1)[0],
        "incidents": len(opened),
        "received": len(latencies),
        "duplicates": sink.duplicates,
        "rate_per_s": args.rate,
        "group_wait_s": args.group_wait,
        "worker_pool": args.pool,
        "worker_concurrency": args.concurrency,
        "latency_p50_s": round(percentile(latencies, 50), 4),
        "latency_p99_s": round(percentile(latencies, 99), 4),
        "latency_max_s": round(max(latencies), 4),
        "beyond_group_wait_p50_s": round(percentile(beyond, 50), 4),
        "beyond_group_wait_p99_s": round(percentile(beyond, 99), 4),
        "beyond_group_wait_mean_s": round(statistics.mean(beyond), 4),
        "incident_save_p50_ms": round(percentile(save_ms, 50), 2),
        "target_beyond_group_wait_p50_s": TARGET_BEYOND_GROUP_WAIT_P50_S,
        "target_met": percentile(beyond, 50) <= TARGET_BEYOND_GROUP_WAIT_P50_S and len(latencies) == len(opened),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "node": platform.node()},
    }
    rows = [
        ("incidents opened / notified", f"{result['incidents']} / {result['received']} (dup {result['duplicates']})"),
        ("group_wait", f"{args.group_wait:.3f} s"),
        ("latency p50 / p99 / max", f"{result['latency_p50_s']:.3f} / {result['latency_p99_s']:.3f} / "
                                    f"{result['latency_max_s']:.3f} s"),
        ("beyond group_wait p50 / p99", f"{result['beyond_group_wait_p50_s']:.3f} / "
                                        f"{result['beyond_group_wait_p99_s']:.3f} s (target p50 <= 1 s)"),
        ("incident save + alert raise p50", f"{result['incident_save_p50_ms']:.1f} ms"),
        ("target met", str(result["target_met"])),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(TMP, ignore_errors=True)
    return 0 if result["target_met"] else 2


if __name__ == "__main__":
    sys.exit(main())
