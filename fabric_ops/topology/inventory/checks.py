"""Checks across objects and against the database, once the whole file is read.

References (sites, pods, transceivers, link ends, NIC leaf ports, channel
links and spans), interfaces used twice, and address collisions (management,
loopback, point-to-point) inside the file and with devices of fabrics the
file does not describe. Also fills the values that default from other rows:
link capacity (slowest end), NIC speed (leaf port speed), addresses given by
a link's ``subnet``, and a channel's link (named by either end).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from django.db.models import Q

from ..models import Device, GpuHost, Interface, OpticalChannel, OpticalSpan, Site, Transceiver
from .problems import Problems
from .schema import subnet_pair
from .spec import Spec, endpoint_str
from .state import chunked_values

__all__ = ["check_spec", "scope_hostnames"]


def _known(spec: Spec, model: str, names: set[str], db_model) -> set[str]:
    """Names defined in the file or already in the database (catalogues are shared by all fabrics)."""
    known = set(spec.rows[model])
    missing = names - known
    if missing:
        known |= set(db_model.objects.filter(name__in=missing).values_list("name", flat=True))
    return known


def scope_hostnames(spec: Spec) -> set[str]:
    """Hostnames the import may change: devices of the named fabrics, plus devices the file names."""
    in_db = Device.objects.filter(fabric__name__in=spec.fabric_names).values_list("hostname", flat=True)
    return set(in_db) | set(spec.rows["Device"])


def check_spec(spec: Spec, link_meta: dict[Any, dict[str, Any]], problems: Problems) -> None:
    """Run every cross check; fills derived values in ``spec`` in place."""
    _check_catalogue_refs(spec, problems)
    _check_pods(spec, problems)
    users = _check_links(spec, link_meta, problems)
    _check_nics(spec, users, problems)
    _check_channels(spec, problems)
    mgmt, data = _check_addresses(spec, problems)
    _check_database_owners(spec, mgmt, data, problems)


def _check_catalogue_refs(spec: Spec, problems: Problems) -> None:
    rows = spec.rows
    site_refs = {v["site"] for v in rows["Fabric"].values() if v["site"]}
    site_refs |= {v["site"] for v in rows["Device"].values() if v["site"]}
    site_refs |= {v[k] for v in rows["OpticalSpan"].values() for k in ("a_site", "b_site") if v[k]}
    sites = _known(spec, "Site", site_refs, Site)
    for name, v in rows["Fabric"].items():
        if v["site"] and v["site"] not in sites:
            problems.add(*spec.at("Fabric", name, "site"), f"unknown site {v['site']!r}")
    for hostname, v in rows["Device"].items():
        if v["site"] and v["site"] not in sites:
            problems.add(*spec.at("Device", hostname, "site"), f"unknown site {v['site']!r}")
    for name, v in rows["OpticalSpan"].items():
        for k in ("a_site", "b_site"):
            if v[k] is not None and v[k] not in sites:
                problems.add(*spec.at("OpticalSpan", name, k), f"unknown site {v[k]!r}")
    xcvr_refs = {v["transceiver"] for v in rows["Interface"].values() if v["transceiver"]}
    xcvrs = _known(spec, "Transceiver", xcvr_refs, Transceiver)
    for key, v in rows["Interface"].items():
        if v["transceiver"] and v["transceiver"] not in xcvrs:
            problems.add(
                *spec.at("Interface", key, "transceiver"),
                f"{endpoint_str(key)}: unknown transceiver {v['transceiver']!r}",
            )


def _check_pods(spec: Spec, problems: Problems) -> None:
    pods = spec.rows["Pod"]
    for model in ("Device", "GpuHost"):
        for key, v in spec.rows[model].items():
            if v["pod"] is not None and (v["fabric"], v["pod"]) not in pods:
                problems.add(*spec.at(model, key, "pod"), f"unknown pod {v['pod']!r} in fabric {v['fabric']!r}")


def _endpoint_problem(spec: Spec, ep: tuple[str, str]) -> str | None:
    if ep[0] not in spec.rows["Device"]:
        return f"link to a missing device {ep[0]!r}"
    if ep not in spec.rows["Interface"]:
        return f"link to a missing interface {endpoint_str(ep)!r} (declare it under the device's interfaces)"
    return None


def _network_key(address: str) -> tuple[int, int]:
    """(prefix length, network number) of a normalised ``ip/len``; inet_pton is ~20x cheaper than ipaddress."""
    ip_s, _, plen_s = address.partition("/")
    family, bits = (socket.AF_INET6, 128) if ":" in ip_s else (socket.AF_INET, 32)
    plen = int(plen_s)
    return plen + (bits - 32) * 1000, int.from_bytes(socket.inet_pton(family, ip_s), "big") >> (bits - plen)


def _used_twice(ep: tuple[str, str], first: tuple[int, str]) -> str:
    return f"interface {endpoint_str(ep)} is used twice (already used by {first[1]} on line {first[0]})"


def _check_links(
    spec: Spec, link_meta: dict[Any, dict[str, Any]], problems: Problems
) -> dict[tuple[str, str], tuple[int, str]]:
    interfaces = spec.rows["Interface"]
    users: dict[tuple[str, str], tuple[int, str]] = {}
    bad: list[Any] = []
    for key, v in spec.rows["Link"].items():
        line, path = spec.at("Link", key)
        subnet = link_meta.get(key, {}).get("subnet")
        ok = True
        for side, ep in zip(("a", "b"), key, strict=True):
            where = spec.at("Link", key, side)
            problem = _endpoint_problem(spec, ep)
            if problem:
                problems.add(*where, problem)
                ok = False
                continue
            if ep in users:
                problems.add(*where, _used_twice(ep, users[ep]))
                ok = False
            else:
                users[ep] = (where[0], f"the link at {path}")
        if not ok:
            bad.append(key)
            continue
        a, b = (interfaces[ep] for ep in key)
        if v["capacity_gbps"] is None and a["speed_gbps"] and b["speed_gbps"]:
            v["capacity_gbps"] = min(a["speed_gbps"], b["speed_gbps"])
        if subnet:
            for side, ep, address in zip(("a", "b"), key, subnet_pair(subnet), strict=True):
                row = interfaces[ep]
                if row["address"] and row["address"] != address:
                    problems.add(
                        *spec.at("Link", key, "subnet"),
                        f"{endpoint_str(ep)} has address {row['address']} but subnet {subnet} gives the {side} end "
                        f"{address}",
                    )
                else:
                    row["address"] = address
                    spec.address_from[ep] = spec.at("Link", key, "subnet")
        if a["address"] and b["address"] and _network_key(a["address"]) != _network_key(b["address"]):
            problems.add(line, path, f"link ends are in different subnets: {a['address']} and {b['address']}")
    return users  # NICs check against the same map


def _check_nics(spec: Spec, users: dict[tuple[str, str], tuple[int, str]], problems: Problems) -> None:
    interfaces = spec.rows["Interface"]
    for key, v in spec.rows["GpuNic"].items():
        where = spec.at("GpuNic", key, "leaf")
        leaf = v["leaf"]
        problem = _endpoint_problem(spec, leaf)
        if problem:
            problems.add(*where, problem.replace("link to", "NIC attached to"))
            continue
        if leaf in users:
            problems.add(*where, _used_twice(leaf, users[leaf]))
            continue
        users[leaf] = (where[0], f"NIC {key[0]}:rail{key[1]}")
        if v["speed_gbps"] is None:
            v["speed_gbps"] = interfaces[leaf]["speed_gbps"]


def _check_channels(spec: Spec, problems: Problems) -> None:
    by_end: dict[tuple[str, str], Any] = {}
    for key in spec.rows["Link"]:
        by_end[key[0]] = key
        by_end[key[1]] = key
    span_refs = {s for v in spec.rows["OpticalChannel"].values() for s in v["spans"]}
    spans = _known(spec, "OpticalSpan", span_refs, OpticalSpan)
    carried: dict[Any, tuple[int, str]] = {}
    for name, v in spec.rows["OpticalChannel"].items():
        where = spec.at("OpticalChannel", name, "link")
        link = by_end.get(v["link"])
        if link is None:
            problems.add(*where, f"no link in this file ends at {endpoint_str(v['link'])}")
        elif link in carried:
            problems.add(*where, f"link {endpoint_str(link[0])} already carries channel {carried[link][1]!r}")
        else:
            carried[link] = (where[0], name)
            v["link"] = link[0]
        for span in v["spans"]:
            if span not in spans:
                problems.add(*spec.at("OpticalChannel", name, "spans"), f"unknown optical span {span!r}")


def _check_addresses(spec: Spec, problems: Problems) -> tuple[dict[str, str], dict[str, str]]:
    mgmt: dict[str, str] = {}
    data: dict[str, str] = {}  # loopbacks and interface addresses share one data-plane address space
    for hostname, v in spec.rows["Device"].items():
        if v["mgmt_address"]:
            owner = mgmt.setdefault(v["mgmt_address"], hostname)
            if owner != hostname:
                problems.add(
                    *spec.at("Device", hostname, "mgmt_address"),
                    f"address collision: {v['mgmt_address']} is also {owner}'s",
                )
        if v["loopback"]:
            owner = data.setdefault(v["loopback"], f"{hostname} loopback")
            if owner != f"{hostname} loopback":
                problems.add(
                    *spec.at("Device", hostname, "loopback"), f"address collision: {v['loopback']} is also {owner}"
                )
    for key, v in spec.rows["Interface"].items():
        if not v["address"]:
            continue
        ip = v["address"].partition("/")[0]  # addresses are normalised when read
        me = endpoint_str(key)
        owner = data.setdefault(ip, me)
        if owner != me:
            problems.add(*_address_at(spec, key), f"address collision: {me} {ip} is also {owner}")
    return mgmt, data


def _address_at(spec: Spec, key: tuple[str, str]) -> tuple[int, str]:
    """Where an interface's address was written: on the port, or as the subnet of its link."""
    return spec.address_from.get(key) or spec.at("Interface", key, "address")


