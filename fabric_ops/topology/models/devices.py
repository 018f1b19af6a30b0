"""Switches, their interfaces and the optics plugged into them."""

from django.db import models

from ..choices import DeviceRole, FormFactor, Lifecycle, Platform

__all__ = ["Device", "Interface", "Transceiver"]


class Transceiver(models.Model):
    """An optic type from the catalogue (400G-DR4, 800G-2xDR4, 400G-ZR+ ...).

    Interfaces point at a catalogue row instead of each carrying its own copy:
    a 100k-GPU fabric has over half a million optics but a handful of types.
    """

    name = models.CharField(max_length=40, unique=True)
    form_factor = models.CharField(max_length=10, choices=FormFactor.choices)
    speed_gbps = models.PositiveIntegerField()
    lanes = models.PositiveSmallIntegerField(default=8)
    reach_m = models.PositiveIntegerField(help_text="Nominal reach in metres")
    typical_power_w = models.FloatField()
    coherent = models.BooleanField(default=False, help_text="ZR/ZR+ coherent DWDM optic")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Device(models.Model):
    """A managed switch or optical element.

    ``credential`` names a secret (environment or secret file); the secret
    itself is never stored in the database.
    """

    hostname = models.CharField(max_length=63, unique=True)
    fabric = models.ForeignKey("topology.Fabric", on_delete=models.CASCADE, related_name="devices")
    site = models.ForeignKey("topology.Site", on_delete=models.PROTECT, related_name="devices")
    pod = models.ForeignKey("topology.Pod", null=True, blank=True, on_delete=models.SET_NULL, related_name="devices")
    role = models.CharField(max_length=20, choices=DeviceRole.choices)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    model = models.CharField(max_length=64, blank=True, help_text="Hardware model, e.g. DCS-7060X6-64PE")
    lifecycle = models.CharField(max_length=12, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    rail = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Rail served by a rail-optimized leaf")
    index = models.PositiveIntegerField(default=0, help_text="Position within its role and pod")
    mgmt_address = models.GenericIPAddressField(unique=True, null=True, blank=True)
    eapi_port = models.PositiveIntegerField(default=443)
    ssh_port = models.PositiveIntegerField(default=22)
    gnmi_port = models.PositiveIntegerField(default=6030)
    credential = models.CharField(max_length=64, default="default")
    loopback = models.GenericIPAddressField(unique=True, null=True, blank=True)
    asn = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["hostname"]
        indexes = [models.Index(fields=["fabric", "role"])]

    def __str__(self) -> str:
        return self.hostname


class Interface(models.Model):
    """A physical port; ``address`` is its point-to-point prefix in CIDR form (e.g. 10.0.0.0/31)."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="interfaces")
    name = models.CharField(max_length=64)
    speed_gbps = models.PositiveIntegerField()
    lanes = models.PositiveSmallIntegerField(default=8)
    admin_up = models.BooleanField(default=True)
    mtu = models.PositiveIntegerField(default=9214)
    address = models.CharField(max_length=49, blank=True)
    description = models.CharField(max_length=200, blank=True)
    transceiver = models.ForeignKey(
        Transceiver, null=True, blank=True, on_delete=models.PROTECT, related_name="interfaces"
    )

    class Meta:
        ordering = ["device", "name"]
        constraints = [models.UniqueConstraint(fields=["device", "name"], name="interface_unique_name_per_device")]

    def __str__(self) -> str:
        return f"{self.device.hostname}:{self.name}"
