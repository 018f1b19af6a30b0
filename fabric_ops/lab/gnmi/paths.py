"""The gNMI data tree of an emulated switch: which paths exist, and how a SwitchState answers them.

The tree is declared once (:data:`ROOT`) as containers, keyed lists and
leaves. A leaf carries a small Python expression over ``c`` (the context of
the top-level list entry it lives under: an :class:`InterfaceState`, an
:class:`OpticalChannelState`, or the switch for ``/system``) and ``s`` (the
switch). Nested list entries (queues, PFC priorities, lanes) substitute their
index into the expression, so a whole interface's worth of leaves compiles into
one function returning a tuple; that is what makes sampling thousands of leaves
a second affordable.

Leaves, types and module names follow the OpenConfig models (see
docs/telemetry-paths.md); where OpenConfig has no leaf, the owning vendor model
is named in ``module``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.errors import LabError
from fabric_ops.lab.state import TRAFFIC_CLASSES, SwitchState

from . import wire

Keys = dict[str, str]
ReqElem = tuple[str, Keys]


class GnmiPathError(LabError):
    """A requested path cannot be parsed against the lab's schema (wrong key name, keys on a container)."""


@dataclass(frozen=True)
class Leaf:
    kind: str  # see wire.value_encoder
    expr: str | dict[str, str]  # per entry kind when a dict
    fd: int = 0  # decimal64 fraction digits
    config: bool = False  # a config-true leaf (under .../config)
    mirror: bool = False  # a state leaf that mirrors configuration (excluded from OPERATIONAL)
    on_change: bool = False  # TARGET_DEFINED subscriptions stream this leaf ON_CHANGE


EntriesFn = Callable[[SwitchState, Any, str], Iterable[tuple[tuple[str, ...], Any, str, dict[str, int]]]]


