import threading
import time

import pytest

from fabric_ops.devices.locks import DeviceBusy, device_lock, holder


def test_second_holder_is_refused_with_the_owner_named():
    with device_lock("lock-test-leaf1", "push job 1", ttl_seconds=30):
        assert holder("lock-test-leaf1") == "push job 1"
        refused = pytest.raises(DeviceBusy, match=r"lock-test-leaf1: locked by push job 1")
        with refused, device_lock("lock-test-leaf1", "remediation 9"):
            pass
    assert holder("lock-test-leaf1") is None


def test_waiter_gets_the_lock_when_it_is_released():
    order = []
    holding = threading.Event()

    def first():
        with device_lock("lock-test-leaf2", "job A", ttl_seconds=30):
            order.append("A in")
            holding.set()
            time.sleep(0.4)
            order.append("A out")

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    with device_lock("lock-test-leaf2", "job B", wait_seconds=5):
        order.append("B in")
    thread.join()
    assert order == ["A in", "A out", "B in"]


def test_expired_lock_is_not_released_by_its_former_owner():
    slow = device_lock("lock-test-leaf3", "slow job", ttl_seconds=1)
    slow.__enter__()
    time.sleep(1.2)  # the lock expired under the slow job
    with device_lock("lock-test-leaf3", "next job", ttl_seconds=30):
        slow.__exit__(None, None, None)  # the slow job finishes late
        assert holder("lock-test-leaf3") == "next job"
    assert holder("lock-test-leaf3") is None
