"""Benchmark: the gNMI collector against the limit and the naive baseline, plus end-to-end freshness, in one run.

1. Record ~11 s of a 64-port lab switch's stream on the default profile (PROTO encoding; 1 s and 10 s samples).
2. Replay it flat out from ``--replay-devices`` ReplayTarget gNMI servers in a separate process (so the source is
   not what is measured), and run each client in its own process for ``--duration`` seconds:

   (a) limit: a raw gRPC loop with pygnmi's generated ``gNMIStub``: parse every SubscribeResponse and decode
       every update (path elements, keys, typed value) - no normalisation, no storage; (a0), for reference, the
       same loop reading only the values (no path decoding: a floor no real consumer can go below);
   (b) naive: pygnmi ``subscribe2()`` (StreamSubscriber + telemetryParser) and one influxdb-client ``Point`` per
       update, written synchronously (one write call per notification, i.e. the baseline already batched per
       message, which flatters it);
   (c) FabricOps: :class:`~fabric_ops.telemetry.collector.Collector` end to end into InfluxDB (normalise, rates,
       line protocol, InfluxWriter batches through the write proxy into influxd).

   Reported: updates per CPU-second of the client process (``updates/s per collector core``) and ratios.
3. Freshness: ``--switches`` lab switches (synthetic Clos, ``--ports`` each) served by the lab in a separate
   process on the default profiles, the collector in another; the write proxy's observer takes, for every point
   InfluxDB acknowledged, now - the switch timestamp (the point is queryable from that moment). p50/p99/max.

influxd and the proxy run in this process. Everything shares this machine's cores (2 here, also used by others),
so absolute figures are a floor; CPU-seconds keep the per-core figures honest.

Usage: ``.venv/bin/python benchmarks/telemetry.py [--duration 8] [--switches 64] [--ports 16]``
Output: a table on stdout, JSON in benchmarks/results/telemetry.json.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fabric_ops.settings")

HOST = "127.16.2.1"
REPLAY_BASE = "127.16.3.{}"
LAB_BASE = "127.16.4.1"
CREDENTIAL = "bench"


def _django(secrets: str) -> None:
    os.environ["FABRIC_OPS_SECRETS_DIR"] = secrets
    import django

    django.setup()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def lab_switches(count: int, ports: int, gnmi_port: int):
    from fabric_ops.lab import synthetic

    spines = max(1, count // 4)
    leaves = count - spines
    return synthetic.clos(
        leaves=leaves, spines=spines, hosts_per_leaf=max(1, ports // 2), uplinks=max(1, min(spines, ports // 4)),
        ports=ports, base_address=LAB_BASE, gnmi_port=gnmi_port, fabric="bench",
    )  # fmt: skip


def targets_for(switches):
    from fabric_ops.telemetry.normalise import DeviceMeta
    from fabric_ops.telemetry.subscriptions import default_profile
    from fabric_ops.telemetry.targets import DeviceTarget

    out = []
    for s in switches:
        peers = {i.name: ("", f"{i.peer[0]}:{i.peer[1]}") for i in s.interfaces.values() if i.peer}
        meta = DeviceMeta(s.hostname, s.fabric, s.site, s.role, s.platform, peers)
        out.append(DeviceTarget(meta, s.mgmt_address, s.gnmi_port, CREDENTIAL, default_profile(s.role, s.platform)))
    return out


# --- child roles ------------------------------------------------------------------------------------------------


def role_replay_server(args) -> None:
    from fabric_ops.devices.credentials import resolve
    from fabric_ops.telemetry.replay import ReplayTarget

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    cred = resolve(CREDENTIAL)
    initial, ticks = pickle.loads(Path(args.recording).read_bytes())
    servers = [
        ReplayTarget(REPLAY_BASE.format(i + 1), args.port, cred.username, cred.password, initial, ticks).start()
        for i in range(args.replay_devices)
    ]
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM})
    for s in servers:
        s.stop()


def role_lab(args) -> None:
    from fabric_ops.devices.credentials import resolve
    from fabric_ops.lab.api import Lab

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    lab = Lab.start(lab_switches(args.switches, args.ports, args.port), frontends=("gnmi",),
                    credential=resolve(CREDENTIAL))  # fmt: skip
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM})
    lab.stop()


def _replay_request():
    from fabric_ops.telemetry.subscriptions import default_profile

    return default_profile("leaf", "eos").request()


def role_client_a(args) -> dict:
    """The limit: pygnmi's generated stub, raw loop, every update decoded."""
    import grpc
    from pygnmi.client import gNMIclient
    from pygnmi.spec.v080 import gnmi_pb2_grpc

    from fabric_ops.devices.credentials import resolve

    cred = resolve(CREDENTIAL)
    counts = [0] * args.replay_devices
    stop = threading.Event()
    parse_only = args.role == "client-a0"

    def run(i: int) -> None:
        helper = gNMIclient(target=(REPLAY_BASE.format(i + 1), args.port), username=cred.username,
                            password=cred.password, insecure=True)  # fmt: skip
        request = helper._build_subscriptionrequest(_replay_request())
        channel = grpc.insecure_channel(f"{REPLAY_BASE.format(i + 1)}:{args.port}",
                                        options=[("grpc.max_receive_message_length", 64 << 20)])  # fmt: skip
        done = threading.Event()

        def requests():
            yield request
            done.wait()

        call = gnmi_pb2_grpc.gNMIStub(channel).Subscribe(
            requests(), metadata=(("username", cred.username), ("password", cred.password))
        )
        n = 0
        try:
            for response in call:
                if response.HasField("update"):
                    if parse_only:
                        for u in response.update.update:
                            v = u.val
                            _ = getattr(v, v.WhichOneof("value"))
                            n += 1
                    else:
                        for u in response.update.update:
                            _ = [(e.name, dict(e.key)) for e in u.path.elem]
                            v = u.val
                            _ = getattr(v, v.WhichOneof("value"))
                            n += 1
                    counts[i] = n
                if stop.is_set():
                    break
        finally:
            done.set()
            call.cancel()

    return _timed(args, [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.replay_devices)],
                  stop, lambda: sum(counts))  # fmt: skip


