"""The one event type that flows from the collector to storage, and its line-protocol encoding.

Like gNMIc's ``formatters.EventMsg``: a name (the InfluxDB measurement), a timestamp in nanoseconds, string tags
and typed fields. Encoding follows the InfluxDB line protocol reference and was checked against a real influxd
(tests/telemetry/test_points.py):

* measurement: escape ``,`` and space; tag keys, tag values, field keys: escape ``,``, ``=`` and space;
  a backslash elsewhere stays a backslash (the parser only unescapes those characters) and a tab is literal;
* three things cannot be represented in a name or tag, so they are rejected rather than silently changed:
  a newline or carriage return (influxdb-client writes ``\\n``, stored as backslash-n), and a trailing
  backslash (it escapes the separator after it; 1.6 answers "invalid tag format", and influxdb-client's
  trailing-space workaround stores a different value, ``"a "`` for ``"a\\"``);
* fields: ``bool`` -> ``true``/``false`` (checked before ``int``, since bool is an int in Python);
  ``int`` -> ``123i`` (signed 64-bit, the only integer type 1.x accepts by default); ``float`` -> ``repr``
  (shortest round-trip form, ``1e+16`` is valid); NaN and infinities cannot be stored, so such fields are
  skipped (as influxdb-client does) and an event with no storable field is rejected; ``str`` -> double-quoted
  with ``\\`` and ``"`` escaped (newlines are legal inside a quoted string field);
* tags are sorted by key (InfluxDB's recommendation: it saves the server a sort per point); empty tag values
  are omitted because line protocol has no empty tag value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from fabric_ops.errors import FabricOpsError

__all__ = ["FieldValue", "PointError", "TelemetryEvent", "encode_event", "encode_events"]

FieldValue = bool | int | float | str

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MEASUREMENT_ESCAPE = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPE = str.maketrans({"\\": "\\\\", '"': '\\"'})


class PointError(FabricOpsError):
    """An event cannot be written as line protocol; the message names the measurement and the key at fault."""


@dataclass(frozen=True, slots=True)
class TelemetryEvent:
    """One measurement at one instant: ``interface,device=leaf1,interface=Ethernet1 in_bps=1.2e9 <ns>``.

    Example::

        TelemetryEvent("interface", 1_700_000_000_000_000_000,
                       {"fabric": "dc1", "device": "leaf1", "interface": "Ethernet1"},
                       {"in_bps": 1.2e9, "oper_up": True, "in_errors": 0})
    """

    name: str
    timestamp_ns: int
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, FieldValue] = field(default_factory=dict)

    def to_line(self) -> str:
        return encode_event(self)


def _check_text(value: str, what: str, name: str) -> None:
    if not isinstance(value, str) or not value:
        raise PointError(f"{name}: {what} must be a non-empty string, got {value!r}")
    if "\n" in value or "\r" in value:
        raise PointError(f"{name}: {what} {value!r} contains a newline, which line protocol cannot carry")
    if value.endswith("\\"):
        raise PointError(f"{name}: {what} {value!r} ends with a backslash, which line protocol cannot carry")


def _encode_field(name: str, key: str, value: FieldValue) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise PointError(f"{name}: field {key!r} = {value} does not fit a signed 64-bit integer")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_STRING_ESCAPE) + '"'
    raise PointError(f"{name}: field {key!r} has unsupported type {type(value).__name__}")


def _series_prefix(name: str, tags: Mapping[str, str]) -> str:
    """Escaped ``measurement,tag=value,...`` after validating every part (the slow path, cached by the caller)."""
    _check_text(name, "measurement name", repr(name))
    parts = [name.translate(_MEASUREMENT_ESCAPE)]
    for key in sorted(tags):
        value = tags[key]
        if value is None or value == "":
            continue
        _check_text(key, "tag key", name)
        _check_text(value, f"tag {key!r} value", name)
        parts.append(f",{key.translate(_KEY_ESCAPE)}={value.translate(_KEY_ESCAPE)}")
    return "".join(parts)


def _field_key(name: str, key: str) -> str:
    escaped = _FIELD_KEYS.get(key)
    if escaped is None:
        _check_text(key, "field key", name)
        escaped = _FIELD_KEYS[key] = key.translate(_KEY_ESCAPE)
    return escaped


# Telemetry repeats the same series (measurement + tag set) every interval, so the escaped series prefix is
# cached; validation and escaping then cost one dict lookup per event. The cache is cleared when it reaches
# _CACHE_MAX entries (far above one collector's series count), which bounds its memory without LRU bookkeeping.
_CACHE_MAX = 100_000
_PREFIXES: dict[tuple[str, tuple], str] = {}
_FIELD_KEYS: dict[str, str] = {}


def encode_event(event: TelemetryEvent) -> str:
    """One line of line protocol (no trailing newline); raises :class:`PointError` for unstorable events."""
    name = event.name
    timestamp = event.timestamp_ns
    if type(timestamp) is not int:
        raise PointError(f"{name}: timestamp must be integer nanoseconds, got {timestamp!r}")
    try:
        cache_key = (name, tuple(event.tags.items()))
        prefix = _PREFIXES.get(cache_key)
    except TypeError:  # an unhashable tag value: the slow path reports it
        cache_key, prefix = None, None
    if prefix is None:
        prefix = _series_prefix(name, event.tags)
        if cache_key is not None:
            if len(_PREFIXES) >= _CACHE_MAX:
                _PREFIXES.clear()
            _PREFIXES[cache_key] = prefix
    encoded_fields = []
    for key, value in event.fields.items():
        kind = type(value)
        if kind is float:
            if value - value == 0.0:  # finite: NaN and +-inf give NaN here
                encoded_fields.append(f"{_field_key(name, key)}={value!r}")
        elif kind is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise PointError(f"{name}: field {key!r} = {value} does not fit a signed 64-bit integer")
            encoded_fields.append(f"{_field_key(name, key)}={value}i")
        elif kind is bool:
            encoded_fields.append(f"{_field_key(name, key)}={'true' if value else 'false'}")
        elif value is not None:
            encoded = _encode_field(name, key, value)
            if encoded is not None:
                encoded_fields.append(f"{_field_key(name, key)}={encoded}")
    if not encoded_fields:
        raise PointError(f"{name}: event has no storable field (fields: {sorted(event.fields)})")
    return f"{prefix} {','.join(encoded_fields)} {timestamp}"


def encode_events(events: list[TelemetryEvent]) -> list[str]:
    """Encode many events; the first unstorable one raises (callers that must skip use :func:`encode_event`)."""
    return [encode_event(event) for event in events]
