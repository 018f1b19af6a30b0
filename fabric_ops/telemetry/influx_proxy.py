"""Write-path proxy: lets the product's InfluxDB 2.x write calls reach Debian's InfluxDB 1.6 unchanged.

The product writes with influxdb-client to ``/api/v2/write`` (InfluxDB 1.8+, 2.x, 3.x) and reads with InfluxQL over
``/query`` (all of them). The InfluxDB on these machines is Debian's 1.6.7, which predates ``/api/v2/write``, so
the tests and the demo put this proxy in front of it. It does what 1.8's compatibility endpoint does and nothing
more, so nothing in the product special-cases 1.6:

* ``POST /api/v2/write?org=..&bucket=db/rp&precision=ns`` becomes ``POST /write?db=db&rp=rp&precision=n``
  (precision ``ns/us/ms/s`` -> ``n/u/ms/s``; ``bucket=db`` alone means the default retention policy); the org
  is ignored, as 1.8 ignores it; the body and its Content-Encoding pass through untouched;
* ``Authorization: Token user:password`` (the 1.8 convention for a v1 user) becomes HTTP Basic, which 1.6
  understands; any other Authorization header passes through;
* ``/health`` is forwarded; a pre-1.8 server answers it 404, then the proxy answers from ``/ping`` instead;
* every other request (``/ping``, ``/query``, ``/write``, ...) is forwarded verbatim;
* status codes, headers and error bodies of the upstream come back unchanged; when the upstream cannot be
  reached the proxy answers 503 with a v2-style JSON error (the write path then spools, see writer.py).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fabric_ops.errors import ConfigurationError

logger = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "InfluxProxy", "WriteObserver", "rewrite_write_target"]

# influxdb-client / v2 precision -> InfluxDB 1.x /write precision
PRECISIONS = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

# Called after every rewritten write with (db, rp, precision, body, upstream status); tests use it to see the
# order in which batches reached InfluxDB.
WriteObserver = Callable[[str, str, str, bytes, int], None]


class RewriteError(ValueError):
    """A v2 write request cannot be mapped to a v1 one; carries the v2 error code."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def rewrite_write_target(query: str) -> tuple[str, str, str, str]:
    """Map a v2 write query string to ``(v1 path with query, db, rp, v1 precision)``.

    >>> rewrite_write_target("org=x&bucket=fabric_ops%2Fautogen&precision=ns")[0]
    '/write?db=fabric_ops&rp=autogen&precision=n'
    """
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    bucket = (params.get("bucket") or [""])[0]
    if not bucket:
        raise RewriteError("invalid", "bucket is required: expected bucket=<database>/<retention policy>")
    db, _, rp = bucket.partition("/")
    if not db:
        raise RewriteError("invalid", f"bucket {bucket!r} names no database")
    precision_v2 = (params.get("precision") or ["ns"])[0] or "ns"
    if precision_v2 not in PRECISIONS:
        raise RewriteError("invalid", f"invalid precision {precision_v2!r}: expected one of ns, us, ms, s")
    v1 = {"db": db}
    if rp:
        v1["rp"] = rp
    v1["precision"] = PRECISIONS[precision_v2]
    return "/write?" + urllib.parse.urlencode(v1), db, rp, v1["precision"]


