"""Django admin registrations: the fallback editor for the source of truth."""

from django.contrib import admin

from .models import (
    Device,
    Fabric,
    GpuHost,
    GpuNic,
    Interface,
    Link,
    OpticalChannel,
    OpticalSpan,
    Pod,
    Site,
    Transceiver,
)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["hostname", "fabric", "role", "platform", "lifecycle", "mgmt_address"]
    list_filter = ["fabric", "role", "platform", "lifecycle"]
    search_fields = ["hostname", "mgmt_address"]


@admin.register(Interface)
class InterfaceAdmin(admin.ModelAdmin):
    list_display = ["device", "name", "speed_gbps", "admin_up", "address"]
    search_fields = ["device__hostname", "name"]
    list_select_related = ["device"]


for model in (Fabric, Site, Pod, Transceiver, Link, OpticalSpan, OpticalChannel, GpuHost, GpuNic):
    admin.site.register(model)
