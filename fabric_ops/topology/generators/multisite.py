"""Several sites, each with its own cluster, joined by a DCI backbone over DWDM spans.

Design (documented in docs/generators.md):

* each site gets ``dci_per_site`` DCI routers (role dci) in the backbone fabric (kind dci-backbone), cabled
  **directly to the site's top tier** (spines of a 2-tier site, superspines of a 3-tier one) on ports the
  Clos left free; no border leaves, so DCI traffic never crosses a leaf and never takes GPU-facing ports;
* the DCI routers carry coherent ZR+ pluggables (IPoDWDM, no transponders): each wavelength is one
  OpticalChannel on the ITU flex grid, routed over the shortest chain of fibre spans, carrying one DCI link;
* a span's amplifiers: ceil(length / spacing) - 1 inline amplifiers; loss = length * dB/km + connectors.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import math
from dataclasses import replace

from fabric_ops.errors import GeneratorError

from .catalogue import default_optic, interface_name, lanes_for_speed
from .clos import _ip, _plan_resolved
from .params import LEAF_ASN_OFFSET, DciParams, FabricParams, resolve_params, validate_dci
from .plan import ExtRef, FabricPlan, PlanChannel, PlanDevice, PlanInterface, PlanLink, PlanSite, PlanSpan

logger = logging.getLogger(__name__)

__all__ = ["C_BAND_GHZ", "plan_multisite", "span_figures"]

# C band, flex grid: centres are 193.1 THz + n * 6.25 GHz; slots must sit inside 191.325 - 196.125 THz.
C_BAND_GHZ = (191_325.0, 196_125.0)
_SLOT_GHZ = {400: 75.0, 800: 150.0}


def span_figures(length_km: float, dci: DciParams) -> tuple[float, int]:
    """(loss dB, inline amplifier count) of a fibre span: amplifiers every ``amplifier_spacing_km``."""
    loss = round(length_km * dci.loss_db_per_km + dci.connector_loss_db, 2)
    amplifiers = max(0, math.ceil(length_km / dci.amplifier_spacing_km) - 1)
    return loss, amplifiers


def _shortest_path(spans: list[PlanSpan], a: str, b: str) -> list[int]:
    """Span indices of the shortest (by km) fibre route from site a to site b."""
    adj: dict[str, list[tuple[str, float, int]]] = {}
    for i, sp in enumerate(spans):
        adj.setdefault(sp.a_site, []).append((sp.b_site, sp.length_km, i))
        adj.setdefault(sp.b_site, []).append((sp.a_site, sp.length_km, i))
    best = {a: 0.0}
    prev: dict[str, tuple[str, int]] = {}
    heap = [(0.0, a)]
    while heap:
        dist, site = heapq.heappop(heap)
        if site == b:
            break
        if dist > best.get(site, math.inf):
            continue
        for nxt, km, i in adj.get(site, []):
            nd = dist + km
            if nd < best.get(nxt, math.inf):
                best[nxt], prev[nxt] = nd, (site, i)
                heapq.heappush(heap, (nd, nxt))
    if b not in best:
        raise GeneratorError(f"dci.spans: no fibre route between sites {a} and {b}")
    path, site = [], b
    while site != a:
        site, i = prev[site]
        path.append(i)
    return path[::-1]


def _top_tier(plan: FabricPlan) -> list[int]:
    """Devices DCI routers attach to: superspines if any, else spines."""
    role = "superspine" if any(d.role == "superspine" for d in plan.devices) else "spine"
    return [i for i, d in enumerate(plan.devices) if d.role == role]


def plan_multisite(site_params: list[FabricParams], dci: DciParams) -> list[FabricPlan]:
    """Plan every site's cluster, then the DCI backbone; the last plan returned is the backbone."""
    if len(site_params) < 2:
        raise GeneratorError("sites: a multi-site plan needs at least two sites")
    reserve = dci.dci_per_site * dci.uplinks_per_dci if isinstance(dci.dci_per_site, int) and isinstance(
        dci.uplinks_per_dci, int) else 0  # fmt: skip
    resolved = [
        resolve_params(replace(p, dci_ports=p.dci_ports or math.ceil(reserve / max(1, p.planes))), site_index=i)
        for i, p in enumerate(site_params)
    ]
    sites = [p.site for p in resolved]
    for param in ("site", "name"):
        values = [getattr(p, param) for p in resolved]
        dup = {v for v in values if values.count(v) > 1}
        if dup:
            raise GeneratorError(f"sites: {param} {sorted(dup)[0]!r} is used by more than one site")
    validate_dci(dci, sites)
    nets = [(f"{p.site}.{n}", ipaddress.ip_network(getattr(p, n))) for p in resolved
            for n in ("mgmt_network", "loopback_network", "p2p_network")]  # fmt: skip
    nets += [(f"dci.{n}", ipaddress.ip_network(getattr(dci, n))) for n in ("mgmt_network", "loopback_network",
                                                                             "p2p_network")]  # fmt: skip
    for (na, a), (nb, b) in itertools.combinations(nets, 2):
        if a.overlaps(b):
            raise GeneratorError(f"{na}: {a} overlaps {nb} {b}")
    plans = [_plan_resolved(p) for p in resolved]
    asn_ranges = [(p.asn_base, p.asn_base + LEAF_ASN_OFFSET + plan.sizes.leaves, f"site {p.site}")
                  for p, plan in zip(resolved, plans, strict=True)]  # fmt: skip
    asn_ranges.append((dci.asn_base, dci.asn_base + len(sites) - 1, "dci.asn_base"))
    for (lo_a, hi_a, na), (lo_b, hi_b, nb) in itertools.combinations(asn_ranges, 2):
        if lo_a <= hi_b and lo_b <= hi_a:
            raise GeneratorError(f"asn_base: the ASN plans of {na} and {nb} overlap")
    backbone = FabricPlan(
        name=dci.name,
        kind="dci-backbone",
        site=None,
        description=f"DCI backbone joining {', '.join(sites)} with {dci.rate_gbps}G ZR+ wavelengths",
        parameters={**dci.__dict__, "spans": [list(s) for s in dci.spans], "sites": sites,
                    "site_pairs": [list(x) for x in dci.site_pairs] if dci.site_pairs else None},
        sites=[PlanSite(p.site, p.city or p.site, p.latitude, p.longitude) for p in resolved],
    )  # fmt: skip
    for a, b, km in dci.spans:
        loss, amps = span_figures(km, dci)
        backbone.spans.append(PlanSpan(f"{dci.name}-{a}-{b}", a, b, float(km), loss, amps))

    rate = dci.rate_gbps
    coherent = default_optic(rate, coherent=True)
    mgmt0 = int(ipaddress.ip_network(dci.mgmt_network).network_address)
    loop0 = int(ipaddress.ip_network(dci.loopback_network).network_address)
    p2p_net = ipaddress.ip_network(dci.p2p_network)
    p2p0 = int(p2p_net.network_address)
    n_routers = dci.dci_per_site * len(sites)
    if n_routers > ipaddress.ip_network(dci.mgmt_network).num_addresses - 2:
        raise GeneratorError(f"dci.mgmt_network: {dci.mgmt_network} is too small for {n_routers} DCI routers")
    if n_routers > ipaddress.ip_network(dci.loopback_network).num_addresses - 2:
        raise GeneratorError(f"dci.loopback_network: {dci.loopback_network} is too small for {n_routers} routers")

    # Per DCI router: ports in use so far; interface rows are built at the end.
    ports: list[list[tuple[str, int, bool, str, str, str | None]]] = []
    link_no = 0

    def p2p_pair() -> tuple[str, str]:
        nonlocal link_no
        net = p2p0 + 2 * link_no
        link_no += 1
        if 2 * link_no > p2p_net.num_addresses:
            raise GeneratorError(f"dci.p2p_network: {dci.p2p_network} has too few /31s for the DCI links")
        return f"{_ip(net + 1)}/31", f"{_ip(net)}/31"

    def add_port(d: int, speed: int, address: str, desc: str, optic_name: str) -> int:
        if len(ports[d]) >= dci.radix:
            raise GeneratorError(
                f"dci.radix: DCI router {backbone.devices[d].hostname} needs more than {dci.radix} ports "
                "(lower wavelengths_per_pair or uplinks_per_dci, or add dci_per_site)"
            )
        n = len(ports[d]) + 1
        ports[d].append((interface_name(dci.platform, n, speed), speed, True, address, desc, optic_name))
        return n - 1

    pending_links: list[tuple[int | ExtRef, tuple[int, int], str, int]] = []  # (a, (router, port), kind, cap)
    routers: dict[str, list[int]] = {}
    for si, (p, plan) in enumerate(zip(resolved, plans, strict=True)):
        routers[p.site] = []
        tops = _top_tier(plan)
        free = {t: [i for i in range(*plan.device_ports[t]) if not plan.interfaces[i].admin_up] for t in tops}
        speed = p.port_speed_gbps
        gray = p.transceivers.get(speed) or default_optic(speed)
        for r in range(dci.dci_per_site):
            d = len(backbone.devices)
            host = f"{dci.name}-{p.site}-dci{r + 1}"
            backbone.devices.append(
                PlanDevice(host, "dci", dci.platform, f"DCI router {dci.radix}x{rate}G", p.site, None, None, r,
                           _ip(mgmt0 + 1 + d), _ip(loop0 + 1 + d), dci.asn_base + si)
            )  # fmt: skip
            ports.append([])
            routers[p.site].append(d)
            for t in range(dci.uplinks_per_dci):
                top = max(tops, key=lambda t: len(free[t]))  # the emptiest top-tier switch: spreads the uplinks
                if not free[top]:
                    raise GeneratorError(
                        f"dci.uplinks_per_dci: site {p.site} top tier has no free ports left for DCI router {host}; "
                        "lower uplinks_per_dci or build the site below its Clos maximum"
                    )
                port = free[top].pop(0)
                a_addr, b_addr = p2p_pair()
                top_if = plan.interfaces[port]
                top_name = plan.devices[top].hostname
                dport = add_port(d, speed, a_addr, f"{top_name} {top_if.name}", gray)
                plan.interfaces[port] = top_if._replace(
                    admin_up=True, address=b_addr, transceiver=gray,
                    description=f"{host} {ports[d][dport][0]}",
                )  # fmt: skip
                pending_links.append((ExtRef(plan.name, top_name, top_if.name), (d, dport), "fabric", speed))

    pairs = dci.site_pairs or list(itertools.combinations(sites, 2))
    spacing = _SLOT_GHZ[rate]
    n_slots = int((C_BAND_GHZ[1] - C_BAND_GHZ[0]) // spacing)
    used: dict[int, set[int]] = {i: set() for i in range(len(backbone.spans))}
    reach_km = 1_000.0
    channels: list[tuple[str, tuple[int, int], tuple[int, int], tuple[int, ...], float]] = []
    for a, b in pairs:
        path = _shortest_path(backbone.spans, a, b)
        km = sum(backbone.spans[i].length_km for i in path)
        if km > reach_km:
            raise GeneratorError(f"dci.spans: route {a}-{b} is {km:g} km, beyond {coherent} reach ({reach_km:g} km)")
        for w in range(dci.wavelengths_per_pair):
            slot = next((n for n in range(n_slots) if all(n not in used[i] for i in path)), None)
            if slot is None:
                raise GeneratorError(f"dci.wavelengths_per_pair: C band full on the {a}-{b} route ({n_slots} slots)")
            for i in path:
                used[i].add(slot)
            freq = C_BAND_GHZ[0] + spacing / 2 + slot * spacing
            ra = routers[a][w % dci.dci_per_site]
            rb = routers[b][w % dci.dci_per_site]
            addr_a, addr_b = p2p_pair()
            name = f"{dci.name}-{a}-{b}-ch{w + 1:02d}"
            pa = add_port(ra, rate, addr_a, f"{name} to {backbone.devices[rb].hostname}", coherent)
            pb = add_port(rb, rate, addr_b, f"{name} to {backbone.devices[ra].hostname}", coherent)
            channels.append((name, (ra, pa), (rb, pb), tuple(path), freq))

    # Interface rows: each router's used ports in order, then its empty cages.
    firsts = []
    for d, dev in enumerate(backbone.devices):
        first = len(backbone.interfaces)
        firsts.append(first)
        for name, speed, up, addr, desc, optic_name in ports[d]:
            backbone.interfaces.append(
                PlanInterface(d, name, speed, lanes_for_speed(speed), up, addr, desc, optic_name)
            )
        for n in range(len(ports[d]) + 1, dci.radix + 1):
            backbone.interfaces.append(
                PlanInterface(d, interface_name(dev.platform, n, rate), rate, lanes_for_speed(rate), False, "", "",
                              None)
            )  # fmt: skip
        backbone.device_ports.append((first, len(backbone.interfaces)))
    for a, (d, port), kind, cap in pending_links:
        backbone.links.append(PlanLink(a, firsts[d] + port, kind, cap))
    for name, (ra, pa), (rb, pb), path, freq in channels:
        backbone.links.append(PlanLink(firsts[ra] + pa, firsts[rb] + pb, "dci", rate))
        backbone.channels.append(
            PlanChannel(name, len(backbone.links) - 1, tuple(backbone.spans[i].name for i in path), freq, rate,
                        "DP-16QAM")
        )  # fmt: skip
    logger.info("planned DCI backbone %s: %s", dci.name, backbone.counts())
    return [*plans, backbone]