@dataclass
class Node:
    name: str
    children: dict[str, Node] = field(default_factory=dict)
    module: str = ""  # set where the module changes (top-level containers, augments)
    leaf: Leaf | None = None
    keys: tuple[str, ...] = ()
    entries: EntriesFn | None = None
    top: bool = False  # a top-level list (or /system): one notification group per entry
    kinds: frozenset[str] | None = None  # entry kinds this subtree applies to (components)

    @property
    def is_list(self) -> bool:
        return bool(self.keys)

    def applies(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds


def C(name: str, *children: Node, module: str = "", top: bool = False, kinds: Iterable[str] | None = None) -> Node:  # noqa: N802
    return Node(
        name,
        {c.name: c for c in children},
        module=module,
        top=top,
        kinds=frozenset(kinds) if kinds is not None else None,
    )


def L(  # noqa: N802
    name: str, keys: tuple[str, ...], entries: EntriesFn, *children: Node, top: bool = False, module: str = ""
) -> Node:
    return Node(name, {c.name: c for c in children}, module=module, keys=keys, entries=entries, top=top)


def F(name: str, kind: str, expr: str | dict[str, str], **kw: Any) -> Node:  # noqa: N802
    return Node(name, leaf=Leaf(kind, expr, **kw))


def FM(name: str, kind: str, expr: str | dict[str, str], module: str, **kw: Any) -> Node:  # noqa: N802
    node = F(name, kind, expr, **kw)
    node.module = module
    return node


# --- modules -----------------------------------------------------------------------------------
OC = "OpenConfig working group"
MODELS: list[tuple[str, str, str]] = [
    ("openconfig-interfaces", OC, "3.7.2"),
    ("openconfig-if-ethernet", OC, "2.14.0"),
    ("openconfig-platform", OC, "0.31.0"),
    ("openconfig-platform-transceiver", OC, "0.16.0"),
    ("openconfig-platform-types", OC, "1.9.0"),
    ("openconfig-qos", OC, "0.11.2"),
    ("openconfig-system", OC, "2.3.0"),
    ("openconfig-terminal-device", OC, "1.9.2"),
    ("openconfig-transport-types", OC, "1.1.0"),
    ("openconfig-types", OC, "1.0.0"),
    ("openconfig-yang-types", OC, "1.0.0"),
    ("iana-if-type", "IANA", ""),
    # Per-priority PFC counters: the SONiC management framework's augment of openconfig-qos.
    ("openconfig-qos-ext", "SONiC", ""),
    # Per-queue ECN-marked packets: no public model found; the lab's own augment (docs/telemetry-paths.md).
    ("fabricops-qos-augments", "FabricOps", "0.1.0"),
]

# --- entries -----------------------------------------------------------------------------------


def _interfaces(s: SwitchState, c: Any, k: str):
    return (((name,), iface, "if", {}) for name, iface in s.interfaces.items())


def _queues(s: SwitchState, c: Any, k: str):
    return (((str(q),), c, k, {"q": q}) for q in range(len(c.queues)))


def _priorities(s: SwitchState, c: Any, k: str):
    return (((str(p),), c, k, {"p": p}) for p in range(TRAFFIC_CLASSES))


def _components(s: SwitchState, c: Any, k: str):
    for name, iface in s.interfaces.items():
        if iface.optics:
            yield (transceiver_name(name),), iface, "xcvr", {}
    for channel in s.channels.values():
        yield (channel.name,), channel, "och", {}


def _lanes(s: SwitchState, c: Any, k: str):
    return (((str(n + 1),), c, k, {"l": n, "n": n + 1}) for n in range(len(c.optics)))


def _logical_channels(s: SwitchState, c: Any, k: str):
    return (((str(ch.index),), ch, "lch", {}) for ch in s.channels.values())


def _cpus(s: SwitchState, c: Any, k: str):
    return ((("ALL",), c, k, {}),)


def transceiver_name(interface: str) -> str:
    """The openconfig-platform component name of an interface's transceiver."""
    return f"{interface}-transceiver"


# --- the tree ----------------------------------------------------------------------------------
UP_DOWN = "('UP' if c.admin_up else 'DOWN')"
OPER = "('UP' if (c.oper_up and c.admin_up) else 'DOWN')"


def _counter(name: str, attr: str) -> Node:
    return F(name, "u64", f"c.{attr}")


INTERFACES = C(
    "interfaces",
    L(
        "interface",
        ("name",),
        _interfaces,
        F("name", "str", "c.name", mirror=True, on_change=True),
        C(
            "config",
            F("name", "str", "c.name", config=True, on_change=True),
            F("type", "ident", "'iana-if-type:ethernetCsmacd'", config=True, on_change=True),
            F("mtu", "uint", "c.mtu", config=True, on_change=True),
            F("description", "str", "c.description", config=True, on_change=True),
            F("enabled", "bool", "c.admin_up", config=True, on_change=True),
        ),
        C(
            "state",
            F("name", "str", "c.name", mirror=True, on_change=True),
            F("type", "ident", "'iana-if-type:ethernetCsmacd'", mirror=True, on_change=True),
            F("mtu", "uint", "c.mtu", mirror=True, on_change=True),
            F("description", "str", "c.description", mirror=True, on_change=True),
            F("enabled", "bool", "c.admin_up", mirror=True, on_change=True),
            F("admin-status", "str", UP_DOWN, on_change=True),
            F("oper-status", "str", OPER, on_change=True),
            F("last-change", "u64", "c.last_change_ns", on_change=True),
            FM(
                "transceiver",
                "str",
                "((c.name + '-transceiver') if c.optics else None)",
                "openconfig-platform-transceiver",
                on_change=True,
            ),
            C(
                "counters",
                _counter("in-octets", "in_octets"),
                _counter("out-octets", "out_octets"),
                _counter("in-unicast-pkts", "in_unicast_pkts"),
                _counter("out-unicast-pkts", "out_unicast_pkts"),
                _counter("in-errors", "in_errors"),
                _counter("out-errors", "out_errors"),
                _counter("in-fcs-errors", "in_fcs_errors"),
                _counter("in-discards", "in_discards"),
                _counter("out-discards", "out_discards"),
                _counter("carrier-transitions", "carrier_transitions"),
            ),
        ),
        C(
            "ethernet",
            C("config", F("port-speed", "ident", "_speed(c.speed_gbps)", config=True, on_change=True)),
            C(
                "state",
                F("port-speed", "ident", "_speed(c.speed_gbps)", mirror=True, on_change=True),
                C(
                    "counters",
                    _counter("in-mac-pause-frames", "in_pause_frames"),
                    _counter("out-mac-pause-frames", "out_pause_frames"),
                    _counter("in-crc-errors", "in_fcs_errors"),
                ),
            ),
            module="openconfig-if-ethernet",
        ),
        top=True,
    ),
    module="openconfig-interfaces",
)

QUEUE = "c.queues[{q}]"
QOS = C(
    "qos",
    C(
        "interfaces",
        L(
            "interface",
            ("interface-id",),
            _interfaces,
            F("interface-id", "str", "c.name", mirror=True, on_change=True),
            C("config", F("interface-id", "str", "c.name", config=True, on_change=True)),
            C("state", F("interface-id", "str", "c.name", mirror=True, on_change=True)),
            C(
                "output",
                C(
                    "queues",
                    L(
                        "queue",
                        ("name",),
                        _queues,
                        F("name", "str", "'{q}'", mirror=True, on_change=True),
                        C(
                            "state",
                            F("name", "str", "'{q}'", mirror=True, on_change=True),
                            F("transmit-pkts", "u64", QUEUE + ".transmit_pkts"),
                            F("transmit-octets", "u64", QUEUE + ".transmit_octets"),
                            F("dropped-pkts", "u64", QUEUE + ".dropped_pkts"),
                            F("dropped-octets", "u64", QUEUE + ".dropped_octets"),
                            F("avg-queue-len", "u64", QUEUE + ".depth_bytes"),
                            FM("ecn-marked-pkts", "u64", QUEUE + ".ecn_marked_pkts", "fabricops-qos-augments"),
                        ),
                    ),
                ),
            ),
            C(
                "pfc",
                C(
                    "pfc-priorities",
                    L(
                        "pfc-priority",
                        ("dot1p",),
                        _priorities,
                        F("dot1p", "uint", "{p}", mirror=True, on_change=True),
                        C(
                            "state",
                            F("dot1p", "uint", "{p}", mirror=True, on_change=True),
                            F("enable", "bool", "({p} in s.qos.pfc_priorities)", mirror=True, on_change=True),
                            C(
                                "statistics",
                                F("pause-frames-rx", "u64", "c.pfc_rx_pause[{p}]"),
                                F("pause-frames-tx", "u64", "c.pfc_tx_pause[{p}]"),
                            ),
                        ),
                    ),
                ),
                C(
                    "pfc-queue",
                    L(
                        "pfc-queue",
                        ("queue",),
                        _priorities,
                        F("queue", "uint", "{p}", mirror=True, on_change=True),
                        C(
                            "state",
                            F("queue", "uint", "{p}", mirror=True, on_change=True),
                            C(
                                "statistics",
                                F(
                                    "storm-detected",
                                    "u64",
                                    "(c.pfc_watchdog_triggers if {p} in s.qos.pfc_priorities else 0)",
                                ),
                            ),
                        ),
                    ),
                ),
                module="openconfig-qos-ext",
            ),
            top=True,
        ),
    ),
    module="openconfig-qos",
)

LANE = "c.optics[{l}]"
COMPONENTS = C(
    "components",
    L(
        "component",
        ("name",),
        _components,
        F("name", "str", {"xcvr": "(c.name + '-transceiver')", "och": "c.name"}, mirror=True, on_change=True),
        C(
            "state",
            F("name", "str", {"xcvr": "(c.name + '-transceiver')", "och": "c.name"}, mirror=True, on_change=True),
            F(
                "type",
                "ident",
                {
                    "xcvr": "'openconfig-platform-types:TRANSCEIVER'",
                    "och": "'openconfig-transport-types:OPTICAL_CHANNEL'",
                },
                on_change=True,
            ),
            F("description", "str", {"xcvr": "c.transceiver", "och": "c.interface"}, on_change=True),
            F("oper-status", "ident", "'openconfig-platform-types:ACTIVE'", on_change=True),
            C("temperature", F("instant", "dec", {"xcvr": "c.temperature_c"}, fd=1)),
        ),
        C(
            "transceiver",
            C(
                "state",
                F("present", "str", "'PRESENT'", on_change=True),
                F(
                    "fec-status",
                    "ident",
                    "('openconfig-platform-types:FEC_STATUS_LOCKED' if c.oper_up "
                    "else 'openconfig-platform-types:FEC_STATUS_UNLOCKED')",
                    on_change=True,
                ),
                F("fec-uncorrectable-blocks", "u64", "c.fec_uncorrectable_blocks"),
                F("fec-corrected-bytes", "u64", "c.fec_corrected_blocks"),
                C("pre-fec-ber", F("instant", "dec", "c.pre_fec_ber", fd=18)),
            ),
            C(
                "physical-channels",
                L(
                    "channel",
                    ("index",),
                    _lanes,
                    F("index", "uint", "{n}", mirror=True, on_change=True),
                    C(
                        "state",
                        F("index", "uint", "{n}", mirror=True, on_change=True),
                        C("input-power", F("instant", "dec", LANE + ".input_power_dbm", fd=2)),
                        C("output-power", F("instant", "dec", LANE + ".output_power_dbm", fd=2)),
                        C("laser-bias-current", F("instant", "dec", LANE + ".laser_bias_ma", fd=2)),
                    ),
                ),
            ),
            module="openconfig-platform-transceiver",
            kinds=("xcvr",),
        ),
        C(
            "optical-channel",
            C(
                "state",
                F("frequency", "u64", "int(round(c.frequency_ghz * 1000))", on_change=True),
                C("input-power", F("instant", "dec", "c.input_power_dbm", fd=2)),
                C("output-power", F("instant", "dec", "c.output_power_dbm", fd=2)),
                C("chromatic-dispersion", F("instant", "dec", "c.chromatic_dispersion_ps_nm", fd=2)),
                C("osnr", F("instant", "dec", "c.osnr_db", fd=2)),
            ),
            module="openconfig-terminal-device",
            kinds=("och",),
        ),
        top=True,
    ),
    module="openconfig-platform",
)

TERMINAL_DEVICE = C(
    "terminal-device",
    C(
        "logical-channels",
        L(
            "channel",
            ("index",),
            _logical_channels,
            F("index", "uint", "c.index", mirror=True, on_change=True),
            C(
                "state",
                F("index", "uint", "c.index", mirror=True, on_change=True),
                F("description", "str", "c.name", mirror=True, on_change=True),
            ),
            C(
                "otn",
                C(
                    "state",
                    C("pre-fec-ber", F("instant", "dec", "c.pre_fec_ber", fd=18)),
                    C("q-value", F("instant", "dec", "c.q_value_db", fd=2)),
                    C("esnr", F("instant", "dec", "c.esnr_db", fd=2)),
                ),
            ),
            top=True,
        ),
    ),
    module="openconfig-terminal-device",
)

SYSTEM = C(
    "system",
    C("config", F("hostname", "str", "s.hostname", config=True, on_change=True)),
    C(
        "state",
        F("hostname", "str", "s.hostname", mirror=True, on_change=True),
        F("boot-time", "u64", "int(s.boot_time * 1000000000)", on_change=True),
        F("current-datetime", "str", "_now()"),
    ),
    C(
        "cpus",
        L(
            "cpu",
            ("index",),
            _cpus,
            F("index", "str", "'ALL'", mirror=True, on_change=True),
            C(
                "state",
                F("index", "str", "'ALL'", mirror=True, on_change=True),
                C("total", F("instant", "uint", "int(round(s.cpu_utilisation))")),
            ),
        ),
    ),
    C(
        "memory",
        C(
            "state",
            F("physical", "u64", "s.memory_total_bytes"),
            F("used", "u64", "s.memory_used_bytes"),
        ),
    ),
    module="openconfig-system",
    top=True,
)

ROOT = C("", INTERFACES, QOS, COMPONENTS, TERMINAL_DEVICE, SYSTEM)
MODULE_NAMES = {name for name, _, _ in MODELS}

# --- expressions -------------------------------------------------------------------------------
_SPEEDS = {10: "SPEED_10GB", 25: "SPEED_25GB", 40: "SPEED_40GB", 50: "SPEED_50GB", 100: "SPEED_100GB"}
_SPEEDS |= {200: "SPEED_200GB", 400: "SPEED_400GB", 800: "SPEED_800GB"}


def _speed(gbps: int) -> str:
    return "openconfig-if-ethernet:" + _SPEEDS.get(gbps, "SPEED_UNKNOWN")


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1000):03d}Z"


