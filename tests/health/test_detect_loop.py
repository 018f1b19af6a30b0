"""The detection loop end to end below the collector: handoff entries in Redis -> DetectionLoop -> alarms in the
database. Real Redis (a private key prefix), real database; the entries are what the collector's handoff writes."""

from __future__ import annotations

import json
import time

import pytest

from fabric_ops.health.detect import DetectionLoop
from fabric_ops.health.detectors.base import NS
from fabric_ops.health.models import Alarm
from tests.topology.factories import two_sites

pytestmark = pytest.mark.django_db(transaction=True)


def xadd(client, prefix: str, kind: str, device: str, ts: int, **data) -> None:
    client.xadd(f"{prefix}:events", {"type": kind, "device": device, "ts": str(ts), "data": json.dumps(data)})


def flap(client, prefix: str, device: str, interface: str, start_ns: int, transitions: int) -> None:
    for i in range(transitions):
        xadd(client, prefix, "state", device, start_ns + i * NS, measurement="interface",
             tags={"interface": interface}, field="oper_up", old=i % 2 == 0, new=i % 2 == 1)  # fmt: skip


def leaf_uplink() -> tuple[str, str]:
    """The two-site fabric's dx-a-leaf1 end of its first spine uplink: (device, port)."""
    link = two_sites().links["dx-a-leaf1-dx-a-spine#1"]
    return link.a_interface.device.hostname, link.a_interface.name


def test_a_late_flap_that_ages_out_in_the_same_round_leaves_no_alarm_open(client, prefix):
    """The restore-phase flake of test_closed_loop_lab: a backlog of old transitions (the loop was busy, the
    collector lagged) raises a flap and the same round's scan ages it out. Recording the raise after the clear left
    the alarm open in the database while the engine no longer held it: nothing would ever clear it."""
    device, port = leaf_uplink()
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, start_id="0-0",
                         devices=[device])  # fmt: skip
    flap(client, prefix, device, port, time.time_ns() - 100 * NS, 4)  # 60 s window: long over by now
    loop.run_once(block_ms=10)
    alarms = Alarm.objects.filter(device=device, subject=port)
    assert {a.kind for a in alarms} == {"link-down", "link-flap"}  # it happened: the evidence is kept
    assert [k for k in loop.engine.active if k[2] == port] == []
    assert [a.kind for a in alarms if a.cleared_at is None] == []  # and the database agrees with the engine


def test_a_flap_still_inside_its_window_stays_open_until_the_scan_ages_it_out(client, prefix, settings):
    settings.FABRIC_OPS_HEALTH_THRESHOLDS = {"link": {"flap_window_s": 3, "flap_transitions": 3}}
    device, port = leaf_uplink()
    dispatched: list[int] = []
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: dispatched.append(pk),
                         start_id="0-0", devices=[device], scan_interval=0.2)  # fmt: skip
    flap(client, prefix, device, port, time.time_ns() - 2 * NS, 3)  # the last transition is now
    loop.run_once(block_ms=10)
    open_flap = Alarm.objects.get(kind="link-flap", device=device, subject=port)
    assert open_flap.cleared_at is None and len(dispatched) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Alarm.objects.get(pk=open_flap.pk).cleared_at is None:
        loop.run_once(block_ms=100)  # no new entry arrives: only the time-based re-evaluation can clear it
    assert Alarm.objects.get(pk=open_flap.pk).cleared_at is not None
    assert ("link-flap", device, port) not in loop.engine.active


class _WatchedLoop(DetectionLoop):
    """Records what the database and the dispatcher held when the round's scan began."""

    seen_at_scan: tuple[list[str], list[int]] | None = None
    dispatched: list[int]

    def read_latest(self):
        self.seen_at_scan = (list(Alarm.objects.values_list("kind", flat=True)), list(self.dispatched))
        return super().read_latest()


def test_a_state_change_is_recorded_and_dispatched_before_the_rounds_scan(client, prefix):
    """A scan reads every device's latest values (hundreds of ms on a loaded, large fabric): a link that went down
    in the same round must not wait for it."""
    device, port = leaf_uplink()
    dispatched: list[int] = []
    loop = _WatchedLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: dispatched.append(pk),
                        start_id="0-0", devices=[device], scan_interval=0.0)  # fmt: skip
    loop.dispatched = dispatched
    xadd(client, prefix, "state", device, time.time_ns(), measurement="interface", tags={"interface": port},
         field="oper_up", old=True, new=False)  # fmt: skip
    result = loop.run_once(block_ms=10)
    assert loop.seen_at_scan is not None, "the round did not scan"
    kinds, dispatched_before_scan = loop.seen_at_scan
    assert "link-down" in kinds and len(dispatched_before_scan) == 1
    assert ("link-down", device, port) in {f.key for f in result.raised}


