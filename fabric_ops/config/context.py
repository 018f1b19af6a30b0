"""The data a configuration template sees for one device, read from the source of truth.

Templates get plain dicts and lists (never model instances) so that a template
cannot walk the ORM, and so the same context can be shown to an operator.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fabric_ops.topology.models import Device, GpuNic, Interface, Link

from .intents import resolve_intent

# The route-map / route-policy a BGP cost-out attaches outbound to a session, and how many times it prepends the
# local AS: 3 makes every path over the link longer than any detour in a 3-stage Clos (leaf-spine-leaf is 2).
COST_OUT_POLICY = "FABRICOPS-COST-OUT"
COST_OUT_PREPEND = 3


def _host_address(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).ip) if cidr else ""


def _prefix_length(cidr: str) -> int | None:
    return ipaddress.ip_interface(cidr).network.prefixlen if cidr else None


def _netmask(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).netmask) if cidr else ""


def interface_peers(device: Device) -> dict[int, tuple[Link, Interface]]:
    """Map each of the device's interface ids to (link, far-end interface) for its switch links."""
    peers: dict[int, tuple[Link, Interface]] = {}
    links = Link.objects.filter(a_interface__device=device) | Link.objects.filter(b_interface__device=device)
    for link in links.select_related("a_interface__device", "b_interface__device"):
        if link.a_interface.device_id == device.id:
            peers[link.a_interface_id] = (link, link.b_interface)
        if link.b_interface.device_id == device.id:
            peers[link.b_interface_id] = (link, link.a_interface)
    return peers


def device_context(device: Device) -> dict[str, Any]:
    """Everything the platform template needs: identity, interfaces with their peers, BGP neighbours, intents."""
    intent = resolve_intent(device)
    peers = interface_peers(device)
    nics = {
        nic.leaf_interface_id: nic
        for nic in GpuNic.objects.filter(leaf_interface__device=device).select_related("host")
    }
    interfaces = []
    neighbors = []
    cost_out = set(intent.ports.get("bgp_cost_out", ()))
    pfc_off = set(intent.ports.get("pfc_disabled_ports", ()))
    for iface in device.interfaces.all().order_by("id"):
        entry: dict[str, Any] = {
            "name": iface.name,
            "speed_gbps": iface.speed_gbps,
            "mtu": intent.roce["mtu"],
            "admin_up": iface.admin_up,
            "address": _host_address(iface.address),
            "prefix_length": _prefix_length(iface.address),
            "netmask": _netmask(iface.address),
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