_GLOBALS = {"__builtins__": {}, "int": int, "round": round, "_speed": _speed, "_now": _now}
_COMPILED: dict[str, Callable[[Any, SwitchState], tuple]] = {}


def compile_getter(exprs: tuple[str, ...]) -> Callable[[Any, SwitchState], tuple]:
    """``(c, s) -> tuple of leaf values`` for a fixed list of schema expressions (cached by source).

    Expressions come only from the schema above, with integer indexes substituted; nothing a client
    sends is ever part of the source.
    """
    source = "lambda c, s: (" + "".join(e + ", " for e in exprs) + ")"
    fn = _COMPILED.get(source)
    if fn is None:
        fn = eval(source, _GLOBALS)  # schema-defined expressions only, see docstring
        _COMPILED[source] = fn
    return fn


_FLAT: dict[tuple, Callable[[list, SwitchState], tuple]] = {}


def compile_flat_getter(per_group: list[tuple[str, ...]]) -> Callable[[list, SwitchState], tuple]:
    """``(contexts, s) -> one flat tuple`` of every group's leaf values, in group order.

    One call per sample for a whole plan (hundreds of groups) instead of one per group; cached by the
    expressions, so every switch with the same port layout shares one compiled function.
    """
    key = tuple(per_group)
    fn = _FLAT.get(key)
    if fn is None:
        lines = ["def flat(C, s):"]
        for i, exprs in enumerate(per_group):
            lines.append(f"    c = C[{i}]")
            lines.append(f"    t{i} = (" + "".join(e + ", " for e in exprs) + ")")
        lines.append("    return (" + "".join(f"*t{i}, " for i in range(len(per_group))) + ")")
        namespace: dict[str, Any] = {}
        exec("\n".join(lines), _GLOBALS, namespace)  # schema-defined expressions only (see compile_getter)
        fn = _FLAT[key] = namespace["flat"]
    return fn


