"""InfluxQL quoting and validation: tables, plus injection attempts against the real server."""

from __future__ import annotations

import pytest

from fabric_ops.telemetry.influxql import (
    InfluxQLError,
    check_aggregate,
    check_duration,
    check_name,
    quote_ident,
    quote_literal,
    time_bound,
)
from fabric_ops.telemetry.points import TelemetryEvent
from fabric_ops.telemetry.query import InfluxQuery
from fabric_ops.telemetry.writer import InfluxWriter


@pytest.mark.parametrize(
    ("raw", "ident", "literal"),
    [
        ("plain", '"plain"', "'plain'"),
        ('dq"x', '"dq\\"x"', "'dq\"x'"),
        ("sq'x", '"sq\'x"', "'sq\\'x'"),
        ("back\\slash", '"back\\\\slash"', "'back\\\\slash'"),
        ("nl\nx", '"nl\\nx"', "'nl\\nx'"),
        ("x' OR 1=1 --", '"x\' OR 1=1 --"', "'x\\' OR 1=1 --'"),
    ],
)
def test_quoting_table(raw, ident, literal):
    assert quote_ident(raw) == ident
    assert quote_literal(raw) == literal


@pytest.mark.parametrize("bad", ["", "1abc", "a b", 'a"b', "a;b", "x" * 200, None, "in\nput"])
def test_names_are_validated(bad):
    with pytest.raises(InfluxQLError):
        check_name(bad)


def test_good_names_durations_aggregates():
    assert check_name("pfc.rx_pause-frames:x/y") == "pfc.rx_pause-frames:x/y"
    assert check_duration("15m") == "15m"
    assert time_bound("10s") == "now() - 10s"
    assert time_bound(123) == "123"
    assert check_aggregate("max") == "max"
    for bad in ("0s", "10", "5 m", "1y", "10s;DROP"):
        with pytest.raises(InfluxQLError):
            check_duration(bad)
    for bad in (True, 1.5, "now()-1h"):
        with pytest.raises(InfluxQLError):
            time_bound(bad)
    with pytest.raises(InfluxQLError):
        check_aggregate("mean); DROP DATABASE x; SELECT mean(")


@pytest.mark.timeout(60)
def test_injection_attempts_match_nothing(influx, database, tmp_path):
    """Hostile tag values are compared literally: they match only an identical stored value, never everything."""
    hostile = ["x' OR '1'='1", "x\\' OR 1=1", "a'; DROP DATABASE x; --", 'q"uote', "back\\"[:-1] + "\\z"]
    with InfluxWriter(url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "s") as writer:
        writer.write(TelemetryEvent("interface", 1, {"device": "leaf1", "interface": "e1"}, {"in_bps": 1.0}))
        for i, value in enumerate(hostile):
            writer.write(TelemetryEvent("interface", 10 + i, {"device": value, "interface": "e1"}, {"in_bps": 2.0}))
        assert writer.flush(20)
    query = InfluxQuery(influx.url, f"{database}/autogen")
    for value in hostile:
        found = query.latest("interface", "in_bps", tags={"device": value}, start=0)
        assert [v.tags["device"] for v in found] == [value]
    assert query.latest("interface", "in_bps", tags={"device": "nobody' OR '1'='1"}, start=0) == []
    assert query.count("interface", "in_bps") == 1 + len(hostile)  # and the database still exists
