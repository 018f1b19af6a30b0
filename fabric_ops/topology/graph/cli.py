"""The ``fabric show`` and ``fabric what-if`` subcommands (registered in management/commands/fabric.py).

Kept next to the graph so the command file only lists them; handlers take the
command (for its stdout) and the parsed options, and raise FabricOpsError.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict

from django.core.management.base import BaseCommand

from .core import FabricGraph
from .results import BlastRadius

GUARDRAIL_DEFAULT = 0.75


def _gbps(value: float) -> str:
    return f"{value / 1000:,.1f} Tbps" if value >= 10_000 else f"{value:,.0f} Gbps"


def _pct(value: float) -> str:
    """One decimal, more when that would round a real change to 0.0% or 100.0% (one link of 64 is 1.6%)."""
    for decimals in range(1, 7):
        text = f"{value * 100:.{decimals}f}"
        if not (0 < value < 1 and text in ("0." + "0" * decimals, "100." + "0" * decimals)):
            break
    return text + "%"


# ---------------------------------------------------------------------------------------------- show


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="fabric name(s); several are analysed as one graph")
    parser.add_argument("--from", dest="leaf_a", metavar="LEAF", help="first leaf of the ECMP sample")
    parser.add_argument("--to", dest="leaf_b", metavar="LEAF", help="second leaf of the ECMP sample")
    parser.add_argument("--refresh", action="store_true", help="rebuild the graph even if the cached one is fresh")


def handle_show(command: BaseCommand, options: dict) -> None:
    graph = FabricGraph.load(list(options["names"]), refresh=options["refresh"])
    out = command.stdout
    counts = graph.counts()
    roles = ", ".join(f"{role} {n}" for role, n in graph.role_counts().items())
    out.write(f"Fabric(s): {', '.join(options['names'])}  (graph built in {graph.load_seconds:.2f} s)")
    out.write(f"  devices        {counts['devices']:>9,}  ({roles or 'none'})")
    out.write(f"  links          {counts['links']:>9,}  ({counts['links_carrying']:,} carrying traffic)")
    out.write(f"  GPU hosts      {counts['gpu_hosts']:>9,}  ({counts['gpu_nics']:,} NICs)")
    out.write(f"  optical spans  {counts['optical_spans']:>9,}")
    leaves = graph.leaves()
    if not leaves:
        out.write("No leaves: nothing to measure.")
        return
    now = graph.uplink_capacities()
    effective = graph.uplink_capacities(effective=True)
    values = sorted(now.values())
    below = [name for name in leaves if effective[name] < graph.design_uplink_capacity(name) - 1e-9]
    out.write(
        f"Leaf uplink capacity: min {_gbps(values[0])}, median {_gbps(statistics.median(values))}, "
        f"max {_gbps(values[-1])}, total {_gbps(sum(values))}"
    )
    out.write(
        f"Leaves below design capacity (effective): {len(below)}" + (f" e.g. {', '.join(below[:5])}" if below else "")
    )
    out.write(f"Bisection bandwidth: {_gbps(graph.bisection_bandwidth())}")
    leaf_a = options["leaf_a"] or leaves[0]
    # Default partner: the farthest-listed leaf that can reach leaf_a (planes of a multi-plane fabric cannot).
    leaf_b = options["leaf_b"] or next((x for x in reversed(leaves) if graph.same_component(leaf_a, x)), leaf_a)
    paths = graph.ecmp_paths(leaf_a, leaf_b)
    if paths.hops is None:
        out.write(f"ECMP {leaf_a} -> {leaf_b}: unreachable")
    else:
        out.write(
            f"ECMP {leaf_a} -> {leaf_b}: {paths.count:,} equal-cost paths of {paths.hops} hops, "
            f"bottleneck {_gbps(paths.bottleneck_gbps)} (slowest link {_gbps(paths.min_link_gbps)})"
        )


# ---------------------------------------------------------------------------------------------- what-if


def add_what_if_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help="fabric name(s); include the DCI backbone to see DCI effects"
    )
    parser.add_argument("--link", action="append", type=int, default=[], metavar="ID", help="link id (repeatable)")
    parser.add_argument("--device", action="append", default=[], metavar="HOST", help="hostname (repeatable)")
    parser.add_argument("--span", action="append", default=[], metavar="NAME", help="optical span (repeatable)")
    parser.add_argument(
        "--threshold", type=float, default=GUARDRAIL_DEFAULT, help="guardrail: min remaining leaf uplink fraction"
    )
    parser.add_argument("--limit", type=int, default=20, help="rows per table (worst first); 0 = all")
    parser.add_argument("--json", action="store_true", help="print the blast radius as JSON")


def handle_what_if(command: BaseCommand, options: dict) -> None:
    graph = FabricGraph.load(list(options["names"]))
    result = graph.blast_radius(links=options["link"], devices=options["device"], spans=options["span"])
    if options["json"]:
        payload = asdict(result) | {"partitioned": result.partitioned, "passes": result.passes(options["threshold"])}
        command.stdout.write(json.dumps(payload, indent=2))
        return
    for line in render_blast_radius(result, options["threshold"], options["limit"]):
        command.stdout.write(line)


def render_blast_radius(result: BlastRadius, threshold: float = GUARDRAIL_DEFAULT, limit: int = 20) -> list[str]:
    """The what-if report as lines of text (also handy for logs and notifications)."""
    if result.empty:
        return ["Nothing named (--link/--device/--span): an empty change removes nothing.", "Guardrail: PASS"]
    lines = [
        "Removing: "
        + "; ".join(
            f"{label} {', '.join(map(str, items))}"
            for label, items in (("links", result.links), ("devices", result.devices), ("spans", result.spans))
            if items
        ),
        f"Links removed: {len(result.removed_link_ids)}; capacity lost {_gbps(result.capacity_lost_gbps)} "
        f"(DCI {_gbps(result.dci_capacity_lost_gbps)}); leaf uplinks lost {_gbps(result.leaf_uplink_lost_gbps)} "
        f"effective; host NIC capacity lost {_gbps(result.host_capacity_lost_gbps)}",
    ]
    cut = limit or None
    leaves = sorted(result.leaves, key=lambda r: (not r.removed, r.remaining_fraction, r.hostname))
    if leaves:
        width = max(len(r.hostname) for r in leaves[:cut])
        lines.append(
            f"{'LEAF':<{width}}  {'BEFORE':>10}  {'AFTER':>10}  {'DESIGN':>10}  {'LOST':>6}  {'REMAINING':>9}  NOTE"
        )
        for r in leaves[:cut]:
            note = "removed" if r.removed else "partitioned" if r.partitioned else ""
            lines.append(
                f"{r.hostname:<{width}}  {_gbps(r.before_gbps):>10}  {_gbps(r.after_gbps):>10}  "
                f"{_gbps(r.design_gbps):>10}  {_pct(r.lost_fraction):>6}  {_pct(r.remaining_fraction):>9}  {note}"
            )
        if cut and len(leaves) > cut:
            lines.append(f"... and {len(leaves) - cut} more leaves")
    else:
        lines.append("No leaf loses uplink capacity.")
    hosts = sorted(result.hosts, key=lambda h: (-h.lost_fraction, h.name))
    if hosts:
        lines.append(
            f"GPU hosts affected: {len(hosts)} (worst loses {_pct(result.max_host_lost_fraction)} of its bandwidth; "
            f"{len(result.isolated_hosts)} isolated)"
        )
        for h in hosts[:cut]:
            lines.append(
                f"  {h.name}  lost {_pct(h.lost_fraction)}  NICs lost {h.nics_lost}"
                + (" ISOLATED" if h.isolated else "")
            )
        if cut and len(hosts) > cut:
            lines.append(f"  ... and {len(hosts) - cut} more hosts")
    else:
        lines.append("No GPU host loses bandwidth.")
    if result.partitions:
        for piece in result.partitions:
            shown = ", ".join(piece[:10]) + (f" ... ({len(piece)} devices)" if len(piece) > 10 else "")
            lines.append(f"PARTITION: cut off from the rest: {shown}")
    else:
        lines.append("Partitions: none")
    for groups in result.site_partitions:
        lines.append("SITE DCI SPLIT: " + " | ".join(", ".join(group) for group in groups))
    verdict = "PASS" if result.passes(threshold) else "FAIL"
    lines.append(
        f"Guardrail (no partition, every surviving leaf keeps >= {_pct(threshold)} of its design uplinks): {verdict} "
        f"(min remaining {_pct(result.min_remaining_uplink_fraction)}"
        + (", partitioned" if result.partitioned else "")
        + ")"
    )
    return lines