# --- matching ----------------------------------------------------------------------------------


@dataclass
class Cursor:
    """Where a walk through the tree stands: concrete path so far and the context to evaluate leaves."""

    node: Node
    path: tuple[tuple[str, Keys | None], ...]
    ctx: Any
    kind: str
    subst: dict[str, int]
    top_len: int  # length of the path prefix that names the notification group (0 = not yet known)
    modules: tuple[str, ...]  # effective module of each path element (for RFC 7951 qualification)

    def child(self, node: Node, keys: Keys | None = None, ctx: Any = None, kind: str | None = None,
              subst: dict[str, int] | None = None) -> Cursor:  # fmt: skip
        path = (*self.path, (node.name, keys))
        module = node.module or (self.modules[-1] if self.modules else "")
        top_len = self.top_len
        if node.top and not top_len:
            top_len = len(path)
        return Cursor(
            node,
            path,
            self.ctx if ctx is None else ctx,
            self.kind if kind is None else kind,
            self.subst if subst is None else {**self.subst, **subst},
            top_len,
            (*self.modules, module),
        )


@dataclass(frozen=True)
class LeafRef:
    """One concrete leaf instance on one switch."""

    path: tuple[tuple[str, Keys | None], ...]
    top_len: int
    ctx: Any
    leaf: Leaf
    expr: str

    @property
    def group(self) -> tuple:
        return self.path[: self.top_len]


