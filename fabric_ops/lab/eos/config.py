"""The EOS configuration model: hierarchical text, the accepted grammar, merge/replace semantics, rendering, diffs.

A configuration is a tree of :class:`Node` (one per stored line, sections carry children). Lines are applied
the way the EOS CLI applies them, including *mode fall-through*: a line that is not valid in the current mode
(e.g. ``interface Ethernet2/1`` typed inside ``tx-queue 3``) is tried in the parent modes, which is how
NAPALM's un-indented candidate files work. Inside one parent, a line replaces the line with the same key
(``mtu 9214`` replaces ``mtu 1500``); ``no X`` / ``default X`` removes it. Anything outside :data:`RULES`
is refused with ``Invalid input`` and the tree is left as it was.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from fabric_ops.lab.eos.grammar import CliError, Spec, token_error

__all__ = ["RULES", "ConfigTree", "Node", "interface_sort_key", "normalise_interface"]


@dataclass
class Node:
    line: str
    key: str
    rank: int = 0
    mode: str | None = None  # child mode when this line opens a section
    children: list[Node] = field(default_factory=list)

    def find(self, key: str) -> Node | None:
        for child in self.children:
            if child.key == key:
                return child
        return None

    def remove(self, key: str) -> bool:
        for child in self.children:
            if child.key == key:
                break
        else:
            return False  # nothing to remove: no new list
        self.children = [c for c in self.children if c.key != key]
        return True


@dataclass(frozen=True, eq=False)  # each rule is defined once: identity is its equality (and a cheap cache key)
class Rule:
    spec: Spec
    key_len: int  # how many leading tokens identify the line within its parent
    rank: int = 50  # position among siblings when rendered (EOS prints in a canonical order)
    mode: str | None = None  # child mode entered by this line
    no_stored: bool = False  # "no X" is itself shown in the running-config (e.g. "no switchport")
    positive_default: bool = False  # "X" is the default: it only removes a stored "no X"


def _r(spec: str, key_len: int, rank: int = 50, **kw) -> Rule:
    return Rule(Spec(spec), key_len, rank, **kw)


_NATURAL = re.compile(r"(\d+)")
_BANNER = re.compile(r"^((no|default) )?banner (login|motd)$")


def _natural(text: str) -> list:
    return [int(p) if p.isdigit() else p for p in _NATURAL.split(text)]


_IFACE_TYPES = {
    "ethernet": "Ethernet",
    "et": "Ethernet",
    "eth": "Ethernet",
    "loopback": "Loopback",
    "lo": "Loopback",
    "management": "Management",
    "ma": "Management",
    "port-channel": "Port-Channel",
    "po": "Port-Channel",
}
_IFACE_RE = re.compile(r"^([A-Za-z-]+?)\s*(\d+(?:/\d+)*)$")


def normalise_interface(name: str) -> str | None:
    """``et1/1`` / ``ethernet 1/1`` -> ``Ethernet1/1``; None if it is not an interface name EOS knows."""
    m = _IFACE_RE.match(name.strip())
    if not m:
        return None
    kind = _IFACE_TYPES.get(m.group(1).lower())
    return f"{kind}{m.group(2)}" if kind else None


_IFACE_ORDER = {"Ethernet": 0, "Loopback": 1, "Management": 2, "Port-Channel": 3}


def interface_sort_key(name: str) -> tuple:
    m = _IFACE_RE.match(name)
    kind = m.group(1) if m else name
    return (_IFACE_ORDER.get(kind, 9), _natural(name))


# --- custom handlers -------------------------------------------------------------------------------------------


def _apply_qos_map(parent: Node, tokens: list[str], negate: bool) -> None:
    """``qos map dscp 24 26 to traffic-class 3``: EOS keeps one line per traffic class, a DSCP maps to one class."""
    idx = [t.lower() for t in tokens].index("to")
    dscps = {int(t) for t in tokens[3:idx]}
    tc = int(tokens[idx + 2])
    current: dict[int, set[int]] = {}
    for child in [c for c in parent.children if c.key.startswith("qos map dscp to traffic-class ")]:
        current[int(child.key.rsplit(" ", 1)[1])] = {int(t) for t in child.line.split()[3:-3]}
    for members in current.values():
        members -= dscps
    if not negate:
        current.setdefault(tc, set()).update(dscps)
    parent.children = [c for c in parent.children if not c.key.startswith("qos map dscp to traffic-class ")]
    rank = RULE_BY_NAME["qos-map"].rank
    for klass, members in sorted(current.items()):
        if members:
            line = f"qos map dscp {' '.join(str(d) for d in sorted(members))} to traffic-class {klass}"
            parent.children.append(Node(line, f"qos map dscp to traffic-class {klass}", rank))


def _hash_secret(tokens: list[str]) -> list[str]:
    """EOS never shows a clear-text secret: ``secret 0 pw`` / ``secret pw`` become ``secret sha512 $6$...``."""
    lowered = [t.lower() for t in tokens]
    if "secret" not in lowered:
        return tokens
    i = lowered.index("secret")
    rest = tokens[i + 1 :]
    if rest and rest[0].lower() in ("sha512", "5"):
        return tokens
    clear = rest[-1] if rest else ""
    salt = hashlib.sha256(("salt" + tokens[1]).encode()).hexdigest()[:16]
    digest = hashlib.sha512((salt + clear).encode()).hexdigest()[:86]
    return [*tokens[: i + 1], "sha512", f"$6${salt}${digest}"]


# --- the accepted grammar, per CLI mode ------------------------------------------------------------------------

_UNITS = "segments|bytes|kbytes|mbytes"
_LB_FIELDS = (
    "(source-ip|destination-ip|protocol|source-port|destination-port|ingress-interface|flow-label|"
    "src-ip|dst-ip|ip-proto|l4-src-port|l4-dst-port)+"
)

# "set as-path prepend" takes up to 16 AS numbers (the lab's limit; EOS also takes "auto" for the local AS).
_PREPEND = " ".join(["<as-or-auto>"] + ["[<as-or-auto>]"] * 15)

RULE_BY_NAME: dict[str, Rule] = {
    "qos-map": _r("qos map dscp (" + "|".join(str(i) for i in range(64)) + ")+ to traffic-class <int:0-7>", 3, 51),
}

RULES: dict[str, list[Rule]] = {
    "global": [
        _r("service routing protocols model multi-agent|ribd", 4, 10),
        _r("logging host <host> [<int:1-65535>] [protocol tcp|udp]", 3, 15),
        _r("logging vrf <word> host <host> [<int:1-65535>] [protocol tcp|udp]", 5, 15),
        _r("hostname <hostname>", 1, 20),
        _r("clock timezone <word>", 2, 21),
        _r("dns domain <word>", 2, 24),
        _r("ip name-server [vrf <word>] <ip>", 2, 25),
        _r("ntp server <host> [iburst] [prefer] [version <int:1-4>] [local-interface <word>]", 3, 30),
        _r("ntp server vrf <word> <host> [iburst] [prefer] [version <int:1-4>] [local-interface <word>]", 5, 30),
        _r("spanning-tree mode mstp|rstp|rapid-pvst|none", 2, 35),
        _r("aaa root", 2, 40, no_stored=True),
        _r("aaa authentication login default local|none", 4, 41),
        _r("aaa authorization exec default local|none", 4, 41),
        _r("vrf instance <word>", 3, 44, mode="vrf"),
        _r(
            "username <word> [privilege <int:0-15>] [role <word>] secret [0|5|sha512] <word>",
            2,
            45,
        ),
        _r("username <word> [privilege <int:0-15>] [role <word>] nopassword", 2, 45),
        _r("qos rewrite dscp", 3, 50, no_stored=True),
        RULE_BY_NAME["qos-map"],
        _r("qos map traffic-class <int:0-7> to tx-queue <int:0-7>", 4, 52),
        _r("priority-flow-control all off", 3, 55),
        _r("priority-flow-control pause watchdog default timeout <float:0.01~60>", 5, 55),
        _r("priority-flow-control pause watchdog default recovery-time <float:0.01~60> [forced]", 5, 55),
        _r("priority-flow-control pause watchdog default polling-interval <float:0.005~30>", 5, 55),
        _r("priority-flow-control pause watchdog action drop|no-drop|errdisable|notify-only", 4, 55),
        _r(f"ip load-sharing trident|sand|arad fields ip|ipv6 {_LB_FIELDS}", 5, 57),
        _r("ip load-sharing trident|sand|arad seed <int>", 4, 57),
        _r("load-balance policies", 2, 58, mode="lb-policies"),
        _r("interface <rest>", 2, 60, mode="interface"),
        _r("ip routing", 2, 65, no_stored=True),
        _r("ip routing vrf <word>", 4, 65, no_stored=True),
        _r("ip route <prefix> <word> [<int:1-255>]", 4, 66),
        _r("router bfd", 2, 70, mode="router-bfd"),
        _r("route-map <word> permit|deny <int:1-16777215>", 4, 72, mode="route-map"),
        _r("router bgp <asn>", 2, 75, mode="router-bgp"),
        _r("management api http-commands", 3, 85, mode="mgmt-api-http"),
        _r("management api gnmi", 3, 86, mode="mgmt-api-gnmi"),
    ],
    "interface": [
        _r("description <rest>", 1, 10),
        _r("shutdown", 1, 12),
        _r("load-interval <int:0-600>", 1, 13),
        _r("mtu <int:68-9214>", 1, 14),
        _r("speed [forced] <word>", 1, 15),
        _r("error-correction encoding reed-solomon|fire-code", 2, 16, no_stored=True),
        _r("switchport", 1, 18, no_stored=True, positive_default=True),
        _r("vrf <word>", 1, 19),
        _r("ip address <prefix>", 2, 20),
        _r("dcbx mode ieee|cee", 2, 35, no_stored=True),
        _r("bfd interval <int:50-60000> min-rx <int:50-60000> multiplier <int:3-50>", 2, 22),
        _r("qos trust dscp|cos", 2, 30, no_stored=True),
        _r("priority-flow-control on", 1, 40),
        _r("priority-flow-control mode on", 1, 40),
        _r("priority-flow-control priority <int:0-7> no-drop|drop", 3, 41),
        _r("priority-flow-control pause watchdog", 3, 42),
        _r("priority-flow-control pause watchdog port action drop|no-drop|errdisable|notify-only", 5, 43),
        _r(
            "priority-flow-control pause watchdog port timer timeout <float:0.01~60> polling-interval auto|<float> "
            "recovery-time <float> [forced]",
            5,
            43,
        ),
        _r("lldp transmit", 2, 45, no_stored=True, positive_default=True),
        _r("lldp receive", 2, 45, no_stored=True, positive_default=True),
        _r("tx-queue <int:0-7>", 2, 80, mode="tx-queue"),
    ],
    "vrf": [
        _r("description <rest>", 1, 10),
    ],
    "tx-queue": [
        _r("bandwidth percent <int:1-100>", 2, 10),
        _r("bandwidth guaranteed percent <int:1-100>", 2, 11),
        _r("shape rate <int> [percent]", 2, 12),
        _r("priority strict", 1, 13),
        _r(
            f"random-detect ecn minimum-threshold <int> {_UNITS} maximum-threshold <int> {_UNITS} "
            "[max-mark-probability <int:1-100>] [weight <int:0-15>]",
            2,
            20,
        ),
    ],
    "router-bgp": [
        _r("router-id <ip>", 1, 10),
        _r("bgp log-neighbor-changes", 2, 11, no_stored=True),
        _r("bgp bestpath as-path multipath-relax", 4, 12),
        _r("bgp default ipv4-unicast", 3, 12, no_stored=True),
        _r("timers bgp <int:0-3600> <int:0-3600>", 2, 13),
        _r("distance bgp <int:1-255> <int:1-255> <int:1-255>", 2, 13),
        _r("maximum-paths <int:1-512> [ecmp <int:1-512>]", 1, 14),
        _r("neighbor <word> peer group", 4, 20),
        _r("neighbor <ip> peer group <word>", 4, 21),
        _r("neighbor <word> remote-as <asn>", 3, 22),
        _r("neighbor <word> description <rest>", 3, 22),
        _r("neighbor <word> update-source <word>", 3, 22),
        _r("neighbor <word> bfd", 3, 22),
        _r("neighbor <word> send-community [standard|extended|large]", 3, 22),
        _r("neighbor <word> maximum-routes <int> [warning-only]", 3, 22),
        _r("neighbor <word> allowas-in [<int:1-10>]", 3, 22),
        _r("neighbor <word> ebgp-multihop [<int:1-255>]", 3, 22),
        _r("neighbor <word> password [0|7] <word>", 3, 22),
        _r("neighbor <word> shutdown", 3, 22),
        _r("neighbor <word> route-map <word> out", 3, 23),
        _r("network <prefix>", 2, 30),
        _r("redistribute connected [route-map <word>]", 2, 31),
        _r("address-family ipv4|ipv6", 2, 40, mode="router-bgp-af"),
    ],
    "router-bgp-af": [
        _r("neighbor <word> activate", 3, 10, no_stored=True),
        _r("network <prefix>", 2, 20),
        _r("redistribute connected [route-map <word>]", 2, 21),
    ],
    "route-map": [
        _r("description <rest>", 1, 10),
        _r("set as-path prepend " + _PREPEND, 3, 20),
        _r("set metric <int:0-4294967295>", 2, 21),
    ],
    "router-bfd": [
        _r("interval <int:50-60000> min-rx <int:50-60000> multiplier <int:3-50> default", 1, 10),
        _r("multihop interval <int:50-60000> min-rx <int:50-60000> multiplier <int:3-50>", 2, 11),
    ],
    "lb-policies": [
        _r("load-balance sand|trident profile <word>", 4, 10, mode="lb-profile"),
    ],
    "lb-profile": [
        _r(f"fields ip|ipv6 {_LB_FIELDS}", 2, 10),
        _r("hash-seed <int>", 1, 11),
    ],
    "mgmt-api-http": [
        _r("shutdown", 1, 10, no_stored=True),
        _r("protocol https|http [port <int:1-65535>]", 2, 20),
        _r("vrf <word>", 2, 30, mode="mgmt-api-http-vrf"),
    ],
    "mgmt-api-http-vrf": [
        _r("shutdown", 1, 10, no_stored=True),
    ],
    "mgmt-api-gnmi": [
        _r("transport grpc <word>", 3, 10, mode="gnmi-transport"),
        _r("provider eos-native", 2, 20),
    ],
    "gnmi-transport": [
        _r("port <int:1-65535>", 1, 10),
        _r("vrf <word>", 1, 11),
        _r("ssl profile <word>", 2, 12),
        _r("shutdown", 1, 13),
    ],
}


def _index_by_first_word(rules: dict[str, list[Rule]]) -> dict[str, dict[str, list[Rule]]]:
    """Every rule starts with a keyword: index by it so applying a line tries only the plausible rules."""
    index: dict[str, dict[str, list[Rule]]] = {}
    for mode, mode_rules in rules.items():
        by_word: dict[str, list[Rule]] = {}
        for rule in mode_rules:
            for word in rule.spec.elems[0].words:
                by_word.setdefault(word, []).append(rule)
        index[mode] = by_word
    return index


_BY_FIRST_WORD = _index_by_first_word(RULES)


def _candidates(mode: str, first: str, autocomplete: bool) -> list[Rule]:
    """Rules starting with ``first``; with eAPI ``autoComplete`` a unique keyword prefix stands for the keyword."""
    index = _BY_FIRST_WORD[mode]
    word = first.lower()
    if word in index or not autocomplete:
        return index.get(word, [])
    keywords = [k for k in index if k.startswith(word)]
    return index[keywords[0]] if len(keywords) == 1 else []


# Matching is a pure function of its arguments (the rules are fixed), and a pushed configuration repeats the same
# lines on every port and every switch: most lines are looked up in these caches instead of walking the grammar.
CACHE_SIZE = 200_000


@functools.lru_cache(maxsize=CACHE_SIZE)
def _match_in_mode(mode: str, body: tuple[str, ...], autocomplete: bool) -> tuple[Rule | None, tuple[str, ...], int]:
    """The first rule of ``mode`` the whole line matches (None if none), its expanded tokens, the furthest token
    any candidate reached (for the error message)."""
    tokens = list(body)
    best = 0
    result: tuple[Rule | None, tuple[str, ...], int] | None = None
    for rule in _candidates(mode, tokens[0] if tokens else "", autocomplete):
        # an exact match wins ("no ip routing vrf X" is not "no ip routing")
        matched, reached, expanded = rule.spec.expand(tokens, autocomplete)
        best = max(best, reached)
        if matched:
            result = (rule, tuple(expanded), best)
            break
    return result if result is not None else (None, (), best)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _short_no_rule(mode: str, body: tuple[str, ...], autocomplete: bool) -> Rule | None:
    """The rule a ``no`` line with its arguments left out names, if any."""
    candidates = _candidates(mode, body[0] if body else "", autocomplete)
    # The longest key wins: "no priority-flow-control priority 0" names one priority, not "priority-flow-control".
    for rule in sorted(candidates, key=lambda r: -r.key_len):
        if len(body) >= rule.key_len and rule.spec.match_prefix(list(body[: rule.key_len])):
            return rule
    return None


@dataclass
class Cursor:
    """Where the next configuration line goes: the stack of open sections from the root."""

    stack: list[Node]


class ConfigTree:
    """One configuration (running, startup, a session's candidate) as EOS holds it."""

    def __init__(self, physical: Iterable[str]):
        self.physical = sorted(physical, key=interface_sort_key)
        self.root = Node("", "", 0, "global")
        for name in self.physical:
            self.root.children.append(Node(f"interface {name}", f"interface {name}", 60, "interface"))

    def copy(self) -> ConfigTree:
        clone = ConfigTree.__new__(ConfigTree)
        clone.physical = list(self.physical)
        clone.root = _copy_node(self.root)
        return clone

    def cursor(self) -> Cursor:
        return Cursor([self.root])

    # --- applying lines ---------------------------------------------------------------------------------------

    def apply(self, cursor: Cursor, line: str, heredoc: str | None = None, autocomplete: bool = False) -> None:
        """Apply one configuration line at ``cursor`` (fall-through to parent modes); raise CliError if refused.

        ``heredoc`` is the multi-line text of ``banner login|motd`` (eAPI's ``{"cmd", "input"}`` form).
        """
        tokens = line.split()
        if not tokens or line.lstrip().startswith("!"):
            return
        if "banner" in line and _BANNER.match(line.strip()):
            self._apply_banner(cursor, line.strip(), heredoc)
            return
        if len(tokens) == 1 and tokens[0].lower() == "exit":
            if len(cursor.stack) > 1:
                cursor.stack.pop()
            return
        negate = tokens[0].lower() in ("no", "default")
        body = tokens[1:] if negate else tokens
        best = 0
        key = tuple(body)
        for depth in range(len(cursor.stack) - 1, -1, -1):
            parent = cursor.stack[depth]
            mode = parent.mode or "global"
            rule, expanded, reached = _match_in_mode(mode, key, autocomplete)
            best = max(best, reached + (1 if negate else 0))
            if rule is not None:
                del cursor.stack[depth + 1 :]
                self._apply_rule(cursor, parent, rule, list(expanded), negate)
                return
            if negate:
                candidates = _candidates(mode, body[0] if body else "", autocomplete)
                if self._apply_short_no(cursor, depth, candidates, body, autocomplete):
                    return
        raise token_error(tokens, best)

    def _apply_short_no(self, cursor: Cursor, depth: int, candidates, body: list[str], autocomplete: bool) -> bool:
        """``no mtu`` / ``no description`` (arguments left out) and ``no neighbor 10.0.0.1`` (every line of it)."""
        parent = cursor.stack[depth]
        rule = _short_no_rule(parent.mode or "global", tuple(body), autocomplete)  # the same candidates
        if rule is not None:
            del cursor.stack[depth + 1 :]
            self._apply_rule(cursor, parent, rule, body, True)
            return True
        for rule in candidates:
            if body and not rule.mode and rule.spec.match_prefix(body):
                prefix = " ".join(t.lower() for t in body) + " "
                if any(c.key.startswith(prefix) for c in parent.children):
                    parent.children = [c for c in parent.children if not c.key.startswith(prefix)]
                    del cursor.stack[depth + 1 :]
                    return True
        return False

    def _apply_banner(self, cursor: Cursor, line: str, heredoc: str | None) -> None:
        del cursor.stack[1:]
        words = line.split()
        negate = words[0] in ("no", "default")
        key = " ".join(words[1:3] if negate else words[:2])
        self.root.remove(key)
        if negate:
            return
        if heredoc is None:
            raise CliError("Incomplete command")
        text = [t for t in heredoc.rstrip("\n").split("\n") if t != "EOF"]
        self.root.children.append(Node(key, key, 16, "banner", [Node(t, t) for t in text]))

    def _apply_rule(self, cursor: Cursor, parent: Node, rule: Rule, body: list[str], negate: bool) -> None:
        if rule is RULE_BY_NAME["qos-map"]:
            _apply_qos_map(parent, body, negate)
            return
        if rule.spec.text.startswith("interface "):
            self._apply_interface(cursor, parent, body, negate)
            return
        if body[0].lower() == "username" and not negate:
            body = _hash_secret(body)
        line, key = _line_and_key(rule, tuple(body))
        if negate:
            parent.remove(key)
            if rule.no_stored:
                parent.children.append(Node("no " + " ".join(line.split()[: rule.key_len]), key, rule.rank))
            return
        existing = parent.find(key)
        if rule.positive_default:
            parent.remove(key)
            return
        if existing is not None and existing.mode is not None and existing.line == line:
            cursor.stack.append(existing)
            return
        if existing is not None and existing.mode is not None:
            # Same key, new text (e.g. "router bgp 65002" while 65001 exists): EOS refuses a second BGP instance.
            if body[0].lower() == "router":
                raise CliError(f"BGP is already running with AS number {existing.line.split()[-1]}")
            existing.line = line
            cursor.stack.append(existing)
            return
        parent.remove(key)
        node = Node(line, key, rule.rank, rule.mode)
        parent.children.append(node)
        if rule.mode:
            cursor.stack.append(node)

    def _apply_interface(self, cursor: Cursor, parent: Node, body: list[str], negate: bool) -> None:
        raw = "".join(body[1:])
        name = normalise_interface(raw)
        if name is None:
            raise token_error(body, 1)
        is_physical = name.startswith(("Ethernet", "Management"))
        if is_physical and name not in self.physical and name != "Management1":
            raise token_error(body, 1)
        key = f"interface {name}"
        node = parent.find(key)
        if negate:
            if node is not None and is_physical:
                node.children = []  # physical ports cannot be deleted: "no interface" resets them
            elif node is not None:
                parent.remove(key)
            return
        if node is None:
            node = Node(key, key, 60, "interface")
            parent.children.append(node)
        cursor.stack.append(node)

    def load_text(self, text: str) -> None:
        """Apply a whole configuration text (indentation ignored, like ``configure replace`` or a NAPALM file)."""
        cursor = self.cursor()
        lines = text.splitlines()
        number = 0
        while number < len(lines):
            line = lines[number].strip()
            number += 1
            if not line or line.startswith("!"):
                continue
            if line == "end":
                break
            heredoc = None
            if "banner" in line and _BANNER.match(line) and not line.startswith(("no ", "default ")):
                end = next((n for n in range(number, len(lines)) if lines[n].strip() == "EOF"), len(lines))
                heredoc, number = "\n".join(lines[number:end]), end + 1
            try:
                self.apply(cursor, line, heredoc)
            except CliError as exc:
                raise CliError(f"line {number} '{line}': {exc.message}") from exc

    # --- rendering --------------------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The body of ``show running-config``: sections, 3-space indentation, '!' separators, no header."""
        out: list[str] = []
        previous_rank = None
        for node in _sorted(self.root.children):
            # "!" before every section and between groups of different commands, as EOS prints it
            if node.mode is not None or node.rank != previous_rank:
                out.append("!")
            previous_rank = None if node.mode is not None else node.rank
            out.append(node.line)
            if node.mode == "banner":
                out.extend(child.line for child in node.children)
                out.append("EOF")
            elif node.mode is not None:
                _render_children(node, 1, out)
        out.append("!")
        out.append("end")
        return out

    def text(self) -> str:
        return "\n".join(self.lines()) + "\n"

    def section(self, key: str) -> Node | None:
        return self.root.find(key)

    def walk(self) -> Iterable[tuple[Node, Node]]:
        """(parent, node) pairs, depth first."""
        stack = [self.root]
        while stack:
            parent = stack.pop()
            for child in parent.children:
                yield parent, child
                if child.children:
                    stack.append(child)

    def as_json(self) -> dict:
        """``show running-config`` in JSON format: nested ``cmds`` dictionaries, as eAPI returns it."""

        def convert(node: Node) -> dict:
            return {
                "cmds": {c.line: (convert(c) if c.mode is not None else None) for c in _sorted(node.children)},
                "comments": [],
            }

        result = convert(self.root)
        return {"cmds": result["cmds"], "header": ["! device: (EOS emulation)\n"]}


def _copy_node(node: Node) -> Node:
    return Node(node.line, node.key, node.rank, node.mode, [_copy_node(c) for c in node.children])


@functools.lru_cache(maxsize=CACHE_SIZE)
def _line_and_key(rule: Rule, body: tuple[str, ...]) -> tuple[str, str]:
    """The stored line (``_normalise``) and its key within the parent."""
    line = _normalise(rule, list(body))
    return line, " ".join(t.lower() for t in line.split()[: rule.key_len])


def _normalise(rule: Rule, body: list[str]) -> str:
    spec_words, rest_index = rule.spec.words, rule.spec.rest_index
    out = []
    for index, token in enumerate(body):
        if rest_index is not None and index >= rest_index:
            out.append(token)
        else:
            out.append(token.lower() if token.lower() in spec_words else token)
    return " ".join(out)


def _sorted(children: list[Node]) -> list[Node]:
    def key(node: Node) -> tuple:
        if node.key.startswith("interface "):
            return (node.rank, interface_sort_key(node.key[10:]))
        return (node.rank, _natural(node.key), _natural(node.line))

    return sorted(children, key=key)


def _render_children(node: Node, depth: int, out: list[str]) -> None:
    indent = "   " * depth
    for position, child in enumerate(_sorted(node.children)):
        if child.mode is not None and position > 0:
            out.append(f"{indent}!")
        out.append(f"{indent}{child.line}")
        if child.mode is not None:
            _render_children(child, depth + 1, out)


def unified_diff(before: list[str], after: list[str], fromfile: str, tofile: str) -> str:
    """The diff EOS prints for ``show session-config diffs``: a unified diff with file-style headers."""
    return "".join(
        line + "\n" for line in difflib.unified_diff(before, after, fromfile=fromfile, tofile=tofile, lineterm="")
    )
