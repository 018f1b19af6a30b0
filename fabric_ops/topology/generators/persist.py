"""Write a FabricPlan to the database fast enough for a 100k-GPU fabric.

Why not ``Model.objects.create`` or plain ``bulk_create``: a 100k-GPU plan is ~850k rows, and one model
instance per row costs minutes and gigabytes. Instead primary keys are allocated up front (PostgreSQL: a
block of ``nextval`` from each table's identity sequence; elsewhere: after the current maximum, inside the
transaction), so foreign keys are plain arithmetic on plan positions, and rows stream into the table as
tuples: ``COPY ... FROM STDIN`` on PostgreSQL, ``bulk_create`` in batches on other databases.
Everything happens inside one ``transaction.atomic``: a failure leaves nothing behind.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Sequence

from django.db import connection, models, transaction
from django.db.models import Max, Q

from fabric_ops.errors import GeneratorError
from fabric_ops.topology.graph import cache as graph_cache

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
from .catalogue import optic
from .plan import ExtRef, FabricPlan

logger = logging.getLogger(__name__)

__all__ = ["delete_fabric", "persist_plan", "persist_plans"]

_BATCH = 2_000


def _is_pg() -> bool:
    return connection.vendor == "postgresql"


def _allocate_ids(model: type[models.Model], n: int) -> Sequence[int]:
    """Reserve ``n`` consecutive primary keys for ``model`` (a range: cheap to hold for 500k rows)."""
    if n == 0:
        return range(0)
    table = model._meta.db_table
    if _is_pg():
        # One block of the identity sequence: lock out concurrent inserts into the table (they take ROW EXCLUSIVE
        # before calling nextval) until commit, then move the sequence past the block. Two statements instead of
        # n nextval calls (13 s for 500k ids on a busy 2-core machine).
        with connection.cursor() as cur:
            cur.execute(f"LOCK TABLE {connection.ops.quote_name(table)} IN SHARE ROW EXCLUSIVE MODE")
            cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            seq = cur.fetchone()[0]
            cur.execute("SELECT nextval(%s)", [seq])
            first = cur.fetchone()[0]
            cur.execute("SELECT setval(%s, %s)", [seq, first + n - 1])
        return range(first, first + n)
    # Other databases (SQLite for local runs): one writer at a time, so max+1.. inside the transaction is safe.
    start = (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    return range(start, start + n)


def _write(model: type[models.Model], fields: list[str], rows: Iterable[tuple]) -> int:
    """Insert ``rows`` (tuples in ``fields`` order, attnames) into ``model``'s table; returns the row count."""
    count = 0
    if _is_pg():
        columns = {f.attname: f.column for f in model._meta.concrete_fields}
        cols = ", ".join(connection.ops.quote_name(columns[f]) for f in fields)
        sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({cols}) FROM STDIN"
        with connection.cursor() as cur, cur.cursor.copy(sql) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
                count += 1
        return count
    it = iter(rows)
    while batch := list(itertools.islice(it, _BATCH)):
        model.objects.bulk_create([model(**dict(zip(fields, row, strict=True))) for row in batch])
        count += len(batch)
    return count


def _check_free(model: type[models.Model], field: str, values: list[str], what: str) -> None:
    """Fail with a clear message (not an IntegrityError) when a unique value is already taken."""
    for i in range(0, len(values), 5_000):
        taken = list(model.objects.filter(**{f"{field}__in": values[i : i + 5_000]}).values_list(field, flat=True)[:3])
        if taken:
            raise GeneratorError(f"{what} {', '.join(map(str, taken))} already exist(s) in the database")


def _resolve_external(plan: FabricPlan) -> dict[ExtRef, int]:
    refs = {e for link in plan.links for e in (link.a, link.b) if isinstance(e, ExtRef)}
    found: dict[ExtRef, int] = {}
    for fabric in {r.fabric for r in refs}:
        wanted = {(r.hostname, r.interface) for r in refs if r.fabric == fabric}
        rows = Interface.objects.filter(
            device__fabric__name=fabric, device__hostname__in={h for h, _ in wanted}
        ).values_list("id", "device__hostname", "name")
        for pk, host, name in rows:
            if (host, name) in wanted:
                found[ExtRef(fabric, host, name)] = pk
    missing = refs - found.keys()
    if missing:
        m = sorted(missing)[0]
        raise GeneratorError(f"link endpoint {m.hostname}:{m.interface} of fabric {m.fabric} is not in the database")
    return found


