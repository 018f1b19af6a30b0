"""InfluxQL reads against known data in the real influxd: series, link, top-N, latest."""

from __future__ import annotations

import time

import pytest

from fabric_ops.telemetry.points import TelemetryEvent
from fabric_ops.telemetry.query import InfluxQuery, PortValue, QueryError
from fabric_ops.telemetry.writer import InfluxWriter

S = 10**9
DEVICES = ["leaf1", "leaf2", "spine1"]
INTERFACES = ["Ethernet1", "Ethernet2", "Ethernet3", "Ethernet4"]


def ecn(d: int, i: int, t: int) -> float:
    """Marks/s: each port has its own level; leaf2/Ethernet3 is the hot spot."""
    return 100.0 * d + 10.0 * i + (5000.0 if (d, i) == (1, 2) else 0.0) + t % 2


@pytest.fixture(scope="module")
def dataset(influx_stack, tmp_path_factory):
    """60 s of 1-s samples for 12 ports, ending 30 s ago, 10-s aligned; returns (query, first timestamp)."""
    influx_stack.ensure_running()
    database = influx_stack.new_database("q")
    base = (time.time_ns() // (10 * S)) * 10 * S - 90 * S
    writer = InfluxWriter(
        url=influx_stack.url, bucket=f"{database}/autogen", spool_dir=tmp_path_factory.mktemp("spool")
    ).start()
    for t in range(60):
        for d, device in enumerate(DEVICES):
            for i, interface in enumerate(INTERFACES):
                writer.write(
                    TelemetryEvent(
                        "interface",
                        base + t * S,
                        {"fabric": "dc1", "device": device, "interface": interface},
                        {"ecn_marked": ecn(d, i, t), "in_errors": 1 if (d, i, t) == (2, 0, 30) else 0, "t": t},
                    )
                )
    assert writer.flush(30)
    writer.close()
    return InfluxQuery(influx_stack.url, f"{database}/autogen"), base


def test_interface_series_is_aggregated_per_window(dataset):
    query, base = dataset
    points = query.interface_series(
        "leaf1", "Ethernet2", "t", start=base, stop=base + 59 * S, every="10s", aggregate="mean"
    )
    assert points == [(base + k * 10 * S, 4.5 + 10 * k) for k in range(6)]
    maxima = query.interface_series("leaf1", "Ethernet2", "ecn_marked", start="5m", every="30s", aggregate="max")
    assert {v for _, v in maxima if v is not None} == {11.0}
    assert query.interface_series("leaf9", "Ethernet2", "t", start="5m") == []


def test_link_series_returns_both_ends(dataset):
    query, base = dataset
    ends = [("leaf1", "Ethernet1"), ("spine1", "Ethernet4")]
    result = query.link_series(ends, "ecn_marked", start=base, stop=base + 59 * S, every="1m", aggregate="min")
    assert set(result) == set(ends)
    assert {v for _, v in result[("leaf1", "Ethernet1")] if v is not None} == {0.0}
    assert {v for _, v in result[("spine1", "Ethernet4")] if v is not None} == {230.0}


def test_top_ports_by_ecn_and_errors(dataset):
    query, base = dataset
    top = query.top_ports("ecn_marked", n=3, start=base, stop=base + 59 * S, aggregate="mean")
    assert top == [
        PortValue("leaf2", "Ethernet3", 5120.5),
        PortValue("spine1", "Ethernet4", 230.5),
        PortValue("spine1", "Ethernet3", 220.5),
    ]
    errors = query.top_ports("in_errors", n=2, start="10m", aggregate="sum", tags={"fabric": "dc1"})
    assert errors[0] == PortValue("spine1", "Ethernet1", 1.0)
    assert errors[1].value == 0.0
    assert query.top_ports("in_errors", n=5, start="10m", tags={"fabric": "elsewhere"}) == []


def test_latest_value_per_series(dataset):
    query, base = dataset
    latest = query.latest("interface", "t", start="10m")
    assert len(latest) == len(DEVICES) * len(INTERFACES)
    assert {(v.time_ns, v.value) for v in latest} == {(base + 59 * S, 59)}
    only = query.latest("interface", "ecn_marked", tags={"device": ["leaf2"], "interface": "Ethernet3"})
    assert [(v.tags, v.value) for v in only] == [({"device": "leaf2", "interface": "Ethernet3"}, 5121.0)]


def test_bad_parameters_fail_before_reaching_the_server(dataset):
    query, _ = dataset
    for call in (
        lambda: query.top_ports("ecn_marked", n=0),
        lambda: query.top_ports("ecn marked"),
        lambda: query.series("interface", "t", {}, every="10"),
        lambda: query.series("interface", "t", {}, fill="drop table"),
        lambda: query.series("interface", "t", {}, aggregate="evil"),
        lambda: query.latest("interface;DROP", "t"),
    ):
        with pytest.raises(QueryError):
            call()


def test_server_errors_are_query_errors(influx):
    with pytest.raises(QueryError, match="database not found"):
        InfluxQuery(influx.url, "no_such_db/autogen").raw('SELECT * FROM "x"')
    assert InfluxQuery(influx.url, "x/autogen").ping()


def test_health_reports_version_and_failure(influx):
    health = InfluxQuery(influx.url, "x/autogen", token="user:secret").health()
    assert health["ok"] and health["version"].startswith("1.6") and health["latency_ms"] is not None
    assert "secret" not in str(health)
    down = InfluxQuery("http://user:secret@127.14.0.1:1", "x/autogen").health()
    assert not down["ok"] and "unreachable" in down["error"] and "secret" not in str(down)
