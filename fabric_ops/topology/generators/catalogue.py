"""Hardware catalogue the generator draws from: optics, switch classes, port names.

The power figures are typical (not maximum) values from vendor datasheets of the
class of part, rounded; they feed the bill of materials' power estimate, which
is a planning figure, not a facility design number.
"""

from __future__ import annotations

from typing import NamedTuple

from fabric_ops.errors import GeneratorError

__all__ = [
    "OPTICS",
    "OpticSpec",
    "default_optic",
    "interface_name",
    "lanes_for_speed",
    "optic",
    "switch_model",
    "switch_power_w",
]


class OpticSpec(NamedTuple):
    """One catalogue optic; mirrors the Transceiver model's fields."""

    name: str
    form_factor: str
    speed_gbps: int
    lanes: int
    reach_m: int
    typical_power_w: float
    coherent: bool = False


# Gray (intra-DC) optics: DR = 500 m single-mode parallel, FR = 2 km CWDM. Coherent ZR+ for DCI (IPoDWDM).
OPTICS: dict[str, OpticSpec] = {
    o.name: o
    for o in (
        OpticSpec("100G-DR", "QSFP28", 100, 4, 500, 3.5),
        OpticSpec("200G-FR4", "QSFP56", 200, 4, 2_000, 6.0),
        OpticSpec("400G-DR4", "QSFP112", 400, 4, 500, 10.0),
        OpticSpec("400G-FR4", "QSFP-DD", 400, 8, 2_000, 12.0),
        OpticSpec("800G-2xDR4", "OSFP", 800, 8, 500, 16.0),
        OpticSpec("800G-2xFR4", "OSFP", 800, 8, 2_000, 16.5),
        OpticSpec("1.6T-2xDR4", "OSFP", 1600, 8, 500, 25.0),
        # Coherent pluggables: reach with inline amplification (OFEC, DP-16QAM).
        OpticSpec("400G-ZR+", "QSFP-DD", 400, 8, 1_000_000, 22.0, True),
        OpticSpec("800G-ZR+", "OSFP", 800, 8, 1_000_000, 28.0, True),
    )
}

_DEFAULT_GRAY = {100: "100G-DR", 200: "200G-FR4", 400: "400G-DR4", 800: "800G-2xDR4", 1600: "1.6T-2xDR4"}
_DEFAULT_COHERENT = {400: "400G-ZR+", 800: "800G-ZR+"}
SUPPORTED_SPEEDS = tuple(sorted(_DEFAULT_GRAY))
COHERENT_RATES = tuple(sorted(_DEFAULT_COHERENT))


def optic(name: str) -> OpticSpec:
    try:
        return OPTICS[name]
    except KeyError:
        raise GeneratorError(f"transceiver {name!r} is not in the catalogue ({', '.join(sorted(OPTICS))})") from None


def default_optic(speed_gbps: int, coherent: bool = False) -> str:
    table = _DEFAULT_COHERENT if coherent else _DEFAULT_GRAY
    try:
        return table[speed_gbps]
    except KeyError:
        kind = "coherent" if coherent else "gray"
        raise GeneratorError(f"no {kind} optic for {speed_gbps}G (supported: {sorted(table)})") from None


def lanes_for_speed(speed_gbps: int) -> int:
    """Electrical lanes of a port: 100G SerDes from 400G up (51.2T silicon), 4 lanes below."""
    return max(4, speed_gbps // 100) if speed_gbps >= 400 else 4


def interface_name(platform: str, port: int, speed_gbps: int) -> str:
    """Front-panel port name as the switch OS spells it (``port`` is 1-based)."""
    if platform == "huawei_vrp":
        prefix = {100: "100GE", 200: "200GE", 400: "400GE", 800: "800GE", 1600: "1.6TE"}.get(speed_gbps, "GE")
        return f"{prefix}1/0/{port}"
    return f"Ethernet{port}/1"


# Known fixed-configuration SKUs by (platform, radix, speed); anything else gets a descriptive class name.
_SKUS = {
    ("eos", 64, 800): "DCS-7060X6-64PE",
    ("eos", 64, 400): "DCS-7060DX5-64S",
    ("eos", 32, 400): "DCS-7060DX4-32",
}


def switch_model(platform: str, radix: int, speed_gbps: int) -> str:
    sku = _SKUS.get((platform, radix, speed_gbps))
    if sku:
        return sku
    vendor = {"eos": "Arista", "huawei_vrp": "CloudEngine"}.get(platform, platform)
    return f"{vendor} {radix * speed_gbps / 1000:g}T {radix}x{speed_gbps}G"


# Typical switch power without optics, by switching capacity class (Gbps): fans, ASIC, CPU.
# 12.8T (TH3-class) ~500 W, 25.6T (TH4) ~750 W, 51.2T (TH5) ~1,100 W, 102.4T (TH6) ~2,000 W.
_POWER_CLASSES = (
    (3_200, 250.0),
    (6_400, 350.0),
    (12_800, 500.0),
    (25_600, 750.0),
    (51_200, 1_100.0),
    (102_400, 2_000.0),
)


def switch_power_w(capacity_gbps: float) -> float:
    """Typical power (W, optics excluded) of a switch with this much front-panel capacity."""
    for limit, watts in _POWER_CLASSES:
        if capacity_gbps <= limit:
            return watts
    # Beyond one chip: scale the biggest class linearly (a chassis of several ASICs).
    return _POWER_CLASSES[-1][1] * capacity_gbps / _POWER_CLASSES[-1][0]
