"""Source-of-truth models, one module per domain."""

from .devices import Device, Interface, Transceiver
from .fabrics import Fabric, Pod, Site
from .hosts import GpuHost, GpuNic
from .links import Link, OpticalChannel, OpticalSpan

__all__ = [
    "Device",
    "Fabric",
    "GpuHost",
    "GpuNic",
    "Interface",
    "Link",
    "OpticalChannel",
    "OpticalSpan",
    "Pod",
    "Site",
    "Transceiver",
]
