"""Typed answers of the graph queries.

Plain frozen dataclasses so a guardrail can log, compare and JSON-serialise them
(``dataclasses.asdict``) without knowing anything about the graph internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BlastRadius", "HostImpact", "LeafImpact", "PathSummary"]


@dataclass(frozen=True)
class PathSummary:
    """Equal-cost shortest paths between two leaves over links that carry traffic now.

    ``count`` counts parallel links separately (each is its own ECMP next hop);
    ``bottleneck_gbps`` is the maximum flow through the union of those paths, i.e.
    what perfect ECMP hashing could move between the two leaves; ``min_link_gbps``
    is the slowest single link on any of them. ``hops`` is None when unreachable.
    """

    count: int
    hops: int | None
    bottleneck_gbps: float
    min_link_gbps: float = 0.0


@dataclass(frozen=True)
class LeafImpact:
    """How much effective uplink capacity one leaf loses.

    ``before_gbps``/``after_gbps`` are effective capacities (an uplink into a spine
    that lost part of its own uplinks counts only in that proportion).
    ``lost_fraction`` is relative to the capacity before the change;
    ``remaining_fraction`` is relative to the leaf's design capacity (all its built
    uplinks up), which is what the 75% guardrail compares against.
    ``removed`` is set when the leaf itself is in the request; ``partitioned`` when it
    ends up cut off from the rest of its fabric.
    """

    hostname: str
    before_gbps: float
    after_gbps: float
    design_gbps: float
    lost_fraction: float
    remaining_fraction: float
    removed: bool = False
    partitioned: bool = False


@dataclass(frozen=True)
class HostImpact:
    """Share of a GPU host's network bandwidth lost.

    A NIC whose rail leaf is removed or partitioned away is lost outright
    (``nics_lost``); a NIC on a leaf that only lost part of its uplinks loses that
    part. ``lost_fraction`` is weighted by NIC speed over all the host's NICs;
    ``isolated`` means every NIC that worked before is lost outright.
    """

    name: str
    lost_fraction: float
    nics_lost: int
    isolated: bool = False


@dataclass(frozen=True)
class BlastRadius:
    """What removing a set of links, devices and optical spans would cost.

    ``min_remaining_uplink_fraction`` is the smallest ``remaining_fraction`` among
    affected leaves that survive the change (1.0 when none is affected); leaves named
    in the request are reported with ``removed=True`` and their loss shows up as lost
    host NICs instead. ``partitions`` lists groups of devices cut off from the rest of
    their site's fabric (the strictly largest surviving part is "the rest"; if there is
    none, every part is listed); ``isolated_hosts`` are hosts whose every NIC is on a
    removed or cut-off leaf. DCI is judged per site: ``site_partitions`` lists, for each
    group of sites joined by DCI now that would split, the resulting groups of sites.
    """

    links: tuple[int, ...] = ()
    devices: tuple[str, ...] = ()
    spans: tuple[str, ...] = ()
    removed_link_ids: tuple[int, ...] = ()
    leaves: tuple[LeafImpact, ...] = ()
    hosts: tuple[HostImpact, ...] = ()
    capacity_lost_gbps: float = 0.0
    leaf_uplink_lost_gbps: float = 0.0
    host_capacity_lost_gbps: float = 0.0
    dci_capacity_lost_gbps: float = 0.0
    min_remaining_uplink_fraction: float = 1.0
    max_host_lost_fraction: float = 0.0
    partitions: tuple[tuple[str, ...], ...] = ()
    isolated_hosts: tuple[str, ...] = ()
    site_partitions: tuple[tuple[tuple[str, ...], ...], ...] = field(default=())

    @property
    def empty(self) -> bool:
        """True when the request named nothing (never read as "everything")."""
        return not (self.links or self.devices or self.spans)

    @property
    def partitioned(self) -> bool:
        """Whether any device, host or site loses every path to the rest."""
        return bool(self.partitions or self.isolated_hosts or self.site_partitions)

    def passes(self, min_uplink_fraction: float = 0.75) -> bool:
        """The guardrail check: nothing partitioned and every surviving leaf keeps enough uplink capacity."""
        return not self.partitioned and self.min_remaining_uplink_fraction >= min_uplink_fraction - 1e-9
