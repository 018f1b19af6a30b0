"""Real local receivers for alerting tests: an HTTP server that captures (and checks signatures like DingTalk and
Feishu do) and an SMTP server (aiosmtpd), both on loopback in this task's block 127.21.0.0/16."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from celery.exceptions import Retry

from fabric_ops.alerting import clock as alert_clock
from fabric_ops.alerting import scheduler, tasks
from fabric_ops.alerting.models import Notification, Receiver, Route
from fabric_ops.telemetry.influxd import free_port

HTTP_HOST = "127.21.0.1"
SMTP_HOST = "127.21.0.2"

DINGTALK_SECRET = "SECtest-dingtalk-secret"
FEISHU_SECRET = "feishu-test-secret"


@dataclass
class Captured:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    signature_ok: bool | None = None


@dataclass
class HttpCapture:
    url: str
    requests: list[Captured] = field(default_factory=list)
    scripts: dict[str, deque] = field(default_factory=dict)
    event: threading.Event = field(default_factory=threading.Event)

    def script(self, path: str, *responses: tuple[int, Any] | tuple[int, Any, dict]) -> None:
        """Answer the next requests to ``path`` with these (status, body[, headers]); then 200."""
        self.scripts.setdefault(path, deque()).extend(responses)

    def to(self, path: str) -> list[Captured]:
        return [r for r in self.requests if r.path == path]


def _dingtalk_ok(query: dict[str, str]) -> bool:
    timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
    digest = hmac.new(DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(), hashlib.sha256).digest()
    return bool(timestamp) and hmac.compare_digest(base64.b64encode(digest).decode(), sign)


def _feishu_ok(body: dict[str, Any]) -> bool:
    timestamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
    digest = hmac.new(f"{timestamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
    return bool(timestamp) and hmac.compare_digest(base64.b64encode(digest).decode(), sign)


@pytest.fixture
def http_capture() -> Iterator[HttpCapture]:
    capture = HttpCapture(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))  # decodes %2B etc. like a real server
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode()
            record = Captured("POST", parsed.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
            if parsed.path.startswith("/dingtalk"):
                record.signature_ok = _dingtalk_ok(query)
            elif parsed.path.startswith("/feishu") and isinstance(body, dict) and "sign" in body:
                record.signature_ok = _feishu_ok(body)
            capture.requests.append(record)
            queue = capture.scripts.get(parsed.path)
            answer = queue.popleft() if queue else (200, {"errcode": 0, "code": 0, "errmsg": "ok"})
            status, payload, headers = (*answer, {})[:3] if len(answer) == 2 else answer
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            capture.event.set()

    server = ThreadingHTTPServer((HTTP_HOST, 0), Handler)
    capture.url = f"http://{HTTP_HOST}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield capture
    server.shutdown()
    server.server_close()


class _SmtpHandler:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address.startswith("bounce"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content.decode("utf-8", "replace"),
            }
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, _SmtpHandler]]:
    handler = _SmtpHandler()
    port = free_port(SMTP_HOST)  # aiosmtpd's readiness check cannot use port 0: pick a free port first
    controller = Controller(handler, hostname=SMTP_HOST, port=port)
    controller.start()
    try:
        yield SMTP_HOST, port, handler
    finally:
        controller.stop()


@pytest.fixture
def manual_clock() -> Iterator[alert_clock.ManualClock]:
    clk = alert_clock.ManualClock()
    with alert_clock.use_clock(clk):
        yield clk


@pytest.fixture
def outbox(settings) -> Iterator[list]:
    settings.FABRIC_OPS_ALERTING_DISPATCH = "outbox"
    scheduler.OUTBOX.clear()
    yield scheduler.OUTBOX
    scheduler.OUTBOX.clear()


def pump(clk: alert_clock.ManualClock) -> dict[str, int]:
    """Run what Celery would run by now: due flushes, deliveries (the task functions themselves), retries."""
    stats = {"flush": 0, "deliver": 0, "retry": 0}
    while True:
        due = [item for item in scheduler.OUTBOX if item[2] is None or item[2] <= clk.current]
        if not due:
            return stats
        for item in due:
            scheduler.OUTBOX.remove(item)
            kind, pk, _ = item
            if kind == "flush":
                tasks.flush_group(pk)
                stats["flush"] += 1
                continue
            try:
                tasks.deliver(pk)
                stats["deliver"] += 1
            except Retry:  # called directly, Celery raises Retry without the countdown: the row has the time
                stats["retry"] += 1
                eta = Notification.objects.get(pk=pk).next_attempt_at
                assert eta is not None and eta > clk.current
                scheduler.OUTBOX.append(("deliver", pk, eta))


@pytest.fixture
def webhook(db, http_capture) -> Receiver:
    return Receiver.objects.create(
        name="team-webhook", kind="webhook", url=f"{http_capture.url}/team", backoff_s=1.0, max_attempts=4
    )


@pytest.fixture
def root_route(db, webhook) -> Route:
    """The migration's root route, pointed at the capturing webhook with short test timings."""
    root = Route.objects.get(parent__isnull=True)
    root.receiver = webhook
    root.group_by = ["alertname", "site"]
    root.group_wait_s, root.group_interval_s, root.repeat_interval_s = 30, 300, 3600
    root.save()
    return root