def delete_fabric(name: str) -> dict[str, int]:
    """Delete a fabric and everything cabled to it, fast: one DELETE per table, no per-row collection.

    ``Fabric.delete()`` would make Django's collector load every interface and link (minutes for 100k GPUs).
    Links with one end in the fabric go too: replacing a site drops its DCI uplinks from the backbone.
    ``_raw_delete`` is Django's own bulk-delete path for querysets without cascades to follow; the order below
    removes every dependent row first, so none are left to follow.
    """
    fabric = Fabric.objects.filter(name=name).first()
    if fabric is None:
        raise GeneratorError(f"fabric {name!r} does not exist")
    alias = connection.alias
    counts = {}
    with transaction.atomic():
        _, per_model = OpticalChannel.objects.filter(
            Q(link__a_interface__device__fabric=fabric) | Q(link__b_interface__device__fabric=fabric)
        ).delete()
        counts["optical_channels"] = per_model.get(OpticalChannel._meta.label, 0)
        steps = (
            ("gpu_nics", GpuNic.objects.filter(host__fabric=fabric)),
            # two statements: an OR across both ends' joins defeats the planner
            ("links", Link.objects.filter(a_interface__device__fabric=fabric)),
            ("links_b", Link.objects.filter(b_interface__device__fabric=fabric)),
            ("interfaces", Interface.objects.filter(device__fabric=fabric)),
            ("gpu_hosts", GpuHost.objects.filter(fabric=fabric)),
            ("devices", Device.objects.filter(fabric=fabric)),
            ("pods", Pod.objects.filter(fabric=fabric)),
        )
        for key, queryset in steps:
            started = time.monotonic()
            counts[key] = queryset._raw_delete(alias)
            logger.debug("delete %s of %s: %d rows in %.1f s", key, name, counts[key], time.monotonic() - started)
        counts["links"] += counts.pop("links_b")
        fabric.delete()
    logger.info("deleted fabric %s: %s", name, counts)
    return counts


def persist_plans(plans: list[FabricPlan], replace: bool = False) -> list[Fabric]:
    """Persist several plans (a multi-site set: sites first, backbone last) in one transaction."""
    with transaction.atomic():
        return [persist_plan(p, replace=replace) for p in plans]


