"""VRP configuration as a tree of lines, the way CloudEngine prints it.

A configuration is a root :class:`Node` whose children are top-level lines
(``sysname leaf1``) and views (``interface 400GE1/0/1`` with indented lines).
Edits are recorded as :class:`Op` values (the candidate is a list of them), so
a candidate can be replayed onto whatever the running configuration is at
commit time, as VRP's two-stage commit does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Order in which VRP prints top-level sections; lower first. Anything unknown goes last, in insertion order.
_SECTION_RANK = [
    ("sysname", 0),
    ("dcb pfc deadlock", 10),
    ("dcb pfc", 12),
    ("qos buffer", 14),
    ("drop-profile", 20),
    ("diffserv domain", 22),
    ("load-balance", 24),
    ("lldp", 26),
    ("router id", 28),
    ("aaa", 30),
    ("interface", 40),
    ("bgp", 50),
    ("route-policy", 52),
    ("bfd", 48),
    ("stelnet", 60),
    ("ssh", 62),
    ("user-interface", 70),
    ("ai-service", 75),
]

_IF_ORDER = re.compile(r"^interface (\D+?)(\d+(?:/\d+)*)$")


def section_rank(text: str) -> int:
    for prefix, rank in _SECTION_RANK:
        if text == prefix or text.startswith(prefix + " "):
            return rank
    return 80


def _interface_sort_key(text: str) -> tuple:
    match = _IF_ORDER.match(text)
    if not match:
        return (text, ())
    kind, numbers = match.groups()
    return (kind.lower(), tuple(int(n) for n in numbers.split("/")))


@dataclass
class Node:
    """One configuration line; a view when it has children."""

    text: str
    children: list[Node] = field(default_factory=list)

    def copy(self) -> Node:
        return Node(self.text, [child.copy() for child in self.children])

    def find(self, text: str) -> Node | None:
        for child in self.children:
            if child.text == text:
                return child
        return None

    def path(self, texts: tuple[str, ...], create: bool = False) -> Node | None:
        node: Node | None = self
        for text in texts:
            assert node is not None
            nxt = node.find(text)
            if nxt is None:
                if not create:
                    return None
                nxt = Node(text)
                node.children.append(nxt)
            node = nxt
        return node

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and self.text == other.text and self.children == other.children

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Op:
    """One accepted configuration command, in the view it was typed in.

    kind: ``set`` stores ``text`` replacing lines with the same identity ``key``;
    ``view`` creates the view ``text`` if missing; ``remove`` deletes lines whose
    tokens start with ``key``; ``remove_view`` deletes the view ``text``.
    """

    kind: str
    path: tuple[str, ...]
    text: str = ""
    key: tuple[str, ...] = ()


def identity(text: str, key_len: int) -> tuple[str, ...]:
    tokens = text.split()
    if tokens and tokens[0] == "undo":
        tokens = tokens[1:]
    return tuple(tokens if key_len <= 0 else tokens[:key_len])


def apply_ops(root: Node, ops: list[Op]) -> Node:
    """A new tree: ``root`` with ``ops`` replayed in order."""
    tree = root.copy()
    for op in ops:
        apply_op(tree, op)
    return tree


def apply_op(tree: Node, op: Op) -> None:
    """Replay one candidate operation onto ``tree`` in place."""
    if op.kind == "view":
        tree.path((*op.path, op.text), create=True)
    elif op.kind == "set":
        parent = tree.path(op.path, create=True)
        assert parent is not None
        replaced = False
        kept: list[Node] = []
        for child in parent.children:
            if not child.children and _same_identity(child.text, op.key):
                if not replaced:
                    kept.append(Node(op.text))
                    replaced = True
                continue
            kept.append(child)
        if not replaced:
            kept.append(Node(op.text))
        parent.children = kept
    elif op.kind == "remove":
        parent = tree.path(op.path)
        if parent is not None:
            parent.children = [
                c for c in parent.children if c.children or not _starts_with(_tokens_no_undo(c.text), op.key)
            ]
    elif op.kind == "remove_view":
        parent = tree.path(op.path)
        if parent is not None:
            parent.children = [c for c in parent.children if c.text != op.text]
    elif op.kind == "reset":
        # A command that restores a default (e.g. ``portswitch`` undoing ``undo portswitch``).
        parent = tree.path(op.path)
        if parent is not None:
            parent.children = [c for c in parent.children if c.children or identity(c.text, len(op.key)) != op.key]


def _tokens_no_undo(text: str) -> tuple[str, ...]:
    tokens = text.split()
    return tuple(tokens[1:] if tokens and tokens[0] == "undo" else tokens)


def _same_identity(text: str, key: tuple[str, ...]) -> bool:
    return identity(text, len(key)) == key


def _starts_with(tokens: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return len(tokens) >= len(prefix) and tokens[: len(prefix)] == prefix


def ordered(children: list[Node]) -> list[Node]:
    """Top-level nodes in the order VRP prints them (sections by kind, interfaces by number)."""
    indexed = list(enumerate(children))
    indexed.sort(
        key=lambda item: (
            section_rank(item[1].text),
            _interface_sort_key(item[1].text) if item[1].text.startswith("interface ") else ("",),
            item[0],
        )
    )
    return [node for _, node in indexed]


def render_lines(root: Node) -> list[str]:
    """The configuration body with ``#`` separators, without header comments or ``return``."""
    lines: list[str] = []
    previous_rank: int | None = None
    previous_block = True
    for node in ordered(root.children):
        rank = section_rank(node.text)
        is_block = bool(node.children) or node.text.startswith(("interface ", "bgp ", "aaa", "user-interface"))
        if is_block or previous_block or rank != previous_rank:
            lines.append("#")
        lines.extend(render_node(node, 0))
        previous_rank, previous_block = rank, is_block
    lines.append("#")
    return lines


