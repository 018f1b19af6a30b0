"""Table-driven key checks: each YAML object kind is a dict of key -> :class:`Field`.

One generic reader reports unknown keys (with a "did you mean"), missing
required keys, wrong types and values outside a choice list, so every object
kind gets the same, complete checks from one small table.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from .loader import LList, LMap
from .problems import Problems

__all__ = ["MISSING", "Field", "plain", "read_object"]

MISSING: Any = object()

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+$")
CREDENTIAL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # same rule as fabric_ops.devices.credentials

SECRET_KEYS = {"password", "secret", "enable_password", "enable_secret", "token", "api_key", "apikey", "passwd"}


@dataclass(frozen=True)
class Field:
    """How one key is checked. ``kind``: str, int, float, bool, choice, ip, cidr, network, map, list, strlist."""

    kind: str
    required: bool = False
    default: Any = MISSING
    choices: tuple[str, ...] = ()
    max_len: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    pattern: re.Pattern | None = None
    pattern_hint: str = ""


def plain(value: Any) -> Any:
    """Located containers back to plain dict/list (for JSON fields)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def check_value(field: Field, value: Any) -> tuple[Any, str | None]:
    """Return (normalised value, None) or (None, error message)."""
    kind = field.kind
    if kind in ("str", "choice"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None, f"expected a string, got {_type_name(value)}"
        value = str(value)
        if kind == "choice":
            if value not in field.choices:
                return None, f"unknown value {value!r}; expected one of: {', '.join(field.choices)}"
            return value, None
        if field.max_len is not None and len(value) > field.max_len:
            return None, f"{value!r} is longer than {field.max_len} characters"
        if field.pattern is not None and not field.pattern.match(value):
            return None, f"{value!r} is not valid ({field.pattern_hint})"
        return value, None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"expected an integer, got {_type_name(value)} {value!r}"
        if field.minimum is not None and value < field.minimum:
            return None, f"{value} is below the minimum {field.minimum}"
        if field.maximum is not None and value > field.maximum:
            return None, f"{value} is above the maximum {field.maximum}"
        return value, None
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"expected a number, got {_type_name(value)} {value!r}"
        return float(value), None
    if kind == "bool":
        if not isinstance(value, bool):
            return None, f"expected true or false, got {_type_name(value)} {value!r}"
        return value, None
    if kind in ("ip", "cidr", "network"):
        if not isinstance(value, str):
            return None, f"expected an address string, got {_type_name(value)} {value!r}"
        try:
            if kind == "ip":
                return str(ipaddress.ip_address(value)), None
            if kind == "cidr":
                if "/" not in value:
                    return None, f"{value!r} needs a prefix length, e.g. 10.0.0.0/31"
                return str(ipaddress.ip_interface(value)), None
            return str(ipaddress.ip_network(value, strict=True)), None
        except ValueError as exc:
            return None, f"invalid address: {exc}"
    if kind == "map":
        if not isinstance(value, dict):
            return None, f"expected a mapping, got {_type_name(value)}"
        return value, None
    if kind == "list":
        if not isinstance(value, list):
            return None, f"expected a list, got {_type_name(value)}"
        return value, None
    if kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, f"expected a list of strings, got {_type_name(value)}"
        return [str(v) for v in value], None
    raise AssertionError(f"unknown field kind {kind}")


def read_object(
    obj: Any,
    path: str,
    line: int,
    fields: dict[str, Field],
    problems: Problems,
    *,
    defaults: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Check one mapping against its field table; returns the values read (defaults filled) or None.

    A key that fails its check is reported and set to its default (or None),
    so callers must skip objects whose identifying keys are None; the rest is
    kept so other objects' references to it do not cascade into noise.
    ``defaults`` (from a fabric's ``defaults:`` block) override the table's
    built-in defaults and satisfy required keys.
    """
    if not isinstance(obj, LMap):
        problems.add(line, path, f"expected a mapping, got {_type_name(obj)}")
        return None
    out: dict[str, Any] = {}
    for key in obj:
        if key not in fields:
            if key.lower() in SECRET_KEYS:
                message = (
                    "secrets never go in the inventory: name a credential (`credential: <name>`) and keep the "
                    "secret in FABRIC_OPS_CRED_<NAME>_PASSWORD or <FABRIC_OPS_SECRETS_DIR>/<name>.json"
                )
            else:
                close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                message = f"unknown key{hint}; allowed: {', '.join(sorted(fields))}"
            problems.add(obj.key_line(key), f"{path}.{key}", message)
    for key, field in fields.items():
        fallback = None if field.default is MISSING else field.default
        if key in obj:
            value = obj[key]
            if value is None and not field.required:
                # `key: null` on a nullable key means "none" (e.g. no transceiver, overriding a default);
                # on any other optional key it means "use the default".
                value = None if field.default is None else MISSING
            else:
                value, error = check_value(field, value)
                if error:
                    problems.add(obj.value_line(key), f"{path}.{key}", error)
                    out[key] = fallback  # keep the object so references to it still resolve
                    continue
        else:
            value = MISSING
        if value is MISSING:
            if defaults and key in defaults:
                value = defaults[key]
            elif field.required:
                problems.add(obj.line, f"{path}.{key}", "missing required key")
                out[key] = None
                continue
            elif field.default is not MISSING:
                value = field.default
            else:
                continue
        out[key] = value
    return out


def item_label(item: Any, index: int, name_key: str = "name") -> str:
    """``[sjc-leaf1]`` when the item has a usable name, else ``[3]``; keeps error keys readable."""
    if isinstance(item, dict):
        name = item.get(name_key)
        if isinstance(name, str) and name and len(name) < 80:
            return f"[{name}]"
    return f"[{index}]"


def item_list(parent: LMap, key: str, path: str, problems: Problems) -> list[tuple[Any, int, str]]:
    """The items of ``parent[key]`` as (item, line, path) triples; a non-list is reported and yields nothing."""
    if key not in parent or parent[key] is None:
        return []
    value = parent[key]
    if not isinstance(value, LList):
        problems.add(
            parent.value_line(key), f"{path}.{key}" if path else key, f"expected a list, got {_type_name(value)}"
        )
        return []
    name_key = "hostname" if key == "devices" else "name"
    prefix = f"{path}.{key}" if path else key
    return [(item, value.lines[i], f"{prefix}{item_label(item, i, name_key)}") for i, item in enumerate(value)]
