"""One scheduler thread for every commit timer of every emulated switch (EOS commit timers, VRP commit trials).

A fabric-wide push with ``revert_in`` arms one timer per switch; a thread each (``threading.Timer``) would
mean hundreds of sleeping threads in a 256-switch lab. Here all deadlines share one heap and one thread,
started on first use. :class:`TimerHeap` takes a clock so tests can drive it with fake time (:meth:`run_due`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["TimerHandle", "TimerHeap", "schedule"]

logger = logging.getLogger(__name__)


class TimerHandle:
    """A scheduled call; ``cancel()`` makes it a no-op (it stays in the heap until its time).

    A callback already taken off the heap may still run after ``cancel()``: callers that care (a trial
    confirmed while its revert waits for the switch lock) check their own state under their lock.
    """

    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]):
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerHeap:
    """Deadlines in one heap; due callbacks run in order of deadline, ties in order of scheduling."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, autostart: bool = True, name: str = "lab-timers"):
        self._clock = clock
        self._autostart = autostart  # False: nothing runs unless the caller calls run_due() (fake-time tests)
        self._name = name
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        """Entries still in the heap, cancelled ones included (they leave when their deadline passes)."""
        with self._cond:
            return len(self._heap)

    def schedule(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(self._clock() + delay, callback)
        with self._cond:
            heapq.heappush(self._heap, (handle.deadline, next(self._counter), handle))
            if self._autostart and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return handle

    def run_due(self) -> int:
        """Run every callback whose deadline has passed on the clock; returns how many ran (cancelled: not)."""
        with self._cond:
            due = self._pop_due(self._clock())
        return self._call(due)

    def _pop_due(self, now: float) -> list[TimerHandle]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def _call(self, handles: list[TimerHandle]) -> int:
        ran = 0
        for n, handle in enumerate(handles):
            if handle.cancelled:
                continue
            ran += 1
            try:
                handle.callback()
            except Exception:  # one switch's failing revert must not stop the others' timers
                logger.exception("lab timer callback failed")
            except BaseException:  # the thread ends (SystemExit, KeyboardInterrupt: the lab is going down); the
                with self._cond:  # rest of the batch stays queued, run by the thread the next schedule() starts
                    for rest in handles[n + 1 :]:
                        heapq.heappush(self._heap, (rest.deadline, next(self._counter), rest))
                raise
        return ran

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = self._clock()
                    due = self._pop_due(now)
                    if due:
                        break
                    # Waiting under the condition: a timer scheduled meanwhile notifies, so none is missed.
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            self._call(due)  # outside the lock: callbacks take switch locks and may schedule again


_SHARED = TimerHeap(name="lab-commit-timers")


def schedule(delay: float, callback: Callable[[], None]) -> TimerHandle:
    """Call ``callback`` (in the shared scheduler thread) after ``delay`` seconds unless cancelled."""
    return _SHARED.schedule(delay, callback)
