"""Remediation playbooks: ``playbooks/*.yml``, validated with file:line errors, matched to incidents.

A playbook says which incidents it handles (``match``), what to do (``actions``), how to tell that it worked
(``verification``), what to do when it did not (``rollback``), how long to leave the object alone afterwards
(``cooldown``), when to undo a drain (``restore``) and how much autonomy it has (``mode``). Schema:

    name: link-flap                      # unique; the push jobs say requested_by "playbook:<name>"
    description: ...
    priority: 100                        # the lowest number wins when several match
    match:
      kind: link-flap                    # detector kind(s): a string or a list
      scope: [link, interface]           # optional: incident scope kinds
      roles: [leaf, spine]               # optional: role of the incident's device
      conditions:                        # optional: all must hold on the incident's evidence
        - {field: transitions, op: ">=", value: 3}
      after: [pfc-storm]                 # optional: an escalation step, only for a deliberate retry (re-evaluation)
                                         # of an incident one of these playbooks already acted on
    mode: auto                           # auto | approve | dry-run
    actions:
      - {action: drain-link}
      - {action: notify, message: "drained a flapping link"}
    verification: {metric: link-carrying-bps, op: "<=", value: 1.0e+9, within: 30}
    rollback: true                       # undo the actions when verification fails
    cooldown: 600                        # seconds before this playbook acts on the same object again
    restore: {after_clean: 300, mode: auto}   # drains only: undo once the fault stayed clean this long
    guardrails: {min_uplink_fraction: 0.75, max_drained_per_pod: 4}

Why PyYAML's node API (``yaml.compose``): every problem is reported with the file and line of the offending key,
as the inventory does, so a typo in a playbook is fixed in seconds instead of silently never matching.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

from fabric_ops.errors import FabricOpsError

from .choices import Mode, ScopeKind
from .detectors import DETECTOR_KINDS

logger = logging.getLogger(__name__)

ACTIONS: dict[str, set[str]] = {
    # action -> allowed parameters
    "drain-link": set(),
    "cost-out-link": set(),  # drain by BGP: prepend towards the peer at both ends; the link stays up
    "restore-link": set(),
    "bounce-port": {"down_seconds"},
    "apply-intent": {"overrides"},
    "pfc-watchdog": {"detection_ms", "restoration_ms", "watchdog_action"},
    "disable-pfc": set(),  # PFC off for the lossless priorities on the incident's (storming) port only
    "move-dci": set(),
    "notify": {"message", "severity"},
}
METRICS = {
    # metric -> what it measures on the incident's object (fabric_ops.health.verification)
    "link-carrying-bps": "traffic still carried by the incident's link (both directions, both ends)",
    "link-oper-up": "1 when the incident's link is operationally up at both ends, else 0",
    "link-shut": "1 when both ends of the incident's link report admin-down and oper-down (a shutdown in force)",
    "link-utilisation": "busiest direction of the incident's link at either end, as a fraction of its speed",
    "port-pause-rx-ps": "PFC pause frames/s received on the incident's port at its priority",
    "device-pause-tx-ps": "PFC pause frames/s the incident's switch sends on its other ports (a storm spreading)",
    "queue-drops-pps": "drops/s of the incident's queue",
    "queue-ecn-marks-pps": "ECN marks/s of the incident's queue",
    "dci-degraded-carrying-bps": "traffic still carried by the degraded wavelengths' DCI links",
    "intent-applied": "1 when every pushed device's running configuration matches its intent",
}
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
TOP_KEYS = {
    "name", "description", "priority", "match", "mode", "actions", "verification", "rollback", "cooldown", "restore",
    "guardrails",
}  # fmt: skip
RESTORABLE = ("drain-link", "move-dci", "cost-out-link", "disable-pfc")  # undone by the scheduled restore
# Actions that each need their own object: two of them in one playbook would share one undo and one restore.
LINK_ACTIONS = {"drain-link", "cost-out-link", "bounce-port", "move-dci"}
GUARDRAIL_KEYS = {"min_uplink_fraction", "max_drained_per_pod", "max_host_lost_fraction", "max_actions_per_window"}


class PlaybookError(FabricOpsError):
    """One or more playbook files are invalid; every problem names its file and line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any

    def holds(self, evidence: Mapping[str, Any]) -> bool:
        actual = evidence.get(self.field)
        if actual is None:
            return False
        try:
            return bool(OPS[self.op](actual, self.value))
        except TypeError:
            return False


