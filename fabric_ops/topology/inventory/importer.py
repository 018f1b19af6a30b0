"""Make the database match a validated :class:`Spec`, with bulk writes in one transaction.

Scope: the fabrics the file names. Inside them, rows missing from the file are
deleted; rows of other fabrics are never touched, except links and NICs that
would otherwise hold an interface the file now uses elsewhere. Catalogues
(transceivers, sites, optical spans) are created or updated, never deleted,
because other fabrics share them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction

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
from .spec import MODEL_ORDER, Spec, key_str
from .state import Current, load_current

__all__ = ["KEPT_DRAINED", "ChangeReport", "apply_spec", "catalogue_names"]

logger = logging.getLogger(__name__)

# Operational link state owned by remediation (health drains, undrains on restore) and by operators' drain
# button: a file that leaves a link at its ordinary state (``up``) does not undo it. Any other state the file
# gives (planned, down) is an explicit change and wins; so does removing or re-cabling the link.
OPERATIONAL_LINK_STATES = ("drained",)
KEPT_DRAINED = "kept drained (remediation)"

BATCH = 2000
MODELS = {
    "Transceiver": Transceiver,
    "Site": Site,
    "OpticalSpan": OpticalSpan,
    "Fabric": Fabric,
    "Pod": Pod,
    "Device": Device,
    "Interface": Interface,
    "Link": Link,
    "GpuHost": GpuHost,
    "GpuNic": GpuNic,
    "OpticalChannel": OpticalChannel,
}


@dataclass
class ChangeReport:
    """What an import created, updated and deleted, per model, by name."""

    file: str
    dry_run: bool = False
    created: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in MODEL_ORDER})
    updated: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in MODEL_ORDER})
    deleted: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in MODEL_ORDER})
    # Rows whose operational state the import left alone: ``{model: ["name: kept drained (remediation)"]}``.
    # Not a change (a re-import of the same file still reports no changes), but always listed.
    kept: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in MODEL_ORDER})

    @property
    def changed(self) -> bool:
        return any(self.created[m] or self.updated[m] or self.deleted[m] for m in MODEL_ORDER)

    def counts(self) -> dict[str, tuple[int, int, int]]:
        """``model -> (created, updated, deleted)`` for models with any change."""
        return {
            m: (len(self.created[m]), len(self.updated[m]), len(self.deleted[m]))
            for m in MODEL_ORDER
            if self.created[m] or self.updated[m] or self.deleted[m]
        }

    def summary(self, limit: int = 8) -> str:
        """Human summary: one line per model with counts, then up to ``limit`` names per action."""
        head = f"{self.file}: {'dry run, nothing written' if self.dry_run else 'imported'}"
        lines = [head if self.changed else f"{head}; no changes"]
        for model, (c, u, d) in self.counts().items():
            lines.append(f"  {model}: {c} created, {u} updated, {d} deleted")
            for verb, names in (("+", self.created[model]), ("~", self.updated[model]), ("-", self.deleted[model])):
                shown = names[:limit]
                if shown:
                    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                    lines.append(f"    {verb} {', '.join(shown)}{more}")
        for model in MODEL_ORDER:
            names = self.kept[model]
            if names:
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                lines.append(f"  {model}: {len(names)} {KEPT_DRAINED}")
                lines.append(f"    = {', '.join(names[:limit])}{more}")
        return "\n".join(lines)


class _Plan:
    """The diff between the file and the database: keys to create, update, replace (delete + create), delete."""

    def __init__(self, spec: Spec, cur: Current):
        self.spec = spec
        self.cur = cur
        self.create: dict[str, list[Any]] = {m: [] for m in MODEL_ORDER}
        self.update: dict[str, list[Any]] = {m: [] for m in MODEL_ORDER}
        self.replace: dict[str, list[Any]] = {m: [] for m in MODEL_ORDER}
        self.delete: dict[str, list[Any]] = {m: [] for m in MODEL_ORDER}
        self.kept: dict[str, list[Any]] = {m: [] for m in MODEL_ORDER}
        # The rows to write: the file's, except links whose operational state is kept (the spec is not changed).
        self.rows: dict[str, dict[Any, dict[str, Any]]] = dict(spec.rows)
        self._keep_operational_state()
        self._diff()

    def _keep_operational_state(self) -> None:
        """A link remediation drained stays drained when the file leaves it ``up`` (the switch ports are shut:
        writing ``up`` would make the database lie until the next push re-opens them behind remediation's back)."""
        want, have = self.spec.rows["Link"], self.cur.rows["Link"]
        kept = {}
        for key, values in want.items():
            current = have.get(key)
            if current is None:
                continue
            state = current[1]["state"]
            if state in OPERATIONAL_LINK_STATES and values["state"] == "up":
                kept[key] = {**values, "state": state}
        if kept:
            self.rows["Link"] = {**want, **kept}
            self.kept["Link"] = sorted(kept)

    def _diff(self) -> None:
        spec_rows, cur_rows = self.rows, self.cur.rows
        for model in MODEL_ORDER:
            want, have = spec_rows[model], cur_rows[model]
            for key, values in want.items():
                if key not in have:
                    self.create[model].append(key)
                elif have[key][1] != values:
                    self.update[model].append(key)
        fabrics = self.spec.fabric_names
        spec_devices = spec_rows["Device"]
        scope = {h for h, (_, v) in cur_rows["Device"].items() if v["fabric"] in fabrics} | set(spec_devices)
        self.delete["Pod"] = [k for k in cur_rows["Pod"] if k not in spec_rows["Pod"]]
        self.delete["Device"] = [h for h in cur_rows["Device"] if h in scope and h not in spec_devices]
        self.delete["Interface"] = [
            k for k in cur_rows["Interface"] if k[0] in scope and k not in spec_rows["Interface"]
        ]
        gone = set(self.delete["Interface"])
        used = {ep for key in spec_rows["Link"] for ep in key} | {v["leaf"] for v in spec_rows["GpuNic"].values()}
        for key in cur_rows["Link"]:
            if key in spec_rows["Link"]:
                continue
            a, b = key
            if (a[0] in scope and b[0] in scope) or a in gone or b in gone or a in used or b in used:
                self.delete["Link"].append(key)
        host_scope = {h for h, (_, v) in cur_rows["GpuHost"].items() if v["fabric"] in fabrics}
        host_scope |= set(spec_rows["GpuHost"])
        self.delete["GpuHost"] = [h for h in cur_rows["GpuHost"] if h in host_scope and h not in spec_rows["GpuHost"]]
        for key, (_, values) in cur_rows["GpuNic"].items():
            want = spec_rows["GpuNic"].get(key)
            if want is None:
                leaf = values["leaf"]
                if key[0] in host_scope or leaf in gone or leaf in used:
                    self.delete["GpuNic"].append(key)
            elif want["leaf"] != values["leaf"]:
                self.replace["GpuNic"].append(key)  # OneToOne on the leaf port: free it first, then recreate
        replaced = set(self.replace["GpuNic"])
        self.update["GpuNic"] = [k for k in self.update["GpuNic"] if k not in replaced]
        dead_links = {key[0] for key in self.delete["Link"]}  # a channel names its link by the a end
        wanted_links = {k[0] for k in spec_rows["Link"]}
        for name, (_, values) in cur_rows["OpticalChannel"].items():
            want = spec_rows["OpticalChannel"].get(name)
            if want is None:
                link = values["link"]
                if link in dead_links or link in wanted_links or link[0] in scope:
                    self.delete["OpticalChannel"].append(name)
            elif want["link"] != values["link"] or values["link"] in dead_links:
                self.replace["OpticalChannel"].append(name)
        replaced = set(self.replace["OpticalChannel"])
        self.update["OpticalChannel"] = [k for k in self.update["OpticalChannel"] if k not in replaced]

    def report(self, report: ChangeReport) -> None:
        for model in MODEL_ORDER:
            report.created[model] = sorted(key_str(model, k) for k in self.create[model])
            report.updated[model] = sorted(key_str(model, k) for k in self.update[model] + self.replace[model])
            report.deleted[model] = sorted(key_str(model, k) for k in self.delete[model])
            report.kept[model] = sorted(key_str(model, k) for k in self.kept[model])


class _Writer:
    """Applies a plan with bulk statements; resolves natural keys to primary keys after each stage."""

    def __init__(self, plan: _Plan):
        self.plan = plan
        self.spec = plan.spec
        self.cur = plan.cur
        self.pk: dict[str, dict[Any, int]] = {
            m: {k: pk for k, (pk, _) in self.cur.rows[m].items()} for m in MODEL_ORDER
        }

    # -- delete -------------------------------------------------------------------------------------------------
    def delete_all(self) -> None:
        plan = self.plan
        for model in reversed(MODEL_ORDER):
            keys = plan.delete[model] + plan.replace[model]
            pks = [self.pk[model][k] for k in keys]
            for i in range(0, len(pks), BATCH):
                MODELS[model].objects.filter(pk__in=pks[i : i + BATCH]).delete()
            for k in plan.delete[model]:
                self.pk[model].pop(k, None)

    # -- create / update ----------------------------------------------------------------------------------------
    def _columns(self, model: str, key: Any, v: dict[str, Any]) -> dict[str, Any]:
        pk = self.pk
        if model in ("Transceiver",):
            return {"name": key, **v}
        if model == "Site":
            return {"name": key, **v}
        if model == "OpticalSpan":
            return {
                "name": key,
                "a_site_id": pk["Site"][v["a_site"]],
                "b_site_id": pk["Site"][v["b_site"]],
                "length_km": v["length_km"],
                "loss_db": v["loss_db"],
                "amplifier_count": v["amplifier_count"],
                "state": v["state"],
            }
        if model == "Fabric":
            return {
                "name": key,
                "kind": v["kind"],
                "site_id": pk["Site"][v["site"]] if v["site"] else None,
                "description": v["description"],
                "parameters": v["parameters"],
            }
        if model == "Pod":
            return {"fabric_id": pk["Fabric"][key[0]], "name": key[1], "kind": v["kind"], "index": v["index"]}
        if model == "Device":
            out = {k: v[k] for k in v if k not in ("fabric", "site", "pod")}
            out.update(
                hostname=key,
                fabric_id=pk["Fabric"][v["fabric"]],
                site_id=pk["Site"][v["site"]],
                pod_id=pk["Pod"][(v["fabric"], v["pod"])] if v["pod"] else None,
            )
            return out
        if model == "Interface":
            out = {k: v[k] for k in v if k != "transceiver"}
            out.update(
                device_id=pk["Device"][key[0]],
                name=key[1],
                transceiver_id=pk["Transceiver"][v["transceiver"]] if v["transceiver"] else None,
            )
            return out
        if model == "Link":
            return {
                "a_interface_id": pk["Interface"][key[0]],
                "b_interface_id": pk["Interface"][key[1]],
                "kind": v["kind"],
                "capacity_gbps": v["capacity_gbps"],
                "state": v["state"],
            }
        if model == "GpuHost":
            return {
                "name": key,
                "fabric_id": pk["Fabric"][v["fabric"]],
                "pod_id": pk["Pod"][(v["fabric"], v["pod"])] if v["pod"] else None,
                "gpus": v["gpus"],
                "index": v["index"],
            }
        if model == "GpuNic":
            return {
                "host_id": pk["GpuHost"][key[0]],
                "rail": key[1],
                "name": v["name"],
                "speed_gbps": v["speed_gbps"],
                "leaf_interface_id": pk["Interface"][v["leaf"]],
            }
        if model == "OpticalChannel":
            return {
                "name": key,
                "link_id": self.pk["Link"][v["link"]],
                "frequency_ghz": v["frequency_ghz"],
                "rate_gbps": v["rate_gbps"],
                "modulation": v["modulation"],
            }
        raise AssertionError(model)

    def _refresh_pks(self, model: str, keys: list[Any]) -> None:
        """Primary keys of rows just created (one query per stage; portable, unlike RETURNING support)."""
        if not keys:
            return
        fabrics = self.spec.fabric_names
        if model in ("Transceiver", "Site", "OpticalSpan", "Fabric", "OpticalChannel"):
            names = set(keys)
            qs = MODELS[model].objects.filter(name__in=names).values_list("name", "id")
            self.pk[model].update(dict(qs))
        elif model == "Pod":
            qs = Pod.objects.filter(fabric__name__in=fabrics).values_list("fabric__name", "name", "id")
            self.pk[model].update({(f, n): pk for f, n, pk in qs})
        elif model == "Device":
            qs = Device.objects.filter(fabric__name__in=fabrics).values_list("hostname", "id")
            self.pk[model].update(dict(qs.iterator(5000)))
        elif model == "Interface":
            qs = Interface.objects.filter(device__fabric__name__in=fabrics).values_list(
                "device__hostname", "name", "id"
            )
            self.pk[model].update({(h, n): pk for h, n, pk in qs.iterator(5000)})
        elif model == "Link":
            qs = Link.objects.filter(a_interface__device__fabric__name__in=fabrics).values_list(
                "a_interface__device__hostname", "a_interface__name", "id"
            )
            self.pk[model].update({(h, n): pk for h, n, pk in qs.iterator(5000)})
        elif model == "GpuHost":
            qs = GpuHost.objects.filter(fabric__name__in=fabrics).values_list("name", "id")
            self.pk[model].update(dict(qs.iterator(5000)))

    def upsert_all(self) -> None:
        plan = self.plan
        for model in MODEL_ORDER:
            cls = MODELS[model]
            rows = plan.rows[model]
            updates = plan.update[model]
            if updates:
                if model == "Device":
                    self._clear_moved_addresses(updates)
                values = [self._columns(model, key, rows[key]) for key in updates]
                _update_rows(cls, [self.pk[model][key] for key in updates], values)
            creates = plan.create[model] + plan.replace[model]
            if creates:
                _insert_rows(cls, [self._columns(model, k, rows[k]) for k in creates])
                if model != "GpuNic":  # nothing points at a NIC
                    self._refresh_pks(model, creates)
            if model == "OpticalChannel":
                self._write_channel_spans(updates, creates)

    def _clear_moved_addresses(self, updates: list[str]) -> None:
        """Null the unique addresses that change first, so devices can swap addresses in one import."""
        cur, want = self.cur.rows["Device"], self.spec.rows["Device"]
        moved = [
            self.pk["Device"][h]
            for h in updates
            if (cur[h][1]["mgmt_address"], cur[h][1]["loopback"]) != (want[h]["mgmt_address"], want[h]["loopback"])
        ]
        if moved:
            _update_rows(Device, moved, [{"mgmt_address": None, "loopback": None}] * len(moved))

    def _write_channel_spans(self, updated: list[str], created: list[str]) -> None:
        through = OpticalChannel.spans.through
        rows = self.spec.rows["OpticalChannel"]
        cur = self.cur.rows["OpticalChannel"]
        changed = [n for n in updated if cur[n][1]["spans"] != rows[n]["spans"]]
        if changed:
            through.objects.filter(opticalchannel_id__in=[self.pk["OpticalChannel"][n] for n in changed]).delete()
        _insert_rows(
            through,
            [
                {"opticalchannel_id": self.pk["OpticalChannel"][n], "opticalspan_id": self.pk["OpticalSpan"][s]}
                for n in changed + created
                for s in rows[n]["spans"]
            ],
        )


def _prepared(cls: type[models.Model], columns: list[str]) -> tuple[list[str], list[Any]]:
    """Quoted column names, and the fields whose values need the backend's adaptation (inet, JSON)."""
    fields = [cls._meta.get_field(c) for c in columns]
    quoted = [connection.ops.quote_name(f.column) for f in fields]
    adapt = [f if isinstance(f, models.GenericIPAddressField | models.JSONField) else None for f in fields]
    return quoted, adapt


def _row(values: dict[str, Any], adapt: list[Any]) -> tuple:
    if not any(adapt):
        return tuple(values.values())
    return tuple(
        v if f is None or v is None else f.get_db_prep_save(v, connection)
        for v, f in zip(values.values(), adapt, strict=True)
    )


def _insert_rows(cls: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """Insert without building a model instance per row (bulk_create's cost at 50k+ rows).

    PostgreSQL: ``COPY ... FROM STDIN`` (text format parses inet and JSON itself); other databases:
    ``executemany`` with Django's portable ``%s`` placeholders.
    """
    if not rows:
        return
    columns = list(rows[0])
    quoted, adapt = _prepared(cls, columns)
    table = connection.ops.quote_name(cls._meta.db_table)
    if connection.vendor == "postgresql":
        as_json = [isinstance(f, models.JSONField) for f in adapt]
        sql = f"COPY {table} ({', '.join(quoted)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for r in rows:
                values = r.values()
                if any(as_json):
                    values = [json.dumps(v) if j and v is not None else v for v, j in zip(values, as_json, strict=True)]
                copy.write_row(tuple(values))
        return
    sql = f"INSERT INTO {table} ({', '.join(quoted)}) VALUES ({', '.join(['%s'] * len(quoted))})"
    with connection.cursor() as cursor:
        for i in range(0, len(rows), BATCH):
            cursor.executemany(sql, [_row(r, adapt) for r in rows[i : i + BATCH]])


def _update_rows(cls: type[models.Model], pks: list[int], rows: list[dict[str, Any]]) -> None:
    """One ``UPDATE ... WHERE id = %s`` per row via executemany (bulk_update's CASE chains grow quadratic-ish)."""
    if not rows:
        return
    columns = [c for c in rows[0] if c not in ("name", "hostname")]
    quoted, adapt = _prepared(cls, columns)
    sql = (
        f"UPDATE {connection.ops.quote_name(cls._meta.db_table)} SET {', '.join(f'{q} = %s' for q in quoted)} "
        f"WHERE {connection.ops.quote_name(cls._meta.pk.column)} = %s"
    )
    with connection.cursor() as cursor:
        for i in range(0, len(rows), BATCH):
            cursor.executemany(
                sql,
                [
                    (*_row({c: r[c] for c in columns}, adapt), pk)
                    for r, pk in zip(rows[i : i + BATCH], pks[i : i + BATCH], strict=True)
                ],
            )


def apply_spec(spec: Spec, *, dry_run: bool = False) -> ChangeReport:
    """Diff ``spec`` against the database and write the difference in one transaction (rolled back on dry run)."""
    report = ChangeReport(file=spec.file, dry_run=dry_run)
    with transaction.atomic():
        cur = load_current(
            spec.fabric_names,
            # Validation refuses hostnames and GPU hosts held by fabrics the file does not name, so the
            # named fabrics are the whole scope: no per-name lookups (10k-name IN lists) are needed.
            hostnames=set(),
            host_names=set(),
            catalogue=catalogue_names(spec),
            channel_names=set(spec.rows["OpticalChannel"]),
        )
        plan = _Plan(spec, cur)
        plan.report(report)
        if report.changed:
            writer = _Writer(plan)
            writer.delete_all()
            writer.upsert_all()
            # Bulk SQL sends no model signals: tell the graph cache (guardrails read it) once the rows are in.
            transaction.on_commit(graph_cache.invalidate)
        if dry_run:
            transaction.set_rollback(True)  # run every statement (constraints included), keep none of it
    logger.info("inventory %s: %s", spec.file, report.counts() or "no changes")
    if report.kept["Link"]:
        logger.info("inventory %s: %d links %s", spec.file, len(report.kept["Link"]), KEPT_DRAINED)
    return report


def catalogue_names(spec: Spec) -> dict[str, set[str]]:
    """Catalogue rows the file defines or references (referenced ones may already be in the database)."""
    rows = spec.rows
    sites = {v["site"] for m in ("Fabric", "Device") for v in rows[m].values() if v["site"]}
    sites |= {v[k] for v in rows["OpticalSpan"].values() for k in ("a_site", "b_site")}
    xcvrs = {v["transceiver"] for v in rows["Interface"].values() if v["transceiver"]}
    spans = {s for v in rows["OpticalChannel"].values() for s in v["spans"]}
    return {
        "Site": sites | set(rows["Site"]),
        "Transceiver": xcvrs | set(rows["Transceiver"]),
        "OpticalSpan": spans | set(rows["OpticalSpan"]),
    }
