import pytest
from django.db import IntegrityError

from fabric_ops.topology.models import Device, Fabric, Interface, Site


@pytest.mark.django_db
def test_interface_name_is_unique_per_device():
    site = Site.objects.create(name="sjc1", city="San Jose")
    fabric = Fabric.objects.create(name="f1", kind="rail-optimized", site=site)
    device = Device.objects.create(hostname="leaf1", fabric=fabric, site=site, role="leaf", platform="eos")
    Interface.objects.create(device=device, name="Ethernet1/1", speed_gbps=400)
    with pytest.raises(IntegrityError):
        Interface.objects.create(device=device, name="Ethernet1/1", speed_gbps=400)