@dataclass(frozen=True)
class Action:
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    metric: str
    op: str
    value: float
    within: float

    def holds(self, measured: float) -> bool:
        return bool(OPS[self.op](measured, self.value))


@dataclass(frozen=True)
class Playbook:
    name: str
    source: str  # file:line of the document
    kinds: tuple[str, ...]
    actions: tuple[Action, ...]
    description: str = ""
    priority: int = 100
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    after: tuple[str, ...] = ()  # escalation: matches only once one of these playbooks acted on the incident
    mode: str = Mode.AUTO
    verification: Verification | None = None
    rollback: bool = True
    cooldown: float = 600.0
    restore_after: float | None = None
    restore_mode: str = Mode.AUTO
    guardrails: Mapping[str, float] = field(default_factory=dict)

    def matches(
        self, kind: str, scope: str, role: str, evidence: Mapping[str, Any], ran: Collection[str] | None = None
    ) -> bool:
        """``ran``: playbooks that already acted on the incident, when this is a deliberate retry (else None)."""
        if kind not in self.kinds:
            return False
        if self.after and not (ran and set(self.after) & set(ran)):
            return False
        if self.scopes and scope not in self.scopes:
            return False
        if self.roles and role not in self.roles:
            return False
        return all(c.holds(evidence) for c in self.conditions)

    @property
    def acts(self) -> bool:
        """Whether it changes the network (anything but notify)."""
        return any(a.action != "notify" for a in self.actions)


