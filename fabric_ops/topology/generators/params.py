"""Generator parameters and their validation.

Every check raises :class:`GeneratorError` with the parameter's name first, so the
command line can print it as is ("radix: must be even ...").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from fabric_ops.errors import GeneratorError

from .catalogue import COHERENT_RATES, SUPPORTED_SPEEDS, optic

__all__ = ["SWITCH_PLATFORMS", "SWITCH_ROLES", "DciParams", "FabricParams", "resolve_params"]

SWITCH_ROLES = ("leaf", "spine", "superspine")
SWITCH_PLATFORMS = ("eos", "huawei_vrp")
KINDS = ("rail-optimized", "multi-plane")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# RFC 6996 private 4-byte ASNs.
ASN_PRIVATE_FIRST = 4_200_000_000
ASN_MAX = 4_294_967_294
# Leaves get ASN base + LEAF_ASN_OFFSET + leaf number; pods/planes get base + 1 + pod number.
LEAF_ASN_OFFSET = 10_000


@dataclass
class FabricParams:
    """What an operator asks for; ``None`` fields take a default in :func:`resolve_params`."""

    name: str
    site: str
    city: str = ""
    gpus: int = 1024
    gpus_per_host: int = 8
    rails: int | None = None  # NICs per host, one per rail; default one NIC per GPU
    radix: int = 64
    port_speed_gbps: int = 800
    tiers: int | None = None  # 2 or 3; None = the smallest that fits
    planes: int = 1
    oversubscription: float = 1.0  # leaf downlink:uplink bandwidth ratio
    platforms: dict[str, str] = field(default_factory=dict)  # role -> platform; missing roles: eos
    kind: str | None = None  # rail-optimized (planes == 1) or multi-plane
    mgmt_network: str | None = None  # default 127.100.0.0/16: lab switches bind their own loopback address
    loopback_network: str | None = None  # default 172.16.0.0/16
    p2p_network: str | None = None  # default 10.0.0.0/12, one /31 per fabric link
    asn_base: int | None = None  # default 4200000000 (RFC 6996 private 4-byte range)
    transceivers: dict[int, str] = field(default_factory=dict)  # speed (Gbps) -> catalogue optic name
    eapi_port: int = 443
    ssh_port: int = 10022
    gnmi_port: int = 6030
    credential: str = "default"
    dci_ports: int = 0  # top-tier ports kept free per plane for DCI routers (plan_multisite sets it)
    latitude: float | None = None
    longitude: float | None = None

    def as_json(self) -> dict:
        """The parameters as stored on Fabric.parameters (JSON keys must be strings)."""
        data = {k: v for k, v in self.__dict__.items()}
        data["platforms"] = dict(self.platforms)
        data["transceivers"] = {str(k): v for k, v in self.transceivers.items()}
        return data


@dataclass
class DciParams:
    """The cross-city backbone: fibre spans between sites and the wavelengths lit over them.

    ``spans`` are fibre routes ``(site_a, site_b, length_km)``; ``site_pairs`` are the site pairs that
    get ``wavelengths_per_pair`` DCI links (default: every pair), each routed over the shortest span path.
    """

    spans: list[tuple[str, str, float]]
    name: str = "dci"
    site_pairs: list[tuple[str, str]] | None = None
    wavelengths_per_pair: int = 4
    rate_gbps: int = 400  # 400 -> 400G-ZR+ on a 75 GHz slot, 800 -> 800G-ZR+ on 150 GHz
    dci_per_site: int = 2
    uplinks_per_dci: int = 4  # links from each DCI router to the site's top tier
    radix: int = 36
    platform: str = "eos"
    loss_db_per_km: float = 0.22
    connector_loss_db: float = 1.0  # patch panels and connectors at both ends
    amplifier_spacing_km: float = 80.0
    mgmt_network: str = "127.99.0.0/24"
    loopback_network: str = "172.31.255.0/24"
    p2p_network: str = "10.240.0.0/16"
    asn_base: int = 4_210_000_000
    eapi_port: int = 443
    ssh_port: int = 10022
    gnmi_port: int = 6030
    credential: str = "default"


def _fail(param: str, message: str) -> GeneratorError:
    return GeneratorError(f"{param}: {message}")


def parse_network(param: str, value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise _fail(param, f"{value!r} is not a network ({exc})") from None
    if net.version != 4:
        raise _fail(param, f"{value!r}: only IPv4 plans are generated")
    return net


def _positive_int(param: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _fail(param, f"must be a positive integer, got {value!r}")
    return value


def resolve_params(params: FabricParams, site_index: int = 0) -> FabricParams:
    """Validate ``params`` and return a copy with every default filled in.

    ``site_index`` shifts the default address and ASN plans so the sites of a multi-site
    plan never collide (site i: 127.(100+i).0.0/16, 172.(16+i).0.0/16, 10.(16*i).0.0/12).
    """
    p = params
    if not isinstance(p.name, str) or not _SLUG.match(p.name) or len(p.name) > 32:
        raise _fail("name", f"{p.name!r} must be a slug (a-z, 0-9, '-') of at most 32 characters")
    if not isinstance(p.site, str) or not _SLUG.match(p.site) or len(p.site) > 64:
        raise _fail("site", f"{p.site!r} must be a slug (a-z, 0-9, '-')")
    gpus = _positive_int("gpus", p.gpus)
    gph = _positive_int("gpus_per_host", p.gpus_per_host)
    if gpus % gph:
        raise _fail("gpus", f"{gpus} is not a multiple of gpus_per_host={gph}")
    rails = gph if p.rails is None else _positive_int("rails", p.rails)
    radix = _positive_int("radix", p.radix)
    if radix % 2 or radix < 4 or radix > 1024:
        raise _fail("radix", f"must be an even number of ports between 4 and 1024, got {radix}")
    if p.port_speed_gbps not in SUPPORTED_SPEEDS:
        raise _fail("port_speed_gbps", f"{p.port_speed_gbps} is not one of {list(SUPPORTED_SPEEDS)}")
    if p.tiers not in (None, 2, 3):
        raise _fail("tiers", f"must be 2, 3 or None (smallest that fits), got {p.tiers!r}")
    planes = _positive_int("planes", p.planes)
    kind = p.kind or ("multi-plane" if planes > 1 else "rail-optimized")
    if kind not in KINDS:
        raise _fail("kind", f"{kind!r} is not one of {list(KINDS)}")
    if kind == "rail-optimized" and planes != 1:
        raise _fail("planes", f"a rail-optimized fabric has one plane, got {planes}; use kind='multi-plane'")
    if kind == "multi-plane" and planes < 2:
        raise _fail("planes", "a multi-plane fabric needs at least 2 planes")
    if rails % planes:
        raise _fail("rails", f"{rails} rails cannot be striped evenly over {planes} planes")
    try:
        over = float(p.oversubscription)
    except (TypeError, ValueError):
        raise _fail("oversubscription", f"must be a number, got {p.oversubscription!r}") from None
    if not 1.0 <= over <= radix - 1:
        raise _fail("oversubscription", f"must be between 1 (non-blocking) and {radix - 1}, got {over}")
    platforms = {}
    for role, platform in p.platforms.items():
        if role not in SWITCH_ROLES:
            raise _fail("platforms", f"unknown role {role!r} (roles: {', '.join(SWITCH_ROLES)})")
        if platform not in SWITCH_PLATFORMS:
            raise _fail("platforms", f"unknown platform {platform!r} for {role} ({', '.join(SWITCH_PLATFORMS)})")
        platforms[role] = platform
    for role in SWITCH_ROLES:
        platforms.setdefault(role, "eos")
    transceivers = {}
    for speed, name in p.transceivers.items():
        spec = optic(name)
        if spec.speed_gbps != int(speed) or spec.coherent:
            raise _fail("transceivers", f"{name} is not a {speed}G gray optic")
        transceivers[int(speed)] = name
    mgmt = p.mgmt_network or f"127.{100 + site_index}.0.0/16"
    loop = p.loopback_network or f"172.{16 + site_index}.0.0/16"
    p2p = p.p2p_network or f"10.{16 * site_index}.0.0/12"
    for param, value in (("mgmt_network", mgmt), ("loopback_network", loop), ("p2p_network", p2p)):
        parse_network(param, value)
    asn_base = ASN_PRIVATE_FIRST + 1_000_000 * site_index if p.asn_base is None else p.asn_base
    if not isinstance(asn_base, int) or not 1 <= asn_base <= ASN_MAX:
        raise _fail("asn_base", f"must be an ASN between 1 and {ASN_MAX}, got {asn_base!r}")
    if not isinstance(p.dci_ports, int) or p.dci_ports < 0:
        raise _fail("dci_ports", f"must be a non-negative integer, got {p.dci_ports!r}")
    for param in ("eapi_port", "ssh_port", "gnmi_port"):
        port = getattr(p, param)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise _fail(param, f"must be a TCP port, got {port!r}")
    return replace(
        p,
        rails=rails,
        kind=kind,
        oversubscription=over,
        platforms=platforms,
        transceivers=transceivers,
        mgmt_network=mgmt,
        loopback_network=loop,
        p2p_network=p2p,
        asn_base=asn_base,
    )


def validate_dci(dci: DciParams, sites: list[str]) -> None:
    """Check the backbone parameters against the sites being joined."""
    if not _SLUG.match(dci.name) or len(dci.name) > 32:
        raise _fail("dci.name", f"{dci.name!r} must be a slug of at most 32 characters")
    if dci.rate_gbps not in COHERENT_RATES:
        raise _fail("dci.rate_gbps", f"{dci.rate_gbps} is not one of {list(COHERENT_RATES)} (ZR+ rates)")
    for param in ("wavelengths_per_pair", "dci_per_site", "uplinks_per_dci", "radix"):
        _positive_int(f"dci.{param}", getattr(dci, param))
    if dci.platform not in SWITCH_PLATFORMS:
        raise _fail("dci.platform", f"unknown platform {dci.platform!r} ({', '.join(SWITCH_PLATFORMS)})")
    if dci.amplifier_spacing_km <= 0 or dci.loss_db_per_km < 0 or dci.connector_loss_db < 0:
        raise _fail("dci", "amplifier_spacing_km must be > 0 and losses >= 0")
    if not dci.spans:
        raise _fail("dci.spans", "at least one fibre span (site_a, site_b, length_km) is needed")
    known = set(sites)
    for a, b, km in dci.spans:
        for s in (a, b):
            if s not in known:
                raise _fail("dci.spans", f"span {a}-{b} names unknown site {s!r} (sites: {', '.join(sites)})")
        if a == b:
            raise _fail("dci.spans", f"span {a}-{b} joins a site to itself")
        if not isinstance(km, (int, float)) or km <= 0:
            raise _fail("dci.spans", f"span {a}-{b}: length_km must be > 0, got {km!r}")
    for a, b in dci.site_pairs or []:
        if a not in known or b not in known or a == b:
            raise _fail("dci.site_pairs", f"pair {a}-{b} must name two different known sites")
    for param in ("mgmt_network", "loopback_network", "p2p_network"):
        parse_network(f"dci.{param}", getattr(dci, param))
