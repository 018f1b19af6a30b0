"""Subscription plans: which leaves a Subscribe RPC streams, grouped so each sample is cheap to encode.

A plan (one SAMPLE interval, the ON_CHANGE set, a ONCE/POLL dump) reads every
leaf of every notification group (an interface, a component, /system) with one
generated function returning a flat tuple. Each group keeps its last values and
their encoded bytes: a group whose values did not move is reused as is, a
changed group of numbers is re-encoded with one ``bytes %`` template (see
``wire.json_template_pieces``), and other leaves (names, enumerations) leaf by
leaf. Idle ports cost a tuple comparison; a busy fabric one formatting per group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.lab.state import SwitchState

from . import wire
from .paths import Cursor, TemplateLeaf, compile_flat_getter, hashable_path

logger = logging.getLogger(__name__)

# Largest Notification we build before starting another: well under gRPC's default 4 MiB receive limit.
MAX_NOTIFICATION_BYTES = 1 << 20

NUMERIC = frozenset(wire.NUMERIC_WIDTH)
# (leaf ids, encoding, templated) -> (leaves in encoding order, numeric count, value encoders)
_SHAPES: dict[tuple, tuple[list[TemplateLeaf], int, list[Callable[[Any], bytes]]]] = {}
_HEADS: dict[tuple, list[bytes]] = {}
_PIECES: dict[tuple, tuple[list[tuple[bytes, bytes]], int, Callable[[tuple], tuple] | None]] = {}


@dataclass
class Group:
    """The leaves of one notification group (e.g. one interface) inside a plan.

    With a template, the first ``numeric`` leaves are rendered by one %-format and only the rest (names,
    enumerations) leaf by leaf.
    """

    path: tuple
    ctx: Any
    leaves: list[TemplateLeaf] = field(default_factory=list)
    seen: set = field(default_factory=set)
    prefix: bytes = b""  # Notification.prefix when not bundling
    heads: list[bytes] = field(default_factory=list)  # per leaf, valid from heads_from on
    heads_from: int = 1 << 30
    encoders: list[Callable[[Any], bytes]] = field(default_factory=list)
    template: bytes | None = None
    template_len: int = 0
    quoter: Callable[[tuple], tuple] | None = None  # JSON_IETF: quote 64-bit integers and decimals first
    numeric: int = 0
    last: tuple | None = None
    parts: list[bytes] = field(default_factory=list)
    all_valid: bool = False  # parts[] match last (False after a template render)
    tail_valid: bool = False  # parts[numeric:] match last
    tail_blob: bytes = b""
    tail_count: int = 0
    blob: bytes = b""
    count: int = 0  # leaves present in blob


class Plan:
    """A set of leaves sampled together (one SAMPLE interval, the ON_CHANGE set, or a ONCE/POLL dump)."""

    def __init__(self, encoding: int, bundle: bool, target: str = "", delta: bool = False) -> None:
        self.encoding = encoding
        self.delta = delta  # ON_CHANGE / suppress_redundant: per-leaf change tracking
        self.bundle = bundle
        self.target = target
        self.groups: dict[tuple, Group] = {}
        self.leaf_count = 0
        self.prefix = b""
        self._groups: list[Group] = []
        self.flat: Callable[[list, SwitchState], tuple] | None = None
        self.ctxs: list[Any] = []
        self.slices: list[tuple[int, int, int, int]] = []  # per group: numeric start/end, tail start/end
        self.last_flat: tuple | None = None

    def add(self, cursor: Cursor, leaves: tuple[TemplateLeaf, ...] | list[TemplateLeaf]) -> None:
        key = hashable_path(cursor.path)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(cursor.path, cursor.ctx)
        seen = group.seen
        for leaf in leaves:
            if leaf.rid not in seen:
                seen.add(leaf.rid)
                group.leaves.append(leaf)
                self.leaf_count += 1

    def finalize(self) -> None:
        """Compile the plan's getter and encode the constant bytes (paths, prefixes) once; share what is identical."""
        for _ in self.finalize_steps():
            pass

    def finalize_steps(self, batch: int = 16) -> Iterator[None]:
        """:meth:`finalize` in steps of ``batch`` groups, so the event loop can run sample ticks in between."""
        use_template = self.encoding in (wire.JSON, wire.JSON_IETF) and not self.delta
        for n, group in enumerate(self.groups.values()):
            if n and n % batch == 0:
                yield
            group.seen = set()
            shape_key = (tuple(t.rid for t in group.leaves), self.encoding, use_template)
            shape = _SHAPES.get(shape_key)
            if shape is None:  # the same leaves in every interface of every switch: work it out once
                leaves = list(group.leaves)
                numeric = 0
                if use_template:  # numeric leaves first: they go through the template
                    leaves.sort(key=lambda t: t.leaf.kind not in NUMERIC)
                    numeric = sum(1 for t in leaves if t.leaf.kind in NUMERIC)
                encoders = [wire.value_encoder(t.leaf.kind, t.leaf.fd, self.encoding) for t in leaves]
                shape = _SHAPES[shape_key] = (leaves, numeric, encoders)
            leaves, group.numeric, group.encoders = shape
            group.leaves = leaves
            rels = tuple(t.rid for t in leaves)
            if self.bundle:
                gb = wire.encode_path(group.path)
                group.heads = [b""] * group.numeric
                group.heads += [wire.update_head(gb + t.rel_bytes) for t in leaves[group.numeric :]]
                group.heads_from = group.numeric
            else:
                gb = b""
                group.prefix = wire.encode_path(group.path, target=self.target)
                heads = _HEADS.get(rels)
                if heads is None:
                    heads = _HEADS[rels] = [wire.update_head(t.rel_bytes) for t in leaves]
                group.heads, group.heads_from = heads, 0
            if group.numeric:
                key = (rels[: group.numeric], len(gb), self.encoding)
                cached = _PIECES.get(key)
                if cached is None:
                    numeric = leaves[: group.numeric]
                    kinds = [(t.leaf.kind, t.leaf.fd) for t in numeric]
                    cached = _PIECES[key] = (
                        *wire.json_template_pieces([t.rel_bytes for t in numeric], kinds, len(gb), self.encoding),
                        wire.ietf_quoter(kinds) if self.encoding == wire.JSON_IETF else None,
                    )
                pieces, group.template_len, group.quoter = cached
                escaped = gb.replace(b"%", b"%%")
                group.template = b"".join(pre + escaped + post for pre, post in pieces)
            group.parts = [b""] * len(leaves)
        self._groups = groups = list(self.groups.values())
        self.prefix = wire.encode_path((), target=self.target) if self.bundle else b""
        # One flat getter for the whole plan: every group's numeric leaves first, then every group's others.
        numeric = [tuple(t.expr for t in g.leaves[: g.numeric]) for g in groups]
        others = [tuple(t.expr for t in g.leaves[g.numeric :]) for g in groups]
        self.flat = compile_flat_getter(numeric + others)
        self.ctxs = [g.ctx for g in groups] * 2
        position = 0
        starts = []
        for exprs in numeric + others:
            starts.append(position)
            position += len(exprs)
        n = len(groups)
        self.slices = [
            (starts[i], starts[i] + len(numeric[i]), starts[n + i], starts[n + i] + len(others[i])) for i in range(n)
        ]

    def render(self, switch: SwitchState, full: bool) -> list[tuple[Group, bytes, int]]:
        """Sample every group; return (group, update bytes, update count) to send.

        ``full`` returns every leaf (a SAMPLE tick, a dump, a heartbeat); otherwise only leaves whose value
        changed since the previous render (ON_CHANGE, suppress_redundant). Values are read under the switch
        lock in one call and encoded after it is released; a group whose values did not move reuses its
        bytes, and a changed group of numbers is one %-format (its template).
        """
        with switch.lock:
            flat = self.flat(self.ctxs, switch)
        if flat == self.last_flat:  # nothing moved: the common case for ON_CHANGE scans and idle switches
            if not full:
                return []
            return [(g, g.blob, g.count) for g in self._groups if g.count]
        return self._render_groups(flat, full)

    def _render_groups(self, flat: tuple, full: bool) -> list[tuple[Group, bytes, int]]:
        out: list[tuple[Group, bytes, int]] = []
        for group, (a, b, c, d) in zip(self._groups, self.slices, strict=True):
            vals = flat[a:b] + flat[c:d] if b > a and d > c else (flat[a:b] if b > a else flat[c:d])
            last = group.last
            if vals == last:
                if full and group.count:
                    out.append((group, group.blob, group.count))
                continue
            if group.template is not None and self._render_template(group, vals):
                out.append((group, group.blob, group.count))
                continue
            changed = self._render_leaves(group, vals, 0)
            if full:
                if group.count:
                    out.append((group, group.blob, group.count))
            elif changed:
                out.append((group, b"".join(changed), len(changed)))
        self.last_flat = flat
        return out

    def _render_template(self, group: Group, vals: tuple) -> bool:
        k = group.numeric
        numeric = vals if k == len(vals) else vals[:k]
        try:
            if group.quoter is not None:
                numeric = group.quoter(numeric)
            blob = group.template % numeric
        except TypeError:  # an absent (None) value: encode leaf by leaf
            return False
        if len(blob) != group.template_len:  # a value wider than its field
            return False
        count = k
        if k < len(vals):
            last = group.last
            if not group.tail_valid or last is None or vals[k:] != last[k:]:
                self._render_leaves(group, vals, k)
            blob += group.tail_blob
            count += group.tail_count
        group.last, group.blob, group.count, group.all_valid = vals, blob, count, False
        return True

    def _render_leaves(self, group: Group, vals: tuple, start: int) -> list[bytes]:
        """Encode leaves ``start..`` one by one (only those that changed, when the cached parts are current).

        ``start`` is 0 for a whole group, or the first non-template leaf after a template render.
        """
        parts, encoders, last = group.parts, group.encoders, group.last
        heads = self._heads(group, start)
        valid = group.all_valid if start == 0 else group.tail_valid
        lengths = wire.LENGTHS
        if last is None or not valid:
            indexes = range(start, len(vals))
        else:
            indexes = [i for i in range(start, len(vals)) if vals[i] != last[i]]
        changed = []
        for i in indexes:
            v = vals[i]
            if v is None:
                parts[i] = b""
                continue
            tv = encoders[i](v)
            update = heads[i] + b"\x1a" + lengths[len(tv)] + tv
            part = parts[i] = b"\x22" + lengths[len(update)] + update
            changed.append(part)
        tail = parts[group.numeric :]
        group.tail_blob = b"".join(tail)
        group.tail_count = sum(1 for p in tail if p)
        group.tail_valid = True
        if start == 0:
            group.last = vals
            group.blob = b"".join(parts)
            group.count = sum(1 for p in parts if p)
            group.all_valid = True
        return changed

    def _heads(self, group: Group, start: int) -> list[bytes]:
        """Update heads from leaf ``start`` on (numeric leaves get theirs only if a template falls back)."""
        if group.heads_from <= start:
            return group.heads
        gb = wire.encode_path(group.path) if self.bundle else b""
        group.heads = [b""] * start + [wire.update_head(gb + t.rel_bytes) for t in group.leaves[start:]]
        group.heads_from = start
        return group.heads

    def notifications(self, rendered: list[tuple[Group, bytes, int]], timestamp_ns: int) -> list[bytes]:
        """Wrap rendered updates into SubscribeResponse messages (bundled per plan, or one per group)."""
        if not rendered:
            return []
        if not self.bundle:
            return [
                wire.subscribe_update(wire.encode_notification(timestamp_ns, group.prefix, blob))
                for group, blob, _ in rendered
            ]
        messages, chunk, size = [], [], 0
        for _, blob, _ in rendered:
            if chunk and size + len(blob) > MAX_NOTIFICATION_BYTES:
                messages.append(wire.subscribe_update_parts(timestamp_ns, self.prefix, chunk, size))
                chunk, size = [], 0
            chunk.append(blob)
            size += len(blob)
        messages.append(wire.subscribe_update_parts(timestamp_ns, self.prefix, chunk, size))
        return messages
