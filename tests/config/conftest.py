"""The lab fabric of the config tests: inventory/lab.yml's sjc-ai on a test module's own loopback block."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings as django_settings

from fabric_ops.telemetry.influxd import free_ports
from fabric_ops.topology.inventory import import_inventory
from fabric_ops.topology.models import Device, Fabric

LAB_INVENTORY = Path(django_settings.INVENTORY_DIR) / "lab.yml"


def place_lab_inventory(block: str) -> Fabric:
    """Import the lab inventory and put its switches on ``block``.1, .2, ... with kernel-picked ports.

    Each module has its own /24 (``block`` like ``"127.23.0"``) and the ports are free ones, not the inventory's
    443/10022/6030, so two test runs (or modules) never fight over a listener. One switch binds all three ports on
    its address, so they are distinct.
    """
    import_inventory(LAB_INVENTORY)
    eapi, ssh, gnmi = free_ports(f"{block}.1", 3)
    for index, device in enumerate(Device.objects.order_by("hostname"), start=1):
        device.mgmt_address = f"{block}.{index}"
        device.eapi_port, device.ssh_port, device.gnmi_port = eapi, ssh, gnmi
        device.save(update_fields=["mgmt_address", "eapi_port", "ssh_port", "gnmi_port"])
    return Fabric.objects.get(name="sjc-ai")
