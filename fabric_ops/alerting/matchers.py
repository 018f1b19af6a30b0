"""Label matchers (Alertmanager syntax) and fingerprints; pure functions.

A matcher is ``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex`` (regexes are anchored, as in
Alertmanager). A missing label matches as the empty string, so ``team!=net`` matches alerts without ``team``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from fabric_ops.errors import ConfigurationError

_MATCHER_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.name, ""))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = _regex(self.value).fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=2048)
def parse(text: str) -> Matcher:
    """Parse one matcher; the error names the text, so a bad route or silence is found at once."""
    found = _MATCHER_RE.match(text)
    if not found:
        raise ConfigurationError(f"matcher {text!r}: expected name=value, name!=value, name=~regex or name!~regex")
    name, op, value = found.groups()
    if op in ("=~", "!~"):
        try:
            _regex(value)
        except re.error as exc:
            raise ConfigurationError(f"matcher {text!r}: bad regular expression ({exc})") from exc
    return Matcher(name, op, value)


def parse_all(items: Iterable[str | Mapping[str, str]]) -> list[Matcher]:
    """Accept strings or ``{"name", "op", "value"}`` objects (the API form)."""
    out = []
    for item in items or ():
        if isinstance(item, Mapping):
            out.append(parse(f"{item['name']}{item.get('op', '=')}{item['value']}"))
        else:
            out.append(parse(str(item)))
    return out


def match_all(matchers: Iterable[str | Mapping[str, str]], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in parse_all(matchers))


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable identity of an alert: the same labels always give the same fingerprint, whatever their order."""
    canonical = json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def group_labels(labels: Mapping[str, str], group_by: list[str] | None) -> dict[str, str]:
    """The labels that name a group; ``["..."]`` means every label (one group per alert)."""
    if group_by and "..." in group_by:
        return dict(sorted(labels.items()))
    return {name: str(labels.get(name, "")) for name in sorted(group_by or [])}
