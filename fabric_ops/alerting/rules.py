"""Telemetry rules: conditions on the latest values the collector publishes (fabric_ops.telemetry.handoff).

Each rule names a measurement and field (``optics`` / ``input_power_dbm``, docs/telemetry.md), optional tag
matchers, a comparison and a for-duration. A series whose value holds the condition for ``for_s`` fires an
alert labelled ``alertname`` (the rule name in CamelCase), ``device``, the series tags, ``severity`` and the rule's
labels; when the condition stops holding (or the series disappears) the alert resolves. Pure evaluation
(:func:`evaluate`) is separate from the I/O (:func:`evaluate_telemetry_rules`) so it is table-testable.

Port state: a series with an ``interface`` tag may also be matched on the state of that port, through
context labels that the matchers see but the alert does not carry (docs/alerting.md): ``port_admin_up`` and
``port_oper_up`` (``true``/``false`` from the same device's latest ``interface`` series; ``admin_up`` falls back
to the topology's Interface.admin_up; empty when unknown), ``link_state`` (the topology Link of that port:
up, down, drained, planned; empty without a link) and ``port_cost_out`` (``true`` while a remediation costs
the port's BGP session out, from the device's intent overrides). The shipped ``optic-rx-power-low`` uses them
so that a port facing a shut or drained link (the peer's laser is off) does not page.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from fabric_ops.errors import ConfigurationError

from . import clock
from .adapters import alertname
from .choices import AlertStatus, RuleSource
from .engine import raise_alert, resolve_alert
from .matchers import fingerprint, match_all, parse_all
from .models import Alert, AlertRule, RuleState

logger = logging.getLogger(__name__)

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}  # fmt: skip


def parse_series(key: str) -> tuple[str, dict[str, str]]:
    """``queue|interface=Et1,queue=3`` -> (``queue``, {"interface": "Et1", "queue": "3"})."""
    measurement, _, inner = key.partition("|")
    tags = dict(part.split("=", 1) for part in inner.split(",") if "=" in part)
    return measurement, tags


def split_gnmi_path(path: str) -> list[tuple[str, dict[str, str]]]:
    """``/interfaces/interface[name=Ethernet1/1]/state`` -> [("interfaces", {}), ("interface", {"name": ...}), ...]
    (a ``/`` inside ``[...]`` belongs to the key value)."""
    elems: list[tuple[str, dict[str, str]]] = []
    name, keys, key_text, depth = "", {}, "", 0
    for char in path.strip() + "/":
        if depth:
            if char == "]":
                depth = 0
                key, _, value = key_text.partition("=")
                keys[key.strip()] = value.strip()
                key_text = ""
            else:
                key_text += char
        elif char == "[":
            depth = 1
        elif char == "/":
            if name:
                elems.append((name, keys))
            name, keys = "", {}
        else:
            name += char
    return elems


@lru_cache(maxsize=256)
def resolve_path(path: str) -> tuple[str, str, tuple[str, ...]]:
    """A gNMI leaf path -> (measurement, field, tag matchers) through the collector's own normaliser, so a rule
    written as a path means exactly the series the collector stores. Keys written ``*`` match every value."""
    from fabric_ops.telemetry.normalise import describe

    leaf = describe(split_gnmi_path(path))
    if leaf is None:
        raise ConfigurationError(
            f"rule path {path!r}: not a leaf the collector stores (see docs/telemetry.md; list keys are needed, "
            "e.g. interface[name=*])"
        )
    return leaf.measurement, leaf.field, tuple(f"{k}={v}" for k, v in leaf.tags if v != "*")


PORT_CONTEXT = ("port_admin_up", "port_oper_up", "link_state", "port_cost_out")
# Context read from the topology/config database (the others come from the latest values themselves).
DB_CONTEXT = ("port_admin_up", "link_state", "port_cost_out")

# device -> interface -> {context label: value}
PortState = Mapping[str, Mapping[str, Mapping[str, str]]]


def _flag(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def port_context(
    device: str, interface: str, latest: Mapping[str, Mapping[str, Any]], ports: PortState | None = None
) -> dict[str, str]:
    """The context labels of one port (see the module docstring): telemetry first, the database second."""
    known = dict((ports or {}).get(device, {}).get(interface, {}))
    fields = (latest.get(f"interface|interface={interface}") or {}).get("fields") or {}
    oper, admin = fields.get("oper_up"), fields.get("admin_up")
    context = {name: known.get(name, "") for name in PORT_CONTEXT}
    if isinstance(oper, bool):
        context["port_oper_up"] = _flag(oper)
    if isinstance(admin, bool):
        context["port_admin_up"] = _flag(admin)
    return context


def uses_port_context(rule: AlertRule, names: tuple[str, ...] = PORT_CONTEXT) -> bool:
    matchers = parse_all(rule.tag_matchers)
    return any(m.name in names for m in matchers)


def load_port_state(devices: Iterable[str]) -> dict[str, dict[str, dict[str, str]]]:
    """One read per tick of what :func:`port_context` needs from the database, for ``devices``."""
    from fabric_ops.topology.models import Interface, Link

    wanted = set(devices)
    out: dict[str, dict[str, dict[str, str]]] = {}

    def put(host: str, name: str, label: str, value: str) -> None:
        if host in wanted:
            out.setdefault(host, {}).setdefault(name, {})[label] = value

    for host, name in Interface.objects.filter(admin_up=False).values_list("device__hostname", "name"):
        put(host, name, "port_admin_up", "false")
    for ah, ai, bh, bi, state in Link.objects.values_list(
        "a_interface__device__hostname", "a_interface__name", "b_interface__device__hostname", "b_interface__name",
        "state",
    ):  # fmt: skip
        put(ah, ai, "link_state", state)
        put(bh, bi, "link_state", state)
    try:
        from fabric_ops.config.models import IntentAssignment
    except ImportError:  # config is always installed in the product
        return out
    for host, overrides in IntentAssignment.objects.filter(device__isnull=False).values_list(
        "device__hostname", "overrides"
    ):
        for name in (overrides or {}).get("bgp_cost_out") or ():
            put(host, str(name), "port_cost_out", "true")
    return out


def target_of(rule: AlertRule) -> tuple[str, str, list[str]]:
    if rule.path:
        measurement, field, matchers = resolve_path(rule.path)
        return measurement, field, [*matchers, *rule.tag_matchers]
    return rule.measurement, rule.field, list(rule.tag_matchers)


def evaluate(
    rule: AlertRule, device: str, latest: Mapping[str, Mapping[str, Any]], ports: PortState | None = None
) -> list[tuple[dict, float]]:
    """The series of one device that hold the rule's condition now: [(labels, value)]. ``ports`` is the
    database part of the port context (:func:`load_port_state`); without it only telemetry is used."""
    out = []
    compare = OPS.get(rule.op)
    if compare is None or rule.threshold is None:
        return out
    measurement_name, field, matchers = target_of(rule)
    contextual = uses_port_context(rule)
    for key, entry in latest.items():
        measurement, tags = parse_series(key)
        if measurement != measurement_name:
            continue
        value = (entry.get("fields") or {}).get(field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        seen = tags
        if contextual:  # context first, so a real series tag of the same name wins
            seen = {**port_context(device, tags.get("interface", ""), latest, ports), **tags}
        if not match_all(matchers, seen):
            continue
        if compare(float(value), rule.threshold):
            labels = {"alertname": alertname(rule.name), "device": device, **tags, "rule": rule.name}
            if rule.severity:
                labels["severity"] = rule.severity
            labels.update({str(k): str(v) for k, v in rule.labels.items()})
            out.append((labels, float(value)))
    return out


def apply(rule: AlertRule, holding: Iterable[tuple[dict, float]], now: datetime) -> int:
    """Advance pending states to firing after ``for_s``; resolve what no longer holds. Returns firing count."""
    holding = list(holding)
    current = {fingerprint(labels): (labels, value) for labels, value in holding}
    states = {s.fingerprint: s for s in RuleState.objects.filter(rule=rule)}
    firing = 0
    for fp, (labels, value) in current.items():
        state = states.get(fp)
        if state is None:
            state = RuleState.objects.create(rule=rule, fingerprint=fp, labels=labels, active_since=now, value=value)
        elif state.value != value:
            RuleState.objects.filter(pk=state.pk).update(value=value)
        if now - state.active_since >= timedelta(seconds=rule.for_s):
            measurement, field, _ = target_of(rule)
            condition = f"{measurement}.{field} = {value:g} ({rule.op} {rule.threshold:g})"
            notes = {
                "summary": f"{labels['device']} {condition}",
                "value": f"{value:g}",
                **{str(k): str(v) for k, v in rule.annotations.items()},
            }
            raise_alert(labels, notes, starts_at=state.active_since, source=f"rule:{rule.name}")
            firing += 1
    gone = [fp for fp in states if fp not in current]
    RuleState.objects.filter(rule=rule, fingerprint__in=gone).delete()
    for alert in Alert.objects.filter(source=f"rule:{rule.name}", status=AlertStatus.FIRING).exclude(
        fingerprint__in=list(current)
    ):
        resolve_alert(fingerprint=alert.fingerprint)
    return firing


def _safe_uses(rule: AlertRule, names: tuple[str, ...]) -> bool:
    try:
        return uses_port_context(rule, names)
    except ConfigurationError:  # reported when the rule is evaluated
        return False


def evaluate_telemetry_rules(
    devices: Iterable[str] | None = None, latest: Callable[[str], Mapping[str, Mapping[str, Any]]] | None = None
) -> int:
    """Evaluate every enabled telemetry rule over every device (beat). Returns the number of firing series."""
    rules = list(AlertRule.objects.filter(source=RuleSource.TELEMETRY, enabled=True))
    if not rules:
        return 0
    if devices is None:
        from fabric_ops.topology.models import Device

        devices = list(Device.objects.values_list("hostname", flat=True))
    if latest is None:
        from fabric_ops.telemetry.handoff import latest_values

        latest = latest_values
    now = clock.now()
    snapshots = {device: latest(device) for device in devices}
    ports: PortState | None = None
    if any(_safe_uses(rule, DB_CONTEXT) for rule in rules):
        ports = load_port_state(snapshots)
    firing = 0
    for rule in rules:
        try:
            holding = [hit for device, values in snapshots.items() for hit in evaluate(rule, device, values, ports)]
        except ConfigurationError as exc:  # one bad rule (a path we do not store) must not stop the others
            logger.error("alerting rule %s skipped: %s", rule.name, exc)
            continue
        firing += apply(rule, holding, now)
    return firing
