"""Read YAML into dicts and lists that remember the line of every key and item.

PyYAML's ``compose`` keeps a position mark on every node; ``load`` throws it
away. We compose, then build plain containers that carry those lines, so the
schema checks can say ``lab.yml:42: devices[sjc-leaf1].platform: ...``.
Duplicate keys, which ``yaml.safe_load`` silently resolves to the last one,
are reported as problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .problems import Problems

__all__ = ["LList", "LMap", "compose_file", "compose_text"]

try:  # libyaml is ~10x faster on the 10k-GPU explicit files; the pure-Python loader gives the same marks
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


class LMap(dict):
    """A mapping plus the line of the mapping, of each key and of each value."""

    line: int
    key_lines: dict[str, int]
    value_lines: dict[str, int]

    def key_line(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def value_line(self, key: str) -> int:
        return self.value_lines.get(key, self.key_line(key))


class LList(list):
    """A sequence plus its own line and the line of each item."""

    line: int
    lines: list[int]


class _AliasBomb(Exception):
    """Aliases expand to far more nodes than the file holds (the "billion laughs" shape)."""


def _distinct_nodes(root: yaml.Node) -> int:
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            todo.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return len(seen)


class _Builder:
    """Builds located containers; refuses alias cycles and alias expansion beyond a budget.

    Every alias is expanded again (that keeps each use's own path for messages), so a
    334-byte file of nested aliases could otherwise expand to billions of nodes.
    """

    def __init__(self, problems: Problems, budget: int):
        self.problems = problems
        self.constructor = yaml.constructor.SafeConstructor()
        self.budget = budget
        self.active: set[int] = set()

    def build(self, node: yaml.Node, path: str) -> Any:
        line = node.start_mark.line + 1
        self.budget -= 1
        if self.budget < 0:
            raise _AliasBomb(line)
        if id(node) in self.active:
            self.problems.add(line, path or "<document>", "an alias refers to a node that contains it (a cycle)")
            return None
        self.active.add(id(node))
        try:
            return self._build(node, path, line)
        finally:
            self.active.discard(id(node))

    def _build(self, node: yaml.Node, path: str, line: int) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, line)
        if isinstance(node, yaml.SequenceNode):
            out = LList()
            out.line = line
            out.lines = []
            for i, item in enumerate(node.value):
                out.append(self.build(item, f"{path}[{i}]"))
                out.lines.append(item.start_mark.line + 1)
            return out
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.add(line, path or "<document>", f"cannot read value: {exc}")
            return None

    def _mapping(self, node: yaml.MappingNode, path: str, line: int) -> LMap:
        out = LMap()
        out.line = line
        out.key_lines = {}
        out.value_lines = {}
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = str(key_node.value)
                key_line = key_node.start_mark.line + 1
                if key in seen:
                    self.problems.add(
                        key_line, _join(path, key), f"duplicate key (first given on line {seen[key]}); YAML keeps one"
                    )
                seen.setdefault(key, key_line)
        try:
            self.constructor.flatten_mapping(node)  # resolve `<<: *defaults` merge keys the standard way
        except yaml.YAMLError as exc:
            self.problems.add(line, path or "<document>", f"bad merge key: {exc}")
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.add(key_node.start_mark.line + 1, path or "<document>", "keys must be plain strings")
                continue
            key = str(key_node.value)
            out[key] = self.build(value_node, _join(path, key))
            out.key_lines[key] = key_node.start_mark.line + 1
            out.value_lines[key] = value_node.start_mark.line + 1
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def compose_text(text: str, problems: Problems) -> Any:
    """Compose one YAML document into located containers; syntax errors become problems (returns None)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problems.add(line, "<yaml>", f"YAML syntax error: {exc.problem or exc}")
        return None
    except yaml.YAMLError as exc:
        problems.add(1, "<yaml>", f"YAML error: {exc}")
        return None
    if node is None:
        return None
    # Honest reuse of anchors (`<<: *defaults`) expands a file a few times over, never by orders of magnitude.
    budget = 20 * _distinct_nodes(node) + 100_000
    try:
        return _Builder(problems, budget).build(node, "")
    except _AliasBomb as exc:
        problems.add(exc.args[0], "<yaml>", "aliases expand to far more data than the file holds; refused")
        return None


def compose_file(path: str | Path, problems: Problems) -> Any:
    """Read and compose ``path``; an unreadable file is reported as a problem on line 1."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(1, "<file>", f"cannot read inventory: {exc}")
        return None
    return compose_text(text, problems)