def _check_database_owners(spec: Spec, mgmt: dict[str, str], data: dict[str, str], problems: Problems) -> None:
    """Names and addresses already held by rows this import does not own (fabrics the file does not name)."""
    fabrics = spec.fabric_names
    hostnames = set(spec.rows["Device"])
    outside = Q(fabric__name__in=fabrics)
    for hostname, fabric in chunked_values(Device.objects.exclude(outside), "hostname", hostnames, "fabric__name"):
        problems.add(
            *spec.at("Device", hostname, "hostname"),
            f"duplicate hostname: {hostname} already exists in fabric {fabric!r}, which this file does not describe",
        )
    hosts = set(spec.rows["GpuHost"])
    for name, fabric in chunked_values(GpuHost.objects.exclude(outside), "name", hosts, "fabric__name"):
        problems.add(
            *spec.at("GpuHost", name, "name"),
            f"duplicate GPU host: {name} already exists in fabric {fabric!r}, which this file does not describe",
        )
    channel_names = set(spec.rows["OpticalChannel"])
    if channel_names:
        for name, host, fabric in OpticalChannel.objects.filter(name__in=channel_names).values_list(
            "name", "link__a_interface__device__hostname", "link__a_interface__device__fabric__name"
        ):
            if fabric not in fabrics and host not in hostnames:
                problems.add(
                    *spec.at("OpticalChannel", name, "name"),
                    f"duplicate channel: {name} already carries a link of fabric {fabric!r}",
                )
    # Devices of other fabrics: scanned rather than filtered with IN lists (a 10k-GPU file has 40k addresses).
    others = Device.objects.exclude(outside).exclude(mgmt_address__isnull=True, loopback__isnull=True)
    for hostname, address, loopback in others.values_list("hostname", "mgmt_address", "loopback").iterator(5000):
        if hostname in hostnames:
            continue
        if address in mgmt:
            problems.add(
                *spec.at("Device", mgmt[address], "mgmt_address"),
                f"address collision: {address} is {hostname}'s (in the database)",
            )
        if loopback in data:
            _report_data_collision(spec, problems, data[loopback], loopback, f"{hostname} loopback")
    addressed = (
        Interface.objects.exclude(address="")
        .exclude(device__fabric__name__in=fabrics)
        .values_list("device__hostname", "name", "address")
    )
    for hostname, name, address in addressed.iterator(chunk_size=5000):
        if hostname in hostnames:
            continue
        try:
            ip = str(ipaddress.ip_interface(address).ip)
        except ValueError:
            continue
        if ip in data:
            _report_data_collision(spec, problems, data[ip], ip, f"{hostname}:{name}")


def _report_data_collision(spec: Spec, problems: Problems, owner: str, ip: str, other: str) -> None:
    if owner.endswith(" loopback"):
        where = spec.at("Device", owner[: -len(" loopback")], "loopback")
    else:
        host, _, iface = owner.partition(":")
        where = _address_at(spec, (host, iface))
    problems.add(*where, f"address collision: {ip} is also {other} (in the database)")
