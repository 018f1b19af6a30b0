"""Subscription plans: which leaves a Subscribe RPC streams, grouped so each sample is cheap to encode.

A plan holds, per notification group (one interface, one component, /system,
...), a compiled getter that returns all of the group's leaf values as one
tuple, the pre-encoded ``Update`` heads of those leaves, and the last values
and encodings sent. A sample compares tuples (in C) and re-encodes only the
leaves whose value changed, so idle ports cost almost nothing and a busy fabric
costs one varint or number formatting per changed leaf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.lab.state import SwitchState

from . import wire
from .paths import LeafRef, compile_getter

logger = logging.getLogger(__name__)

# Largest Notification we build before starting another: well under gRPC's default 4 MiB receive limit.
MAX_NOTIFICATION_BYTES = 1 << 20


def _hashable(path: tuple) -> tuple:
    return tuple((name, tuple(sorted(keys.items())) if keys else ()) for name, keys in path)


@dataclass
class Group:
    """The leaves of one notification group (e.g. one interface) inside a plan."""

    key: tuple
    ctx: Any
    refs: list[LeafRef] = field(default_factory=list)
    getter: Callable[[Any, SwitchState], tuple] | None = None
    prefix: bytes = b""  # Notification.prefix when not bundling
    heads: list[bytes] = field(default_factory=list)
    encoders: list[Callable[[Any], bytes]] = field(default_factory=list)
    last: tuple | None = None
    parts: list[bytes] = field(default_factory=list)
    blob: bytes = b""
    count: int = 0  # leaves present in blob


class Plan:
    """A set of leaves sampled together (one SAMPLE interval, the ON_CHANGE set, or a ONCE/POLL dump)."""

    def __init__(self, encoding: int, bundle: bool, target: str = "") -> None:
        self.encoding = encoding
        self.bundle = bundle
        self.target = target
        self.groups: dict[tuple, Group] = {}
        self._seen: set[tuple] = set()
        self.leaf_count = 0

    def add(self, refs: list[LeafRef]) -> None:
        for ref in refs:
            hashable = _hashable(ref.path)
            if hashable in self._seen:
                continue
            self._seen.add(hashable)
            key = hashable[: ref.top_len]
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = Group(ref.group, ref.ctx)
            group.refs.append(ref)
        self.leaf_count = len(self._seen)

    def finalize(self) -> None:
        """Compile getters and encode the constant bytes (paths, prefixes) once."""
        for group in self.groups.values():
            group.getter = compile_getter(tuple(r.expr for r in group.refs))
            split = 0 if self.bundle else len(group.key)
            group.prefix = wire.encode_path(group.key, target=self.target) if split else b""
            group.heads = [wire.update_head(wire.encode_path(r.path[split:])) for r in group.refs]
            group.encoders = [wire.value_encoder(r.leaf.kind, r.leaf.fd, self.encoding) for r in group.refs]
            group.parts = [b""] * len(group.refs)
        self._groups = list(self.groups.values())
        self.prefix = wire.encode_path((), target=self.target) if self.bundle else b""

    def render(self, switch: SwitchState, full: bool) -> list[tuple[Group, bytes, int]]:
        """Sample every group; return (group, update bytes, update count) to send.

        ``full`` returns every leaf (a SAMPLE tick, a dump, a heartbeat); otherwise only leaves whose value
        changed since the previous render (ON_CHANGE, suppress_redundant). Values are read under the switch
        lock in one go and encoded after it is released.
        """
        groups = self._groups
        with switch.lock:
            values = [g.getter(g.ctx, switch) for g in groups]
        out = []
        for group, vals in zip(groups, values, strict=True):
            last = group.last
            if vals == last:
                if full and group.count:
                    out.append((group, group.blob, group.count))
                continue
            parts, heads, encoders = group.parts, group.heads, group.encoders
            changed = []
            if last is None:
                indexes = range(len(vals))
            else:
                indexes = [i for i, (a, b) in enumerate(zip(vals, last, strict=True)) if a != b]
            for i in indexes:
                v = vals[i]
                part = b"" if v is None else wire.encode_update(heads[i], encoders[i](v))
                parts[i] = part
                if part:
                    changed.append(part)
            group.last = vals
            group.blob = b"".join(parts)
            group.count = sum(1 for p in parts if p)
            if full:
                if group.count:
                    out.append((group, group.blob, group.count))
            elif changed:
                out.append((group, b"".join(changed), len(changed)))
        return out

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
                messages.append(wire.subscribe_update(wire.encode_notification(timestamp_ns, self.prefix, chunk)))
                chunk, size = [], 0
            chunk.append(blob)
            size += len(blob)
        messages.append(wire.subscribe_update(wire.encode_notification(timestamp_ns, self.prefix, chunk)))
        return messages
