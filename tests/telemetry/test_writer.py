"""The writer against a real influxd behind the proxy: exact counts, an outage, the spool bound, bad data,
bursts, and SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fabric_ops.telemetry.influxd import free_port
from fabric_ops.telemetry.points import TelemetryEvent
from fabric_ops.telemetry.query import InfluxQuery
from fabric_ops.telemetry.writer import InfluxWriter

from .conftest import HOST

BASE = 1_700_000_000_000_000_000
SEQ = re.compile(rb"seq=(\d+)i")
REPO = Path(__file__).resolve().parents[2]


def event(seq: int, measurement: str = "probe") -> TelemetryEvent:
    return TelemetryEvent(measurement, BASE + seq * 1000, {"device": "leaf1", "interface": "Ethernet1"}, {"seq": seq})


def stored_seqs(query: InfluxQuery, measurement: str = "probe") -> list[int]:
    series = query.raw(f'SELECT "seq" FROM "{measurement}"')
    return [row[1] for row in series[0]["values"]] if series else []


def accounted(stats: dict) -> int:
    """The writer's accounting identity: every accepted point is in exactly one of these."""
    keys = ("written", "replayed", "rejected", "dropped", "spool_points", "queued", "inflight")
    return sum(stats[k] for k in keys)


class DeliveryLog:
    """Proxy observer: the seq numbers InfluxDB accepted, in the order the requests reached it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: list[int] = []
        self.failed_requests = 0

    def __call__(self, db: str, rp: str, precision: str, body: bytes, status: int) -> None:
        with self.lock:
            if 200 <= status < 300:
                self.accepted.extend(int(m) for m in SEQ.findall(body))
            else:
                self.failed_requests += 1

    def first_deliveries(self) -> list[int]:
        seen: set[int] = set()
        order = []
        for seq in self.accepted:
            if seq not in seen:
                seen.add(seq)
                order.append(seq)
        return order


@pytest.mark.timeout(60)
def test_batches_arrive_with_exact_counts(influx, database, tmp_path):
    log = DeliveryLog()
    influx.proxy.set_observer(log)
    writer = InfluxWriter(
        url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "spool", batch_size=1000
    ).start()
    writer.write_many(event(i) for i in range(10_000))
    assert writer.flush(30)
    stats = writer.close()
    assert stats["written"] == 10_000
    assert stats["requests"] == 10  # batches of 1000, not one request per point
    assert (stats["spooled"], stats["dropped"], stats["rejected"], stats["replayed"]) == (0, 0, 0, 0)
    query = InfluxQuery(influx.url, f"{database}/autogen")
    assert query.count("probe", "seq") == 10_000
    assert stored_seqs(query) == list(range(10_000))
    assert log.first_deliveries() == list(range(10_000))


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "outage_s",
    [
        5,
        pytest.param(
            60,
            marks=pytest.mark.skipif(
                not os.environ.get("FABRIC_OPS_SLOW_TESTS"), reason="the 60 s outage runs with FABRIC_OPS_SLOW_TESTS=1"
            ),
        ),
    ],
)
def test_influxd_outage_loses_nothing_and_replays_in_order(influx, database, tmp_path, outage_s):
    """influxd is stopped for ``outage_s`` while points keep coming at ~1000/s; afterwards every point is stored
    once, and the order in which batches reached InfluxDB follows the order they were written."""
    log = DeliveryLog()
    influx.proxy.set_observer(log)
    writer = InfluxWriter(
        url=influx.url,
        bucket=f"{database}/autogen",
        spool_dir=tmp_path / "spool",
        batch_size=200,
        flush_interval=0.2,
        retry_initial=0.1,
        retry_max=1.0,
    ).start()
    produced = 0
    stop_at = 1.5
    restart_at, end_at = stop_at + outage_s, stop_at + outage_s + 2.5
    started = time.monotonic()
    stopped = restarted = False
    saw_unavailable = False
    while (elapsed := time.monotonic() - started) < end_at:
        writer.write_many(event(produced + i) for i in range(10))
        produced += 10
        if elapsed >= stop_at and not stopped:
            influx.server.stop()
            stopped = True
        if elapsed >= restart_at and not restarted:
            assert writer.stats()["spool_points"] > 0
            influx.server.start()
            restarted = True
        saw_unavailable |= writer.stats()["state"] == "unavailable"
        time.sleep(0.01)
    assert writer.flush(60), writer.stats()
    stats = writer.close()
    assert saw_unavailable and log.failed_requests > 0
    assert stats["spooled"] > 0 and stats["replayed"] > 0
    assert stats["written"] + stats["replayed"] == produced == accounted(stats)
    assert (stats["dropped"], stats["rejected"], stats["spool_points"]) == (0, 0, 0)
    query = InfluxQuery(influx.url, f"{database}/autogen")
    assert query.count("probe", "seq") == produced  # exactly once
    assert stored_seqs(query) == list(range(produced))
    assert log.first_deliveries() == list(range(produced))  # in order


@pytest.mark.timeout(60)
def test_spool_bound_drops_oldest_and_counts_them(influx, database, tmp_path):
    dead = f"http://{HOST}:{free_port(HOST)}"  # nothing listens: InfluxDB is down
    spool_dir = tmp_path / "spool"
    writer = InfluxWriter(
        url=dead,
        bucket=f"{database}/autogen",
        spool_dir=spool_dir,
        batch_size=100,
        flush_interval=0.05,
        spool_max_bytes=32_768,
        spool_segment_bytes=4096,
        retry_initial=0.05,
        retry_max=0.2,
    ).start()
    total = 3000
    writer.write_many(event(i) for i in range(total))
    stats = writer.close(timeout=5)
    assert stats["dropped"] > 0
    assert stats["dropped"] + stats["spool_points"] == total == accounted(stats)  # every point accounted for
    assert stats["written"] == 0 and "unreachable" in stats["last_error"]
    kept = stats["spool_points"]

    replay = InfluxWriter(url=influx.url, bucket=f"{database}/autogen", spool_dir=spool_dir).start()
    assert replay.flush(30)
    again = replay.close()
    assert again["replayed"] == kept and again["spool_points"] == 0
    query = InfluxQuery(influx.url, f"{database}/autogen")
    assert stored_seqs(query) == list(range(total - kept, total))  # the newest survived, contiguous


@pytest.mark.timeout(60)
def test_bad_points_are_skipped_and_counted(influx, database, tmp_path):
    log = DeliveryLog()
    influx.proxy.set_observer(log)
    writer = InfluxWriter(
        url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "spool", batch_size=64
    ).start()
    writer.write_many(event(i) for i in range(50))
    assert writer.flush(20)
    lines = [event(i).to_line() for i in range(50, 100)]
    lines[10] = lines[10].replace("seq=60i", 'seq="sixty"')  # field type conflict -> 400 partial write
    lines[30] = "not line protocol at all"  # parse error -> 400
    writer.write_lines(lines)
    assert writer.flush(20)
    stats = writer.close()
    assert stats["rejected"] == 2
    assert stats["written"] == 98
    assert accounted(stats) == 100
    assert (stats["spooled"], stats["dropped"]) == (0, 0)
    assert "400" in stats["last_error"]
    query = InfluxQuery(influx.url, f"{database}/autogen")
    assert stored_seqs(query) == [i for i in range(100) if i not in (60, 80)]


@pytest.mark.timeout(60)
def test_burst_keeps_memory_bounded_and_loses_nothing(influx, database, tmp_path):
    log = DeliveryLog()
    influx.proxy.set_observer(log)
    writer = InfluxWriter(
        url=influx.url,
        bucket=f"{database}/autogen",
        spool_dir=tmp_path / "spool",
        batch_size=500,
        queue_max_points=1000,
        flush_interval=0.5,
    ).start()
    total = 30_000
    peak = 0
    for start in range(0, total, 100):
        writer.write_many(event(i) for i in range(start, start + 100))
        peak = max(peak, writer.stats()["queued"])
    assert writer.flush(60)
    stats = writer.close()
    assert peak <= 1000
    assert stats["spooled"] > 0  # the burst outran the sender and spilled to disk
    assert stats["written"] + stats["replayed"] == total == accounted(stats) and stats["dropped"] == 0
    query = InfluxQuery(influx.url, f"{database}/autogen")
    assert query.count("probe", "seq") == total
    assert log.first_deliveries() == list(range(total))


@pytest.mark.timeout(60)
def test_close_while_down_spools_everything_for_the_next_start(influx, database, tmp_path):
    dead = f"http://{HOST}:{free_port(HOST)}"
    spool_dir = tmp_path / "spool"
    writer = InfluxWriter(url=dead, bucket=f"{database}/autogen", spool_dir=spool_dir, flush_interval=30).start()
    writer.write_many(event(i) for i in range(2500))
    stats = writer.close(timeout=3)
    assert (stats["spool_points"], stats["dropped"], stats["queued"]) == (2500, 0, 0)
    with InfluxWriter(url=influx.url, bucket=f"{database}/autogen", spool_dir=spool_dir) as replay:
        assert replay.flush(30)
        assert replay.stats()["replayed"] == 2500
    assert stored_seqs(InfluxQuery(influx.url, f"{database}/autogen")) == list(range(2500))


@pytest.mark.timeout(60)
def test_sigterm_flushes(influx, database, tmp_path):
    """A process killed with SIGTERM writes what it had queued before it exits."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from tests.telemetry.test_writer import event
        from fabric_ops.telemetry.writer import InfluxWriter, close_on_sigterm
        writer = InfluxWriter(url={influx.url!r}, bucket={database + "/autogen"!r}, spool_dir={str(tmp_path / "s")!r},
                              flush_interval=3600, batch_size=100000, queue_max_points=100000).start()
        close_on_sigterm(writer)
        writer.write_many(event(i) for i in range(4000))
        print("ready", writer.stats()["queued"], flush=True)
        time.sleep(120)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().split() == ["ready", "4000"]
        query = InfluxQuery(influx.url, f"{database}/autogen")
        assert query.count("probe", "seq") == 0  # nothing flushed yet: the interval is an hour
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert query.count("probe", "seq") == 4000


