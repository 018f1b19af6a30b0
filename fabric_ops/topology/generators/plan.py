"""The in-memory fabric plan: light tuples that refer to each other by list index.

A 100k-GPU plan has over half a million interfaces, so rows are NamedTuples (no
per-row dict) and cross references are integer positions into the plan's lists,
which the persister turns into primary keys without ever building model objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "ExtRef",
    "FabricPlan",
    "PlanChannel",
    "PlanDevice",
    "PlanHost",
    "PlanInterface",
    "PlanLink",
    "PlanNic",
    "PlanPod",
    "PlanSite",
    "PlanSpan",
]


class PlanSite(NamedTuple):
    name: str
    city: str
    latitude: float | None = None
    longitude: float | None = None


class PlanPod(NamedTuple):
    name: str
    kind: str  # "pod" or "plane"
    index: int


class PlanDevice(NamedTuple):
    hostname: str
    role: str
    platform: str
    model: str
    site: str  # site slug
    pod: int | None  # index into FabricPlan.pods
    rail: int | None
    index: int
    mgmt_address: str
    loopback: str
    asn: int


class PlanInterface(NamedTuple):
    device: int  # index into FabricPlan.devices
    name: str
    speed_gbps: int
    lanes: int
    admin_up: bool
    address: str  # "10.0.0.1/31" or ""
    description: str
    transceiver: str | None  # catalogue optic name, None for an empty cage


class ExtRef(NamedTuple):
    """An interface that belongs to another plan (a site's spine, seen from the DCI backbone)."""

    fabric: str
    hostname: str
    interface: str


class PlanLink(NamedTuple):
    a: int | ExtRef  # index into FabricPlan.interfaces, or an interface of another plan
    b: int | ExtRef
    kind: str  # "fabric" or "dci"
    capacity_gbps: int


class PlanHost(NamedTuple):
    name: str
    pod: int | None
    gpus: int
    index: int


class PlanNic(NamedTuple):
    host: int  # index into FabricPlan.hosts
    rail: int
    name: str
    speed_gbps: int
    leaf_interface: int  # index into FabricPlan.interfaces


class PlanSpan(NamedTuple):
    name: str
    a_site: str
    b_site: str
    length_km: float
    loss_db: float
    amplifier_count: int


class PlanChannel(NamedTuple):
    name: str
    link: int  # index into FabricPlan.links
    spans: tuple[str, ...]  # span names, in path order
    frequency_ghz: float
    rate_gbps: int
    modulation: str


@dataclass
class FabricPlan:
    """Everything one Fabric row and its children will hold, before any database work."""

    name: str
    kind: str
    site: str | None
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    sizes: Any = None  # ClosSizes for a cluster fabric, None for a DCI backbone
    sites: list[PlanSite] = field(default_factory=list)
    pods: list[PlanPod] = field(default_factory=list)
    devices: list[PlanDevice] = field(default_factory=list)
    interfaces: list[PlanInterface] = field(default_factory=list)
    links: list[PlanLink] = field(default_factory=list)
    hosts: list[PlanHost] = field(default_factory=list)
    nics: list[PlanNic] = field(default_factory=list)
    spans: list[PlanSpan] = field(default_factory=list)
    channels: list[PlanChannel] = field(default_factory=list)
    # Interfaces of each device, as [first, last) positions: devices' ports are contiguous in ``interfaces``.
    device_ports: list[tuple[int, int]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "sites": len(self.sites),
            "pods": len(self.pods),
            "devices": len(self.devices),
            "interfaces": len(self.interfaces),
            "links": len(self.links),
            "gpu_hosts": len(self.hosts),
            "gpu_nics": len(self.nics),
            "optical_spans": len(self.spans),
            "optical_channels": len(self.channels),
        }

    def interface_index(self, hostname: str, name: str) -> int:
        """Position of ``hostname``'s interface ``name`` (linear in the device's ports)."""
        for d, dev in enumerate(self.devices):
            if dev.hostname == hostname:
                first, last = self.device_ports[d]
                for i in range(first, last):
                    if self.interfaces[i].name == name:
                        return i
        raise KeyError(f"{hostname}:{name}")
