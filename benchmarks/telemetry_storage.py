"""Micro benchmark: telemetry points/s into a real InfluxDB, FabricOps' writer vs the naive way, in one run.

Starts Debian's influxd (private data dir, free loopback port) and the write-path proxy, then writes realistic
interface points (7 tags, 5 fields, like the collector's ``interface`` measurement) three ways, each into its own
database, and checks that every point arrived (a benchmark that loses points would be meaningless):

* ``fabric_ops``: :class:`fabric_ops.telemetry.writer.InfluxWriter` (own batching thread, SYNCHRONOUS
  influxdb-client WriteApi, 5000-line batches), timed from the first ``write()`` until ``flush()`` returns;
* ``naive``: the baseline of the issue, one influxdb-client ``Point`` per update written with a SYNCHRONOUS
  WriteApi (one HTTP request per point);
* ``client_batching`` (reference): influxdb-client's own batching WriteApi fed ``Point`` objects, closed at the
  end (its close() flushes);
* ``server_ceiling`` (reference): pre-encoded 5000-line bodies POSTed straight to influxd's ``/write`` with no
  client library and no proxy: what this influxd on this machine can ingest at all.

Also reports the encode-only rate of :func:`encode_event` (the CPU ceiling of the writer on one core).
Everything runs on this machine at once (influxd, the proxy and the writer share its cores), so the absolute
figures are a floor; the ratio is the point.

Usage: ``.venv/bin/python benchmarks/telemetry_storage.py [--points 200000] [--naive-points 3000]``
Output: a table on stdout, JSON in benchmarks/results/telemetry_storage.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from influxdb_client import InfluxDBClient, Point, WriteOptions  # noqa: E402
from influxdb_client.client.write_api import SYNCHRONOUS  # noqa: E402

from fabric_ops.telemetry.influxd import LocalInfluxd, free_port, wait_for_port  # noqa: E402
from fabric_ops.telemetry.points import TelemetryEvent, encode_event  # noqa: E402
from fabric_ops.telemetry.query import InfluxQuery  # noqa: E402
from fabric_ops.telemetry.writer import InfluxWriter  # noqa: E402

HOST = "127.14.0.200"
BASE = 1_750_000_000_000_000_000


def make_events(count: int) -> list[TelemetryEvent]:
    """``count`` interface points over 64 switches x 64 ports, 1 s apart per series."""
    events = []
    for n in range(count):
        sw, port, tick = n % 64, (n // 64) % 64, n // 4096
        events.append(
            TelemetryEvent(
                "interface",
                BASE + tick * 1_000_000_000,
                {
                    "fabric": "dc1",
                    "site": "ams1",
                    "device": f"leaf{sw:03d}",
                    "role": "leaf",
                    "interface": f"Ethernet{port + 1}/1",
                    "link": f"leaf{sw:03d}:Ethernet{port + 1}/1--spine{port % 8:02d}:Ethernet{sw + 1}/1",
                    "peer": f"spine{port % 8:02d}",
                },
                {
                    "in_bps": 1.0e9 + n,
                    "out_bps": 2.5e9 - n,
                    "in_errors": n % 3,
                    "out_discards": 0,
                    "oper_up": True,
                },
            )
        )
    return events


def to_point(event: TelemetryEvent) -> Point:
    point = Point(event.name).time(event.timestamp_ns)
    for key, value in event.tags.items():
        point.tag(key, value)
    for key, value in event.fields.items():
        point.field(key, value)
    return point


def run_fabric_ops(url: str, bucket: str, events: list[TelemetryEvent], spool: Path) -> float:
    writer = InfluxWriter(url=url, bucket=bucket, spool_dir=spool, queue_max_points=max(100_000, len(events)))
    writer.start()
    started = time.perf_counter()
    for event in events:
        writer.write(event)
    if not writer.flush(600):
        raise SystemExit(f"fabric_ops writer did not deliver everything: {writer.stats()}")
    elapsed = time.perf_counter() - started
    stats = writer.close()
    if stats["written"] != len(events) or stats["spooled"] or stats["dropped"]:
        raise SystemExit(f"fabric_ops writer lost or spooled points: {stats}")
    return elapsed


def run_naive(url: str, bucket: str, events: list[TelemetryEvent]) -> float:
    with InfluxDBClient(url=url, token="", org="bench") as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        started = time.perf_counter()
        for event in events:
            write_api.write(bucket, record=to_point(event))
        return time.perf_counter() - started


def run_client_batching(url: str, bucket: str, events: list[TelemetryEvent]) -> float:
    with InfluxDBClient(url=url, token="", org="bench") as client:
        started = time.perf_counter()
        write_api = client.write_api(write_options=WriteOptions(batch_size=5000, flush_interval=1000))
        for event in events:
            write_api.write(bucket, record=to_point(event))
        write_api.close()
        return time.perf_counter() - started


class ProxyProcess:
    """The write-path proxy in a child process on a free port."""

    def __init__(self, upstream: str):
        port = free_port(HOST)
        self.url = f"http://{HOST}:{port}"
        code = (
            f"import sys; sys.path.insert(0, {str(REPO)!r}); from fabric_ops.telemetry.influx_proxy import InfluxProxy;"
            f"InfluxProxy({self.url!r}, {upstream!r}).serve_forever()"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
        wait_for_port(HOST, port, 15)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def run_ceiling(server_url: str, database: str, events: list[TelemetryEvent]) -> float:
    bodies = ["\n".join(encode_event(e) for e in events[i : i + 5000]).encode() for i in range(0, len(events), 5000)]
    target = f"{server_url}/write?db={database}&precision=n"
    started = time.perf_counter()
    for body in bodies:
        with urllib.request.urlopen(urllib.request.Request(target, data=body, method="POST"), timeout=120) as resp:
            resp.read()
    return time.perf_counter() - started


def run_freshness(url: str, bucket: str, rate: int, seconds: float, spool: Path) -> dict:
    """Write ``rate`` points/s, paced, for ``seconds``; poll InfluxDB every 50 ms for the newest stored ``seq``;
    freshness of a point = when a query first returns it - when write() was called for it."""
    writer = InfluxWriter(url=url, bucket=bucket, spool_dir=spool).start()
    query = InfluxQuery(url, bucket, timeout=30)
    written_at: list[float] = []
    visible: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            series = query.raw('SELECT last("seq") FROM "fresh"')
            if series:
                visible.append((time.monotonic(), int(series[0]["values"][0][1])))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    total = int(rate * seconds)
    tick, per_tick = 0.01, max(1, int(rate * 0.01))
    started = time.monotonic()
    seq = 0
    while seq < total:
        target = started + (seq // per_tick) * tick
        if (delay := target - time.monotonic()) > 0:
            time.sleep(delay)
        now = time.monotonic()
        batch = [
            TelemetryEvent("fresh", BASE + seq + i, {"device": f"leaf{(seq + i) % 64:03d}"}, {"seq": seq + i})
            for i in range(min(per_tick, total - seq))
        ]
        writer.write_many(batch)
        written_at.extend([now] * len(batch))
        seq += len(batch)
    achieved = total / (time.monotonic() - started)
    writer.flush(120)
    time.sleep(0.3)
    done.set()
    poller.join(5)
    stats = writer.close()
    lags, v = [], 0
    for i, at in enumerate(written_at):
        while v < len(visible) and visible[v][1] < i:
            v += 1
        if v == len(visible):
            break
        lags.append(visible[v][0] - at)
    lags.sort()
    pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))], 3)  # noqa: E731
    return {
        "target_points_per_s": rate,
        "achieved_points_per_s": round(achieved),
        "points": total,
        "measured": len(lags),
        "p50_s": pick(0.50),
        "p99_s": pick(0.99),
        "max_s": round(lags[-1], 3),
        "written": stats["written"],
        "spooled": stats["spooled"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=200_000, help="points for the batched writers")
    parser.add_argument("--naive-points", type=int, default=3000, help="points for the one-request-per-point way")
    parser.add_argument("--fresh-rate", type=int, default=10_000, help="points/s for the freshness run")
    parser.add_argument("--fresh-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "telemetry_storage.json")
    args = parser.parse_args()

    events = make_events(args.points)
    line_bytes = sum(len(encode_event(e)) + 1 for e in events[:1000]) / 1000
    started = time.perf_counter()
    for event in events:
        encode_event(event)
    encode_rate = len(events) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory(prefix="fabric-ops-bench-") as tmp:
        server = LocalInfluxd(Path(tmp) / "influxd", host=HOST)
        server.start()
        # The proxy runs in its own process, as in the demo (`manage.py telemetry influx-proxy`), so that it does
        # not share the writer's GIL.
        proxy = ProxyProcess(server.url)
        try:
            results = {}
            plans = [
                ("fabric_ops", events, lambda b, ev: run_fabric_ops(proxy.url, b, ev, Path(tmp) / "spool")),
                ("naive", events[: args.naive_points], lambda b, ev: run_naive(proxy.url, b, ev)),
                ("client_batching", events, lambda b, ev: run_client_batching(proxy.url, b, ev)),
                ("server_ceiling", events, lambda b, ev: run_ceiling(server.url, b.split("/")[0], ev)),
            ]
            for name, batch, run in plans:
                server.create_database(name)
                elapsed = run(f"{name}/autogen", batch)
                stored = InfluxQuery(proxy.url, f"{name}/autogen", timeout=120).count("interface", "in_bps")
                if stored != len(batch):
                    raise SystemExit(f"{name}: wrote {len(batch)} points but InfluxDB holds {stored}")
                results[name] = {
                    "points": len(batch),
                    "seconds": round(elapsed, 3),
                    "points_per_s": len(batch) / elapsed,
                }
                print(f"  {name:<16} {len(batch):>8} points in {elapsed:7.2f} s", flush=True)
            server.create_database("freshness")
            freshness = run_freshness(
                proxy.url, "freshness/autogen", args.fresh_rate, args.fresh_seconds, Path(tmp) / "spool-fresh"
            )
            version = server.version()
        finally:
            proxy.stop()
            server.stop()

    ratio = results["fabric_ops"]["points_per_s"] / results["naive"]["points_per_s"]
    ratio_batching = results["fabric_ops"]["points_per_s"] / results["client_batching"]["points_per_s"]
    print()
    print(f"{'way':<18}{'points':>10}{'points/s':>14}{'fields/s':>14}")
    for name, r in results.items():
        print(f"{name:<18}{r['points']:>10}{r['points_per_s']:>14,.0f}{r['points_per_s'] * 5:>14,.0f}")
    print(f"{'encode only':<18}{len(events):>10}{encode_rate:>14,.0f}")
    ceiling = results["fabric_ops"]["points_per_s"] / results["server_ceiling"]["points_per_s"]
    print(f"\nfabric_ops / naive = {ratio:.1f}x   fabric_ops / client_batching = {ratio_batching:.2f}x")
    print(f"fabric_ops / server_ceiling = {ceiling:.2f} (1.0: as fast as influxd takes pre-encoded batches directly)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other work on this machine adds noise")
    print(
        f"freshness at {freshness['achieved_points_per_s']:,} points/s (write() -> returned by an InfluxQL query): "
        f"p50 {freshness['p50_s']} s, p99 {freshness['p99_s']} s, max {freshness['max_s']} s"
    )
    print(f"average line: {line_bytes:.0f} bytes; InfluxDB {version}; {os.cpu_count()} cores")

    report = {
        "benchmark": "telemetry_storage",
        "influxdb": version,
        "path": "influxdb-client -> write-path proxy (own process) -> influxd 1.6, all on this machine",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "points_per_event": 1,
        "fields_per_point": 5,
        "tags_per_point": 7,
        "avg_line_bytes": round(line_bytes, 1),
        "encode_only_points_per_s": round(encode_rate),
        "results": {k: {**v, "points_per_s": round(v["points_per_s"])} for k, v in results.items()},
        "ratio_fabric_ops_vs_naive": round(ratio, 1),
        "ratio_fabric_ops_vs_client_batching": round(ratio_batching, 2),
        "ratio_fabric_ops_vs_server_ceiling": round(ceiling, 2),
        "freshness": freshness,
        "load_average_at_end": os.getloadavg()[0],
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
