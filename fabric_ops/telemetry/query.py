"""Reading telemetry back: InfluxQL over ``/query``, which InfluxDB 1.x, 2.x (DBRP mapping) and 3.x all answer.

Plain urllib3 (already a dependency of influxdb-client) rather than influxdb-client's QueryApi, because QueryApi
speaks Flux, which neither 1.x nor 3.x serve. The bucket setting ``db/rp`` becomes the ``db`` and ``rp`` query
parameters (2.x resolves them through its DBRP mapping). Authentication: a token of the form ``user:password``
is sent as HTTP Basic (1.x users, 2.x v1-compatibility users), any other token as ``Authorization: Token``.

Every name and value is validated and quoted (see :mod:`fabric_ops.telemetry.influxql`), never pasted.
Top-N is computed as one grouped aggregate per port, sorted here: plain ``GROUP BY`` aggregates are the subset
of InfluxQL every server implements, whereas ``TOP()`` over a subquery is not (see docs/telemetry-storage.md).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3

from fabric_ops.telemetry.influxql import (
    QueryError,
    check_aggregate,
    check_duration,
    check_name,
    quote_ident,
    quote_literal,
    time_bound,
)
from fabric_ops.telemetry.writer import redact_url

logger = logging.getLogger(__name__)

__all__ = ["InfluxQuery", "LatestValue", "PortValue", "QueryError", "Series", "auth_headers"]

FILLS = frozenset({"none", "null", "previous", "linear", "0"})
TagFilter = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a result: its group-by tags and its (time ns, value) points."""

    tags: dict[str, str]
    points: list[tuple[int, Any]]


@dataclass(frozen=True, slots=True)
class PortValue:
    """One row of a top-N answer."""

    device: str
    interface: str
    value: float


@dataclass(frozen=True, slots=True)
class LatestValue:
    """The last point of one series."""

    tags: dict[str, str]
    time_ns: int
    value: Any


def auth_headers(token: str) -> dict[str, str]:
    """``user:password`` -> HTTP Basic (1.x users, 2.x v1-compatibility users); any other token -> ``Token``."""
    if token and ":" in token:
        return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    if token:
        return {"Authorization": f"Token {token}"}
    return {}


def _where(tags: TagFilter | None, start: int | str, stop: int | str | None) -> str:
    clauses = [f"time >= {time_bound(start, 'start')}"]
    if stop is not None:
        clauses.append(f"time <= {time_bound(stop, 'stop')}")
    for key, value in sorted((tags or {}).items()):
        ident = quote_ident(check_name(key, "tag key"))
        values = [value] if isinstance(value, str) else list(value)
        if not values:
            raise QueryError(f"tag filter {key!r} has no values")
        alternatives = " OR ".join(f"{ident} = {quote_literal(v)}" for v in values)
        clauses.append(f"({alternatives})")
    return " AND ".join(clauses)


