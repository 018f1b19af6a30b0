"""gNMI reachability of a device, used by post-commit verification.

A change that leaves the switch answering eAPI or SSH but not gNMI has still
blinded the platform: detection runs on gNMI telemetry, so a push is only
verified when gNMI answers too.

One Capabilities RPC on a plain gRPC stub built from the protos pygnmi ships:
pygnmi's client spends ~200 ms on channel set-up per call, which on a
fleet-wide push is most of the verification time. The collector, which keeps
long-lived streams, uses pygnmi itself.
"""

from __future__ import annotations

import logging

import grpc
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from fabric_ops.topology.models import Device

from .connection import DeviceAuthError, DeviceUnreachable
from .credentials import resolve

logger = logging.getLogger(__name__)


def check_gnmi(device: Device, timeout: float = 5.0) -> None:
    """Raise DeviceUnreachable (or DeviceAuthError) naming the device unless gNMI answers Capabilities."""
    credential = resolve(device.credential)
    target = f"{device.mgmt_address}:{device.gnmi_port}"
    metadata = [("username", credential.username), ("password", credential.password)]
    try:
        with grpc.insecure_channel(target) as channel:
            reply = gnmi_pb2_grpc.gNMIStub(channel).Capabilities(
                gnmi_pb2.CapabilityRequest(), metadata=metadata, timeout=timeout
            )
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise DeviceAuthError(device.hostname, f"gNMI at {target} refused the credential") from exc
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        raise DeviceUnreachable(device.hostname, f"gNMI at {target} did not answer: {code}: {detail}") from exc
    logger.debug("%s: gNMI %s answers", device.hostname, reply.gNMI_version)
