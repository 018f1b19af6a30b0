"""What a CloudEngine running configuration means for the data plane.

Reads the configuration tree and returns the arguments of
:meth:`SwitchState.apply_config_effects`. The rules follow the CloudEngine
configuration guides:

* PFC: a PFC profile (``dcb pfc [name]`` with ``priority N``) takes effect on the
  interfaces where ``dcb pfc enable [name] [mode ...]`` applies it. PFC deadlock
  detection is on by default wherever PFC is (100 ms); ``dcb pfc
  deadlock-detect timer``, or ``priority N deadlock-detect time T`` times
  ``dcb pfc deadlock-detect interval`` (10 ms by default), changes the period;
  ``dcb pfc deadlock recovery-behavior forwarding|discard`` the action.
* ECN: ``qos queue N ecn`` marks instead of dropping on queue N, with the
  thresholds of the WRED drop profile applied by ``qos queue N wred PROFILE``
  (its ``ecn`` line if any, else ``color green``), or the default profile.
* DSCP: with ``trust dscp`` on an interface, DSCP maps to a PHB through the
  ``default`` DiffServ domain and the PHB to its queue (BE 0 ... CS7 7).
* ``qos pq A [to B]`` makes queues strict priority.
* Per port: a RoCE port (``trust dscp``) without ``dcb pfc enable`` (``undo dcb pfc enable``: PFC disabled on a
  storming port) runs its lossless priorities lossy; ``peer X route-policy P export`` whose policy's first node
  ``apply as-path A B C additive`` costs the link on X's subnet out of ECMP (BGP cost-out).
* AI ECN (``ai-service`` / ``ai-ecn`` / ``ai-ecn enable`` + ``assign queue N``) marks on lossless queue N
  where no static ECN is configured. The device tunes its thresholds with a model; the lab uses the fixed
  :data:`AI_ECN_PROFILE` instead.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass

from fabric_ops.lab.state import EcnProfile, QosSettings

from .config import Node

PHB_QUEUE = {"be": 0, "af1": 1, "af2": 2, "af3": 3, "af4": 4, "ef": 5, "cs6": 6, "cs7": 7}
# Queue length a percentage threshold refers to, and the cell size of the forwarding chip (bytes).
QUEUE_KBYTES = 4096
CELL_BYTES = 254
DEFAULT_DEADLOCK_MS = 100
DEFAULT_DEADLOCK_UNIT_MS = 10
# What the lab assumes AI ECN settles on for a lossless queue (low marking start, gentle ramp).
AI_ECN_PROFILE = EcnProfile(min_kbytes=100, max_kbytes=1000, max_probability=0.1)


def default_dscp_phb(dscp: int) -> str:
    """CloudEngine's default ``default`` domain: DSCP 46 is EF, otherwise the class selector bits pick the PHB."""
    if dscp == 46:
        return "ef"
    return ["be", "af1", "af2", "af3", "af4", "ef", "cs6", "cs7"][dscp >> 3]


@dataclass
class Effects:
    qos: QosSettings
    admin_up: dict[str, bool]
    mtu: dict[str, int]
    descriptions: dict[str, str]


def _lines(node: Node | None) -> list[list[str]]:
    return [child.text.split() for child in node.children] if node else []


def _ecn_profile(words: list[str]) -> EcnProfile | None:
    """Turn ``color green ...`` / ``ecn ...`` arguments into thresholds in kilobytes."""
    values = dict(itertools.pairwise(words))
    try:
        low, high, pct = int(values["low-limit"]), int(values["high-limit"]), int(values["discard-percentage"])
    except (KeyError, ValueError):
        return None
    if "cell" in words:
        low_kb, high_kb = low * CELL_BYTES // 1024, high * CELL_BYTES // 1024
    elif "buffer-size" in words:
        low_kb, high_kb = low // 1024, high // 1024
    else:
        low_kb, high_kb = low * QUEUE_KBYTES // 100, high * QUEUE_KBYTES // 100
    return EcnProfile(min_kbytes=low_kb, max_kbytes=max(high_kb, low_kb), max_probability=pct / 100.0)


