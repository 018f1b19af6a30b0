"""`manage.py telemetry influx-proxy|influx-local|influx-setup|write-check`: the storage side of the telemetry CLI.

* ``influx-proxy`` runs the write-path proxy in front of an InfluxDB 1.x that predates ``/api/v2/write``;
* ``influx-local`` runs a private Debian ``influxd`` (data under var/influxdb) plus the proxy on
  FABRIC_OPS_INFLUX_URL and creates the database named by FABRIC_OPS_INFLUX_BUCKET: the demo's InfluxDB;
* ``influx-setup`` creates the database (1.x) or bucket + DBRP mapping (2.x) the bucket setting names;
* ``write-check`` writes a probe point through the product's writer and reads it back with InfluxQL, so an
  operator sees at once whether the configured URL/token/bucket work end to end.

Subcommands are a table (``ACTIONS``) so the collector's ``collect`` can join without touching the others.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from fabric_ops.errors import FabricOpsError
from fabric_ops.telemetry.influx_proxy import InfluxProxy, port_is_free
from fabric_ops.telemetry.influxd import LocalInfluxd
from fabric_ops.telemetry.points import TelemetryEvent
from fabric_ops.telemetry.provision import ensure_storage
from fabric_ops.telemetry.query import InfluxQuery
from fabric_ops.telemetry.service import add_collect_arguments, collect_command
from fabric_ops.telemetry.writer import InfluxWriter, redact_url


def _wait_for_signal() -> None:
    """Block the main thread until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1):
        pass


class Command(BaseCommand):
    help = "Telemetry storage: the InfluxDB write-path proxy, a local InfluxDB for the demo, an end-to-end check."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        proxy = sub.add_parser("influx-proxy", help="Serve /api/v2/write for an InfluxDB 1.x (rewrites to /write)")
        proxy.add_argument("--listen", default=settings.FABRIC_OPS_INFLUX_URL, help="http://host:port to serve on")
        proxy.add_argument("--upstream", required=True, help="The InfluxDB 1.x URL, e.g. http://127.0.0.1:8087")

        local = sub.add_parser("influx-local", help="Run Debian's influxd (var/influxdb) behind the proxy")
        local.add_argument("--listen", default=settings.FABRIC_OPS_INFLUX_URL, help="Proxy URL the product uses")
        local.add_argument("--influxd-port", type=int, default=0, help="influxd's own HTTP port (0: any free)")
        local.add_argument("--data-dir", type=Path, default=settings.VAR_DIR / "influxdb")

        sub.add_parser(
            "influx-setup", help="Create the database / bucket + DBRP mapping FABRIC_OPS_INFLUX_BUCKET names"
        )

        add_collect_arguments(sub.add_parser("collect", help="Run the gNMI collector (one shard) until SIGTERM"))

        check = sub.add_parser("write-check", help="Write a probe point through the writer and read it back")
        check.add_argument("--spool-dir", type=Path, default=settings.VAR_DIR / "spool" / "write-check")

    def handle(self, *args: Any, **options: Any) -> None:
        action = ACTIONS[options["action"]]
        try:
            action(self, options)
        except FabricOpsError as exc:
            raise CommandError(str(exc)) from exc

    def _proxy(self, options: dict[str, Any]) -> None:
        proxy = InfluxProxy(options["listen"], options["upstream"])
        self.stdout.write(f"influx proxy on {proxy.url} -> {redact_url(options['upstream'])}")
        proxy.start()
        _wait_for_signal()
        proxy.stop()

    def _local(self, options: dict[str, Any]) -> None:
        listen = urllib.parse.urlsplit(options["listen"])
        host = listen.hostname or "127.0.0.1"
        if not port_is_free(host, listen.port or 8086):
            raise CommandError(f"{options['listen']} is already in use (another InfluxDB or proxy?)")
        server = LocalInfluxd(options["data_dir"], host=host, port=options["influxd_port"] or None)
        server.start()
        try:
            database = settings.FABRIC_OPS_INFLUX_BUCKET.partition("/")[0]
            server.create_database(database)
            proxy = InfluxProxy(options["listen"], server.url).start()
            self.stdout.write(
                f"InfluxDB {server.version()} on {server.url} (data {server.data_dir}); "
                f"write-path proxy on {proxy.url}; database {database!r}"
            )
            _wait_for_signal()
            proxy.stop()
        finally:
            server.stop()

    def _setup(self, options: dict[str, Any]) -> None:
        self.stdout.write(
            ensure_storage(
                settings.FABRIC_OPS_INFLUX_URL,
                settings.FABRIC_OPS_INFLUX_BUCKET,
                settings.FABRIC_OPS_INFLUX_TOKEN,
                settings.FABRIC_OPS_INFLUX_ORG,
                settings.FABRIC_OPS_INFLUX_TIMEOUT_S,
            )
        )

    def _write_check(self, options: dict[str, Any]) -> None:
        stamp = time.time_ns()
        writer = InfluxWriter.from_settings(spool_dir=options["spool_dir"]).start()
        writer.write(TelemetryEvent("fabric_ops_write_check", stamp, {"host": "cli"}, {"ok": True}))
        delivered = writer.flush(settings.FABRIC_OPS_INFLUX_TIMEOUT_S + 5)
        stats = writer.close(timeout=1)
        if not delivered:
            raise CommandError(f"write failed ({stats['last_error']}); the point waits in {options['spool_dir']}")
        query = InfluxQuery.from_settings()
        found = query.latest("fabric_ops_write_check", "ok", tags={"host": "cli"}, group_by=(), start=stamp)
        if not found or found[0].time_ns != stamp:
            raise CommandError(f"the probe was written but {query!r} does not return it")
        self.stdout.write(f"ok: wrote and read back a probe point via {query!r}")


ACTIONS = {
    "influx-proxy": Command._proxy,
    "influx-local": Command._local,
    "influx-setup": Command._setup,
    "write-check": Command._write_check,
    "collect": collect_command,
}
