"""Which collector process owns which device: rendezvous (highest-random-weight) hashing.

Why rendezvous and not a hash ring: with N shards every device computes N scores and goes to the highest, so the
assignment depends only on the device's name and N. Restarting a collector, adding devices or reordering the
inventory moves nothing; changing N from 4 to 5 moves only the ~1/5 of devices whose new top score is shard 4,
and no device moves between two surviving shards. No ring state to store or agree on: every process computes the
same answer from the same two inputs, which is what lets N collectors start independently on N machines.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from fabric_ops.errors import ConfigurationError

__all__ = ["Shard", "owner", "parse_shard", "partition"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based: ``0/4`` .. ``3/4``)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigurationError(f"shard {self.index}/{self.count}: need 0 <= index < count and count >= 1")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, device: str) -> bool:
        return owner(device, self.count) == self.index

    def select(self, devices: Iterable[str]) -> list[str]:
        return [d for d in devices if self.owns(d)]


def parse_shard(text: str | None) -> Shard:
    """``"2/8"`` -> Shard(2, 8); None or empty -> the single shard 0/1."""
    if not text:
        return Shard()
    match = _SHARD.match(text)
    if not match:
        raise ConfigurationError(f"--shard {text!r}: expected I/N, e.g. 0/4 (0-based index, N shards)")
    return Shard(int(match.group(1)), int(match.group(2)))


def _score(device: str, shard: int) -> int:
    digest = hashlib.blake2b(f"{shard}\x00{device}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(device: str, count: int) -> int:
    """The shard (0..count-1) that collects ``device``."""
    if count <= 1:
        return 0
    best, best_score = 0, -1
    for shard in range(count):
        score = _score(device, shard)
        if score > best_score:
            best, best_score = shard, score
    return best


def partition(devices: Iterable[str], count: int) -> list[list[str]]:
    """Every shard's devices, in input order (for documentation, tests and `telemetry collect --plan`)."""
    out: list[list[str]] = [[] for _ in range(max(count, 1))]
    for device in devices:
        out[owner(device, count)].append(device)
    return out
