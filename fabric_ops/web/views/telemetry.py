"""Reading InfluxDB for the pages: short timeouts and an explicit reason when telemetry is unavailable.

A page must render fast whether or not InfluxDB answers, so every read goes through :func:`telemetry_read`, which
returns ``(value, "")`` or ``(None, "<reason>")``; the reason is shown to the operator as is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings

from fabric_ops.telemetry.query import InfluxQuery

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Pages wait this long for InfluxDB; a dashboard that hangs on a dead database is worse than "unavailable".
TIMEOUT_S = float(getattr(settings, "FABRIC_OPS_UI_INFLUX_TIMEOUT_S", 2.0))
# After a failure, skip InfluxDB for this long so every polled fragment does not wait out a timeout again.
BACKOFF_S = 15.0
_last_failure: dict[str, Any] = {"at": 0.0, "reason": ""}

# What the Overview ranks ports by: (label, measurement, field), from docs/telemetry-paths.md.
TOP_METRICS = (
    ("ECN marks/s", "queue", "ecn_marked_pps"),
    ("PFC pauses received/s", "pfc", "rx_pause_ps"),
    ("input errors/s", "interface", "in_errors_ps"),
)
# Device and link charts: (key, label, measurement, field, unit).
CHARTS = (
    ("util_out", "Out", "interface", "out_bps", "bps"),
    ("util_in", "In", "interface", "in_bps", "bps"),
    ("ecn", "ECN marks", "queue", "ecn_marked_pps", "/s"),
    ("pfc_rx", "PFC pauses rx", "pfc", "rx_pause_ps", "/s"),
    ("pfc_tx", "PFC pauses tx", "pfc", "tx_pause_ps", "/s"),
    ("errors", "Input errors", "interface", "in_errors_ps", "/s"),
    ("rx_power", "Rx power", "optics", "input_power_dbm", "dBm"),
)


def telemetry_read(read: Callable[[InfluxQuery], T]) -> tuple[T | None, str]:
    """Run ``read`` against InfluxDB; ``(result, "")`` or ``(None, reason)``. Never raises."""
    if time.monotonic() - _last_failure["at"] < BACKOFF_S:
        return None, _last_failure["reason"]
    query = InfluxQuery.from_settings(timeout=TIMEOUT_S)
    try:
        return read(query), ""
    except Exception as exc:  # urllib3, QueryError, JSON: every failure becomes the reason shown on the page
        reason = f"{type(exc).__name__}: {exc}"
        logger.warning("ui telemetry unavailable (%r): %s", query, reason)
        _last_failure.update(at=time.monotonic(), reason=reason)
        return None, reason
    finally:
        query.close()


def reset_backoff() -> None:
    """Forget the last failure (tests; or after InfluxDB came back and someone presses refresh)."""
    _last_failure.update(at=0.0, reason="")


def top_ports(n: int = 10, start: str = "5m") -> tuple[list[dict[str, Any]] | None, str]:
    """The top ``n`` ports by each of :data:`TOP_METRICS` over the window."""

    def read(q: InfluxQuery) -> list[dict[str, Any]]:
        if not q.ping():
            raise ConnectionError(f"InfluxDB at {q.url} does not answer /ping")
        return [
            {"label": label, "field": field, "rows": q.top_ports(field, n=n, measurement=m, start=start)}
            for label, m, field in TOP_METRICS
        ]

    return telemetry_read(read)


def interface_charts(device: str, interface: str, start: str = "1h", every: str = "30s") -> tuple[list | None, str]:
    """The last hour of one interface, one series per chart: ``[{key, label, unit, points: [[ms, v], ...]}]``."""

    def read(q: InfluxQuery) -> list[dict[str, Any]]:
        out = []
        for key, label, measurement, field, unit in CHARTS:
            points = q.interface_series(device, interface, field, measurement=measurement, start=start, every=every)
            out.append({"key": key, "label": label, "unit": unit,
                        "points": [[ns // 1_000_000, v] for ns, v in points]})  # fmt: skip
        return out

    return telemetry_read(read)


def link_utilisation(start: str = "2m") -> tuple[dict[tuple[str, str], float] | None, str]:
    """Latest ``out_bps`` of every port that reported in the window: ``{(device, interface): bps}``."""

    def read(q: InfluxQuery) -> dict[tuple[str, str], float]:
        rows = q.latest("interface", "out_bps", start=start)
        return {(r.tags.get("device", ""), r.tags.get("interface", "")): float(r.value or 0.0) for r in rows}

    return telemetry_read(read)
