"""Write the audit log. Every change through the API or the admin lands here, and other apps call :func:`record`.

    from fabric_ops.web.audit import record
    record("playbook:link-flap", "drain", link, {"state": ["up", "drained"]})

Values are made JSON-safe and secret-bearing fields are masked: an audit row says *that* a
password or token changed, never what it is.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import hmac
import logging
import re
import uuid
from typing import Any

from django.db import models

from .models import AuditEntry

logger = logging.getLogger(__name__)

MASK = "<secret>"
# Field names that may hold a secret (passwords, API tokens, keys, community strings).
SECRET_FIELD = re.compile(r"password|passwd|secret|token|(^|_)key$|community|private", re.IGNORECASE)

Source = AuditEntry.Source


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a field value (dates as ISO strings, decimals/UUIDs as strings)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, models.Model):
        return value.pk
    return str(value)


class SecretValue:
    """Stands for a secret in a snapshot: compares by digest so a change is seen, never serialised as the value."""

    __slots__ = ("_digest",)

    def __init__(self, value: Any) -> None:
        self._digest = hashlib.sha256(str(value).encode()).digest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and hmac.compare_digest(self._digest, other._digest)

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return MASK


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Concrete field values of ``obj`` (foreign keys as ids); secret fields become :class:`SecretValue`."""
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        name = field.attname if field.is_relation else field.name
        value = getattr(obj, field.attname)
        data[name] = (
            SecretValue(value) if SECRET_FIELD.search(field.name) and value not in (None, "") else jsonable(value)
        )
    return data


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for every field whose value differs; a changed secret shows as masked."""
    before, after = before or {}, after or {}
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes[name] = [MASK if isinstance(v, SecretValue) else v for v in (old, new)]
    return changes


def mask(changes: dict[str, Any]) -> dict[str, Any]:
    """Mask secret-looking keys of a caller-provided changes dict (defence in depth for :func:`record`)."""
    out = {}
    for key, value in (changes or {}).items():
        if SECRET_FIELD.search(str(key)):
            out[key] = [None if v is None else MASK for v in value] if isinstance(value, list | tuple) else MASK
        else:
            out[key] = jsonable(value)
    return out


def client_ip(request: Any) -> str | None:
    """The peer address Django saw. Proxies' X-Forwarded-For is not trusted (it is client-controlled)."""
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR") or None


def _actor(actor: Any) -> tuple[str, Any, str]:
    """(actor name, user or None, source) from a user or a ``playbook:``/``cli:`` string."""
    if isinstance(actor, str):
        prefix = actor.split(":", 1)[0]
        source = {
            "playbook": Source.PLAYBOOK,
            "cli": Source.CLI,
            "link": Source.LINK,
            "demo": Source.DEMO,
        }.get(prefix, Source.SYSTEM)
        return actor[:150], None, source
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()[:150], actor, Source.API
    raise ValueError(
        "audit actor must be a user or a 'playbook:<name>' / 'cli:<login>' / 'link:<who>' / 'demo:<login>' string, "
        f"not {actor!r}"
    )


def record(
    actor: Any,
    action: str,
    obj: Any,
    changes: dict[str, Any] | None = None,
    request: Any = None,
    *,
    source: str | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    object_repr: str | None = None,
) -> AuditEntry:
    """Append one audit row and return it.

    ``actor``: a ``User`` or a string ``playbook:<name>`` / ``cli:<login>`` / ``link:<who>`` (a signed link) /
    ``demo:<login>`` (the demo command).
    ``obj``: the model instance the change is about, or None with ``object_type``/``object_id``/``object_repr``
    for things that are not rows (a lab fault). ``changes``: ``{field: [before, after]}`` (see :func:`diff`);
    secret keys are masked.
    ``request`` supplies the source IP and the request id (X-Request-ID).
    """
    name, user, default_source = _actor(actor)
    if isinstance(obj, models.Model):
        object_type = object_type or obj._meta.label_lower
        object_id = obj.pk if object_id is None else object_id
        object_repr = object_repr if object_repr is not None else str(obj)
    if not object_type:
        raise ValueError("audit record needs an object or an object_type")
    entry = AuditEntry.objects.create(
        actor=name,
        user=user,
        source=source or default_source,
        action=action[:32],
        object_type=object_type[:100],
        object_id="" if object_id is None else str(object_id)[:64],
        object_repr=(object_repr or "")[:200],
        changes=mask(changes or {}),
        source_ip=client_ip(request) if request is not None else None,
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )
    logger.info("audit: %s %s %s %s", name, action, object_type, object_repr)
    return entry


def cli_login() -> str:
    """Who runs a management command (the OS login), for ``cli:<login>`` actors."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