def strip_module(name: str) -> str:
    return name.split(":", 1)[1] if ":" in name else name


def _list_entries(cursor: Cursor, node: Node, switch: SwitchState) -> Iterator[Cursor]:
    assert node.entries is not None
    for keyvals, ctx, kind, subst in node.entries(switch, cursor.ctx, cursor.kind):
        yield cursor.child(node, dict(zip(node.keys, keyvals, strict=True)), ctx, kind, subst)


def resolve(switch: SwitchState, elems: list[ReqElem]) -> list[Cursor]:
    """All tree positions matching a request path (wildcards ``*`` in names and keys; absent keys match all).

    Raises GnmiPathError for paths that cannot be valid (a key the list does not have, keys on a container).
    """
    start = Cursor(ROOT, (), switch, "root", {}, 0, ())
    out: list[Cursor] = []
    _walk(switch, start, elems, 0, out)
    return out


def _walk(switch: SwitchState, cursor: Cursor, elems: list[ReqElem], i: int, out: list[Cursor]) -> None:
    if i == len(elems):
        out.append(cursor)
        return
    for nxt in _step(switch, cursor, elems[i]):
        _walk(switch, nxt, elems, i + 1, out)


def _step(switch: SwitchState, cursor: Cursor, elem: ReqElem) -> Iterator[Cursor]:
    """The positions one request path element leads to from ``cursor`` (wildcards and list keys applied)."""
    name, keys = elem
    name = strip_module(name)
    if name == "...":
        raise GnmiPathError("multi-level wildcard '...' is not supported; use '*' per level")
    node = cursor.node
    children = list(node.children.values()) if name == "*" else [node.children.get(name)]
    for child in children:
        if child is None or not child.applies(cursor.kind):
            continue
        if child.is_list:
            bad = set(keys) - set(child.keys)
            if bad:
                raise GnmiPathError(f"list {child.name!r} has key(s) {list(child.keys)}, not {sorted(bad)}")
            for entry in _list_entries(cursor, child, switch):
                entry_keys = entry.path[-1][1] or {}
                if all(keys.get(k, "*") in ("*", v) for k, v in entry_keys.items()):
                    yield entry
        else:
            if keys and name != "*":
                raise GnmiPathError(f"{child.name!r} is not a list and takes no keys")
            yield cursor.child(child)


