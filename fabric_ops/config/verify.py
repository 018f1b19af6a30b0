"""Is a committed change in force? Check every line of its diff at its place in the running configuration.

Verification must be cheap (it runs on every device of every push) and must
not open a configuration session (on a busy switch that is the expensive part).
So it reads the running configuration once and checks the diff against it:
every added line must be there under the same parents, every removed line must
be gone. Both diff dialects are understood: EOS's unified diff (`+`, `-`, ` `
prefixes, `@@` hunks) and CloudEngine's candidate changes (`+`/`-` lines under
unprefixed view headers, `#` between blocks). Hierarchy comes from indentation
in both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

Path = tuple[str, ...]


_SEPARATORS = {"!", "#", "end", "return"}


def _walk(lines: Iterable[tuple[str, str]]) -> Iterator[tuple[str, Path, bool, str]]:
    """(op, parent path, anchored, line) for each config line; ``anchored`` is False when parents were cut off.

    Runs over every line of a running configuration on every verified push, so each open section keeps its
    own path (built once) instead of the path being rebuilt from the stack for every line.
    """
    stack: list[tuple[int, Path]] = []  # (indent, path including the section line) of the open sections
    anchored = True
    for op, text in lines:
        if op == "reset":
            stack, anchored = [], True
            continue
        stripped = text.strip()
        if not stripped or stripped in _SEPARATORS or stripped[0] in "!#":
            continue
        indent = len(text) - len(text.lstrip(" "))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack:
            parent = stack[-1][1]
        else:
            parent = ()
            anchored = indent == 0  # a hunk that starts inside a section does not know its parents
        yield op, parent, anchored, stripped
        stack.append((indent, (*parent, stripped)))


def _diff_lines(diff: str) -> Iterator[tuple[str, str]]:
    unified = any(line.startswith("@@") for line in diff.splitlines())
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            yield "reset", ""
        elif line.startswith(("+", "-")):
            yield line[0], line[1:]
        elif unified:
            yield " ", line[1:]  # context line of a unified diff
        else:
            if line.strip() == "#":
                yield "reset", ""
            yield " ", line  # CloudEngine: view headers are printed without a prefix


def _running_index(running: str) -> dict[str, set[Path]]:
    index: dict[str, set[Path]] = defaultdict(set)
    for _, path, _, text in _walk((" ", line) for line in running.splitlines()):
        index[text].add(path)
    return index


def _present(index: dict[str, set[Path]], path: Path, anchored: bool, text: str) -> bool:
    paths = index.get(text, set())
    if anchored:
        return path in paths
    return any(p[len(p) - len(path) :] == path for p in paths if len(p) >= len(path))


def _hunk_bases(index: dict[str, set[Path]], hunk: list[tuple[str, Path, bool, str]]) -> set[Path] | None:
    """Where an unanchored hunk sits: the parent paths under which all its context and added lines are found.

    A hunk that starts deep inside a section (a per-port change: ``priority-flow-control priority 3 drop`` on one
    interface) does not name its parents, and its removed line is still present on every *other* port; the lines
    around it say which section it is. None when the hunk has no such lines.
    """
    bases: set[Path] | None = None
    for op, path, anchored, text in hunk:
        if anchored or op == "-":
            continue
        here = {p[: len(p) - len(path)] for p in index.get(text, set()) if p[len(p) - len(path) :] == path}
        bases = here if bases is None else bases & here
    return bases


def missing_changes(diff: str, running: str) -> list[str]:
    """The diff lines that are not in force in ``running`` ('+' missing, '-' still present); empty when all are."""
    index = _running_index(running)
    hunks: list[list[tuple[str, str]]] = [[]]
    for op, text in _diff_lines(diff):
        if op == "reset":
            hunks.append([])
        else:
            hunks[-1].append((op, text))
    walked = [list(_walk(lines)) for lines in hunks]
    added = {(path, text) for entries in walked for op, path, _, text in entries if op == "+"}
    problems = []
    for entries in walked:
        bases = _hunk_bases(index, entries)
        for op, path, anchored, text in entries:
            where = " > ".join(path)
            if op == "+" and not _present(index, path, anchored, text):
                problems.append(f"missing: {where + ' > ' if where else ''}{text}")
            elif op == "-" and (path, text) not in added and _present(index, path, anchored, text):
                if not anchored and bases and all(base + path not in index.get(text, set()) for base in bases):
                    continue  # gone from the section this hunk changed (other sections keep their own copy)
                problems.append(f"still present: {where + ' > ' if where else ''}{text}")
    return problems