class InfluxQuery:
    """InfluxQL reads for the UI and the detectors. Thread-safe (urllib3 pool)."""

    def __init__(self, url: str, bucket: str, token: str = "", timeout: float = 10.0):
        self.url = url.rstrip("/")
        db, _, rp = bucket.partition("/")
        if not db:
            raise QueryError(f"bucket {bucket!r} names no database (expected database/retention-policy)")
        self.database, self.retention_policy = db, rp
        self._headers = {"Accept": "application/json", **auth_headers(token)}
        self._http = urllib3.PoolManager(num_pools=2, maxsize=8, timeout=urllib3.Timeout(total=timeout), retries=False)

    @classmethod
    def from_settings(cls, **overrides: Any) -> InfluxQuery:
        from django.conf import settings

        kwargs: dict[str, Any] = {
            "url": settings.FABRIC_OPS_INFLUX_URL,
            "bucket": settings.FABRIC_OPS_INFLUX_BUCKET,
            "token": settings.FABRIC_OPS_INFLUX_TOKEN,
            "timeout": settings.FABRIC_OPS_INFLUX_TIMEOUT_S,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:
        return f"InfluxQuery({redact_url(self.url)}, db={self.database!r}, rp={self.retention_policy!r})"

    # -- transport --------------------------------------------------------------------------------------------
    def raw(self, statement: str) -> list[dict[str, Any]]:
        """Run one read-only InfluxQL statement; returns the ``series`` list of its result (possibly empty)."""
        fields = {"db": self.database, "q": statement, "epoch": "ns"}
        if self.retention_policy:
            fields["rp"] = self.retention_policy
        try:
            resp = self._http.request("GET", f"{self.url}/query", fields=fields, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise QueryError(f"InfluxDB {redact_url(self.url)} unreachable: {exc}") from exc
        text = resp.data.decode(errors="replace")
        if resp.status != 200:
            raise QueryError(f"InfluxDB {redact_url(self.url)} answered {resp.status} to {statement!r}: {text[:300]}")
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise QueryError(f"InfluxDB {redact_url(self.url)} sent non-JSON for {statement!r}: {text[:200]}") from exc
        if "error" in body:
            raise QueryError(f"InfluxDB refused {statement!r}: {body['error']}")
        results = body.get("results") or [{}]
        if "error" in results[0]:
            raise QueryError(f"InfluxDB refused {statement!r}: {results[0]['error']}")
        return results[0].get("series", [])

    def ping(self) -> bool:
        """True when the server answers /ping (for /api/health)."""
        return self.health()["ok"]

    def health(self) -> dict[str, Any]:
        """``{"ok", "url", "version", "latency_ms", "error"}`` from /ping, for /api/health (token never included)."""
        started = time.perf_counter()
        result: dict[str, Any] = {"ok": False, "url": redact_url(self.url), "version": "", "latency_ms": None}
        try:
            resp = self._http.request("GET", f"{self.url}/ping", headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            result["error"] = f"unreachable: {exc}"
            return result
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        result["version"] = resp.headers.get("X-Influxdb-Version", "")
        result["ok"] = resp.status == 204
        result["error"] = "" if result["ok"] else f"/ping answered {resp.status}"
        return result

    # -- the questions the platform asks ----------------------------------------------------------------------
    def series(
        self,
        measurement: str,
        field: str,
        tags: TagFilter,
        *,
        start: int | str = "15m",
        stop: int | str | None = None,
        every: str = "10s",
        aggregate: str = "mean",
        group_by: Sequence[str] = (),
        fill: str = "null",
    ) -> list[Series]:
        """Aggregated time series of one field, one per group-by tag combination.

        ``start``/``stop``: epoch ns (int) or a duration before now (``"15m"``). ``every``: bucket width.
        """
        if fill not in FILLS:
            raise QueryError(f"invalid fill {fill!r}: expected one of {', '.join(sorted(FILLS))}")
        groups = ", ".join([f"time({check_duration(every, 'every')})"] + [quote_ident(check_name(g)) for g in group_by])
        statement = (
            f'SELECT {check_aggregate(aggregate)}({quote_ident(check_name(field, "field"))}) AS "value" '
            f"FROM {quote_ident(check_name(measurement, 'measurement'))} "
            f"WHERE {_where(tags, start, stop)} GROUP BY {groups} fill({fill})"
        )
        return [
            Series(dict(s.get("tags") or {}), [(int(row[0]), row[1]) for row in s.get("values", [])])
            for s in self.raw(statement)
        ]

    def interface_series(
        self, device: str, interface: str, field: str, *, measurement: str = "interface", **kwargs: Any
    ) -> list[tuple[int, Any]]:
        """One interface's field over a window: ``[(time_ns, value), ...]`` (empty if nothing was stored)."""
        found = self.series(measurement, field, {"device": device, "interface": interface}, **kwargs)
        return found[0].points if found else []

    def link_series(
        self,
        ends: Iterable[tuple[str, str]],
        field: str,
        *,
        measurement: str = "interface",
        **kwargs: Any,
    ) -> dict[tuple[str, str], list[tuple[int, Any]]]:
        """Both ends of a link, each ``(device, interface)``, in one query: ``{(device, interface): points}``."""
        ends = list(ends)
        if not ends:
            raise QueryError("link_series needs at least one (device, interface) end")
        fill = kwargs.pop("fill", "null")
        if fill not in FILLS:
            raise QueryError(f"invalid fill {fill!r}: expected one of {', '.join(sorted(FILLS))}")
        start, stop = kwargs.pop("start", "15m"), kwargs.pop("stop", None)
        every, aggregate = kwargs.pop("every", "10s"), kwargs.pop("aggregate", "mean")
        if kwargs:
            raise QueryError(f"unexpected arguments {sorted(kwargs)}")
        match = " OR ".join(
            f'("device" = {quote_literal(device)} AND "interface" = {quote_literal(interface)})'
            for device, interface in ends
        )
        statement = (
            f'SELECT {check_aggregate(aggregate)}({quote_ident(check_name(field, "field"))}) AS "value" '
            f"FROM {quote_ident(check_name(measurement, 'measurement'))} "
            f"WHERE {_where(None, start, stop)} AND ({match}) "
            f'GROUP BY time({check_duration(every, "every")}), "device", "interface" fill({fill})'
        )
        result: dict[tuple[str, str], list[tuple[int, Any]]] = {end: [] for end in ends}
        for s in self.raw(statement):
            tags = s.get("tags") or {}
            result[(tags.get("device", ""), tags.get("interface", ""))] = [
                (int(row[0]), row[1]) for row in s.get("values", [])
            ]
        return result

    def top_ports(
        self,
        field: str,
        *,
        n: int = 10,
        measurement: str = "interface",
        start: int | str = "5m",
        stop: int | str | None = None,
        aggregate: str = "mean",
        tags: TagFilter | None = None,
    ) -> list[PortValue]:
        """The ``n`` ports with the highest ``aggregate(field)`` over the window (e.g. ECN marks/s, PFC pauses/s,
        errors/s), highest first; ties broken by device then interface so the answer is stable."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise QueryError(f"top_ports: n must be a positive integer, got {n!r}")
        statement = (
            f'SELECT {check_aggregate(aggregate)}({quote_ident(check_name(field, "field"))}) AS "value" '
            f"FROM {quote_ident(check_name(measurement, 'measurement'))} "
            f'WHERE {_where(tags, start, stop)} GROUP BY "device", "interface"'
        )
        rows = []
        for s in self.raw(statement):
            tags_ = s.get("tags") or {}
            value = s["values"][0][1] if s.get("values") else None
            if value is not None:
                rows.append(PortValue(tags_.get("device", ""), tags_.get("interface", ""), float(value)))
        rows.sort(key=lambda r: (-r.value, r.device, r.interface))
        return rows[:n]

    def latest(
        self,
        measurement: str,
        field: str,
        *,
        tags: TagFilter | None = None,
        group_by: Sequence[str] = ("device", "interface"),
        start: int | str = "1h",
    ) -> list[LatestValue]:
        """The last value of ``field`` per series (grouped by ``group_by``) within ``start`` (bounded, so the
        server does not scan every shard)."""
        groups = ", ".join(quote_ident(check_name(g, "group-by tag")) for g in group_by) or "*"
        statement = (
            f'SELECT last({quote_ident(check_name(field, "field"))}) AS "value" '
            f"FROM {quote_ident(check_name(measurement, 'measurement'))} "
            f"WHERE {_where(tags, start, None)} GROUP BY {groups}"
        )
        return [
            LatestValue(dict(s.get("tags") or {}), int(s["values"][0][0]), s["values"][0][1])
            for s in self.raw(statement)
            if s.get("values")
        ]

    def count(self, measurement: str, field: str, *, tags: TagFilter | None = None, start: int | str = 0) -> int:
        """Number of stored points with ``field`` (tests and the loss accounting use it)."""
        series = self.raw(
            f"SELECT count({quote_ident(check_name(field, 'field'))}) "
            f"FROM {quote_ident(check_name(measurement, 'measurement'))} WHERE {_where(tags, start, None)}"
        )
        return int(series[0]["values"][0][1]) if series else 0

    def close(self) -> None:
        self._http.clear()
