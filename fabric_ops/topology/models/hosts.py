"""GPU servers and the NIC-per-rail attachment to leaf ports."""

from django.db import models

__all__ = ["GpuHost", "GpuNic"]


class GpuHost(models.Model):
    """An 8-GPU server (usually); NIC n attaches to the leaf of rail n."""

    name = models.CharField(max_length=63, unique=True)
    fabric = models.ForeignKey("topology.Fabric", on_delete=models.CASCADE, related_name="gpu_hosts")
    pod = models.ForeignKey("topology.Pod", null=True, blank=True, on_delete=models.SET_NULL, related_name="gpu_hosts")
    gpus = models.PositiveSmallIntegerField(default=8)
    index = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GpuNic(models.Model):
    """One RoCE NIC of a host and the leaf port it is cabled to (the host link)."""

    host = models.ForeignKey(GpuHost, on_delete=models.CASCADE, related_name="nics")
    rail = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=32)
    speed_gbps = models.PositiveIntegerField()
    leaf_interface = models.OneToOneField("topology.Interface", on_delete=models.CASCADE, related_name="gpu_nic")

    class Meta:
        ordering = ["host", "rail"]
        constraints = [models.UniqueConstraint(fields=["host", "rail"], name="gpunic_unique_rail_per_host")]

    def __str__(self) -> str:
        return f"{self.host.name}:{self.name}"
