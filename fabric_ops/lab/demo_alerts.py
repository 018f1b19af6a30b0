"""The demo's alert receiver: paging "outside the machine" replaced by a webhook receiver on loopback.

``AlertReceiver`` is a small HTTP server bound to 127.0.0.1 that accepts the Alertmanager webhook JSON (v4) the
alerting app's ``webhook`` receiver sends, appends one JSON line per alert to ``var/demo-alerts.log`` and tells
the terminal. ``configure_alerting(url)`` points the alerting app at it through its own models, as an operator
would in the admin: a ``webhook`` Receiver, a Route under the root (group per incident, short waits so a
visitor sees alerts within seconds) and an incident AlertRule that announces incidents while automation works
on them (open, mitigating) — so a mitigated incident's alert resolves. The shipped ``incident-needs-human`` rule
pages what automation could not fix (a guardrail refusal) with its reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECEIVER_NAME = "demo-console"
ROUTE_NAME = "demo-console"
RULE_NAME = "demo-automation-at-work"


class AlertReceiver:
    """Loopback webhook receiver; ``received`` holds one dict per alert, in arrival order."""

    def __init__(self, log_path: Path, say: Callable[[str], None] | None = None, host: str = "127.0.0.1") -> None:
        self.log_path = Path(log_path)
        self.say = say
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.accept(payload)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows the alerts
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/alerts"

    def start(self) -> AlertReceiver:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-alert-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def accept(self, payload: dict[str, Any]) -> None:
        now = time.time()
        rows = []
        for alert in payload.get("alerts") or []:
            labels, annotations = alert.get("labels") or {}, alert.get("annotations") or {}
            rows.append(
                {
                    "received_at": now,
                    "status": alert.get("status", ""),
                    "alertname": labels.get("alertname", ""),
                    "incident": labels.get("incident", ""),
                    "severity": labels.get("severity", ""),
                    "device": labels.get("device", ""),
                    "interface": labels.get("interface", ""),
                    "span": labels.get("span", ""),
                    "incident_status": annotations.get("status", ""),
                    "summary": annotations.get("summary", ""),
                    "reason": annotations.get("reason", ""),
                    "fingerprint": alert.get("fingerprint", ""),
                    "receiver": payload.get("receiver", ""),
                    "group_key": payload.get("groupKey", ""),
                }
            )
        with self._lock:
            # A notification lists every alert of its group (Alertmanager semantics); the terminal tells only
            # what changed, the log keeps everything.
            seen = {_key(x) for x in self.received}
            news = [r for r in rows if _key(r) not in seen]
            self.received.extend(rows)
            with self.log_path.open("a") as handle:
                for row in rows:
                    handle.write(json.dumps(row) + "\n")
        if self.say:  # alerts that read the same (one per optic lane, say) on one line
            lines = Counter(describe(row) for row in news)  # in first-seen order
            for line, count in lines.items():
                self.say(line if count == 1 else f"{line} x{count}")

    def for_incident(self, incident_id: int) -> list[str]:
        """``"<alert status>:<incident status>"`` of the alerts received about one incident, each once."""
        with self._lock:
            out: list[str] = []
            for r in self.received:
                item = f"{r['status']}:{r['incident_status']}"
                if r["incident"] == str(incident_id) and item not in out:
                    out.append(item)
            return out


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return (row["fingerprint"] or row["alertname"] + row["incident"], row["status"], row["incident_status"])


def describe(row: dict[str, Any]) -> str:
    where = row["span"] or f"{row['device']} {row['interface']}".strip()
    about = [f"incident {row['incident']}"] if row["incident"] else []
    about += [x for x in (row["incident_status"] or row["severity"],) if x]
    about_text = f" ({', '.join(about)})" if about else ""
    reason = f": {row['reason']}" if row["reason"] and row["status"] == "firing" else ""
    return f"alert {row['status'].upper()} {row['alertname']} on {where or '-'}{about_text}{reason}"


def configure_alerting(url: str) -> str:
    """Point the alerting app at the demo receiver (idempotent: a second demo updates the same rows)."""
    from fabric_ops.alerting.choices import RuleSource
    from fabric_ops.alerting.models import AlertRule, Receiver, Route

    receiver, _ = Receiver.objects.update_or_create(
        name=RECEIVER_NAME,
        defaults={
            "kind": "webhook",
            "url": url,
            "send_resolved": True,
            "max_attempts": 5,
            "backoff_s": 1.0,
            "timeout_s": 5.0,
            "enabled": True,
        },
    )
    root = Route.objects.filter(parent__isnull=True).order_by("id").first()
    if root is None:
        root = Route.objects.create(name="root", group_by=["alertname", "fabric", "site"])
    Route.objects.update_or_create(
        name=ROUTE_NAME,
        defaults={
            "parent": root,
            "order": 0,
            "matchers": [],
            "receiver": receiver,
            "group_by": ["incident"],  # one notification stream per incident
            "group_wait_s": 1.0,
            "group_interval_s": 5.0,
            "repeat_interval_s": 3600.0,
        },
    )
    AlertRule.objects.update_or_create(
        name=RULE_NAME,
        defaults={
            "source": RuleSource.INCIDENT,
            "enabled": True,
            "incident_statuses": ["open", "mitigating"],
            "annotations": {"description": "Automation is working on this incident; resolves when mitigated."},
        },
    )
    return f"receiver {RECEIVER_NAME} (webhook {url}), route {ROUTE_NAME} under {root.name}, rule {RULE_NAME}"
