"""The devices a collector subscribes to, read once from the source of truth at start.

A target is everything the subscription thread needs without touching the database again: address, port,
credential name, the subscription profile, and the tags of its series (fabric, site, role, and per interface the
link id and the peer). Collectors restart to pick up topology changes (no hot reconfiguration, on purpose).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q

from fabric_ops.errors import ConfigurationError
from fabric_ops.telemetry.normalise import DeviceMeta
from fabric_ops.telemetry.sharding import Shard
from fabric_ops.telemetry.subscriptions import Profile, resolve_profile

logger = logging.getLogger(__name__)

__all__ = ["DeviceTarget", "load_targets"]


@dataclass(frozen=True)
class DeviceTarget:
    """One device to subscribe to."""

    meta: DeviceMeta
    address: str
    port: int
    credential: str
    profile: Profile
    insecure: bool = True  # plain gRPC (lab, demo); else TLS verified against ``tls_ca`` (FABRIC_OPS_GNMI_TLS)
    tls_ca: str | None = None

    @property
    def hostname(self) -> str:
        return self.meta.hostname


def load_targets(
    fabric: str | None = None, shard: Shard | None = None, *, insecure: bool = False
) -> list[DeviceTarget]:
    """Active, gNMI-capable devices (not optical) of ``fabric`` (or all) that ``shard`` owns.

    Over the deployment's transport (FABRIC_OPS_GNMI_TLS / _CA: TLS by default with DEBUG off); ``insecure``
    forces plain gRPC (a lab).
    """
    from fabric_ops.devices.gnmi import PLAIN, gnmi_transport
    from fabric_ops.telemetry.models import SubscriptionProfile
    from fabric_ops.topology.choices import Lifecycle, Platform
    from fabric_ops.topology.models import Device, Fabric, GpuNic, Interface

    transport = PLAIN if insecure else gnmi_transport()
    tls = {"insecure": not transport.tls, "tls_ca": transport.ca_file}  # the same for every device
    shard = shard or Shard()
    devices = (
        Device.objects.filter(lifecycle=Lifecycle.ACTIVE, mgmt_address__isnull=False)
        .exclude(platform=Platform.OPTICAL)
        .select_related("fabric", "site")
        .order_by("hostname")
    )
    if fabric:
        if not Fabric.objects.filter(name=fabric).exists():
            raise ConfigurationError(f"--fabric {fabric!r}: no such fabric")
        devices = devices.filter(fabric__name=fabric)
    owned = [d for d in devices if shard.owns(d.hostname)]
    ids = [d.pk for d in owned]
    ports: dict[int, dict[str, tuple[str, str]]] = {pk: {} for pk in ids}
    interfaces = Interface.objects.filter(device_id__in=ids).filter(
        Q(link_as_a__isnull=False) | Q(link_as_b__isnull=False)
    )
    for iface in interfaces.select_related("link_as_a__b_interface__device", "link_as_b__a_interface__device"):
        link = getattr(iface, "link_as_a", None)
        other = link.b_interface if link is not None else None
        if link is None:
            link = iface.link_as_b
            other = link.a_interface
        ports[iface.device_id][iface.name] = (str(link.pk), f"{other.device.hostname}:{other.name}")
    for nic in GpuNic.objects.filter(leaf_interface__device_id__in=ids).select_related("host", "leaf_interface"):
        ports[nic.leaf_interface.device_id][nic.leaf_interface.name] = (
            f"nic-{nic.pk}",
            f"host:{nic.host.name}:{nic.name}",
        )
    rows = list(SubscriptionProfile.objects.filter(enabled=True))
    targets = []
    for device in owned:
        meta = DeviceMeta(
            hostname=device.hostname,
            fabric=device.fabric.name,
            site=device.site.name,
            role=device.role,
            platform=device.platform,
            interfaces=ports[device.pk],
        )
        profile = resolve_profile(device.role, device.platform, rows)
        targets.append(DeviceTarget(meta, device.mgmt_address, device.gnmi_port, device.credential, profile, **tls))
    logger.info("shard %s owns %d of %d devices", shard, len(owned), len(devices))
    return targets