def role_client_b(args) -> dict:
    """The naive baseline: subscribe2 + telemetryParser + one Point per update, synchronous writes."""
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS
    from pygnmi.client import gNMIclient

    from fabric_ops.devices.credentials import resolve

    cred = resolve(CREDENTIAL)
    counts = [0] * args.replay_devices
    stop = threading.Event()
    client = InfluxDBClient(url=args.influx_url, token="", org="fabric_ops", timeout=30_000)
    write_api = client.write_api(write_options=SYNCHRONOUS)

    def run(i: int) -> None:
        with gNMIclient(target=(REPLAY_BASE.format(i + 1), args.port), username=cred.username,
                        password=cred.password, insecure=True) as gc:  # fmt: skip
            sub = gc.subscribe2(subscribe=_replay_request())
            n = 0
            while not stop.is_set():
                try:
                    msg = sub.get_update(timeout=1)
                except TimeoutError:
                    continue
                update = msg.get("update") or {}
                ts = update.get("timestamp", 0)
                points = []
                for u in update.get("update", []):
                    value = u.get("val")
                    if not isinstance(value, int | float | str | bool):
                        value = str(value)
                    path = u["path"]
                    leaf = path.rsplit("/", 1)[-1] + "_" + type(value).__name__  # a field keeps one type
                    points.append(Point("gnmi").tag("device", f"r{i}").tag("path", path).field(leaf, value).time(ts))
                    n += 1
                if points:
                    write_api.write(bucket=f"{args.database}/autogen", record=points)
                counts[i] = n
            sub.close()

    return _timed(args, [threading.Thread(target=run, args=(i,), daemon=True) for i in range(args.replay_devices)],
                  stop, lambda: sum(counts))  # fmt: skip


