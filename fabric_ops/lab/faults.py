"""Fault injection: validated, recorded with timestamps, applied to the physics, cleared by hand or by timer.

Every fault is a :class:`FaultRecord` (id, kind, target, params, injected_at and
cleared_at in Unix nanoseconds) so benchmarks can measure detection latency from
the moment the lab broke something.

Targets (see docs/lab.md):

* a link: ``switch:ifname`` (either end, a leaf's host port too), ``link:<id>`` or the bare link id,
  or ``host:<hostname>:<nic>`` for a GPU NIC's cable;
* a port's receiver (crc-errors, fec-degradation, optic-decay): ``switch:ifname``; a link id means both ends;
* a switch: its hostname; a span: its name;
* a GPU NIC (pfc-storm, incast): ``host:<hostname>:<nic>`` or the leaf port it is cabled to.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from fabric_ops.errors import LabError

from .physics import PhysicsEngine
from .routing import LabLink
from .spec import HOST_PREFIX, NicSpec
from .state import SwitchState

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 1000


@dataclass(frozen=True)
class Param:
    """One fault parameter: type, default and the closed range it must fall in."""

    kind: type
    default: float | int
    low: float
    high: float
    help: str = ""

    def parse(self, fault: str, name: str, raw: Any) -> float | int:
        try:
            value = self.kind(float(raw)) if self.kind is int else float(raw)
        except (TypeError, ValueError):
            raise LabError(f"fault {fault}: parameter {name}={raw!r} is not a number") from None
        if self.kind is int and float(raw) != int(float(raw)):
            raise LabError(f"fault {fault}: parameter {name}={raw!r} must be a whole number")
        if not (self.low <= value <= self.high) or math.isnan(value):
            raise LabError(f"fault {fault}: parameter {name}={raw!r} is out of range [{self.low:g}, {self.high:g}]")
        return value


@dataclass
class FaultRecord:
    id: str
    kind: str
    target: str
    params: dict[str, float | int]
    injected_at: int  # Unix ns
    duration: float | None = None  # seconds until it clears itself, None = until cleared
    cleared_at: int | None = None
    cleared_by: str | None = None  # operator | timer | completed | lab-stop
    # The ports the fault acts on as "switch:ifname" (host side as "host:<name>:<nic>"), so a detector's finding
    # can be matched to the injection without resolving link ids; empty for switch faults.
    ports: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["active"] = self.active
        return data


@dataclass
class _Active:
    record: FaultRecord
    kind: FaultKind
    subject: Any
    started: float  # engine clock
    expires: float | None
    state: dict[str, Any] = field(default_factory=dict)


class FaultKind:
    """Base class: resolve the target, then start / tick / stop the effect on the engine."""

    name = ""
    target_help = ""
    params: dict[str, Param] = {}

    def resolve(self, mgr: FaultManager, target: str) -> tuple[str, Any]:
        raise NotImplementedError

    def start(self, mgr: FaultManager, act: _Active) -> None:
        pass

    def tick(self, mgr: FaultManager, act: _Active, now: float) -> bool:
        """Move the effect on; return True when the fault has run its course (e.g. a reboot finished)."""
        return False

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        pass


class _LinkFault(FaultKind):
    target_help = "switch:ifname, link:<id> or host:<hostname>:<nic>"

    def resolve(self, mgr: FaultManager, target: str) -> tuple[str, LabLink]:
        link = mgr.find_link(target)
        return f"link:{link.spec.id}", link


class LinkDown(_LinkFault):
    name = "link-down"

    def start(self, mgr: FaultManager, act: _Active) -> None:
        act.subject.fault_down += 1

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        act.subject.fault_down -= 1


class LinkFlap(_LinkFault):
    name = "link-flap"
    params = {"period": Param(float, 10.0, 0.2, 3600.0, "seconds per down+up cycle")}

    def tick(self, mgr: FaultManager, act: _Active, now: float) -> bool:
        period = act.record.params["period"]
        down = ((now - act.started) % period) < period / 2
        if down != act.state.get("down", False):
            act.subject.fault_down += 1 if down else -1
            act.state["down"] = down
        return False

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        if act.state.get("down"):
            act.subject.fault_down -= 1


class _PortFault(FaultKind):
    target_help = "switch:ifname (that end's receiver) or link:<id> (both ends)"

    def resolve(self, mgr: FaultManager, target: str) -> tuple[str, list[tuple[str, str]]]:
        if target.startswith("link:") or target.isdigit() or target.startswith(HOST_PREFIX):
            link = mgr.find_link(target)
            ports = [(sw.hostname, iface.name) for sw, iface in link.ends()]
            return f"link:{link.spec.id}", ports
        switch, iface = mgr.find_port(target)
        return f"{switch.hostname}:{iface}", [(switch.hostname, iface)]


class CrcErrors(_PortFault):
    name = "crc-errors"
    params = {"rate": Param(float, 1e-3, 1e-12, 1.0, "fraction of received frames failing FCS")}

    def start(self, mgr: FaultManager, act: _Active) -> None:
        for port in act.subject:
            mgr.engine.optics[port].crc_rate = act.record.params["rate"]

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        for port in act.subject:
            mgr.engine.optics[port].crc_rate = 0.0


class FecDegradation(_PortFault):
    name = "fec-degradation"
    params = {
        "target_ber": Param(float, 1e-3, 1e-12, 0.5, "pre-FEC BER reached at the end of the ramp"),
        "start_ber": Param(float, 1e-8, 1e-15, 0.5, "pre-FEC BER at injection"),
        "ramp_seconds": Param(float, 60.0, 0.0, 86400.0, "seconds of log-linear ramp"),
    }

    def tick(self, mgr: FaultManager, act: _Active, now: float) -> bool:
        p = act.record.params
        frac = 1.0 if p["ramp_seconds"] <= 0 else min(1.0, (now - act.started) / p["ramp_seconds"])
        lo, hi = math.log10(p["start_ber"]), math.log10(p["target_ber"])
        ber = 10 ** (lo + (hi - lo) * frac)
        for port in act.subject:
            mgr.engine.optics[port].ber_override = ber
        return False

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        for port in act.subject:
            mgr.engine.optics[port].ber_override = None


class OpticDecay(_PortFault):
    name = "optic-decay"
    params = {"dbm_per_minute": Param(float, 1.0, 1e-6, 600.0, "received power lost per minute")}

    def tick(self, mgr: FaultManager, act: _Active, now: float) -> bool:
        loss = act.record.params["dbm_per_minute"] * (now - act.started) / 60.0
        for port in act.subject:
            mgr.engine.optics[port].decay_db = loss
        return False

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        for port in act.subject:  # clearing means the optic was cleaned or replaced
            mgr.engine.optics[port].decay_db = 0.0


class _NicFault(FaultKind):
    target_help = "host:<hostname>:<nic> or the leaf port it is cabled to (switch:ifname)"

    def resolve(self, mgr: FaultManager, target: str) -> tuple[str, NicSpec]:
        nic = mgr.find_nic(target)
        return f"{HOST_PREFIX}{nic.host}:{nic.nic}", nic


class PfcStorm(_NicFault):
    name = "pfc-storm"
    params = {"priority": Param(int, 3, 0, 7, "priority the stuck NIC keeps pausing")}

    def start(self, mgr: FaultManager, act: _Active) -> None:
        nic = act.subject
        mgr.engine.set_storm((nic.leaf, nic.interface), act.record.params["priority"])

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        nic = act.subject
        mgr.engine.set_storm((nic.leaf, nic.interface), None)


class Incast(_NicFault):
    name = "incast"
    params = {
        "fan_in": Param(int, 8, 1, 1024, "senders converging on the NIC"),
        "load": Param(float, 1.0, 0.01, 1.0, "fraction of line rate each sender adds"),
    }

    def start(self, mgr: FaultManager, act: _Active) -> None:
        target: NicSpec = act.subject
        others = [n for n in mgr.engine.spec.nics if n.host != target.host]
        others.sort(key=lambda n: (n.rail != target.rail, n.host, n.rail))
        senders = others[: act.record.params["fan_in"]]
        load = act.record.params["load"]
        mgr.engine.set_incast(act.record.id, [(s, target, load * s.speed_gbps * 1e9) for s in senders])

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        mgr.engine.set_incast(act.record.id, None)


class _SwitchFault(FaultKind):
    target_help = "a switch hostname"

    def resolve(self, mgr: FaultManager, target: str) -> tuple[str, SwitchState]:
        switch = mgr.engine.switches.get(target)
        if switch is None:
            raise LabError(f"unknown switch {target!r}")
        if not switch.alive:
            raise LabError(f"switch {target} is already down")
        return target, switch

    def start(self, mgr: FaultManager, act: _Active) -> None:
        with act.subject.lock:
            act.subject.alive = False
        logger.warning("switch %s is down (%s)", act.subject.hostname, act.record.id)

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        mgr.boot(act.subject)


class SwitchDown(_SwitchFault):
    """Power loss or a hung control plane; clearing it powers the switch back on (a reboot)."""

    name = "switch-down"


class SwitchReboot(_SwitchFault):
    name = "switch-reboot"
    params = {"down_seconds": Param(float, 30.0, 0.0, 3600.0, "seconds before the switch answers again")}

    def tick(self, mgr: FaultManager, act: _Active, now: float) -> bool:
        return now - act.started >= act.record.params["down_seconds"]


class SpanDegradation(FaultKind):
    name = "dci-span-degradation"
    target_help = "an optical span name"
    params = {"osnr_drop_db": Param(float, 6.0, 0.01, 40.0, "OSNR lost by every wavelength over the span")}

    def resolve(self, mgr: FaultManager, target: str) -> tuple[str, str]:
        if target not in mgr.engine.spec.spans:
            known = ", ".join(sorted(mgr.engine.spec.spans)) or "none in this lab"
            raise LabError(f"unknown span {target!r} (spans: {known})")
        return target, target

    def start(self, mgr: FaultManager, act: _Active) -> None:
        drops = mgr.engine.span_drop_db
        drops[act.subject] = drops.get(act.subject, 0.0) + act.record.params["osnr_drop_db"]

    def stop(self, mgr: FaultManager, act: _Active) -> None:
        drops = mgr.engine.span_drop_db
        drops[act.subject] = drops.get(act.subject, 0.0) - act.record.params["osnr_drop_db"]
        if abs(drops[act.subject]) < 1e-9:
            del drops[act.subject]


FAULT_KINDS: dict[str, FaultKind] = {
    k.name: k()
    for k in (
        LinkDown,
        LinkFlap,
        CrcErrors,
        FecDegradation,
        OpticDecay,
        PfcStorm,
        Incast,
        SwitchDown,
        SwitchReboot,
        SpanDegradation,
    )
}


class FaultManager:
    """Owns active faults; the engine calls :meth:`tick` at the start of every physics step."""

    def __init__(self, engine: PhysicsEngine, reboot: Callable[[SwitchState], None] | None = None) -> None:
        self.engine = engine
        self.reboot = reboot
        self.active: dict[str, _Active] = {}
        self.history: list[FaultRecord] = []
        self._ids = itertools.count(1)
        engine.faults = self

    # ---------------------------------------------------------------- targets
    def find_port(self, target: str) -> tuple[SwitchState, str]:
        hostname, sep, ifname = target.partition(":")
        if not sep or not ifname:
            raise LabError(f"target {target!r}: expected switch:ifname")
        switch = self.engine.switches.get(hostname)
        if switch is None:
            raise LabError(f"target {target!r}: unknown switch {hostname!r}")
        if ifname not in switch.interfaces:
            raise LabError(f"target {target!r}: switch {hostname} has no interface {ifname!r}")
        return switch, ifname

    def find_link(self, target: str) -> LabLink:
        raw = target[len("link:") :] if target.startswith("link:") else target
        if raw.isdigit():
            link = self.engine.links_by_id.get(int(raw))
            if link is None:
                raise LabError(f"target {target!r}: no link with id {raw} in this lab")
            return link
        if target.startswith(HOST_PREFIX):
            nic = self.find_nic(target)
            return self.engine.link_by_port[(nic.leaf, nic.interface)]
        switch, ifname = self.find_port(target)
        link = self.engine.link_by_port.get((switch.hostname, ifname))
        if link is None:
            raise LabError(f"target {target!r}: interface is not cabled to anything in this lab")
        return link

    def find_nic(self, target: str) -> NicSpec:
        if target.startswith(HOST_PREFIX):
            host, sep, nic_name = target[len(HOST_PREFIX) :].partition(":")
            nic = self.engine.nic_by_key.get((host, nic_name))
            if not sep or nic is None:
                raise LabError(f"target {target!r}: no GPU NIC {nic_name!r} on host {host!r}")
            return nic
        switch, ifname = self.find_port(target)
        for nic in self.engine.spec.nics:
            if (nic.leaf, nic.interface) == (switch.hostname, ifname):
                return nic
        raise LabError(f"target {target!r}: port has no GPU NIC cabled to it")

    def _ports(self, subject: Any) -> list[str]:
        if isinstance(subject, LabLink):
            return [f"{a}:{b}" for a, b in (subject.spec.a, subject.spec.b)]
        if isinstance(subject, NicSpec):
            return [f"{subject.leaf}:{subject.interface}", f"{HOST_PREFIX}{subject.host}:{subject.nic}"]
        if isinstance(subject, list):  # receiver ports
            return [f"{a}:{b}" for a, b in subject]
        if isinstance(subject, str):  # a span: the DCI ports whose wavelengths ride it
            return sorted(
                f"{sw.hostname}:{ch.interface}"
                for sw in self.engine.switches.values()
                for ch in sw.channels.values()
                if subject in ch.spans
            )
        return []

    # ------------------------------------------------------------ operations
    def inject(
        self, kind: str, target: str, params: dict[str, Any] | None = None, duration: float | None = None
    ) -> FaultRecord:
        """Validate and apply a fault; LabError names the kind, target or parameter at fault."""
        fault = FAULT_KINDS.get(kind)
        if fault is None:
            raise LabError(f"unknown fault kind {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
        if not isinstance(target, str) or not target:
            raise LabError(f"fault {kind}: a target is required ({fault.target_help})")
        params = dict(params or {})
        unknown = sorted(set(params) - set(fault.params))
        if unknown:
            allowed = ", ".join(fault.params) or "none"
            raise LabError(f"fault {kind}: unknown parameter(s) {', '.join(unknown)} (allowed: {allowed})")
        values = {n: p.parse(kind, n, params[n]) if n in params else p.default for n, p in fault.params.items()}
        if duration is not None:
            try:
                duration = float(duration)
            except (TypeError, ValueError):
                raise LabError(f"fault {kind}: --for {duration!r} is not a number of seconds") from None
            if not (0 < duration <= 7 * 86400):
                raise LabError(f"fault {kind}: --for must be between 0 and 604800 seconds, got {duration:g}")
        with self.engine.lock:
            name, subject = fault.resolve(self, target)
            for act in self.active.values():
                if act.record.kind == kind and act.record.target == name:
                    raise LabError(f"fault {act.record.id} ({kind}) is already active on {name}; clear it first")
            now = self.engine.now()
            record = FaultRecord(
                id=f"f{next(self._ids)}",
                kind=kind,
                target=name,
                params=values,
                injected_at=self.engine.wall_ns(),
                duration=duration,
                ports=self._ports(subject),
            )
            act = _Active(record, fault, subject, now, now + duration if duration else None)
            fault.start(self, act)
            fault.tick(self, act, now)
            self.active[record.id] = act
            self._remember(record)
            self.engine.settle_links()
        self.engine._wake.set()
        logger.warning("fault %s injected: %s on %s %s", record.id, kind, name, values)
        return record

    def clear(self, fault_id: str, cleared_by: str = "operator") -> FaultRecord:
        with self.engine.lock:
            act = self.active.pop(fault_id, None)
            if act is None:
                known = next((r for r in self.history if r.id == fault_id), None)
                if known is not None:
                    raise LabError(f"fault {fault_id} was already cleared ({known.cleared_by})")
                raise LabError(f"unknown fault id {fault_id!r}")
            act.kind.stop(self, act)
            act.record.cleared_at = self.engine.wall_ns()
            act.record.cleared_by = cleared_by
            self.engine.settle_links()
        self.engine._wake.set()
        logger.warning("fault %s cleared (%s)", fault_id, cleared_by)
        return act.record

    def clear_all(self, cleared_by: str = "operator") -> list[FaultRecord]:
        with self.engine.lock:
            return [self.clear(fid, cleared_by) for fid in list(self.active)]

    def tick(self, now: float) -> None:
        """Called by the engine under its lock: expire timed faults, then let the others move."""
        for fid, act in list(self.active.items()):
            if act.expires is not None and now >= act.expires:
                self.clear(fid, "timer")
            elif act.kind.tick(self, act, now):
                self.clear(fid, "completed")

    def records(self) -> list[FaultRecord]:
        return list(self.history)

    def boot(self, switch: SwitchState) -> None:
        """Bring a switch back as if from power-on: the platform reloads its startup config, counters restart."""
        if self.reboot is not None:
            try:
                self.reboot(switch)
            except Exception:  # a platform bug must not leave the switch dead forever
                logger.exception("%s: platform reboot failed; bringing the switch back with its last state", switch)
        self.engine.reset_counters(switch)
        with switch.lock:
            switch.boot_time = time.time()
            switch.alive = True
        logger.warning("switch %s is back up", switch.hostname)

    def _remember(self, record: FaultRecord) -> None:
        self.history.append(record)
        if len(self.history) > HISTORY_LIMIT:
            drop = next((r for r in self.history if not r.active), None)
            if drop is not None:
                self.history.remove(drop)