@pytest.mark.timeout(60)
def test_a_partial_batch_leaves_within_the_flush_interval(influx, database, tmp_path):
    """Freshness: a trickle of points (far below batch_size) reaches InfluxDB within ~flush_interval."""
    arrived: dict[int, float] = {}

    def observe(db, rp, precision, body, status):
        if status == 204:
            now = time.monotonic()
            for m in SEQ.findall(body):
                arrived.setdefault(int(m), now)

    influx.proxy.set_observer(observe)
    writer = InfluxWriter(
        url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "s", batch_size=5000, flush_interval=0.3
    ).start()
    sent: dict[int, float] = {}
    for seq in range(60):
        sent[seq] = time.monotonic()
        writer.write(event(seq))
        time.sleep(0.03)
    assert writer.flush(20)
    writer.close()
    latencies = sorted(arrived[seq] - sent[seq] for seq in sent)
    assert len(latencies) == 60
    assert latencies[-1] < 0.3 + 0.4, latencies[-5:]  # the interval plus scheduling slack on a busy machine
    assert writer.stats()["requests"] < 20  # and still batched, not one request per point


@pytest.mark.timeout(60)
def test_a_batch_bad_throughout_is_rejected_within_the_bisection_budget(influx, database, tmp_path):
    from fabric_ops.telemetry.writer import BISECTION_BUDGET

    writer = InfluxWriter(url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "s", batch_size=2000)
    writer.start()
    writer.write(event(0))
    assert writer.flush(20)
    # every line now conflicts with the stored integer type of "seq"
    writer.write_lines(event(i).to_line().replace(f"seq={i}i", f'seq="{i}"') for i in range(1, 2001))
    assert writer.flush(60)
    stats = writer.close()
    assert stats["rejected"] == 2000 and stats["written"] == 1
    assert stats["requests"] <= 2 + 1 + BISECTION_BUDGET  # not two requests per line
    assert stored_seqs(InfluxQuery(influx.url, f"{database}/autogen")) == [0]