def compute(root: Node, interface_names: list[str]) -> Effects:
    """Effects of the configuration ``root`` on a switch with ``interface_names``."""
    blocks = {child.text: child for child in root.children}
    top = [child.text.split() for child in root.children if not child.children]

    pfc_profiles: dict[str, set[int]] = {}
    deadlock_time: dict[str, int] = {}
    for text, node in blocks.items():
        words = text.split()
        if words[:2] == ["dcb", "pfc"] and len(words) <= 3:
            name = words[2] if len(words) == 3 else "default"
            pfc_profiles.setdefault(name, set())
            for line in _lines(node):
                if line[0] == "priority" and len(line) == 2:
                    pfc_profiles[name].add(int(line[1]))
                elif line[0] == "priority" and line[2] == "deadlock-detect":
                    deadlock_time[name] = int(line[4])
    drop_profiles: dict[str, EcnProfile] = {}
    for text, node in blocks.items():
        words = text.split()
        if words[0] == "drop-profile":
            chosen = None
            for line in _lines(node):
                if line[0] == "ecn" or (line[:2] == ["color", "green"] and chosen is None):
                    chosen = _ecn_profile(line)
            drop_profiles[words[1]] = chosen or EcnProfile(QUEUE_KBYTES, QUEUE_KBYTES, 1.0)
    dscp_phb = {dscp: default_dscp_phb(dscp) for dscp in range(64)}
    domain = blocks.get("diffserv domain default")
    for line in _lines(domain):
        if line[0] == "ip-dscp-inbound":
            dscp_phb[int(line[1])] = line[3]

    admin_up: dict[str, bool] = {}
    mtu: dict[str, int] = {}
    descriptions: dict[str, str] = {}
    pfc: set[int] = set()
    pfc_profile_used: set[str] = set()
    port_pfc: dict[str, set[int] | None] = {}  # None: a RoCE port (trust dscp) without "dcb pfc enable"
    addresses: dict[str, ipaddress.IPv4Interface] = {}
    ecn: dict[int, EcnProfile] = {}
    trust_dscp = False
    strict: set[int] = set()
    for name in interface_names:
        node = blocks.get(f"interface {name}")
        lines = _lines(node)
        texts = [" ".join(line) for line in lines]
        admin_up[name] = "shutdown" not in texts
        mtu[name] = next((int(line[1]) for line in lines if line[0] == "mtu"), 1500)
        descriptions[name] = next((t[len("description ") :] for t in texts if t.startswith("description ")), "")
        ecn_queues = set()
        wred: dict[int, str] = {}
        for line in lines:
            if line[:3] == ["dcb", "pfc", "enable"]:
                profile = line[3] if len(line) > 3 and line[3] != "mode" else "default"
                pfc_profile_used.add(profile)
                pfc |= pfc_profiles.get(profile, set())
                port_pfc[name] = set(pfc_profiles.get(profile, set()))
            elif line[:2] == ["trust", "dscp"]:
                trust_dscp = True
                port_pfc.setdefault(name, None)
            elif line[:2] == ["ip", "address"] and len(line) == 4:
                addresses[name] = ipaddress.IPv4Interface(f"{line[2]}/{line[3]}")
            elif line[:2] == ["qos", "queue"] and line[3:] == ["ecn"]:
                ecn_queues.add(int(line[2]))
            elif line[:2] == ["qos", "queue"] and line[3] == "wred":
                wred[int(line[2])] = line[4]
            elif line[:2] == ["qos", "pq"]:
                first = int(line[2])
                last = int(line[4]) if len(line) == 5 else first
                strict |= set(range(first, last + 1))
        for queue in ecn_queues:
            profile = drop_profiles.get(wred.get(queue, ""), EcnProfile(QUEUE_KBYTES, QUEUE_KBYTES, 1.0))
            current = ecn.get(queue)
            # One switch-wide profile per queue: keep the most aggressive (lowest) marking threshold.
            if current is None or profile.min_kbytes < current.min_kbytes:
                ecn[queue] = profile

    ai = blocks.get("ai-service")
    ai_ecn = ai.find("ai-ecn") if ai else None
    ai_lines = [child.text.split() for child in ai_ecn.children] if ai_ecn else []
    if ["ai-ecn", "enable"] in ai_lines:
        for words in ai_lines:
            queue = int(words[2]) if words[:2] == ["assign", "queue"] else None
            if queue is not None and queue in pfc and queue not in ecn:
                ecn[queue] = AI_ECN_PROFILE

    interval = next((int(w[4]) for w in top if w[:4] == ["dcb", "pfc", "deadlock-detect", "interval"]), None)
    timer = next((int(w[4]) for w in top if w[:4] == ["dcb", "pfc", "deadlock-detect", "timer"]), None)
    behavior = next((w[4] for w in top if w[:4] == ["dcb", "pfc", "deadlock", "recovery-behavior"]), "discard")
    timeout = DEFAULT_DEADLOCK_MS
    if timer is not None:
        timeout = timer
    times = [deadlock_time[p] for p in pfc_profile_used if p in deadlock_time]
    if times:
        timeout = min(times) * (interval or DEFAULT_DEADLOCK_UNIT_MS)
    qos = QosSettings(
        pfc_priorities=frozenset(pfc),
        ecn=ecn,
        dscp_to_tc={dscp: PHB_QUEUE[phb] for dscp, phb in dscp_phb.items()} if trust_dscp else {},
        pfc_watchdog=bool(pfc),
        pfc_watchdog_timeout_ms=timeout if pfc else 0,
        pfc_watchdog_action="no-drop" if behavior == "forwarding" else "drop",
        strict_priority_tcs=frozenset(strict),
        pfc_disabled={name: frozenset(pfc - (on or set())) for name, on in port_pfc.items() if pfc - (on or set())},
        bgp_prepend=_bgp_prepend(blocks, addresses),
    )
    return Effects(qos=qos, admin_up=admin_up, mtu=mtu, descriptions=descriptions)