def leaves_under(switch: SwitchState, cursor: Cursor) -> Iterator[LeafRef]:
    """Every concrete leaf at or below a matched position."""
    node = cursor.node
    if node.leaf is not None:
        expr = node.leaf.expr
        if isinstance(expr, dict):
            expr = expr.get(cursor.kind)
            if expr is None:
                return
        yield LeafRef(cursor.path, cursor.top_len or 1, cursor.ctx, node.leaf, expr.format(**cursor.subst))
        return
    for child in node.children.values():
        if not child.applies(cursor.kind):
            continue
        if child.is_list:
            for entry in _list_entries(cursor, child, switch):
                yield from leaves_under(switch, entry)
        else:
            yield from leaves_under(switch, cursor.child(child))


def wanted(leaf: Leaf, datatype: int) -> bool:
    """GetRequest.DataType filter: ALL=0, CONFIG=1, STATE=2, OPERATIONAL=3."""
    if datatype == 1:
        return leaf.config
    if datatype == 2:
        return not leaf.config
    if datatype == 3:
        return not leaf.config and not leaf.mirror
    return True


def evaluate(ref: LeafRef, switch: SwitchState) -> Any:
    return compile_getter((ref.expr,))(ref.ctx, switch)[0]


def render_json(switch: SwitchState, cursor: Cursor, encoding: int, datatype: int, top: bool = True) -> Any:
    """The JSON value of a matched container/list entry (RFC 7951 member names when JSON_IETF).

    Returns None when nothing under it passes the datatype filter.
    """
    node = cursor.node
    if node.leaf is not None:
        refs = list(leaves_under(switch, cursor))
        if not refs or not wanted(node.leaf, datatype):
            return None
        value = evaluate(refs[0], switch)
        return None if value is None else wire.json_value(node.leaf.kind, node.leaf.fd, encoding, value)
    parent_module = cursor.modules[-1] if cursor.modules else ""
    obj: dict[str, Any] = {}
    for child in node.children.values():
        if not child.applies(cursor.kind):
            continue
        module = child.module or parent_module
        member = child.name
        if encoding == wire.JSON_IETF and (top or module != parent_module) and module:
            member = f"{module}:{child.name}"
        if child.is_list:
            items = []
            for entry in _list_entries(cursor, child, switch):
                value = render_json(switch, entry, encoding, datatype, top=False)
                if value:
                    items.append(value)
            if items:
                obj[member] = items
        else:
            value = render_json(switch, cursor.child(child), encoding, datatype, top=False)
            if value is not None and value != {}:
                obj[member] = value
    return obj or None


