"""Vendor-neutral intents: the RoCE lossless class and the eBGP underlay, assigned per fabric, role or device.

The defaults are the usual starting point for RoCEv2 on 400G/800G fabrics:
RoCE data on DSCP 26 in traffic class 3 (lossless, PFC priority 3), CNPs on
DSCP 48 in a strict-priority class so congestion feedback is never queued
behind the data it is about, ECN marking that starts well before the PFC XOFF
point so DCQCN slows senders before pauses spread, and a PFC watchdog that
breaks pause storms.
"""

from django.core.exceptions import ValidationError
from django.db import models

from fabric_ops.topology.choices import DeviceRole

__all__ = ["IntentAssignment", "RoceProfile", "UnderlayProfile"]


def default_lossless_priorities() -> list[int]:
    return [3]


def default_hash_fields() -> list[str]:
    return ["src-ip", "dst-ip", "protocol", "src-port", "dst-port"]


class PfcWatchdogAction(models.TextChoices):
    DROP = "drop", "Drop the stormed queue's traffic"
    NO_DROP = "no-drop", "Ignore pause frames but keep forwarding"


class RoceProfile(models.Model):
    name = models.SlugField(max_length=64, unique=True)
    lossless_priorities = models.JSONField(default=default_lossless_priorities)
    roce_dscp = models.PositiveSmallIntegerField(default=26)
    roce_traffic_class = models.PositiveSmallIntegerField(default=3)
    cnp_dscp = models.PositiveSmallIntegerField(default=48)
    cnp_traffic_class = models.PositiveSmallIntegerField(default=6, help_text="Served with strict priority")
    ecn_min_kbytes = models.PositiveIntegerField(default=150)
    ecn_max_kbytes = models.PositiveIntegerField(default=1500)
    ecn_max_probability = models.PositiveSmallIntegerField(default=20, help_text="Percent marked at the maximum")
    pfc_watchdog = models.BooleanField(default=True)
    pfc_watchdog_detection_ms = models.PositiveIntegerField(default=200)
    pfc_watchdog_restoration_ms = models.PositiveIntegerField(default=400)
    pfc_watchdog_action = models.CharField(
        max_length=8, choices=PfcWatchdogAction.choices, default=PfcWatchdogAction.DROP
    )
    mtu = models.PositiveIntegerField(default=9214, help_text="1500-9214")
    headroom_kbytes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Per-port PFC headroom; empty keeps the platform's cable-length default"
    )
    dcqcn = models.JSONField(default=dict, blank=True, help_text="Platform-specific DCQCN knobs, where exposed")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        priorities = self.lossless_priorities
        if (
            not isinstance(priorities, list)
            or not priorities
            or not all(isinstance(p, int) and 0 <= p <= 7 for p in priorities)
        ):
            errors["lossless_priorities"] = "a non-empty list of priorities 0-7"
        elif self.roce_traffic_class not in priorities:
            errors["roce_traffic_class"] = "RoCE must ride a lossless priority: add it to lossless_priorities"
        for field in ("roce_dscp", "cnp_dscp"):
            if getattr(self, field) > 63:
                errors[field] = "DSCP is 0-63"
        for field in ("roce_traffic_class", "cnp_traffic_class"):
            if getattr(self, field) > 7:
                errors[field] = "traffic class is 0-7"
        if self.roce_dscp == self.cnp_dscp:
            errors["cnp_dscp"] = "CNPs need their own DSCP, distinct from RoCE data"
        if self.cnp_traffic_class == self.roce_traffic_class:
            errors["cnp_traffic_class"] = "CNPs need their own strict-priority class, distinct from RoCE data"
        if self.ecn_min_kbytes >= self.ecn_max_kbytes:
            errors["ecn_max_kbytes"] = "must be above ecn_min_kbytes"
        if not 1 <= self.ecn_max_probability <= 100:
            errors["ecn_max_probability"] = "percent, 1-100"
        # What every supported platform accepts: EOS timeout 0.01-60 s, CloudEngine 1-15 x (1-1000 ms).
        if not 10 <= self.pfc_watchdog_detection_ms <= 15000:
            errors["pfc_watchdog_detection_ms"] = "10-15000 ms"
        if not 10 <= self.pfc_watchdog_restoration_ms <= 60000:
            errors["pfc_watchdog_restoration_ms"] = "10-60000 ms"
        if not 1500 <= self.mtu <= 9214:
            errors["mtu"] = "1500-9214 (the largest every supported platform accepts)"
        if errors:
            raise ValidationError(errors)


