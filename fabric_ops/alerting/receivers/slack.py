"""Slack incoming webhook: the URL itself is the credential (hooks.slack.com/services/T/B/X), so it comes from
the secret store (key ``url``); ``Receiver.url`` is only used when no secret is named (tests, internal relays).
Slack answers 200 "ok"; 400 invalid_payload / 403 / 404 no_service are fatal; 429 and 5xx are retried."""

from __future__ import annotations

from typing import Any

from .. import payload as text
from .base import BaseReceiver, Result

COLOURS = {"firing": "#d63232", "resolved": "#2eb886", "acknowledge": "#f2c744", "escalation": "#a30200"}


class SlackReceiver(BaseReceiver):
    kind = "slack"

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        url = self.secret("url") if self.receiver.secret_name else self.endpoint()
        colour = COLOURS.get(kind if kind in ("acknowledge", "escalation") else payload["status"], "#888888")
        body: dict[str, Any] = {
            "text": text.title(payload),
            "attachments": [{"color": colour, "mrkdwn_in": ["text"], "text": text.text(payload, markdown=False)}],
        }
        channel = self.receiver.options.get("channel")
        if channel:
            body["channel"] = channel
        return self.post(url, body)
