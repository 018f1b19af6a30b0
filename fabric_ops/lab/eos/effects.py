"""What an EOS running configuration means for the lab's data plane (the input of ``apply_config_effects``).

This is where pushing RoCE configuration changes the physics: ``qos map dscp``, per-port
``priority-flow-control`` and ``tx-queue N / random-detect ecn`` become a :class:`QosSettings`.
The switch-wide settings are the union over ports because the lab's physics models one QoS profile
per switch (a fabric is configured uniformly), with two per-port exceptions a remediation makes: a port whose
lossless priority is ``priority-flow-control priority N drop`` (PFC disabled on a storming port), and the
AS-path prepend of ``neighbor X route-map M out`` (BGP cost-out of the link on X's subnet).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass

from fabric_ops.lab.eos.config import ConfigTree, Node
from fabric_ops.lab.state import EcnProfile, QosSettings

__all__ = ["DEFAULT_MTU", "Effects", "compute_effects"]

DEFAULT_MTU = 1500  # EOS default L3 MTU when no "mtu" line and no "interface defaults" are configured
SEGMENT_BYTES = 208  # a buffer segment on Trident/Tomahawk-class chips, the unit of "segments" thresholds

_UNIT_TO_KBYTES = {"segments": SEGMENT_BYTES / 1000, "bytes": 1 / 1000, "kbytes": 1.0, "mbytes": 1000.0}


@dataclass
class Effects:
    qos: QosSettings
    admin_up: dict[str, bool]
    mtu: dict[str, int]
    descriptions: dict[str, str]


def _ecn_profile(line: str) -> EcnProfile:
    tokens = line.split()
    values = dict(itertools.pairwise(tokens))  # each keyword -> the value after it
    min_kb = int(values["minimum-threshold"]) * _UNIT_TO_KBYTES[tokens[tokens.index("minimum-threshold") + 2]]
    max_kb = int(values["maximum-threshold"]) * _UNIT_TO_KBYTES[tokens[tokens.index("maximum-threshold") + 2]]
    probability = int(values.get("max-mark-probability", "100")) / 100
    return EcnProfile(min_kbytes=round(min_kb), max_kbytes=round(max_kb), max_probability=probability)


def _parse_seconds_ms(value: str) -> int:
    return round(float(value) * 1000)


def compute_effects(tree: ConfigTree) -> Effects:
    """Read the running configuration; every physical port gets an entry so a rollback restores it fully."""
    dscp_to_tc: dict[int, int] = {}
    watchdog_timeout_ms = 0
    watchdog_action = "drop"
    for node in tree.root.children:
        tokens = node.line.split()
        if node.key.startswith("qos map dscp to traffic-class "):
            tc = int(tokens[-1])
            for dscp in tokens[3:-3]:
                dscp_to_tc[int(dscp)] = tc
        elif node.key == "priority-flow-control pause watchdog default timeout":
            watchdog_timeout_ms = _parse_seconds_ms(tokens[-1])
        elif node.key == "priority-flow-control pause watchdog action":
            watchdog_action = "drop" if tokens[-1] in ("drop", "errdisable") else "no-drop"

    pfc: set[int] = set()
    port_pfc: dict[str, set[int]] = {}
    addresses: dict[str, ipaddress.IPv4Interface] = {}
    ecn: dict[int, EcnProfile] = {}
    strict: set[int] = set()
    watchdog = False
    admin_up: dict[str, bool] = {}
    mtu: dict[str, int] = {}
    descriptions: dict[str, str] = {}
    for name in tree.physical:
        node = tree.root.find(f"interface {name}")
        children = node.children if node else []
        admin_up[name] = not any(c.key == "shutdown" for c in children)
        mtu[name] = next((int(c.line.split()[1]) for c in children if c.key == "mtu"), DEFAULT_MTU)
        descriptions[name] = next((c.line[len("description ") :] for c in children if c.key == "description"), "")
        port_pfc_on = any(c.key == "priority-flow-control" for c in children)
        for child in children:
            tokens = child.line.split()
            if port_pfc_on and child.key.startswith("priority-flow-control priority ") and tokens[-1] == "no-drop":
                pfc.add(int(tokens[2]))
                port_pfc.setdefault(name, set()).add(int(tokens[2]))
            elif child.key == "ip address":
                addresses[name] = ipaddress.IPv4Interface(tokens[2])
            elif port_pfc_on and child.key == "priority-flow-control pause watchdog":
                watchdog = True
            elif child.key == "priority-flow-control pause watchdog port timer":
                watchdog_timeout_ms = _parse_seconds_ms(tokens[6])
            elif child.key == "priority-flow-control pause watchdog port action":
                watchdog_action = "drop" if tokens[-1] in ("drop", "errdisable") else "no-drop"
            elif child.key.startswith("tx-queue "):
                _read_tx_queue(child, ecn, strict)

    qos = QosSettings(
        pfc_priorities=frozenset(pfc),
        ecn=ecn,
        dscp_to_tc=dscp_to_tc,
        pfc_watchdog=watchdog,
        pfc_watchdog_timeout_ms=watchdog_timeout_ms if watchdog else 0,
        pfc_watchdog_action=watchdog_action,
        strict_priority_tcs=frozenset(strict),
        # A port configured for RoCE whose lossless priority is "drop" (or missing) no longer runs PFC on it.
        pfc_disabled={
            name: frozenset(pfc - port_pfc.get(name, set()))
            for name in tree.physical
            if _has_pfc_lines(tree, name) and pfc - port_pfc.get(name, set())
        },
        bgp_prepend=_bgp_prepend(tree, addresses),
    )
    return Effects(qos=qos, admin_up=admin_up, mtu=mtu, descriptions=descriptions)


def _read_tx_queue(node: Node, ecn: dict[int, EcnProfile], strict: set[int]) -> None:
    tc = int(node.line.split()[1])
    for child in node.children:
        if child.key == "random-detect ecn" and tc not in ecn:
            ecn[tc] = _ecn_profile(child.line)
        elif child.key == "priority":
            strict.add(tc)


def _has_pfc_lines(tree: ConfigTree, name: str) -> bool:
    node = tree.root.find(f"interface {name}")
    return bool(node) and any(c.key.startswith("priority-flow-control") for c in node.children)


# A deny entry withdraws every route from the session: no path over it at all unless it is the only one.
DENY_PREPEND = 64


def _route_map_prepends(tree: ConfigTree) -> dict[str, int]:
    """Route-map name -> AS numbers its first entry prepends (DENY_PREPEND for a deny entry).

    The lab's route-maps have no match clauses, so the lowest sequence number decides for every route.
    """
    entries: dict[str, list[tuple[int, int]]] = {}
    for node in tree.root.children:
        tokens = node.line.split()
        if tokens[0] != "route-map":
            continue
        prepend = DENY_PREPEND if tokens[2] == "deny" else 0
        for child in node.children:
            if child.key == "set as-path prepend" and tokens[2] == "permit":
                prepend = len(child.line.split()) - 3
        entries.setdefault(tokens[1], []).append((int(tokens[3]), prepend))
    return {name: min(seqs)[1] for name, seqs in entries.items()}


def _bgp_prepend(tree: ConfigTree, addresses: dict[str, ipaddress.IPv4Interface]) -> dict[str, int]:
    """Port -> AS-path prepends of what the switch advertises to the BGP neighbour on that port's subnet."""
    bgp = tree.root.find("router bgp")
    if bgp is None:
        return {}
    maps = _route_map_prepends(tree)
    out: dict[str, int] = {}
    for child in bgp.children:
        tokens = child.line.split()
        if child.key.endswith(" route-map") and tokens[0] == "neighbor" and tokens[-1] == "out":
            try:
                peer = ipaddress.IPv4Address(tokens[1])
            except ValueError:
                continue  # a peer group: not modelled
            port = next((n for n, a in addresses.items() if peer in a.network and peer != a.ip), None)
            count = maps.get(tokens[3], 0)  # EOS: a route-map that does not exist yet permits unchanged
            if port is not None and count:
                out[port] = count
    return out
