"""One scheduler thread for every commit timer of every emulated switch.

A fabric-wide push with ``revert_in`` arms one timer per switch; a thread each (``threading.Timer``) would
mean hundreds of sleeping threads in a 256-switch lab. Here all deadlines share one heap and one thread,
started on first use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["TimerHandle", "schedule"]

logger = logging.getLogger(__name__)


class TimerHandle:
    """A scheduled call; ``cancel()`` makes it a no-op (it stays in the heap until its time)."""

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]):
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + delay, callback)
        with self._cond:
            heapq.heappush(self._heap, (handle.deadline, next(self._counter), handle))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="eos-commit-timers", daemon=True)
                self._thread.start()
            self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, _, handle = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._cond.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            try:
                handle.callback()
            except Exception:  # one switch's failing revert must not stop the others' timers
                logger.exception("commit timer callback failed")


_SCHEDULER = _Scheduler()


def schedule(delay: float, callback: Callable[[], None]) -> TimerHandle:
    """Call ``callback`` (in the scheduler thread) after ``delay`` seconds unless cancelled."""
    return _SCHEDULER.schedule(delay, callback)
