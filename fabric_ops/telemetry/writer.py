"""The storage writer: telemetry events -> line protocol -> influxdb-client -> InfluxDB, losing nothing silently.

Why our own batching thread around influxdb-client's SYNCHRONOUS WriteApi instead of its batching mode: the
batching mode retries in memory on an RxPY scheduler and, when it gives up, hands the batch to an error callback
from another thread; retried batches can then overtake newer ones, its buffer is unbounded in bytes, and a
close() during an outage loses what it still holds. With one sender thread that calls ``write()`` synchronously,
every outcome is known where it happens: success, a retryable failure (connection refused, timeout, 5xx, 429,
401/403/404 = not ready or misconfigured), or bad data (400/422/413). That makes the order and the counts exact:

* ``write()``/``write_many()`` encode on the caller's thread and append to a bounded in-memory queue;
* the sender takes up to ``batch_size`` lines when the queue holds a full batch or its oldest line has waited
  ``flush_interval`` seconds, and POSTs them (influxdb-client ``WriteApi.write`` to ``/api/v2/write``);
* on a retryable failure the batch goes to the on-disk :class:`~fabric_ops.telemetry.spool.Spool` (in front of
  anything spilled meanwhile), and the sender backs off exponentially (capped, with jitter); while the spool is
  not empty, new points queue *behind* it so that replay is strictly in order, and the queue is moved into the
  spool at each flush tick (and whenever it is full), so memory stays bounded and a crash loses little;
* when InfluxDB answers again the spool is replayed oldest first, then the queue resumes;
* bad data is isolated by bisecting the batch (InfluxDB 1.x writes the good lines of a 400 "partial write"
  anyway and a point with the same series and timestamp overwrites itself, so resending the good halves is
  harmless); each line that is refused alone is logged, counted in ``rejected`` and skipped; the bisection
  has a budget per batch (:data:`BISECTION_BUDGET`), beyond which refused chunks are skipped whole, counted;
* beyond the spool bound the oldest points are dropped and counted in ``dropped``;
* ``close()`` (also on SIGTERM, :func:`close_on_sigterm`) delivers what it can within its timeout and spools
  the rest, so the next start replays it.

Delivery is at-least-once (a write that timed out may have been applied and is sent again); InfluxDB makes that
exactly-once in effect because a point is identified by measurement, tag set and timestamp.
"""

from __future__ import annotations

import enum
import logging
import random
import signal
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from fabric_ops.errors import ConfigurationError
from fabric_ops.telemetry.points import PointError, TelemetryEvent, encode_event
from fabric_ops.telemetry.spool import Spool

logger = logging.getLogger(__name__)

__all__ = ["InfluxWriter", "close_on_sigterm", "redact_url", "spool_bytes_for"]

# Line protocol bytes per point we plan the spool for: a FabricOps interface point with its seven tags and a
# handful of fields is 200-260 bytes; 256 keeps the estimate on the safe side.
PLANNING_BYTES_PER_POINT = 256


def spool_bytes_for(
    points_per_s: float, outage_s: float = 600.0, bytes_per_point: int = PLANNING_BYTES_PER_POINT
) -> int:
    """Spool size that holds ``outage_s`` seconds of writes at ``points_per_s`` (the 10-minute promise)."""
    return int(points_per_s * outage_s * bytes_per_point)


