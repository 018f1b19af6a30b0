"""A real InfluxDB for the telemetry storage tests: Debian's influxd 1.6 plus the write-path proxy.

One influxd and one proxy per test session (starting influxd takes well under a second, but sharing it keeps the
folder fast); each test gets its own database, so counts never leak between tests. Listeners use 127.14.0.1
(this area's loopback block) on ports the kernel picks.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fabric_ops.telemetry.influx_proxy import InfluxProxy
from fabric_ops.telemetry.influxd import LocalInfluxd

HOST = "127.14.0.1"
_names = itertools.count(1)


@dataclass
class InfluxStack:
    """influxd (``server``) and the proxy in front of it (``proxy``); the product talks to ``url``."""

    server: LocalInfluxd
    proxy: InfluxProxy
    databases: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.proxy.url

    def new_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{next(_names)}"
        self.server.create_database(name)
        self.databases.append(name)
        return name

    def ensure_running(self) -> None:
        if not self.server.running:
            self.server.start()


@pytest.fixture(scope="session")
def influx_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxStack]:
    if shutil.which("influxd") is None:
        pytest.fail("influxd is not installed: run `make influxdb` (apt-get install -y influxdb)")
    data_dir: Path = tmp_path_factory.mktemp("influxd")
    server = LocalInfluxd(data_dir, host=HOST)
    server.start()
    proxy = InfluxProxy(f"http://{HOST}:0", server.url, upstream_timeout=10).start()
    try:
        yield InfluxStack(server, proxy)
    finally:
        proxy.stop()
        server.stop()


@pytest.fixture
def influx(influx_stack: InfluxStack) -> Iterator[InfluxStack]:
    """The shared stack, guaranteed up at the start of the test (an outage test may have stopped it)."""
    influx_stack.ensure_running()
    influx_stack.proxy.set_observer(None)
    yield influx_stack
    influx_stack.proxy.set_observer(None)
    influx_stack.ensure_running()


@pytest.fixture
def database(influx: InfluxStack) -> str:
    """A fresh, empty database for one test."""
    return influx.new_database()
