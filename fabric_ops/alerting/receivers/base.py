"""What every receiver shares: the send result, HTTP POST with status classification, secret redaction.

Classification (the retry policy's input): 2xx is sent; 408, 429 and 5xx and network errors are retried with
backoff (honouring Retry-After); any other 4xx is fatal and never retried (the request itself is wrong).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ..models import Receiver
from ..secrets import resolve_secret

logger = logging.getLogger(__name__)

SENT = "sent"
RETRY = "retry"
FATAL = "fatal"
USER_AGENT = "FabricOps-Alerting/1.0"


@dataclass
class Result:
    outcome: str
    status_code: int | None = None
    detail: str = ""
    retry_after: float | None = None
    secrets: list[str] = field(default_factory=list, repr=False)

    def redacted(self) -> str:
        text = self.detail
        for value in self.secrets:
            if value:
                text = text.replace(value, "***")
        return text[:500]


@dataclass
class HttpResponse:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def post_json(url: str, body: Any, *, headers: dict[str, str] | None = None, timeout: float = 10.0) -> HttpResponse:
    """POST JSON; returns the response for any HTTP status (errors included); raises OSError on network faults."""
    data = json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json; charset=utf-8")
    request.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResponse(response.status, response.read(65536).decode("utf-8", "replace"),
                                {k.lower(): v for k, v in response.headers.items()})  # fmt: skip
    except urllib.error.HTTPError as exc:
        body_text = exc.read(65536).decode("utf-8", "replace") if exc.fp else ""
        return HttpResponse(exc.code, body_text, {k.lower(): v for k, v in (exc.headers or {}).items()})


def classify_http(response: HttpResponse) -> Result:
    excerpt = response.body[:200]
    if 200 <= response.status < 300:
        return Result(SENT, response.status, excerpt)
    if response.status in (408, 429) or response.status >= 500:
        return Result(RETRY, response.status, excerpt, _retry_after(response.headers))
    return Result(FATAL, response.status, excerpt)


class BaseReceiver:
    """One receiver kind. Subclasses implement :meth:`send` from the Alertmanager-shaped payload."""

    kind = ""
    default_url = ""

    def __init__(self, receiver: Receiver):
        self.receiver = receiver
        self._secrets: list[str] = []

    def secret(self, key: str, *, required: bool = True) -> str:
        """A value of the receiver's secret-store entry (remembered so it is redacted from the log)."""
        if not self.receiver.secret_name:
            if required:
                from fabric_ops.errors import ConfigurationError

                raise ConfigurationError(f"receiver {self.receiver.name}: needs secret_name with {key!r}")
            return ""
        value = resolve_secret(self.receiver.secret_name, key, required=required)
        if value:
            self._secrets.append(value)
        return value

    def endpoint(self) -> str:
        return self.receiver.url or self.default_url

    def post(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Result:
        started = time.monotonic()
        try:
            response = post_json(url, body, headers=headers, timeout=self.receiver.timeout_s)
        except OSError as exc:  # refused, reset, timeout, DNS: the far end may come back
            return self.done(Result(RETRY, None, f"{type(exc).__name__}: {exc}"))
        result = self.check(response)
        logger.debug("%s %s -> %s in %.0f ms", self.kind, self.receiver.name, response.status,
                     (time.monotonic() - started) * 1000)  # fmt: skip
        return self.done(result)

    def check(self, response: HttpResponse) -> Result:
        """Turn a response into a result; robots that answer 200 with an error code override this."""
        return classify_http(response)

    def done(self, result: Result) -> Result:
        result.secrets = list(self._secrets)
        return result

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        raise NotImplementedError


def check_errcode(response: HttpResponse, code_key: str, msg_key: str, retry_codes: set[int]) -> Result:
    """Robots (DingTalk, WeCom, Feishu) answer HTTP 200 with ``{"errcode": n}``; non-zero is a failure."""
    result = classify_http(response)
    if result.outcome != SENT:
        return result
    data = response.json()
    code = data.get(code_key, data.get("StatusCode", 0))
    try:
        code = int(code)
    except (TypeError, ValueError):
        return Result(FATAL, response.status, f"unexpected answer: {response.body[:200]}")
    if code == 0:
        return result
    detail = f"{code_key}={code} {data.get(msg_key, '')}"
    return Result(RETRY if code in retry_codes else FATAL, response.status, detail)
