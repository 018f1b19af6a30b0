"""Python API of the virtual lab: :class:`Lab` in process (tests, tools), :class:`LabClient` over the control channel.

    with Lab.start(["lab-fabric"]) as lab:            # or a list of SwitchState, or a LabSpec
        record = lab.inject("link-down", "leaf1:Ethernet49/1", duration=30)
        lab.status()["faults"]
        lab.clear(record["id"])

``Lab.start(..., serve=False, thread=False)`` gives a lab without sockets or engine thread whose
time advances only through :meth:`Lab.advance`, for deterministic physics tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fabric_ops.devices.credentials import Credential, ensure_generated
from fabric_ops.errors import LabError

from .control import LabClient
from .faults import FAULT_KINDS, FaultManager
from .physics import PhysicsEngine
from .routing import Job, job_from_dict
from .runner import Frontends, initialise_platforms, platform_reboot, start_frontends
from .spec import LabSpec, build_from_db, spec_from_switches
from .state import SwitchState

logger = logging.getLogger(__name__)

__all__ = ["FAULT_KINDS", "Job", "Lab", "LabClient"]


class ManualClock:
    """A clock that moves only when told to: deterministic physics in tests."""

    def __init__(self, start: float = 1000.0, wall_start_ns: int = 1_800_000_000_000_000_000) -> None:
        self.now = start
        self._start = start
        self._wall = wall_start_ns

    def __call__(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return self._wall + int((self.now - self._start) * 1e9)


def _to_spec(source: Any) -> LabSpec:
    if isinstance(source, LabSpec):
        return source
    if source is None:
        return build_from_db(None)
    if isinstance(source, str):
        return build_from_db([source])
    if isinstance(source, dict):
        return spec_from_switches(source)
    items = list(source)
    if not items:  # an empty selection is a mistake, never "everything" (None asks for all fabrics)
        raise LabError("Lab.start got an empty list of switches or fabrics; pass None to emulate every fabric")
    if all(isinstance(s, SwitchState) for s in items):
        return spec_from_switches(items)
    if all(isinstance(s, str) for s in items):
        return build_from_db(items)
    raise LabError("Lab.start expects switches, fabric names or a LabSpec")


class Lab:
    """A running lab: switches, physics engine, faults and (optionally) the protocol front ends."""

    def __init__(
        self,
        spec: LabSpec,
        *,
        jobs: list[Job] | None = None,
        tick: float = 0.2,
        max_duty: float | None = 0.1,
        seed: int = 1,
        clock: Callable[[], float] | None = None,
        wall_ns: Callable[[], int] | None = None,
    ) -> None:
        self.spec = spec
        self.switches: dict[str, SwitchState] = spec.switches
        self.engine = PhysicsEngine(
            spec,
            jobs=jobs,
            tick=tick,
            max_duty=max_duty,
            seed=seed,
            clock=clock or time.monotonic,
            wall_ns=wall_ns or time.time_ns,
        )
        self.faults = FaultManager(self.engine, reboot=platform_reboot)
        self.frontends = Frontends()
        self.platforms: dict[str, str] = {}
        self.credential: Credential | None = None
        self.started_at = time.time()
        self._running = False
        self._manual: ManualClock | None = None

    @classmethod
    def start(
        cls,
        source: Any = None,
        *,
        serve: bool = True,
        thread: bool = True,
        frontends: tuple[str, ...] = ("eos", "huawei_vrp", "gnmi"),
        credential: Credential | None = None,
        tls: tuple[bytes, bytes] | None = None,
        manual_clock: bool = False,
        initialise: bool = True,
        **kwargs: Any,
    ) -> Lab:
        """Build and start a lab from switches, fabric names (None: all fabrics) or a LabSpec.

        ``serve=False`` skips the sockets; ``thread=False`` leaves stepping to :meth:`advance`;
        ``manual_clock=True`` (implies no thread) makes time move only through :meth:`advance`;
        ``initialise=False`` leaves the switches' configuration effects as built (bare SwitchState tests).
        """
        spec = _to_spec(source)
        platforms = initialise_platforms(list(spec.switches.values())) if initialise else {}
        if manual_clock:
            clock = ManualClock()
            kwargs.setdefault("clock", clock)
            kwargs.setdefault("wall_ns", clock.wall_ns)
            kwargs.setdefault("max_duty", None)
            thread = False
        lab = cls(spec, **kwargs)
        lab.platforms = platforms
        lab._manual = kwargs.get("clock") if manual_clock else None
        try:
            if serve:
                lab.credential = credential or ensure_generated(spec.credential)
                lab.frontends = start_frontends(list(spec.switches.values()), lab.credential, frontends, tls)
            lab.engine.step(0.0)
            if thread:
                lab.engine.start()
        except BaseException:
            lab.stop()
            raise
        lab._running = True
        logger.info("lab started: %d switches, %d links", len(lab.switches), len(lab.engine.links))
        return lab

    # ---------------------------------------------------------------- control
    def inject(self, kind: str, target: str, *, duration: float | None = None, **params: Any) -> dict[str, Any]:
        """Inject a fault; returns its record (id, kind, target, params, injected_at ns, ...)."""
        return self.faults.inject(kind, target, params, duration).to_dict()

    def clear(self, fault_id: str | None = None, *, all: bool = False) -> list[dict[str, Any]]:
        """Clear one fault by id, or every active fault with ``all=True``."""
        if all:
            return [r.to_dict() for r in self.faults.clear_all()]
        if not fault_id:
            raise LabError("name a fault id to clear, or clear all")
        return [self.faults.clear(fault_id).to_dict()]

    def set_jobs(self, jobs: list[Job | dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the GPU jobs generating traffic (dicts are validated like the control channel's)."""
        known = set(self.engine.hosts)
        parsed = [j if isinstance(j, Job) else job_from_dict(j, known) for j in jobs]
        self.engine.set_jobs(parsed)
        self.engine._wake.set()
        return self.jobs()

    def jobs(self) -> list[dict[str, Any]]:
        return [asdict(job) for job in self.engine.jobs]

    def advance(self, seconds: float, step: float | None = None) -> None:
        """Step the physics by hand (labs started with ``thread=False``); moves a manual clock along."""
        step = step or self.engine.base_tick
        remaining = seconds
        while remaining > 1e-9:
            dt = min(step, remaining)
            if self._manual is not None:
                self._manual.now += dt
            self.engine.step(dt)
            remaining -= dt

    def status(self) -> dict[str, Any]:
        engine = self.engine
        with engine.lock:
            links_up = sum(1 for lk in engine.links if lk.up)
            ports = sum(len(s.interfaces) for s in self.switches.values())
            return {
                "running": self._running,
                "fabrics": self.spec.fabrics,
                "switches": len(self.switches),
                "switches_alive": sum(1 for s in self.switches.values() if s.alive),
                "ports": ports,
                "links": {"total": len(engine.links), "up": links_up, "down": len(engine.links) - links_up},
                "flows": len(engine.flows),
                "jobs": [asdict(job) for job in engine.jobs],
                "ticks": engine.ticks,
                "tick_seconds": round(engine.tick_seconds, 3),
                "last_tick_ms": round(engine.last_tick_seconds * 1000, 2),
                "last_tick_cpu_ms": round(engine.last_tick_cpu_seconds * 1000, 2),
                "physics_cpu_seconds": round(engine.busy_seconds, 3),
                "late_ticks": engine.late_ticks,
                "optics_period_seconds": round(engine.optics_period, 2),
                "platforms": self.platforms,
                "frontends": dict(self.frontends.status),
                "frontend_stats": {
                    name: server.snapshot()
                    for name, server in self.frontends.servers.items()
                    if callable(getattr(server, "snapshot", None))
                },
                "faults": [r.to_dict() for r in self.faults.records()],
                "started_at": self.started_at,
            }

    def switch(self, hostname: str) -> SwitchState:
        try:
            return self.switches[hostname]
        except KeyError:
            raise LabError(f"unknown switch {hostname!r}") from None

    def stop(self) -> None:
        """Stop physics and front ends; active faults are recorded as cleared by the stop."""
        self.engine.stop()
        try:
            for record in self.faults.records():
                if record.active:
                    record.cleared_at = self.engine.wall_ns()
                    record.cleared_by = "lab-stop"
            self.faults.active.clear()
        finally:
            self.frontends.stop()
            self._running = False

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
