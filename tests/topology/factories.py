"""Small hand-built fabrics for graph tests, created row by row with the ORM.

Each builder returns a dict of the created objects by name so tests can refer
to links and devices by the role they play in the hand-checked answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.management.color import no_style
from django.db import connection

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


def _next_id(model) -> int:
    from django.db.models import Max

    return (model.objects.aggregate(top=Max("id"))["top"] or 0) + 1


def bulk_clos(name: str, gpus: int, radix: int = 128, speed: int = 400, gpus_per_host: int = 8) -> Fabric:
    """A rail-optimized 3-tier non-blocking Clos built with bulk_create (explicit ids, any database).

    Leaves and spines split their radix half down, half up; a pod is radix/2 leaves and
    radix/2 spines; spine j of every pod joins superspine plane j, whose
    ceil(pods*radix/2/radix) superspines share the spine's radix/2 uplinks round-robin
    (parallel links when a plane has fewer superspines than uplinks). One GPU per NIC;
    NIC r of a host is on the leaf of rail r. For measuring the graph at scale only: the
    generators own the real, addressed fabric.
    """
    half = radix // 2
    n_hosts = gpus // gpus_per_host
    leaves = -(-n_hosts // half) * gpus_per_host  # whole rail groups: `half` hosts share `gpus_per_host` leaves
    pods = -(-leaves // half)
    per_plane = max(1, -(-pods * half // radix))
    site = Site.objects.create(name=f"{name}-site", city="Bench")
    fabric = Fabric.objects.create(name=name, kind="rail-optimized", site=site)
    Pod.objects.bulk_create([Pod(fabric=fabric, name=f"pod{p}", index=p) for p in range(pods)], batch_size=1000)
    pod_ids = list(Pod.objects.filter(fabric=fabric).order_by("index").values_list("id", flat=True))
    devices: list[Device] = []
    dev_id = _next_id(Device)
    ids: dict[tuple, int] = {}

    def add(key: tuple, hostname: str, role: str, pod: int | None) -> None:
        nonlocal dev_id
        ids[key] = dev_id
        devices.append(
            Device(id=dev_id, hostname=hostname, fabric=fabric, site=site, pod_id=pod, role=role, platform="eos")
        )
        dev_id += 1

    for plane in range(half):
        for k in range(per_plane):
            add(("ss", plane, k), f"{name}-ss{plane}-{k}", "superspine", None)
    for p in range(pods):
        for s in range(half):
            add(("spine", p, s), f"{name}-p{p}-spine{s}", "spine", pod_ids[p])
        for leaf in range(half):
            if p * half + leaf < leaves:
                add(("leaf", p, leaf), f"{name}-p{p}-leaf{leaf}", "leaf", pod_ids[p])
    Device.objects.bulk_create(devices, batch_size=5000)

    intf_id = _next_id(Interface)
    link_id = _next_id(Link)
    ports: dict[int, int] = {}
    interfaces: list[Interface] = []
    links: list[Link] = []

    def port(device: int) -> int:
        nonlocal intf_id
        n = ports.get(device, 0) + 1
        ports[device] = n
        interfaces.append(Interface(id=intf_id, device_id=device, name=f"Ethernet{n}/1", speed_gbps=speed))
        intf_id += 1
        return intf_id - 1

    def cable(a: int, b: int) -> None:
        nonlocal link_id
        links.append(Link(id=link_id, a_interface_id=port(a), b_interface_id=port(b), capacity_gbps=speed))
        link_id += 1

    for p in range(pods):
        for s in range(half):
            spine = ids[("spine", p, s)]
            for u in range(half):
                cable(spine, ids[("ss", s, u % per_plane)])
            for leaf in range(half):
                if ("leaf", p, leaf) in ids:
                    cable(ids[("leaf", p, leaf)], spine)

    host_id = _next_id(GpuHost)
    hosts: list[GpuHost] = []
    nics: list[GpuNic] = []
    # Rail-optimized: leaves of a pod are grouped by rail; host h of a rail group uses port h of each of its leaves.
    rails = gpus_per_host
    for h in range(n_hosts):
        group = h // half  # `half` hosts share one group of `rails` leaves
        hosts.append(GpuHost(id=host_id + h, name=f"{name}-h{h}", fabric=fabric, gpus=gpus_per_host))
        for r in range(rails):
            flat = group * rails + r
            p, leaf = divmod(flat, half)
            nics.append(
                GpuNic(
                    host_id=host_id + h,
                    rail=r,
                    name=f"eth{r}",
                    speed_gbps=speed,
                    leaf_interface_id=port(ids[("leaf", p, leaf)]),
                )
            )
    Interface.objects.bulk_create(interfaces, batch_size=10000)
    Link.objects.bulk_create(links, batch_size=10000)
    GpuHost.objects.bulk_create(hosts, batch_size=10000)
    GpuNic.objects.bulk_create(nics, batch_size=10000)
    # Explicit ids leave PostgreSQL sequences behind; put them past the rows so later creates do not collide.
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Device, Interface, Link, GpuHost, GpuNic]):
            cursor.execute(sql)
    return fabric
