"""``manage.py lab up|status|inject|clear|down``: run the virtual lab and drive it over its control channel."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fabric_ops.cli import key_values
from fabric_ops.errors import FabricOpsError
from fabric_ops.lab.control import LabClient
from fabric_ops.lab.faults import FAULT_KINDS


def _params(items: list[str]) -> dict[str, str]:
    return key_values(items, "fault parameter", "key=value")


class Command(BaseCommand):
    help = "Run the virtual lab (up) and control it (status, inject, clear, down)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        up = sub.add_parser("up", help="build and run the lab in the foreground until SIGINT/SIGTERM or `lab down`")
        up.add_argument("--fabric", action="append", dest="fabrics", help="fabric to emulate (repeatable; default all)")
        up.add_argument("--inventory", help="import this inventory file first, then emulate its fabrics")
        up.add_argument("--control-port", type=int, default=0, help="control channel port on 127.0.0.1 (0: any)")
        up.add_argument("--tick", type=float, default=0.2, help="physics tick in seconds (stretches on big labs)")
        up.add_argument("--seed", type=int, default=1, help="random seed of the physics")
        up.add_argument(
            "--max-duty", type=float, default=0.1, help="physics CPU budget (share of a core) before the tick stretches"
        )
        up.add_argument("--load", type=float, default=0.5, help="GPU job load, fraction of NIC line rate (0..1)")
        up.add_argument("--pattern", default="ring", choices=["ring", "all-to-all"], help="GPU job collective")
        up.add_argument(
            "--frontend", action="append", dest="frontends", help="eos, huawei_vrp, gnmi (repeatable; default all)"
        )
        status = sub.add_parser("status", help="show switches, links, ticks and faults of the running lab")
        status.add_argument("--json", action="store_true", help="print the raw JSON status")
        kinds = "\n".join(
            f"  {name:<22} target: {kind.target_help}; "
            + (", ".join(f"{p}={spec.default:g}" for p, spec in kind.params.items()) or "no parameters")
            for name, kind in FAULT_KINDS.items()
        )
        inject = sub.add_parser(
            "inject",
            help=f"inject a fault: {', '.join(FAULT_KINDS)}",
            description=f"Inject a fault; parameters are key=value (defaults shown).\n{kinds}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        inject.add_argument("kind", choices=sorted(FAULT_KINDS))
        inject.add_argument("target", help="switch:ifname | link:<id> | host:<host>:<nic> | hostname | span")
        inject.add_argument("params", nargs="*", help="key=value fault parameters")
        inject.add_argument("--for", dest="duration", type=float, help="clear automatically after SECONDS")
        clear = sub.add_parser("clear", help="clear a fault by id, or --all")
        clear.add_argument("fault_id", nargs="?")
        clear.add_argument("--all", action="store_true")
        jobs = sub.add_parser("jobs", help="show the GPU jobs, or replace them with --load/--pattern/--hosts")
        jobs.add_argument("--load", type=float, help="fraction of NIC line rate (0..1); 0 stops the traffic")
        jobs.add_argument("--pattern", choices=["ring", "all-to-all"], default="ring")
        jobs.add_argument("--hosts", help="comma-separated GPU hosts (default: all)")
        jobs.add_argument("--cross-rail", action="store_true", help="send to the next rail's NIC (over the spines)")
        down = sub.add_parser("down", help="stop the running lab")
        down.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it to exit")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc

    def _up(self, options: dict[str, Any]) -> None:
        from fabric_ops.lab.daemon import run_lab

        run_lab(
            fabrics=options["fabrics"],
            inventory=options["inventory"],
            control_port=options["control_port"],
            tick=options["tick"],
            seed=options["seed"],
            load=options["load"],
            max_duty=options["max_duty"],
            pattern=options["pattern"],
            frontends=tuple(options["frontends"] or ("eos", "huawei_vrp", "gnmi")),
            out=self.stdout,
        )

    def _status(self, options: dict[str, Any]) -> None:
        status = LabClient().status()
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2))
            return
        links = status["links"]
        self.stdout.write(
            f"fabrics {', '.join(status['fabrics']) or '-'}: {status['switches_alive']}/{status['switches']} switches "
            f"alive, {status['ports']} ports, links {links['up']} up / {links['down']} down, {status['flows']} flows\n"
            f"ticks {status['ticks']} (every {status['tick_seconds']} s, last {status['last_tick_ms']} ms, "
            f"{status['late_ticks']} late); front ends {json.dumps(status['frontends'])}"
        )
        active = [f for f in status["faults"] if f["active"]]
        self.stdout.write(f"{len(active)} active fault(s), {len(status['faults']) - len(active)} cleared")
        for fault in status["faults"]:
            when = time.strftime("%H:%M:%S", time.gmtime(fault["injected_at"] / 1e9))
            state = "active" if fault["active"] else f"cleared ({fault['cleared_by']})"
            params = " ".join(f"{k}={v:g}" for k, v in fault["params"].items())
            self.stdout.write(f"  {fault['id']:>5} {fault['kind']:<22} {fault['target']:<32} {when}Z {state} {params}")

    def _inject(self, options: dict[str, Any]) -> None:
        record = LabClient().inject(
            options["kind"], options["target"], duration=options["duration"], **_params(options["params"])
        )
        self.stdout.write(json.dumps(record))

    def _clear(self, options: dict[str, Any]) -> None:
        if not options["all"] and not options["fault_id"]:
            raise CommandError("name a fault id, or use --all")
        records = LabClient().clear(options["fault_id"], all=options["all"])
        self.stdout.write(json.dumps(records))

    def _jobs(self, options: dict[str, Any]) -> None:
        client = LabClient()
        if options["load"] is None:
            self.stdout.write(json.dumps(client.jobs(), indent=2))
            return
        job = {
            "name": "default",
            "load": options["load"],
            "pattern": options["pattern"],
            "cross_rail": options["cross_rail"],
        }
        if options["hosts"]:
            job["hosts"] = [h.strip() for h in options["hosts"].split(",") if h.strip()]
        self.stdout.write(json.dumps(client.set_jobs([job]), indent=2))

    def _down(self, options: dict[str, Any]) -> None:
        from fabric_ops.lab.control import control_file

        client = LabClient()
        client.shutdown()
        deadline = time.monotonic() + options["wait"]
        while control_file().exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if control_file().exists():
            raise CommandError(f"the lab did not stop within {options['wait']:g} s")
        self.stdout.write("lab stopped")
