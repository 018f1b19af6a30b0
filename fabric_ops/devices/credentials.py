"""Device credentials, resolved by name at connection time and never stored in the database.

A credential named ``core`` is looked up, in order, in:

1. ``FABRIC_OPS_CRED_CORE_USERNAME`` / ``FABRIC_OPS_CRED_CORE_PASSWORD`` environment variables;
2. the JSON file ``<FABRIC_OPS_SECRETS_DIR>/core.json`` holding ``{"username": ..., "password": ...}``
   (mounted from a secret store in production, written with mode 0600 by ``lab up`` for the lab).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from fabric_ops.errors import ConfigurationError

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Credential:
    username: str
    password: str

    def __repr__(self) -> str:  # never let a password reach a log line or a traceback
        return f"Credential(username={self.username!r}, password='***')"


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ConfigurationError(f"credential name {name!r} is invalid: use lower-case letters, digits, '-' and '_'")
    return name


def secret_file(name: str) -> Path:
    return Path(settings.SECRETS_DIR) / f"{_check_name(name)}.json"


def resolve(name: str) -> Credential:
    """Return the credential called ``name`` or raise ConfigurationError saying where it was looked for."""
    env_prefix = f"FABRIC_OPS_CRED_{_check_name(name).upper().replace('-', '_')}_"
    username = os.environ.get(env_prefix + "USERNAME")
    password = os.environ.get(env_prefix + "PASSWORD")
    if username and password is not None:
        return Credential(username, password)
    path = secret_file(name)
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return Credential(str(data["username"]), str(data["password"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path}: expected a JSON object with 'username' and 'password' ({exc})") from exc
    raise ConfigurationError(
        f"credential {name!r} not found: set {env_prefix}USERNAME and {env_prefix}PASSWORD, or create {path}"
    )


def ensure_generated(name: str, username: str = "admin") -> Credential:
    """Create a random credential file if none exists (lab and demo use), and return the credential."""
    try:
        return resolve(name)
    except ConfigurationError:
        pass
    path = secret_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    credential = Credential(username, secrets.token_urlsafe(18))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"username": credential.username, "password": credential.password}, handle)
    return credential
