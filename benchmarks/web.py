#!/usr/bin/env python
"""Benchmark the web UI and API at scale.

1. Topology page of a >= 4,000-switch fabric in headless Chromium (Debian's, driven by Playwright): time from
   navigation to the first full render of the Cytoscape canvas (every node placed, links drawn), then the time a
   pan/zoom takes to paint (interactivity). Target: first full render <= 3 s.
2. API list endpoints under 20 concurrent token-authenticated clients: p50/p95/p99 latency per endpoint.
   Target: p95 <= 100 ms.

    .venv/bin/python benchmarks/web.py [--gpus 26624 --radix 32] [--clients 20] [--requests 2000] [--reuse]
        [--server gunicorn|runserver] [--workers 4] [--database-url postgresql://postgres@127.0.0.1:5432/x_bench]
        [--skip-topology] [--instructions]

``--instructions``: CPU instructions per request of each API endpoint, counted by valgrind's callgrind in a
process with the server's settings (the difference between N requests and none, after the same warm-up): unlike
times, the count does not depend on how busy the machine is. Several minutes (valgrind runs Python ~50x slower).

The fabric is a rail-optimized 3-tier Clos built with bulk inserts (tests/topology/factories.bulk_clos) in a
scratch database: --database-url / DATABASE_URL (PostgreSQL, must name a database containing 'bench'; its schema is
dropped and re-migrated unless --reuse finds the fabric already built) or a SQLite file under var/bench/.

Server, by default the production shape (docker/Dockerfile): gunicorn with --workers sync workers, DEBUG off
(FABRIC_OPS_DEBUG=0, a throwaway secret key, no HTTPS redirect or HSTS since this is plain HTTP on loopback).
With DEBUG off Django serves no static files, so they are collected under var/bench/static and gunicorn runs
``benchmarks.web:wsgi_app()``: Django plus /static/ from those files (what the web server in front does).
``--server runserver`` is the previous setup (development server, threads, DEBUG on) for comparison.

Topology: the first page load after the server starts is timed on its own ("cold": each process builds the fabric's
structure cache, the browser has no cached scripts); then every worker is warmed with concurrent graph requests and
--runs loads are timed ("warm", the target's figure: an operator opening the page of a running server).
Results: a table on stdout, compared with the targets and the previous figures, and benchmarks/results/web.json.
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
os.environ.setdefault("FABRIC_OPS_LOG_LEVEL", "WARNING")
HOST = "127.0.0.1"  # in the default ALLOWED_HOSTS
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
TARGETS = {"topology_first_render_s": 3.0, "api_p95_ms": 100.0}
# The figures of the production shape before the API work (docs/benchmarks.md, 2026-11-28 03:19 UTC, load
# average ~5): what each run is compared with. Before that: runserver + SQLite, DEBUG on, p95 1,377 ms at 40 req/s.
PREVIOUS = {
    "setup": "gunicorn x4 + PostgreSQL before the API work (2026-11-28)",
    "topology_first_render_s": 1.73,  # median of 5 warm runs
    "topology_min_max_s": "1.36 / 2.50",
    "topology_cold_s": 3.79,
    "pan_ms": 72.0,
    "api_p50_ms": 340.0,
    "api_p95_ms": 694.0,
    "api_p99_ms": 1032.0,
    "api_rps": 54.5,
    "api_queries": "4-5",
    "api_python_cpu_ms": "8.0-16.6",
    # callgrind, instructions per request (--instructions) of the code before the API work, same fabric and settings
    "api_instructions": {
        "/api/devices/": 67.0e6,
        "/api/links/": 63.1e6,
        "/api/interfaces/": 47.0e6,
        "/api/push-jobs/": 33.1e6,
        "/api/fabrics/": 13.8e6,
    },
}
PASSWORD = "bench-pw-0123"
FABRIC = "big"
API_ENDPOINTS = ["/api/devices/", "/api/links/", "/api/interfaces/", "/api/push-jobs/", "/api/fabrics/"]


def prepare_database(reuse: bool) -> bool:
    """Migrated scratch database; True when ``reuse`` found the fabric already built there."""
    url = os.environ["DATABASE_URL"]
    import django

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (reuse and path.exists()):
            path.unlink(missing_ok=True)
    elif "bench" not in url.rsplit("/", 1)[-1]:
        sys.exit(f"benchmarks/web.py: refusing to reset {url!r} (no 'bench' in the database name)")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if reuse:
        from fabric_ops.topology.models import Fabric

        try:
            if Fabric.objects.filter(name=FABRIC).exists():
                call_command("migrate", verbosity=0)  # new indexes since the build
                return True
        except Exception:  # an empty or foreign database: rebuild it
            pass
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    return False


def build(gpus: int, radix: int) -> dict:
    from django.contrib.auth import get_user_model

    from fabric_ops.config.models import DeviceJob, PushJob
    from fabric_ops.topology.models import Device, Link
    from fabric_ops.web.roles import assign_role, sync_roles
    from tests.topology.factories import bulk_clos

    started = time.perf_counter()
    fabric = bulk_clos(FABRIC, gpus, radix=radix)
    sync_roles()
    user = get_user_model().objects.create_user("bench", password=PASSWORD)
    assign_role(user, "viewer")
    # A fabric in trouble: 1 % of its links down and 0.5 % drained (what the topology page must make visible).
    link_ids = list(Link.objects.filter(a_interface__device__fabric=fabric).order_by("id").values_list("id", flat=True))
    Link.objects.filter(id__in=link_ids[::100][:900]).update(state="down")
    Link.objects.filter(id__in=link_ids[50::200][:900]).update(state="drained")
    devices = list(Device.objects.filter(fabric=fabric).order_by("id")[:200])
    for k in range(50):  # some push jobs, so the jobs list has rows
        job = PushJob.objects.create(requested_by="bench", status="succeeded")
        DeviceJob.objects.bulk_create(DeviceJob(job=job, device=d, status="confirmed") for d in devices[k : k + 4])
    from django.db import connection

    if connection.vendor == "postgresql":  # what autovacuum does to a production database after a bulk load
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {"build_s": round(time.perf_counter() - started, 1)}


def describe() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from fabric_ops.topology.models import Device, Interface, Link

    token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username="bench"))
    return {
        "switches": Device.objects.filter(fabric__name=FABRIC).count(),
        "links": Link.objects.filter(a_interface__device__fabric__name=FABRIC).count(),
        "interfaces": Interface.objects.count(),
        "database": connection.vendor,
        "token": token.key,
    }


def collect_static() -> Path:
    from django.core.management import call_command
    from django.test import override_settings

    target = BENCH_DIR / "static"
    with override_settings(STATIC_ROOT=target):
        call_command("collectstatic", interactive=False, clear=True, verbosity=0)
    return target


def server_env(kind: str) -> dict[str, str]:
    env = {**os.environ, "FABRIC_OPS_INFLUX_URL": f"http://{HOST}:9"}
    if kind == "runserver":
        return {**env, "FABRIC_OPS_DEBUG": "1"}
    return {
        **env,
        "FABRIC_OPS_DEBUG": "0",
        "FABRIC_OPS_SECRET_KEY": "bench-" + os.urandom(24).hex(),
        # Plain HTTP on loopback (production terminates TLS in front): no redirect, no HSTS. The session cookie
        # stays Secure; Chromium accepts Secure cookies from http://127.0.0.1 (a potentially trustworthy origin).
        "FABRIC_OPS_SECURE_SSL_REDIRECT": "0",
        "FABRIC_OPS_HSTS_SECONDS": "0",
        "FABRIC_OPS_ALLOWED_HOSTS": HOST,
    }


def start_server(kind: str, port: int, workers: int, static_root: Path | None = None) -> subprocess.Popen:
    if kind == "runserver":
        argv = [sys.executable, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"]
    else:  # what docker/Dockerfile runs
        gunicorn = Path(sys.executable).with_name("gunicorn")
        argv = [str(gunicorn), "benchmarks.web:wsgi_app()", "--bind", f"{HOST}:{port}", "--workers", str(workers),
                "--timeout", "60", "--log-level", "warning"]  # fmt: skip
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    log = BENCH_DIR / f"{kind}.log"  # a file, not a pipe: a full pipe would block the server's logging
    with log.open("wb") as sink:
        env = {**server_env(kind), "BENCH_STATIC_ROOT": str(static_root or "")}
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180  # 4 workers importing Django on a busy machine
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{HOST}:{port}/api/health/live/", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.kill()
    sys.exit(f"{kind} did not come up: {log.read_text(errors='replace')[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()  # gunicorn: graceful, workers finish their request
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wsgi_app() -> object:
    """gunicorn's application (``benchmarks.web:wsgi_app()``): Django, with /static/ answered from the collected
    files as the web server in front of gunicorn does in production (DEBUG off: Django serves no static files)."""
    import mimetypes

    from django.core.wsgi import get_wsgi_application

    django_app = get_wsgi_application()
    root = Path(os.environ["BENCH_STATIC_ROOT"]).resolve()

    def application(environ: dict, start_response: object) -> object:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/static/"):
            return django_app(environ, start_response)
        file = (root / path.removeprefix("/static/")).resolve()
        if root not in file.parents or not file.is_file():
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(file.stat().st_size)),
                                  ("Cache-Control", "max-age=3600")])  # fmt: skip
        return environ["wsgi.file_wrapper"](file.open("rb"))

    return application


TIMINGS_JS = """() => {
    const t = window.fabricTopology, nav = performance.getEntriesByType('navigation')[0];
    const graph = performance.getEntriesByType('resource').filter((r) => r.name.includes('/graph.json')).pop();
    return {nodes: t.cy.nodes().length, edges: t.cy.edges().length, renderedMs: t.renderedMs, ...t.timings,
            htmlMs: Math.round(nav.responseEnd - nav.startTime), domReadyMs: Math.round(nav.domContentLoadedEventEnd),
            graphBytes: graph ? graph.encodedBodySize : null, graphJsonBytes: graph ? graph.decodedBodySize : null,
            graphServerMs: graph ? Math.round(graph.responseStart - graph.requestStart) : null};
}"""


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
        cold = None
        for run in range(runs + 1):
            if run == 1:  # warm every worker's structure cache (concurrent requests spread over the workers)
                page.evaluate(
                    """async (n) => { const url = document.getElementById('cy').dataset.graphUrl + '?links=auto';
                        await Promise.all(Array.from({length: n}, () => fetch(url).then((r) => r.text()))); }""",
                    16,
                )
            started = time.perf_counter()
            page.goto(f"{base}/topology/{FABRIC}/")
            if all_links:  # the operator ticks "all links": every link drawn
                page.wait_for_selector("#cy[data-rendered='1']")
                page.evaluate("() => { document.getElementById('cy').dataset.rendered = '0'; }")
                started = time.perf_counter()
                page.check("#f-all-links")
            page.wait_for_selector("#cy[data-rendered='1']")
            wall = time.perf_counter() - started
            info = page.evaluate(TIMINGS_JS)
            # Interactivity: one zoom step and a pan, measured to the next painted frame.
            pan_ms = page.evaluate(
                """() => new Promise((resolve) => {
                    const cy = window.fabricTopology.cy, t = performance.now();
                    cy.zoom({level: cy.zoom() * 1.5, renderedPosition: {x: 800, y: 500}});
                    cy.panBy({x: 120, y: 60});
                    requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t)));
                })"""
            )
            row = {"wall_s": round(wall, 3), "pan_ms": round(pan_ms, 1), **info}
            if run == 0:
                cold = row
            else:
                results.append(row)
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts / f"bench-topology-big{'-all-links' if all_links else ''}.png"))
        browser.close()
    walls = [r["wall_s"] for r in results]
    return {"runs": results, "first_render_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "pan_ms": statistics.median(r["pan_ms"] for r in results), "cold": cold,
            "cold_s": cold["wall_s"]}  # fmt: skip


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def api_load(base: str, token: str, clients: int, requests: int) -> dict:
    def one(path: str) -> float:
        req = urllib.request.Request(base + path, headers={"Authorization": f"Token {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as answer:
            answer.read()
            assert answer.status == 200
        return (time.perf_counter() - started) * 1000

    for _ in range(3):  # warm up every worker's connections and caches
        for path in API_ENDPOINTS:
            one(path)
    jobs = [API_ENDPOINTS[k % len(API_ENDPOINTS)] for k in range(requests)]
    timings: dict[str, list[float]] = {p: [] for p in API_ENDPOINTS}
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for path, ms in zip(jobs, pool.map(one, jobs), strict=True):
            timings[path].append(ms)
    elapsed = time.perf_counter() - started
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


def api_profile(token: str, repeat: int = 5) -> dict:
    """Per endpoint, in this process and one request at a time: SQL queries, time in SQL and in total (median),
    and the CPU time of Django's side (best of ``repeat``: the least disturbed by a busy machine). What a single
    request costs without queueing; the load test above adds the concurrency."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST=HOST)
    out = {}
    for path in API_ENDPOINTS:
        client.get(path)
        totals, sqls, counts, cpus = [], [], [], []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                started, cpu = time.perf_counter(), time.process_time()
                answer = client.get(path)
                totals.append((time.perf_counter() - started) * 1000)
                cpus.append((time.process_time() - cpu) * 1000)
            assert answer.status_code == 200, (path, answer.status_code)
            counts.append(len(ctx.captured_queries))
            sqls.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        out[path] = {"queries": max(counts), "sql_ms": round(statistics.median(sqls), 1),
                     "total_ms": round(statistics.median(totals), 1), "python_cpu_ms": round(min(cpus), 1),
                     "bytes": len(answer.content)}  # fmt: skip
    return out


