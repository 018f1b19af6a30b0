"""Problems found in an inventory file, each pinned to a file, a line and a key.

A :class:`Problem` is a ``str`` (``file:line: key: message``) so it can be handed
straight to :class:`fabric_ops.errors.InventoryError`, printed, or compared in
tests, while still exposing its parts as attributes.
"""

from __future__ import annotations

__all__ = ["Problem", "Problems"]


class Problem(str):
    """One problem: ``file:line: key: message``."""

    file: str
    line: int
    key: str
    message: str

    def __new__(cls, file: str, line: int, key: str, message: str) -> Problem:
        self = super().__new__(cls, f"{file}:{line}: {key}: {message}")
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        return self

    def __reduce__(self):  # keep pickling (e.g. through Celery results) working for a str subclass
        return (Problem, (self.file, self.line, self.key, self.message))


class Problems:
    """Collects every problem of one file instead of stopping at the first, so one run shows them all."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[Problem] = []

    def add(self, line: int, key: str, message: str) -> None:
        self.items.append(Problem(self.file, line, key, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Problem]:
        """Problems in file order (line, then key), duplicates removed."""
        seen: dict[str, Problem] = {}
        for problem in self.items:
            seen.setdefault(str(problem), problem)
        return sorted(seen.values(), key=lambda p: (p.line, p.key, p.message))
