"""Run a real, private InfluxDB 1.x server (Debian's ``influxd``) for tests, benchmarks and the demo.

Why here and not in a test helper: ``make demo``, the benchmark and the test fixture all need the same thing
(an ``influxd`` with its own data directory on a chosen loopback port, HTTP auth off, reporting off), and the
generated configuration must stay identical between them so that what the tests prove is what the demo runs.

The product never imports this module; it only talks HTTP to whatever ``FABRIC_OPS_INFLUX_URL`` names.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from fabric_ops.errors import ConfigurationError, FabricOpsError
from fabric_ops.telemetry.influxql import quote_ident

logger = logging.getLogger(__name__)

__all__ = ["InfluxdError", "LocalInfluxd", "free_port", "free_ports", "wait_for_port"]


class InfluxdError(FabricOpsError):
    """The local influxd could not be found, started or queried."""


CONFIG_TEMPLATE = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{data_dir}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{data_dir}/data"
  wal-dir = "{data_dir}/wal"
  index-version = "inmem"
  query-log-enabled = false
  wal-fsync-delay = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{port}"
  auth-enabled = {auth}
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  max-body-size = 0

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false

[retention]
  enabled = false

[subscriber]
  enabled = false
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the kernel picks it, so parallel runs do not collide)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(host: str, n: int) -> list[int]:
    """``n`` distinct free ports on ``host``: one listener (a lab switch) binds them all, so they must differ."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise InfluxdError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


class LocalInfluxd:
    """One ``influxd`` process with its own config and data directory; stop() and start() keep the data.

    ``port`` is the HTTP port; influxd's RPC (backup) port is a second free port on the same host.
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: str = "influxd",
        auth_enabled: bool = False,
    ):
        resolved = shutil.which(binary)
        if resolved is None:
            raise ConfigurationError(
                f"{binary!r} not found on PATH: install it with `apt-get install -y influxdb` (make influxdb does)"
            )
        self.binary = resolved
        self.host = host
        self.port = port or free_port(host)
        self.rpc_port = free_port(host)
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.data_dir / "influxd.conf"
        self.log_path = self.data_dir / "influxd.log"
        self.auth_enabled = auth_enabled
        self.credentials: tuple[str, str] | None = None  # sent as Basic auth by query() once set
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_config(self) -> Path:
        self.config_path.write_text(
            CONFIG_TEMPLATE.format(
                host=self.host,
                port=self.port,
                rpc_port=self.rpc_port,
                data_dir=self.data_dir,
                auth="true" if self.auth_enabled else "false",
            )
        )
        return self.config_path

    def start(self, timeout: float = 30.0) -> None:
        """Start influxd and wait until /ping answers 204."""
        if self.running:
            return
        self.write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        env = {**os.environ, "INFLUXDB_DATA_QUERY_LOG_ENABLED": "false"}
        self.process = subprocess.Popen(
            [self.binary, "-config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self._log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InfluxdError(f"influxd exited with {self.process.returncode}; see {self.log_path}")
            if self.ping():
                logger.info("influxd %s listening on %s (data %s)", self.version(), self.url, self.data_dir)
                return
            time.sleep(0.05)
        self.stop()
        raise InfluxdError(f"influxd did not answer /ping on {self.url} within {timeout:.0f} s; see {self.log_path}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (clean shutdown flushes the WAL), SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        self._log.close()

    def ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return resp.status == 204
        except (OSError, urllib.error.URLError):
            return False

    def version(self) -> str:
        with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as resp:
            return resp.headers.get("X-Influxdb-Version", "?")

    def query(self, statement: str, database: str = "", method: str = "POST") -> dict:
        """Run one InfluxQL statement directly against influxd (admin use: CREATE/DROP DATABASE)."""
        params = {"q": statement}
        if database:
            params["db"] = database
        data = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.url}/query", data=data, method=method)
        if self.credentials:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise InfluxdError(f"influxd {self.url}: {statement!r} failed: {exc.code} {exc.read()[:200]!r}") from exc
        for result in body.get("results", []):
            if "error" in result:
                raise InfluxdError(f"influxd {self.url}: {statement!r} failed: {result['error']}")
        return body

    def create_database(self, name: str) -> None:
        self.query(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        self.query(f"DROP DATABASE {quote_ident(name)}")

    def __enter__(self) -> LocalInfluxd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