def _collector(args, targets):
    from fabric_ops.telemetry.collector import Collector, CollectorConfig
    from fabric_ops.telemetry.service import collector_flush_interval
    from fabric_ops.telemetry.writer import InfluxWriter

    writer = InfluxWriter(url=args.influx_url, bucket=f"{args.database}/autogen",
                          flush_interval=collector_flush_interval(),  # what `telemetry collect` uses
                          spool_dir=Path(args.workdir) / f"spool-{args.role}").start()  # fmt: skip
    return Collector(targets, writer, None, CollectorConfig(sync_timeout=120)), writer


def role_client_c(args) -> dict:
    """FabricOps' collector end to end into InfluxDB, against the replay targets."""
    from fabric_ops.lab.state import make_switch

    switches = [make_switch(f"r{i}", "eos", REPLAY_BASE.format(i + 1), ports=1, gnmi_port=args.port)
                for i in range(args.replay_devices)]  # fmt: skip
    for s in switches:
        s.fabric, s.site = "bench", "bench"
    collector, writer = _collector(args, targets_for(switches))
    stop = threading.Event()
    result = _timed(args, [], stop, lambda: sum(s.normaliser.counts.updates for s in collector.sessions.values()),
                    start=collector.start)  # fmt: skip
    collector.stop()
    stats = writer.close(timeout=30)
    result["points_written"] = stats["written"] + stats["replayed"]
    result["points_dropped"] = stats["dropped"]
    result["malformed"] = sum(s.normaliser.counts.malformed for s in collector.sessions.values())
    return result


def role_client_live(args) -> dict:
    """The collector against the live lab (freshness run)."""
    switches = lab_switches(args.switches, args.ports, args.port)
    collector, writer = _collector(args, targets_for(switches))
    stop = threading.Event()
    lags: list[float] = []

    def sample_lag() -> None:  # arrival at the collector - switch timestamp, every device, every 0.5 s
        time.sleep(args.warmup)
        while not stop.wait(0.5):
            lags.extend(s.lag_s for s in collector.sessions.values() if s.synced)

    result = _timed(args, [threading.Thread(target=sample_lag, daemon=True)], stop,
                    lambda: sum(s.normaliser.counts.updates for s in collector.sessions.values()),
                    start=collector.start)  # fmt: skip
    result["arrival_lag_p50_s"] = round(percentile(lags, 0.5), 3)
    result["arrival_lag_p99_s"] = round(percentile(lags, 0.99), 3)
    health = collector.device_health()
    collector.stop()
    stats = writer.close(timeout=30)
    result["synced_devices"] = sum(1 for h in health.values() if h["synced"])
    result["points_written"] = stats["written"] + stats["replayed"]
    result["gaps"] = sum(h["gaps"] for h in health.values())
    return result


def _timed(args, threads, stop, count, start=None) -> dict:
    """Run, skip a warm-up, then measure updates and this process's CPU over ``args.duration`` seconds."""
    for t in threads:
        t.start()
    if start is not None:
        start()
    time.sleep(args.warmup)
    n0, c0, t0 = count(), cpu_seconds(), time.monotonic()
    time.sleep(args.duration)
    n1, c1, t1 = count(), cpu_seconds(), time.monotonic()
    stop.set()
    return {"updates": n1 - n0, "cpu_s": round(c1 - c0, 3), "wall_s": round(t1 - t0, 3),
            "updates_per_cpu_s": round((n1 - n0) / max(c1 - c0, 1e-9)),
            "updates_per_wall_s": round((n1 - n0) / (t1 - t0))}  # fmt: skip


# --- orchestration ----------------------------------------------------------------------------------------------


def spawn(args, role: str, **extra) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--role", role, "--workdir", args.workdir, "--port", str(args.port),
           "--duration", str(args.duration), "--warmup", str(args.warmup), "--switches", str(args.switches),
           "--ports", str(args.ports), "--replay-devices", str(args.replay_devices)]  # fmt: skip
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    cmd += ["--live-duration", str(args.live_duration)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ})


def wait_ready(proc: subprocess.Popen, what: str) -> None:
    line = proc.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"{what} did not start: {line!r}")