def persist_plan(plan: FabricPlan, replace: bool = False) -> Fabric:
    """Write ``plan`` as one Fabric and all its rows; ``replace`` deletes an existing fabric of that name first."""
    started = time.monotonic()
    with transaction.atomic():
        transaction.on_commit(graph_cache.invalidate)  # bulk inserts send no signals the graph cache hears
        existing = Fabric.objects.filter(name=plan.name)
        if existing.exists():
            if not replace:
                raise GeneratorError(f"name: fabric {plan.name!r} already exists (use replace to rebuild it)")
            logger.info("deleting fabric %s before rebuilding it", plan.name)
            delete_fabric(plan.name)
            OpticalSpan.objects.filter(name__in=[s.name for s in plan.spans], channels__isnull=True).delete()
        _check_free(Device, "hostname", [d.hostname for d in plan.devices], "devices")
        _check_free(Device, "mgmt_address", [d.mgmt_address for d in plan.devices], "management addresses")
        _check_free(Device, "loopback", [d.loopback for d in plan.devices], "loopbacks")
        _check_free(GpuHost, "name", [h.name for h in plan.hosts], "GPU hosts")
        _check_free(OpticalSpan, "name", [s.name for s in plan.spans], "optical spans")
        _check_free(OpticalChannel, "name", [c.name for c in plan.channels], "optical channels")

        site_ids = {}
        for s in plan.sites:
            site, _ = Site.objects.get_or_create(
                name=s.name, defaults={"city": s.city, "latitude": s.latitude, "longitude": s.longitude}
            )
            site_ids[s.name] = site.pk
        fabric = Fabric.objects.create(
            name=plan.name,
            kind=plan.kind,
            site_id=site_ids.get(plan.site) if plan.site else None,
            description=plan.description,
            parameters=plan.parameters,
        )
        optic_ids = {}
        for name in {i.transceiver for i in plan.interfaces if i.transceiver}:
            spec = optic(name)
            row, _ = Transceiver.objects.get_or_create(name=name, defaults=spec._asdict())
            optic_ids[name] = row.pk
        ext = _resolve_external(plan)

        pod_ids = _allocate_ids(Pod, len(plan.pods))
        _write(
            Pod,
            ["id", "fabric_id", "name", "kind", "index"],
            ((pod_ids[i], fabric.pk, p.name, p.kind, p.index) for i, p in enumerate(plan.pods)),
        )
        params = plan.parameters
        ports = (params.get("eapi_port", 443), params.get("ssh_port", 10022), params.get("gnmi_port", 6030))
        credential = params.get("credential", "default")
        dev_ids = _allocate_ids(Device, len(plan.devices))
        fid = fabric.pk
        _write(
            Device,
            ["id", "hostname", "fabric_id", "site_id", "pod_id", "role", "platform", "model", "lifecycle", "rail",
             "index", "mgmt_address", "eapi_port", "ssh_port", "gnmi_port", "credential", "loopback", "asn"],
            (
                (dev_ids[i], d.hostname, fid, site_ids[d.site], None if d.pod is None else pod_ids[d.pod], d.role,
                 d.platform, d.model, "active", d.rail, d.index, d.mgmt_address, *ports, credential, d.loopback,
                 d.asn)
                for i, d in enumerate(plan.devices)
            ),
        )  # fmt: skip
        if_ids = _allocate_ids(Interface, len(plan.interfaces))
        _write(
            Interface,
            ["id", "device_id", "name", "speed_gbps", "lanes", "admin_up", "mtu", "address", "description",
             "transceiver_id"],
            (
                (if_ids[i], dev_ids[f.device], f.name, f.speed_gbps, f.lanes, f.admin_up, 9214, f.address,
                 f.description, optic_ids[f.transceiver] if f.transceiver else None)
                for i, f in enumerate(plan.interfaces)
            ),
        )  # fmt: skip
        link_ids = _allocate_ids(Link, len(plan.links))

        def end(e: int | ExtRef) -> int:
            return ext[e] if isinstance(e, ExtRef) else if_ids[e]

        _write(
            Link,
            ["id", "a_interface_id", "b_interface_id", "kind", "capacity_gbps", "state"],
            ((link_ids[i], end(k.a), end(k.b), k.kind, k.capacity_gbps, "up") for i, k in enumerate(plan.links)),
        )
        host_ids = _allocate_ids(GpuHost, len(plan.hosts))
        _write(
            GpuHost,
            ["id", "name", "fabric_id", "pod_id", "gpus", "index"],
            (
                (host_ids[i], h.name, fid, None if h.pod is None else pod_ids[h.pod], h.gpus, h.index)
                for i, h in enumerate(plan.hosts)
            ),
        )
        nic_ids = _allocate_ids(GpuNic, len(plan.nics))
        _write(
            GpuNic,
            ["id", "host_id", "rail", "name", "speed_gbps", "leaf_interface_id"],
            (
                (nic_ids[i], host_ids[n.host], n.rail, n.name, n.speed_gbps, if_ids[n.leaf_interface])
                for i, n in enumerate(plan.nics)
            ),
        )
        span_ids = {}
        for s in plan.spans:
            span = OpticalSpan.objects.create(
                name=s.name, a_site_id=site_ids[s.a_site], b_site_id=site_ids[s.b_site], length_km=s.length_km,
                loss_db=s.loss_db, amplifier_count=s.amplifier_count,
            )  # fmt: skip
            span_ids[s.name] = span.pk
        for c in plan.channels:
            channel = OpticalChannel.objects.create(
                name=c.name, link_id=link_ids[c.link], frequency_ghz=c.frequency_ghz, rate_gbps=c.rate_gbps,
                modulation=c.modulation,
            )  # fmt: skip
            channel.spans.set([span_ids[n] for n in c.spans])
    logger.info("persisted fabric %s in %.1f s: %s", plan.name, time.monotonic() - started, plan.counts())
    return fabric
