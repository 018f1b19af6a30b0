#!/usr/bin/env python
"""Benchmark the topology layer at 100k-GPU scale on PostgreSQL.

Generates and persists a >=100,000-GPU 3-tier radix-128 fabric, then (when ``fabric_ops.topology.graph`` is
installed) builds the graph and times blast-radius queries for 1,000 random single links. A naive baseline
(``Model.objects.create`` per row) persists a small slice of the same design and is extrapolated by row count.

    .venv/bin/python benchmarks/topology.py [--gpus 100000] [--radix 128] [--speed 400]

DATABASE_URL defaults to postgresql://postgres@127.0.0.1:5432/fabricops_bench; the database is created when
missing and its ``public`` schema is dropped and re-migrated, so only point it at a scratch database.
Results: a table on stdout and benchmarks/results/topology.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fabric_ops.settings")
os.environ.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/fabricops_bench")
os.environ.setdefault("FABRIC_OPS_LOG_LEVEL", "WARNING")

TARGETS = {"persist_s": 90.0, "graph_build_s": 20.0, "blast_p99_ms": 50.0, "peak_rss_mib": 4096.0}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def prepare_database(url: str, force: bool) -> None:
    """Create the benchmark database if missing, then drop its schema and migrate from scratch."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    cfg = dj_database_url.parse(url)
    if not cfg["ENGINE"].endswith("postgresql"):
        sys.exit(f"benchmarks/topology.py: DATABASE_URL must be PostgreSQL, got {cfg['ENGINE']}")
    name = cfg["NAME"]
    if "bench" not in name and not force:
        sys.exit(f"benchmarks/topology.py: refusing to drop the schema of {name!r} (no 'bench' in the name; --force)")
    conninfo = {"host": cfg["HOST"] or "127.0.0.1", "port": cfg["PORT"] or 5432, "user": cfg["USER"] or "postgres"}
    if cfg.get("PASSWORD"):
        conninfo["password"] = cfg["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(dbname=name, autocommit=True, **conninfo) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")

    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def naive_persist(plan) -> int:
    """The baseline: one ORM create() per row, the way a first version would write it. Returns rows written."""
    from django.db import transaction

    from fabric_ops.topology.generators.catalogue import optic
    from fabric_ops.topology.models import (
        Device,
        Fabric,
        GpuHost,
        GpuNic,
        Interface,
        Link,
        Pod,
        Site,
        Transceiver,
    )

    rows = 0
    with transaction.atomic():
        site, _ = Site.objects.get_or_create(name=plan.sites[0].name, defaults={"city": plan.sites[0].city})
        fabric = Fabric.objects.create(name=plan.name, kind=plan.kind, site=site, parameters=plan.parameters)
        pods = [Pod.objects.create(fabric=fabric, name=p.name, kind=p.kind, index=p.index) for p in plan.pods]
        optics = {}
        devices = []
        for d in plan.devices:
            devices.append(
                Device.objects.create(
                    hostname=d.hostname, fabric=fabric, site=site, role=d.role, platform=d.platform, model=d.model,
                    pod=pods[d.pod] if d.pod is not None else None, rail=d.rail, index=d.index,
                    mgmt_address=d.mgmt_address, loopback=d.loopback, asn=d.asn, ssh_port=10022,
                )
            )  # fmt: skip
        interfaces = []
        for i in plan.interfaces:
            if i.transceiver and i.transceiver not in optics:
                optics[i.transceiver], _ = Transceiver.objects.get_or_create(
                    name=i.transceiver, defaults=optic(i.transceiver)._asdict()
                )
            interfaces.append(
                Interface.objects.create(
                    device=devices[i.device], name=i.name, speed_gbps=i.speed_gbps, lanes=i.lanes,
                    admin_up=i.admin_up, address=i.address, description=i.description,
                    transceiver=optics.get(i.transceiver) if i.transceiver else None,
                )
            )  # fmt: skip
        for k in plan.links:
            Link.objects.create(a_interface=interfaces[k.a], b_interface=interfaces[k.b], kind=k.kind,
                                capacity_gbps=k.capacity_gbps)  # fmt: skip
        hosts = [GpuHost.objects.create(name=h.name, fabric=fabric, gpus=h.gpus, index=h.index) for h in plan.hosts]
        for n in plan.nics:
            GpuNic.objects.create(host=hosts[n.host], rail=n.rail, name=n.name, speed_gbps=n.speed_gbps,
                                  leaf_interface=interfaces[n.leaf_interface])  # fmt: skip
        rows = 2 + len(pods) + len(devices) + len(interfaces) + len(plan.links) + len(hosts) + len(plan.nics)
    return rows


