"""The desired state an inventory file describes, as rows keyed by natural keys.

Every model is a dict ``natural key -> {field: value}`` where foreign keys are
natural keys too (a device's fabric is the fabric's name, a NIC's leaf port is
``(hostname, interface)``). The importer loads the database into the same
shape, so diffing is a dict comparison and the change report names real
objects. ``where`` remembers the file line of every row for later checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MODEL_ORDER", "Spec", "endpoint_str", "key_str"]

# Dependency order: created/updated in this order, deleted in reverse.
MODEL_ORDER = (
    "Transceiver",
    "Site",
    "OpticalSpan",
    "Fabric",
    "Pod",
    "Device",
    "Interface",
    "Link",
    "GpuHost",
    "GpuNic",
    "OpticalChannel",
)

Endpoint = tuple[str, str]  # (hostname, interface name)


def endpoint_str(ep: Endpoint) -> str:
    return f"{ep[0]}:{ep[1]}"


def key_str(model: str, key: Any) -> str:
    """How the change report and messages name a row."""
    if model == "Pod":
        return f"{key[0]}/{key[1]}"
    if model == "Interface":
        return endpoint_str(key)
    if model == "Link":
        return f"{endpoint_str(key[0])} <-> {endpoint_str(key[1])}"
    if model == "GpuNic":
        return f"{key[0]}:rail{key[1]}"
    return str(key)


@dataclass
class Spec:
    """Desired rows per model, plus where each came from (line, key path) in the file."""

    file: str
    rows: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=lambda: {m: {} for m in MODEL_ORDER})
    # model -> key -> (line of the object, key path of the object, line of each of its keys)
    where: dict[str, dict[Any, tuple[int, str, dict[str, int]]]] = field(
        default_factory=lambda: {m: {} for m in MODEL_ORDER}
    )

    # interface -> (line, key path) of the link `subnet` that gave it its address
    address_from: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    @property
    def fabric_names(self) -> set[str]:
        return set(self.rows["Fabric"])

    def add(
        self, model: str, key: Any, values: dict[str, Any], line: int, path: str, lines: dict[str, int] | None = None
    ) -> tuple[int, str, dict[str, int]] | None:
        """Add a row; returns where an earlier row with the same key was defined instead of overwriting it."""
        table = self.rows[model]
        if key in table:
            return self.where[model][key]
        table[key] = values
        self.where[model][key] = (line, path, lines or {})
        return None

    def at(self, model: str, key: Any, field_name: str | None = None) -> tuple[int, str]:
        """(line, key path) of a row, or of one of its keys (falling back to the row's line when defaulted)."""
        line, path, lines = self.where[model].get(key, (1, key_str(model, key), {}))
        if field_name is None:
            return line, path
        return lines.get(field_name, line), f"{path}.{field_name}"