def redact_url(url: str) -> str:
    """URL without user:password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password or parts.username:
        netloc = f"***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


class _Outcome(enum.Enum):
    OK = "ok"
    RETRY = "retry"  # InfluxDB unavailable or not ready: keep the data, try later
    BAD = "bad"  # InfluxDB refused the data itself: bisect, then skip what it refuses alone


# Extra requests one batch may spend isolating refused lines by bisection: one bad line in 5000 costs ~26, so a
# few bad lines are isolated exactly; a batch that is bad throughout (say, a field whose type changed) is
# rejected in large chunks instead of costing two requests per line and stalling the writer.
BISECTION_BUDGET = 128

# Statuses that mean "this data is wrong" (never succeeds by retrying). 413 also bisects: smaller halves fit.
BAD_DATA_STATUSES = frozenset({400, 413, 422})


class InfluxWriter:
    """Batched, spooling writer for one process. Thread-safe ``write()``; one sender thread.

    Example::

        writer = InfluxWriter.from_settings(spool_dir=settings.VAR_DIR / "spool" / "collector-0")
        writer.start()
        writer.write(TelemetryEvent("interface", time.time_ns(), {"device": "leaf1"}, {"in_bps": 1.0}))
        writer.close()
    """

    def __init__(
        self,
        *,
        url: str,
        bucket: str,
        spool_dir: Path | str,
        org: str = "fabric_ops",
        token: str = "",
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        queue_max_points: int = 100_000,
        spool_max_bytes: int = 1 << 30,
        spool_segment_bytes: int | None = None,
        spool_fsync_interval: float = 1.0,
        timeout: float = 10.0,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
        gzip: bool = False,
    ):
        if batch_size < 1 or queue_max_points < batch_size:
            raise ConfigurationError(
                f"InfluxDB writer: batch_size ({batch_size}) must be >= 1 and <= queue_max_points ({queue_max_points})"
            )
        if not bucket:
            raise ConfigurationError("InfluxDB writer: FABRIC_OPS_INFLUX_BUCKET is empty (expected database/rp)")
        self.url = url
        self.bucket = bucket
        self.org = org
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue_max_points = queue_max_points
        self.timeout = timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._client = InfluxDBClient(
            url=url, token=token or None, org=org, timeout=int(timeout * 1000), enable_gzip=gzip
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self.spool = Spool(spool_dir, spool_max_bytes, spool_segment_bytes, spool_fsync_interval)

        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque()
        # (lines, monotonic arrival time) per enqueue call, oldest first: how long the oldest queued line has
        # waited, so that a partial batch leaves within flush_interval (freshness), exactly.
        self._arrivals: deque[list] = deque()
        self._inflight = 0
        self._flush_requested = 0
        self._closing = False
        self._backoff_until = 0.0
        self._failures = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stats: dict[str, Any] = {
            "written": 0,  # delivered directly
            "replayed": 0,  # delivered from the spool
            "spooled": 0,  # ever put into the spool
            "rejected": 0,  # refused by InfluxDB as bad data (4xx), logged and skipped
            "invalid": 0,  # could not be encoded at all (PointError)
            "requests": 0,
            "retryable_failures": 0,
            "last_error": "",
            "last_error_at": None,  # epoch seconds
            "last_success": None,  # epoch seconds
        }

    # -- configuration ----------------------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, **overrides: Any) -> InfluxWriter:
        """A writer configured from the FABRIC_OPS_INFLUX_* settings; keyword arguments override them."""
        from django.conf import settings

        kwargs: dict[str, Any] = {
            "url": settings.FABRIC_OPS_INFLUX_URL,
            "token": settings.FABRIC_OPS_INFLUX_TOKEN,
            "org": settings.FABRIC_OPS_INFLUX_ORG,
            "bucket": settings.FABRIC_OPS_INFLUX_BUCKET,
            "batch_size": settings.FABRIC_OPS_INFLUX_BATCH_SIZE,
            "flush_interval": settings.FABRIC_OPS_INFLUX_FLUSH_INTERVAL_S,
            "queue_max_points": settings.FABRIC_OPS_INFLUX_QUEUE_MAX_POINTS,
            "spool_dir": settings.FABRIC_OPS_INFLUX_SPOOL_DIR,
            "spool_max_bytes": settings.FABRIC_OPS_INFLUX_SPOOL_MAX_BYTES,
            "spool_fsync_interval": settings.FABRIC_OPS_INFLUX_SPOOL_FSYNC_S,
            "timeout": settings.FABRIC_OPS_INFLUX_TIMEOUT_S,
            "gzip": settings.FABRIC_OPS_INFLUX_GZIP,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def describe(self) -> dict[str, Any]:
        """Configuration for logs and /api/health, with the token and URL credentials redacted."""
        return {
            "url": redact_url(self.url),
            "token": "***" if self._client.token else "",
            "org": self.org,
            "bucket": self.bucket,
            "batch_size": self.batch_size,
            "flush_interval_s": self.flush_interval,
            "queue_max_points": self.queue_max_points,
            "spool_dir": str(self.spool.directory),
            "spool_max_bytes": self.spool.max_bytes,
        }

    def __repr__(self) -> str:
        return f"InfluxWriter({redact_url(self.url)}, bucket={self.bucket!r})"

    # -- producer side ----------------------------------------------------------------------------------------
    def start(self) -> InfluxWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
            self._thread.start()
            logger.info("InfluxDB writer started: %s", self.describe())
        return self

    def write(self, event: TelemetryEvent) -> None:
        """Queue one event; raises PointError (and counts it in ``invalid``) if it cannot be stored at all."""
        try:
            line = encode_event(event).encode()
        except PointError:
            with self._cond:
                self._stats["invalid"] += 1
            raise
        self._enqueue((line,))

    def write_many(self, events: Iterable[TelemetryEvent]) -> int:
        """Queue events, skipping (and counting) unstorable ones; returns how many were skipped."""
        lines = []
        skipped = 0
        for event in events:
            try:
                lines.append(encode_event(event).encode())
            except PointError as exc:
                skipped += 1
                logger.warning("skipping unstorable event: %s", exc)
        if skipped:
            with self._cond:
                self._stats["invalid"] += skipped
        self._enqueue(lines)
        return skipped

    def write_lines(self, lines: Iterable[str | bytes]) -> None:
        """Queue pre-encoded line-protocol lines (one point each, no trailing newline)."""
        self._enqueue([line.encode() if isinstance(line, str) else line for line in lines])

    def _enqueue(self, lines: Iterable[bytes]) -> None:
        if self._closed:
            raise ConfigurationError(f"{self!r} is closed")
        with self._cond:
            before = len(self._queue)
            self._queue.extend(lines)
            if len(self._queue) > before:
                self._arrivals.append([len(self._queue) - before, time.monotonic()])
            if len(self._queue) >= self.queue_max_points:
                # A burst faster than InfluxDB takes it: spill to disk rather than grow without bound.
                self._spill_locked("queue full")
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()

    def _spill_locked(self, why: str) -> None:
        """Move the whole queue, oldest first, to the end of the spool. Caller holds ``_cond``."""
        if not self._queue:
            return
        moved = len(self._queue)
        while self._queue:
            self._to_spool(self._take_locked(self.batch_size), front=False)
        logger.debug("moved %d queued points to the spool (%s)", moved, why)

    def _take_locked(self, limit: int) -> list[bytes]:
        """Pop up to ``limit`` lines from the queue, oldest first, keeping the arrival times in step."""
        count = min(limit, len(self._queue))
        batch = [self._queue.popleft() for _ in range(count)]
        while count and self._arrivals:
            head = self._arrivals[0]
            if head[0] <= count:
                count -= head[0]
                self._arrivals.popleft()
            else:
                head[0] -= count
                count = 0
        return batch

    @property
    def _oldest_at(self) -> float:
        return self._arrivals[0][1] if self._arrivals else time.monotonic()

    def _to_spool(self, lines: list[bytes], front: bool) -> None:
        try:
            if front:
                self.spool.prepend(lines)
            else:
                self.spool.append(lines)
            self._stats["spooled"] += len(lines)
        except OSError as exc:
            self.spool.count_dropped(len(lines))
            message = f"spool {self.spool.directory} write failed, {len(lines)} points dropped: {exc}"
            logger.error("%s", message)
            self._note_error(message)

    # -- sender -----------------------------------------------------------------------------------------------
    def _note_error(self, message: str) -> None:
        self._stats["last_error"] = message
        self._stats["last_error_at"] = time.time()

    def _post(self, lines: list[bytes]) -> tuple[_Outcome, str]:
        try:
            self._write_api.write(
                bucket=self.bucket, org=self.org, record=b"\n".join(lines), write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            body = (exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or ""))[:300]
            message = f"InfluxDB {redact_url(self.url)} answered {exc.status}: {body.strip() or exc.reason}"
            return (_Outcome.BAD if exc.status in BAD_DATA_STATUSES else _Outcome.RETRY), message
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return _Outcome.RETRY, f"InfluxDB {redact_url(self.url)} unreachable: {type(exc).__name__}: {exc}"
        except Exception as exc:  # anything else from the client: keep the data (spool) rather than lose it
            logger.exception("InfluxDB write to %s failed unexpectedly", redact_url(self.url))
            return _Outcome.RETRY, f"InfluxDB {redact_url(self.url)} write failed: {type(exc).__name__}: {exc}"
        return _Outcome.OK, ""

    def _deliver(self, lines: list[bytes]) -> tuple[int, list[bytes]]:
        """Send ``lines`` in order. Returns (points delivered, undelivered suffix if InfluxDB became unavailable)."""
        delivered = 0
        budget = BISECTION_BUDGET
        pending: deque[list[bytes]] = deque([lines])
        while pending:
            chunk = pending.popleft()
            outcome, message = self._post(chunk)
            with self._cond:
                self._stats["requests"] += 1
            if outcome is _Outcome.OK:
                delivered += len(chunk)
                with self._cond:
                    self._stats["last_success"] = time.time()
                    self._failures = 0
                continue
            if outcome is _Outcome.BAD:
                if len(chunk) > 1 and budget > 0:
                    budget -= 2
                    mid = len(chunk) // 2
                    pending.appendleft(chunk[mid:])
                    pending.appendleft(chunk[:mid])
                    continue
                if len(chunk) > 1:
                    logger.warning(
                        "InfluxDB refused %d points, skipped without isolating the bad ones (bisection budget "
                        "spent): %s; first line: %.300r",
                        len(chunk),
                        message,
                        chunk[0],
                    )
                else:
                    logger.warning("InfluxDB refused a point, skipped: %s; line: %.300r", message, chunk[0])
                with self._cond:
                    self._stats["rejected"] += len(chunk)
                    self._note_error(message)
                continue
            rest = [line for part in (chunk, *pending) for line in part]
            with self._cond:
                self._stats["retryable_failures"] += 1
                self._failures += 1
                delay = min(self.retry_max, self.retry_initial * 2 ** (self._failures - 1))
                self._backoff_until = time.monotonic() + delay * random.uniform(0.8, 1.2)
                if self._failures == 1 or self._failures % 20 == 0:
                    logger.warning("%s; spooling, retry in %.1f s (failure %d)", message, delay, self._failures)
                self._note_error(message)
            return delivered, rest
        return delivered, []

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closing and not self._inflight:
                    return
                action = self._next_action_locked()
                if action is None:
                    self._cond.wait(self._wait_time_locked())
                    continue
            try:
                action()
            except Exception as exc:  # the sender must not die: record, back off, go on
                logger.exception("InfluxDB writer step failed")
                with self._cond:
                    self._note_error(f"writer step failed: {exc}")
                    self._backoff_until = time.monotonic() + self.retry_max
            finally:
                with self._cond:
                    self._cond.notify_all()

    def _queue_due_locked(self, now: float) -> bool:
        return bool(self._queue) and (
            len(self._queue) >= self.batch_size
            or now - self._oldest_at >= self.flush_interval
            or self._flush_requested > 0
            or self._closing
        )

    def _next_action_locked(self) -> Callable[[], None] | None:
        now = time.monotonic()
        if self._closing:
            return None
        if now < self._backoff_until:
            # InfluxDB is down: park what is queued on disk at each flush tick so memory stays small.
            if self._queue_due_locked(now):
                self._spill_locked("InfluxDB unavailable")
                self._cond.notify_all()
            return None
        if self.spool:
            return self._replay_one
        if self._queue_due_locked(now):
            return self._send_queue_batch
        return None

    def _wait_time_locked(self) -> float:
        now = time.monotonic()
        waits = [0.5]
        if self._backoff_until > now:
            waits.append(self._backoff_until - now)
        if self._queue:
            waits.append(max(0.0, self._oldest_at + self.flush_interval - now))
        return max(0.005, min(waits))

    def _send_queue_batch(self) -> None:
        with self._cond:
            batch = self._take_locked(self.batch_size)
            self._inflight += 1
        try:
            delivered, rest = self._deliver(batch)
            with self._cond:
                self._stats["written"] += delivered
                if rest:
                    # Older than anything spilled while this request was in flight: goes to the front.
                    self._to_spool(rest, front=True)
        finally:
            with self._cond:
                self._inflight -= 1

    def _replay_one(self) -> None:
        record = self.spool.peek()
        if record is None:
            return
        with self._cond:
            self._inflight += 1
        try:
            delivered, rest = self._deliver(record.lines)
            with self._cond:
                self._stats["replayed"] += delivered
                if not rest:
                    self.spool.commit(record)
                elif len(rest) < record.count:
                    self.spool.replace(record, rest)
        finally:
            with self._cond:
                self._inflight -= 1

    # -- control ----------------------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> bool:
        """Send what is queued now; wait until it is in InfluxDB or (if InfluxDB is down) in the spool.

        Returns True when nothing is left anywhere (queue and spool empty), False otherwise.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested += 1
            self._cond.notify_all()
            try:
                while time.monotonic() < deadline:
                    idle = not self._queue and not self._inflight
                    down = time.monotonic() < self._backoff_until
                    if idle and (not self.spool or down):
                        break
                    if self._thread is None or not self._thread.is_alive():
                        break
                    self._cond.wait(min(0.1, max(0.0, deadline - time.monotonic())))
                return not self._queue and not self._inflight and not self.spool
            finally:
                self._flush_requested -= 1

    def close(self, timeout: float = 15.0) -> dict[str, Any]:
        """Flush within ``timeout``, spool what is left (fsynced), stop the sender; returns the final stats."""
        if self._closed:
            return self.stats()
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
            if self._thread.is_alive():
                logger.error(
                    "InfluxDB writer: sender still busy after %.0f s; its in-flight batch may be lost", self.timeout + 5
                )
        with self._cond:
            self._spill_locked("closing")
            self._closed = True
        self.spool.close()
        self._client.close()
        stats = self.stats()
        logger.info("InfluxDB writer closed: %s", stats)
        return stats

    def stats(self) -> dict[str, Any]:
        """Counters in points (see the module docstring); ``spool_points`` is what still waits on disk."""
        with self._cond:
            stats = dict(self._stats)
            stats["queued"] = len(self._queue)
            stats["inflight"] = self._inflight
            stats["state"] = (
                "closed"
                if self._closed
                else ("unavailable" if time.monotonic() < self._backoff_until else "spooling" if self.spool else "ok")
            )
        stats["dropped"] = self.spool.dropped
        stats["spool_points"] = self.spool.pending_points
        stats["spool_bytes"] = self.spool.pending_bytes
        return stats

    def __enter__(self) -> InfluxWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def close_on_sigterm(writer: InfluxWriter, timeout: float = 15.0) -> None:
    """On SIGTERM, close (flush + spool) the writer, then run the previous handler or exit with 143.

    Must be called from the main thread (Python delivers signals there).
    """
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: Any) -> None:
        logger.info("SIGTERM: flushing the InfluxDB writer")
        writer.close(timeout)
        if callable(previous) and previous not in (signal.SIG_DFL, signal.SIG_IGN):
            previous(signum, frame)
        else:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
