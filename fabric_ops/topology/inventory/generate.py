"""``generate:`` blocks: a fabric kept as its generator parameters, expanded into rows at import time.

A cluster fabric's block holds :class:`~fabric_ops.topology.generators.FabricParams`
fields (name, site and kind come from the fabric itself); a ``dci-backbone``
fabric's block holds :class:`~fabric_ops.topology.generators.DciParams` fields
plus ``sites:``, the generated cluster fabrics it joins (default: all of them),
and then those clusters are planned together with ``plan_multisite`` (which
reserves their top-tier ports for the DCI routers). The plans become ordinary
:class:`Spec` rows, so generated fabrics get exactly the same checks, diff,
idempotence and change report as hand-written ones. The generator is
deterministic, so re-importing an unchanged block changes nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from fabric_ops.errors import GeneratorError

from ..generators import (
    OPTICS,
    DciParams,
    ExtRef,
    FabricParams,
    FabricPlan,
    plan_fabric,
    plan_multisite,
    resolve_params,
)
from ..models import Site, Transceiver
from .fields import plain
from .loader import LMap
from .problems import Problems
from .spec import Spec

__all__ = ["expand_generate_blocks"]

CLUSTER_KEYS = {f.name for f in dataclasses.fields(FabricParams)} - {"name", "site", "kind"}
DCI_KEYS = ({f.name for f in dataclasses.fields(DciParams)} - {"name"}) | {"sites"}

Block = tuple[str, Any, int, str]  # (fabric name, block, line, key path)
# The generator checks values (GeneratorError); a value of the wrong shape (a list where it wants a mapping)
# can fail inside it with a plain TypeError and friends, which are reported the same way.
_PARAM_ERRORS = (GeneratorError, TypeError, ValueError, AttributeError, KeyError)


def _check_keys(block: LMap, allowed: set[str], path: str, problems: Problems) -> bool:
    ok = True
    for key in block:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.add(block.key_line(key), f"{path}.{key}", f"unknown generator parameter{hint}")
            ok = False
    return ok


def _generator_problem(exc: Exception, block: LMap, line: int, path: str, problems: Problems) -> None:
    """GeneratorError messages start with the parameter ("radix: must be even"); point at that key's line."""
    if not isinstance(exc, GeneratorError):
        problems.add(line, path, f"invalid generator parameters ({type(exc).__name__}: {exc})")
        return
    message = str(exc)
    param, sep, rest = message.partition(": ")
    param = param.removeprefix("dci.").split(".")[0]
    if sep and isinstance(block, LMap) and param in block:
        problems.add(block.key_line(param), f"{path}.{param}", rest)
    else:
        problems.add(line, path, message)


def expand_generate_blocks(spec: Spec, blocks: list[Block], problems: Problems) -> None:
    """Plan every ``generate:`` block of the file and add the planned rows to ``spec``."""
    cluster: dict[str, tuple[FabricParams, Any, int, str]] = {}
    failed: set[str] = set()  # cluster fabrics already reported; a backbone joining them stays quiet
    backbones: list[tuple[str, DciParams, list[str], Any, int, str]] = []
    for fabric, block, line, path in blocks:
        if not isinstance(block, LMap):
            problems.add(line, path, "expected a mapping of generator parameters")
            continue
        values = spec.rows["Fabric"].get(fabric)
        if values is None:
            continue
        if values["parameters"]:
            problems.add(line, path, "give either `parameters:` or `generate:` (generate records its own parameters)")
        if values["kind"] == "dci-backbone":
            if not _check_keys(block, DCI_KEYS, path, problems):
                continue
            raw = plain(block)
            sites = raw.pop("sites", None)
            raw["spans"] = [tuple(s) if isinstance(s, list) else s for s in raw.get("spans", [])]
            if raw.get("site_pairs"):
                raw["site_pairs"] = [tuple(s) if isinstance(s, list) else s for s in raw["site_pairs"]]
            try:
                dci = DciParams(name=fabric, **raw)
            except TypeError as exc:
                problems.add(line, path, f"missing generator parameter: {exc}")
                continue
            backbones.append((fabric, dci, sites, block, line, path))
        else:
            if not _check_keys(block, CLUSTER_KEYS, path, problems):
                failed.add(fabric)
                continue
            if not values["site"]:
                problems.add(line, path, "a generated cluster fabric needs `site:` on the fabric")
                failed.add(fabric)
                continue
            raw = plain(block)
            site_row = spec.rows["Site"].get(values["site"])
            if site_row is not None:
                raw.setdefault("city", site_row["city"])
                raw.setdefault("latitude", site_row["latitude"])
                raw.setdefault("longitude", site_row["longitude"])
            params = FabricParams(name=fabric, site=values["site"], kind=values["kind"], **raw)
            try:
                resolve_params(params)  # so a bad cluster parameter is reported at its own block, not the backbone's
            except _PARAM_ERRORS as exc:
                _generator_problem(exc, block, line, path, problems)
                failed.add(fabric)
                continue
            cluster[fabric] = (params, block, line, path)

    plans: list[tuple[FabricPlan, Any, int, str]] = []
    joined: set[str] = set()
    if len(backbones) > 1:
        problems.add(backbones[1][4], backbones[1][5], "only one generated DCI backbone per file")
    for _fabric, dci, sites, block, line, path in backbones[:1]:
        names = sites if sites is not None else sorted(set(cluster) | failed)
        if failed & set(names):
            joined.update(names)
            continue
        missing = [n for n in names if n not in cluster]
        if missing:
            where = block.key_line("sites") if "sites" in block else line
            problems.add(where, f"{path}.sites", f"not generated cluster fabrics of this file: {', '.join(missing)}")
            continue
        try:
            site_plans = plan_multisite([cluster[n][0] for n in names], dci)
        except _PARAM_ERRORS as exc:
            _generator_problem(exc, block, line, path, problems)
            joined.update(names)  # their own blocks were part of the failed plan; do not plan them twice
            continue
        for name, plan in zip(names, site_plans, strict=False):
            plans.append((plan, *cluster[name][1:]))
        plans.append((site_plans[-1], block, line, path))
        joined.update(names)
    for fabric, (params, block, line, path) in cluster.items():
        if fabric in joined:
            continue
        try:
            plans.append((plan_fabric(params), block, line, path))
        except _PARAM_ERRORS as exc:
            _generator_problem(exc, block, line, path, problems)

    by_fabric = {plan.name: plan for plan, *_ in plans}
    for plan, _block, line, path in plans:
        _add_plan(spec, plan, by_fabric, line, path, problems)


