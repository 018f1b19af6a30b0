"""Resolve the effective intent of one device from the assignments that match it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from fabric_ops.errors import ConfigurationError
from fabric_ops.topology.models import Device

from .models import IntentAssignment, RoceProfile, UnderlayProfile
from .models.intents import PORT_OVERRIDE_FIELDS, profile_fields


def _defaults(model: type) -> dict[str, Any]:
    """Field defaults of a profile model: the intent of a device nobody assigned anything to."""
    values = {}
    for name in profile_fields(model):
        model_field = model._meta.get_field(name)
        values[name] = model_field.get_default()
    return values


def _values(profile: RoceProfile | UnderlayProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in profile_fields(type(profile))}


@dataclass(frozen=True)
class DeviceIntent:
    """The merged intent for one device, with the assignments it came from (most general first)."""

    roce: dict[str, Any]
    underlay: dict[str, Any]
    sources: list[str] = field(default_factory=list)
    # Per-port overrides (models.intents.PORT_OVERRIDE_FIELDS): field -> interface names, from the device's own
    # assignment; e.g. {"bgp_cost_out": ["Ethernet3/1"]} while a remediation drains that uplink by BGP.
    ports: dict[str, list[str]] = field(default_factory=dict)


def fabric_assignments(fabric_ids: Iterable[int]) -> dict[int, list[IntentAssignment]]:
    """Every assignment of these fabrics in one query, per fabric id (model order; ``_matching`` picks a device's)."""
    rows: dict[int, list[IntentAssignment]] = {fabric_id: [] for fabric_id in fabric_ids}
    query = IntentAssignment.objects.filter(fabric_id__in=list(rows)).select_related(
        "roce_profile", "underlay_profile", "fabric", "device"
    )
    for assignment in query:
        rows[assignment.fabric_id].append(assignment)
    return rows


def _matching(device: Device, assignments: Iterable[IntentAssignment]) -> list[IntentAssignment]:
    """Assignments that apply to ``device``, most general first: the one definition of which ones do."""
    rows = [
        a
        for a in assignments
        if a.fabric_id == device.fabric_id
        and a.role in ("", device.role)
        and (a.device_id is None or a.device_id == device.id)
    ]
    return sorted(rows, key=lambda a: a.specificity)


def resolve_intent(
    device: Device,
    assignments: Iterable[IntentAssignment] | None = None,
    interface_names: Iterable[str] | None = None,
) -> DeviceIntent:
    """Merge field by field: built-in defaults < fabric < fabric+role < device, overrides last at each level.

    ``assignments`` (the device's fabric's, from ``fabric_assignments``) and ``interface_names`` let a caller that
    resolves many devices read them once for all instead of querying per device; the result is the same.
    """
    roce = _defaults(RoceProfile)
    underlay = _defaults(UnderlayProfile)
    sources = []
    ports: dict[str, list[str]] = {}
    if assignments is None:
        assignments = fabric_assignments([device.fabric_id])[device.fabric_id]
    matching = _matching(device, assignments)
    for assignment in matching:
        if assignment.roce_profile:
            roce.update(_values(assignment.roce_profile))
        if assignment.underlay_profile:
            underlay.update(_values(assignment.underlay_profile))
        for key, value in (assignment.overrides or {}).items():
            if key in roce:
                roce[key] = value
            elif key in underlay:
                underlay[key] = value
            elif key in PORT_OVERRIDE_FIELDS and assignment.device_id == device.id:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigurationError(f"intent assignment {assignment}: {key} must be a list of interface names")
                ports[key] = sorted(set(value))
            else:
                raise ConfigurationError(f"intent assignment {assignment}: override {key!r} is not an intent field")
        sources.append(str(assignment))
    _validate(device, roce, underlay, sources)
    if not ports:
        known: set[str] = set()
    elif interface_names is None:
        known = set(device.interfaces.values_list("name", flat=True))
    else:
        known = set(interface_names)
    for key, names in ports.items():
        missing = sorted(set(names) - known)
        if missing:
            raise ConfigurationError(f"{device.hostname}: {key} names unknown interface(s) {', '.join(missing)}")
    return DeviceIntent(roce=roce, underlay=underlay, sources=sources, ports=ports)


def _validate(device: Device, roce: dict[str, Any], underlay: dict[str, Any], sources: list[str]) -> None:
    """Check the merged intent as a whole: overrides are JSON and could hold any value (even config lines)."""
    for model, values in ((RoceProfile, roce), (UnderlayProfile, underlay)):
        try:
            profile = model(name="merged", **values)
            profile.clean_fields(exclude=["name"])  # types first: clean() compares values
            profile.clean()
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise ConfigurationError(
                f"{device.hostname}: the merged intent (from {', '.join(sources) or 'defaults'}) is invalid: {problems}"
            ) from exc
