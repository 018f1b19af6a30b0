"""PagerDuty Events API v2 (https://events.pagerduty.com/v2/enqueue).

One PagerDuty alert per group: ``dedup_key`` is the group key, so re-sends update it, ``acknowledge`` and
``resolve`` address it. The routing key (integration key) comes from the secret store (key ``routing_key``).
PagerDuty answers 202 when accepted, 400 for an invalid event (never retried), 429 when throttled and 5xx on
its own faults (both retried with backoff).
"""

from __future__ import annotations

from typing import Any

from .. import payload as text
from .base import BaseReceiver, Result

# Our severities onto PagerDuty's four (critical, error, warning, info).
SEVERITY = {"critical": "critical", "major": "error", "error": "error", "minor": "warning", "warning": "warning"}


class PagerDutyReceiver(BaseReceiver):
    kind = "pagerduty"
    default_url = "https://events.pagerduty.com/v2/enqueue"

    def event(self, payload: dict[str, Any], kind: str) -> dict[str, Any]:
        action = {"acknowledge": "acknowledge", "resolved": "resolve"}.get(kind, "trigger")
        if payload["status"] == "resolved" and kind != "acknowledge":
            action = "resolve"
        event: dict[str, Any] = {
            "routing_key": self.secret("routing_key"),
            "event_action": action,
            "dedup_key": payload["groupKey"],
        }
        if action == "trigger":
            common = payload["commonLabels"]
            firing = [a for a in payload["alerts"] if a["status"] == "firing"]
            first = firing[0]["labels"] if firing else common
            event["payload"] = {
                "summary": text.title(payload)[:1024],
                "source": common.get("device") or first.get("device") or common.get("fabric") or "fabric-ops",
                "severity": SEVERITY.get(common.get("severity", ""), "error"),
                "component": common.get("interface", ""),
                "group": common.get("fabric", ""),
                "class": common.get("alertname", ""),
                "custom_details": {
                    "alerts": [
                        {"labels": a["labels"], "annotations": a["annotations"], "startsAt": a["startsAt"]}
                        for a in firing[:20]
                    ],
                    "firing": len(firing),
                },
            }
            extra = payload.get("fabricOps", {})
            event["links"] = [
                {"href": extra[k], "text": label} for k, label in (("ackURL", "Acknowledge"), ("resolveURL", "Resolve"))
                if extra.get(k)
            ]  # fmt: skip
            event["client"] = "FabricOps"
            event["client_url"] = payload["externalURL"]
        return event

    def send(self, payload: dict[str, Any], kind: str) -> Result:
        return self.post(self.endpoint(), self.event(payload, kind))
