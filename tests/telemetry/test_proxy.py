"""The write-path proxy in front of the real influxd: rewrite, precision mapping, pass-through of errors,
health, gzip and authentication."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from fabric_ops.telemetry.influx_proxy import InfluxProxy, RewriteError, rewrite_write_target
from fabric_ops.telemetry.influxd import LocalInfluxd
from fabric_ops.telemetry.query import InfluxQuery, QueryError

from .conftest import HOST

INSTANT_S = 1_700_000_123


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("org=o&bucket=db%2Frp&precision=ns", "/write?db=db&rp=rp&precision=n"),
        ("bucket=db/rp&precision=us", "/write?db=db&rp=rp&precision=u"),
        ("bucket=db&precision=ms", "/write?db=db&precision=ms"),
        ("bucket=db/autogen&precision=s", "/write?db=db&rp=autogen&precision=s"),
        ("bucket=db/autogen", "/write?db=db&rp=autogen&precision=n"),
        ("bucket=my%20db/rp%2Fx", "/write?db=my+db&rp=rp%2Fx&precision=n"),
    ],
)
def test_rewrite_table(query, target):
    assert rewrite_write_target(query)[0] == target


@pytest.mark.parametrize("query", ["precision=ns", "bucket=&org=x", "bucket=/rp", "bucket=db&precision=h"])
def test_rewrite_refuses_what_v2_refuses(query):
    with pytest.raises(RewriteError):
        rewrite_write_target(query)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("precision", "stamp"),
    [
        (WritePrecision.S, INSTANT_S),
        (WritePrecision.MS, INSTANT_S * 10**3),
        (WritePrecision.US, INSTANT_S * 10**6),
        (WritePrecision.NS, INSTANT_S * 10**9),
    ],
)
def test_precision_is_mapped(influx, database, precision, stamp):
    with InfluxDBClient(url=influx.url, token="", org="any") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            f"{database}/autogen", record=f"p,unit={precision} v=1i {stamp}", write_precision=precision
        )
    series = InfluxQuery(influx.url, f"{database}/autogen").raw('SELECT "v" FROM "p"')
    assert series[0]["values"] == [[INSTANT_S * 10**9, 1]]


@pytest.mark.timeout(30)
def test_errors_pass_through_unchanged(influx, database):
    bad = b"p v=1i 1\nnot line protocol"
    direct = http("POST", f"{influx.server.url}/write?db={database}&precision=n", bad)
    proxied = http("POST", f"{influx.url}/api/v2/write?bucket={database}/autogen&precision=ns", bad)
    assert proxied[0] == direct[0] == 400
    assert proxied[2] == direct[2] and b"unable to parse" in proxied[2]
    assert proxied[1]["X-Influxdb-Error"] == direct[1]["X-Influxdb-Error"]
    with InfluxDBClient(url=influx.url, token="", org="any") as client, pytest.raises(ApiException) as caught:
        client.write_api(write_options=SYNCHRONOUS).write("no_such_db/autogen", record="p v=1i 1")
    assert caught.value.status == 404 and b"database not found" in caught.value.body.encode()
    status, _, body = http("POST", f"{influx.url}/api/v2/write?bucket={database}&precision=h", b"p v=1i 1")
    assert status == 400 and json.loads(body)["code"] == "invalid"


@pytest.mark.timeout(30)
def test_ping_health_and_query_are_forwarded(influx):
    status, headers, _ = http("GET", f"{influx.url}/ping")
    assert status == 204 and headers["X-Influxdb-Version"].startswith("1.6")
    status, _, body = http("GET", f"{influx.url}/health")
    assert status == 200 and json.loads(body)["status"] == "pass"
    with InfluxDBClient(url=influx.url, token="", org="any") as client:
        assert client.ping() is True
    status, _, body = http("GET", f"{influx.url}/query?q=SHOW+DATABASES")
    assert status == 200 and "series" in json.loads(body)["results"][0]


@pytest.mark.timeout(30)
def test_upstream_down_is_a_503(influx):
    influx.server.stop()
    try:
        status, _, body = http("POST", f"{influx.url}/api/v2/write?bucket=x/autogen", b"p v=1i 1")
        assert status == 503 and json.loads(body)["code"] == "unavailable"
        assert http("GET", f"{influx.url}/ping")[0] == 503
        assert http("GET", f"{influx.url}/health")[0] == 503
    finally:
        influx.server.start()
    assert http("GET", f"{influx.url}/ping")[0] == 204  # and it recovers on its own


@pytest.mark.timeout(30)
def test_gzip_bodies_pass_through(influx, database):
    with InfluxDBClient(url=influx.url, token="", org="any", enable_gzip=True) as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            f"{database}/autogen", record=[Point("g").field("v", i).time(i + 1) for i in range(500)]
        )
    assert InfluxQuery(influx.url, f"{database}/autogen").count("g", "v") == 500


@pytest.mark.timeout(60)
def test_token_user_password_becomes_basic_auth(tmp_path):
    """1.8's convention (Token user:password) works against 1.6 with auth on, for writes and queries."""
    server = LocalInfluxd(tmp_path / "auth", host=HOST, auth_enabled=True)
    server.start()
    proxy = InfluxProxy(f"http://{HOST}:0", server.url).start()
    try:
        server.query("CREATE USER \"admin\" WITH PASSWORD 's3cret' WITH ALL PRIVILEGES")
        server.credentials = ("admin", "s3cret")
        server.create_database("secure")
        with InfluxDBClient(url=proxy.url, token="admin:s3cret", org="any") as client:
            client.write_api(write_options=SYNCHRONOUS).write("secure/autogen", record="a v=1i 1")
        with InfluxDBClient(url=proxy.url, token="admin:wrong", org="any") as client, pytest.raises(ApiException) as c:
            client.write_api(write_options=SYNCHRONOUS).write("secure/autogen", record="a v=2i 2")
        assert c.value.status == 401
        assert InfluxQuery(proxy.url, "secure/autogen", token="admin:s3cret").count("a", "v") == 1
        with pytest.raises(QueryError, match="401"):
            InfluxQuery(proxy.url, "secure/autogen", token="admin:wrong").count("a", "v")
    finally:
        proxy.stop()
        server.stop()
