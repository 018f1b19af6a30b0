"""Create the storage that FABRIC_OPS_INFLUX_BUCKET names, on whichever InfluxDB answers the URL.

The write and read paths are version-agnostic (``/api/v2/write`` + InfluxQL ``/query``), but *creating* the
storage is not, so this is the one place that looks at the server's version (``X-Influxdb-Version`` of /ping):

* 1.x: ``CREATE DATABASE "<db>"`` (idempotent); a retention policy other than ``autogen`` must already exist
  (its duration is an operator decision, so it is checked, not invented);
* 2.x: a bucket named ``<db>/<rp>`` (the name 1.x→2.x upgrades give, and what ``/api/v2/write?bucket=`` uses)
  plus the DBRP mapping ``<db>``/``<rp>`` → that bucket, so that InfluxQL ``/query?db=<db>&rp=<rp>`` reads it;
* 3.x: databases are created by the first write; nothing to do.

Only the 1.x branch is exercised by the tests here (Debian has no 2.x/3.x package); the 2.x branch uses
influxdb-client's documented BucketsApi and DBRPsService calls.
"""

from __future__ import annotations

import json
import logging

import urllib3
from influxdb_client import InfluxDBClient
from influxdb_client.domain.dbrp_create import DBRPCreate
from influxdb_client.service.dbr_ps_service import DBRPsService

from fabric_ops.errors import ConfigurationError
from fabric_ops.telemetry.influxql import quote_ident
from fabric_ops.telemetry.query import auth_headers
from fabric_ops.telemetry.writer import redact_url

logger = logging.getLogger(__name__)

__all__ = ["ensure_storage", "server_major_version"]


def server_major_version(url: str, token: str = "", timeout: float = 10.0) -> tuple[int, str]:
    """(major version, version string) from /ping; raises ConfigurationError when nothing answers."""
    http = urllib3.PoolManager(timeout=timeout, retries=False)
    try:
        resp = http.request("GET", f"{url.rstrip('/')}/ping", headers=auth_headers(token))
    except urllib3.exceptions.HTTPError as exc:
        raise ConfigurationError(f"InfluxDB {redact_url(url)} unreachable: {exc}") from exc
    version = resp.headers.get("X-Influxdb-Version", "")
    try:
        return int(version.lstrip("v").split(".")[0]), version
    except ValueError as exc:
        raise ConfigurationError(f"InfluxDB {redact_url(url)}: /ping gave no usable version ({version!r})") from exc


def _influxql(http: urllib3.PoolManager, url: str, token: str, statement: str) -> list[dict]:
    resp = http.request(
        "POST", f"{url.rstrip('/')}/query", fields={"q": statement}, headers=auth_headers(token), encode_multipart=False
    )
    body = resp.data.decode(errors="replace")
    if resp.status != 200:
        raise ConfigurationError(f"InfluxDB {redact_url(url)} refused {statement!r}: {resp.status} {body[:200]}")
    results = json.loads(body).get("results", [{}])
    if "error" in results[0]:
        raise ConfigurationError(f"InfluxDB {redact_url(url)} refused {statement!r}: {results[0]['error']}")
    return results[0].get("series", [])


def ensure_storage(url: str, bucket: str, token: str = "", org: str = "fabric_ops", timeout: float = 10.0) -> str:
    """Make ``bucket`` (``db/rp``) writable and InfluxQL-readable; returns what was found or done."""
    db, _, rp = bucket.partition("/")
    if not db:
        raise ConfigurationError(f"FABRIC_OPS_INFLUX_BUCKET {bucket!r} names no database (expected db/rp)")
    major, version = server_major_version(url, token, timeout)
    if major == 1:
        http = urllib3.PoolManager(timeout=timeout, retries=False)
        _influxql(http, url, token, f"CREATE DATABASE {quote_ident(db)}")
        if rp and rp != "autogen":
            policies = _influxql(http, url, token, f"SHOW RETENTION POLICIES ON {quote_ident(db)}")
            names = {row[0] for s in policies for row in s.get("values", [])}
            if rp not in names:
                raise ConfigurationError(
                    f"InfluxDB {redact_url(url)}: retention policy {rp!r} does not exist on database {db!r}; "
                    f"create it (CREATE RETENTION POLICY {quote_ident(rp)} ON {quote_ident(db)} DURATION ...)"
                )
        return f"InfluxDB {version}: database {db!r} ready"
    if major == 2:
        with InfluxDBClient(url=url, token=token or None, org=org, timeout=int(timeout * 1000)) as client:
            orgs = client.organizations_api().find_organizations(org=org)
            if not orgs:
                raise ConfigurationError(f"InfluxDB {redact_url(url)}: organisation {org!r} not found")
            org_id = orgs[0].id
            buckets = client.buckets_api()
            found = buckets.find_bucket_by_name(bucket)
            created = found is None
            if created:
                found = buckets.create_bucket(bucket_name=bucket, org_id=org_id)
            dbrps = DBRPsService(client.api_client)
            mapped = dbrps.get_dbrps(org_id=org_id, db=db, rp=rp or "autogen").content
            if not mapped:
                dbrps.post_dbrp(
                    DBRPCreate(
                        org_id=org_id, bucket_id=found.id, database=db, retention_policy=rp or "autogen", default=True
                    )
                )
        return (
            f"InfluxDB {version}: bucket {bucket!r} {'created' if created else 'exists'}, "
            f"DBRP {db}/{rp or 'autogen'} {'exists' if mapped else 'created'}"
        )
    return f"InfluxDB {version}: databases are created on first write; nothing to do"
