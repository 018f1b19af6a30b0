"""The database read into the :class:`Spec` shape (natural keys, FKs as names), for the rows an import may touch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from ..models import (
    Device,
    Fabric,
    GpuHost,
    GpuNic,
    Interface,
    Link,
    OpticalChannel,
    OpticalSpan,
    Pod,
    Site,
    Transceiver,
)
from .spec import MODEL_ORDER

__all__ = ["Current", "chunked_values", "load_current"]

CHUNK = 5000


@dataclass
class Current:
    """Rows as ``key -> (pk, values)`` per model."""

    rows: dict[str, dict[Any, tuple[int, dict[str, Any]]]] = field(default_factory=lambda: {m: {} for m in MODEL_ORDER})


def chunked_values(qs, field: str, values: set[str], *other: str) -> list[tuple]:
    """``qs.filter(field__in=values)`` in chunks: bind-parameter limits (SQLite 32766, PostgreSQL 65535)."""
    items = sorted(values)
    out: list[tuple] = []
    for i in range(0, len(items), CHUNK):
        out.extend(qs.filter(**{f"{field}__in": items[i : i + CHUNK]}).values_list(field, *other))
    return out


def _devices_q(prefix: str, fabrics: set[str], hostnames: set[str]) -> Q:
    return Q(**{f"{prefix}fabric__name__in": fabrics}) | Q(**{f"{prefix}hostname__in": hostnames})


def load_current(
    fabrics: set[str] | None,
    hostnames: set[str] = frozenset(),
    host_names: set[str] = frozenset(),
    catalogue: dict[str, set[str]] | None = None,
    channel_names: set[str] = frozenset(),
) -> Current:
    """Load the rows of ``fabrics`` (all rows when None) and of the named devices, GPU hosts and catalogue entries.

    Catalogues (transceivers, sites, spans) are loaded by name only: an import
    upserts them but never deletes them, since other fabrics share them.
    """
    cur = Current()
    rows = cur.rows
    everything = fabrics is None
    fabrics = set(fabrics or ())

    def narrow(qs, q: Q):
        return qs if everything else qs.filter(q)

    cat = catalogue or {}
    qs = Transceiver.objects.all() if everything else Transceiver.objects.filter(name__in=cat.get("Transceiver", ()))
    for r in qs.values("id", "name", "form_factor", "speed_gbps", "lanes", "reach_m", "typical_power_w", "coherent"):
        rows["Transceiver"][r.pop("name")] = (r.pop("id"), r)
    qs = Site.objects.all() if everything else Site.objects.filter(name__in=cat.get("Site", ()))
    for r in qs.values("id", "name", "city", "latitude", "longitude"):
        rows["Site"][r.pop("name")] = (r.pop("id"), r)
    qs = OpticalSpan.objects.all() if everything else OpticalSpan.objects.filter(name__in=cat.get("OpticalSpan", ()))
    for pk, name, a, b, length, loss, amps, state in qs.values_list(
        "id", "name", "a_site__name", "b_site__name", "length_km", "loss_db", "amplifier_count", "state"
    ):
        rows["OpticalSpan"][name] = (
            pk,
            {"a_site": a, "b_site": b, "length_km": length, "loss_db": loss, "amplifier_count": amps, "state": state},
        )
    for pk, name, kind, site, description, parameters in narrow(Fabric.objects, Q(name__in=fabrics)).values_list(
        "id", "name", "kind", "site__name", "description", "parameters"
    ):
        rows["Fabric"][name] = (pk, {"kind": kind, "site": site, "description": description, "parameters": parameters})
    for pk, fabric, name, kind, index in narrow(Pod.objects, Q(fabric__name__in=fabrics)).values_list(
        "id", "fabric__name", "name", "kind", "index"
    ):
        rows["Pod"][(fabric, name)] = (pk, {"kind": kind, "index": index})

    device_fields = (
        "role", "platform", "model", "lifecycle", "rail", "index", "mgmt_address",
        "eapi_port", "ssh_port", "gnmi_port", "credential", "loopback", "asn",
    )  # fmt: skip
    qs = narrow(Device.objects, _devices_q("", fabrics, set(hostnames)))
    for r in qs.values("id", "hostname", "fabric__name", "site__name", "pod__name", *device_fields).iterator(CHUNK):
        values = {"fabric": r["fabric__name"], "site": r["site__name"], "pod": r["pod__name"]}
        values.update({k: r[k] for k in device_fields})
        rows["Device"][r["hostname"]] = (r["id"], values)

    qs = narrow(Interface.objects, _devices_q("device__", fabrics, set(hostnames)))
    for pk, host, name, speed, lanes, admin_up, mtu, address, description, xcvr in qs.values_list(
        "id", "device__hostname", "name", "speed_gbps", "lanes", "admin_up", "mtu", "address", "description",
        "transceiver__name",
    ).iterator(CHUNK):  # fmt: skip
        rows["Interface"][(host, name)] = (
            pk,
            {
                "speed_gbps": speed,
                "lanes": lanes,
                "admin_up": admin_up,
                "mtu": mtu,
                "address": address,
                "description": description,
                "transceiver": xcvr,
            },
        )

    link_q = _devices_q("a_interface__device__", fabrics, set(hostnames)) | _devices_q(
        "b_interface__device__", fabrics, set(hostnames)
    )
    for pk, ah, ai, bh, bi, kind, capacity, state in narrow(Link.objects, link_q).values_list(
        "id", "a_interface__device__hostname", "a_interface__name", "b_interface__device__hostname",
        "b_interface__name", "kind", "capacity_gbps", "state",
    ).iterator(CHUNK):  # fmt: skip
        rows["Link"][((ah, ai), (bh, bi))] = (pk, {"kind": kind, "capacity_gbps": capacity, "state": state})

    host_q = Q(fabric__name__in=fabrics) | Q(name__in=set(host_names))
    for pk, name, fabric, pod, gpus, index in (
        narrow(GpuHost.objects, host_q)
        .values_list("id", "name", "fabric__name", "pod__name", "gpus", "index")
        .iterator(CHUNK)
    ):
        rows["GpuHost"][name] = (pk, {"fabric": fabric, "pod": pod, "gpus": gpus, "index": index})
    nic_q = (
        Q(host__fabric__name__in=fabrics)
        | Q(host__name__in=set(host_names))
        | _devices_q("leaf_interface__device__", fabrics, set(hostnames))
    )
    for pk, host, rail, name, speed, lh, li in (
        narrow(GpuNic.objects, nic_q)
        .values_list(
            "id", "host__name", "rail", "name", "speed_gbps", "leaf_interface__device__hostname", "leaf_interface__name"
        )
        .iterator(CHUNK)
    ):
        rows["GpuNic"][(host, rail)] = (pk, {"name": name, "speed_gbps": speed, "leaf": (lh, li)})

    channel_q = (
        Q(name__in=set(channel_names))
        | _devices_q("link__a_interface__device__", fabrics, set(hostnames))
        | _devices_q("link__b_interface__device__", fabrics, set(hostnames))
    )
    channels: dict[int, tuple[str, dict[str, Any]]] = {}
    for pk, name, ah, ai, freq, rate, modulation in narrow(OpticalChannel.objects, channel_q).values_list(
        "id", "name", "link__a_interface__device__hostname", "link__a_interface__name", "frequency_ghz", "rate_gbps",
        "modulation",
    ):  # fmt: skip
        channels[pk] = (name, {"link": (ah, ai), "spans": [], "frequency_ghz": freq, "rate_gbps": rate,
                               "modulation": modulation})  # fmt: skip
    if channels:
        through = OpticalChannel.spans.through
        for channel_id, span in through.objects.filter(opticalchannel_id__in=list(channels)).values_list(
            "opticalchannel_id", "opticalspan__name"
        ):
            channels[channel_id][1]["spans"].append(span)
    for pk, (name, values) in channels.items():
        values["spans"] = tuple(sorted(values["spans"]))
        rows["OpticalChannel"][name] = (pk, values)
    return cur
