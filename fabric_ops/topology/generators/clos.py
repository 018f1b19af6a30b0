"""Folded-Clos sizing and the pure planner for one site's GPU fabric.

Sizing (radix k, leaf uplinks u = ceil(k / (1 + oversubscription)), downlinks d = k - u):

* rail-optimized groups (scalable units): d hosts; NIC r of every host goes to the group's rail-r leaf,
  so a group has one leaf per rail (per plane: rails / planes leaves);
* 2 tiers: L leaves, S spines where S is the smallest divisor of u with S >= max(2, ceil(L*u/k)); each leaf
  has u/S parallel links to every spine. A full fabric has L = k leaves, S = u spines, k*d host ports
  (k^2/2 at 1:1);
* 3 tiers: pods of floor((k/2)/R) groups (at most k/2 leaves) and u spines, each leaf one link to every pod
  spine; spine j of every pod joins superspine group j (u groups). A group has s superspines, the smallest
  divisor of k/2 with s >= max(2, ceil(P/2)), and each spine has (k/2)/s parallel links to each of them.
  At most k pods: k * k/2 * d host ports (k^3/4 at 1:1);
* ``dci_ports`` keeps that many top-tier ports free per plane (counted into the divisor choice) for DCI routers;
* multi-plane: rail r belongs to plane r % planes; each plane is a separate Clos of the size above.

Spine and superspine counts shrink with parallel links for partial builds (real deployments do not buy
4,096 superspines for 25 pods); a full-size fabric gets exactly the textbook counts.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass

from fabric_ops.errors import GeneratorError

from .catalogue import default_optic, interface_name, lanes_for_speed, switch_model
from .params import ASN_MAX, LEAF_ASN_OFFSET, FabricParams, resolve_params
from .plan import FabricPlan, PlanDevice, PlanHost, PlanInterface, PlanLink, PlanNic, PlanPod, PlanSite

logger = logging.getLogger(__name__)

__all__ = ["ClosSizes", "clos_sizes", "plan_fabric"]


@dataclass(frozen=True)
class ClosSizes:
    """Every count of the fabric, per plane unless the name says total."""

    tiers: int
    planes: int
    radix: int
    gpus: int
    hosts: int
    rails: int
    rails_per_plane: int
    leaf_down: int
    leaf_up: int
    hosts_per_group: int
    groups: int
    leaves_per_plane: int
    groups_per_pod: int  # 3-tier only (0 otherwise)
    pods_per_plane: int  # 3-tier only (0 otherwise)
    spines_per_plane: int
    leaf_spine_parallel: int  # links between one leaf and one spine
    superspine_groups: int  # 3-tier only
    superspines_per_group: int  # 3-tier only
    spine_superspine_parallel: int  # 3-tier only
    max_host_ports_per_plane: int  # what this radix/tier count could attach at this oversubscription

    @property
    def leaves(self) -> int:
        return self.leaves_per_plane * self.planes

    @property
    def spines(self) -> int:
        return self.spines_per_plane * self.planes

    @property
    def superspines(self) -> int:
        return self.superspine_groups * self.superspines_per_group * self.planes

    @property
    def switches(self) -> int:
        return self.leaves + self.spines + self.superspines

    @property
    def host_links(self) -> int:
        return self.hosts * self.rails

    @property
    def leaf_spine_links(self) -> int:
        return self.leaves * self.leaf_up

    @property
    def spine_superspine_links(self) -> int:
        return self.spines * (self.radix // 2) if self.tiers == 3 else 0

    @property
    def fabric_links(self) -> int:
        return self.leaf_spine_links + self.spine_superspine_links

    @property
    def oversubscription(self) -> float:
        return self.leaf_down / self.leaf_up


def _divisor_at_least(n: int, lo: int) -> int | None:
    for s in range(max(1, lo), n + 1):
        if n % s == 0:
            return s
    return None


def clos_sizes(params: FabricParams) -> ClosSizes:
    """Size the fabric for resolved ``params`` (see :func:`resolve_params`); raise GeneratorError if it cannot fit."""
    k = params.radix
    planes = params.planes
    rails = params.rails
    rpp = rails // planes
    up = math.ceil(k / (1 + params.oversubscription))
    down = k - up
    if down < 1:
        raise GeneratorError(f"oversubscription: {params.oversubscription} leaves no host ports on a radix-{k} leaf")
    hosts = params.gpus // params.gpus_per_host
    groups = math.ceil(hosts / down)
    leaves = groups * rpp
    spines2 = _divisor_at_least(up, max(min(up, 2), math.ceil((leaves * up + params.dci_ports) / k)))
    fits2 = leaves <= k and spines2 is not None
    gpp = (k // 2) // rpp
    pods = math.ceil(groups / gpp) if gpp else 0
    half = k // 2
    per_group = math.ceil(params.dci_ports / up)
    members = _divisor_at_least(half, max(min(half, 2), math.ceil((pods * half + per_group) / k))) if gpp else None
    tiers = params.tiers or (2 if fits2 else 3)
    if tiers == 2 and leaves > k:
        raise GeneratorError(
            f"gpus: {params.gpus} GPUs need {leaves} leaves per plane, more than a 2-tier radix-{k} Clos takes "
            f"({k} leaves, {(k // rpp) * down * params.gpus_per_host} GPUs); use tiers=3 or more planes"
        )
    if tiers == 3 and not (gpp > 0 and pods <= k):
        if gpp == 0:
            raise GeneratorError(f"rails: {rpp} rails per plane do not fit in a pod of {k // 2} leaves (radix {k})")
        max_gpus = k * gpp * down * params.gpus_per_host
        raise GeneratorError(
            f"gpus: {params.gpus} GPUs need {pods} pods per plane, more than a 3-tier radix-{k} Clos takes "
            f"({k} pods, {max_gpus} GPUs); add planes or use a larger radix"
        )
    if tiers == 2:
        spines = spines2
        if spines is None:
            raise GeneratorError(
                f"dci_ports: the spines of a {leaves}-leaf radix-{k} plane have no room for {params.dci_ports} DCI "
                "ports; use fewer GPUs or tiers=3"
            )
        return ClosSizes(
            tiers=2, planes=planes, radix=k, gpus=params.gpus, hosts=hosts, rails=rails, rails_per_plane=rpp,
            leaf_down=down, leaf_up=up, hosts_per_group=down, groups=groups, leaves_per_plane=leaves,
            groups_per_pod=0, pods_per_plane=0, spines_per_plane=spines, leaf_spine_parallel=up // spines,
            superspine_groups=0, superspines_per_group=0, spine_superspine_parallel=0,
            max_host_ports_per_plane=k * down,
        )  # fmt: skip
    if members is None:
        raise GeneratorError(
            f"dci_ports: the superspines of a {pods}-pod radix-{k} plane have no room for {params.dci_ports} DCI "
            "ports; use fewer GPUs or more planes"
        )
    return ClosSizes(
        tiers=3, planes=planes, radix=k, gpus=params.gpus, hosts=hosts, rails=rails, rails_per_plane=rpp,
        leaf_down=down, leaf_up=up, hosts_per_group=down, groups=groups, leaves_per_plane=leaves,
        groups_per_pod=gpp, pods_per_plane=pods, spines_per_plane=pods * up, leaf_spine_parallel=1,
        superspine_groups=up, superspines_per_group=members, spine_superspine_parallel=half // members,
        max_host_ports_per_plane=k * half * down,
    )  # fmt: skip


def _ip(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _check_room(param: str, network: str, needed: int) -> int:
    net = ipaddress.ip_network(network)
    if needed > net.num_addresses - 2:
        raise GeneratorError(f"{param}: {network} has room for {net.num_addresses - 2} addresses, {needed} needed")
    return int(net.network_address)


def plan_fabric(params: FabricParams) -> FabricPlan:
    """Plan one site's fabric in memory: devices, every port, cabling, addresses, ASNs, hosts and NICs."""
    return _plan_resolved(resolve_params(params))


