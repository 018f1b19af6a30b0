"""Silences, maintenance windows and inhibition: which firing alerts are muted at a given time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db.models import Q

from .matchers import match_all
from .models import Alert, InhibitRule, Silence


def active_silences(when: datetime) -> list[Silence]:
    return [
        s
        for s in Silence.objects.filter(starts_at__lte=when, ends_at__gt=when).filter(
            Q(expired_early_at__isnull=True) | Q(expired_early_at__gt=when)
        )
    ]


def silenced_by(labels: Mapping[str, str], silences: Iterable[Silence]) -> Silence | None:
    for silence in silences:
        if match_all(silence.matchers, labels):
            return silence
    return None


def _equal(rule: InhibitRule, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
    for item in rule.equal or []:
        src_name, _, tgt_name = str(item).partition("=")
        if str(source.get(src_name, "")) != str(target.get(tgt_name or src_name, "")):
            return False
    return True


def inhibited_by(
    labels: Mapping[str, str], fingerprint: str, rules: list[InhibitRule], sources: list[Alert]
) -> Alert | None:
    """The firing alert that inhibits this one, if any (an alert never inhibits itself)."""
    for rule in rules:
        if not match_all(rule.target_matchers, labels):
            continue
        for source in sources:
            if source.fingerprint == fingerprint:
                continue
            if match_all(rule.source_matchers, source.labels) and _equal(rule, source.labels, labels):
                return source
    return None


class Muter:
    """Snapshot of silences, inhibit rules and firing alerts at one instant; answers "is this muted, and why"."""

    def __init__(self, when: datetime):
        self.silences = active_silences(when)
        self.rules = list(InhibitRule.objects.filter(enabled=True))
        self._sources: list[Alert] | None = None

    @property
    def sources(self) -> list[Alert]:
        """Firing alerts that could inhibit, loaded only when some alert is a target of some rule."""
        if self._sources is None:
            self._sources = list(Alert.objects.filter(status="firing"))
        return self._sources

    def why(self, alert: Alert) -> str:
        silence = silenced_by(alert.labels, self.silences)
        if silence is not None:
            return f"silenced by {silence.kind} {silence.pk}"
        rules = [r for r in self.rules if match_all(r.target_matchers, alert.labels)]
        if not rules:
            return ""
        source = inhibited_by(alert.labels, alert.fingerprint, rules, self.sources)
        if source is not None:
            return f"inhibited by {source.labels.get('alertname', '')} {source.fingerprint}"
        return ""
