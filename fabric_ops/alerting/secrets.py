"""Receiver secrets by name, never in the database: the same store as device credentials.

A secret named ``pd-network`` with key ``routing_key`` is looked up, in order, in the environment variable
``FABRIC_OPS_CRED_PD_NETWORK_ROUTING_KEY`` and in ``<FABRIC_OPS_SECRETS_DIR>/pd-network.json`` (a JSON object).
Device credentials (fabric_ops/devices/credentials.py) use the same rules with the keys username/password, so an
SMTP login can be an ordinary credential.
"""

from __future__ import annotations

import json
import os

from fabric_ops.devices.credentials import _check_name, secret_file
from fabric_ops.errors import ConfigurationError


def env_name(name: str, key: str) -> str:
    return f"FABRIC_OPS_CRED_{_check_name(name).upper().replace('-', '_')}_{key.upper()}"


def resolve_secret(name: str, key: str, *, required: bool = True) -> str:
    """Return one value of the secret ``name``; raise ConfigurationError naming where it was looked for."""
    variable = env_name(name, key)
    if variable in os.environ:
        return os.environ[variable]
    path = secret_file(name)
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ConfigurationError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and key in data:
            return str(data[key])
    if not required:
        return ""
    raise ConfigurationError(f"secret {name!r} has no {key!r}: set {variable} or add {key!r} to {path}")