INSTRUCTIONS_WARMUP = 3  # requests per endpoint before counting: connections, caches, the user's permissions


def api_instructions(token: str, count: int = 10) -> dict[str, float]:
    """Instructions per request of each endpoint: callgrind's total for ``count`` requests minus its total for
    none, in processes with the server's settings (DEBUG off) that make the same warm-up requests first."""
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    env = {**server_env("gunicorn"), "PYTHONHASHSEED": "0", "BENCH_TOKEN": token}

    def total(path: str, n: int) -> int:
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
                "--count-requests", path, str(n)]  # fmt: skip
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        for line in done.stderr.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1].replace(",", "").strip())
        raise RuntimeError(f"no callgrind total for {path}: {done.stderr[-2000:]}")

    base = total(API_ENDPOINTS[0], 0)
    return {path: round((total(path, count) - base) / count) for path in API_ENDPOINTS}


def count_requests(path: str, n: int) -> None:
    """The process callgrind counts (``--count-requests PATH N``): warm up every endpoint, then ``n`` GETs of
    ``path`` through the WSGI application (all middleware), as gunicorn would call it."""
    import gc
    import io

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()

    def get(url: str) -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": url, "QUERY_STRING": "", "SERVER_NAME": HOST,
                   "SERVER_PORT": "80", "HTTP_HOST": HOST, "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
                   "wsgi.errors": sys.stderr, "REMOTE_ADDR": HOST, "SERVER_PROTOCOL": "HTTP/1.1",
                   "HTTP_AUTHORIZATION": f"Token {os.environ['BENCH_TOKEN']}"}  # fmt: skip
        status: list[str] = []
        b"".join(app(environ, lambda code, headers, *_: status.append(code)))
        assert status[0].startswith("200"), (url, status)

    for url in API_ENDPOINTS * INSTRUCTIONS_WARMUP:
        get(url)
    gc.collect()  # start-up garbage is not collected inside the counted requests (one full collection: ~8M)
    for _ in range(n):
        get(path)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def table(result: dict) -> str:
    topo, api, prev = result["topology"], result["api"], PREVIOUS
    rows = [
        ("topology first full render, warm median s", topo["first_render_s"], prev["topology_first_render_s"],
         f"<= {TARGETS['topology_first_render_s']}"),
        ("  min / max over runs, s", f"{topo['min_s']} / {topo['max_s']}", prev["topology_min_max_s"], ""),
        ("  cold server and browser, s", topo["cold_s"], prev["topology_cold_s"], ""),
        ("  zoom + pan repaint, median ms", topo["pan_ms"], prev["pan_ms"], "interactive"),
        ("API p50 ms", api["p50_ms"], prev["api_p50_ms"], ""),
        ("API p95 ms", api["p95_ms"], prev["api_p95_ms"], f"<= {TARGETS['api_p95_ms']}"),
        ("API p99 ms", api["p99_ms"], prev["api_p99_ms"], ""),
        ("API throughput req/s", api["throughput_rps"], prev["api_rps"], ""),
    ]  # fmt: skip
    for path, figures in api["per_endpoint"].items():
        rows.append((f"  {path} p50 / p95 ms", f"{figures['p50_ms']} / {figures['p95_ms']}", "", ""))
    base = result.get("api_baseline_runserver")
    if base:
        rows += [
            (
                "API p50 / p95 / p99 ms, runserver now",
                "",
                f"{base['p50_ms']} / {base['p95_ms']} / {base['p99_ms']}",
                "",
            ),
            ("API throughput req/s, runserver now", "", base["throughput_rps"], ""),
        ]
    for path, figures in result.get("api_profile", {}).items():
        rows.append((f"  {path} alone: queries, Python CPU ms", f"{figures['queries']}, {figures['python_cpu_ms']}",
                     f"{prev['api_queries']}, {prev['api_python_cpu_ms']}", ""))  # fmt: skip
    for path, count in (result.get("api_instructions") or {}).items():
        before = prev["api_instructions"].get(path)
        rows.append((f"  {path} instructions / request", f"{count / 1e6:.1f} M",
                     f"{before / 1e6:.1f} M (x{before / count:.1f})" if before else "", ""))  # fmt: skip
    head = ("figure", f"this run ({result['setup']})", f"previous ({prev['setup']})", "target")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=26624)  # radix 32: 4,160 switches, 53,248 links
    parser.add_argument("--radix", type=int, default=32)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8719)
    parser.add_argument("--server", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (docker/Dockerfile: 4)")
    parser.add_argument("--database-url", help="default: DATABASE_URL, else SQLite under var/bench/")
    parser.add_argument("--reuse", action="store_true", help="keep the fabric if the database already has it")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--baseline", action="store_true",
                        help="then the same API load on runserver (DEBUG on) over the same database")  # fmt: skip
    parser.add_argument("--skip-topology", action="store_true")
    parser.add_argument("--all-links", action="store_true", help="also time drawing every link (slow at scale)")
    parser.add_argument("--instructions", action="store_true", help="callgrind: instructions per API request")
    parser.add_argument("--count-requests", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_requests:  # the child process of --instructions, under valgrind
        import django

        django.setup()
        count_requests(args.count_requests[0], int(args.count_requests[1]))
        return
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{BENCH_DIR / 'web.sqlite3'}")
    if not os.access(CHROMIUM, os.X_OK) or shutil.which("node") is None:
        sys.exit("needs /usr/bin/chromium and the vendored assets: make chromium web-assets")
    reused = prepare_database(args.reuse)
    built = {"build_s": None, "reused": True} if reused else build(args.gpus, args.radix)
    fabric = {**built, **describe()}
    token = fabric.pop("token")
    how = "reused" if reused else f"built in {built['build_s']} s"
    print(f"fabric: {fabric['switches']} switches, {fabric['links']} links, {fabric['interfaces']} interfaces"
          f" ({how}, {fabric['database']})")  # fmt: skip
    static_root = collect_static() if args.server == "gunicorn" else None
    setup = f"{args.server}{f' x{args.workers}' if args.server == 'gunicorn' else ''} + {fabric['database']}"
    load = {"before": loadavg()}
    server = start_server(args.server, args.port, args.workers, static_root)
    base = f"http://{HOST}:{args.port}"
    empty = {"first_render_s": None, "min_s": None, "max_s": None, "pan_ms": None, "runs": [], "cold_s": None}
    try:
        render = empty if args.skip_topology else topology_render(base, args.runs)
        print("topology runs:", json.dumps([render.get("cold"), *render["runs"]]), flush=True)
        load["after_topology"] = loadavg()
        render_all = topology_render(base, 1, all_links=True) if args.all_links else None
        if args.skip_api:
            api = {"p50_ms": None, "p95_ms": None, "p99_ms": None, "throughput_rps": None, "per_endpoint": {}}
        else:
            api = api_load(base, token, args.clients, args.requests)
        load["after_api"] = loadavg()
    finally:
        stop_server(server)
    baseline = None
    if args.baseline and not args.skip_api:  # the development server on the same data, right after, same load
        server = start_server("runserver", args.port + 1, 1)
        try:
            baseline = api_load(f"http://{HOST}:{args.port + 1}", token, args.clients, args.requests)
            load["after_baseline"] = loadavg()
        finally:
            stop_server(server)
    profile = api_profile(token)
    instructions = api_instructions(token) if args.instructions else None
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": setup,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": load},
        "fabric": fabric,
        "topology": render,
        "topology_all_links": render_all,
        "api": api,
        "api_baseline_runserver": baseline,
        "api_profile": profile,
        "api_instructions": instructions,
        "targets": TARGETS,
        "previous": PREVIOUS,
        "pass": {
            "topology_first_render": render["first_render_s"] is not None
            and render["first_render_s"] <= TARGETS["topology_first_render_s"],
            "api_p95": api["p95_ms"] is not None and api["p95_ms"] <= TARGETS["api_p95_ms"],
        },
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "web.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    print("API, one request at a time:", json.dumps(profile))
    print(f"load average {load}; pass: {result['pass']}; written to {out / 'web.json'}")


if __name__ == "__main__":
    main()
