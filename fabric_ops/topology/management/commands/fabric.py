"""``manage.py fabric <subcommand>``: build fabrics and ask them questions.

Each subcommand is one entry in SUBCOMMANDS: a help line, a function that adds its arguments to its own
argparse sub-parser, and a handler ``(command, options) -> None``. Add a subcommand by adding an entry;
handlers raise FabricOpsError and the command turns it into a CommandError.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

from fabric_ops.errors import FabricOpsError, GeneratorError
from fabric_ops.topology.generators import (
    DciParams,
    FabricParams,
    bill_of_materials,
    persist_plan,
    persist_plans,
    plan_fabric,
    plan_multisite,
)
from fabric_ops.topology.graph.cli import add_show_arguments, add_what_if_arguments, handle_show, handle_what_if

logger = logging.getLogger(__name__)


def _key_value(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise GeneratorError(f"{what}: expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


# ---------------------------------------------------------------------------------------------- generate


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="fabric name (slug); multi-site: prefix of each site's fabric")
    parser.add_argument("--site", help="site slug (default: the fabric name)")
    parser.add_argument("--city", default="", help="city of the site")
    parser.add_argument("--gpus", type=int, required=True, help="GPUs (per site for multi-site)")
    parser.add_argument("--gpus-per-host", type=int, default=8)
    parser.add_argument("--rails", type=int, help="NICs per host, one per rail (default: one per GPU)")
    parser.add_argument("--radix", type=int, default=64, help="switch ports")
    parser.add_argument("--speed", type=int, default=800, help="port speed in Gbps")
    parser.add_argument("--tiers", type=int, choices=(2, 3), help="default: the smallest that fits")
    parser.add_argument("--planes", type=int, default=1, help="more than 1 makes a multi-plane fabric")
    parser.add_argument("--oversubscription", type=float, default=1.0, help="leaf downlink:uplink ratio")
    parser.add_argument("--kind", choices=("rail-optimized", "multi-plane"))
    parser.add_argument(
        "--platform", action="append", default=[], metavar="ROLE=PLATFORM", help="e.g. leaf=eos spine=huawei_vrp"
    )
    parser.add_argument("--transceiver", action="append", default=[], metavar="SPEED=OPTIC", help="e.g. 800=800G-2xFR4")
    parser.add_argument("--mgmt-network", help="management addresses (default 127.100.0.0/16, +1 per site)")
    parser.add_argument("--loopback-network", help="loopbacks (default 172.16.0.0/16, +1 per site)")
    parser.add_argument("--p2p-network", help="/31 link addresses (default 10.0.0.0/12, +16 per site)")
    parser.add_argument("--asn-base", type=int, help="first ASN (default 4200000000, +1000000 per site)")
    parser.add_argument("--credential", default="default", help="credential name the devices use")
    multi = parser.add_argument_group("multi-site (two or more --sites make a DCI backbone too)")
    multi.add_argument("--sites", action="append", default=[], metavar="SLUG[=CITY]", help="one per site")
    multi.add_argument("--span", action="append", default=[], metavar="SITE_A:SITE_B:KM", help="fibre route")
    multi.add_argument("--site-pair", action="append", default=[], metavar="SITE_A:SITE_B",
                       help="site pairs given wavelengths (default: every pair)")  # fmt: skip
    multi.add_argument("--dci-name", help="backbone fabric name (default NAME-dci)")
    multi.add_argument("--dci-rate", type=int, default=400, choices=(400, 800), help="ZR+ rate per wavelength")
    multi.add_argument("--dci-wavelengths", type=int, default=4, help="wavelengths per site pair")
    multi.add_argument("--dci-per-site", type=int, default=2, help="DCI routers per site")
    multi.add_argument("--dci-uplinks", type=int, default=4, help="links from each DCI router to the top tier")
    multi.add_argument("--dci-platform", default="eos")
    multi.add_argument("--dci-radix", type=int, default=36)
    parser.add_argument("--dry-run", action="store_true", help="plan and print the BOM; write nothing")
    parser.add_argument("--replace", action="store_true", help="delete fabrics of the same name first")
    parser.add_argument("--json", action="store_true", help="print the BOM as JSON")


def _fabric_params(options: dict, name: str, site: str, city: str) -> FabricParams:
    platforms = dict(_key_value(x, "--platform") for x in options["platform"])
    transceivers = {}
    for item in options["transceiver"]:
        speed, optic_name = _key_value(item, "--transceiver")
        if not speed.isdigit():
            raise GeneratorError(f"--transceiver: speed {speed!r} is not a number of Gbps")
        transceivers[int(speed)] = optic_name
    return FabricParams(
        name=name,
        site=site,
        city=city,
        gpus=options["gpus"],
        gpus_per_host=options["gpus_per_host"],
        rails=options["rails"],
        radix=options["radix"],
        port_speed_gbps=options["speed"],
        tiers=options["tiers"],
        planes=options["planes"],
        oversubscription=options["oversubscription"],
        platforms=platforms,
        kind=options["kind"],
        mgmt_network=options["mgmt_network"],
        loopback_network=options["loopback_network"],
        p2p_network=options["p2p_network"],
        asn_base=options["asn_base"],
        transceivers=transceivers,
        credential=options["credential"],
    )


def _dci_params(options: dict) -> DciParams:
    spans = []
    for item in options["span"]:
        parts = item.split(":")
        if len(parts) != 3:
            raise GeneratorError(f"--span: expected SITE_A:SITE_B:KM, got {item!r}")
        try:
            spans.append((parts[0], parts[1], float(parts[2])))
        except ValueError:
            raise GeneratorError(f"--span: length {parts[2]!r} is not a number of km") from None
    pairs = []
    for item in options["site_pair"]:
        a, sep, b = item.partition(":")
        if not sep:
            raise GeneratorError(f"--site-pair: expected SITE_A:SITE_B, got {item!r}")
        pairs.append((a, b))
    return DciParams(
        spans=spans,
        name=options["dci_name"] or f"{options['name']}-dci",
        site_pairs=pairs or None,
        wavelengths_per_pair=options["dci_wavelengths"],
        rate_gbps=options["dci_rate"],
        dci_per_site=options["dci_per_site"],
        uplinks_per_dci=options["dci_uplinks"],
        radix=options["dci_radix"],
        platform=options["dci_platform"],
        credential=options["credential"],
    )


def handle_generate(command: BaseCommand, options: dict) -> None:
    if len(options["sites"]) == 1:
        raise GeneratorError("--sites: give two or more sites for a multi-site build, or use --site for one")
    if options["sites"]:
        site_params = []
        for item in options["sites"]:
            slug, _, city = item.partition("=")
            site_params.append(_fabric_params(options, f"{options['name']}-{slug}", slug, city or slug))
        plans = plan_multisite(site_params, _dci_params(options))
    else:
        site = options["site"] or options["name"]
        plans = [plan_fabric(_fabric_params(options, options["name"], site, options["city"] or site))]
    bom = bill_of_materials(plans)
    if not options["dry_run"]:
        if len(plans) == 1:
            persist_plan(plans[0], replace=options["replace"])
        else:
            persist_plans(plans, replace=options["replace"])
    if options["json"]:
        command.stdout.write(json.dumps(bom.as_dict() | {"dry_run": options["dry_run"]}, indent=2))
        return
    command.stdout.write(bom.render())
    for plan in plans:
        if plan.sizes is not None:
            s = plan.sizes
            command.stdout.write(
                f"{plan.name}: {s.tiers}-tier, {s.planes} plane(s), {s.groups} rail groups of {s.hosts_per_group} "
                f"hosts, {s.leaves} leaves, {s.spines} spines, {s.superspines} superspines, "
                f"{s.oversubscription:g}:1 at the leaf"
            )
    verb = "planned (dry run, nothing written)" if options["dry_run"] else "created"
    command.stdout.write(f"{verb}: {', '.join(p.name for p in plans)}")


# ---------------------------------------------------------------------------------------------- bom


def add_bom_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help="fabric name(s); several are summed")
    parser.add_argument("--json", action="store_true", help="print the BOM as JSON")


def handle_bom(command: BaseCommand, options: dict) -> None:
    bom = bill_of_materials(list(options["names"]))
    command.stdout.write(json.dumps(bom.as_dict(), indent=2) if options["json"] else bom.render())


# ---------------------------------------------------------------------------------------------- registry

Handler = Callable[[BaseCommand, dict], None]
SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "generate": ("plan a Clos fabric (or several sites and their DCI) and write it", add_generate_arguments,
                 handle_generate),
    "bom": ("bill of materials of existing fabrics", add_bom_arguments, handle_bom),
    "show": ("counts, uplink capacity, bisection bandwidth and a sample ECMP of fabrics", add_show_arguments,
             handle_show),
    "what-if": ("blast radius of removing links, devices or optical spans, and the 75% guardrail verdict",
                add_what_if_arguments, handle_what_if),
}  # fmt: skip


class Command(BaseCommand):
    help = "Fabric source of truth: " + "; ".join(f"{name}: {h}" for name, (h, _, _) in SUBCOMMANDS.items())

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name, (help_text, add, _) in SUBCOMMANDS.items():
            # argparse %-formats help strings: escape so "75%" in a help line cannot break --help
            add(sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text))

    def handle(self, *args: object, **options: object) -> None:
        _, _, handler = SUBCOMMANDS[options["subcommand"]]
        try:
            handler(self, options)
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc
