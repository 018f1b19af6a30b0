"""The engine's notion of "now", injectable so tests can step time (ack timeouts, silences) without sleeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_now: Callable[[], datetime] = timezone.now


def now() -> datetime:
    return _now()


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None):
        self.current = start or timezone.now()

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


@contextmanager
def use_clock(clock: Callable[[], datetime]) -> Iterator[Callable[[], datetime]]:
    """Make ``now()`` return ``clock()`` inside the block."""
    global _now
    previous, _now = _now, clock
    try:
        yield clock
    finally:
        _now = previous
