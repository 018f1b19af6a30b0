"""The data a configuration template sees for one device, read from the source of truth.

Templates get plain dicts and lists (never model instances) so that a template
cannot walk the ORM, and so the same context can be shown to an operator.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, prefetch_related_objects

from fabric_ops.errors import FabricOpsError
from fabric_ops.topology.models import Device, GpuNic, Interface, Link

from .intents import fabric_assignments, resolve_intent
from .models import IntentAssignment

# The route-map / route-policy a BGP cost-out attaches outbound to a session, and how many times it prepends the
# local AS: 3 makes every path over the link longer than any detour in a 3-stage Clos (leaf-spine-leaf is 2).
COST_OUT_POLICY = "FABRICOPS-COST-OUT"
COST_OUT_PREPEND = 3


@functools.lru_cache(maxsize=65536)
def _address_parts(cidr: str) -> tuple[str, int | None, str]:
    """(host address, prefix length, netmask) of an interface address; parsed once per distinct address."""
    if not cidr:
        return "", None, ""
    iface = ipaddress.ip_interface(cidr)
    return str(iface.ip), iface.network.prefixlen, str(iface.netmask)


def _host_address(cidr: str) -> str:
    return _address_parts(cidr)[0]


def _bulk_peers(device_ids: list[int]) -> dict[int, dict[int, tuple[Link, Interface]]]:
    """Each device's switch links in one query: device id -> {interface id: (link, far-end interface)}."""
    peers: dict[int, dict[int, tuple[Link, Interface]]] = {device_id: {} for device_id in device_ids}
    links = Link.objects.filter(Q(a_interface__device_id__in=device_ids) | Q(b_interface__device_id__in=device_ids))
    for link in links.select_related("a_interface__device", "b_interface__device").order_by("id"):
        a, b = link.a_interface, link.b_interface
        if a.device_id in peers:
            peers[a.device_id][a.id] = (link, b)
        if b.device_id in peers:
            peers[b.device_id][b.id] = (link, a)
    return peers


@dataclass
class SourceData:
    """What the contexts of a set of devices are built from, read with a few queries for all of them."""

    peers: dict[int, dict[int, tuple[Link, Interface]]]
    nics: dict[int, dict[int, GpuNic]]  # device id -> {leaf interface id: NIC}
    interfaces: dict[int, list[Interface]]  # device id -> its interfaces by id
    assignments: dict[int, list[IntentAssignment]]  # fabric id -> its intent assignments


# Devices per batch of bulk queries: keeps every ``IN (...)`` list well inside SQLite's variable limit.
BATCH = 500


def load_source_data(devices: list[Device]) -> SourceData:
    """Read links, peers, GPU NICs, interfaces and intent assignments of ``devices`` at once (5 queries)."""
    ids = [device.id for device in devices]
    prefetch_related_objects([d for d in devices if not Device.fabric.is_cached(d)], "fabric")
    prefetch_related_objects([d for d in devices if not Device.site.is_cached(d)], "site")
    nics: dict[int, dict[int, GpuNic]] = {device_id: {} for device_id in ids}
    for nic in GpuNic.objects.filter(leaf_interface__device_id__in=ids).select_related("host", "leaf_interface"):
        nics[nic.leaf_interface.device_id][nic.leaf_interface_id] = nic
    interfaces: dict[int, list[Interface]] = {device_id: [] for device_id in ids}
    for iface in Interface.objects.filter(device_id__in=ids).order_by("id"):
        interfaces[iface.device_id].append(iface)
    return SourceData(
        peers=_bulk_peers(ids),
        nics=nics,
        interfaces=interfaces,
        assignments=fabric_assignments({device.fabric_id for device in devices}),
    )


def device_contexts(devices: Iterable[Device]) -> Iterator[tuple[Device, dict[str, Any] | FabricOpsError]]:
    """(device, its context) for each device, in order; source data read in bulk per batch of devices.

    A device whose intent does not resolve gets its ``ConfigurationError`` in place of a context, so one bad
    device never stops the others. Contexts are built lazily: a caller can push the first device while the
    next is still being built.
    """
    devices = list(devices)
    for start in range(0, len(devices), BATCH):
        batch = devices[start : start + BATCH]
        data = load_source_data(batch)
        for device in batch:
            try:
                yield device, _build_context(device, data)
            except FabricOpsError as exc:
                yield device, exc


def device_context(device: Device) -> dict[str, Any]:
    """Everything the platform template needs: identity, interfaces with their peers, BGP neighbours, intents."""
    return _build_context(device, load_source_data([device]))


def _build_context(device: Device, data: SourceData) -> dict[str, Any]:
    own_interfaces = data.interfaces[device.id]
    intent = resolve_intent(
        device, data.assignments[device.fabric_id], interface_names=[iface.name for iface in own_interfaces]
    )
    peers = data.peers[device.id]
    nics = data.nics[device.id]
    interfaces = []
    neighbors = []
    cost_out = set(intent.ports.get("bgp_cost_out", ()))
    pfc_off = set(intent.ports.get("pfc_disabled_ports", ()))
    for iface in own_interfaces:
        address, prefix_length, netmask = _address_parts(iface.address)
        entry: dict[str, Any] = {
            "name": iface.name,
            "speed_gbps": iface.speed_gbps,
            "mtu": intent.roce["mtu"],
            "admin_up": iface.admin_up,
            "address": address,
            "prefix_length": prefix_length,
            "netmask": netmask,
            "description": iface.description,
            "kind": "unused",
            "cost_out": iface.name in cost_out,  # its BGP session advertises a prepended AS path (drained)
            "pfc_disabled": iface.name in pfc_off,  # PFC off for the lossless priorities (storming NIC)
        }
        if iface.id in peers:
            link, far = peers[iface.id]
            entry.update(kind=link.kind, peer_device=far.device.hostname, peer_interface=far.name)
            entry["description"] = iface.description or f"{link.kind}: {far.device.hostname} {far.name}"
            entry["admin_up"] = iface.admin_up and link.state != "drained"
            if far.address and far.device.asn:
                neighbors.append(
                    {
                        "address": _host_address(far.address),
                        "asn": far.device.asn,
                        "description": f"{far.device.hostname} {far.name}",
                        "interface": iface.name,
                        "cost_out": iface.name in cost_out,
                    }
                )
        elif iface.id in nics:
            nic = nics[iface.id]
            entry.update(kind="host", peer_device=nic.host.name, peer_interface=nic.name)
            entry["description"] = iface.description or f"host: {nic.host.name} {nic.name} rail {nic.rail}"
        interfaces.append(entry)
    return {
        "hostname": device.hostname,
        "role": device.role,
        "platform": device.platform,
        "fabric": device.fabric.name,
        "site": device.site.name,
        "loopback": device.loopback or "",
        "router_id": device.loopback or "",
        "asn": device.asn,
        "interfaces": interfaces,
        "bgp_neighbors": neighbors,
        "cost_out_policy": COST_OUT_POLICY,
        "cost_out_prepend": COST_OUT_PREPEND,
        "roce": intent.roce,
        "underlay": intent.underlay,
        "intent_sources": intent.sources,
    }
