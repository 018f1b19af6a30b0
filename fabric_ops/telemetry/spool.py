"""A bounded on-disk FIFO of line-protocol batches: what the writer keeps while InfluxDB cannot take it.

Layout: ``<dir>/seg-<20-digit id>.spool`` append-only segment files, read in id order, plus ``cursor`` (how far
the oldest segment has been delivered) and ``lock`` (one writer process per spool directory). A segment is a
sequence of records, each one batch::

    >III  payload length, number of points, CRC-32 of the payload
    payload: the batch's line-protocol lines joined by "\\n"

Why records with a length and a CRC instead of plain text lines: a string field may legally contain a newline,
and a crash in the middle of an append must be detectable; at start-up each segment is scanned and cut back to
its last complete, CRC-valid record.

Order: records come out in the order they went in. :meth:`Spool.prepend` puts a batch *before* everything
else (as a new segment with a lower id); the writer uses it for the batch it was sending when InfluxDB failed,
which is older than anything spilled to the spool while that request was in flight.

Bound: ``max_bytes`` over all segments. When an append would exceed it, whole segments are dropped from the
*oldest* end and their points are counted in :attr:`Spool.dropped` (see docs/telemetry-storage.md for why the
oldest). Segments are at most ``segment_bytes`` (default max_bytes/16), so a drop loses at most 1/16 of the bound.

Durability (fsync policy): each record is written with one ``write()`` on an unbuffered file, so a crash of the
process loses nothing that was appended (the kernel has it). Against a crash of the host, the open segment is
fsynced at most every ``fsync_interval`` seconds when records are appended, a segment is fsynced when it is
closed for rotation, and everything is fsynced on :meth:`close`; so a power loss costs at most the last
``fsync_interval`` seconds of spooled data. The cursor is rewritten atomically (rename) after each delivered
record but not fsynced: after a host crash a record may be delivered twice, which InfluxDB absorbs (a point
with the same series and timestamp overwrites itself).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from fabric_ops.errors import ConfigurationError, FabricOpsError

logger = logging.getLogger(__name__)

__all__ = ["Record", "Spool", "SpoolError"]

HEADER = struct.Struct(">III")
FIRST_ID = 10**15  # room below for prepends
PREFIX, SUFFIX = "seg-", ".spool"


class SpoolError(FabricOpsError):
    """The spool directory cannot be used (locked by another process, unreadable); the message names it."""


@dataclass(frozen=True, slots=True)
class Record:
    """One batch read from the spool; hand it back to :meth:`Spool.commit` once delivered."""

    segment_id: int
    offset: int
    next_offset: int
    count: int
    payload: bytes

    @property
    def lines(self) -> list[bytes]:
        return self.payload.split(b"\n") if self.payload else []


class _Segment:
    __slots__ = ("id", "path", "points", "read_offset", "read_points", "size")

    def __init__(self, seg_id: int, path: Path, size: int = 0, points: int = 0):
        self.id = seg_id
        self.path = path
        self.size = size
        self.points = points
        self.read_offset = 0
        self.read_points = 0

    @property
    def pending_bytes(self) -> int:
        return self.size - self.read_offset

    @property
    def pending_points(self) -> int:
        return self.points - self.read_points


class Spool:
    """Bounded, ordered, crash-tolerant batch queue on disk. Thread-safe; one instance per directory."""

    def __init__(
        self,
        directory: Path | str,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync_interval: float = 1.0,
    ):
        if max_bytes < 4096:
            raise ConfigurationError(f"spool {directory}: max_bytes {max_bytes} is below the 4096-byte minimum")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(4096, min(64 * 2**20, max_bytes // 16))
        self.fsync_interval = fsync_interval
        self.dropped = 0
        self._lock = threading.RLock()
        self._segments: deque[_Segment] = deque()
        self._tail_fd: int | None = None
        self._last_fsync = time.monotonic()
        self._dirty = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"spool directory {self.directory}: {exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            raise SpoolError(
                f"spool directory {self.directory} is in use by another process; give each writer its own"
            ) from exc
        self._recover()

    # -- start-up ---------------------------------------------------------------------------------------------
    def _recover(self) -> None:
        cursor = self._read_cursor()
        for path in sorted(self.directory.glob(f"{PREFIX}*{SUFFIX}")):
            try:
                seg_id = int(path.name[len(PREFIX) : -len(SUFFIX)])
            except ValueError:
                logger.warning("spool %s: ignoring unexpected file %s", self.directory, path.name)
                continue
            if cursor and seg_id < cursor[0]:
                path.unlink()  # fully delivered before the last stop
                continue
            segment = self._scan(seg_id, path)
            if cursor and seg_id == cursor[0] and cursor[1] <= segment.size:
                segment.read_offset, segment.read_points = cursor[1], min(cursor[2], segment.points)
            if segment.pending_bytes == 0:
                path.unlink()
                continue
            self._segments.append(segment)
        if self._segments:
            logger.info(
                "spool %s: %d points (%d bytes) waiting from the last run",
                self.directory,
                self.pending_points,
                self.pending_bytes,
            )
        self._write_cursor()

    def _scan(self, seg_id: int, path: Path) -> _Segment:
        """Count a segment's records, cutting off a torn or corrupt tail left by a crash."""
        segment = _Segment(seg_id, path)
        valid = 0
        with open(path, "rb") as fh:
            data = fh.read()
        while valid + HEADER.size <= len(data):
            length, count, crc = HEADER.unpack_from(data, valid)
            end = valid + HEADER.size + length
            if end > len(data) or zlib.crc32(data[valid + HEADER.size : end]) != crc:
                break
            segment.points += count
            valid = end
        if valid != len(data):
            logger.warning("spool %s: cutting %d bytes of torn record off %s", self.directory, len(data) - valid, path)
            with open(path, "r+b") as fh:
                fh.truncate(valid)
        segment.size = valid
        return segment

    def _read_cursor(self) -> tuple[int, int, int] | None:
        try:
            data = json.loads((self.directory / "cursor").read_text())
            return int(data["segment"]), int(data["offset"]), int(data["points"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cursor(self) -> None:
        head = self._segments[0] if self._segments else None
        data = {"segment": head.id, "offset": head.read_offset, "points": head.read_points} if head else {}
        tmp = self.directory / "cursor.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.directory / "cursor")

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def pending_points(self) -> int:
        with self._lock:
            return sum(s.pending_points for s in self._segments)

    @property
    def pending_bytes(self) -> int:
        with self._lock:
            return sum(s.pending_bytes for s in self._segments)

    @property
    def disk_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def count_dropped(self, points: int) -> None:
        """Record points lost on the way into the spool (e.g. the disk refused the write)."""
        with self._lock:
            self.dropped += points

    def __bool__(self) -> bool:
        with self._lock:
            return any(s.pending_bytes for s in self._segments)

    # -- writing ----------------------------------------------------------------------------------------------
    def _new_segment(self, seg_id: int) -> _Segment:
        return _Segment(seg_id, self.directory / f"{PREFIX}{seg_id:020d}{SUFFIX}")

    def _close_tail(self) -> None:
        if self._tail_fd is not None:
            if self._dirty:
                os.fsync(self._tail_fd)
                self._dirty = False
            os.close(self._tail_fd)
            self._tail_fd = None

    def _tail_for(self, size: int) -> _Segment:
        tail = self._segments[-1] if self._segments else None
        if tail is None or self._tail_fd is None or (tail.size and tail.size + size > self.segment_bytes):
            self._close_tail()
            tail = self._new_segment(tail.id + 1 if tail else FIRST_ID)
            self._tail_fd = os.open(tail.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._segments.append(tail)
        return tail

    @staticmethod
    def _encode(lines: list[bytes]) -> bytes:
        payload = b"\n".join(lines)
        return HEADER.pack(len(payload), len(lines), zlib.crc32(payload)) + payload

    def _make_room(self, size: int) -> None:
        """Drop the oldest segments until ``size`` more bytes fit under max_bytes."""
        while self._segments and self.disk_bytes + size > self.max_bytes:
            head = self._segments[0]
            if head is self._segments[-1]:
                self._close_tail()
            lost = head.pending_points
            self._segments.popleft()
            head.path.unlink(missing_ok=True)
            self.dropped += lost
            logger.warning(
                "spool %s full (%d bytes): dropped %d oldest points (segment %d)",
                self.directory,
                self.max_bytes,
                lost,
                head.id,
            )
        self._write_cursor()

    def append(self, lines: list[bytes]) -> int:
        """Add one batch at the end; returns how many points were dropped (oldest first) to make room.

        Raises OSError when the disk refuses the write (the caller counts those points as dropped).
        """
        if not lines:
            return 0
        record = self._encode(lines)
        with self._lock:
            before = self.dropped
            if len(record) > self.max_bytes:
                self.dropped += len(lines)
                logger.warning(
                    "spool %s: a %d-byte batch exceeds the whole bound; dropped", self.directory, len(record)
                )
                return len(lines)
            self._make_room(len(record))
            tail = self._tail_for(len(record))
            try:
                written = os.write(self._tail_fd, record)
                if written != len(record):
                    raise OSError(f"short write ({written} of {len(record)} bytes)")
            except OSError:
                os.ftruncate(self._tail_fd, tail.size)
                raise
            tail.size += len(record)
            tail.points += len(lines)
            self._dirty = True
            if time.monotonic() - self._last_fsync >= self.fsync_interval:
                os.fsync(self._tail_fd)
                self._dirty = False
                self._last_fsync = time.monotonic()
            return self.dropped - before

    def prepend(self, lines: list[bytes]) -> int:
        """Put one batch before everything already spooled (it is older); returns points dropped for room."""
        if not lines:
            return 0
        with self._lock:
            if not self._segments:
                return self.append(lines)
            record = self._encode(lines)
            if self.disk_bytes + len(record) > self.max_bytes:
                # This batch is older than everything spooled: under the drop-oldest rule it is what goes.
                self.dropped += len(lines)
                logger.warning("spool %s full: dropped the %d oldest points", self.directory, len(lines))
                return len(lines)
            segment = self._new_segment(self._segments[0].id - 1)
            fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, record)
                os.fsync(fd)
            finally:
                os.close(fd)
            segment.size, segment.points = len(record), len(lines)
            self._segments.appendleft(segment)
            self._write_cursor()
            return 0

    # -- reading ----------------------------------------------------------------------------------------------
    def peek(self) -> Record | None:
        """The oldest undelivered batch, or None. It stays in the spool until :meth:`commit`."""
        with self._lock:
            while self._segments:
                head = self._segments[0]
                if head.pending_bytes > 0:
                    break
                if head is self._segments[-1]:
                    return None  # the open tail, fully read: keep it for the next append
                self._segments.popleft()
                head.path.unlink(missing_ok=True)
            else:
                return None
            with open(head.path, "rb") as fh:
                fh.seek(head.read_offset)
                header = fh.read(HEADER.size)
                length, count, crc = HEADER.unpack(header) if len(header) == HEADER.size else (0, 0, -1)
                payload = fh.read(length)
            if len(payload) == length and zlib.crc32(payload) == crc:
                return Record(head.id, head.read_offset, head.read_offset + HEADER.size + length, count, payload)
            # Changed under our feet (disk error, someone editing it): skip the rest of this segment, counted,
            # rather than retrying the same bad bytes forever.
            lost = head.pending_points
            logger.error(
                "spool segment %s is corrupt at offset %d: dropping its %d remaining points",
                head.path,
                head.read_offset,
                lost,
            )
            self.dropped += lost
            if head is self._segments[-1]:
                self._close_tail()
            self._segments.popleft()
            head.path.unlink(missing_ok=True)
            self._write_cursor()
            return self.peek()

    def commit(self, record: Record) -> bool:
        """Mark a peeked batch delivered. False if it had been dropped for room meanwhile (then it is un-dropped
        from the count, since it did reach InfluxDB)."""
        with self._lock:
            for segment in self._segments:
                if segment.id == record.segment_id:
                    if segment.read_offset != record.offset:
                        return False
                    segment.read_offset = record.next_offset
                    segment.read_points += record.count
                    if segment.pending_bytes == 0 and segment is not self._segments[-1]:
                        self._segments.remove(segment)
                        segment.path.unlink(missing_ok=True)
                    self._write_cursor()
                    return True
            self.dropped -= record.count
            return False

    def replace(self, record: Record, remaining: list[bytes]) -> None:
        """Commit ``record`` and put ``remaining`` (its undelivered part) in its place at the front."""
        with self._lock:
            self.commit(record)
            self.prepend(remaining)

    # -- shutdown ---------------------------------------------------------------------------------------------
    def sync(self) -> None:
        with self._lock:
            if self._tail_fd is not None and self._dirty:
                os.fsync(self._tail_fd)
                self._dirty = False
                self._last_fsync = time.monotonic()

    def close(self) -> None:
        """fsync and release the directory lock; a fully delivered spool leaves no segment behind."""
        with self._lock:
            self._close_tail()
            for segment in list(self._segments):
                if segment.pending_bytes == 0:
                    self._segments.remove(segment)
                    segment.path.unlink(missing_ok=True)
            self._write_cursor()
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None
