"""Small Clos fabrics built straight into SwitchState objects, without the database.

Tests and the benchmark use these to get a lab of a given shape in milliseconds;
operators build labs from the source of truth instead (spec.build_from_db).
"""

from __future__ import annotations

import ipaddress

from .state import InterfaceState, OpticalChannelState, SwitchState

HOST_PREFIX = "host:"


def _ifname(platform: str, index: int, speed_gbps: int) -> str:
    if platform == "huawei_vrp":
        return f"{speed_gbps}GE1/0/{index}"
    return f"Ethernet{index}/1"


def clos(
    *,
    leaves: int = 2,
    spines: int = 2,
    hosts_per_leaf: int = 2,
    ports: int | None = None,
    uplinks: int | None = None,
    speed_gbps: int = 400,
    platform: str | list[str] = "eos",
    base_address: str = "127.13.0.1",
    eapi_port: int = 443,
    ssh_port: int = 22,
    gnmi_port: int = 6030,
    fabric: str = "lab",
    prefix: str = "",
    first_index: int = 0,
) -> list[SwitchState]:
    """A 2-tier leaf-spine fabric; leaf ports 1..hosts face GPU NICs (one NIC per host, rail 0).

    Each leaf has ``uplinks`` fabric links (default: one to every spine), spread round-robin over the spines.

    ``prefix`` goes in front of every switch and host name and ``first_index`` offsets serials, loopbacks and
    ASNs, so several pods can share one lab. ``platform`` may be a list to alternate platforms across switches.
    Every switch gets ``ports`` interfaces (unused ones stay uncabled), the next loopback address from
    ``base_address`` and the given service ports.
    """
    platforms = platform if isinstance(platform, list) else [platform]
    uplinks = spines if uplinks is None else uplinks
    leaf_ports = hosts_per_leaf + uplinks
    spine_ports = -(-leaves * uplinks // spines)
    ports = ports or max(leaf_ports, spine_ports)
    if ports < max(leaf_ports, spine_ports):
        raise ValueError(f"{ports} ports cannot hold {leaf_ports} leaf or {spine_ports} spine connections")
    address = ipaddress.ip_address(base_address)
    switches: list[SwitchState] = []

    def make(name: str, role: str, n: int) -> SwitchState:
        nonlocal address
        name, n = prefix + name, n + first_index
        plat = platforms[len(switches) % len(platforms)]
        switch = SwitchState(
            hostname=name,
            platform=plat,
            role=role,
            mgmt_address=str(address),
            eapi_port=eapi_port,
            ssh_port=ssh_port,
            gnmi_port=gnmi_port,
            model="DCS-7060X6-64PE" if plat == "eos" else "CE9860-4C-EI",
            serial=f"LAB{n:06d}",
            os_version="4.33.1F" if plat == "eos" else "V300R023C10SPC500",
            fabric=fabric,
            site="lab",
            loopback=f"10.255.{n // 250}.{n % 250 + 1}",
            asn=65000 + n,
        )
        address += 1
        for i in range(1, ports + 1):
            ifname = _ifname(plat, i, speed_gbps)
            switch.interfaces[ifname] = InterfaceState(
                name=ifname, speed_gbps=speed_gbps, transceiver="400G-DR4", lanes=4, mtu=9214
            )
        switches.append(switch)
        return switch

    leaf_list = [make(f"leaf{i + 1}", "leaf", i) for i in range(leaves)]
    spine_list = [make(f"spine{j + 1}", "spine", leaves + j) for j in range(spines)]
    spine_names = {sp.hostname: list(sp.interfaces) for sp in spine_list}
    spine_used: dict[str, int] = {}
    for li, leaf in enumerate(leaf_list):
        names = list(leaf.interfaces)
        for h in range(hosts_per_leaf):
            iface = leaf.interfaces[names[h]]
            iface.peer = (f"{HOST_PREFIX}{prefix}gpu{li + 1}-{h + 1}", "nic0")
            iface.kind = "host"
            iface.description = f"{prefix}gpu{li + 1}-{h + 1} nic0"
        for k in range(uplinks):
            spine = spine_list[(li * uplinks + k) % spines]
            used = spine_used.get(spine.hostname, 0)
            spine_used[spine.hostname] = used + 1
            a = leaf.interfaces[names[hosts_per_leaf + k]]
            b = spine.interfaces[spine_names[spine.hostname][used]]
            a.peer, b.peer = (spine.hostname, b.name), (leaf.hostname, a.name)
            a.kind = b.kind = "fabric"
            a.description, b.description = f"{spine.hostname} {b.name}", f"{leaf.hostname} {a.name}"
    return switches


def dci_pair(
    *, base_address: str = "127.13.1.1", spans: tuple[str, ...] = ("span-a",), platform: str = "eos", **ports: int
) -> list[SwitchState]:
    """Two DCI routers joined by one coherent 400ZR wavelength riding ``spans``."""
    address = ipaddress.ip_address(base_address)
    out = []
    for i, name in enumerate(("dci1", "dci2")):
        switch = SwitchState(
            hostname=name, platform=platform, role="dci", mgmt_address=str(address + i), fabric="dci", **ports
        )
        ifname = _ifname(platform, 1, 400)
        switch.interfaces[ifname] = InterfaceState(
            name=ifname, speed_gbps=400, lanes=1, transceiver="400G-ZR+", kind="dci"
        )
        switch.channels[1] = OpticalChannelState(
            index=1, name="ch-193100", interface=ifname, frequency_ghz=193100.0, spans=list(spans)
        )
        out.append(switch)
    a, b = out
    name_a, name_b = next(iter(a.interfaces)), next(iter(b.interfaces))
    a.interfaces[name_a].peer = ("dci2", name_b)
    b.interfaces[name_b].peer = ("dci1", name_a)
    return out