def render_node(node: Node, depth: int) -> list[str]:
    out = [" " * depth + node.text]
    for child in node.children:
        if child.children:
            out.append(" " * (depth + 1) + "#")
        out.extend(render_node(child, depth + 1))
    return out


def parse(text: str) -> Node:
    """Parse VRP configuration text (as ``display current-configuration`` prints it) into a tree."""
    root = Node("")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("!") or stripped == "#" or stripped == "return":
            continue
        depth = len(line) - len(line.lstrip(" "))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        node = Node(stripped)
        stack[-1][1].children.append(node)
        stack.append((depth, node))
    return root


def diff_lines(old: Node, new: Node) -> list[str]:
    """VRP-style change listing: unchanged view headers as context, ``+``/``-`` before changed lines.

    Each changed top-level section is followed by ``#``.
    """
    out: list[str] = []
    old_by_text = {c.text: c for c in old.children}
    new_by_text = {c.text: c for c in new.children}
    for node in ordered(old.children):
        if node.text not in new_by_text:
            out.extend("-" + line for line in render_node(node, 0))
            out.append("#")
    for node in ordered(new.children):
        before = old_by_text.get(node.text)
        if before is None:
            out.extend("+" + line for line in render_node(node, 0))
            out.append("#")
        elif before != node:
            section: list[str] = []
            _diff_children(before, node, 1, [[node.text, False]], section)
            if section:
                out.extend(section)
                out.append("#")
    return out


def _diff_children(old: Node, new: Node, depth: int, context: list[list], out: list[str]) -> None:
    old_by_text = {c.text: c for c in old.children}
    new_texts = {c.text for c in new.children}
    for child in old.children:
        if child.text not in new_texts:
            _emit_context(context, out)
            out.extend("-" + line for line in render_node(child, depth))
    for child in new.children:
        before = old_by_text.get(child.text)
        if before is None:
            _emit_context(context, out)
            out.extend("+" + line for line in render_node(child, depth))
        elif before != child:
            _diff_children(before, child, depth + 1, [*context, [" " * depth + child.text, False]], out)


def _emit_context(context: list[list], out: list[str]) -> None:
    # Context items are shared [text, emitted] pairs so a header is printed once however deep the change.
    for item in context:
        if not item[1]:
            out.append(item[0])
            item[1] = True
