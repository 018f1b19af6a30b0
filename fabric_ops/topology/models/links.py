"""Switch-to-switch links and the cross-city optical layer under DCI links."""

from django.db import models

from ..choices import LinkKind, LinkState

__all__ = ["Link", "OpticalChannel", "OpticalSpan"]


class Link(models.Model):
    """A cable (or a DCI wavelength) between two switch interfaces."""

    a_interface = models.OneToOneField("topology.Interface", on_delete=models.CASCADE, related_name="link_as_a")
    b_interface = models.OneToOneField("topology.Interface", on_delete=models.CASCADE, related_name="link_as_b")
    kind = models.CharField(max_length=10, choices=LinkKind.choices, default=LinkKind.FABRIC)
    capacity_gbps = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=LinkState.choices, default=LinkState.UP)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.a_interface} <-> {self.b_interface}"


class OpticalSpan(models.Model):
    """A fibre span between two sites; inline amplifiers every ~80 km."""

    name = models.CharField(max_length=64, unique=True)
    a_site = models.ForeignKey("topology.Site", on_delete=models.PROTECT, related_name="spans_as_a")
    b_site = models.ForeignKey("topology.Site", on_delete=models.PROTECT, related_name="spans_as_b")
    length_km = models.FloatField()
    loss_db = models.FloatField()
    amplifier_count = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=LinkState.choices, default=LinkState.UP)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OpticalChannel(models.Model):
    """A DWDM wavelength over one or more spans, carrying exactly one DCI link."""

    name = models.CharField(max_length=64, unique=True)
    link = models.OneToOneField(Link, on_delete=models.CASCADE, related_name="optical_channel")
    spans = models.ManyToManyField(OpticalSpan, related_name="channels")
    frequency_ghz = models.FloatField(help_text="Centre frequency on the ITU grid, e.g. 193100.0")
    rate_gbps = models.PositiveIntegerField(default=400)
    modulation = models.CharField(max_length=20, default="DP-16QAM")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
