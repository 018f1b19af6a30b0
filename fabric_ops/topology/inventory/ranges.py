"""Name ranges (``Ethernet[1-32]/1``) so a 64-port switch is one YAML line, and the reverse for export.

A bracket holds numbers and ``a-b`` runs separated by commas; several brackets
expand as a product, leftmost slowest: ``Ethernet[1-2]/[1-2]`` is 1/1, 1/2,
2/1, 2/2. Zero padding is kept when the bounds are written padded
(``swp[01-16]``).
"""

from __future__ import annotations

import itertools
import re

__all__ = ["RangeError", "compact_names", "expand", "natural_key"]

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_DIGITS = re.compile(r"(\d+)")
MAX_EXPANSION = 4096  # no switch has more ports; stops a typo like [1-100000] eating memory


class RangeError(ValueError):
    """A malformed range expression."""


def _numbers(body: str) -> list[str]:
    out: list[str] = []
    for part in body.split(","):
        part = part.strip()
        if not part:
            raise RangeError(f"empty item in [{body}]")
        if "-" in part:
            lo_s, _, hi_s = part.partition("-")
            lo_s, hi_s = lo_s.strip(), hi_s.strip()
            if not (lo_s.isdigit() and hi_s.isdigit()):
                raise RangeError(f"bad range {part!r} in [{body}]: use numbers like 1-32")
            lo, hi = int(lo_s), int(hi_s)
            if hi < lo:
                raise RangeError(f"range {part!r} runs backwards")
            width = len(lo_s) if lo_s.startswith("0") and len(lo_s) > 1 else 0
            out.extend(str(n).zfill(width) for n in range(lo, hi + 1))
        elif part.isdigit():
            out.append(part)
        else:
            raise RangeError(f"bad item {part!r} in [{body}]: use numbers and a-b runs")
        if len(out) > MAX_EXPANSION:
            raise RangeError(f"[{body}] expands to more than {MAX_EXPANSION} names")
    return out


def expand(pattern: str) -> list[str]:
    """Expand every ``[..]`` in ``pattern``; a name without brackets is returned as is."""
    if "[" not in pattern and "]" not in pattern:
        return [pattern]
    pieces = _BRACKET.split(pattern)
    literals, bodies = pieces[0::2], pieces[1::2]
    if any("[" in lit or "]" in lit for lit in literals):
        raise RangeError(f"unbalanced brackets in {pattern!r}")
    choices = [_numbers(body) for body in bodies]
    total = 1
    for c in choices:
        total *= len(c)
    if total > MAX_EXPANSION:
        raise RangeError(f"{pattern!r} expands to {total} names (more than {MAX_EXPANSION})")
    names = []
    for combo in itertools.product(*choices):
        parts = [literals[0]]
        for number, literal in zip(combo, literals[1:], strict=True):
            parts.append(number)
            parts.append(literal)
        names.append("".join(parts))
    return names


def natural_key(name: str) -> tuple:
    """Sort key that puts Ethernet2 before Ethernet10."""
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(name))


def compact_names(names: list[str]) -> list[str]:
    """Fold runs of names that differ only in their last number into ``prefix[a-b]suffix``.

    ``names`` must already be in the order they should be listed; only
    consecutive names with a step of one are folded, so expand(compact(x)) == x.
    Padded numbers are never folded (their width would be ambiguous).
    """
    out: list[str] = []
    i = 0
    while i < len(names):
        parts = _DIGITS.split(names[i])
        best_len, best = 1, ""
        for idx in range(len(parts) - 2, 0, -2):  # numeric parts, rightmost first
            number = parts[idx]
            if number.startswith("0") and len(number) > 1:
                continue
            head, tail, start = "".join(parts[:idx]), "".join(parts[idx + 1 :]), int(number)
            j = i + 1
            while j < len(names) and names[j] == f"{head}{start + (j - i)}{tail}":
                j += 1
            if j - i > best_len:
                best_len, best = j - i, f"{head}[{start}-{start + j - i - 1}]{tail}"
        if best_len >= 2:
            out.append(best)
            i += best_len
        else:
            out.append(names[i])
            i += 1
    return out
