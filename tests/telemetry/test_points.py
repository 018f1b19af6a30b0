"""Line-protocol encoding: a table of events -> expected lines, then the same table round-tripped through influxd."""

from __future__ import annotations

import pytest

from fabric_ops.telemetry.points import PointError, TelemetryEvent, encode_event
from fabric_ops.telemetry.query import InfluxQuery
from fabric_ops.telemetry.writer import InfluxWriter

T = 1_700_000_000_123_456_789

# (measurement, tags, fields, expected line, expected stored tags, expected stored fields)
TABLE = [
    (
        "interface",
        {"device": "leaf1", "interface": "Ethernet1/1"},
        {"in_bps": 1.5},
        "interface,device=leaf1,interface=Ethernet1/1 in_bps=1.5",
        {"device": "leaf1", "interface": "Ethernet1/1"},
        {"in_bps": 1.5},
    ),
    (
        "interface",
        {"interface": "Eth 1", "device": "a,b=c"},
        {"up": True, "down": False},
        "interface,device=a\\,b\\=c,interface=Eth\\ 1 up=true,down=false",
        {"device": "a,b=c", "interface": "Eth 1"},
        {"up": True, "down": False},
    ),
    (
        "my meas,x",
        {"k": "v"},
        {"n": 3, "neg": -9223372036854775808},
        "my\\ meas\\,x,k=v n=3i,neg=-9223372036854775808i",
        {"k": "v"},
        {"n": 3, "neg": -9223372036854775808},
    ),
    (
        "m",
        {"k": "back\\slash"},
        {"s": 'say "hi" \\o/'},
        'm,k=back\\slash s="say \\"hi\\" \\\\o/"',
        {"k": "back\\slash"},
        {"s": 'say "hi" \\o/'},
    ),
    (
        "m",
        {"k": "tab\there"},
        {"s": "two\nlines", "f key=": 1e16},
        'm,k=tab\there s="two\nlines",f\\ key\\==1e+16',
        {"k": "tab\there"},
        {"s": "two\nlines", "f key=": 1e16},
    ),
    (
        "m",
        {"empty": "", "k": "v"},
        {"nan": float("nan"), "inf": float("inf"), "ok": 0.1},
        "m,k=v ok=0.1",
        {"k": "v"},
        {"ok": 0.1},
    ),
    ("m", {"k": "ünïcødé"}, {"f": 2.0, "s": ""}, 'm,k=ünïcødé f=2.0,s=""', {"k": "ünïcødé"}, {"f": 2.0, "s": ""}),
]


@pytest.mark.parametrize(("name", "tags", "fields", "line", "_tags", "_fields"), TABLE)
def test_encoding_table(name, tags, fields, line, _tags, _fields):
    assert encode_event(TelemetryEvent(name, T, tags, fields)) == f"{line} {T}"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (TelemetryEvent("m", T, {"k": "a\nb"}, {"f": 1}), "newline"),
        (TelemetryEvent("m", T, {"k": "ends\\"}, {"f": 1}), "backslash"),
        (TelemetryEvent("m\r", T, {}, {"f": 1}), "newline"),
        (TelemetryEvent("m", T, {}, {"f": float("nan")}), "no storable field"),
        (TelemetryEvent("m", T, {}, {}), "no storable field"),
        (TelemetryEvent("m", T, {}, {"f": 2**63}), "64-bit"),
        (TelemetryEvent("m", T, {}, {"f": [1]}), "unsupported type"),
        (TelemetryEvent("m", 1.5, {}, {"f": 1}), "integer nanoseconds"),
        (TelemetryEvent("", T, {}, {"f": 1}), "non-empty"),
    ],
)
def test_unstorable_events_are_refused(event, message):
    with pytest.raises(PointError, match=message):
        encode_event(event)


@pytest.mark.timeout(60)
def test_encoding_table_round_trips_through_influxd(influx, database, tmp_path):
    """What we encode is what InfluxDB stores: every tag and field comes back exactly."""
    writer = InfluxWriter(url=influx.url, bucket=f"{database}/autogen", spool_dir=tmp_path / "spool").start()
    for i, (name, tags, fields, *_rest) in enumerate(TABLE):
        writer.write(TelemetryEvent(name, T + i, tags, fields))
    assert writer.flush(20)
    stats = writer.close()
    assert stats["written"] == len(TABLE) and stats["rejected"] == 0
    query = InfluxQuery(influx.url, f"{database}/autogen")
    for i, (name, _tags, _fields, _line, want_tags, want_fields) in enumerate(TABLE):
        tag_filter = {k: v for k, v in want_tags.items()}
        series = query.raw(f'SELECT * FROM "{name.replace(chr(34), "")}" WHERE time = {T + i}')
        assert len(series) == 1, name
        row = dict(zip(series[0]["columns"], series[0]["values"][0], strict=True))
        assert row.pop("time") == T + i
        got_tags = {k: row.pop(k) for k in list(row) if k in tag_filter}
        assert got_tags == want_tags
        got_fields = {k: v for k, v in row.items() if v is not None}
        assert got_fields == want_fields


def test_series_cache_never_hides_an_invalid_event():
    good = TelemetryEvent("m", T, {"device": "leaf1"}, {"f": 1})
    assert encode_event(good) == encode_event(good) == f"m,device=leaf1 f=1i {T}"
    bad = TelemetryEvent("m", T, {"device": "leaf1\\"}, {"f": 1})
    for _ in range(2):
        with pytest.raises(PointError, match="backslash"):
            encode_event(bad)
    with pytest.raises(PointError):
        encode_event(TelemetryEvent("m", T, {"device": ["unhashable"]}, {"f": 1}))
    # the same tags in another order are the same series
    assert encode_event(TelemetryEvent("m", T, {"b": "2", "a": "1"}, {"f": 1})) == f"m,a=1,b=2 f=1i {T}"