def run_client(args, role: str, **extra) -> dict:
    proc = spawn(args, role, **extra)
    out, _ = proc.communicate(timeout=args.duration + args.warmup + 120)
    if proc.returncode:
        raise RuntimeError(f"{role} failed ({proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def record_stream(args, path: Path) -> dict:
    from pygnmi.client import gNMIclient

    from fabric_ops.devices.credentials import resolve
    from fabric_ops.lab.api import Lab
    from fabric_ops.lab.state import make_switch
    from fabric_ops.telemetry.replay import record, split_responses

    cred = resolve(CREDENTIAL)
    switch = make_switch("rec1", "eos", "127.16.2.50", ports=64, gnmi_port=args.port)
    with Lab.start([switch], frontends=("gnmi",), credential=cred):
        helper = gNMIclient(target=("127.16.2.50", args.port), username=cred.username, password=cred.password)
        request = helper._build_subscriptionrequest(_replay_request())
        responses = record("127.16.2.50", args.port, cred.username, cred.password, request, 10.5)
    initial, ticks = split_responses(responses)
    path.write_bytes(pickle.dumps((initial, ticks)))
    from pygnmi.spec.v080 import gnmi_pb2

    per_tick = [sum(len(gnmi_pb2.Notification.FromString(b).update) for b in t) for t in ticks]
    return {"initial_notifications": len(initial), "ticks": len(ticks), "updates_per_cycle": sum(per_tick),
            "updates_initial": sum(len(gnmi_pb2.Notification.FromString(b).update) for b in initial)}  # fmt: skip


class _Skip(Exception):
    pass


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(args) -> None:
    from fabric_ops.devices.credentials import ensure_generated
    from fabric_ops.telemetry.influx_proxy import InfluxProxy
    from fabric_ops.telemetry.influxd import LocalInfluxd

    ensure_generated(CREDENTIAL)
    work = Path(args.workdir)
    server = LocalInfluxd(work / "influxd", host=HOST)
    server.start()
    proxy = InfluxProxy(f"http://{HOST}:0", server.url).start()
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "influxd": server.version()}, "args": vars(args)}  # fmt: skip
    try:
        for db in ("bench_b", "bench_c", "bench_live"):
            server.create_database(db)
        recording = work / "recording.pickle"
        results["recording"] = record_stream(args, recording)
        print(f"recorded: {results['recording']}", flush=True)

        replay = None if args.skip_throughput else spawn(args, "replay-server", recording=recording)
        try:
            if replay is None:
                raise _Skip
            wait_ready(replay, "replay server")
            results["a_raw_stub"] = run_client(args, "client-a")
            print("a:", results["a_raw_stub"], flush=True)
            results["a0_parse_values_only"] = run_client(args, "client-a0")
            print("a0:", results["a0_parse_values_only"], flush=True)
            results["b_naive"] = run_client(args, "client-b", influx_url=proxy.url, database="bench_b")
            print("b:", results["b_naive"], flush=True)
            results["c_fabric_ops"] = run_client(args, "client-c", influx_url=proxy.url, database="bench_c")
            print("c:", results["c_fabric_ops"], flush=True)
        except _Skip:
            pass
        finally:
            if replay is not None:
                replay.send_signal(signal.SIGTERM)
                replay.wait(30)

        fresh: list[float] = []
        measuring = threading.Event()

        def observer(db: str, rp: str, precision: str, body: bytes, status: int) -> None:
            if db != "bench_live" or status >= 300 or not measuring.is_set():
                return
            now = time.time_ns()
            for line in body.split(b"\n"):
                if line:
                    fresh.append((now - int(line.rsplit(b" ", 1)[1])) / 1e9)

        proxy.set_observer(observer)
        lab = spawn(args, "lab")
        wait_ready(lab, "lab")
        try:
            timer = threading.Timer(args.warmup, measuring.set)
            timer.start()
            live = run_client(args, "client-live", influx_url=proxy.url, database="bench_live",
                              duration=args.live_duration)  # fmt: skip
            timer.cancel()
        finally:
            lab.send_signal(signal.SIGTERM)
            lab.wait(60)
        # the last points of the run are flushed at close (not representative); they are still counted
        live["freshness_points"] = len(fresh)
        live["freshness_p50_s"] = round(percentile(fresh, 0.50), 3)
        live["freshness_p99_s"] = round(percentile(fresh, 0.99), 3)
        live["freshness_max_s"] = round(max(fresh), 3) if fresh else None
        results["freshness_live_lab"] = live
    finally:
        proxy.stop()
        server.stop()

    if args.skip_throughput:
        print(json.dumps(results["freshness_live_lab"], indent=2))
        return
    a, b, c = (results[k]["updates_per_cpu_s"] for k in ("a_raw_stub", "b_naive", "c_fabric_ops"))
    results["ratios"] = {"c_over_a": round(c / a, 3), "c_over_b": round(c / b, 2)}
    live = results["freshness_live_lab"]
    results["targets_met"] = {
        "c >= 0.5 a": c >= 0.5 * a,
        "c >= 2 b": c >= 2 * b,
        "p99 freshness <= 2 s": live["freshness_p99_s"] <= 2.0,
    }
    print()
    print(f"{'variant':<34}{'updates/CPU-s':>15}{'updates/s wall':>16}{'CPU s':>8}")
    for key, label in (("a_raw_stub", "(a) raw gNMIStub loop (limit)"),
                       ("a0_parse_values_only", "(a0) ref: parse, values only"),
                       ("b_naive", "(b) subscribe2 + Point/update"),
                       ("c_fabric_ops", "(c) FabricOps collector -> InfluxDB")):  # fmt: skip
        r = results[key]
        print(f"{label:<34}{r['updates_per_cpu_s']:>15,}{r['updates_per_wall_s']:>16,}{r['cpu_s']:>8}")
    ratios = results["ratios"]
    print(f"c/a = {ratios['c_over_a']}  (target >= 0.5)   c/b = {ratios['c_over_b']}  (target >= 2)")
    print(f"live lab: {args.switches} switches x {args.ports} ports, {live['synced_devices']} synced, "
          f"{live['updates_per_wall_s']:,} updates/s, freshness p50 {live['freshness_p50_s']} s, "
          f"p99 {live['freshness_p99_s']} s, max {live['freshness_max_s']} s "
          f"over {live['freshness_points']:,} points; arrival lag p50 {live['arrival_lag_p50_s']} s, "
          f"p99 {live['arrival_lag_p99_s']} s")  # fmt: skip
    print("targets:", results["targets_met"])
    out = REPO / "benchmarks" / "results" / "telemetry.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default="main")
    parser.add_argument("--workdir", default="")
    parser.add_argument("--port", type=int, default=50777)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per throughput variant")
    parser.add_argument("--live-duration", type=float, default=25.0, help="seconds measured in the freshness run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--switches", type=int, default=64)
    parser.add_argument("--ports", type=int, default=16)
    parser.add_argument("--replay-devices", type=int, default=4)
    parser.add_argument("--recording", default="")
    parser.add_argument("--skip-throughput", action="store_true", help="only the live freshness run (no JSON)")
    parser.add_argument("--influx-url", default="")
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    if args.role == "main":
        with tempfile.TemporaryDirectory(prefix="fabric-ops-telemetry-bench-") as tmp:
            args.workdir = tmp
            _django(str(Path(tmp) / "secrets"))
            main(args)
    else:
        _django(str(Path(args.workdir) / "secrets"))
        roles = {"replay-server": role_replay_server, "lab": role_lab, "client-a": role_client_a,
                 "client-a0": role_client_a, "client-b": role_client_b, "client-c": role_client_c,
                 "client-live": role_client_live}  # fmt: skip
        result = roles[args.role](args)
        if result is not None:
            print(json.dumps(result), flush=True)
        os._exit(0)  # gRPC threads of abandoned clients must not keep the process alive
