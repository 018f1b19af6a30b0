"""Emulated Huawei CloudEngine (VRP 8) switches over SSH.

``initialise(switch)`` gives a :class:`SwitchState` its startup and running
configuration; ``serve(switches, credential)`` answers SSH on every switch's
management address with a VRP CLI (user/system views, two-stage commit,
``commit trial``, rollback, ``display`` commands, VRP error messages) so that
netmiko's ``huawei``/``huawei_vrpv8`` device types and our NAPALM driver work
unmodified; ``reboot(switch)`` reloads the saved configuration.
See docs/lab-huawei-vrp.md for the accepted grammar.
"""

from __future__ import annotations

from fabric_ops.devices.credentials import Credential
from fabric_ops.lab.state import SwitchState

from . import platform as _platform
from .server import LabServer

__all__ = ["LabServer", "initialise", "reboot", "serve"]


def initialise(switch: SwitchState) -> None:
    """Build the switch's VRP startup and running configuration and make it take effect."""
    switch.platform_state = _platform.new_platform(switch)
    _platform._apply_effects(switch, switch.platform_state.running)


def serve(switches: list[SwitchState], credential: Credential) -> LabServer:
    """Start SSH listeners for ``switches`` (initialising any that are not yet); ``.stop()`` ends them."""
    for switch in switches:
        if not isinstance(switch.platform_state, _platform.VrpPlatform):
            initialise(switch)
    return LabServer(switches, credential)


def reboot(switch: SwitchState) -> None:
    """Running configuration := saved configuration; pending trial and candidates are dropped."""
    _platform.reboot(switch)
