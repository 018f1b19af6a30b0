"""Strip secrets from configuration text before it is stored or shown.

Diffs, backups and compliance results are kept in the database and shown in
pages; a password hash or SNMP community in them would put a secret where
DESIGN says none may be. Values after these keywords are replaced, the line
and its position stay, so a diff still shows *that* a secret changed.
"""

from __future__ import annotations

import re

REDACTED = "<removed>"

_PATTERNS = [
    # EOS: username admin privilege 15 secret sha512 $6$...; neighbor X password 7 ...; tacacs/radius keys
    # VRP: local-user admin password irreversible-cipher ...; peer X password cipher ...
    re.compile(
        r"(?P<keep>\b(?:secret|password)\s+(?:(?:0|5|7|8a|sha512|irreversible-cipher|cipher|simple)\s+)?)"
        r"(?P<value>\S+)",
        re.IGNORECASE,
    ),
    re.compile(r"(?P<keep>\b(?:tacacs-server|radius-server)\s+(?:host\s+\S+\s+)?key\s+(?:\d+\s+)?)(?P<value>\S+)"),
    re.compile(r"(?P<keep>\bsnmp-server\s+community\s+)(?P<value>\S+)", re.IGNORECASE),
    # VRP: any "cipher"/"irreversible-cipher" value (snmp-agent community, shared-key, usm-user, isis, ...)
    re.compile(r"(?P<keep>\b(?:irreversible-cipher|cipher)\s+)(?P<value>\S+)", re.IGNORECASE),
    # SNMPv3 users: "auth sha <secret> priv aes128 <secret>"
    re.compile(r"(?P<keep>\b(?:auth|priv)\s+(?:md5|sha\S*|des|3des|aes\S*)\s+)(?P<value>\S+)", re.IGNORECASE),
    # NTP / OSPF / IS-IS keys: "authentication-key 1 md5 7 <secret>", "message-digest-key 1 md5 <secret>"
    re.compile(
        r"(?P<keep>\b(?:authentication|message-digest)-key\s+\d+\s+\S+\s+(?:\d+\s+)?)(?P<value>\S+)", re.IGNORECASE
    ),
]


def redact(text: str) -> str:
    """Replace every secret value in ``text`` with ``<removed>``; idempotent."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group("keep") + REDACTED, text)
    return text