def test_the_lease_admits_one_consumer_and_fences_a_stalled_one(client, prefix):
    from fabric_ops.health.detect import Lease

    a, b = Lease(client, f"{prefix}:health:lease", 5), Lease(client, f"{prefix}:health:lease", 5)
    assert a.acquire() and not b.acquire() and b.holder() == a.token
    client.delete(a.key)  # a stalled past its TTL
    assert b.acquire()
    assert not a.renew()  # a learns it lost the lease ...
    a.release()
    assert b.holder() == b.token  # ... and cannot drop b's
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[])
    assert loop.checkpoint(b) and not loop.checkpoint(a)  # nor overwrite b's checkpoint
    assert loop.stored_state_id() == loop.state_id


def test_consecutive_runs_in_other_processes_continue_from_the_checkpoint(client, prefix, settings):
    from fabric_ops.health import detect

    settings.FABRIC_OPS_HEALTH_DETECT_CHECKPOINT_S = 0.2
    device, port = leaf_uplink()
    dispatched: list[int] = []

    def dispatch(pk, delay):
        dispatched.append(pk)

    first = detect.run_leased(budget_s=0.2, client=client, prefix=prefix, dispatch=dispatch)  # the stream is empty
    assert first["outcome"] == "done" and first["last_id"] == "0-0"
    start = time.time_ns() - 3 * NS
    flap(client, prefix, device, port, start, 2)  # two transitions: a link-down, not a flap yet
    report = detect.run_leased(budget_s=0.5, client=client, prefix=prefix, dispatch=dispatch)
    assert report["outcome"] == "done" and report["stats"]["entries"] == 2
    assert Alarm.objects.filter(kind="link-flap").count() == 0
    detect._PROCESS_LOOP = None  # the next run lands in another worker process: no memory but the checkpoint
    xadd(client, prefix, "state", device, start + 2 * NS, measurement="interface", tags={"interface": port},
         field="oper_up", old=True, new=False)  # fmt: skip
    held = detect.Lease(client, f"{prefix}:health:lease", 5)
    assert held.acquire()
    assert detect.run_leased(budget_s=0.5, client=client, prefix=prefix, dispatch=dispatch)["outcome"] == "busy"
    held.release()
    report = detect.run_leased(budget_s=0.5, client=client, prefix=prefix, dispatch=dispatch)
    assert report["checkpoint"]["restored_from"] and report["stats"]["entries"] == 1  # only the new entry is read
    flap_alarm = Alarm.objects.get(kind="link-flap", device=device, subject=port)
    assert flap_alarm.value == 3.0  # the two transitions before the hand-over were remembered
    # one incident: opened as link-down, upgraded to link-flap (each dispatched: remediation is per incident and
    # idempotent); the replay after the hand-over did not open or dispatch anything again
    assert dispatched == [flap_alarm.incident_id] * 2
    detect._PROCESS_LOOP = None


def test_the_foreground_process_stands_by_while_a_celery_run_holds_the_lease(client, prefix):
    import threading

    from fabric_ops.health import detect

    two_sites()
    celery_run = detect.Lease(client, f"{prefix}:health:lease", 5)
    assert celery_run.acquire()
    stop = threading.Event()
    process = threading.Thread(target=detect.run_process, args=(stop,),
                               kwargs={"client": client, "prefix": prefix, "dispatch": lambda pk, d: None})  # fmt: skip
    process.start()
    try:
        time.sleep(1.5)
        assert celery_run.holder() == celery_run.token  # standing by, not consuming alongside
        celery_run.release()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and celery_run.holder() in (None, celery_run.token):
            time.sleep(0.05)
        assert celery_run.holder() not in (None, celery_run.token)  # the process took over
        assert not celery_run.acquire()
    finally:
        stop.set()
        process.join(10)
    assert not process.is_alive() and celery_run.holder() is None  # it let go when stopped
    detect._PROCESS_LOOP = None


