"""WeCom (企业微信) group robot: POST to ``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``.

The group robot has no request signing: the ``key`` in the URL is the credential (store key ``key``). It answers
HTTP 200 with ``errcode``; 45009 (API frequency limit, 20 messages a minute per robot) is retried.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from .. import payload as text
from .base import BaseReceiver, HttpResponse, Result, check_errcode

RATE_LIMITED = {45009}
MAX_BYTES = 4096  # WeCom's limit for markdown content


class WeComReceiver(BaseReceiver):
    kind = "wecom"
    default_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        content = text.text(payload, markdown=True)
        while len(content.encode()) > MAX_BYTES:
            content = content[: len(content) - 200]
        url = f"{self.endpoint()}?key={urllib.parse.quote(self.secret('key'))}"
        return self.post(url, {"msgtype": "markdown", "markdown": {"content": content}})

    def check(self, response: HttpResponse) -> Result:
        return check_errcode(response, "errcode", "errmsg", RATE_LIMITED)
