"""DingTalk custom robot: POST to ``https://oapi.dingtalk.com/robot/send?access_token=...``.

With "加签" (signing) enabled the URL also carries ``timestamp`` (ms) and ``sign`` =
urlencode(base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))), as DingTalk documents. Secrets
(store keys ``access_token`` and ``secret``) never reach the delivery log. DingTalk answers HTTP 200 with
``errcode``; 130101 (sending too fast) is retried, any other non-zero code is fatal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

from .. import payload as text
from .base import BaseReceiver, HttpResponse, Result, check_errcode

RATE_LIMITED = {130101}


def sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


class DingTalkReceiver(BaseReceiver):
    kind = "dingtalk"
    default_url = "https://oapi.dingtalk.com/robot/send"

    def url(self) -> str:
        query = f"access_token={urllib.parse.quote(self.secret('access_token'))}"
        secret = self.secret("secret", required=False)
        if secret:
            timestamp = int(time.time() * 1000)
            query += f"&timestamp={timestamp}&sign={sign(secret, timestamp)}"
        return f"{self.endpoint()}?{query}"

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        body = {
            "msgtype": "markdown",
            "markdown": {"title": text.title(payload)[:64], "text": text.text(payload, markdown=True)},
        }
        at = self.receiver.options.get("at_mobiles")
        if at:
            body["at"] = {"atMobiles": list(at), "isAtAll": False}
        return self.post(self.url(), body)

    def check(self, response: HttpResponse) -> Result:
        return check_errcode(response, "errcode", "errmsg", RATE_LIMITED)