def _translate_auth(value: str | None) -> str | None:
    """``Token user:password`` -> Basic (1.8's convention for v1 users); everything else unchanged."""
    if value and value.startswith("Token ") and ":" in value[6:]:
        return "Basic " + base64.b64encode(value[6:].encode()).decode()
    return value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the writer reuses one connection per thread
    server: _ProxyHTTPServer
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        split = urllib.parse.urlsplit(self.path)
        target = self.path
        write_info: tuple[str, str, str] | None = None
        if self.command == "POST" and split.path == "/api/v2/write":
            try:
                target, db, rp, precision = rewrite_write_target(split.query)
            except RewriteError as exc:
                self._reply_json(400, {"code": exc.code, "message": str(exc)})
                return
            write_info = (db, rp, precision)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        auth = _translate_auth(headers.pop("Authorization", None))
        if auth:
            headers["Authorization"] = auth
        if body or self.command == "POST":
            headers["Content-Length"] = str(len(body))
        try:
            status, resp_headers, resp_body = self._forward(self.command, target, body, headers)
            if split.path == "/health" and status == 404:
                status, resp_headers, resp_body = self._health_from_ping(headers)
        except (OSError, http.client.HTTPException) as exc:
            self._close_upstream()
            logger.warning("influx proxy: upstream %s unreachable: %s", self.server.upstream_label, exc)
            self._observe(write_info, body, 503)
            self._reply_json(
                503, {"code": "unavailable", "message": f"upstream {self.server.upstream_label} unreachable: {exc}"}
            )
            return
        self._observe(write_info, body, status)
        self._reply(status, resp_headers, resp_body)

    def _observe(self, write_info: tuple[str, str, str] | None, body: bytes, status: int) -> None:
        if write_info is not None and self.server.observer is not None:
            try:
                self.server.observer(*write_info, body, status)
            except Exception:
                logger.exception("influx proxy: write observer failed")

    def _connection(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            host, port = self.server.upstream
            self._upstream = http.client.HTTPConnection(host, port, timeout=self.server.upstream_timeout)
        return self._upstream

    def _close_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _forward(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, list, bytes]:
        # A kept-alive upstream connection may have been closed by influxd (restart, idle timeout); retry once
        # on a fresh one. A write repeated this way is harmless: InfluxDB overwrites a point with the same
        # series and timestamp.
        for attempt in (0, 1):
            reused = self._upstream is not None
            conn = self._connection()
            try:
                conn.request(method, target, body=body if body or method == "POST" else None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._close_upstream()
                if reused and attempt == 0:
                    continue
                raise
            if resp.will_close:
                self._close_upstream()
            return resp.status, resp.getheaders(), data
        raise http.client.HTTPException("unreachable")  # pragma: no cover - the loop always returns or raises

    def _health_from_ping(self, headers: dict[str, str]) -> tuple[int, list, bytes]:
        status, resp_headers, _ = self._forward("GET", "/ping", b"", headers)
        version = dict((k.lower(), v) for k, v in resp_headers).get("x-influxdb-version", "")
        ok = 200 <= status < 300
        payload = {
            "name": "influxdb",
            "message": "ready for queries and writes" if ok else f"/ping answered {status}",
            "status": "pass" if ok else "fail",
            "version": version,
            "checks": [],
        }
        return (200 if ok else 503), [("Content-Type", "application/json; charset=utf-8")], json.dumps(payload).encode()

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP and key.lower() != "date":
                self.send_header(key, value)
        self.send_header("Date", self.date_time_string())
        if status not in (204, 304) and not (100 <= status < 200):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def _reply_json(self, status: int, payload: dict) -> None:
        self._reply(status, [("Content-Type", "application/json; charset=utf-8")], json.dumps(payload).encode())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._close_upstream()


class _ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], upstream_timeout: float):
        self.upstream = upstream
        self.upstream_label = f"http://{upstream[0]}:{upstream[1]}"
        self.upstream_timeout = upstream_timeout
        self.observer: WriteObserver | None = None
        super().__init__(listen, _Handler)


def _split_url(url: str, what: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme != "http" or not parsed.hostname:
        raise ConfigurationError(f"{what} {url!r}: expected http://host:port")
    return parsed.hostname, parsed.port or 8086


class InfluxProxy:
    """The proxy as an object: ``start()`` serves in a background thread, ``serve_forever()`` in the caller's."""

    def __init__(
        self,
        listen: str,
        upstream: str,
        upstream_timeout: float = 30.0,
        observer: WriteObserver | None = None,
    ):
        host, port = _split_url(listen, "proxy listen address")
        if listen.rstrip("/").endswith(":0"):
            port = 0
        self.server = _ProxyHTTPServer((host, port), _split_url(upstream, "upstream InfluxDB URL"), upstream_timeout)
        self.server.observer = observer
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def set_observer(self, observer: WriteObserver | None) -> None:
        self.server.observer = observer

    def start(self) -> InfluxProxy:
        self._thread = threading.Thread(target=self.server.serve_forever, name="influx-proxy", daemon=True)
        self._thread.start()
        logger.info("influx proxy %s -> %s", self.url, self.server.upstream_label)
        return self

    def serve_forever(self) -> None:
        logger.info("influx proxy %s -> %s", self.url, self.server.upstream_label)
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


def port_is_free(host: str, port: int) -> bool:
    """True when nothing accepts connections on host:port (used by the management command's checks)."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) != 0