# --- subscription templates ----------------------------------------------------------------------
# Subscribing a switch resolves a path once per notification group (interface, component, /system).
# Below the group, the leaves depend only on the group's kind and shape (queue and lane counts), so
# they are computed once per (path, kind, shape) and shared by every group and every switch.


@dataclass(frozen=True)
class TemplateLeaf:
    rid: int  # interned id of the path below the group (cheap to hash and compare)
    rel_bytes: bytes  # that path's encoded PathElems
    leaf: Leaf
    expr: str


_REL_IDS: dict[tuple, int] = {}


def _rel_id(rel: tuple) -> int:
    rid = _REL_IDS.get(rel)
    if rid is None:
        rid = _REL_IDS[rel] = len(_REL_IDS)
    return rid


def hashable_path(path: tuple) -> tuple:
    return tuple((name, tuple(sorted(keys.items())) if keys else ()) for name, keys in path)


def _shape(kind: str, ctx: Any) -> tuple:
    if kind == "if":
        return (len(ctx.queues), len(ctx.optics))
    if kind == "xcvr":
        return (len(ctx.optics),)
    return ()


_TEMPLATES: dict[tuple, tuple[TemplateLeaf, ...]] = {}


def _at_group(cursor: Cursor) -> bool:
    return cursor.node.top and cursor.top_len == len(cursor.path)


def _walk_to_groups(switch: SwitchState, cursor: Cursor, elems: list[ReqElem], i: int, out: list) -> None:
    if _at_group(cursor):
        out.append((cursor, i))
        return
    node = cursor.node
    if i == len(elems):  # the path stops above the groups: everything below it
        for child in node.children.values():
            if child.is_list:
                for entry in _list_entries(cursor, child, switch):
                    _walk_to_groups(switch, entry, elems, i, out)
            elif child.applies(cursor.kind):
                _walk_to_groups(switch, cursor.child(child), elems, i, out)
        return
    for nxt in _step(switch, cursor, elems[i]):
        _walk_to_groups(switch, nxt, elems, i + 1, out)


def group_leaves(switch: SwitchState, elems: list[ReqElem]) -> list[tuple[Cursor, tuple[TemplateLeaf, ...]]]:
    """The notification groups a subscription path touches on a switch, each with its leaves."""
    found: list[tuple[Cursor, int]] = []
    start = Cursor(ROOT, (), switch, "root", {}, 0, ())
    _walk_to_groups(switch, start, elems, 0, found)
    result = []
    for cursor, i in found:
        rest = elems[i:]
        key = (id(cursor.node), cursor.kind, _shape(cursor.kind, cursor.ctx), hashable_path(tuple(rest)))
        template = _TEMPLATES.get(key)
        if template is None:
            relative = Cursor(cursor.node, (), cursor.ctx, cursor.kind, cursor.subst, 1, cursor.modules)
            matches: list[Cursor] = []
            _walk(switch, relative, rest, 0, matches)
            leaves = []
            for match in matches:
                for ref in leaves_under(switch, match):
                    rid = _rel_id((id(cursor.node), cursor.kind, hashable_path(ref.path)))
                    leaves.append(TemplateLeaf(rid, wire.encode_path(ref.path), ref.leaf, ref.expr))
            template = _TEMPLATES[key] = tuple(leaves)
        if template:
            result.append((cursor, template))
    return result