def _plan_resolved(p: FabricParams) -> FabricPlan:
    s = clos_sizes(p)
    k, speed, planes, rpp = p.radix, p.port_speed_gbps, p.planes, s.rails_per_plane
    down, up, half = s.leaf_down, s.leaf_up, k // 2
    lanes = lanes_for_speed(speed)
    optic_name = p.transceivers.get(speed) or default_optic(speed)
    mgmt0 = _check_room("mgmt_network", p.mgmt_network, s.switches)
    loop0 = _check_room("loopback_network", p.loopback_network, s.switches)
    p2p0 = _check_room("p2p_network", p.p2p_network, 2 * s.fabric_links)
    pods_total = planes * max(s.pods_per_plane, 1)
    if p.asn_base + LEAF_ASN_OFFSET + s.leaves > ASN_MAX or pods_total >= LEAF_ASN_OFFSET:
        raise GeneratorError(f"asn_base: {p.asn_base} leaves no room for {s.leaves} leaf ASNs below {ASN_MAX}")

    plan = FabricPlan(
        name=p.name,
        kind=p.kind,
        site=p.site,
        description=(
            f"{p.gpus} GPUs, {s.tiers}-tier radix-{k} {speed}G Clos, {planes} plane(s), "
            f"{s.oversubscription:g}:1 at the leaf"
        ),
        parameters=p.as_json(),
        sizes=s,
        sites=[PlanSite(p.site, p.city or p.site, p.latitude, p.longitude)],
    )
    devices, hostnames = plan.devices, []
    names = {plat: [interface_name(plat, n, speed) for n in range(1, k + 1)] for plat in set(p.platforms.values())}
    models = {role: switch_model(plat, k, speed) for role, plat in p.platforms.items()}
    n_ports = s.switches * k
    admin_up = bytearray(n_ports)
    address: list[str] = [""] * n_ports
    desc: list[str] = [""] * n_ports

    def add_device(name: str, role: str, pod: int | None, rail: int | None, index: int, asn: int) -> int:
        d = len(devices)
        platform = p.platforms[role]
        devices.append(
            PlanDevice(name, role, platform, models[role], p.site, pod, rail, index, _ip(mgmt0 + 1 + d),
                       _ip(loop0 + 1 + d), asn)
        )  # fmt: skip
        hostnames.append(name)
        return d * k

    def cable(ia: int, ib: int) -> None:
        """Link port ia (lower tier) to ib (upper tier); the upper side takes the even /31 address."""
        li = len(plan.links)
        plan.links.append(PlanLink(ia, ib, "fabric", speed))
        net = p2p0 + 2 * li
        admin_up[ia] = admin_up[ib] = 1
        address[ia] = f"{_ip(net + 1)}/31"
        address[ib] = f"{_ip(net)}/31"
        da, db = ia // k, ib // k
        desc[ia] = f"{hostnames[db]} {names[devices[db].platform][ib - db * k]}"
        desc[ib] = f"{hostnames[da]} {names[devices[da].platform][ia - da * k]}"

    # leaf_base[plane][leaf number in plane] = first port index of that leaf
    leaf_base: list[list[int]] = []
    leaf_pod: list[list[int | None]] = []
    leaf_no = 0
    pod_no = 0
    for pl in range(planes):
        ptag = f"pl{pl + 1}-" if planes > 1 else ""
        plane_pod = None
        if planes > 1:
            plane_pod = len(plan.pods)
            plan.pods.append(PlanPod(f"plane{pl + 1}", "plane", pl))
        bases: list[int] = []
        lpods: list[int | None] = []
        if s.tiers == 2:
            spine_asn = p.asn_base + 1 + pod_no
            pod_no += 1
            for li in range(s.leaves_per_plane):
                g, rpos = divmod(li, rpp)
                rail = rpos * planes + pl
                asn = p.asn_base + LEAF_ASN_OFFSET + leaf_no
                leaf_no += 1
                bases.append(add_device(f"{p.name}-{ptag}leaf{g + 1:03d}-r{rail}", "leaf", plane_pod, rail, li, asn))
                lpods.append(plane_pod)
            m = s.leaf_spine_parallel
            for j in range(s.spines_per_plane):
                sb = add_device(f"{p.name}-{ptag}spine{j + 1:02d}", "spine", plane_pod, None, j, spine_asn)
                for li, lb in enumerate(bases):
                    for c in range(m):
                        cable(lb + down + j * m + c, sb + li * m + c)
        else:
            pods = s.pods_per_plane
            spine_bases = []  # [pod][j]
            for q in range(pods):
                pod_index = len(plan.pods)
                plan.pods.append(PlanPod(f"{ptag}pod{q + 1:02d}", "pod", q))
                ttag = f"{ptag}pod{q + 1:02d}-"
                g_first, g_last = q * s.groups_per_pod, min(s.groups, (q + 1) * s.groups_per_pod)
                pod_leaf_bases = []
                for local, li in enumerate(range(g_first * rpp, g_last * rpp)):
                    g, rpos = divmod(li, rpp)
                    rail = rpos * planes + pl
                    asn = p.asn_base + LEAF_ASN_OFFSET + leaf_no
                    leaf_no += 1
                    lb = add_device(f"{p.name}-{ttag}leaf{g + 1:03d}-r{rail}", "leaf", pod_index, rail, local, asn)
                    bases.append(lb)
                    lpods.append(pod_index)
                    pod_leaf_bases.append(lb)
                spine_asn = p.asn_base + 1 + pod_no
                pod_no += 1
                row = []
                for j in range(up):
                    sb = add_device(f"{p.name}-{ttag}spine{j + 1:02d}", "spine", pod_index, None, j, spine_asn)
                    row.append(sb)
                    for local, lb in enumerate(pod_leaf_bases):
                        cable(lb + down + j, sb + local)
                spine_bases.append(row)
            members, m2 = s.superspines_per_group, s.spine_superspine_parallel
            for j in range(s.superspine_groups):
                for i in range(members):
                    ss = add_device(
                        f"{p.name}-{ptag}ss{j + 1:02d}-{i + 1:02d}", "superspine", plane_pod, None,
                        j * members + i, p.asn_base,
                    )  # fmt: skip
                    for q in range(pods):
                        sb = spine_bases[q][j]
                        for c in range(m2):
                            cable(sb + half + i * m2 + c, ss + q * m2 + c)
        leaf_base.append(bases)
        leaf_pod.append(lpods)

    # Hosts: group g holds hosts g*down .. g*down+down-1; NIC r -> port (h % down) of the group's rail-r leaf.
    for h in range(s.hosts):
        g, q = divmod(h, down)
        host_pod = leaf_pod[0][g * rpp] if planes == 1 else None
        hname = f"{p.name}-gpu{h + 1:05d}"
        plan.hosts.append(PlanHost(hname, host_pod, p.gpus_per_host, h))
        for rail in range(p.rails):
            pl, rpos = rail % planes, rail // planes
            port = leaf_base[pl][g * rpp + rpos] + q
            admin_up[port] = 1
            desc[port] = f"{hname} nic{rail}"
            plan.nics.append(PlanNic(h, rail, f"nic{rail}", speed, port))

    interfaces = plan.interfaces
    for d, dev in enumerate(devices):
        dnames = names[dev.platform]
        b = d * k
        plan.device_ports.append((b, b + k))
        for n in range(k):
            i = b + n
            up_ = admin_up[i] == 1
            interfaces.append(
                PlanInterface(d, dnames[n], speed, lanes, up_, address[i], desc[i], optic_name if up_ else None)
            )
    logger.info("planned fabric %s: %s", p.name, plan.counts())
    return plan
