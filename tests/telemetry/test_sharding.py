"""Rendezvous sharding: a partition (no overlap, no gap), balanced, and stable: devices move only when N changes."""

from __future__ import annotations

import pytest

from fabric_ops.errors import ConfigurationError
from fabric_ops.telemetry.sharding import Shard, owner, parse_shard, partition

DEVICES = [f"pod{p}-leaf{i}" for p in range(8) for i in range(64)] + [f"spine{i}" for i in range(64)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 16])
def test_shards_partition_the_devices_with_no_overlap_and_no_gap(count):
    owned = [Shard(i, count).select(DEVICES) for i in range(count)]
    flat = [d for part in owned for d in part]
    assert sorted(flat) == sorted(DEVICES)  # no gap
    assert len(flat) == len(set(flat))  # no overlap
    assert owned == partition(DEVICES, count)
    fair = len(DEVICES) / count
    slack = 4 * fair**0.5  # 4 standard deviations of a fair binomial split
    assert all(fair - slack <= len(part) <= fair + slack for part in owned), [len(p) for p in owned]


def test_assignment_depends_only_on_name_and_count():
    assert partition(list(reversed(DEVICES)), 4) == [list(reversed(p)) for p in partition(DEVICES, 4)]
    assert [owner(d, 4) for d in DEVICES] == [owner(d, 4) for d in DEVICES]
    fewer = DEVICES[::3]  # removing devices moves nobody else
    assert all(owner(d, 4) == owner(d, 4) for d in fewer)


@pytest.mark.parametrize("count", [2, 4, 8])
def test_growing_n_moves_only_devices_to_the_new_shard(count):
    moved = [d for d in DEVICES if owner(d, count) != owner(d, count + 1)]
    assert all(owner(d, count + 1) == count for d in moved)  # nothing moves between surviving shards
    assert len(moved) <= 1.5 * len(DEVICES) / (count + 1)


@pytest.mark.parametrize(
    "text, expected",
    [("0/1", Shard(0, 1)), ("3/8", Shard(3, 8)), (" 1 / 2 ", Shard(1, 2)), (None, Shard(0, 1)), ("", Shard())],
)
def test_parse_shard(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["4/4", "1", "a/b", "-1/2", "0/0", "1/2/3"])
def test_parse_shard_refuses_nonsense(text):
    with pytest.raises(ConfigurationError, match="shard"):
        parse_shard(text)
