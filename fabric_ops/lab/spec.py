"""Build the lab's switches from the source of truth.

A lab is a :class:`LabSpec`: one :class:`SwitchState` per switch-OS device, plus
what the physics needs but no switch owns (the links between ports, the GPU NICs
cabled to leaf ports and the fibre spans under DCI wavelengths). Optical line
systems have no switch OS, so they get no SwitchState, but their spans are kept:
a span fault must still reach every wavelength riding it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fabric_ops.errors import LabError

from .state import InterfaceState, OpticalChannelState, SwitchState

logger = logging.getLogger(__name__)

HOST_PREFIX = "host:"
# What a freshly booted lab switch reports until its platform front end says otherwise.
DEFAULT_OS_VERSION = {"eos": "4.33.1F", "huawei_vrp": "V300R023C10SPC500"}


@dataclass(frozen=True)
class LinkSpec:
    """A cable between two ports. ``b`` is ``("host:<name>", nic)`` for a GPU NIC attachment."""

    id: int
    a: tuple[str, str]
    b: tuple[str, str]
    kind: str  # fabric | dci | host
    capacity_gbps: int
    spans: tuple[str, ...] = ()

    @property
    def is_host(self) -> bool:
        return self.kind == "host"


@dataclass(frozen=True)
class NicSpec:
    """One RoCE NIC of a GPU host and the leaf port it is cabled to."""

    host: str
    nic: str
    rail: int
    speed_gbps: int
    leaf: str
    interface: str
    fabric: str = ""


@dataclass(frozen=True)
class SpanSpec:
    name: str
    length_km: float
    loss_db: float
    amplifier_count: int = 0


@dataclass
class LabSpec:
    """Everything one lab process emulates."""

    switches: dict[str, SwitchState] = field(default_factory=dict)
    links: list[LinkSpec] = field(default_factory=list)
    nics: list[NicSpec] = field(default_factory=list)
    spans: dict[str, SpanSpec] = field(default_factory=dict)
    credential: str = "lab"
    fabrics: list[str] = field(default_factory=list)

    def host_nics(self) -> dict[str, list[NicSpec]]:
        hosts: dict[str, list[NicSpec]] = {}
        for nic in self.nics:
            hosts.setdefault(nic.host, []).append(nic)
        for nics in hosts.values():
            nics.sort(key=lambda n: n.rail)
        return hosts


def _serial(hostname: str) -> str:
    """A stable serial number per hostname, so re-created labs report the same inventory."""
    return f"LAB{zlib.crc32(hostname.encode()):010d}"


def _check_mgmt(hostname: str, address: str | None) -> str:
    if not address:
        raise LabError(f"device {hostname}: no mgmt_address; the lab binds each switch to its own loopback address")
    if not ipaddress.ip_address(address).is_loopback:
        raise LabError(f"device {hostname}: mgmt_address {address} is not a loopback address (127.0.0.0/8)")
    return address


def build_from_db(fabrics: list[str] | None = None) -> LabSpec:
    """Build switches for every switch-OS device of ``fabrics`` (all fabrics when None or empty).

    Links to devices outside the selection keep their peer but carry no lab traffic.
    """
    from django.db.models import Q

    from fabric_ops.topology.models import Device, Fabric, GpuNic, Interface, Link, OpticalChannel, OpticalSpan

    if fabrics:
        known = set(Fabric.objects.filter(name__in=fabrics).values_list("name", flat=True))
        missing = sorted(set(fabrics) - known)
        if missing:
            raise LabError(f"unknown fabric(s): {', '.join(missing)}")
        devices = Device.objects.filter(fabric__name__in=fabrics)
    else:
        devices = Device.objects.all()
    devices = list(devices.select_related("fabric", "site").exclude(platform="optical"))
    if not devices:
        which = ", ".join(fabrics) if fabrics else "(all)"
        raise LabError(f"no switches in fabric(s) {which}: import an inventory first")

    spec = LabSpec(fabrics=sorted({d.fabric.name for d in devices}))
    by_id: dict[int, SwitchState] = {}
    seen_addr: dict[str, str] = {}
    for device in devices:
        address = _check_mgmt(device.hostname, device.mgmt_address)
        if address in seen_addr:
            raise LabError(f"devices {seen_addr[address]} and {device.hostname} share mgmt_address {address}")
        seen_addr[address] = device.hostname
        switch = SwitchState(
            hostname=device.hostname,
            platform=device.platform,
            role=device.role,
            mgmt_address=address,
            eapi_port=device.eapi_port,
            ssh_port=device.ssh_port,
            gnmi_port=device.gnmi_port,
            model=device.model,
            serial=_serial(device.hostname),
            os_version=DEFAULT_OS_VERSION.get(device.platform, ""),
            fabric=device.fabric.name,
            site=device.site.name,
            loopback=device.loopback or "",
            asn=device.asn,
        )
        by_id[device.pk] = switch
        spec.switches[device.hostname] = switch
    spec.credential = Counter(d.credential for d in devices).most_common(1)[0][0]
    if len({d.credential for d in devices}) > 1:
        logger.warning("lab devices name several credentials; serving all of them with %r", spec.credential)

    iface_names: dict[int, tuple[str, str]] = {}
    for row in Interface.objects.filter(device_id__in=by_id).select_related("transceiver").order_by("device_id", "id"):
        switch = by_id[row.device_id]
        xcvr = row.transceiver
        switch.interfaces[row.name] = InterfaceState(
            name=row.name,
            speed_gbps=row.speed_gbps,
            lanes=xcvr.lanes if xcvr else row.lanes,
            description=row.description,
            address=row.address,
            admin_up=row.admin_up,
            mtu=row.mtu,
            transceiver=xcvr.name if xcvr else "",
        )
        iface_names[row.pk] = (switch.hostname, row.name)

    # Links leaving the selection still name their peer (the port stays uncabled in the lab).
    links = list(
        Link.objects.filter(Q(a_interface__device_id__in=by_id) | Q(b_interface__device_id__in=by_id))
        .select_related("a_interface__device", "b_interface__device")
        .order_by("id")
    )
    channels = OpticalChannel.objects.filter(link__in=[lk.pk for lk in links]).prefetch_related("spans")
    channel_rows = {ch.link_id: ch for ch in channels}
    span_names: set[str] = set()
    for link in links:
        a = (link.a_interface.device.hostname, link.a_interface.name)
        b = (link.b_interface.device.hostname, link.b_interface.name)
        ch = channel_rows.get(link.pk)
        spans = tuple(sorted(s.name for s in ch.spans.all())) if ch else ()
        span_names.update(spans)
        for local, remote in ((a, b), (b, a)):
            switch = spec.switches.get(local[0])
            if switch is None or local[1] not in switch.interfaces:
                continue
            iface = switch.interfaces[local[1]]
            iface.peer = remote
            iface.kind = link.kind
            if ch is not None:
                index = len(switch.channels) + 1
                switch.channels[index] = OpticalChannelState(
                    index=index,
                    name=ch.name,
                    interface=local[1],
                    frequency_ghz=ch.frequency_ghz,
                    spans=list(spans),
                )
        if a[0] in spec.switches and b[0] in spec.switches:
            spec.links.append(
                LinkSpec(id=link.pk, a=a, b=b, kind=link.kind, capacity_gbps=link.capacity_gbps, spans=spans)
            )

    for nic in GpuNic.objects.filter(leaf_interface__device_id__in=by_id).select_related(
        "host", "host__fabric", "leaf_interface"
    ):
        leaf, ifname = iface_names[nic.leaf_interface_id]
        iface = spec.switches[leaf].interfaces[ifname]
        iface.peer = (HOST_PREFIX + nic.host.name, nic.name)
        iface.kind = "host"
        spec.nics.append(
            NicSpec(
                host=nic.host.name,
                nic=nic.name,
                rail=nic.rail,
                speed_gbps=nic.speed_gbps,
                leaf=leaf,
                interface=ifname,
                fabric=nic.host.fabric.name,
            )
        )
    _add_host_links(spec, first_id=1_000_000_000)

    for span in OpticalSpan.objects.filter(name__in=span_names):
        spec.spans[span.name] = SpanSpec(span.name, span.length_km, span.loss_db, span.amplifier_count)
    logger.info(
        "lab spec: %d switches, %d links, %d GPU NICs, %d spans",
        len(spec.switches),
        len(spec.links),
        len(spec.nics),
        len(spec.spans),
    )
    return spec


def _add_host_links(spec: LabSpec, first_id: int) -> None:
    """Host attachments become links too (ids above every DB link id), so faults and physics treat them alike."""
    for offset, nic in enumerate(sorted(spec.nics, key=lambda n: (n.leaf, n.interface))):
        spec.links.append(
            LinkSpec(
                id=first_id + offset,
                a=(nic.leaf, nic.interface),
                b=(HOST_PREFIX + nic.host, nic.nic),
                kind="host",
                capacity_gbps=nic.speed_gbps,
            )
        )


def build_from_inventory(path: str | Path, fabrics: list[str] | None = None) -> LabSpec:
    """Import an inventory file into the database (the inventory package owns parsing), then build its fabrics.

    Without ``fabrics``, the lab emulates every fabric the file describes.
    """
    try:
        from fabric_ops.topology.inventory import build_spec, import_inventory
    except ImportError as exc:  # the inventory package is optional for the lab
        raise LabError(f"cannot build a lab from {path}: the inventory importer is not available ({exc})") from exc
    import_inventory(Path(path))
    if not fabrics:
        described, _problems = build_spec(Path(path))  # already validated by the import
        fabrics = sorted(described.fabric_names) or None
    return build_from_db(fabrics)


_RAIL_RE = re.compile(r"(\d+)$")


def spec_from_switches(switches: list[SwitchState] | dict[str, SwitchState]) -> LabSpec:
    """Derive links and NICs from the switches' interface peers (tests and tools that build switches by hand).

    A switch link exists when both ends name each other; a ``host:<name>`` peer is a GPU NIC whose rail is
    the number its name ends with.
    """
    items = list(switches.values()) if isinstance(switches, dict) else list(switches)
    spec = LabSpec(switches={s.hostname: s for s in items})
    spec.fabrics = sorted({s.fabric for s in items if s.fabric})
    next_id = 1
    for switch in sorted(items, key=lambda s: s.hostname):
        for name, iface in switch.interfaces.items():
            if iface.peer is None:
                continue
            peer_host, peer_if = iface.peer
            if peer_host.startswith(HOST_PREFIX):
                match = _RAIL_RE.search(peer_if)
                spec.nics.append(
                    NicSpec(
                        host=peer_host[len(HOST_PREFIX) :],
                        nic=peer_if,
                        rail=int(match.group(1)) if match else 0,
                        speed_gbps=iface.speed_gbps,
                        leaf=switch.hostname,
                        interface=name,
                        fabric=switch.fabric,
                    )
                )
                iface.kind = "host"
                continue
            other = spec.switches.get(peer_host)
            if other is None or peer_if not in other.interfaces:
                continue
            if other.interfaces[peer_if].peer != (switch.hostname, name):
                raise LabError(f"{switch.hostname}:{name} names peer {peer_host}:{peer_if}, which names another peer")
            if (switch.hostname, name) > (peer_host, peer_if):
                continue  # each link once, from its lexically first end
            spans = sorted(
                {sp for ch in switch.channels.values() if ch.interface == name for sp in ch.spans}
                | {sp for ch in other.channels.values() if ch.interface == peer_if for sp in ch.spans}
            )
            kind = iface.kind if iface.kind in ("fabric", "dci") else "fabric"
            iface.kind = other.interfaces[peer_if].kind = kind
            spec.links.append(
                LinkSpec(
                    id=next_id,
                    a=(switch.hostname, name),
                    b=(peer_host, peer_if),
                    kind=kind,
                    capacity_gbps=min(iface.speed_gbps, other.interfaces[peer_if].speed_gbps),
                    spans=tuple(spans),
                )
            )
            next_id += 1
            for sp in spans:
                spec.spans.setdefault(sp, SpanSpec(sp, length_km=80.0, loss_db=20.0, amplifier_count=0))
    _add_host_links(spec, first_id=1_000_000_000)
    return spec
