"""The on-disk spool: order, prepend, the bound with counted drops, crash recovery, and the directory lock."""

from __future__ import annotations

import pytest

from fabric_ops.telemetry.spool import Spool, SpoolError


def lines(start: int, count: int) -> list[bytes]:
    return [f"m seq={i}i {i}".encode() for i in range(start, start + count)]


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (record := spool.peek()) is not None:
        out.extend(record.lines)
        assert spool.commit(record)
    return out


def test_fifo_order_across_segments(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for start in range(0, 1000, 10):
        spool.append(lines(start, 10))
    assert len(list(tmp_path.glob("seg-*.spool"))) > 3  # really rotated
    assert spool.pending_points == 1000
    assert drain(spool) == lines(0, 1000)
    assert spool.pending_points == 0 and not spool
    spool.close()


def test_prepend_goes_before_everything(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(lines(10, 5))
    spool.prepend(lines(0, 10))
    spool.append(lines(15, 5))
    assert drain(spool) == lines(0, 20)


def test_bound_drops_oldest_and_counts_exactly(tmp_path):
    spool = Spool(tmp_path, max_bytes=16384, segment_bytes=2048)
    total = 0
    for start in range(0, 3000, 20):
        spool.append(lines(start, 20))
        total += 20
        assert spool.disk_bytes <= 16384
    kept = drain(spool)
    assert spool.dropped > 0
    assert spool.dropped + len(kept) == total
    # what survives is the newest, contiguous, in order
    assert kept == lines(total - len(kept), len(kept))


def test_reopen_resumes_after_delivered_records(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for start in range(0, 500, 50):
        spool.append(lines(start, 50))
    for _ in range(3):
        spool.commit(spool.peek())
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    assert again.pending_points == 350
    assert drain(again) == lines(150, 350)
    again.close()
    assert list(tmp_path.glob("seg-*.spool")) == []


def test_torn_tail_is_cut_off_at_start(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(lines(0, 10))
    spool.append(lines(10, 10))
    spool.close()
    (segment,) = tmp_path.glob("seg-*.spool")
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # a crash in the middle of the second record
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert drain(again) == lines(0, 10)


def test_one_process_per_directory(tmp_path):
    first = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path, max_bytes=1 << 20)
    first.close()
    Spool(tmp_path, max_bytes=1 << 20).close()


def test_record_dropped_while_in_flight_is_not_counted_twice(tmp_path):
    spool = Spool(tmp_path, max_bytes=8192, segment_bytes=2048)
    spool.append(lines(0, 20))
    record = spool.peek()
    for start in range(20, 600, 20):  # fills the bound: the head segment (being sent) is dropped
        spool.append(lines(start, 20))
    dropped_before = spool.dropped
    assert dropped_before >= 20
    assert not spool.commit(record)  # it was delivered after all
    assert spool.dropped == dropped_before - 20


def test_prepend_into_a_full_spool_drops_the_prepended_batch(tmp_path):
    spool = Spool(tmp_path, max_bytes=8192, segment_bytes=2048)
    while spool.disk_bytes < 8192 - 300:
        spool.append(lines(1000, 5))
    pending = spool.pending_points
    assert spool.prepend(lines(0, 50)) == 50  # the oldest batch is the one that goes
    assert spool.pending_points == pending and spool.dropped == 50


def test_corruption_at_runtime_skips_the_segment_and_counts_it(tmp_path):
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    for start in range(0, 200, 10):
        spool.append(lines(start, 10))
    first = sorted(tmp_path.glob("seg-*.spool"))[0]
    data = bytearray(first.read_bytes())
    data[20] ^= 0xFF  # flip a payload byte of the first record
    first.write_bytes(bytes(data))
    out = drain(spool)
    assert spool.dropped > 0
    assert len(out) + spool.dropped == 200
    assert out == lines(200 - len(out), len(out))
