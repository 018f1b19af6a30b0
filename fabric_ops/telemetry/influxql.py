"""Safe InfluxQL building blocks: quoting identifiers and string literals, validating names and durations.

InfluxQL has no bind parameters that every server honours (1.x has ``params=``, 3.x does not), so every value that
reaches a query goes through :func:`quote_ident` or :func:`quote_literal`. Their escaping follows the InfluxQL scanner
(``influxql/scanner.go`` ``ScanString``): inside quotes only ``\\\\``, ``\\n`` and an escaped quote are legal, and a raw
newline ends the token with an error, so both are escaped; every other character is literal.
On top of quoting, names are validated (:func:`check_name`) so that a typo fails loudly instead of silently
querying a measurement that does not exist.
"""

from __future__ import annotations

import re

from fabric_ops.errors import FabricOpsError

__all__ = [
    "AGGREGATES",
    "InfluxQLError",
    "QueryError",
    "check_aggregate",
    "check_duration",
    "check_name",
    "quote_ident",
    "quote_literal",
    "time_bound",
]


class QueryError(FabricOpsError):
    """A telemetry query failed: bad parameters, or InfluxDB refused or failed it; the message says which."""


class InfluxQLError(QueryError):
    """A query parameter is not a valid name, duration or aggregate; the message names the parameter."""


# Measurement, tag and field names FabricOps uses: letters, digits and a few separators (gNMI path leaves,
# "in-octets", "ecn_marked", "pfc.rx_pause"). Anything else is most likely a bug or an injection attempt.
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/\-]{0,127}$")
DURATION_RE = re.compile(r"^[1-9][0-9]{0,9}(ns|u|µ|ms|s|m|h|d|w)$")
# Selectors and aggregates that take one field argument; the selection is what the UI and detectors need.
AGGREGATES = frozenset(
    {"mean", "median", "max", "min", "sum", "count", "first", "last", "spread", "stddev", "mode", "integral"}
)


def _escape(value: str, quote: str) -> str:
    return value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def quote_ident(name: str) -> str:
    """Double-quoted InfluxQL identifier (measurement, tag key, field key, database, retention policy)."""
    if not isinstance(name, str) or not name:
        raise InfluxQLError(f"identifier must be a non-empty string, got {name!r}")
    return '"' + _escape(name, '"') + '"'


def quote_literal(value: str) -> str:
    """Single-quoted InfluxQL string literal (tag values in WHERE clauses)."""
    if not isinstance(value, str):
        raise InfluxQLError(f"string literal expected, got {type(value).__name__} {value!r}")
    return "'" + _escape(value, "'") + "'"


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a plausible measurement/tag/field name, else raise naming ``what``."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InfluxQLError(f"invalid {what} {name!r}: expected letters, digits, '_', '-', '.', ':', '/'")
    return name


def check_duration(value: str, what: str = "duration") -> str:
    """Return ``value`` if it is an InfluxQL duration literal such as ``10s`` or ``15m``."""
    if not isinstance(value, str) or not DURATION_RE.match(value):
        raise InfluxQLError(f"invalid {what} {value!r}: expected an InfluxQL duration such as 10s, 5m, 1h")
    return value


def check_aggregate(func: str) -> str:
    """Return ``func`` if it is one of :data:`AGGREGATES`."""
    if func not in AGGREGATES:
        raise InfluxQLError(f"invalid aggregate {func!r}: expected one of {', '.join(sorted(AGGREGATES))}")
    return func


def time_bound(value: int | str, what: str = "time") -> str:
    """A time expression for WHERE: an int is epoch nanoseconds, a duration string means ``now() - <duration>``."""
    if isinstance(value, bool):
        raise InfluxQLError(f"invalid {what} {value!r}")
    if isinstance(value, int):
        return f"{value}"
    if isinstance(value, str):
        if value == "now()":
            return "now()"
        return f"now() - {check_duration(value, what)}"
    raise InfluxQLError(f"invalid {what} {value!r}: epoch nanoseconds (int) or a duration such as '15m'")