class _Reader:
    """Walks composed YAML nodes, collecting problems as ``file:line: message``."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.path}:{line}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if not isinstance(name, str):
                self.problem(key, f"{what}: keys must be strings")
                continue
            if name in out:
                self.problem(key, f"{what}: duplicate key {name!r}")
                continue
            out[name] = (key, value)
        return out

    def unknown(self, items: Mapping[str, tuple[yaml.Node, yaml.Node]], allowed: set[str], what: str) -> None:
        for name, (key, _) in items.items():
            if name not in allowed:
                self.problem(key, f"{what}: unknown key {name!r} (allowed: {', '.join(sorted(allowed))})")

    @staticmethod
    def plain(node: yaml.Node) -> Any:
        return yaml.safe_load(yaml.serialize(node))

    def scalar(self, node: yaml.Node, types: tuple[type, ...], what: str) -> Any:
        value = self.plain(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) and bool not in types:
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and float in types and int not in types:
            value = float(value)
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            got = node.value if isinstance(node, yaml.ScalarNode) else type(node).__name__[: -len("Node")].lower()
            self.problem(node, f"{what} must be {names}, got {got!r}")
            return None
        return value

    def string_list(self, node: yaml.Node, what: str, allowed: tuple[str, ...] | set[str]) -> tuple[str, ...]:
        items = (
            [node] if isinstance(node, yaml.ScalarNode) else node.value if isinstance(node, yaml.SequenceNode) else None
        )
        if items is None:
            self.problem(node, f"{what} must be a string or a list of strings")
            return ()
        out = []
        for item in items:
            value = self.scalar(item, (str,), what)
            if value is None:
                continue
            if value in ("*", "all", "") or not value.strip():
                self.problem(item, f"{what}: {value!r} is a wildcard; name what the playbook handles")
            elif allowed and value not in allowed:
                self.problem(item, f"{what}: unknown {value!r} (known: {', '.join(sorted(allowed))})")
            else:
                out.append(value)
        return tuple(out)


def _parse(reader: _Reader, node: yaml.Node) -> Playbook | None:
    top = reader.mapping(node, "playbook")
    if top is None:
        return None
    reader.unknown(top, TOP_KEYS, "playbook")
    for required in ("name", "match", "actions"):
        if required not in top:
            reader.problem(node, f"playbook: missing required key {required!r}")
    name = reader.scalar(top["name"][1], (str,), "name") if "name" in top else None
    kinds: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    conditions: list[Condition] = []
    after: tuple[str, ...] = ()
    if "match" in top:
        match = reader.mapping(top["match"][1], "match")
        if match is not None:
            reader.unknown(match, {"kind", "scope", "roles", "conditions", "after"}, "match")
            if "kind" not in match:
                reader.problem(top["match"][1], "match: missing required key 'kind'")
            else:
                kinds = reader.string_list(match["kind"][1], "match.kind", DETECTOR_KINDS)
            if "scope" in match:
                scopes = reader.string_list(match["scope"][1], "match.scope", set(ScopeKind.values))
            if "roles" in match:
                roles = reader.string_list(match["roles"][1], "match.roles", ())
            if "conditions" in match:
                conditions = _conditions(reader, match["conditions"][1])
            if "after" in match:
                after = reader.string_list(match["after"][1], "match.after", ())
                if name is not None and name in after:
                    reader.problem(match["after"][1], f"match.after: {name!r} cannot escalate from itself")
    actions = _actions(reader, top["actions"][1]) if "actions" in top else []
    mode = Mode.AUTO
    if "mode" in top:
        value = reader.scalar(top["mode"][1], (str,), "mode")
        if value is not None and value not in Mode.values:
            reader.problem(top["mode"][1], f"mode: {value!r} is not one of {', '.join(Mode.values)}")
        mode = value or Mode.AUTO
    verification = _verification(reader, top["verification"][1]) if "verification" in top else None
    if verification is None and any(a.action != "notify" for a in actions) and "verification" not in top:
        reader.problem(node, "playbook: actions that change the network need a 'verification'")
    numbers: dict[str, Any] = {}
    for key, types in (("priority", (int,)), ("cooldown", (float, int)), ("rollback", (bool,))):
        if key in top:
            numbers[key] = reader.scalar(top[key][1], types, key)
            if isinstance(numbers[key], int | float) and not isinstance(numbers[key], bool) and numbers[key] < 0:
                reader.problem(top[key][1], f"{key} must not be negative")
    restore_after, restore_mode = None, Mode.AUTO
    if "restore" in top:
        restore = reader.mapping(top["restore"][1], "restore")
        if restore is not None:
            reader.unknown(restore, {"after_clean", "mode"}, "restore")
            if "after_clean" not in restore:
                reader.problem(top["restore"][1], "restore: missing required key 'after_clean'")
            else:
                restore_after = reader.scalar(restore["after_clean"][1], (float, int), "restore.after_clean")
            if "mode" in restore:
                restore_mode = reader.scalar(restore["mode"][1], (str,), "restore.mode") or Mode.AUTO
                if restore_mode not in Mode.values:
                    reader.problem(restore["mode"][1], f"restore.mode: {restore_mode!r} is not one of "
                                   f"{', '.join(Mode.values)}")  # fmt: skip
            if not any(a.action in RESTORABLE for a in actions):
                reader.problem(top["restore"][1], f"restore: only {', '.join(RESTORABLE)} can be restored")
    guardrails: dict[str, float] = {}
    if "guardrails" in top:
        gmap = reader.mapping(top["guardrails"][1], "guardrails")
        if gmap is not None:
            reader.unknown(gmap, GUARDRAIL_KEYS, "guardrails")
            for key, (_, value) in gmap.items():
                if key in GUARDRAIL_KEYS:
                    number = reader.scalar(value, (float, int), f"guardrails.{key}")
                    if number is not None:
                        guardrails[key] = float(number)
    _check_action_scopes(reader, top, actions, scopes)
    if reader.problems or name is None:
        return None
    return Playbook(
        name=name,
        source=f"{reader.path}:{node.start_mark.line + 1}",
        kinds=kinds,
        actions=tuple(actions),
        description=str(reader.plain(top["description"][1])) if "description" in top else "",
        priority=numbers.get("priority") or 100,
        scopes=scopes,
        roles=roles,
        conditions=tuple(conditions),
        after=after,
        mode=mode,
        verification=verification,
        rollback=True if numbers.get("rollback") is None else numbers["rollback"],
        cooldown=float(numbers["cooldown"]) if numbers.get("cooldown") is not None else 600.0,
        restore_after=float(restore_after) if restore_after is not None else None,
        restore_mode=restore_mode,
        guardrails=guardrails,
    )


def _check_action_scopes(
    reader: _Reader, top: dict[str, tuple[yaml.Node, yaml.Node]], actions: list[Action], scopes: tuple[str, ...]
) -> None:
    """The new per-object actions need an object of their kind: a link to cost out, a port to turn PFC off on."""
    names = [a.action for a in actions]
    where = top["actions"][1] if "actions" in top else None
    draining = sorted(set(names) & {"drain-link", "cost-out-link", "move-dci"})
    if len(draining) > 1:
        reader.problem(where, f"actions: {' and '.join(draining)} both take the link out; pick one")
    if "cost-out-link" in names and scopes and "link" not in scopes:
        reader.problem(top["match"][1], "action cost-out-link acts on a link: match.scope must include 'link'")
    if "disable-pfc" in names and scopes and not set(scopes) & {"interface"}:
        reader.problem(top["match"][1], "action disable-pfc acts on a port: match.scope must include 'interface'")


def _conditions(reader: _Reader, node: yaml.Node) -> list[Condition]:
    if not isinstance(node, yaml.SequenceNode):
        reader.problem(node, "match.conditions must be a list")
        return []
    out = []
    for item in node.value:
        cmap = reader.mapping(item, "condition")
        if cmap is None:
            continue
        reader.unknown(cmap, {"field", "op", "value"}, "condition")
        if not {"field", "op", "value"} <= set(cmap):
            reader.problem(item, "condition needs field, op and value")
            continue
        fname = reader.scalar(cmap["field"][1], (str,), "condition.field")
        op = reader.scalar(cmap["op"][1], (str,), "condition.op")
        if op is not None and op not in OPS:
            reader.problem(cmap["op"][1], f"condition.op: {op!r} is not one of {' '.join(OPS)}")
            continue
        if fname and op:
            out.append(Condition(fname, op, reader.plain(cmap["value"][1])))
    return out


def _actions(reader: _Reader, node: yaml.Node) -> list[Action]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        reader.problem(node, "actions must be a non-empty list")
        return []
    out = []
    for item in node.value:
        amap = reader.mapping(item, "action")
        if amap is None:
            continue
        if "action" not in amap:
            reader.problem(item, "action: missing required key 'action'")
            continue
        name = reader.scalar(amap["action"][1], (str,), "action")
        if name is None:
            continue
        if name not in ACTIONS:
            reader.problem(amap["action"][1], f"action: unknown {name!r} (known: {', '.join(sorted(ACTIONS))})")
            continue
        reader.unknown({k: v for k, v in amap.items() if k != "action"}, ACTIONS[name], f"action {name}")
        params = {k: reader.plain(v) for k, (_, v) in amap.items() if k != "action"}
        if name == "apply-intent":
            overrides = params.get("overrides")
            if not isinstance(overrides, dict) or not overrides:
                reader.problem(item, "action apply-intent: 'overrides' must be a non-empty mapping of intent fields")
            else:
                from fabric_ops.config.models.intents import overridable_fields

                unknown = sorted(set(overrides) - overridable_fields())
                if unknown:
                    reader.problem(amap["overrides"][1], f"action apply-intent: unknown intent field(s) "
                                   f"{', '.join(unknown)}")  # fmt: skip
        if name == "notify" and not isinstance(params.get("message", ""), str):
            reader.problem(item, "action notify: 'message' must be a string")
        out.append(Action(name, params))
    return out


def _verification(reader: _Reader, node: yaml.Node) -> Verification | None:
    vmap = reader.mapping(node, "verification")
    if vmap is None:
        return None
    reader.unknown(vmap, {"metric", "op", "value", "within"}, "verification")
    missing = {"metric", "op", "value", "within"} - set(vmap)
    if missing:
        reader.problem(node, f"verification: missing {', '.join(sorted(missing))}")
        return None
    metric = reader.scalar(vmap["metric"][1], (str,), "verification.metric")
    if metric is not None and metric not in METRICS:
        reader.problem(
            vmap["metric"][1], f"verification.metric: unknown {metric!r} (known: {', '.join(sorted(METRICS))})"
        )
        metric = None
    op = reader.scalar(vmap["op"][1], (str,), "verification.op")
    if op is not None and op not in OPS:
        reader.problem(vmap["op"][1], f"verification.op: {op!r} is not one of {' '.join(OPS)}")
        op = None
    value = reader.scalar(vmap["value"][1], (float, int), "verification.value")
    within = reader.scalar(vmap["within"][1], (float, int), "verification.within")
    if within is not None and within <= 0:
        reader.problem(vmap["within"][1], "verification.within must be positive (seconds)")
        within = None
    if None in (metric, op, value, within):
        return None
    return Verification(metric, op, float(value), float(within))


def load_file(path: Path) -> tuple[list[Playbook], list[str]]:
    """Every playbook document in one file, and every problem found (``file:line: message``)."""
    reader = _Reader(path)
    try:
        nodes = list(yaml.compose_all(path.read_text()))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return [], [f"{path}:{line}: YAML syntax: {getattr(exc, 'problem', exc)}"]
    except OSError as exc:
        return [], [f"{path}: cannot read: {exc}"]
    books = []
    for node in nodes:
        if node is None:
            continue
        before = len(reader.problems)
        book = _parse(reader, node)
        if book is not None and len(reader.problems) == before:
            books.append(book)
    return books, reader.problems


def load_playbooks(directory: Path | str | None = None) -> list[Playbook]:
    """Every playbook in ``directory`` (default ``settings.PLAYBOOKS_DIR``); PlaybookError lists all problems."""
    books, problems = validate(directory)
    if problems:
        raise PlaybookError(problems)
    return books


def validate(directory: Path | str | None = None) -> tuple[list[Playbook], list[str]]:
    root = Path(directory or settings.PLAYBOOKS_DIR)
    files = sorted(root.glob("*.yml")) + sorted(root.glob("*.yaml"))
    books: list[Playbook] = []
    problems: list[str] = []
    if not files:
        problems.append(f"{root}: no playbooks (*.yml)")
    seen: dict[str, str] = {}
    for path in files:
        found, errors = load_file(path)
        problems.extend(errors)
        for book in found:
            if book.name in seen:
                problems.append(f"{book.source}: duplicate playbook name {book.name!r} (first at {seen[book.name]})")
                continue
            seen[book.name] = book.source
            books.append(book)
    for book in books:
        unknown = [name for name in book.after if name not in seen]
        if unknown:
            problems.append(f"{book.source}: match.after names unknown playbook(s) {', '.join(unknown)}")
    return books, problems


def select(
    books: list[Playbook],
    kind: str,
    scope: str,
    role: str,
    evidence: Mapping[str, Any],
    ran: Collection[str] | None = None,
) -> Playbook | None:
    """The matching playbook with the lowest priority number (then name), or None.

    ``ran`` (the playbooks that already acted on the incident) is passed for a deliberate retry only; then an
    escalation step (``match.after``) of one of them can match. A re-delivered task passes None and never
    escalates.
    """
    matching = [b for b in books if b.matches(kind, scope, role, evidence, ran)]
    return min(matching, key=lambda b: (b.priority, b.name)) if matching else None