def test_a_slow_consumer_retakes_an_expired_lease_only_if_nobody_moved_on(client, prefix):
    from fabric_ops.health.detect import Lease, retake

    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[])
    lease = Lease(client, f"{prefix}:health:lease", 5)
    assert lease.acquire() and loop.checkpoint(lease)
    client.delete(lease.key)  # one round took longer than the TTL; nobody else came
    assert not lease.renew() and retake(lease, loop) and lease.renew()
    client.delete(lease.key)
    other = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[])
    assert other.checkpoint()  # another consumer ran and checkpointed meanwhile: this memory is stale
    assert not retake(lease, loop) and lease.holder() is None


def test_a_checkpoint_leaves_out_the_histories_the_latest_values_rebuild(client, prefix):
    from fabric_ops.health.detectors.base import Sample

    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[])
    engine = loop.engine
    now = time.time_ns()
    for i in range(30):  # a busy port's utilisation history: rebuilt from the collector's latest values
        engine._history(("interface-util", "leaf1", "Et1"),
                        Sample("interface", {"device": "leaf1"}, {"out_bps": 1e9}, now + i * NS))  # fmt: skip
    engine._history(("pfc", "leaf1", (("interface", "Et1"), ("priority", "3"))),
                    Sample("pfc", {"device": "leaf1"}, {"rx_pause_ps": 5.0}, now))  # fmt: skip
    assert loop.checkpoint()
    other = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[], resume=True)
    assert [k[0] for k in other.engine.series] == ["pfc"]  # the stream-fed one survives, the latest-fed one not
    assert loop.checkpoint_stats["bytes"] < 5000


def test_a_round_whose_database_write_fails_is_read_again(client, prefix, monkeypatch):
    """The round fed the engine and moved past its entries before recording them: without the rewind its link-down
    (and any clear, which is said once) would be lost for good."""
    from django.db import OperationalError

    from fabric_ops.health import detect, incidents

    device, port = leaf_uplink()
    detect._PROCESS_LOOP = None
    first = detect.run_leased(budget_s=0.2, client=client, prefix=prefix, dispatch=lambda pk, delay: None)
    assert first["outcome"] == "done"
    real_record = incidents.record
    calls = []

    def database_gone(*args, **kwargs):
        calls.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(incidents, "record", database_gone)
    flap(client, prefix, device, port, time.time_ns() - NS, 2)  # down, then up: a link-down finding
    with pytest.raises(OperationalError):
        detect.run_leased(budget_s=1.0, client=client, prefix=prefix, dispatch=lambda pk, delay: None)
    assert calls and detect._PROCESS_LOOP is None  # this memory is not trusted any more
    monkeypatch.setattr(incidents, "record", real_record)
    report = detect.run_leased(budget_s=0.5, client=client, prefix=prefix, dispatch=lambda pk, delay: None)
    assert report["outcome"] == "done" and report["stats"]["entries"] == 2  # both entries read again
    assert Alarm.objects.filter(kind="link-down", device=device, subject=port).count() == 1
    detect._PROCESS_LOOP = None


def test_a_first_round_that_fails_is_read_again_from_where_the_consumer_started(client, prefix, monkeypatch):
    from django.db import OperationalError

    from fabric_ops.health import incidents

    device, port = leaf_uplink()
    client.xadd(f"{prefix}:events", {"type": "noise", "device": device, "ts": "0", "data": "{}"})
    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[device])
    flap(client, prefix, device, port, time.time_ns() - NS, 2)
    monkeypatch.setattr(incidents, "record", lambda *a, **k: (_ for _ in ()).throw(OperationalError("gone")))
    with pytest.raises(OperationalError):
        loop.run_once(block_ms=10)
    monkeypatch.undo()
    again = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, devices=[device])
    again.run_once(block_ms=10)
    assert again.stats["entries"] == 2
    assert Alarm.objects.filter(kind="link-down", device=device, subject=port).exists()


def test_a_checkpoint_not_signed_with_this_secret_key_is_never_unpickled(client, prefix, tmp_path, settings):
    import os
    import pickle

    from fabric_ops.health import detect

    marker = tmp_path / "owned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    loop = DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, start_id="0-0")
    client.set(loop.state_key, b"\0" * 32 + pickle.dumps(Exploit()))  # what someone with Redis access could write
    assert loop.restore() is False and not marker.exists()
    assert loop.checkpoint()  # a checkpoint of our own round-trips...
    assert DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None, resume=True).state_id
    settings.SECRET_KEY = "another-deployment-" + "x" * 40  # ...but not into a deployment with another key
    assert DetectionLoop(client=client, prefix=prefix, dispatch=lambda pk, delay: None).restore() is False
    with pytest.raises(ValueError, match="signature"):
        detect.verified_checkpoint(client.get(loop.state_key))
