"""Serializers. Names of related objects ride along with their ids so a script needs no second lookup;
secrets never appear: ``Device.credential`` is the *name* of a secret, not the secret.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from fabric_ops.config.models import (
    ComplianceResult,
    ConfigBackup,
    DeviceJob,
    IntentAssignment,
    PushJob,
    RoceProfile,
    UnderlayProfile,
)
from fabric_ops.config.redaction import redact
from fabric_ops.topology.choices import DeviceRole
from fabric_ops.topology.models import (
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
from fabric_ops.web.models import AuditEntry


def all_fields_read_only(model: type, writable: tuple[str, ...] = ()) -> list[str]:
    return [f.name for f in model._meta.fields if f.name not in writable]


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = ["id", "name", "city", "latitude", "longitude"]
        read_only_fields = fields


class FabricSerializer(serializers.ModelSerializer):
    site_name = serializers.CharField(source="site.name", read_only=True, default=None)

    class Meta:
        model = Fabric
        fields = ["id", "name", "kind", "site", "site_name", "description", "parameters"]
        read_only_fields = fields


class PodSerializer(serializers.ModelSerializer):
    fabric_name = serializers.CharField(source="fabric.name", read_only=True)

    class Meta:
        model = Pod
        fields = ["id", "name", "kind", "index", "fabric", "fabric_name"]
        read_only_fields = fields


class TransceiverSerializer(serializers.ModelSerializer):
    class Meta:
        model = Transceiver
        fields = ["id", "name", "form_factor", "speed_gbps", "lanes", "reach_m", "typical_power_w", "coherent"]
        read_only_fields = fields


class DeviceSerializer(serializers.ModelSerializer):
    """Operators may change ``lifecycle`` (drain / undrain); the rest comes from the inventory."""

    fabric_name = serializers.CharField(source="fabric.name", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    pod_name = serializers.CharField(source="pod.name", read_only=True, default=None)

    class Meta:
        model = Device
        fields = [
            "id", "hostname", "fabric", "fabric_name", "site", "site_name", "pod", "pod_name", "role", "platform",
            "model", "lifecycle", "rail", "index", "mgmt_address", "eapi_port", "ssh_port", "gnmi_port", "credential",
            "loopback", "asn",
        ]  # fmt: skip
        read_only_fields = [f for f in fields if f != "lifecycle"]


class InterfaceSerializer(serializers.ModelSerializer):
    hostname = serializers.CharField(source="device.hostname", read_only=True)
    transceiver_name = serializers.CharField(source="transceiver.name", read_only=True, default=None)

    class Meta:
        model = Interface
        fields = [
            "id", "device", "hostname", "name", "speed_gbps", "lanes", "admin_up", "mtu", "address", "description",
            "transceiver", "transceiver_name",
        ]  # fmt: skip
        read_only_fields = fields


class LinkEndSerializer(serializers.Serializer):
    device = serializers.CharField()
    interface = serializers.CharField()


def link_end(hostname: str, interface: str) -> dict[str, str]:
    return {"device": hostname, "interface": interface}


class LinkSerializer(serializers.ModelSerializer):
    """Operators may change ``state`` (drain / undrain a link)."""

    a = serializers.SerializerMethodField()
    b = serializers.SerializerMethodField()
    # What get_a/get_b answer, from columns (fastlist: lists read values, not 5 model instances per link).
    values_fields = {
        "a": (("a_interface__device__hostname", "a_interface__name"), link_end),
        "b": (("b_interface__device__hostname", "b_interface__name"), link_end),
    }

    class Meta:
        model = Link
        fields = ["id", "a_interface", "b_interface", "a", "b", "kind", "capacity_gbps", "state"]
        read_only_fields = [f for f in fields if f != "state"]

    def _end(self, interface: Interface) -> dict[str, str]:
        return link_end(interface.device.hostname, interface.name)

    @extend_schema_field(LinkEndSerializer)
    def get_a(self, obj: Link) -> dict[str, str]:
        return self._end(obj.a_interface)

    @extend_schema_field(LinkEndSerializer)
    def get_b(self, obj: Link) -> dict[str, str]:
        return self._end(obj.b_interface)


class OpticalSpanSerializer(serializers.ModelSerializer):
    """Operators may change ``state`` (take a span out of service for maintenance)."""

    a_site_name = serializers.CharField(source="a_site.name", read_only=True)
    b_site_name = serializers.CharField(source="b_site.name", read_only=True)

    class Meta:
        model = OpticalSpan
        fields = [
            "id", "name", "a_site", "a_site_name", "b_site", "b_site_name", "length_km", "loss_db", "amplifier_count",
            "state",
        ]  # fmt: skip
        read_only_fields = [f for f in fields if f != "state"]


class OpticalChannelSerializer(serializers.ModelSerializer):
    span_names = serializers.SlugRelatedField(source="spans", many=True, read_only=True, slug_field="name")

    class Meta:
        model = OpticalChannel
        fields = ["id", "name", "link", "spans", "span_names", "frequency_ghz", "rate_gbps", "modulation"]
        read_only_fields = fields


class GpuNicSerializer(serializers.ModelSerializer):
    leaf = serializers.CharField(source="leaf_interface.device.hostname", read_only=True)
    leaf_port = serializers.CharField(source="leaf_interface.name", read_only=True)

    class Meta:
        model = GpuNic
        fields = ["id", "rail", "name", "speed_gbps", "leaf_interface", "leaf", "leaf_port"]
        read_only_fields = fields


class GpuHostSerializer(serializers.ModelSerializer):
    fabric_name = serializers.CharField(source="fabric.name", read_only=True)
    nics = GpuNicSerializer(many=True, read_only=True)

    class Meta:
        model = GpuHost
        fields = ["id", "name", "fabric", "fabric_name", "pod", "gpus", "index", "nics"]
        read_only_fields = fields


class ModelCleanMixin:
    """Run the model's own ``clean()`` (DRF does not), so the API refuses what the admin refuses."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = self.Meta.model
        instance = model(**{f.name: getattr(self.instance, f.name) for f in model._meta.concrete_fields}) \
            if self.instance is not None else model()  # fmt: skip
        for key, value in attrs.items():
            setattr(instance, key, value)
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else exc.messages
            ) from None
        return attrs


