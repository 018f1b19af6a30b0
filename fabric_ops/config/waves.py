"""Split a push into waves: canaries first, then fixed fractions of the rest."""

from __future__ import annotations

import math

from fabric_ops.errors import FabricOpsError


def plan_waves(hostnames: list[str], canary_count: int, wave_percent: int) -> list[list[str]]:
    """Order-preserving waves: ``canary_count`` devices, then waves of ``wave_percent`` % of the remainder.

    >>> plan_waves(["a", "b", "c", "d", "e"], 1, 50)
    [['a'], ['b', 'c'], ['d', 'e']]
    """
    if not 1 <= wave_percent <= 100:
        raise FabricOpsError(f"wave_percent must be 1-100, got {wave_percent}")
    if canary_count < 0:
        raise FabricOpsError(f"canary_count cannot be negative, got {canary_count}")
    canaries = hostnames[:canary_count]
    rest = hostnames[canary_count:]
    waves = [canaries] if canaries else []
    if rest:
        size = max(1, math.ceil(len(rest) * wave_percent / 100))
        waves.extend(rest[i : i + size] for i in range(0, len(rest), size))
    return waves
