"""gNMI notifications -> TelemetryEvents: documented measurements, tags, units, counters turned into rates.

Everything here is pure except :class:`Normaliser`, which holds one device's memory (previous counter values for
rates, last known state for change detection, the latest value of each series) and is used by exactly one
thread, the device's subscription thread. The mapping from OpenConfig leaves to fields is a table
(:data:`INTERFACE_LEAVES` and friends); docs/telemetry.md lists the result.

Why switch timestamps and not arrival times for rates: a collector that stalls for a second and then drains a
backlog would otherwise see a burst and a silence; the switch's timestamps make the rate the true one.

Counters (64-bit unsigned per OpenConfig):

* ``cur >= prev``: rate = (cur - prev) x scale / dt;
* ``cur < prev`` with ``prev`` in the top quarter of the 64-bit range and ``cur`` in the bottom quarter: a wrap,
  delta = cur + 2**64 - prev;
* any other decrease: a reset (reboot, ``clear counters``): no rate for this sample, the new value is the
  baseline (emitting ``cur / dt`` would be a guess; a missing point is honest);
* a sample not newer than the previous one (duplicate, reordered): ignored for rates;
* a change of ``/system/state/boot-time`` resets every baseline of the device.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.telemetry.points import TelemetryEvent

logger = logging.getLogger(__name__)

__all__ = [
    "MEASUREMENTS",
    "Change",
    "DeviceMeta",
    "Normaliser",
    "counter_delta",
    "counter_rate",
    "describe",
    "handoff_samples",
    "typed_value",
]

U64 = 1 << 64
WRAP_HIGH = U64 - (1 << 62)  # previous value this high ...
WRAP_LOW = 1 << 62  # ... and the new one this low: a wrap, not a reset

MEASUREMENTS = ("interface", "queue", "pfc", "optics", "dci_channel", "system")

# conversions: how a leaf's value becomes a field
RATE = "rate"  # counter -> per-second rate (float) x scale
COUNT = "count"  # counter stored as is (int), e.g. carrier transitions
UP = "up"  # enumeration: "UP" -> True, anything else -> False (state: changes are handed off)
BOOL = "bool"  # state: changes are handed off
FLOAT = "float"
INT = "int"
BOOT = "boot"  # /system/state/boot-time: int ns, resets counter baselines when it changes
NAME = "name"  # a name the normaliser learns (logical channel description), not stored

STATE_CONVS = frozenset({UP, BOOL})

# leaf path below the list entry -> (field, conversion, scale)
INTERFACE_LEAVES: dict[tuple[str, ...], tuple[str, str, float]] = {
    ("state", "oper-status"): ("oper_up", UP, 1),
    ("state", "admin-status"): ("admin_up", UP, 1),
    ("state", "counters", "in-octets"): ("in_bps", RATE, 8),
    ("state", "counters", "out-octets"): ("out_bps", RATE, 8),
    ("state", "counters", "in-unicast-pkts"): ("in_pps", RATE, 1),
    ("state", "counters", "out-unicast-pkts"): ("out_pps", RATE, 1),
    ("state", "counters", "in-errors"): ("in_errors_ps", RATE, 1),
    ("state", "counters", "out-errors"): ("out_errors_ps", RATE, 1),
    ("state", "counters", "in-fcs-errors"): ("in_fcs_errors_ps", RATE, 1),
    ("state", "counters", "in-discards"): ("in_discards_ps", RATE, 1),
    ("state", "counters", "out-discards"): ("out_discards_ps", RATE, 1),
    ("state", "counters", "carrier-transitions"): ("carrier_transitions", COUNT, 1),
    ("ethernet", "state", "counters", "in-mac-pause-frames"): ("in_pause_ps", RATE, 1),
    ("ethernet", "state", "counters", "out-mac-pause-frames"): ("out_pause_ps", RATE, 1),
    ("ethernet", "state", "counters", "in-crc-errors"): ("in_crc_errors_ps", RATE, 1),
}
QUEUE_LEAVES = {
    "transmit-pkts": ("transmit_pps", RATE, 1),
    "transmit-octets": ("transmit_bps", RATE, 8),
    "dropped-pkts": ("dropped_pps", RATE, 1),
    "dropped-octets": ("dropped_bps", RATE, 8),
    "avg-queue-len": ("depth_bytes", INT, 1),
    "ecn-marked-pkts": ("ecn_marked_pps", RATE, 1),
}
PFC_LEAVES = {
    "pause-frames-rx": ("rx_pause_ps", RATE, 1),
    "pause-frames-tx": ("tx_pause_ps", RATE, 1),
}
TRANSCEIVER_LEAVES = {
    ("state", "temperature", "instant"): ("temperature_c", FLOAT, 1),
    ("transceiver", "state", "fec-uncorrectable-blocks"): ("fec_uncorrectable_ps", RATE, 1),
    ("transceiver", "state", "fec-corrected-bytes"): ("fec_corrected_ps", RATE, 1),
    ("transceiver", "state", "pre-fec-ber", "instant"): ("pre_fec_ber", FLOAT, 1),
}
LANE_LEAVES = {
    "input-power": ("input_power_dbm", FLOAT, 1),
    "output-power": ("output_power_dbm", FLOAT, 1),
    "laser-bias-current": ("laser_bias_ma", FLOAT, 1),
}
OCH_LEAVES = {
    "frequency": ("frequency_mhz", INT, 1),
    "input-power": ("input_power_dbm", FLOAT, 1),
    "output-power": ("output_power_dbm", FLOAT, 1),
    "chromatic-dispersion": ("chromatic_dispersion_ps_nm", FLOAT, 1),
    "osnr": ("osnr_db", FLOAT, 1),
}
OTN_LEAVES = {
    "pre-fec-ber": ("pre_fec_ber", FLOAT, 1),
    "q-value": ("q_value_db", FLOAT, 1),
    "esnr": ("esnr_db", FLOAT, 1),
}
SYSTEM_LEAVES = {
    ("state", "boot-time"): ("boot_time_ns", BOOT, 1),
    ("memory", "state", "physical"): ("memory_total_bytes", INT, 1),
    ("memory", "state", "used"): ("memory_used_bytes", INT, 1),
}

# Samples detection wants without waiting for InfluxDB: measurement -> fields that matter when non-zero
# (congestion and errors), or None = every sample (DCI channels: few series, each one is a city pair).
HANDOFF_FIELDS: dict[str, frozenset[str] | None] = {
    "pfc": frozenset({"rx_pause_ps", "tx_pause_ps", "watchdog_storms"}),
    "queue": frozenset({"ecn_marked_pps", "dropped_pps"}),
    "interface": frozenset({"in_errors_ps", "in_fcs_errors_ps", "in_discards_ps", "out_discards_ps", "in_pause_ps"}),
    "optics": frozenset({"fec_uncorrectable_ps"}),
    "dci_channel": None,
}


@dataclass(frozen=True)
class Leaf:
    """Where one gNMI leaf goes: a series (measurement + the tags below the device) and a field."""

    measurement: str
    tags: tuple[tuple[str, str], ...]  # sorted (key, value) below the device level, e.g. (("interface", "Et1"),)
    field: str
    conv: str
    scale: float = 1


@dataclass(frozen=True)
class DeviceMeta:
    """What the source of truth says about a device: the tags of its series."""

    hostname: str
    fabric: str = ""
    site: str = ""
    role: str = ""
    platform: str = ""
    interfaces: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (link, peer)

    def base_tags(self) -> dict[str, str]:
        tags = {"device": self.hostname, "fabric": self.fabric, "site": self.site, "role": self.role}
        return {k: v for k, v in tags.items() if v}


@dataclass(frozen=True)
class Change:
    """A state leaf that changed (oper-status, admin-status, PFC enable, boot time)."""

    measurement: str
    tags: Mapping[str, str]
    field: str
    old: Any
    new: Any
    timestamp_ns: int


def _strip(name: str) -> str:
    return name.rpartition(":")[2] if ":" in name else name


def describe(elems: Iterable[tuple[str, Mapping[str, str]]]) -> Leaf | None:
    """The series and field of a full leaf path (prefix + update path), or None for a leaf we do not store.

    ``elems`` are (name, keys) pairs; module prefixes (``openconfig-interfaces:``) are ignored.
    """
    path = [(_strip(name), dict(keys or {})) for name, keys in elems]
    names = tuple(name for name, _ in path)
    if len(names) < 2:
        return None
    top = names[0]
    if top == "interfaces" and names[1] == "interface":
        ifname = path[1][1].get("name")
        spec = INTERFACE_LEAVES.get(names[2:])
        if ifname and spec:
            return Leaf("interface", (("interface", ifname),), *spec)
        return None
    if top == "qos" and names[1:3] == ("interfaces", "interface"):
        ifname = path[2][1].get("interface-id")
        rest = names[3:]
        if not ifname:
            return None
        if rest[:3] == ("output", "queues", "queue") and len(rest) == 5 and rest[3] == "state":
            queue = path[5][1].get("name")
            spec = QUEUE_LEAVES.get(rest[4])
            if queue is not None and spec:
                return Leaf("queue", (("interface", ifname), ("queue", queue)), *spec)
            return None
        if rest[:3] == ("pfc", "pfc-priorities", "pfc-priority"):
            prio = path[5][1].get("dot1p")
            if prio is None:
                return None
            tags = (("interface", ifname), ("priority", prio))
            if rest[3:] == ("state", "enable"):
                return Leaf("pfc", tags, "enabled", BOOL)
            if rest[3:5] == ("state", "statistics") and len(rest) == 6 and rest[5] in PFC_LEAVES:
                return Leaf("pfc", tags, *PFC_LEAVES[rest[5]])
            return None
        if rest[:3] == ("pfc", "pfc-queue", "pfc-queue") and rest[3:] == ("state", "statistics", "storm-detected"):
            prio = path[5][1].get("queue")
            if prio is not None:
                return Leaf("pfc", (("interface", ifname), ("priority", prio)), "watchdog_storms", COUNT)
        return None
    if top == "components" and names[1] == "component":
        component = path[1][1].get("name")
        if not component:
            return None
        rest = names[2:]
        if rest[:2] == ("optical-channel", "state") and len(rest) >= 3 and rest[2] in OCH_LEAVES:
            if len(rest) == 3 or rest[3:] == ("instant",):
                return Leaf("dci_channel", (("channel", component),), *OCH_LEAVES[rest[2]])
            return None
        interface = component[: -len("-transceiver")] if component.endswith("-transceiver") else component
        spec = TRANSCEIVER_LEAVES.get(rest)
        if spec:
            return Leaf("optics", (("interface", interface),), *spec)
        if (
            rest[:3] == ("transceiver", "physical-channels", "channel")
            and len(rest) == 6
            and rest[3] == "state"
            and rest[5] == "instant"
            and rest[4] in LANE_LEAVES
        ):
            lane = path[4][1].get("index")
            if lane is not None:
                return Leaf("optics", (("interface", interface), ("lane", lane)), *LANE_LEAVES[rest[4]])
        return None
    if top == "terminal-device" and names[1:3] == ("logical-channels", "channel"):
        index = path[2][1].get("index")
        rest = names[3:]
        if index is None:
            return None
        if rest == ("state", "description"):
            return Leaf("dci_channel", (("index", index),), "name", NAME)
        if rest[:2] == ("otn", "state") and len(rest) == 4 and rest[3] == "instant" and rest[2] in OTN_LEAVES:
            return Leaf("dci_channel", (("index", index),), *OTN_LEAVES[rest[2]])
        return None
    if top == "system":
        spec = SYSTEM_LEAVES.get(names[1:])
        if spec:
            return Leaf("system", (), *spec)
        if names[1:3] == ("cpus", "cpu") and names[3:] == ("state", "total", "instant"):
            return Leaf("system", (), "cpu_pct", FLOAT)
    return None


def typed_value(tv: Any) -> Any:
    """The Python value of a gNMI TypedValue (JSON decoded; Decimal64 as float); raises ValueError if empty."""
    which = tv.WhichOneof("value")
    if which is None:
        raise ValueError("TypedValue has no value")
    value = getattr(tv, which)
    if which in ("json_val", "json_ietf_val"):
        return json.loads(value)
    if which == "decimal_val":
        return value.digits / 10**value.precision
    if which in ("any_val", "leaflist_val", "proto_bytes", "bytes_val"):
        raise ValueError(f"unsupported TypedValue {which}")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return float(value)  # RFC 7951 decimal64 is a string; ValueError if it is not a number
    raise ValueError(f"expected a number, got {value!r}")


def _to_up(value: Any) -> bool:
    if not isinstance(value, str):
        raise ValueError(f"expected an enumeration, got {value!r}")
    return _strip(value) == "UP"


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"expected a boolean, got {value!r}")


def _to_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a name, got {value!r}")
    return value


def _to_counter(value: Any) -> int:
    number = _to_int(value)
    if not 0 <= number < U64:
        raise ValueError(f"counter {number} outside 0..2**64-1")
    return number


CONVERTERS = {
    RATE: _to_counter,
    COUNT: _to_counter,
    UP: _to_up,
    BOOL: _to_bool,
    FLOAT: _to_float,
    INT: _to_int,
    BOOT: _to_int,
    NAME: _to_name,
}


def counter_delta(prev: int, cur: int) -> tuple[int | None, str]:
    """Increase of a 64-bit counter from ``prev`` to ``cur``: (delta, "ok"|"wrap") or (None, "reset")."""
    if cur >= prev:
        return cur - prev, "ok"
    if prev >= WRAP_HIGH and cur < WRAP_LOW:
        return cur + U64 - prev, "wrap"
    return None, "reset"


def counter_rate(prev: tuple[int, int] | None, cur: int, ts_ns: int, scale: float = 1.0) -> tuple[float | None, str]:
    """Per-second rate between ``prev`` = (value, ns) and (cur, ts_ns): (rate, why).

    ``why`` is "ok", "wrap", "reset", "first" (no previous sample) or "stale" (not newer than the previous).
    """
    if prev is None:
        return None, "first"
    prev_value, prev_ts = prev
    if ts_ns <= prev_ts:
        return None, "stale"
    delta, why = counter_delta(prev_value, cur)
    if delta is None:
        return None, why
    return delta * scale * 1e9 / (ts_ns - prev_ts), why


def handoff_samples(events: Iterable[TelemetryEvent]) -> list[TelemetryEvent]:
    """The events detection should see at once: congestion/error fields above zero, every DCI channel sample."""
    out = []
    for event in events:
        if event.name not in HANDOFF_FIELDS:
            continue
        wanted = HANDOFF_FIELDS[event.name]
        if wanted is None:
            out.append(event)
            continue
        fields = event.fields
        for name in wanted:
            value = fields.get(name)
            if value is not None and value > 0:
                out.append(event)
                break
    return out


@dataclass
class Counts:
    """Per-device normalisation counters (for collection health)."""

    updates: int = 0
    events: int = 0
    ignored: int = 0  # leaves we do not store (names, config mirrors, ...)
    malformed: int = 0  # values that do not convert, paths that do not parse
    resets: int = 0
    wraps: int = 0
    stale: int = 0
    deletes: int = 0


class Normaliser:
    """One device's normalisation state. Not thread-safe: one subscription thread owns it, except
    :meth:`take_dirty`, which the handoff thread calls.

    ``process(notification)`` returns (events, changes). Before :meth:`sync` (the session's sync_response),
    state leaves are held as pending and no change is reported; ``sync()`` compares the complete snapshot with
    what was known before (the previous session) and returns the differences, so a link that went down while
    the stream was away is still reported, and a half-received dump is never compared.
    """

    def __init__(self, meta: DeviceMeta, *, now_ns: Any = time.time_ns) -> None:
        self.meta = meta
        self.counts = Counts()
        self._now_ns = now_ns
        self._base = meta.base_tags()
        self._series: list[tuple[str, dict[str, str]]] = []  # idx -> (measurement, full tags)
        self._series_ids: dict[tuple[str, tuple], int] = {}
        self._paths: dict[bytes, dict[bytes, tuple | None]] = {}  # prefix bytes -> path bytes -> descriptor
        self._counters: dict[tuple[int, str], tuple[int, int]] = {}
        self._state: dict[tuple[int, str], Any] = {}
        self._pending: dict[tuple[int, str], tuple[Any, int]] = {}
        self._channel_names: dict[str, str] = {}
        # idx -> [newest ns, fields, {field: ns}] (updated in place): a series mixes subscriptions of different
        # intervals (interface: 1 s discards, 10 s traffic), so each field keeps the time of its own sample
        self.latest: dict[int, list] = {}
        self.dirty: set[int] = set()
        # take_dirty runs on the handoff thread while process() runs on the subscription thread: the swap and
        # the adds share this lock (one acquisition per notification), so no add lands in a set being iterated.
        self._dirty_lock = threading.Lock()
        self.synced = False
        self.boot_time_ns: int | None = None

    # --- series ---------------------------------------------------------------------------------------
    def _series_id(self, measurement: str, tags: tuple[tuple[str, str], ...]) -> int:
        key = (measurement, tags)
        idx = self._series_ids.get(key)
        if idx is None:
            full = dict(self._base)
            full.update(tags)
            interface = full.get("interface")
            if interface is not None:
                link, peer = self.meta.interfaces.get(interface, ("", ""))
                if link:
                    full["link"] = link
                if peer:
                    full["peer"] = peer
            idx = len(self._series)
            self._series.append((measurement, full))
            self._series_ids[key] = idx
        return idx

    def series(self, idx: int) -> tuple[str, dict[str, str]]:
        return self._series[idx]

    def _descriptor(self, prefix_elems: list, path: Any) -> tuple | None:
        elems = prefix_elems + [(e.name, e.key) for e in path.elem]
        if not path.elem and path.element:  # deprecated string elements
            elems = prefix_elems + [(name, {}) for name in path.element]
        leaf = describe(elems)
        if leaf is None:
            return None
        tags = leaf.tags
        if leaf.measurement == "dci_channel" and tags and tags[0][0] == "index":
            if leaf.conv == NAME:
                return (-1, leaf.field, NAME, 1.0, tags[0][1], None)
            # terminal-device channels are keyed by index; tag them with the channel's name once it is known
            return (-2, leaf.field, leaf.conv, float(leaf.scale), tags[0][1], None)
        idx = self._series_id(leaf.measurement, tags)
        return (idx, leaf.field, leaf.conv, float(leaf.scale), None, (idx, leaf.field))

    # --- sessions -------------------------------------------------------------------------------------
    def begin_session(self) -> None:
        """A new Subscribe RPC: hold state leaves until its sync_response."""
        self.synced = False
        self._pending = {}

    def sync(self, timestamp_ns: int | None = None) -> list[Change]:
        """The session's initial snapshot is complete: apply it and return what changed since last known."""
        changes = []
        for key, (value, ts) in self._pending.items():
            old = self._state.get(key)
            self._state[key] = value
            if old is not None and old != value:
                measurement, tags = self._series[key[0]]
                changes.append(Change(measurement, tags, key[1], old, value, ts))
        self._pending = {}
        self.synced = True
        return changes

    # --- the hot path ---------------------------------------------------------------------------------
    def process(self, notification: Any) -> tuple[list[TelemetryEvent], list[Change]]:
        """Normalise one gNMI Notification; malformed or unknown leaves are counted and skipped."""
        counts = self.counts
        prefix = notification.prefix
        prefix_key = prefix.SerializeToString()
        table = self._paths.get(prefix_key)
        if table is None:
            if len(self._paths) > 10_000:
                self._paths.clear()
            table = self._paths[prefix_key] = {}
        prefix_elems = None
        ts = notification.timestamp
        if ts <= 0:
            ts = self._now_ns()
            counts.malformed += 1
        groups: dict[int, dict[str, Any]] = {}
        changes: list[Change] = []
        if notification.delete:
            counts.deletes += len(notification.delete)
        updates = notification.update
        counts.updates += len(updates)
        counters = self._counters
        for update in updates:
            path = update.path
            key = path.SerializeToString()
            desc = table.get(key, False)
            if desc is False:
                if prefix_elems is None:
                    prefix_elems = [(e.name, e.key) for e in prefix.elem]
                try:
                    desc = self._descriptor(prefix_elems, path)
                except Exception:  # a path we cannot even walk
                    counts.malformed += 1
                    continue
                if len(table) > 200_000:
                    table.clear()
                table[key] = desc
            if desc is None:
                counts.ignored += 1
                continue
            idx, name, conv, scale, index, ckey = desc
            val = update.val
            if conv is RATE and val.WhichOneof("value") == "uint_val":  # the hot path: a PROTO counter
                value = val.uint_val
                prev = counters.get(ckey)
                if prev is not None and ts > prev[1] and value >= prev[0]:
                    counters[ckey] = (value, ts)
                    value = (value - prev[0]) * scale * 1e9 / (ts - prev[1])
                    fields = groups.get(idx)
                    if fields is None:
                        groups[idx] = {name: value}
                    else:
                        fields[name] = value
                    continue
            else:
                try:
                    value = CONVERTERS[conv](typed_value(val))
                except (ValueError, TypeError, AttributeError, OverflowError):
                    counts.malformed += 1
                    continue
            if idx < 0:
                if idx == -1:
                    self._channel_names[index] = value
                    continue
                channel = self._channel_names.get(index)
                if channel is None:
                    if not self.synced:  # the dump names the channel (state/description) before sync_response
                        counts.ignored += 1
                        continue
                    channel = index  # a target that never names it: key by index
                idx = self._series_id("dci_channel", (("channel", channel),))
                ckey = (idx, name)
            if conv == RATE:
                rate, why = counter_rate(counters.get(ckey), value, ts, scale)
                if why != "stale":
                    counters[ckey] = (value, ts)
                if rate is None:
                    if why == "reset":
                        counts.resets += 1
                    elif why == "stale":
                        counts.stale += 1
                    continue
                if why == "wrap":
                    counts.wraps += 1
                value = rate
            elif conv in STATE_CONVS or conv == BOOT:
                if conv == BOOT:
                    if self.boot_time_ns is not None and value != self.boot_time_ns:
                        # rebooted: counters sampled before the boot are no baseline for the ones after it
                        for key in [k for k, v in counters.items() if v[1] < value]:
                            del counters[key]
                    self.boot_time_ns = value
                if self.synced:
                    old = self._state.get(ckey)
                    self._state[ckey] = value
                    if old is not None and old != value:
                        measurement, tags = self._series[idx]
                        changes.append(Change(measurement, tags, name, old, value, ts))
                else:
                    self._pending[ckey] = (value, ts)
            fields = groups.get(idx)
            if fields is None:
                groups[idx] = {name: value}
            else:
                fields[name] = value
        events = []
        series = self._series
        latest = self.latest
        for idx, fields in groups.items():
            measurement, tags = series[idx]
            events.append(TelemetryEvent(measurement, ts, tags, fields))
            previous = latest.get(idx)
            if previous is None:
                latest[idx] = [ts, dict(fields), dict.fromkeys(fields, ts)]
            elif previous[0] <= ts:
                # values before times: a concurrent take_dirty may pair a new value with an older time (judged
                # staler than it is), never an old value with a newer time
                previous[1].update(fields)
                times = previous[2]
                for name in fields:  # groups are 1-3 fields (one per subscription): cheaper than dict.fromkeys
                    times[name] = ts
                previous[0] = ts
            else:  # another subscription's sample, delivered after a newer one of this series: merge field by field
                held, times = previous[1], previous[2]
                for name, value in fields.items():
                    if times.get(name, -1) <= ts:
                        held[name] = value
                        times[name] = ts
        if groups:
            with self._dirty_lock:
                self.dirty.update(groups)
        counts.events += len(events)
        return events, changes

    def take_dirty(self) -> list[tuple[str, dict[str, str], int, dict[str, Any], dict[str, int]]]:
        """Series whose latest value moved since the last call: (measurement, tags, ns, fields, older).

        ``ns`` is the newest field's sample time, ``older`` the sample time of each field sampled before it (empty
        when all were sampled together: the common case costs nothing on the wire)."""
        with self._dirty_lock:
            dirty, self.dirty = self.dirty, set()
        out = []
        for idx in dirty:
            entry = self.latest.get(idx)
            if entry is not None:
                times = entry[2].copy()  # times before values (see process)
                fields = entry[1].copy()
                ts = max(times.values())
                measurement, tags = self._series[idx]
                out.append((measurement, tags, ts, fields, {k: t for k, t in times.items() if t != ts}))
        return out
