"""Small hand-built fabrics for graph tests, created row by row with the ORM.

Each builder returns a dict of the created objects by name so tests can refer
to links and devices by the role they play in the hand-checked answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric_ops.topology.models import (
    Device,
    Fabric,
    GpuHost,
    GpuNic,
    Interface,
    Link,
    OpticalChannel,
    OpticalSpan,
    Pod,
    Site,
)


@dataclass
class Built:
    """What a builder created: devices by hostname, links by a readable key, hosts by name."""

    fabric: Fabric
    devices: dict[str, Device] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    hosts: dict[str, GpuHost] = field(default_factory=dict)
    spans: dict[str, OpticalSpan] = field(default_factory=dict)
    _ports: dict[int, int] = field(default_factory=dict)

    def port(self, device: Device, speed: int) -> Interface:
        """The next free interface of ``device``."""
        n = self._ports.get(device.pk, 0) + 1
        self._ports[device.pk] = n
        return Interface.objects.create(device=device, name=f"Ethernet{n}/1", speed_gbps=speed)

    def device(self, hostname: str, role: str, *, site: Site | None = None, pod: Pod | None = None, **kw) -> Device:
        device = Device.objects.create(
            hostname=hostname,
            fabric=kw.pop("fabric", self.fabric),
            site=site or self.fabric.site,
            pod=pod,
            role=role,
            platform=kw.pop("platform", "eos"),
            **kw,
        )
        self.devices[hostname] = device
        return device

    def link(self, a: str, b: str, capacity: int = 400, *, kind: str = "fabric", state: str = "up", n: int = 0) -> Link:
        """Cable ``a`` to ``b``; the key is ``"a-b"`` (``"a-b#n"`` for parallel links)."""
        link = Link.objects.create(
            a_interface=self.port(self.devices[a], capacity),
            b_interface=self.port(self.devices[b], capacity),
            kind=kind,
            capacity_gbps=capacity,
            state=state,
        )
        self.links[f"{a}-{b}" + (f"#{n}" if n else "")] = link
        return link

    def host(self, name: str, leaves: list[str], speed: int = 400) -> GpuHost:
        """A GPU host whose NIC ``rail`` is cabled to ``leaves[rail]``."""
        host = GpuHost.objects.create(name=name, fabric=self.fabric, gpus=len(leaves))
        for rail, leaf in enumerate(leaves):
            port = self.port(self.devices[leaf], speed)
            GpuNic.objects.create(host=host, rail=rail, name=f"eth{rail}", speed_gbps=speed, leaf_interface=port)
        self.hosts[name] = host
        return host


def two_tier(name: str = "f2") -> Built:
    """4 leaves x 2 spines, one 400G link per leaf-spine pair (800G up per leaf).

    Hosts h1..h4 have two 400G NICs: h1,h2 on leaf1 (rail 0) and leaf2 (rail 1),
    h3,h4 on leaf3 and leaf4.
    """
    site = Site.objects.create(name=f"{name}-site", city="San Jose")
    built = Built(Fabric.objects.create(name=name, kind="rail-optimized", site=site))
    for s in (1, 2):
        built.device(f"{name}-spine{s}", "spine")
    for leaf in (1, 2, 3, 4):
        built.device(f"{name}-leaf{leaf}", "leaf", platform="huawei_vrp" if leaf > 2 else "eos")
        for s in (1, 2):
            built.link(f"{name}-leaf{leaf}", f"{name}-spine{s}")
    built.host(f"{name}-h1", [f"{name}-leaf1", f"{name}-leaf2"])
    built.host(f"{name}-h2", [f"{name}-leaf1", f"{name}-leaf2"])
    built.host(f"{name}-h3", [f"{name}-leaf3", f"{name}-leaf4"])
    built.host(f"{name}-h4", [f"{name}-leaf3", f"{name}-leaf4"])
    return built


def three_tier(name: str = "f3") -> Built:
    """2 pods x (2 leaves + 2 spines) under 2 superspines, all links 400G.

    Every leaf has one link to each spine of its pod (800G up); every spine one
    link to each superspine (800G up). Host p{n}-h has one NIC on each leaf of pod n.
    """
    site = Site.objects.create(name=f"{name}-site", city="Dallas")
    built = Built(Fabric.objects.create(name=name, kind="rail-optimized", site=site))
    for ss in (1, 2):
        built.device(f"{name}-ss{ss}", "superspine")
    for p in (1, 2):
        pod = Pod.objects.create(fabric=built.fabric, name=f"pod{p}", index=p)
        for s in (1, 2):
            spine = f"{name}-p{p}-spine{s}"
            built.device(spine, "spine", pod=pod)
            for ss in (1, 2):
                built.link(spine, f"{name}-ss{ss}")
        for leaf in (1, 2):
            hostname = f"{name}-p{p}-leaf{leaf}"
            built.device(hostname, "leaf", pod=pod)
            for s in (1, 2):
                built.link(hostname, f"{name}-p{p}-spine{s}")
        built.host(f"{name}-p{p}-h", [f"{name}-p{p}-leaf1", f"{name}-p{p}-leaf2"])
    return built


def two_sites(name: str = "dx") -> Built:
    """Two sites joined by two 400G DCI wavelengths over diverse optical spans.

    Site a: leaves a-leaf1, a-leaf2 (2x400G each to a-spine), a-spine -- a-dci (2x400G).
    Site b: b-leaf1 (2x400G to b-spine), b-spine -- b-dci (2x400G).
    a-dci -- b-dci: DCI link #1 rides span ``{name}-north``, #2 rides ``{name}-south``.
    DCI routers belong to the backbone fabric ``{name}-dci``. Hosts a-h (rails on a-leaf1,
    a-leaf2) and b-h (one NIC on b-leaf1).
    """
    site_a = Site.objects.create(name=f"{name}-a", city="Frankfurt")
    site_b = Site.objects.create(name=f"{name}-b", city="Amsterdam")
    fab_a = Fabric.objects.create(name=f"{name}-fab-a", kind="rail-optimized", site=site_a)
    fab_b = Fabric.objects.create(name=f"{name}-fab-b", kind="rail-optimized", site=site_b)
    backbone = Fabric.objects.create(name=f"{name}-dci", kind="dci-backbone")
    built = Built(fab_a)
    for site, fabric, leaves in ((site_a, fab_a, 2), (site_b, fab_b, 1)):
        s = site.name[-1]
        built.device(f"{name}-{s}-spine", "spine", site=site, fabric=fabric)
        built.device(f"{name}-{s}-dci", "dci", site=site, fabric=backbone)
        for n in (1, 2):
            built.link(f"{name}-{s}-spine", f"{name}-{s}-dci", n=n)
        for leaf in range(1, leaves + 1):
            built.device(f"{name}-{s}-leaf{leaf}", "leaf", site=site, fabric=fabric)
            for n in (1, 2):
                built.link(f"{name}-{s}-leaf{leaf}", f"{name}-{s}-spine", n=n)
    built.host(f"{name}-a-h", [f"{name}-a-leaf1", f"{name}-a-leaf2"])
    built.fabric = fab_b
    built.host(f"{name}-b-h", [f"{name}-b-leaf1"])
    built.fabric = fab_a
    for n, side in ((1, "north"), (2, "south")):
        span = OpticalSpan.objects.create(
            name=f"{name}-{side}", a_site=site_a, b_site=site_b, length_km=180.0 + n, loss_db=45.0, amplifier_count=2
        )
        built.spans[side] = span
        link = built.link(f"{name}-a-dci", f"{name}-b-dci", kind="dci", n=n)
        channel = OpticalChannel.objects.create(name=f"{name}-ch{n}", link=link, frequency_ghz=193100.0 + 100 * n)
        channel.spans.add(span)
    return built
