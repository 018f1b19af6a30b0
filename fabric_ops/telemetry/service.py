"""`manage.py telemetry collect`: build a shard's collector from settings and the database, run it until SIGTERM."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from django.conf import settings

from fabric_ops.telemetry.collector import Collector, CollectorConfig, run_until_signal
from fabric_ops.telemetry.handoff import Handoff
from fabric_ops.telemetry.sharding import parse_shard
from fabric_ops.telemetry.targets import load_targets
from fabric_ops.telemetry.writer import InfluxWriter

logger = logging.getLogger(__name__)

__all__ = ["add_collect_arguments", "build_collector", "collect_command"]


def add_collect_arguments(parser: Any) -> None:
    parser.add_argument("--fabric", help="Only this fabric's devices (default: every fabric)")
    parser.add_argument("--shard", default="0/1", help="I/N: run shard I (0-based) of N collector processes")
    parser.add_argument("--no-redis", action="store_true", help="Do not publish latest values/events/health")
    parser.add_argument("--plan", action="store_true", help="Print the devices this shard owns and exit")


def spool_dir_for(shard_label: str) -> Path:
    index, count = shard_label.split("/")
    return Path(settings.FABRIC_OPS_INFLUX_SPOOL_DIR) / f"collector-{index}-of-{count}"


def collector_flush_interval() -> float:
    """How long a partial batch may wait in the collector's writer: short, because detection reads InfluxDB too.

    FABRIC_OPS_TELEMETRY_FLUSH_INTERVAL_S (default 0.25 s) overrides the writer's generic 1 s default for the
    collector only: at telemetry rates a batch fills in well under a second anyway, and the freshness budget
    (switch timestamp -> queryable, p99 <= 2 s) cannot afford a second of waiting on top of InfluxDB's own
    latency.
    """
    return float(os.environ.get("FABRIC_OPS_TELEMETRY_FLUSH_INTERVAL_S", "0.25"))


def build_collector(fabric: str | None, shard_text: str, redis: bool = True) -> tuple[Collector, Any, Handoff | None]:
    """The shard's collector, its writer (own spool directory) and handoff; nothing started."""
    shard = parse_shard(shard_text)
    targets = load_targets(fabric, shard)
    writer = InfluxWriter.from_settings(spool_dir=spool_dir_for(str(shard)), flush_interval=collector_flush_interval())
    handoff = Handoff() if redis else None
    collector = Collector(targets, writer, handoff, CollectorConfig(shard=str(shard)))
    return collector, writer, handoff


def collect_command(command: Any, options: dict[str, Any]) -> None:
    """The `telemetry collect` handler: runs in the foreground; SIGTERM/SIGINT stop it and flush the writer."""
    shard = parse_shard(options.get("shard"))
    if options.get("plan"):
        for target in load_targets(options.get("fabric"), shard):
            command.stdout.write(f"{target.hostname} {target.address}:{target.port} {target.profile.name}")
        return
    collector, writer, handoff = build_collector(options.get("fabric"), str(shard), not options.get("no_redis"))
    command.stdout.write(
        f"collector shard {shard}: {len(collector.sessions)} devices -> {writer!r}"
        + (f"; handoff {handoff.prefix} on Redis" if handoff else "")
    )
    writer.start()
    if handoff is not None:
        handoff.start()
    run_until_signal(collector, writer, handoff)
    command.stdout.write(f"collector shard {shard}: stopped; writer {writer.stats()}")
