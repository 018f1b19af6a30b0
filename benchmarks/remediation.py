"""Closed-loop latency: inject faults into a lab of >= 48 switches and time injection -> incident -> verified.

Everything runs as in production: the lab (``manage.py lab up``, its own process, as switches are their own
machines) on 127.18.128.0/17; the gNMI collectors (``manage.py telemetry collect --shard i/N``: ``--collectors``
processes, 2 by default as in docker/compose.yml) with the *default* subscription profiles (oper-status ON_CHANGE,
PFC/ECN/drops 1 s, interface counters and optics 10 s)
and its Redis handoff (its InfluxDB writes spool under the run's temp dir when no InfluxDB answers: InfluxDB is
not on the detection path); in this process the detection consumer (``fabric_ops.health.detect.run_process``,
what ``manage.py health detect`` runs: the consumer lease and checkpoints of the ``health.detect`` task) in
a thread, and remediation (``fabric_ops.health.remediation``: guardrails, NAPALM push jobs with commit-confirm
and verification from telemetry) in a pool of threads standing in for Celery worker slots, fed by the loop's
dispatch (the hold-downs apply).

Faults: link flaps on one uplink of distinct leaves (drain playbook) and PFC storms on host ports of other
leaves (watchdog playbook), injected ``--interval`` apart. The fabric has ``--planes`` planes (4 by default: each
plane is a pod for the guardrails) and the faulty leaves are taken round-robin over the planes, so the 12 drains
stay within the guardrail's cap of 4 drained links per pod/plane: the benchmark measures remediation, not the cap
(with one plane all 12 were in one pod and 8 were refused). Drains a guardrail refused anyway are counted apart
(``refused_by_guardrail``), never as mitigation latency. Latencies are from the lab's fault record
(``injected_at``, ns) to the incident's ``detected_at`` and ``verified_at``.

    .venv/bin/python benchmarks/remediation.py                    # 512 GPUs, radix 32: 48+ switches, 20 faults
    .venv/bin/python benchmarks/remediation.py --flaps 12 --storms 8 --database-url postgresql://postgres@127.0.0.1/x

Prints a table and writes benchmarks/results/remediation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fabric_ops.settings")

FABRIC = "brem"
CREDENTIAL = "bench-remediation"
MGMT_NETWORK = "127.18.128.0/17"  # inside the health tests' block, away from the tests' 127.18.0.x


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"n": 0, "p50_s": None, "p95_s": None, "max_s": None}
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(ordered), "p50_s": round(statistics.median(ordered), 3), "p95_s": round(p95, 3),
            "max_s": round(ordered[-1], 3)}  # fmt: skip


def sample_pipeline(client, prefix: str, stop: threading.Event, out: dict[str, list[float]]) -> None:
    """Every 2 s: how far the collector is behind its switches, and the detection loop behind the stream."""
    from fabric_ops.health import detect

    while not stop.wait(2.0):
        loop = detect._PROCESS_LOOP
        if loop is None:
            continue
        try:
            lags = sorted(json.loads(v).get("lag_s", 0.0) for v in client.hgetall(f"{prefix}:health:devices").values())
            if lags:
                out["collector_lag_p50_s"].append(lags[len(lags) // 2])
                out["collector_lag_max_s"].append(lags[-1])
            info = client.xinfo_stream(f"{prefix}:events")
            newest = int(info["last-generated-id"].decode().split("-")[0])
            consumed = int(str(loop.last_id).split("-")[0]) if loop.last_id not in ("$",) else newest
            out["detection_backlog_s"].append(max(0, newest - consumed) / 1000)
        except Exception:  # a sample missed is fine
            continue


def stage_times(client, prefix: str, faults: list) -> list[dict]:
    """Per fault, from the handoff stream: the entry that opened the incident (a flap's first transition: it opens
    as link-down and becomes link-flap in place; a storm's first paused sample), its switch timestamp and when the
    collector published it (the entry id)."""
    wanted = {}
    for kind, rec, _, _ in faults:
        ports = {tuple(p.split(":", 1)) for p in rec["ports"] if not p.startswith("host:")}
        wanted[rec["target"]] = (kind, rec["injected_at"], ports, {})
    last = "-"
    while True:
        chunk = client.xrange(f"{prefix}:events", min=last, max="+", count=5000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            break
        for entry_id, fields in chunk:
            kind = fields[b"type"].decode()
            if kind not in ("state", "sample"):
                continue
            device, ts = fields[b"device"].decode(), int(fields[b"ts"])
            data = json.loads(fields[b"data"])
            port = (device, data.get("tags", {}).get("interface", ""))
            for fkind, injected, ports, found in wanted.values():
                if port not in ports or ts < injected or "at" in found:
                    continue
                flap = fkind == "link-flap" and kind == "state" and data.get("field") == "oper_up"
                storm = fkind == "pfc-storm" and kind == "sample" and data.get("measurement") == "pfc"
                if flap or (storm and (data.get("fields", {}).get("rx_pause_ps") or 0) > 0):
                    found["at"] = (ts, int(entry_id.decode().split("-")[0]))
        last = chunk[-1][0].decode()
    out = []
    for target, (_, injected, _, found) in wanted.items():
        if "at" in found:
            ts, published_ms = found["at"]
            out.append({"target": target, "switch_s": round((ts - injected) / 1e9, 3),
                        "collector_s": round(published_ms / 1000 - ts / 1e9, 3),
                        "handoff_at": published_ms / 1000})  # fmt: skip
    return out


def spread_over_pods(leaves) -> list:
    """Leaves round-robin over their pods/planes (plane1's first, plane2's first, ..., plane1's second, ...): faults
    taken in this order spread evenly, so drains stay under the guardrail's per-pod cap."""
    by_pod: dict[str, list] = {}
    for leaf in leaves:
        by_pod.setdefault(leaf.pod.name if leaf.pod_id else "", []).append(leaf)
    columns = [by_pod[pod] for pod in sorted(by_pod)]
    return [col[i] for i in range(max((len(c) for c in columns), default=0)) for col in columns if i < len(col)]


def prepare(workdir: Path, database_url: str | None, influx_url: str | None = None) -> None:
    os.environ["FABRIC_OPS_VAR_DIR"] = str(workdir / "var")
    os.environ["FABRIC_OPS_SECRETS_DIR"] = str(workdir / "secrets")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("FABRIC_OPS_LOG_LEVEL", "WARNING")
    os.environ["FABRIC_OPS_DEBUG"] = "0"
    os.environ["FABRIC_OPS_GNMI_TLS"] = "0"  # the lab's gNMI is plain gRPC (TLS is the default with DEBUG off)
    os.environ.setdefault("FABRIC_OPS_SECRET_KEY", secrets.token_urlsafe(48))
    # nothing listens here unless --influx-url says otherwise: the collector spools under workdir/var
    os.environ["FABRIC_OPS_INFLUX_URL"] = influx_url or "http://127.18.255.254:8086"
    os.environ["FABRIC_OPS_TELEMETRY_REDIS_PREFIX"] = f"fabric_ops:bench-remediation:{uuid.uuid4().hex[:8]}"
    # a 10 s flap window: three transitions of a 2 s flap period are seen within seconds, as in production's 60 s
    os.environ.setdefault("FABRIC_OPS_HEALTH_THRESHOLDS", json.dumps({"link": {"flap_window_s": 10}}))
    (workdir / "var").mkdir(parents=True, exist_ok=True)


def build(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    from fabric_ops.devices.credentials import ensure_generated
    from fabric_ops.topology.generators import FabricParams, persist_plan, plan_fabric

    call_command("migrate", verbosity=0)
    ensure_generated(CREDENTIAL)
    params = FabricParams(name=FABRIC, site="brem1", gpus=args.gpus, radix=args.radix, port_speed_gbps=400,
                          planes=args.planes, mgmt_network=MGMT_NETWORK,
                          platforms={"leaf": "eos", "spine": "eos", "superspine": "eos"},
                          credential=CREDENTIAL)  # fmt: skip
    persist_plan(plan_fabric(params), replace=True)
    from fabric_ops.topology.models import Device

    return Device.objects.filter(fabric__name=FABRIC).count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=512)
    parser.add_argument("--radix", type=int, default=32)
    parser.add_argument("--planes", type=int, default=4,
                        help="fabric planes (pods for the guardrails); faults are spread over them")  # fmt: skip
    parser.add_argument("--flaps", type=int, default=12)
    parser.add_argument("--storms", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between injections")
    parser.add_argument("--workers", type=int, default=4, help="remediation threads (Celery worker slots)")
    parser.add_argument("--collectors", type=int, default=2,
                        help="collector processes, one shard each (docker/compose.yml runs 2)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--database-url", default=None, help="a fresh database (default: SQLite in a temp dir)")
    parser.add_argument("--influx-url", default=None, help="InfluxDB for the collector's writes (default: spool)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "remediation.json"))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-remediation-"))
    prepare(workdir, args.database_url, args.influx_url)
    import django

    django.setup()
    import redis
    from django.db import close_old_connections

    from fabric_ops.health import detect
    from fabric_ops.health.choices import IncidentStatus
    from fabric_ops.health.detect import run_process
    from fabric_ops.health.models import Incident
    from fabric_ops.health.playbooks import load_playbooks
    from fabric_ops.health.remediation import RunInFlight, remediate
    from fabric_ops.health.verification import redis_reader
    from fabric_ops.telemetry.handoff import redis_prefix
    from fabric_ops.topology.models import Device, GpuNic, Link

    switches = build(args)
    print(f"fabric {FABRIC}: {switches} switches; database {os.environ['DATABASE_URL'].split(':', 1)[0]}")
    prefix = redis_prefix()
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    books = load_playbooks()
    pool = ThreadPoolExecutor(max_workers=args.workers)
    errors: list[str] = []

    def run_remediation(pk: int, delay: float) -> None:
        time.sleep(delay)
        try:
            remediate(pk, playbooks=books, read=redis_reader(client, prefix))
        except RunInFlight:
            pass  # a second dispatch of an incident another thread is remediating (Celery would retry it)
        except Exception as exc:  # recorded in the report, the benchmark goes on
            errors.append(f"incident {pk}: {exc}")
        finally:
            close_old_connections()

    from fabric_ops.errors import LabError
    from fabric_ops.lab.control import LabClient, control_file

    log = open(workdir / "lab.log", "ab")  # noqa: SIM115 - handed to the child
    lab_proc = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "lab", "up", "--fabric", FABRIC],
                                cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    log.close()
    deadline = time.monotonic() + 300
    lab = None
    while lab is None:
        if lab_proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"lab up failed; see {workdir / 'lab.log'}")
        if control_file().exists():
            try:
                client_ = LabClient(timeout=10)
                if client_.status()["switches_alive"] == switches:
                    lab = client_
            except LabError:
                pass
        time.sleep(0.5)
    collectors = []
    for shard in range(args.collectors):  # like docker/compose.yml: collector-0 and collector-1, one shard each
        clog = open(workdir / f"collector-{shard}.log", "ab")  # noqa: SIM115 - handed to the child
        collectors.append(subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "telemetry", "collect", "--fabric", FABRIC,
             "--shard", f"{shard}/{args.collectors}"],
            cwd=ROOT, env=os.environ.copy(), stdout=clog, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        clog.close()
    stop = threading.Event()
    detector = None
    pipeline: dict[str, list[float]] = {"collector_lag_p50_s": [], "collector_lag_max_s": [], "detection_backlog_s": []}
    stages: list[dict] = []
    try:
        deadline = time.monotonic() + 180
        while sum(1 for _ in client.scan_iter(f"{prefix}:latest:*")) < switches:
            if time.monotonic() > deadline or any(c.poll() is not None for c in collectors):
                raise SystemExit(f"the collectors did not reach every switch; see {workdir}/collector-*.log")
            time.sleep(0.5)
        time.sleep(12)  # one full slow-sample round, so rates and latest values exist
        detector = threading.Thread(
            target=run_process, args=(stop,), name="detection", daemon=True,
            kwargs={"client": client, "prefix": prefix, "dispatch": lambda pk, d: pool.submit(run_remediation, pk, d)},
        )  # fmt: skip
        detector.start()
        sampler = threading.Thread(target=sample_pipeline, args=(client, prefix, stop, pipeline), daemon=True)
        sampler.start()

        leaves = spread_over_pods(
            Device.objects.filter(fabric__name=FABRIC, role="leaf").select_related("pod").order_by("hostname")
        )
        if len(leaves) < args.flaps + args.storms:
            raise SystemExit(
                f"{len(leaves)} leaves: not enough for {args.flaps + args.storms} faults on distinct leaves"
            )
        faults = []
        for i, leaf in enumerate(leaves[: args.flaps + args.storms]):
            pod = leaf.pod.name if leaf.pod_id else ""
            if i < args.flaps:
                link = Link.objects.filter(a_interface__device=leaf) | Link.objects.filter(b_interface__device=leaf)
                link = link.select_related("a_interface__device", "b_interface").order_by("id")[0]
                port = link.a_interface if link.a_interface.device_id == leaf.pk else link.b_interface
                rec = lab.inject("link-flap", f"{leaf.hostname}:{port.name}", period=2)
                faults.append(("link-flap", rec, {"link_id": link.pk}, pod))
            else:
                nic = GpuNic.objects.filter(leaf_interface__device=leaf).select_related("leaf_interface").first()
                rec = lab.inject("pfc-storm", f"{leaf.hostname}:{nic.leaf_interface.name}", priority=3)
                faults.append(("pfc-storm", rec, {"device": leaf.hostname}, pod))
            time.sleep(args.interval)

        def incident_of(kind, where):
            return Incident.objects.filter(kind=kind, **where).order_by("pk").first()

        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            found = [incident_of(k, w) for k, _, w, _ in faults]
            if all(i is not None and i.verified_at for i in found):
                break
            settled = (IncidentStatus.FAILED, IncidentStatus.NEEDS_HUMAN, IncidentStatus.MITIGATED)
            if all(i is not None and i.status in settled for i in found):
                break
            time.sleep(1.0)
    finally:
        stop.set()
        if detector is not None:
            detector.join(timeout=10)
        pool.shutdown(wait=True)
        for collector in collectors:
            collector.terminate()
        for collector in collectors:
            collector.wait(timeout=30)
        try:
            lab.shutdown()
            lab_proc.wait(timeout=60)
        except (LabError, subprocess.TimeoutExpired):
            lab_proc.terminate()
            lab_proc.wait(timeout=30)
        try:
            stages = stage_times(client, prefix, faults if "faults" in locals() else [])
        except Exception as exc:  # the figures above still count
            errors.append(f"stage times: {exc}")
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)

    by_fault = {st["target"]: st for st in stages}
    detect_s, mitigate_s, rows = [], [], []
    by_kind: dict[str, dict[str, list[float]]] = {}
    for kind, rec, where, pod in faults:
        inc = incident_of(kind, where)
        injected = rec["injected_at"] / 1e9
        row = {"kind": kind, "target": rec["target"], "pod": pod, "incident": inc.pk if inc else None,
               "status": inc.status if inc else "not detected"}  # fmt: skip
        if inc:
            row["detect_s"] = round(inc.detected_at.timestamp() - injected, 3)
            detect_s.append(row["detect_s"])
            by_kind.setdefault(kind, {"detect": [], "mitigate": []})["detect"].append(row["detect_s"])
            st = by_fault.get(rec["target"])
            if st:  # where the time went: lab+sampling, collector (gNMI -> Redis), detection (stream -> incident)
                row["stages_s"] = {"switch": st["switch_s"], "collector": st["collector_s"],
                                   "detection": round(inc.detected_at.timestamp() - st["handoff_at"], 3)}  # fmt: skip
            refused = inc.runs.filter(status="refused").first()
            if refused is not None:
                row["refused"] = refused.reason
            if inc.verified_at:
                row["mitigate_s"] = round(inc.verified_at.timestamp() - injected, 3)
                mitigate_s.append(row["mitigate_s"])
                by_kind[kind]["mitigate"].append(row["mitigate_s"])
            else:
                row["reason"] = inc.reason
        rows.append(row)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "switches": switches,
        "faults": len(faults),
        "profiles": "default (oper-status ON_CHANGE, PFC/ECN/drops 1 s, counters/optics 10 s)",
        "collectors": args.collectors,
        "planes": args.planes,
        "faults_per_pod": {
            kind: dict(sorted(Counter(r["pod"] for r in rows if r["kind"] == kind).items()))
            for kind in ("link-flap", "pfc-storm")
        },
        "refused_by_guardrail": [f"{r['target']}: {r['refused']}" for r in rows if "refused" in r],
        "injection_to_incident": percentiles(detect_s),
        "injection_to_verified_mitigation": percentiles(mitigate_s),
        "by_kind": {
            k: {"incident": percentiles(v["detect"]), "verified": percentiles(v["mitigate"])}
            for k, v in by_kind.items()
        },
        "stages": {
            name: percentiles([r["stages_s"][name] for r in rows if "stages_s" in r])
            for name in ("switch", "collector", "detection")
        },
        "pipeline": {name: percentiles(values) for name, values in pipeline.items()},
        "detection_stats": dict(detect._PROCESS_LOOP.stats) if detect._PROCESS_LOOP else {},
        "detection_checkpoint": dict(detect._PROCESS_LOOP.checkpoint_stats) if detect._PROCESS_LOOP else {},
        "errors": errors,
        "faults_detail": rows,
        "machine_load_1m": os.getloadavg()[0],
        "cpus": os.cpu_count(),
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'':28}{'n':>4}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for name in ("injection_to_incident", "injection_to_verified_mitigation"):
        r = result[name]
        print(f"{name:28}{r['n']:>4}{r['p50_s'] or '-':>9}{r['p95_s'] or '-':>9}{r['max_s'] or '-':>9}")
    for k, v in result["by_kind"].items():
        print(f"  {k:26}incident p50 {v['incident']['p50_s']} s, verified p50 {v['verified']['p50_s']} s")
    print("where the time to incident goes (p50 / p95 s; the pipeline rows sampled every 2 s):")
    for name, r in [*result["stages"].items(), *result["pipeline"].items()]:
        p50, p95 = ("-" if r[k] is None else r[k] for k in ("p50_s", "p95_s"))
        print(f"  {name:26}{p50:>9}{p95:>9}")
    print(f"faults per pod/plane: {result['faults_per_pod']}")
    print(f"drains refused by a guardrail (not counted as mitigated): {len(result['refused_by_guardrail'])}")
    for line in result["refused_by_guardrail"]:
        print(f"  {line}")
    print(f"load average (1 min) at the end: {result['machine_load_1m']:.1f} on {result['cpus']} CPUs")
    if errors:
        print("errors:", *errors, sep="\n  ")
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
