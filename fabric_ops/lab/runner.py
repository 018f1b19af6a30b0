"""Start and stop the lab's protocol front ends (eAPI, SSH CLI, gNMI) around a set of switches.

Each front end is a package next to this module exposing ``serve(switches, credential[, tls])``
and, for switch OS emulations, ``initialise(switch)`` and ``reboot(switch)``. A front end
that is not installed is reported (status shows it) instead of failing the whole lab.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError

from .state import SwitchState

logger = logging.getLogger(__name__)

# Front end package -> which switches it serves (a platform name, or None for every switch).
FRONTENDS: dict[str, str | None] = {"eos": "eos", "huawei_vrp": "huawei_vrp", "gnmi": None}


def load_frontend(name: str) -> ModuleType | None:
    """Import ``fabric_ops.lab.<name>``; None only when the package itself is absent (a bug inside it raises)."""
    module_name = f"fabric_ops.lab.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def platform_reboot(switch: SwitchState) -> None:
    """Run the platform's power-on path (running-config := startup-config, sessions dropped)."""
    module = load_frontend(switch.platform) if switch.platform in FRONTENDS else None
    if module is not None and hasattr(module, "reboot"):
        module.reboot(switch)


def initialise_platforms(switches: list[SwitchState]) -> dict[str, str]:
    """Give every switch its platform's startup configuration (before physics reads admin state)."""
    report: dict[str, str] = {}
    for platform in sorted({s.platform for s in switches}):
        module = load_frontend(platform) if platform in FRONTENDS else None
        if module is None or not hasattr(module, "initialise"):
            report[platform] = "missing"
            logger.warning("no front end for platform %s: its switches get no configuration", platform)
            continue
        for switch in switches:
            if switch.platform == platform:
                module.initialise(switch)
        report[platform] = "initialised"
    return report


@dataclass
class Frontends:
    """The servers a lab started, so they stop together."""

    servers: dict[str, Any] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        for name, server in list(self.servers.items()):
            try:
                server.stop()
            except Exception:  # keep stopping the others; a half-stopped lab would hold its ports
                logger.exception("stopping the %s front end failed", name)
            self.servers.pop(name, None)
            self.status[name] = "stopped"


def start_frontends(
    switches: list[SwitchState],
    credential: Credential,
    names: tuple[str, ...] = tuple(FRONTENDS),
    tls: tuple[bytes, bytes] | None = None,
) -> Frontends:
    """Serve every requested front end for the switches it applies to; stop all if one fails to bind."""
    out = Frontends()
    try:
        for name in names:
            if name not in FRONTENDS:
                raise LabError(f"unknown lab front end {name!r} (known: {', '.join(FRONTENDS)})")
            platform = FRONTENDS[name]
            targets = [s for s in switches if platform is None or s.platform == platform]
            if not targets:
                out.status[name] = "no switches"
                continue
            module = load_frontend(name)
            if module is None:
                out.status[name] = "missing"
                logger.warning("lab front end %s is not installed; %d switches will not answer it", name, len(targets))
                continue
            kwargs = {}
            if tls is not None and "tls" in inspect.signature(module.serve).parameters:
                kwargs["tls"] = tls
            out.servers[name] = module.serve(targets, credential, **kwargs)
            out.status[name] = f"serving {len(targets)}"
            logger.info("lab front end %s serving %d switches", name, len(targets))
    except BaseException:
        out.stop()
        raise
    return out
