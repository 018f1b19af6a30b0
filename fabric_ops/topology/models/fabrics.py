"""Where things are: sites (cities), fabrics and their pods or planes."""

from django.db import models

from ..choices import FabricKind, PodKind

__all__ = ["Fabric", "Pod", "Site"]


class Site(models.Model):
    """A data centre in a city; DCI spans join sites."""

    name = models.SlugField(max_length=64, unique=True)
    city = models.CharField(max_length=100)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Fabric(models.Model):
    """A spine-leaf fabric in one site, or the DCI backbone that joins several."""

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=20, choices=FabricKind.choices)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="fabrics")
    description = models.TextField(blank=True)
    # The generator parameters the fabric was built from (GPUs, radix, tiers, ...), kept for what-if and re-generation.
    parameters = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Pod(models.Model):
    """A pod of a 3-tier fabric, or a plane of a multi-plane fabric: the unit guardrails cap drains by."""

    fabric = models.ForeignKey(Fabric, on_delete=models.CASCADE, related_name="pods")
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=PodKind.choices, default=PodKind.POD)
    index = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["fabric", "kind", "index"]
        constraints = [models.UniqueConstraint(fields=["fabric", "name"], name="pod_unique_name_per_fabric")]

    def __str__(self) -> str:
        return f"{self.fabric.name}/{self.name}"
