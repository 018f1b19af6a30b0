"""Strip secrets from configuration text before it is stored or shown.

Diffs, backups and compliance results are kept in the database and shown in
pages; a password hash or SNMP community in them would put a secret where
DESIGN says none may be. Values after these keywords are replaced, the line
and its position stay, so a diff still shows *that* a secret changed.
"""

from __future__ import annotations

import re

REDACTED = "<removed>"

# (words, pattern): the pattern can only match text that contains one of its words (lower case). Checking for the
# words first skips the regex scans that cannot match; most configuration text holds no secret at all.
_PATTERNS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    # EOS: username admin privilege 15 secret sha512 $6$...; neighbor X password 7 ...; tacacs/radius keys
    # VRP: local-user admin password irreversible-cipher ...; peer X password cipher ...
    (
        ("secret", "password"),
        re.compile(
            r"(?P<keep>\b(?:secret|password)\s+(?:(?:0|5|7|8a|sha512|irreversible-cipher|cipher|simple)\s+)?)"
            r"(?P<value>\S+)",
            re.IGNORECASE,
        ),
    ),
    (
        ("tacacs-server", "radius-server"),
        re.compile(r"(?P<keep>\b(?:tacacs-server|radius-server)\s+(?:host\s+\S+\s+)?key\s+(?:\d+\s+)?)(?P<value>\S+)"),
    ),
    (("snmp-server",), re.compile(r"(?P<keep>\bsnmp-server\s+community\s+)(?P<value>\S+)", re.IGNORECASE)),
    # VRP: any "cipher"/"irreversible-cipher" value (snmp-agent community, shared-key, usm-user, isis, ...)
    (("cipher",), re.compile(r"(?P<keep>\b(?:irreversible-cipher|cipher)\s+)(?P<value>\S+)", re.IGNORECASE)),
    # SNMPv3 users: "auth sha <secret> priv aes128 <secret>"
    (
        ("auth", "priv"),
        re.compile(r"(?P<keep>\b(?:auth|priv)\s+(?:md5|sha\S*|des|3des|aes\S*)\s+)(?P<value>\S+)", re.IGNORECASE),
    ),
    # NTP / OSPF / IS-IS keys: "authentication-key 1 md5 7 <secret>", "message-digest-key 1 md5 <secret>"
    (
        ("authentication-key", "message-digest-key"),
        re.compile(
            r"(?P<keep>\b(?:authentication|message-digest)-key\s+\d+\s+\S+\s+(?:\d+\s+)?)(?P<value>\S+)",
            re.IGNORECASE,
        ),
    ),
]


def _replace(match: re.Match[str]) -> str:
    return match.group("keep") + REDACTED


def redact(text: str) -> str:
    """Replace every secret value in ``text`` with ``<removed>``; idempotent."""
    # Case-insensitive matching is Unicode-aware ("\u017f" matches "s", "\u212a" matches "k") while str.lower()
    # does not map those, so the word check is only a safe shortcut for ASCII text; other text gets every scan.
    lowered = text.lower() if text.isascii() else None
    for words, pattern in _PATTERNS:
        if lowered is not None and not any(word in lowered for word in words):
            continue
        text = pattern.sub(_replace, text)
    return text
