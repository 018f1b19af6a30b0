"""The lab's shared commit-timer heap (EOS commit timers and VRP commit trials both run on it)."""

from __future__ import annotations

import threading
import time

import pytest

from fabric_ops.lab import huawei_vrp
from fabric_ops.lab.api import ManualClock
from fabric_ops.lab.huawei_vrp import platform as vrp
from fabric_ops.lab.huawei_vrp.config import Op
from fabric_ops.lab.state import make_switch
from fabric_ops.lab.timers import TimerHeap, schedule

pytestmark = [pytest.mark.lab, pytest.mark.timeout(30)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def heap(clock) -> TimerHeap:
    return TimerHeap(clock=clock, autostart=False)


def test_due_callbacks_run_in_deadline_order_ties_in_scheduling_order(heap, clock):
    fired: list[str] = []
    for name, delay in [("c", 3), ("a", 1), ("b1", 2), ("b2", 2), ("d", 10)]:
        heap.schedule(delay, lambda name=name: fired.append(name))
    assert heap.run_due() == 0 and fired == []
    clock.now += 2
    assert heap.run_due() == 3
    assert fired == ["a", "b1", "b2"]
    clock.now += 1
    heap.run_due()
    assert fired == ["a", "b1", "b2", "c"]
    assert len(heap) == 1  # d is still ahead


def test_cancelled_timers_never_run_and_leave_at_their_deadline(heap, clock):
    fired: list[int] = []
    handles = [heap.schedule(n % 50, lambda n=n: fired.append(n)) for n in range(1000)]
    for handle in handles[::2]:
        handle.cancel()
    clock.now += 60
    assert heap.run_due() == 500
    assert sorted(fired) == list(range(1, 1000, 2))
    assert fired == sorted(fired, key=lambda n: n % 50)  # deadline order, scheduling order within a deadline
    assert len(heap) == 0


def test_a_failing_callback_does_not_stop_the_others(heap, clock):
    fired: list[str] = []
    heap.schedule(1, lambda: 1 / 0)
    heap.schedule(1, lambda: fired.append("after"))
    clock.now += 1
    assert heap.run_due() == 2
    assert fired == ["after"]


def test_a_callback_that_ends_the_thread_leaves_the_rest_of_its_batch_queued(heap, clock):
    fired: list[str] = []

    def stop() -> None:
        raise SystemExit

    heap.schedule(1, stop)
    heap.schedule(1, lambda: fired.append("second"))
    clock.now += 1
    with pytest.raises(SystemExit):
        heap.run_due()
    assert fired == [] and len(heap) == 1  # not lost with the thread: the next one runs it
    assert heap.run_due() == 1 and fired == ["second"]


def test_shared_heap_fires_many_timers_on_one_thread_in_order():
    fired: list[int] = []
    done = threading.Event()
    threads_before = threading.active_count()
    handles = []
    for n in range(200):
        handles.append(schedule(0.3 + (n % 10) * 0.02, lambda n=n: fired.append(n)))
    handles[5].cancel()
    schedule(0.6, done.set)
    assert done.wait(10)
    assert threading.active_count() - threads_before <= 1  # the scheduler thread, started once for everyone
    assert 5 not in fired and len(fired) == 199
    assert [n % 10 for n in fired] == sorted(n % 10 for n in fired)


def test_an_earlier_timer_scheduled_later_is_not_held_up_by_a_long_wait():
    early = threading.Event()
    schedule(30, lambda: None)  # the scheduler thread now sleeps towards this deadline
    started = time.monotonic()
    schedule(0.05, early.set)
    assert early.wait(5)
    assert time.monotonic() - started < 2


# ---- VRP commit trials on the shared heap ------------------------------------------------------------------


def _describe(text: str) -> list[Op]:
    return [Op("set", ("interface 400GE1/0/1",), f"description {text}", ("description",))]


@pytest.fixture
def vrp_switch():
    switch = make_switch("leaf9", "huawei_vrp", "127.11.9.1")
    huawei_vrp.initialise(switch)
    return switch


def test_vrp_trial_expiry_rolls_back(vrp_switch):
    vrp.commit(vrp_switch, _describe("trial"), "admin", trial_seconds=1)
    assert vrp_switch.interfaces["400GE1/0/1"].description == "trial"
    deadline = time.time() + 5
    while vrp.platform(vrp_switch).trial is not None and time.time() < deadline:
        time.sleep(0.05)
    assert vrp.platform(vrp_switch).trial is None
    assert vrp_switch.interfaces["400GE1/0/1"].description == ""


def test_vrp_stale_trial_timer_does_not_revert_the_next_trial(vrp_switch):
    vrp.commit(vrp_switch, _describe("first"), "admin", trial_seconds=600)
    first = vrp.platform(vrp_switch).trial
    vrp.commit(vrp_switch, [], "admin")  # confirms the first trial
    vrp.commit(vrp_switch, _describe("second"), "admin", trial_seconds=600)
    second = vrp.platform(vrp_switch).trial
    vrp._trial_expired(vrp_switch, first)  # the first trial's revert, already taken off the heap when confirmed
    assert vrp.platform(vrp_switch).trial is second
    assert vrp_switch.interfaces["400GE1/0/1"].description == "second"
    vrp.abort_trial(vrp_switch)
    assert vrp_switch.interfaces["400GE1/0/1"].description == "first"


def test_vrp_trials_on_many_switches_share_the_timer_thread():
    switches = [make_switch(f"leaf{n}", "huawei_vrp", f"127.11.10.{n}") for n in range(1, 65)]
    threads_before = threading.active_count()
    for switch in switches:
        huawei_vrp.initialise(switch)
        vrp.commit(switch, _describe("trial"), "admin", trial_seconds=1)
    assert threading.active_count() - threads_before <= 1  # was one threading.Timer per trial
    deadline = time.time() + 10
    while any(s.interfaces["400GE1/0/1"].description for s in switches) and time.time() < deadline:
        time.sleep(0.1)
    assert all(s.interfaces["400GE1/0/1"].description == "" for s in switches)
