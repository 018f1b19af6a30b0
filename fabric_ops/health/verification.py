"""Verification metrics: read what the network does *after* a change, from the collector's latest values.

Every metric reads ``<prefix>:latest:<device>`` (``fabric_ops.telemetry.handoff.latest_values``) and only trusts
values the switch sampled after ``since_ns`` (the commit): a number from before the change proves nothing. The
time that counts is the field's own (``handoff.field_ts``), not the series': the ``interface`` series is refreshed
every second by its discard counters while its traffic rates are sampled every 10 s, so the series' time would
pass a pre-commit rate as fresh. A metric with no fresh value yet returns None, and the verifier keeps polling
until the playbook's ``within``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fabric_ops.telemetry.handoff import fresh_fields, latest_values

from .playbooks import Verification
from .topology import Port

logger = logging.getLogger(__name__)

Latest = Callable[[str], Mapping[str, Mapping[str, Any]]]
TRAFFIC = ("out_bps", "in_bps")
RATE_METRICS = frozenset(
    {"link-carrying-bps", "link-utilisation", "dci-degraded-carrying-bps", "port-pause-rx-ps", "device-pause-tx-ps",
     "queue-drops-pps", "queue-ecn-marks-pps"}
)  # fmt: skip


@dataclass(frozen=True)
class Subject:
    """What a metric is measured on: ports of the links acted on, the incident's port/priority/queue, devices."""

    ports: tuple[Port, ...] = ()
    port: Port | None = None
    priority: str = "3"
    devices: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def _fresh(
    latest: Mapping[str, Mapping[str, Any]], series: str, since_ns: int, names: tuple[str, ...]
) -> dict[str, Any] | None:
    """The fields ``names`` of ``series`` when every one it has was sampled after ``since_ns`` (None: not yet)."""
    return fresh_fields(latest.get(series), names, since_ns)


def _sum_ports(read: Latest, ports: Iterable[Port], since_ns: int, fields: tuple[str, ...]) -> float | None:
    total = 0.0
    for device, ifname in ports:
        values = _fresh(read(device), f"interface|interface={ifname}", since_ns, fields)
        if values is None:
            return None
        total += sum(float(v or 0.0) for v in values.values())
    return total


def measure(metric: str, subject: Subject, since_ns: int, read: Latest) -> float | None:
    """The current value of ``metric`` on ``subject`` from values newer than ``since_ns``; None = not yet known."""
    if metric in ("link-carrying-bps", "dci-degraded-carrying-bps"):
        return _sum_ports(read, subject.ports, since_ns, TRAFFIC)
    if metric == "link-utilisation":
        # The busiest direction at either end, as a fraction of the port speed: a costed-out link stays up and
        # keeps its background (BGP, LLDP) traffic, so "carries nothing" is a fraction, not zero bits.
        speeds = subject.extra.get("port_speed_gbps", {})
        worst = None
        for device, ifname in subject.ports:
            values = _fresh(read(device), f"interface|interface={ifname}", since_ns, TRAFFIC)
            speed = float(speeds.get(f"{device}:{ifname}") or 0) * 1e9
            if values is None or not speed:
                return None
            busiest = max(float(values.get("out_bps") or 0.0), float(values.get("in_bps") or 0.0)) / speed
            worst = busiest if worst is None else max(worst, busiest)
        return worst
    if metric == "link-shut":
        # What a shutdown drain changes, as the switches themselves report it (admin-status and oper-status are
        # ON_CHANGE: seconds, where a traffic rate needs a full counter interval after the commit). Admin-down is
        # what tells the drain from the fault: a flapping link is often oper-down on its own.
        for device, ifname in subject.ports:
            fields = (read(device).get(f"interface|interface={ifname}") or {}).get("fields", {})
            if "admin_up" not in fields or "oper_up" not in fields:
                return None
            if fields["admin_up"] or fields["oper_up"]:
                return 0.0
        return 1.0
    if metric == "link-oper-up":
        for device, ifname in subject.ports:
            entry = read(device).get(f"interface|interface={ifname}")
            if entry is None or "oper_up" not in entry.get("fields", {}):
                return None
            if not entry["fields"]["oper_up"]:
                return 0.0
        return 1.0
    if metric == "port-pause-rx-ps" and subject.port:
        device, ifname = subject.port
        values = _fresh(read(device), f"pfc|interface={ifname},priority={subject.priority}", since_ns, ("rx_pause_ps",))
        return None if values is None else float(values["rx_pause_ps"] or 0.0)
    if metric == "device-pause-tx-ps" and subject.port:
        device, stormed = subject.port
        total = 0.0
        seen = False
        for name, entry in read(device).items():
            if not name.startswith("pfc|") or f"interface={stormed}," in name:
                continue
            values = fresh_fields(entry, ("tx_pause_ps",), since_ns)
            if values is not None:
                total += float(values["tx_pause_ps"] or 0.0)
                seen = True
        return total if seen else None
    if metric in ("queue-drops-pps", "queue-ecn-marks-pps") and subject.port:
        device, ifname = subject.port
        field_name = "dropped_pps" if metric == "queue-drops-pps" else "ecn_marked_pps"
        values = _fresh(read(device), f"queue|interface={ifname},queue={subject.priority}", since_ns, (field_name,))
        return None if values is None else float(values[field_name] or 0.0)
    if metric == "intent-applied":
        from fabric_ops.config.compliance import check_compliance
        from fabric_ops.topology.models import Device

        devices = Device.objects.filter(hostname__in=subject.devices).select_related("fabric", "site")
        return 1.0 if all(check_compliance(d).compliant for d in devices) else 0.0
    raise ValueError(f"unknown verification metric {metric!r}")


def redis_reader(client: Any = None, prefix: str | None = None) -> Latest:
    return lambda device: latest_values(device, client=client, prefix=prefix)


def verify(
    spec: Verification,
    subject: Subject,
    since_ns: int,
    read: Latest,
    *,
    poll_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``spec.metric`` until it holds (ok) or ``spec.within`` seconds pass (failed); returns the record."""
    deadline = clock() + spec.within
    observed: list[float] = []
    value: float | None = None
    # A rate is computed between two samples: the first one stamped after the commit may still average traffic
    # from before it. Only a value newer than the first fresh one has its whole window after the change.
    settled = spec.metric not in RATE_METRICS
    while True:
        value = measure(spec.metric, subject, since_ns, read)
        if value is not None and not settled:
            settled, value = True, None
            since_ns = time.time_ns()
        if value is not None:
            observed.append(value)
            if spec.holds(value):
                return {"ok": True, "metric": spec.metric, "op": spec.op, "expected": spec.value, "value": value,
                        "observed": observed[-10:]}  # fmt: skip
        if clock() >= deadline:
            return {"ok": False, "metric": spec.metric, "op": spec.op, "expected": spec.value, "value": value,
                    "observed": observed[-10:],
                    "why": "no fresh value" if value is None else f"{value:g} does not satisfy {spec.op} {spec.value:g}"}  # noqa: E501  # fmt: skip
        sleep(poll_s)
