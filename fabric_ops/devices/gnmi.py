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
from dataclasses import dataclass
from pathlib import Path

import grpc
from django.conf import settings
from pygnmi.spec.v080 import gnmi_pb2, gnmi_pb2_grpc

from fabric_ops.errors import ConfigurationError
from fabric_ops.topology.models import Device

from .connection import DeviceAuthError, DeviceUnreachable
from .credentials import resolve

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GnmiTransport:
    """How to reach switches' gNMI: TLS verified against a CA bundle, or plain gRPC (lab, demo)."""

    tls: bool
    ca_file: str | None = None
    ca_pem: bytes = b""  # the bundle's contents, read once when the transport is built

    def channel(self, target: str) -> grpc.Channel:
        if not self.tls:
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=self.ca_pem))


PLAIN = GnmiTransport(tls=False)


def gnmi_transport() -> GnmiTransport:
    """The deployment's gNMI transport; TLS without a readable CA bundle is refused (it would trust whoever answers)."""
    if not settings.FABRIC_OPS_GNMI_TLS:
        return PLAIN
    ca_file = settings.FABRIC_OPS_GNMI_TLS_CA
    if not ca_file:
        raise ConfigurationError(
            "gNMI TLS is on (FABRIC_OPS_GNMI_TLS, the default with DEBUG off) but FABRIC_OPS_GNMI_TLS_CA names no CA "
            "bundle to verify the switches' certificates; set it, or FABRIC_OPS_GNMI_TLS=0 for plain gRPC"
        )
    try:
        return GnmiTransport(tls=True, ca_file=ca_file, ca_pem=Path(ca_file).read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"FABRIC_OPS_GNMI_TLS_CA={ca_file}: {exc}") from exc


def check_gnmi(device: Device, timeout: float = 5.0) -> None:
    """Raise DeviceUnreachable (or DeviceAuthError) naming the device unless gNMI answers Capabilities."""
    credential = resolve(device.credential)
    target = f"{device.mgmt_address}:{device.gnmi_port}"
    metadata = [("username", credential.username), ("password", credential.password)]
    try:
        with gnmi_transport().channel(target) as channel:
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
