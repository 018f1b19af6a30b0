"""The notification body: Alertmanager's webhook JSON (version 4), plus a ``fabricOps`` block with the group id
and the signed acknowledge/resolve links. Every receiver renders its own message from this one structure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings

from .links import action_url
from .models import Alert, AlertGroup, Receiver

ZERO_TIME = "0001-01-01T00:00:00Z"  # what Alertmanager sends as endsAt of a firing alert


def _iso(when: datetime | None) -> str:
    return when.isoformat().replace("+00:00", "Z") if when else ZERO_TIME


def _common(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": _iso(alert.starts_at),
        "endsAt": _iso(alert.ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def build(group: AlertGroup, receiver: Receiver, alerts: Iterable[Alert], kind: str) -> dict[str, Any]:
    alerts = list(alerts)
    firing = [a for a in alerts if a.status == "firing"]
    base = getattr(settings, "FABRIC_OPS_EXTERNAL_URL", "http://127.0.0.1:8000").rstrip("/")
    return {
        "version": "4",
        "groupKey": group.group_key,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver.name,
        "groupLabels": group.group_labels,
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": base,
        "alerts": [alert_json(a) for a in alerts],
        "fabricOps": {
            "groupId": group.pk,
            "kind": kind,
            "acknowledgedBy": group.acknowledged_by,
            "ackURL": action_url(group.pk, "ack") if firing else "",
            "resolveURL": action_url(group.pk, "resolve") if firing else "",
        },
    }


def title(payload: dict[str, Any]) -> str:
    """``[FIRING:3] LinkDown site=sjc fabric=f1`` — Alertmanager's default subject, with our kind when not firing."""
    firing = sum(1 for a in payload["alerts"] if a["status"] == "firing")
    kind = payload.get("fabricOps", {}).get("kind", "")
    status = payload["status"].upper()
    head = f"[{status}:{firing}]" if status == "FIRING" else f"[{status}]"
    if kind in ("acknowledge", "escalation"):
        head = f"[{kind.upper()}] {head}"
    name = payload["commonLabels"].get("alertname", "")
    labels = " ".join(f"{k}={v}" for k, v in sorted(payload["groupLabels"].items()) if k != "alertname")
    return " ".join(part for part in (head, name, labels) if part)


def text(payload: dict[str, Any], *, markdown: bool = False, limit: int = 20) -> str:
    """A plain or markdown body: one line per alert (summary, device, interface), then the action links."""
    lines = [f"**{title(payload)}**" if markdown else title(payload)]
    for item in payload["alerts"][:limit]:
        labels, notes = item["labels"], item["annotations"]
        where = " ".join(str(labels[k]) for k in ("device", "interface", "span") if labels.get(k))
        summary = notes.get("summary") or labels.get("alertname", "")
        mark = "✅" if item["status"] == "resolved" else "🔥"
        lines.append(f"- {mark} {summary} ({where})" if where else f"- {mark} {summary}")
    if len(payload["alerts"]) > limit:
        lines.append(f"- ... and {len(payload['alerts']) - limit} more")
    extra = payload.get("fabricOps", {})
    if extra.get("acknowledgedBy"):
        lines.append(f"Acknowledged by {extra['acknowledgedBy']}")
    if extra.get("ackURL"):
        if markdown:
            lines.append(f"[Acknowledge]({extra['ackURL']}) | [Resolve]({extra['resolveURL']})")
        else:
            lines.append(f"Acknowledge: {extra['ackURL']}")
            lines.append(f"Resolve: {extra['resolveURL']}")
    return "\n".join(lines)
