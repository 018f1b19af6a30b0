#!/usr/bin/env python
"""Benchmark the web UI and API at scale.

1. Topology page of a >= 4,000-switch fabric in headless Chromium (Debian's, driven by Playwright): time from
   navigation to the first full render of the Cytoscape canvas (every node placed, links drawn), then the time a
   pan/zoom takes to paint (interactivity). Target: first full render <= 3 s.
2. API list endpoints under 20 concurrent token-authenticated clients: p50/p95/p99 latency per endpoint.
   Target: p95 <= 100 ms.

    .venv/bin/python benchmarks/web.py [--gpus 26624 --radix 32] [--clients 20] [--requests 2000] [--keep]

The fabric is a rail-optimized 3-tier Clos built with bulk inserts (tests/topology/factories.bulk_clos) in a
scratch database: DATABASE_URL (PostgreSQL, must name a database containing 'bench'; it is dropped and re-migrated)
or, by default, a SQLite file under var/bench/. The server is `manage.py runserver` (threaded, DEBUG on so it serves
the vendored static files) on 127.0.0.1. Results: stdout and benchmarks/results/web.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fabric_ops.settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{BENCH_DIR / 'web.sqlite3'}")
os.environ.setdefault("FABRIC_OPS_LOG_LEVEL", "WARNING")
HOST = "127.0.0.1"  # in ALLOWED_HOSTS of the DEBUG settings
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
TARGETS = {"topology_first_render_s": 3.0, "api_p95_ms": 100.0}
PASSWORD = "bench-pw-0123"
API_ENDPOINTS = ["/api/devices/", "/api/links/", "/api/interfaces/", "/api/push-jobs/", "/api/fabrics/"]


def prepare_database() -> None:
    url = os.environ["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
    elif "bench" not in url.rsplit("/", 1)[-1]:
        sys.exit(f"benchmarks/web.py: refusing to reset {url!r} (no 'bench' in the database name)")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)


def build(gpus: int, radix: int) -> dict:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from fabric_ops.config.models import DeviceJob, PushJob
    from fabric_ops.topology.models import Device, Link
    from fabric_ops.web.roles import assign_role, sync_roles
    from tests.topology.factories import bulk_clos

    started = time.perf_counter()
    fabric = bulk_clos("big", gpus, radix=radix)
    sync_roles()
    user = get_user_model().objects.create_user("bench", password=PASSWORD)
    assign_role(user, "viewer")
    token = Token.objects.create(user=user).key
    # A fabric in trouble: 1 % of its links down and 0.5 % drained (what the topology page must make visible).
    link_ids = list(Link.objects.filter(a_interface__device__fabric=fabric).order_by("id").values_list("id", flat=True))
    Link.objects.filter(id__in=link_ids[::100][:900]).update(state="down")
    Link.objects.filter(id__in=link_ids[50::200][:900]).update(state="drained")
    devices = list(Device.objects.filter(fabric=fabric).order_by("id")[:200])
    for k in range(50):  # some push jobs, so the jobs list has rows
        job = PushJob.objects.create(requested_by="bench", status="succeeded")
        DeviceJob.objects.bulk_create(DeviceJob(job=job, device=d, status="confirmed") for d in devices[k : k + 4])
    return {
        "switches": Device.objects.filter(fabric=fabric).count(),
        "links": Link.objects.filter(a_interface__device__fabric=fabric).count(),
        "build_s": round(time.perf_counter() - started, 1),
        "token": token,
    }


def start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "FABRIC_OPS_DEBUG": "1", "FABRIC_OPS_INFLUX_URL": f"http://{HOST}:9"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{HOST}:{port}/accounts/login/", timeout=2)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("runserver did not come up: " + (proc.stderr.read().decode(errors="replace") if proc.stderr else ""))


def topology_render(base: str, runs: int, all_links: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(120000)
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#who")
        for _ in range(runs):
            started = time.perf_counter()
            page.goto(f"{base}/topology/big/")
            if all_links:  # the operator ticks "all links": every link drawn
                page.wait_for_selector("#cy[data-rendered='1']")
                page.evaluate("() => { document.getElementById('cy').dataset.rendered = '0'; }")
                started = time.perf_counter()
                page.check("#f-all-links")
            page.wait_for_selector("#cy[data-rendered='1']")
            wall = time.perf_counter() - started
            info = page.evaluate(
                "() => { const t = window.fabricTopology;"
                " return {nodes: t.cy.nodes().length, edges: t.cy.edges().length,"
                " renderedMs: t.renderedMs, ...t.timings}; }"
            )
            # Interactivity: one zoom step and a pan, measured to the next painted frame.
            pan_ms = page.evaluate(
                """() => new Promise((resolve) => {
                    const cy = window.fabricTopology.cy, t = performance.now();
                    cy.zoom({level: cy.zoom() * 1.5, renderedPosition: {x: 800, y: 500}});
                    cy.panBy({x: 120, y: 60});
                    requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t)));
                })"""
            )
            results.append({"wall_s": round(wall, 3), "pan_ms": round(pan_ms, 1), **info})
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts / f"bench-topology-big{'-all-links' if all_links else ''}.png"))
        browser.close()
    return {"runs": results, "first_render_s": statistics.median(r["wall_s"] for r in results)}


def api_load(base: str, token: str, clients: int, requests: int) -> dict:
    def one(path: str) -> float:
        req = urllib.request.Request(base + path, headers={"Authorization": f"Token {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as answer:
            answer.read()
            assert answer.status == 200
        return (time.perf_counter() - started) * 1000

    for path in API_ENDPOINTS:  # warm up
        one(path)
    jobs = [API_ENDPOINTS[k % len(API_ENDPOINTS)] for k in range(requests)]
    timings: dict[str, list[float]] = {p: [] for p in API_ENDPOINTS}
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for path, ms in zip(jobs, pool.map(one, jobs), strict=True):
            timings[path].append(ms)
    elapsed = time.perf_counter() - started

    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)

    every = [ms for v in timings.values() for ms in v]
    return {
        "clients": clients,
        "requests": requests,
        "throughput_rps": round(requests / elapsed, 1),
        "p50_ms": pct(every, 0.50),
        "p95_ms": pct(every, 0.95),
        "p99_ms": pct(every, 0.99),
        "per_endpoint": {p: {"p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95)} for p, v in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=26624)  # radix 32: 4,160 switches, 53,248 links
    parser.add_argument("--radix", type=int, default=32)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8719)
    parser.add_argument("--all-links", action="store_true", help="also time drawing every link (slow at scale)")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK) or shutil.which("node") is None:
        sys.exit("needs /usr/bin/chromium and the vendored assets: make chromium web-assets")
    prepare_database()
    built = build(args.gpus, args.radix)
    print(f"fabric: {built['switches']} switches, {built['links']} links (built in {built['build_s']} s)")
    server = start_server(args.port)
    base = f"http://{HOST}:{args.port}"
    try:
        render = topology_render(base, args.runs)
        render_all = topology_render(base, 1, all_links=True) if args.all_links else None
        api = api_load(base, built.pop("token"), args.clients, args.requests)
    finally:
        server.terminate()
        server.wait(10)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "database": os.environ["DATABASE_URL"].split(":")[0]},
        "fabric": built,
        "topology": render,
        "topology_all_links": render_all,
        "api": api,
        "targets": TARGETS,
        "pass": {"topology_first_render": render["first_render_s"] <= TARGETS["topology_first_render_s"],
                 "api_p95": api["p95_ms"] <= TARGETS["api_p95_ms"]},
    }  # fmt: skip
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "web.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("fabric", "topology", "api", "pass")}, indent=2))


if __name__ == "__main__":
    main()