# A deny node withdraws every route from the session: no path over it at all unless it is the only one.
DENY_PREPEND = 64


def _policy_prepends(blocks: dict[str, Node]) -> dict[str, int]:
    """Route-policy name -> AS numbers its first node prepends (``apply as-path ... additive``; deny: DENY_PREPEND).

    The lab's policies have no if-match clauses, so the lowest node number decides for every route.
    """
    nodes: dict[str, list[tuple[int, int]]] = {}
    for text, node in blocks.items():
        words = text.split()
        if words[0] != "route-policy" or len(words) != 5:
            continue
        prepend = DENY_PREPEND if words[2] == "deny" else 0
        for line in _lines(node):
            if line[:2] == ["apply", "as-path"] and line[-1] == "additive" and words[2] == "permit":
                prepend = len(line) - 3
        nodes.setdefault(words[1], []).append((int(words[4]), prepend))
    return {name: min(entries)[1] for name, entries in nodes.items()}


def _bgp_prepend(blocks: dict[str, Node], addresses: dict[str, ipaddress.IPv4Interface]) -> dict[str, int]:
    """Port -> AS-path prepends of what the switch exports to the BGP peer on that port's subnet."""
    bgp = next((node for text, node in blocks.items() if text.split()[0] == "bgp"), None)
    family = bgp.find("ipv4-family unicast") if bgp else None
    policies = _policy_prepends(blocks)
    out: dict[str, int] = {}
    for line in [*_lines(bgp), *_lines(family)]:
        if line[0] != "peer" or len(line) != 5 or line[2] != "route-policy" or line[4] != "export":
            continue
        peer = ipaddress.IPv4Address(line[1])
        port = next((n for n, a in addresses.items() if peer in a.network and peer != a.ip), None)
        count = policies.get(line[3], 0)  # a policy that does not exist yet: routes go out unchanged
        if port is not None and count:
            out[port] = count
    return out