class UnderlayProfile(models.Model):
    """eBGP underlay (RFC 7938): one ASN per leaf, BFD for fast failure detection, wide ECMP."""

    name = models.SlugField(max_length=64, unique=True)
    bfd = models.BooleanField(default=True)
    bfd_interval_ms = models.PositiveIntegerField(default=100)
    bfd_multiplier = models.PositiveSmallIntegerField(default=3)
    bgp_keepalive_s = models.PositiveSmallIntegerField(default=3)
    bgp_hold_s = models.PositiveSmallIntegerField(default=9)
    ecmp_width = models.PositiveSmallIntegerField(default=64)
    hash_fields = models.JSONField(default=default_hash_fields)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        allowed = set(default_hash_fields())
        if not isinstance(self.hash_fields, list) or not set(self.hash_fields) <= allowed or not self.hash_fields:
            errors["hash_fields"] = f"a non-empty list drawn from {sorted(allowed)}"
        if self.bgp_hold_s < 3 * self.bgp_keepalive_s:
            errors["bgp_hold_s"] = "must be at least three keepalives"
        if not 50 <= self.bfd_interval_ms <= 1000:
            errors["bfd_interval_ms"] = "50-1000 ms (what every supported platform accepts)"
        if not 3 <= self.bfd_multiplier <= 50:
            errors["bfd_multiplier"] = "3-50"
        if not 1 <= self.ecmp_width <= 512:
            errors["ecmp_width"] = "1-512"
        if errors:
            raise ValidationError(errors)


def profile_fields(model: type[models.Model]) -> list[str]:
    """The intent fields of a profile model (its identity fields are not intent)."""
    return [f.name for f in model._meta.fields if f.name not in {"id", "name"}]


def overridable_fields() -> set[str]:
    return set(profile_fields(RoceProfile)) | set(profile_fields(UnderlayProfile))


# Per-port overrides a device's own assignment may carry (remediation actions): a list of the device's interface
# names each. Not profile fields: they name ports, so they make sense on one device only.
PORT_OVERRIDE_FIELDS = {
    "bgp_cost_out": "BGP sessions on these ports advertise with a prepended AS path (link drained, still up)",
    "pfc_disabled_ports": "PFC is off for the lossless priorities on these ports (a storming NIC is ignored)",
}


class IntentAssignment(models.Model):
    """Binds profiles to a fabric, optionally narrowed to a role or one device.

    More specific assignments win field by field: fabric < fabric+role < device.
    ``overrides`` changes single profile fields (e.g. ``{"ecn_min_kbytes": 200}``)
    without cloning a whole profile for one switch.
    """

    fabric = models.ForeignKey("topology.Fabric", on_delete=models.CASCADE, related_name="intent_assignments")
    role = models.CharField(max_length=20, choices=DeviceRole.choices, blank=True)
    device = models.ForeignKey(
        "topology.Device", null=True, blank=True, on_delete=models.CASCADE, related_name="intent_assignments"
    )
    roce_profile = models.ForeignKey(RoceProfile, null=True, blank=True, on_delete=models.PROTECT)
    underlay_profile = models.ForeignKey(UnderlayProfile, null=True, blank=True, on_delete=models.PROTECT)
    overrides = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["fabric", "role", "device"]
        constraints = [
            models.UniqueConstraint(fields=["fabric", "role", "device"], name="intent_one_assignment_per_scope"),
        ]

    def __str__(self) -> str:
        scope = self.device.hostname if self.device_id else (self.role or "all")
        return f"{self.fabric.name}/{scope}"

    @property
    def specificity(self) -> int:
        return 2 if self.device_id else (1 if self.role else 0)

    def clean(self) -> None:
        if self.device_id and self.device.fabric_id != self.fabric_id:
            raise ValidationError({"device": f"{self.device.hostname} is not in fabric {self.fabric.name}"})
        unknown = sorted(set(self.overrides or {}) - overridable_fields() - set(PORT_OVERRIDE_FIELDS))
        if not isinstance(self.overrides, dict) or unknown:
            raise ValidationError({"overrides": f"unknown intent field(s): {', '.join(unknown)}"})
        for key in set(self.overrides) & set(PORT_OVERRIDE_FIELDS):
            ports = self.overrides[key]
            if not self.device_id:
                raise ValidationError({"overrides": f"{key} names ports: only a device's own assignment can carry it"})
            if not isinstance(ports, list) or not all(isinstance(p, str) and p.strip() for p in ports):
                raise ValidationError({"overrides": f"{key} must be a list of interface names"})
            missing = sorted(set(ports) - set(self.device.interfaces.values_list("name", flat=True)))
            if missing:
                raise ValidationError({"overrides": f"{key}: {self.device.hostname} has no interface(s) "
                                       f"{', '.join(missing)}"})  # fmt: skip
