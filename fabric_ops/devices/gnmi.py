"""gNMI reachability of a device, used by post-commit verification.

A change that leaves the switch answering eAPI or SSH but not gNMI has still
blinded the platform: detection runs on gNMI telemetry, so a push is only
verified when gNMI answers too.
"""

from __future__ import annotations

import logging

from pygnmi.client import gNMIclient

from fabric_ops.errors import DeviceError
from fabric_ops.topology.models import Device

from .connection import DeviceUnreachable
from .credentials import resolve

logger = logging.getLogger(__name__)


def check_gnmi(device: Device, timeout: int = 5) -> None:
    """Raise DeviceUnreachable naming the device unless its gNMI server answers a Capabilities request.

    pygnmi's connect() already sends Capabilities (to choose an encoding), so
    entering the client is the whole check: one RPC, not two.
    """
    credential = resolve(device.credential)
    target = (device.mgmt_address, device.gnmi_port)
    try:
        with gNMIclient(
            target=target,
            username=credential.username,
            password=credential.password,
            insecure=True,
            gnmi_timeout=timeout,
        ):
            return
    except DeviceError:
        raise
    except Exception as exc:  # pygnmi raises bare Exception and grpc errors alike
        raise DeviceUnreachable(
            device.hostname, f"gNMI at {target[0]}:{target[1]} did not answer: {exc or type(exc).__name__}"
        ) from exc
