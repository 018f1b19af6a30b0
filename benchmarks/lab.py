"""How big a fabric can one lab process emulate while a production-style collector subscribes to every switch?

For each size (switches of PORTS ports, in non-blocking 2-tier pods: 2/3 leaves each cabled to every spine of
its pod and to up to 32 single-NIC GPU hosts, 1/3 spines; pods of at most 96 switches) the benchmark

1. starts the lab in a child process exactly as ``lab up`` does: physics, eAPI, SSH and gNMI front ends, the
   control channel (built from synthetic switches instead of the database, to keep set-up time out of the test);
2. starts a subscriber process (raw gNMI stubs from pygnmi's protos, grpc.aio) that opens one STREAM per switch
   with the production collector's subscription: oper-status ON_CHANGE; PFC, ECN-mark and drop counters SAMPLE 1 s;
   interface counters and transceiver optics SAMPLE 10 s;
3. after a warm-up, measures for a window: gNMI sample ticks and how many ran > 100 ms late (the server's own
   accounting, read over the control channel), updates/s received by the subscriber, the lab process's CPU and
   RSS (from /proc), physics tick length.

A size passes when <= 10% of sample ticks are late. A failing size is retried (``--retries``, default 1: the
neighbours on a shared machine can fail a run on their own); the search stops at the first size that keeps failing.

    .venv/bin/python benchmarks/lab.py                       # sizes 64,128,256,384
    .venv/bin/python benchmarks/lab.py --sizes 256 --measure 60

Prints a table and writes benchmarks/results/lab.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fabric_ops.settings")

BASE_ADDRESS = "127.200.0.1"  # outside every test block and the demo lab's 127.64/16
EAPI_PORT, SSH_PORT, GNMI_PORT = 10443, 10022, 16030
LATE_LIMIT = 0.10
USERNAME, PASSWORD = "bench", "bench-lab-secret"

# (path, mode, sample interval in seconds) -- what fabric_ops' collector subscribes to on a real switch.
SUBSCRIPTION = [
    ("/interfaces/interface/state/oper-status", "ON_CHANGE", 0),
    ("/qos/interfaces/interface/pfc/pfc-priorities/pfc-priority/state/statistics", "SAMPLE", 1),
    ("/qos/interfaces/interface/output/queues/queue/state/ecn-marked-pkts", "SAMPLE", 1),
    ("/qos/interfaces/interface/output/queues/queue/state/dropped-pkts", "SAMPLE", 1),
    ("/interfaces/interface/state/counters", "SAMPLE", 10),
    ("/components/component/transceiver/physical-channels/channel/state", "SAMPLE", 10),
]


def pods(switches: int, ports: int) -> list[dict]:
    """Non-blocking 2-tier pods (every leaf to every spine, 1/3 spines) of at most 1.5 x ports switches."""
    count = -(-switches // (ports * 3 // 2))
    out = []
    for p in range(count):
        size = switches // count + (1 if p < switches % count else 0)
        spines = max(1, size // 3)
        leaves = size - spines
        out.append({"leaves": leaves, "spines": spines, "uplinks": spines, "hosts_per_leaf": min(32, ports - spines)})
    return out


# ----------------------------------------------------------------------------------- the lab child
def serve(args: argparse.Namespace) -> None:
    import ipaddress

    import django

    django.setup()
    from fabric_ops.devices.credentials import Credential
    from fabric_ops.lab.api import Lab
    from fabric_ops.lab.control import ControlServer
    from fabric_ops.lab.synthetic import clos

    switches = []
    for p, pod in enumerate(pods(args.serve, args.ports)):
        switches += clos(
            **pod,
            ports=args.ports,
            platform=["eos", "huawei_vrp"],
            base_address=str(ipaddress.ip_address(BASE_ADDRESS) + len(switches)),
            eapi_port=EAPI_PORT,
            ssh_port=SSH_PORT,
            gnmi_port=GNMI_PORT,
            fabric="bench",
            prefix=f"p{p + 1}-",
            first_index=len(switches),
        )
    began = time.monotonic()
    lab = Lab.start(
        switches,
        credential=Credential(USERNAME, PASSWORD),
        tick=0.2,
        max_duty=args.max_duty,
        thread=not args.no_physics,
    )
    stop = threading.Event()
    control = ControlServer(lab, on_shutdown=stop.set).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    info = {
        "pid": os.getpid(),
        "url": control.url,
        "token": control.token,
        "startup_s": time.monotonic() - began,
        "addresses": [s.mgmt_address for s in switches],
        "ports": sum(len(s.interfaces) for s in switches),
    }
    Path(args.info).write_text(json.dumps(info))
    stop.wait()
    control.stop()
    lab.stop()


# --------------------------------------------------------------------------------- the subscriber
async def _subscribe_one(address: str, stats: dict, stop: asyncio.Event) -> None:
    import grpc
    from pygnmi.spec.v080 import gnmi_pb2

    def path(text: str) -> gnmi_pb2.Path:
        elems = [gnmi_pb2.PathElem(name=part) for part in text.strip("/").split("/")]
        return gnmi_pb2.Path(elem=elems)

    subs = []
    for text, mode, interval in SUBSCRIPTION:
        sub = gnmi_pb2.Subscription(path=path(text), mode=getattr(gnmi_pb2.SubscriptionMode, mode))
        if interval:
            sub.sample_interval = interval * 1_000_000_000
        subs.append(sub)
    request = gnmi_pb2.SubscribeRequest(
        subscribe=gnmi_pb2.SubscriptionList(subscription=subs, mode=gnmi_pb2.SubscriptionList.STREAM, encoding=4)
    )

    async def requests():
        yield request
        await stop.wait()

    metadata = (("username", USERNAME), ("password", PASSWORD))
    async with grpc.aio.insecure_channel(f"{address}:{GNMI_PORT}") as channel:
        # Raw bytes after the initial sync: the subscriber must keep up with the lab, not parse every update
        # (a production collector runs on its own machine; here it shares two cores with the lab).
        call = channel.stream_stream(
            "/gnmi.gNMI/Subscribe",
            request_serializer=gnmi_pb2.SubscribeRequest.SerializeToString,
            response_deserializer=None,
        )(requests(), metadata=metadata)
        synced = False
        try:
            async for raw in call:
                stats["messages"] += 1
                stats["bytes"] += len(raw)
                if not synced:
                    response = gnmi_pb2.SubscribeResponse.FromString(raw)
                    if response.sync_response:
                        synced = True
                        stats["synced"] += 1
                    else:
                        stats["initial_updates"] += len(response.update.update)
        except grpc.aio.AioRpcError as exc:
            if not stop.is_set():
                stats["errors"].append(f"{address}: {exc.code().name} {exc.details()}")


async def _subscribe_all(addresses: list[str], duration: float, out: str) -> None:
    stats = {"messages": 0, "bytes": 0, "initial_updates": 0, "synced": 0, "errors": []}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_subscribe_one(a, stats, stop)) for a in addresses]
    marks = []
    began = time.monotonic()
    while time.monotonic() - began < duration:
        await asyncio.sleep(1.0)
        marks.append((time.monotonic() - began, stats["messages"], stats["bytes"], stats["synced"]))
        Path(out).write_text(json.dumps({**stats, "marks": marks}))
    stop.set()
    await asyncio.wait(tasks, timeout=10)


def subscribe(args: argparse.Namespace) -> None:
    info = json.loads(Path(args.info).read_text())
    asyncio.run(_subscribe_all(info["addresses"], args.duration, args.out))


# ------------------------------------------------------------------------------------ the driver
def _proc_cpu_rss(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))  # fmt: skip
    return cpu, rss_kb * 1024


def _status(info: dict) -> dict:
    import django

    django.setup()
    from fabric_ops.lab.control import LabClient

    return LabClient(info["url"], info["token"], timeout=60).status()


def run_size(switches: int, args: argparse.Namespace, workdir: Path) -> dict:
    info_path, sub_path = workdir / f"lab-{switches}.json", workdir / f"sub-{switches}.json"
    info_path.unlink(missing_ok=True)
    renice = (lambda: os.nice(args.nice)) if args.nice else None
    lab = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(switches), "--ports", str(args.ports), "--info", str(info_path)]
        + (["--no-physics"] if args.no_physics else [])
        + ["--max-duty", str(args.max_duty)],
        preexec_fn=renice,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"lab-{switches}.log", "w"),  # noqa: SIM115 - closed with the process
    )
    sub = None
    try:
        deadline = time.monotonic() + args.startup_timeout
        while not info_path.exists():
            if lab.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lab of {switches} switches did not start (see {workdir}/lab-{switches}.log)")
            time.sleep(0.5)
        info = json.loads(info_path.read_text())
        sub = subprocess.Popen(
            [sys.executable, __file__, "--subscribe", "--info", str(info_path), "--out", str(sub_path),
             "--duration", str(args.warmup + args.measure + 600)],
            preexec_fn=renice, stdout=subprocess.DEVNULL, stderr=open(workdir / f"sub-{switches}.log", "w"),  # noqa: SIM115
        )  # fmt: skip
        time.sleep(args.warmup)
        before, cpu0, t0 = _status(info), _proc_cpu_rss(lab.pid)[0], time.monotonic()
        sub0 = json.loads(sub_path.read_text()) if sub_path.exists() else {"messages": 0, "bytes": 0}
        time.sleep(args.measure)
        after, (cpu1, rss), t1 = _status(info), _proc_cpu_rss(lab.pid), time.monotonic()
        sub1 = json.loads(sub_path.read_text())
        g0, g1 = before["frontend_stats"].get("gnmi", {}), after["frontend_stats"].get("gnmi", {})
        ticks = g1.get("ticks", 0) - g0.get("ticks", 0)
        late = g1.get("late_ticks", 0) - g0.get("late_ticks", 0)
        wall = t1 - t0
        row = {
            "switches": switches,
            "ports": info["ports"],
            "startup_s": round(info["startup_s"], 1),
            "sessions": g1.get("sessions", 0),
            "subscribed_switches": sub1.get("synced", 0),
            "sample_ticks": ticks,
            "late_ticks": late,
            "late_fraction": round(late / ticks, 4) if ticks else None,
            "late_histogram": {
                k: v - g0.get("late_histogram", {}).get(k, 0) for k, v in g1.get("late_histogram", {}).items()
            },
            "max_late_s_ever": round(g1.get("max_late_s", 0.0), 3),
            "updates_per_s_sent": round((g1.get("updates", 0) - g0.get("updates", 0)) / wall),
            "notifications_per_s_received": round((sub1["messages"] - sub0["messages"]) / wall),
            "mbytes_per_s_received": round((sub1["bytes"] - sub0["bytes"]) / wall / 1e6, 2),
            "physics_ticks_per_s": round((after["ticks"] - before["ticks"]) / wall, 2),
            "physics_tick_s": after["tick_seconds"],
            "physics_cpu_percent": round(
                100 * (after["physics_cpu_seconds"] - before["physics_cpu_seconds"]) / wall, 1
            ),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "lab_cpu_percent": round(100 * (cpu1 - cpu0) / wall, 1),
            "cpu_ms_per_switch_per_s": round(1000 * (cpu1 - cpu0) / wall / switches, 2),
            "rss_mb": round(rss / 2**20, 1),
            "rss_mb_per_switch": round(rss / 2**20 / switches, 2),
            "subscriber_errors": sub1.get("errors", [])[:5],
        }
        row["passed"] = bool(ticks) and late / ticks <= LATE_LIMIT and row["subscribed_switches"] == switches
        return row
    finally:
        if sub is not None and sub.poll() is None:
            sub.terminate()
            sub.wait(timeout=30)
        if lab.poll() is None:
            lab.terminate()
            try:
                lab.wait(timeout=60)
            except subprocess.TimeoutExpired:
                lab.kill()
                lab.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256,384", help="switch counts to try, ascending")
    parser.add_argument("--ports", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--measure", type=float, default=30.0)
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument(
        "--nice", type=int, default=0, help="niceness of the lab and subscriber processes (negative needs root): "
        "on a machine shared with other work, measures the lab rather than the neighbours",
    )  # fmt: skip
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "lab.json"))
    parser.add_argument("--retries", type=int, default=1, help="re-run a failing size this many times")
    parser.add_argument(
        "--max-duty", type=float, default=0.1, help="physics CPU budget (fraction of a core) before the tick stretches"
    )
    parser.add_argument("--no-physics", action="store_true", help="diagnosis: serve frozen counters, no engine thread")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--subscribe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    if args.subscribe:
        return subscribe(args)

    rows = []
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            print(f"-- {size} switches x {args.ports} ports ...", flush=True)
            for attempt in range(1 + args.retries):  # a shared machine's neighbours can fail a size by themselves
                try:
                    row = run_size(size, args, Path(tmp))
                except Exception as exc:  # record the failure; bigger will not do better
                    row = {"switches": size, "passed": False, "error": str(exc)}
                    log = Path(tmp) / f"lab-{size}.log"
                    if log.exists():
                        row["log_tail"] = log.read_text()[-2000:]
                row["attempt"] = attempt + 1
                rows.append(row)
                print(json.dumps(row), flush=True)
                if row["passed"] or "error" in row:
                    break
            if not row["passed"]:
                break
    passing = [r for r in rows if r.get("passed")]
    best = max(passing, key=lambda r: r["switches"]) if passing else None
    header = (
        f"{'switches':>8} {'ports':>6} {'ticks':>7} {'late%':>6} {'upd/s sent':>11} {'notif/s rx':>11} "
        f"{'CPU%':>6} {'ms CPU/sw/s':>11} {'RSS MB':>7} {'MB/sw':>6} {'phys tick':>9} ok"
    )
    print("\n" + header)
    for r in rows:
        if "error" in r:
            print(f"{r['switches']:>8} error: {r['error']}")
            continue
        late = f"{100 * r['late_fraction']:.1f}" if r["late_fraction"] is not None else "-"
        print(
            f"{r['switches']:>8} {r['ports']:>6} {r['sample_ticks']:>7} {late:>6} {r['updates_per_s_sent']:>11} "
            f"{r['notifications_per_s_received']:>11} {r['lab_cpu_percent']:>6} {r['cpu_ms_per_switch_per_s']:>11} "
            f"{r['rss_mb']:>7} {r['rss_mb_per_switch']:>6} {r['physics_tick_s']:>9} {'yes' if r['passed'] else 'NO'}"
        )
    result = {
        "benchmark": "lab",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "ports_per_switch": args.ports,
        "late_limit": LATE_LIMIT,
        "nice": args.nice,
        "physics": not args.no_physics,
        "physics_max_duty": args.max_duty,
        "subscription": [{"path": p, "mode": m, "sample_interval_s": i} for p, m, i in SUBSCRIPTION],
        "largest_passing_switches": best["switches"] if best else 0,
        "rows": rows,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"\nlargest passing: {result['largest_passing_switches']} switches; written to {args.output}")


if __name__ == "__main__":
    main()