def table_counts() -> dict[str, int]:
    from fabric_ops.topology.models import Device, GpuHost, GpuNic, Interface, Link, Pod

    return {m.__name__: m.objects.count() for m in (Pod, Device, Interface, Link, GpuHost, GpuNic)}


def run_graph(fabric: str, samples: int, seed: int) -> dict:
    try:
        from fabric_ops.topology.graph import FabricGraph
    except ImportError as exc:
        return {"available": False, "reason": f"not available ({exc})"}
    from fabric_ops.topology.models import Link

    started = time.perf_counter()
    graph = FabricGraph.load([fabric], refresh=True)
    build_s = time.perf_counter() - started
    ids = list(Link.objects.filter(a_interface__device__fabric__name=fabric).values_list("id", flat=True))
    rng = random.Random(seed)
    picks = rng.sample(ids, min(samples, len(ids)))
    latencies = []
    for link_id in picks:
        t = time.perf_counter()
        graph.blast_radius(links=[link_id])
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    return {
        "available": True,
        "build_s": round(build_s, 2),
        "queries": len(latencies),
        "blast_p50_ms": round(statistics.median(latencies), 3),
        "blast_p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 3),
        "blast_max_ms": round(latencies[-1], 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", type=int, default=100_000)
    ap.add_argument("--radix", type=int, default=128)
    ap.add_argument("--speed", type=int, default=400, help="port speed: 128x400G is the 51.2T radix-128 switch")
    ap.add_argument("--baseline-gpus", type=int, default=2_048)
    ap.add_argument("--samples", type=int, default=1_000, help="blast-radius queries")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--force", action="store_true", help="allow a database without 'bench' in its name")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "topology.json"))
    args = ap.parse_args()

    import django

    django.setup()
    from django.db import connection

    from fabric_ops.topology.generators import FabricParams, delete_fabric, persist_plan, plan_fabric

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    prepare_database(os.environ["DATABASE_URL"], args.force)
    migrate_s = time.perf_counter() - t0

    params = FabricParams(name="bench", site="bench1", city="Benchmark", gpus=args.gpus, radix=args.radix,
                          port_speed_gbps=args.speed, tiers=3)  # fmt: skip
    t = time.perf_counter()
    plan = plan_fabric(params)
    plan_s = time.perf_counter() - t
    t = time.perf_counter()
    persist_plan(plan)
    persist_s = time.perf_counter() - t
    rss_after_persist = peak_rss_mib()
    counts = table_counts()
    rows = sum(counts.values()) + 2  # + Site and Fabric
    sizes = plan.sizes
    del plan

    # Baseline: a slice of the same design persisted one row at a time, extrapolated by row count.
    small = plan_fabric(FabricParams(name="naive", site="bench1", gpus=args.baseline_gpus, radix=args.radix,
                                     port_speed_gbps=args.speed, mgmt_network="127.101.0.0/16",
                                     loopback_network="172.17.0.0/16", p2p_network="10.16.0.0/12",
                                     asn_base=4_201_000_000))  # fmt: skip
    t = time.perf_counter()
    naive_rows = naive_persist(small)
    naive_s = time.perf_counter() - t
    delete_fabric("naive")
    naive_extrapolated_s = naive_s * rows / naive_rows

    graph = run_graph("bench", args.samples, args.seed)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": connection.cursor().connection.info.server_version,
            # the machine is shared: a load average above the core count inflates every timing
            "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        },
        "fabric": {
            "gpus": args.gpus,
            "radix": args.radix,
            "speed_gbps": args.speed,
            "tiers": sizes.tiers,
            "leaves": sizes.leaves,
            "spines": sizes.spines,
            "superspines": sizes.superspines,
            "pods": sizes.pods_per_plane,
        },
        "migrate_s": round(migrate_s, 2),
        "plan_s": round(plan_s, 2),
        "persist_s": round(persist_s, 2),
        "generate_and_persist_s": round(plan_s + persist_s, 2),
        "rows": counts | {"total": rows},
        "rows_per_s": round(rows / persist_s),
        "peak_rss_after_persist_mib": round(rss_after_persist, 1),
        "baseline": {
            "gpus": args.baseline_gpus,
            "rows": naive_rows,
            "seconds": round(naive_s, 2),
            "extrapolated_s": round(naive_extrapolated_s, 1),
            "speedup": round(naive_extrapolated_s / persist_s, 1),
        },
        "graph": graph,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    checks = {
        "persist_s": result["persist_s"],
        "graph_build_s": graph.get("build_s"),
        "blast_p99_ms": graph.get("blast_p99_ms"),
        "peak_rss_mib": result["peak_rss_mib"],
    }
    result["targets"] = {
        k: {"target": TARGETS[k], "value": v, "met": None if v is None else v <= TARGETS[k]} for k, v in checks.items()
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")

    def line(label: str, value: str, target: str = "") -> None:
        print(f"{label:<44}{value:>22}  {target}")

    print(f"FabricOps topology benchmark — {args.gpus:,} GPUs, 3-tier radix-{args.radix} {args.speed}G, PostgreSQL")
    line("devices / interfaces / links", f"{counts['Device']:,} / {counts['Interface']:,} / {counts['Link']:,}")
    line("GPU hosts / NICs", f"{counts['GpuHost']:,} / {counts['GpuNic']:,}")
    line("rows written", f"{rows:,}")
    line("plan (pure, in memory)", f"{plan_s:.1f} s")
    line("persist", f"{persist_s:.1f} s", f"target <= 90 s: {'met' if persist_s <= 90 else 'MISSED'}")
    line("generate + persist wall time", f"{plan_s + persist_s:.1f} s")
    line("rows per second", f"{rows / persist_s:,.0f}")
    line("peak RSS after persist", f"{rss_after_persist:,.0f} MiB")
    line(f"naive create() baseline ({args.baseline_gpus:,} GPUs)", f"{naive_rows:,} rows in {naive_s:.1f} s")
    line("naive extrapolated to this fabric", f"{naive_extrapolated_s:,.0f} s",
         f"bulk persist is {naive_extrapolated_s / persist_s:.0f}x faster")  # fmt: skip
    if graph["available"]:
        line(
            "graph build",
            f"{graph['build_s']:.1f} s",
            f"target <= 20 s: {'met' if graph['build_s'] <= 20 else 'MISSED'}",
        )
        line(f"blast radius p50 ({graph['queries']} links)", f"{graph['blast_p50_ms']:.2f} ms")
        line("blast radius p99", f"{graph['blast_p99_ms']:.2f} ms",
             f"target <= 50 ms: {'met' if graph['blast_p99_ms'] <= 50 else 'MISSED'}")  # fmt: skip
    else:
        line("graph build", "graph: not available")
        line("blast radius p50 / p99", "graph: not available")
    peak = result["peak_rss_mib"]
    line("peak RSS (whole run)", f"{peak:,.0f} MiB", f"target <= 4096 MiB: {'met' if peak <= 4096 else 'MISSED'}")
    print(
        f"load average (1 min) before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