def _add_plan(
    spec: Spec, plan: FabricPlan, plans: dict[str, FabricPlan], line: int, path: str, problems: Problems
) -> None:
    rows = spec.rows
    fabric = rows["Fabric"][plan.name]
    if fabric["kind"] != plan.kind:
        problems.add(line, path, f"the generator builds a {plan.kind} fabric but the fabric's kind is {fabric['kind']}")
    fabric["parameters"] = plain(plan.parameters)
    if not fabric["description"]:
        fabric["description"] = plan.description

    def add(model: str, key: Any, values: dict[str, Any]) -> None:
        first = spec.add(model, key, values, line, path)
        if first is not None:
            problems.add(line, path, f"generated {model} {key!r} is also defined on line {first[0]}")

    for s in plan.sites:
        if s.name not in rows["Site"] and not Site.objects.filter(name=s.name).exists():
            add("Site", s.name, {"city": s.city, "latitude": s.latitude, "longitude": s.longitude})
    optics = {i.transceiver for i in plan.interfaces if i.transceiver} - set(rows["Transceiver"])
    optics -= set(Transceiver.objects.filter(name__in=optics).values_list("name", flat=True))
    for name in sorted(optics):
        values = OPTICS[name]._asdict()
        values.pop("name")
        add("Transceiver", name, values)
    for s in plan.spans:
        add("OpticalSpan", s.name, {"a_site": s.a_site, "b_site": s.b_site, "length_km": s.length_km,
                                    "loss_db": s.loss_db, "amplifier_count": s.amplifier_count,
                                    "state": "up"})  # fmt: skip
    for p in plan.pods:
        add("Pod", (plan.name, p.name), {"kind": p.kind, "index": p.index})
    params = plan.parameters
    ports = {
        "eapi_port": params.get("eapi_port", 443),
        "ssh_port": params.get("ssh_port", 22),
        "gnmi_port": params.get("gnmi_port", 6030),
        "credential": params.get("credential", "default"),
    }
    for d in plan.devices:
        add("Device", d.hostname, {
            "fabric": plan.name, "site": d.site, "pod": None if d.pod is None else plan.pods[d.pod].name,
            "role": d.role, "platform": d.platform, "model": d.model, "lifecycle": "active", "rail": d.rail,
            "index": d.index, "mgmt_address": d.mgmt_address, **ports, "loopback": d.loopback, "asn": d.asn,
        })  # fmt: skip
    for i in plan.interfaces:
        add("Interface", (plan.devices[i.device].hostname, i.name), {
            "speed_gbps": i.speed_gbps, "lanes": i.lanes, "admin_up": i.admin_up, "mtu": 9214,
            "address": i.address, "description": i.description, "transceiver": i.transceiver,
        })  # fmt: skip

    def endpoint(ref: int | ExtRef) -> tuple[str, str]:
        if isinstance(ref, ExtRef):
            return ref.hostname, ref.interface
        iface = plan.interfaces[ref]
        return plan.devices[iface.device].hostname, iface.name

    link_keys = []
    for link in plan.links:
        key = (endpoint(link.a), endpoint(link.b))
        link_keys.append(key)
        add("Link", key, {"kind": link.kind, "capacity_gbps": link.capacity_gbps, "state": "up"})
    for h in plan.hosts:
        add("GpuHost", h.name, {"fabric": plan.name, "pod": None if h.pod is None else plan.pods[h.pod].name,
                                "gpus": h.gpus, "index": h.index})  # fmt: skip
    for n in plan.nics:
        add("GpuNic", (plan.hosts[n.host].name, n.rail),
            {"name": n.name, "speed_gbps": n.speed_gbps, "leaf": endpoint(n.leaf_interface)})  # fmt: skip
    for c in plan.channels:
        add("OpticalChannel", c.name, {"link": link_keys[c.link][0], "spans": tuple(sorted(set(c.spans))),
                                       "frequency_ghz": c.frequency_ghz, "rate_gbps": c.rate_gbps,
                                       "modulation": c.modulation})  # fmt: skip
