"""Quick scale check of the lab gNMI server: N switches x P ports in this process, a collector in another.

    python -m fabric_ops.lab.gnmi.scale --switches 256 --ports 64 --duration 60

Every switch gets one Subscribe RPC shaped like a production collector's:
oper-status ON_CHANGE; PFC, ECN-mark and drop counters every 1 s; all other
counters, queue state, optics and system every 10 s. A "churn" thread stands in
for the physics engine and changes every counter of every port once a second
(the worst case for encoding). The collector process parses every message with
the C protobuf runtime and counts updates. This is a quick measurement for the
gNMI server; benchmarks/lab.py is the lab's real benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time

from fabric_ops.devices.credentials import Credential
from fabric_ops.lab.state import make_switch

from . import serve

SECOND = 1_000_000_000
FAST = [  # 1 s: what congestion detection needs
    "/qos/interfaces/interface[interface-id=*]/pfc/pfc-priorities/pfc-priority[dot1p=*]/state/statistics",
    "/qos/interfaces/interface[interface-id=*]/output/queues/queue[name=*]/state/ecn-marked-pkts",
    "/qos/interfaces/interface[interface-id=*]/output/queues/queue[name=*]/state/dropped-pkts",
    "/interfaces/interface[name=*]/state/counters/in-discards",
    "/interfaces/interface[name=*]/state/counters/out-discards",
]
SLOW = [  # 10 s: everything else
    "/interfaces/interface[name=*]/state/counters",
    "/interfaces/interface[name=*]/ethernet/state/counters",
    "/qos/interfaces/interface[interface-id=*]/output/queues/queue[name=*]/state",
    "/components/component[name=*]/transceiver",
    "/components/component[name=*]/state/temperature",
    "/system/cpus",
    "/system/memory",
]
ON_CHANGE = ["/interfaces/interface[name=*]/state/oper-status"]


def address(i: int) -> str:
    return f"127.12.{100 + i // 250}.{1 + i % 250}"


def _path(text: str):
    from pygnmi.create_gnmi_path import gnmi_path_generator

    return gnmi_path_generator(text)


def subscription_request(encoding: int = 0):
    from pygnmi.spec.v080 import gnmi_pb2 as g

    subs = [g.Subscription(path=_path(p), mode=g.ON_CHANGE) for p in ON_CHANGE]
    subs += [g.Subscription(path=_path(p), mode=g.SAMPLE, sample_interval=SECOND) for p in FAST]
    subs += [g.Subscription(path=_path(p), mode=g.SAMPLE, sample_interval=10 * SECOND) for p in SLOW]
    return g.SubscribeRequest(
        subscribe=g.SubscriptionList(subscription=subs, mode=g.SubscriptionList.STREAM, encoding=encoding)
    )


async def _collect(
    targets: list[str], port: int, duration: float, user: str, password: str, encoding: str = "json"
) -> dict:
    import grpc
    from pygnmi.spec.v080 import gnmi_pb2 as g

    counts = {"messages": 0, "updates": 0, "bytes": 0, "max_delay_s": 0.0, "errors": 0, "synced": 0}
    request = subscription_request(4 if encoding == "json_ietf" else 0)
    metadata = (("username", user), ("password", password))
    opts = [("grpc.max_receive_message_length", 64 << 20)]

    async def one(host: str) -> None:
        async with grpc.aio.insecure_channel(f"{host}:{port}", options=opts) as channel:
            call = channel.stream_stream(
                "/gnmi.gNMI/Subscribe", request_serializer=g.SubscribeRequest.SerializeToString
            )

            async def requests():
                yield request
                await asyncio.sleep(duration + 30)

            try:
                async for raw in call(requests(), metadata=metadata):
                    msg = g.SubscribeResponse.FromString(raw)
                    counts["messages"] += 1
                    counts["bytes"] += len(raw)
                    if msg.sync_response:
                        counts["synced"] += 1
                        continue
                    counts["updates"] += len(msg.update.update)
                    delay = time.time() - msg.update.timestamp / 1e9
                    counts["max_delay_s"] = max(counts["max_delay_s"], delay)
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                pass
            except Exception:
                counts["errors"] += 1

    tasks = [asyncio.ensure_future(one(h)) for h in targets]
    await asyncio.sleep(duration)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    counts["cpu_s"] = time.process_time()
    return counts


def client_main(args: argparse.Namespace) -> None:
    targets = [address(i) for i in range(args.switches)]
    counts = asyncio.run(_collect(targets, args.port, args.duration, "admin", args.password, args.encoding))
    print(json.dumps(counts))


def churn(switches, stop: threading.Event, period: float, cpu: list, congested: float = 1.0) -> None:
    """Stand-in for physics: every counter of every port moves once per period (worst case for encoding)."""
    n = 0
    while not stop.wait(period):
        n += 1
        _churn_once(switches, n, congested)
    cpu.append(time.thread_time())


def offline(args: argparse.Namespace) -> dict:
    """CPU cost of the sampling work alone (no sockets): independent of other load on the machine.

    Renders the same plans the server builds for the collector's subscription, for ``duration`` simulated
    seconds, and reports thread CPU time per simulated second. gRPC writes are measured separately by the
    end-to-end run (about one message per switch per second when bundling).
    """
    from pygnmi.create_gnmi_path import gnmi_path_generator

    from . import wire
    from .paths import group_leaves
    from .subscribe import Plan

    def plan(switch, paths, delta):
        p = Plan(wire.JSON_IETF if args.encoding == "json_ietf" else wire.JSON, True, delta=delta)
        for text in paths:
            elems = [(e.name, dict(e.key)) for e in gnmi_path_generator(text).elem]
            for cursor, leaves in group_leaves(switch, elems):
                p.add(cursor, leaves)
        p.finalize()
        return p

    switches = [make_switch(f"sw{i:03d}", "eos", address(i), ports=args.ports) for i in range(args.switches)]
    t0 = time.thread_time()
    plans = [(sw, plan(sw, FAST, False), plan(sw, SLOW, False), plan(sw, ON_CHANGE, True)) for sw in switches]
    compile_cpu = time.thread_time() - t0
    for sw, fast, slow, change in plans:
        for p in (fast, slow, change):
            p.notifications(p.render(sw, True), time.time_ns())
    seconds = int(args.duration)
    updates = 0
    cpu = 0.0
    for second in range(seconds):
        if args.churn:
            _churn_once(switches, second, args.congested)
        t = time.thread_time()
        for sw, fast, slow, change in plans:
            for _ in range(10):  # ON_CHANGE scans at 100 ms
                change.render(sw, False)
            rendered = fast.render(sw, True)
            fast.notifications(rendered, time.time_ns())
            updates += sum(c for _, _, c in rendered)
            if second % 10 == 0:
                rendered = slow.render(sw, True)
                slow.notifications(rendered, time.time_ns())
                updates += sum(c for _, _, c in rendered)
        cpu += time.thread_time() - t
    return {
        "mode": "offline (sampling and encoding only, no sockets)",
        "switches": args.switches,
        "ports": args.ports,
        "churn": bool(args.churn),
        "congested_fraction": args.congested,
        "encoding": args.encoding,
        "compile_cpu_s": round(compile_cpu, 2),
        "simulated_s": seconds,
        "cpu_per_simulated_s": round(cpu / seconds, 3),
        "updates_per_s": round(updates / seconds),
        "us_per_update": round(cpu / max(updates, 1) * 1e6, 3),
    }


def _churn_once(switches, n: int, congested: float = 1.0) -> None:
    """Move counters like traffic would: every port carries traffic; ``congested`` of them also pause, mark, drop."""
    for sw in switches:
        with sw.lock:
            ports = list(sw.interfaces.values())
            hot = int(len(ports) * congested)
            for index, iface in enumerate(ports):
                iface.in_octets += 1_000_000 + n
                iface.out_octets += 1_000_000 + n
                iface.in_unicast_pkts += 1000
                iface.out_unicast_pkts += 1000
                for q in iface.queues:
                    q.transmit_pkts += 100
                    q.transmit_octets += 100_000
                if index >= hot:
                    continue
                iface.in_discards += n & 1
                iface.out_discards += n & 1
                for p in range(8):
                    iface.pfc_rx_pause[p] += 1
                    iface.pfc_tx_pause[p] += 1
                for q in iface.queues:
                    q.dropped_pkts += 1
                    q.ecn_marked_pkts += 3
                    q.depth_bytes = (q.depth_bytes + 4096) % 1_000_000
                for lane in iface.optics:
                    lane.input_power_dbm = -2.0 - (n % 7) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--switches", type=int, default=256)
    parser.add_argument("--ports", type=int, default=64)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=50061)
    parser.add_argument("--churn", type=float, default=1.0, help="seconds between counter updates (0: none)")
    parser.add_argument("--no-bundle", action="store_true", help="one Notification per interface")
    parser.add_argument(
        "--congested", type=float, default=1.0, help="fraction of ports whose PFC/ECN/drop counters move (1 = all)"
    )
    parser.add_argument("--offline", action="store_true", help="measure sampling CPU only, without sockets")
    parser.add_argument("--encoding", choices=["json", "json_ietf"], default="json")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--password", default="scale-pass", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    if args.offline:
        print(json.dumps(offline(args), indent=2))
        return
    switches = [
        make_switch(f"sw{i:03d}", "eos", address(i), ports=args.ports, gnmi_port=args.port)
        for i in range(args.switches)
    ]
    rss0 = _rss_kb()
    t0 = time.perf_counter()
    server = serve(switches, Credential("admin", args.password), bundle=not args.no_bundle)
    started = time.perf_counter() - t0
    stop = threading.Event()
    churn_cpu: list[float] = []
    churner = None
    if args.churn:
        churner = threading.Thread(
            target=churn, args=(switches, stop, args.churn, churn_cpu, args.congested), daemon=True
        )
        churner.start()
    loop_cpu0 = asyncio.run_coroutine_threadsafe(_thread_time(), server.loop).result()
    client = subprocess.Popen(
        [sys.executable, "-m", "fabric_ops.lab.gnmi.scale", "--client", *_client_args(args)],
        stdout=subprocess.PIPE,
        env={**os.environ},
    )
    warmup = min(15.0, args.duration / 4)
    time.sleep(warmup)
    base = server.snapshot()
    loop_cpu1 = asyncio.run_coroutine_threadsafe(_thread_time(), server.loop).result()
    cpu1, w1 = time.process_time(), time.perf_counter()
    out, _ = client.communicate(timeout=args.duration + 120)
    end = server.snapshot()
    loop_cpu2 = asyncio.run_coroutine_threadsafe(_thread_time(), server.loop).result()
    cpu2, w2 = time.process_time(), time.perf_counter()
    stop.set()
    if churner:
        churner.join(5)
    server.stop()
    window = w2 - w1
    ticks = end["ticks"] - base["ticks"]
    late = end["late_ticks"] - base["late_ticks"]
    report = {
        "switches": args.switches,
        "ports": args.ports,
        "bundle": not args.no_bundle,
        "startup_s": round(started, 2),
        "subscribe_and_warmup_cpu_s(loop)": round(loop_cpu1 - loop_cpu0, 2),
        "window_s": round(window, 1),
        "ticks": ticks,
        "late_ticks": late,
        "late_fraction": round(late / ticks, 4) if ticks else None,
        "max_late_s(whole run)": round(end["max_late_s"], 3),
        "late_histogram(whole run)": end["late_histogram"],
        "updates_per_s": round((end["updates"] - base["updates"]) / window),
        "notifications_per_s": round((end["notifications"] - base["notifications"]) / window, 1),
        "mbytes_per_s": round((end["bytes"] - base["bytes"]) / window / 1e6, 2),
        "dropped_messages": end["dropped_messages"],
        "server_loop_cpu_pct": round(100 * (loop_cpu2 - loop_cpu1) / window, 1),
        "server_process_cpu_pct": round(100 * (cpu2 - cpu1) / window, 1),
        "churn_thread_cpu_s(total)": round(churn_cpu[0], 2) if churn_cpu else None,
        "rss_mb": round(_rss_kb() / 1024, 1),
        "rss_mb_per_switch": round((_rss_kb() - rss0) / 1024 / args.switches, 2),
        "collector": json.loads(out or b"{}"),
    }
    print(json.dumps(report, indent=2))


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _thread_time() -> float:
    return time.thread_time()


def _client_args(args: argparse.Namespace) -> list[str]:
    return [
        f"--switches={args.switches}",
        f"--port={args.port}",
        f"--duration={args.duration}",
        f"--password={args.password}",
        f"--encoding={args.encoding}",
    ]


if __name__ == "__main__":
    main()
