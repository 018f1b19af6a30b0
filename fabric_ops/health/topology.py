"""What detection and correlation need to know about the fabric, read once with ``values_list`` queries.

Telemetry names ports (device + interface) and wavelengths (channel name); correlation needs the link behind a
port, the two ends of a link, the spans under a wavelength, and the role/pod of a device. Loading this into plain
dicts keeps the hot path free of database queries; :func:`load_index` caches it for ``max_age`` seconds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from fabric_ops.topology.models import Device, GpuNic, Interface, Link, OpticalChannel

Port = tuple[str, str]  # (device hostname, interface name)


@dataclass
class TopologyIndex:
    port_link: dict[Port, int] = field(default_factory=dict)
    link_ends: dict[int, tuple[Port, Port]] = field(default_factory=dict)
    link_kind: dict[int, str] = field(default_factory=dict)
    link_state: dict[int, str] = field(default_factory=dict)
    port_speed: dict[Port, int] = field(default_factory=dict)
    host_ports: set[Port] = field(default_factory=set)
    device_role: dict[str, str] = field(default_factory=dict)
    device_fabric: dict[str, str] = field(default_factory=dict)
    device_pod: dict[str, str] = field(default_factory=dict)
    channel_link: dict[str, int] = field(default_factory=dict)
    channel_spans: dict[str, tuple[str, ...]] = field(default_factory=dict)
    link_channel: dict[int, str] = field(default_factory=dict)
    uplinks: dict[str, list[str]] = field(default_factory=dict)  # leaf -> its uplink interface names

    def peer(self, port: Port) -> Port | None:
        link = self.port_link.get(port)
        if link is None:
            return None
        a, b = self.link_ends[link]
        return b if a == port else a

    def links_of(self, device: str) -> list[int]:
        return [lid for lid, (a, b) in self.link_ends.items() if device in (a[0], b[0])]

    def channels_over(self, span: str) -> list[str]:
        return sorted(c for c, spans in self.channel_spans.items() if span in spans)

    def link_pod(self, link: int) -> str:
        a, b = self.link_ends[link]
        return self.device_pod.get(a[0]) or self.device_pod.get(b[0]) or self.device_fabric.get(a[0], "")

    def resolve_channel(self, device: str, channel: str) -> str | None:
        """A telemetry channel tag (a wavelength name, or the DCI interface it rides) -> the wavelength name."""
        if channel in self.channel_link:
            return channel
        link = self.port_link.get((device, channel))
        return self.link_channel.get(link) if link is not None else None


TIERS = {"leaf": 1, "border-leaf": 1, "spine": 2, "superspine": 3}


def build_index() -> TopologyIndex:
    idx = TopologyIndex()
    for host, role, fabric, pod in Device.objects.values_list("hostname", "role", "fabric__name", "pod__name"):
        idx.device_role[host] = role
        idx.device_fabric[host] = fabric
        idx.device_pod[host] = f"{fabric}/{pod}" if pod else fabric
    for host, name, speed in Interface.objects.values_list("device__hostname", "name", "speed_gbps"):
        idx.port_speed[(host, name)] = speed
    rows = Link.objects.values_list(
        "id", "kind", "state", "a_interface__device__hostname", "a_interface__name",
        "b_interface__device__hostname", "b_interface__name",
    )  # fmt: skip
    uplinks: dict[str, list[str]] = defaultdict(list)
    for lid, kind, state, ad, ai, bd, bi in rows:
        a, b = (ad, ai), (bd, bi)
        idx.link_ends[lid] = (a, b)
        idx.link_kind[lid] = kind
        idx.link_state[lid] = state
        idx.port_link[a] = lid
        idx.port_link[b] = lid
        if kind == "fabric":
            ta, tb = TIERS.get(idx.device_role.get(ad, ""), 0), TIERS.get(idx.device_role.get(bd, ""), 0)
            if ta and tb and ta != tb:
                low, _high = (a, b) if ta < tb else (b, a)
                uplinks[low[0]].append(low[1])
    idx.uplinks = dict(uplinks)
    for host, name in GpuNic.objects.values_list("leaf_interface__device__hostname", "leaf_interface__name"):
        idx.host_ports.add((host, name))
    for channel in OpticalChannel.objects.prefetch_related("spans"):
        idx.channel_link[channel.name] = channel.link_id
        idx.link_channel[channel.link_id] = channel.name
        idx.channel_spans[channel.name] = tuple(sorted(s.name for s in channel.spans.all()))
    return idx


_cache: dict[str, tuple[float, TopologyIndex]] = {}


def load_index(max_age: float = 30.0) -> TopologyIndex:
    """The cached index, rebuilt when older than ``max_age`` seconds (0: always rebuild)."""
    hit = _cache.get("index")
    if hit is not None and max_age > 0 and time.monotonic() - hit[0] < max_age:
        return hit[1]
    index = build_index()
    _cache["index"] = (time.monotonic(), index)
    return index


def invalidate() -> None:
    _cache.clear()
