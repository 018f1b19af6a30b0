"""Correlation: which root cause explains a finding, so one fault opens one incident instead of fifty.

Rules, in order (pure functions over the :class:`~fabric_ops.health.topology.TopologyIndex`):

0. A port going down (or flapping on its way down) on a link FabricOps drained on purpose (Link.state ``drained``,
   or the undo of an active remediation run holding it: a ``drain-link``, the ``move-dci`` of a span) is expected,
   not a fault: it opens no incident. Once the link is restored (no longer drained) and the port is still down, it
   alarms as usual.
1. Device findings (unreachable, telemetry lost) are rooted at the device. A link finding on a port whose link
   ends on a device that is down is a symptom of that device (a dead switch takes every peer port down).
2. Port findings on a switch-to-switch link are rooted at the *link* (``link:<id>``): both ends of one bad optic
   or cable (oper-down at A and at B, errors seen by the receiver on either side) are one fault.
3. Congestion on a device that has an active PFC storm is rooted at the storm (the pauses a storming NIC makes the
   leaf send on its uplinks are its symptom, not a second fault).
4. A degraded wavelength is rooted at its channel; when two or more degraded wavelengths share an optical span,
   the span is the root (``span:<name>``) and the channel incidents fold into it.
5. ECMP imbalance is rooted at the leaf's uplink group (``uplinks:<leaf>``), not at whichever uplink is the
   busiest at the moment.
6. Everything else is rooted at its port or queue.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .choices import ScopeKind
from .detectors.base import Finding
from .topology import TopologyIndex

DEVICE_KINDS = {"device-unreachable", "telemetry-lost"}
LINK_KINDS = {
    "link-down", "link-flap", "crc-errors", "fec-uncorrectable", "pre-fec-ber", "optic-rx-low", "optic-rx-trend",
    "hot-link",
}  # fmt: skip
CONGESTION_KINDS = {"pfc-pause", "ecn-marking", "lossless-drops"}
DRAIN_SYMPTOMS = {"link-down", "link-flap"}  # what shutting a port looks like from its own oper-status


@dataclass(frozen=True)
class Root:
    """The root cause a finding belongs to, and the incident's scope."""

    key: str
    kind: str
    scope_kind: str
    device: str = ""
    interface: str = ""
    link_id: int | None = None
    span: str = ""
    channel: str = ""
    fabric: str = ""


def port_of(finding: Finding) -> str:
    """The interface part of a subject ("Ethernet1/1/3" of a queue -> "Ethernet1/1"; priority/queue stripped)."""
    subject = finding.subject
    if finding.kind in CONGESTION_KINDS | {"pfc-storm"} and "/" in subject:
        return subject.rsplit("/", 1)[0]
    return subject


def expected_down(finding: Finding, index: TopologyIndex, drained_links: Collection[int]) -> int | None:
    """Rule 0: the drained link whose shutdown explains ``finding`` (an oper-down of one of its ends), or None."""
    if finding.kind not in DRAIN_SYMPTOMS:
        return None
    link = index.port_link.get((finding.device, port_of(finding)))
    return link if link is not None and link in drained_links else None


def root_of(
    finding: Finding,
    index: TopologyIndex,
    down_devices: Iterable[str] = (),
    storming_devices: dict[str, str] | None = None,
) -> Root:
    """The root cause of one finding, given which devices are down and which have an active PFC storm root."""
    fabric = index.device_fabric.get(finding.device, "")
    down = set(down_devices)
    if finding.kind in DEVICE_KINDS:
        return Root(f"device:{finding.device}", finding.kind, ScopeKind.DEVICE, finding.device, fabric=fabric)
    if finding.kind == "dci-degradation":
        channel = index.resolve_channel(finding.device, finding.subject) or finding.subject
        link = index.channel_link.get(channel)
        return Root(f"channel:{channel}", finding.kind, ScopeKind.CHANNEL, finding.device, link_id=link,
                    channel=channel, fabric=fabric)  # fmt: skip
    if finding.kind == "ecmp-imbalance":  # the leaf's uplink group, whichever uplink is the busiest right now
        return Root(f"uplinks:{finding.device}", finding.kind, ScopeKind.INTERFACE, finding.device, fabric=fabric)
    port = (finding.device, port_of(finding))
    link = index.port_link.get(port)
    if finding.kind in LINK_KINDS and link is not None:
        a, b = index.link_ends[link]
        for end in (a, b):
            if end[0] in down and end[0] != finding.device:
                return Root(f"device:{end[0]}", "device-unreachable", ScopeKind.DEVICE, end[0],
                            fabric=index.device_fabric.get(end[0], ""))  # fmt: skip
        return Root(f"link:{link}", finding.kind, ScopeKind.LINK, a[0], a[1], link, fabric=fabric)
    if finding.kind in CONGESTION_KINDS and storming_devices and finding.device in storming_devices:
        key = storming_devices[finding.device]
        interface = key.split(":", 2)[2] if key.count(":") >= 2 else ""
        return Root(key, "pfc-storm", ScopeKind.INTERFACE, finding.device, interface, fabric=fabric)
    return Root(f"port:{finding.device}:{port[1]}", finding.kind, ScopeKind.INTERFACE, finding.device, port[1],
                link, fabric=fabric)  # fmt: skip


def common_span(channels: Iterable[str], index: TopologyIndex) -> str | None:
    """The optical span shared by two or more degraded wavelengths (the most shared one), or None."""
    counts: dict[str, int] = {}
    for channel in set(channels):
        for span in index.channel_spans.get(channel, ()):
            counts[span] = counts.get(span, 0) + 1
    shared = [(n, span) for span, n in counts.items() if n >= 2]
    return max(shared)[1] if shared else None
