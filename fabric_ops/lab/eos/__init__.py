"""Arista EOS emulation over eAPI: the lab's EOS switches, indistinguishable for NAPALM's ``eos`` driver.

Public API (the lab lifecycle calls these; see docs/lab-eos.md):

* :func:`initialise` builds a switch's startup/running configuration and applies its effects;
* :func:`serve` answers eAPI (JSON-RPC over HTTPS, or HTTP on the same port) for many switches;
* :func:`reboot` makes the running-config the startup-config again and drops sessions and timers.
"""

from __future__ import annotations

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError
from fabric_ops.lab.eos.config import ConfigTree
from fabric_ops.lab.eos.platform import EosPlatform
from fabric_ops.lab.eos.server import LabServer
from fabric_ops.lab.eos.startup import build_startup_config
from fabric_ops.lab.state import SwitchState

__all__ = ["EosPlatform", "LabServer", "initialise", "platform_of", "reboot", "serve"]


def initialise(switch: SwitchState) -> None:
    """Give ``switch`` its EOS configuration (from its hostname, ports, loopback, ASN) and make it take effect."""
    previous = switch.platform_state
    if isinstance(previous, EosPlatform):
        previous.stop_timers()
    tree = ConfigTree(switch.interfaces.keys())
    try:
        tree.load_text(build_startup_config(switch))
    except Exception as exc:  # a value from the inventory the EOS grammar refuses (bad hostname, address)
        raise LabError(f"{switch.hostname}: cannot build the EOS startup-config: {exc}") from exc
    platform = EosPlatform(switch, tree)
    switch.platform_state = platform
    platform.apply_effects()


def platform_of(switch: SwitchState) -> EosPlatform:
    platform = switch.platform_state
    if not isinstance(platform, EosPlatform):
        raise LabError(f"{switch.hostname}: not an initialised EOS switch (call fabric_ops.lab.eos.initialise)")
    return platform


def serve(switches: list[SwitchState], credential: Credential, tls: tuple[bytes, bytes] | None = None) -> LabServer:
    """Listen for eAPI on each switch's ``mgmt_address:eapi_port``; HTTP Basic auth against ``credential``.

    ``tls`` is ``(certificate_pem, private_key_pem)`` (the lab's own pair, shared with gNMI); without it a
    self-signed certificate is generated once under ``var/lab/``.
    """
    for switch in switches:
        if not isinstance(switch.platform_state, EosPlatform):
            initialise(switch)
    return LabServer(switches, credential, tls=tls)


def reboot(switch: SwitchState) -> None:
    """Power-cycle semantics: running := startup, sessions and commit timers dropped, effects applied."""
    platform_of(switch).reboot()
