"""VRP configuration text as an indentation tree, and the CLI lines that turn one into another.

Used by the Huawei driver to push hierarchical configuration line by line
(entering and leaving views) and to build a replace as explicit ``undo`` lines,
since the VRP CLI has no "replace the running configuration with this text".
"""

from __future__ import annotations

from dataclasses import dataclass, field

_LOGICAL = ("interface LoopBack", "interface Eth-Trunk", "interface Vlanif")


@dataclass
class Line:
    text: str
    children: list[Line] = field(default_factory=list)


def parse(text: str) -> list[Line]:
    """Top-level lines of VRP configuration text; ``#``, ``!`` comments and ``return`` are ignored."""
    root = Line("")
    stack: list[tuple[int, Line]] = [(-1, root)]
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped == "#" or stripped.startswith("!") or stripped == "return":
            continue
        depth = len(raw) - len(raw.lstrip(" "))
        while stack[-1][0] >= depth:
            stack.pop()
        line = Line(stripped)
        stack[-1][1].children.append(line)
        stack.append((depth, line))
    return root.children


def negate(text: str) -> str:
    """The VRP command that removes ``text``: ``undo X`` for ``X``, ``X`` for ``undo X``."""
    return text[5:] if text.startswith("undo ") else f"undo {text}"


@dataclass(frozen=True)
class Step:
    """One CLI line to send and the view depth it is typed at (0: system view; ``quit`` goes up one)."""

    command: str
    depth: int  # view depth the command is typed at (0 = system view)


def merge_steps(lines: list[Line], depth: int = 0) -> list[Step]:
    """Lines to type to merge ``lines`` into the candidate: headers, their children, ``quit`` after each view."""
    steps: list[Step] = []
    for line in lines:
        steps.append(Step(line.text, depth))
        if line.children:
            steps.extend(merge_steps(line.children, depth + 1))
            steps.append(Step("quit", depth + 1))
    return steps


def replace_steps(running: list[Line], desired: list[Line], depth: int = 0) -> list[Step]:
    """Lines that make ``running`` into ``desired``: removals first (last to first), then additions."""
    steps: list[Step] = []
    wanted = {line.text: line for line in desired}
    for line in reversed(running):
        if line.text in wanted:
            continue
        if line.children and depth == 0 and line.text.startswith("interface ") and not line.text.startswith(_LOGICAL):
            # A physical port cannot be deleted: clear what is configured on it instead.
            steps.append(Step(line.text, depth))
            steps.extend(Step(negate(child.text), depth + 1) for child in reversed(line.children))
            steps.append(Step("quit", depth + 1))
        else:
            steps.append(Step(negate(line.text), depth))
    current = {line.text: line for line in running}
    for line in desired:
        before = current.get(line.text)
        if before is None:
            steps.append(Step(line.text, depth))
            if line.children:
                steps.extend(merge_steps(line.children, depth + 1))
                steps.append(Step("quit", depth + 1))
        elif line.children or before.children:
            inner = replace_steps(before.children, line.children, depth + 1)
            if inner:
                steps.append(Step(line.text, depth))
                steps.extend(inner)
                steps.append(Step("quit", depth + 1))
    return steps
