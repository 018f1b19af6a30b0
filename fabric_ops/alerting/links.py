"""Signed, time-limited acknowledge/resolve links put in notifications (django.core.signing).

The token carries the group id and the action, signed with SECRET_KEY and a salt of its own; it expires after
``FABRIC_OPS_ALERTING_LINK_MAX_AGE_S`` (24 h by default) so a forwarded old message cannot ack a new incident.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from fabric_ops.errors import FabricOpsError

SALT = "fabric_ops.alerting.action-link"
ACTIONS = ("ack", "resolve")


class LinkError(FabricOpsError):
    """An action link is malformed, tampered with or expired."""


def make_token(group_id: int, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return signing.dumps({"g": group_id, "a": action}, salt=SALT, compress=True)


def read_token(token: str, max_age: float | None = None) -> tuple[int, str]:
    limit = max_age if max_age is not None else getattr(settings, "FABRIC_OPS_ALERTING_LINK_MAX_AGE_S", 86400.0)
    try:
        data = signing.loads(token, salt=SALT, max_age=limit)
    except signing.SignatureExpired as exc:
        raise LinkError(f"action link expired ({exc})") from exc
    except signing.BadSignature as exc:
        raise LinkError("action link is not valid") from exc
    return int(data["g"]), str(data["a"])


def action_url(group_id: int, action: str) -> str:
    base = getattr(settings, "FABRIC_OPS_EXTERNAL_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/alerting/act/{make_token(group_id, action)}/"
