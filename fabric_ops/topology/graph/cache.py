"""Process-level cache of loaded topologies.

Guardrails ask the graph a question on every remediation action; rebuilding a
300k-link graph each time would take seconds. A load is reused while a cheap
fingerprint of the database (row counts, max ids, and the sum of the ids of the
links, spans and switches that carry traffic, so a swap of states is seen too)
and an in-process version counter are unchanged.
The counter is bumped by ``invalidate()`` and by save/delete signals of the
topology models; bulk updates send no signals, which is why the fingerprint also
reads the database.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db.models import Count, F, Max, Q, Sum
from django.db.models.signals import m2m_changed, post_delete, post_save

from ..choices import Lifecycle, LinkState
from ..models import Device, GpuHost, GpuNic, Link, OpticalChannel, OpticalSpan

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_version = 0
# key -> (fingerprint, graph, monotonic time the fingerprint was last confirmed)
_cache: dict[tuple[str, ...] | None, tuple[tuple, object, float]] = {}


def invalidate() -> None:
    """Drop every cached graph; the next ``FabricGraph.load()`` reads the database again."""
    global _version
    with _lock:
        _version += 1
        _cache.clear()
    logger.debug("graph cache invalidated (version %d)", _version)


def fingerprint() -> tuple:
    """A few aggregate queries that change whenever a row the graph reads is added, removed or changes state."""
    # Sums of id and id² over up links: a change of several states whose ids happen to sum alike still shows.
    links = Link.objects.aggregate(
        n=Count("id"),
        top=Max("id"),
        ids=Sum("id", filter=Q(state=LinkState.UP)),
        squares=Sum(F("id") * F("id"), filter=Q(state=LinkState.UP)),
        capacity=Sum("capacity_gbps"),
    )
    devices = Device.objects.aggregate(
        n=Count("id"), top=Max("id"), ids=Sum("id", filter=Q(lifecycle=Lifecycle.ACTIVE))
    )
    spans = OpticalSpan.objects.aggregate(n=Count("id"), ids=Sum("id", filter=Q(state=LinkState.UP)))
    nics = GpuNic.objects.aggregate(n=Count("id"), top=Max("id"))
    return (
        _version,
        tuple(links.values()),
        tuple(devices.values()),
        tuple(spans.values()),
        tuple(nics.values()),
        GpuHost.objects.count(),
        OpticalChannel.objects.aggregate(n=Count("id"), top=Max("id"))["n"],
    )


def recent(key: tuple[str, ...] | None, max_age: float) -> object | None:
    """The cached graph if its fingerprint was confirmed less than ``max_age`` seconds ago (no query at all)."""
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0][0] == _version and time.monotonic() - hit[2] < max_age:
        return hit[1]
    return None


def get(key: tuple[str, ...] | None, stamp: tuple) -> object | None:
    """The cached graph if it was built under ``stamp``; confirming it restarts its ``max_age`` clock."""
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == stamp:
            _cache[key] = (stamp, hit[1], time.monotonic())
            return hit[1]
    return None


def put(key: tuple[str, ...] | None, stamp: tuple, value: object) -> None:
    with _lock:
        _cache[key] = (stamp, value, time.monotonic())


def _on_change(sender: type, **kwargs: object) -> None:
    invalidate()


for _model in (Device, Link, OpticalSpan, OpticalChannel, GpuHost, GpuNic):
    post_save.connect(_on_change, sender=_model, dispatch_uid=f"fabric_graph_{_model.__name__}_save")
    post_delete.connect(_on_change, sender=_model, dispatch_uid=f"fabric_graph_{_model.__name__}_delete")
m2m_changed.connect(_on_change, sender=OpticalChannel.spans.through, dispatch_uid="fabric_graph_channel_spans")