@pytest.mark.timeout(60)
def test_a_disk_that_refuses_the_spool_counts_drops(tmp_path):
    """A real EFBIG from the kernel (RLIMIT_FSIZE) while spooling: the points are counted as dropped, the writer
    keeps running, and every point is still accounted for."""
    script = textwrap.dedent(
        f"""
        import json, resource, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.telemetry.test_writer import event, accounted
        from fabric_ops.telemetry.writer import InfluxWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
        writer = InfluxWriter(url="http://{HOST}:{free_port(HOST)}", bucket="x/autogen",
                              spool_dir={str(tmp_path / "s")!r}, batch_size=100, flush_interval=0.05,
                              spool_segment_bytes=1 << 20, retry_initial=0.05, retry_max=0.1).start()
        writer.write_many(event(i) for i in range(2000))
        stats = writer.close(timeout=3)
        print(json.dumps({{"stats": stats, "accounted": accounted(stats)}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=50)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    stats = result["stats"]
    assert stats["dropped"] > 0 and stats["spool_points"] > 0
    assert result["accounted"] == 2000
    assert "write failed" in done.stderr and "points dropped" in done.stderr  # logged, not silent


@pytest.mark.timeout(30)
def test_from_settings_with_gzip(influx, database, settings, tmp_path):
    settings.FABRIC_OPS_INFLUX_URL = influx.url
    settings.FABRIC_OPS_INFLUX_BUCKET = f"{database}/autogen"
    settings.FABRIC_OPS_INFLUX_GZIP = True
    settings.FABRIC_OPS_INFLUX_TOKEN = "user:pass-not-for-logs"
    writer = InfluxWriter.from_settings(spool_dir=tmp_path / "s").start()
    assert "pass-not-for-logs" not in repr(writer.describe()) and writer.describe()["token"] == "***"
    writer.write_many(event(i) for i in range(1500))
    assert writer.flush(20)
    writer.close()
    assert InfluxQuery(influx.url, f"{database}/autogen").count("probe", "seq") == 1500
