"""Small helpers shared by the management commands."""

from __future__ import annotations

from django.core.management.base import CommandError


def key_values(items: list[str], what: str, form: str = "key=value") -> dict[str, str]:
    """Parse ``k=v`` command-line words; a malformed one is a CommandError naming it (``{what} 'x': expected ...``)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"{what} {item!r}: expected {form}")
        out[key] = value
    return out
