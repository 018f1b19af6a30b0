"""Generic webhook: POSTs Alertmanager's webhook JSON (version 4) unchanged, so anything that consumes
Alertmanager webhooks consumes ours. Optional ``bearer_token`` in the secret store adds an Authorization header."""

from __future__ import annotations

from typing import Any

from .base import BaseReceiver, Result


class WebhookReceiver(BaseReceiver):
    kind = "webhook"

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        url = self.secret("url", required=False) or self.endpoint()
        token = self.secret("bearer_token", required=False)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.post(url, payload, headers)
