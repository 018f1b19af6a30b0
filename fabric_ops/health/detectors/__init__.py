"""Pure detector functions, one module per family; see docs/health.md for every kind and threshold."""

from .base import Finding, Sample
from .congestion import CongestionThresholds
from .device import DeviceThresholds
from .link import LinkThresholds, StateChange

DETECTOR_KINDS = (
    # congestion
    "ecn-marking",
    "pfc-pause",
    "pfc-storm",
    "lossless-drops",
    "hot-link",
    "ecmp-imbalance",
    "incast",
    # link
    "link-down",
    "link-flap",
    "crc-errors",
    "fec-uncorrectable",
    "pre-fec-ber",
    "optic-rx-low",
    "optic-rx-trend",
    "dci-degradation",
    # device
    "device-unreachable",
    "telemetry-lost",
)

__all__ = [
    "DETECTOR_KINDS",
    "CongestionThresholds",
    "DeviceThresholds",
    "Finding",
    "LinkThresholds",
    "Sample",
    "StateChange",
]