class RoceProfileSerializer(ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = RoceProfile
        fields = "__all__"


class UnderlayProfileSerializer(ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = UnderlayProfile
        fields = "__all__"


class IntentAssignmentSerializer(ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = IntentAssignment
        fields = "__all__"
        validators = []  # the (fabric, role, device) uniqueness is enforced by the database constraint

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        probe = {k: attrs.get(k, getattr(self.instance, k, None)) for k in ("fabric", "role", "device")}
        clash = IntentAssignment.objects.filter(
            fabric=probe["fabric"], role=probe["role"] or "", device=probe["device"]
        )
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("an assignment for this fabric, role and device already exists")
        return attrs


class PushJobSerializer(serializers.ModelSerializer):
    device_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = PushJob
        fields = [
            "id", "requested_by", "reason", "created_at", "started_at", "finished_at", "status", "dry_run",
            "require_approval", "approved_by", "approved_at", "canary_count", "wave_percent", "max_failures",
            "concurrency", "revert_in", "summary", "device_count",
        ]  # fmt: skip
        read_only_fields = fields


class PushJobCreateSerializer(serializers.Serializer):
    """Which devices (hostnames, or a fabric optionally narrowed to roles) and how (dry run, wave policy)."""

    devices = serializers.ListField(child=serializers.CharField(max_length=63), required=False, default=list)
    fabric = serializers.CharField(required=False, allow_blank=False)
    roles = serializers.ListField(child=serializers.ChoiceField(DeviceRole.choices), required=False, default=list)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    dry_run = serializers.BooleanField(default=False)
    require_approval = serializers.BooleanField(default=False)
    canary_count = serializers.IntegerField(min_value=0, default=1)
    wave_percent = serializers.IntegerField(min_value=1, max_value=100, default=25)
    max_failures = serializers.IntegerField(min_value=0, default=0)
    concurrency = serializers.IntegerField(min_value=1, max_value=256, default=16)
    revert_in = serializers.IntegerField(min_value=30, max_value=3600, default=120)

    MANAGED_PLATFORMS = ("eos", "huawei_vrp")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        names, fabric = attrs.get("devices") or [], attrs.get("fabric")
        if bool(names) == bool(fabric):
            raise serializers.ValidationError("name either devices (hostnames) or a fabric; never nothing ('all')")
        if names:
            found = {d.hostname: d for d in Device.objects.filter(hostname__in=names).select_related("fabric")}
            unknown = sorted(set(names) - set(found))
            if unknown:
                raise serializers.ValidationError({"devices": f"unknown device(s): {', '.join(unknown)}"})
            unmanaged = sorted(n for n, d in found.items() if d.platform not in self.MANAGED_PLATFORMS)
            if unmanaged:
                raise serializers.ValidationError({"devices": f"no switch OS to push to: {', '.join(unmanaged)}"})
            selected = list(found.values())
        else:
            if not Fabric.objects.filter(name=fabric).exists():
                raise serializers.ValidationError({"fabric": f"unknown fabric {fabric!r}"})
            qs = Device.objects.filter(fabric__name=fabric, lifecycle="active", platform__in=self.MANAGED_PLATFORMS)
            if attrs.get("roles"):
                qs = qs.filter(role__in=attrs["roles"])
            selected = list(qs)
            if not selected:
                roles = ", ".join(attrs.get("roles") or []) or "any"
                raise serializers.ValidationError(
                    {"fabric": f"no active managed device in fabric {fabric!r} with roles {roles}"}
                )
        attrs["selected"] = selected
        return attrs


class RedactedTextMixin:
    """Stored texts are redacted when written; redacting again on the way out costs little and guards old rows."""

    redacted_fields: tuple[str, ...] = ()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name in self.redacted_fields:
            if data.get(name):
                data[name] = redact(data[name])
        return data


class DeviceJobSerializer(RedactedTextMixin, serializers.ModelSerializer):
    redacted_fields = ("diff", "error")
    hostname = serializers.CharField(source="device.hostname", read_only=True)

    class Meta:
        model = DeviceJob
        fields = ["id", "job", "device", "hostname", "wave", "status", "diff", "error", "started_at", "finished_at"]
        read_only_fields = fields


class ConfigBackupSerializer(RedactedTextMixin, serializers.ModelSerializer):
    """The stored text is already redacted (fabric_ops.config.redaction) when the backup is taken."""

    redacted_fields = ("text",)
    hostname = serializers.CharField(source="device.hostname", read_only=True)

    class Meta:
        model = ConfigBackup
        fields = ["id", "device", "hostname", "taken_at", "sha256", "text"]
        read_only_fields = fields


class ComplianceResultSerializer(RedactedTextMixin, serializers.ModelSerializer):
    redacted_fields = ("diff", "error")
    hostname = serializers.CharField(source="device.hostname", read_only=True)

    class Meta:
        model = ComplianceResult
        fields = ["id", "device", "hostname", "checked_at", "compliant", "diff", "error"]
        read_only_fields = fields


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id", "timestamp", "actor", "user", "source", "action", "object_type", "object_id", "object_repr",
            "changes", "source_ip", "request_id",
        ]  # fmt: skip
        read_only_fields = fields
