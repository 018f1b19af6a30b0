"""Enumerations of the source of truth. Values are what the YAML inventory and the API use."""

from django.db import models


class FabricKind(models.TextChoices):
    RAIL_OPTIMIZED = "rail-optimized", "Rail-optimized spine-leaf"
    MULTI_PLANE = "multi-plane", "Multi-plane spine-leaf"
    DCI_BACKBONE = "dci-backbone", "DCI backbone"


class PodKind(models.TextChoices):
    POD = "pod", "Pod"
    PLANE = "plane", "Plane"


class DeviceRole(models.TextChoices):
    LEAF = "leaf", "Leaf"
    SPINE = "spine", "Spine"
    SUPERSPINE = "superspine", "Superspine"
    BORDER_LEAF = "border-leaf", "Border leaf"
    DCI = "dci", "DCI router"
    OPTICAL_TERMINAL = "optical-terminal", "Optical terminal"
    AMPLIFIER = "amplifier", "Optical amplifier"


class Platform(models.TextChoices):
    """Network operating systems FabricOps renders configuration for and talks to."""

    EOS = "eos", "Arista EOS"
    HUAWEI_VRP = "huawei_vrp", "Huawei CloudEngine (VRP)"
    OPTICAL = "optical", "Optical line system (no switch OS)"


class Lifecycle(models.TextChoices):
    PLANNED = "planned", "Planned"
    ACTIVE = "active", "Active"
    DRAINED = "drained", "Drained"
    MAINTENANCE = "maintenance", "Maintenance"


class LinkKind(models.TextChoices):
    """Switch-to-switch links. Host attachments are GpuNic rows: a NIC has no switch interface to pair with."""

    FABRIC = "fabric", "Fabric"
    DCI = "dci", "DCI"


class LinkState(models.TextChoices):
    PLANNED = "planned", "Planned"
    UP = "up", "Up"
    DOWN = "down", "Down"
    DRAINED = "drained", "Drained"


class FormFactor(models.TextChoices):
    QSFP28 = "QSFP28", "QSFP28"
    QSFP56 = "QSFP56", "QSFP56"
    QSFP112 = "QSFP112", "QSFP112"
    QSFP_DD = "QSFP-DD", "QSFP-DD"
    OSFP = "OSFP", "OSFP"
