"""Feishu (Lark) custom bot: POST to ``https://open.feishu.cn/open-apis/bot/v2/hook/<token>``.

With signature verification on, the body carries ``timestamp`` (seconds, as a string) and ``sign`` =
base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")) — Feishu's documented scheme, where the string to
sign is the HMAC *key* and the message is empty. Feishu answers HTTP 200 with ``code`` (0 = ok); 11232 and 9499
(frequency limits) are retried. Store keys: ``token`` (the hook id) and ``secret``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from .. import payload as text
from .base import BaseReceiver, HttpResponse, Result, check_errcode

RATE_LIMITED = {11232, 9499}


def sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuReceiver(BaseReceiver):
    kind = "feishu"
    default_url = "https://open.feishu.cn/open-apis/bot/v2/hook/"

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": text.text(payload)}}
        secret = self.secret("secret", required=False)
        if secret:
            timestamp = int(time.time())
            body = {"timestamp": str(timestamp), "sign": sign(secret, timestamp), **body}
        base = self.endpoint()
        url = base + self.secret("token") if base.endswith("/") else f"{base}/{self.secret('token')}"
        return self.post(url, body)

    def check(self, response: HttpResponse) -> Result:
        return check_errcode(response, "code", "msg", RATE_LIMITED)
