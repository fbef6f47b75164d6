"""Prediction logs and feedback, written to object storage in the monitoring log format.

The request path encodes its records to JSON lines at once (orjson, microseconds) and
appends the bytes to a bounded in-memory buffer; one background thread joins, gzips and
writes them as batches. That thread does no Python-level work per record on purpose: a
CPU-bound second thread makes the event loop wait for the GIL after every I/O call (the
convoy effect), which showed as 150 ms p99 latencies; zlib and socket I/O release the GIL.
Batches are written
when `flush_records` have gathered or the oldest is `flush_seconds` old. A failed write
keeps its batch and retries with backoff, under the key it got before its first attempt.
When storage stays down and the buffer is full (in records or in bytes), new records are
refused and counted as dropped: the server keeps answering, its memory bounded. `close()`
writes everything still buffered within the shutdown budget; what storage did not take by
then is counted as dropped, never lost uncounted.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import orjson

from ..domain.monitoring.logformat import (
    feedback_batch_key,
    format_time,
    new_batch_id,
    prediction_batch_key,
)

log = logging.getLogger(__name__)


class DirectorySink:
    """A local directory laid out like the bucket (tests, laptops without S3)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
        return str(path)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class StorageBreaker:
    """Whether object storage looks reachable, from the outcomes of recent writes.

    After a failed write the breaker is open for `cooldown` seconds: callers that would
    block on storage (feedback) answer at once instead of each waiting for a timeout. When
    the cooldown has passed, one caller at a time may try (`try_acquire`); its outcome
    closes or reopens the breaker."""

    def __init__(self, cooldown: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._probing = False

    def retry_after(self) -> float | None:
        """Seconds until storage is tried again, or None when it may be used now."""
        with self._lock:
            if self._failed_at is None:
                return None
            left = self.cooldown - (self._clock() - self._failed_at)
            if left > 0:
                return left
            return self.cooldown if self._probing else None

    def try_acquire(self) -> bool:
        """True when the caller may use storage now (closed, or the one probe after the cooldown)."""
        with self._lock:
            if self._failed_at is None:
                return True
            if self._probing or self._clock() - self._failed_at < self.cooldown:
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failed_at, self._probing = None, False

    def failed(self) -> None:
        with self._lock:
            self._failed_at, self._probing = self._clock(), False


class PredictionLogger:
    """Buffers prediction records (bounded in records and in bytes) and writes them in batches
    from one background thread.

    Exactly once: a batch gets its key before its first attempt and every retry rewrites that
    key, so a write that timed out after storage kept it is not stored twice. `close()` runs
    once: it writes what is buffered until its deadline, then counts whatever is still
    unwritten as dropped (and logs it) rather than losing it silently at SIGKILL."""

    def __init__(self, sink, namespace: str, inference_service: str, model_version: str,
                 flush_records: int = 1000, flush_seconds: float = 10.0, buffer_records: int = 100_000,
                 buffer_bytes: int = 32 * 1024 * 1024,
                 on_written: Callable[[int], None] | None = None, on_dropped: Callable[[int], None] | None = None,
                 on_buffered: Callable[[int], None] | None = None, breaker: StorageBreaker | None = None):
        self.sink = sink
        self.namespace = namespace
        self.inference_service = inference_service
        self.model_version = model_version
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self.buffer_records = buffer_records
        self.buffer_bytes = buffer_bytes
        self.breaker = breaker
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._on_buffered = on_buffered or (lambda n: None)
        self._buffer: deque = deque()  # (count, JSON lines)
        self._count = 0
        self._bytes = 0
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self._deadline: float | None = None
        self._writing = 0  # records of the batch being written (taken out of the buffer)
        self.written_records = 0
        self.dropped_records = 0
        self.written_keys: list[str] = []
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def add(self, records: list[dict] | bytes, count: int | None = None) -> bool:
        """Buffer the records of one request: record dicts, or their JSON lines (each ending in a
        newline) with their `count`. False (and counted as dropped) when the buffer is full."""
        if not isinstance(records, bytes):
            count = len(records)
            records = json_lines(records)
        size = len(records)
        with self._lock:
            if (self._closing or self._count + count > self.buffer_records
                    or self._bytes + size > self.buffer_bytes):
                self._drop(count)
                return False
            first = self._oldest is None
            if first:
                self._oldest = time.monotonic()
            self._buffer.append((count, records))
            self._count += count
            self._bytes += size
            self._on_buffered(self._bytes)
            # Wake the writer to start the age clock on the first record, or to write a full batch.
            if first or self._count >= self.flush_records:
                self._wake.notify()
        return True

    def _drop(self, count: int) -> None:
        """Count `count` records as dropped (the caller holds the lock)."""
        self.dropped_records += count
        self._on_dropped(count)

    def pending(self) -> int:
        """Records accepted but not yet written (buffered or being written)."""
        with self._lock:
            return self._count + self._writing

    def buffered_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _take(self, limit: int) -> list[tuple[int, bytes]]:
        taken: list[tuple[int, bytes]] = []
        count = size = 0
        while self._buffer and count < limit:
            n, lines = self._buffer.popleft()
            taken.append((n, lines))
            count += n
            size += len(lines)
        self._count -= count
        self._bytes -= size
        self._writing = count
        self._on_buffered(self._bytes)
        self._oldest = time.monotonic() if self._buffer else None
        return taken

    def _due(self) -> bool:
        if self._count == 0:
            return False
        return (self._closing or self._count >= self.flush_records
                or time.monotonic() - (self._oldest or 0) >= self.flush_seconds)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due():
                    if self._closing:
                        return
                    timeout = None if self._oldest is None else max(0.0, self.flush_seconds - (time.monotonic() - self._oldest))
                    self._wake.wait(timeout)
                if self._closing and self._past_deadline():
                    self._give_up_buffer()
                    return
                entries = self._take(self.flush_records)
            if entries:
                self._write_with_retries(entries)

    def _give_up_buffer(self) -> None:
        """At the shutdown deadline: what is still buffered is counted as dropped (lock held)."""
        if self._count:
            log.error("prediction log: the shutdown budget is spent; %d buffered records are dropped", self._count)
            self._drop(self._count)
        self._buffer.clear()
        self._count = self._bytes = 0
        self._on_buffered(0)
        self._oldest = None

    def _write_with_retries(self, entries: list[tuple[int, bytes]]) -> None:
        count = sum(n for n, _ in entries)
        data = gzip.compress(b"".join(lines for _, lines in entries), compresslevel=6, mtime=0)
        first_time = _first_time(entries[0][1])
        key = prediction_batch_key(self.namespace, self.inference_service, self.model_version, first_time,
                                   new_batch_id(first_time))
        delay = 0.5
        while True:
            try:
                self.sink.put_bytes(key, data, "application/gzip")
            except Exception as error:  # noqa: BLE001 - storage errors of any kind are retried
                if self.breaker is not None:
                    self.breaker.failed()
                with self._lock:
                    if self._closing and self._past_deadline():
                        self._writing = 0
                        self._drop(count)
                        log.error("giving up on %d prediction log records at shutdown (%s)", count, error)
                        return
                    wait = delay if self._deadline is None else min(delay, max(0.0, self._deadline - time.monotonic()))
                log.warning("writing %d prediction log records failed (%s); retrying in %.1fs", count, error, wait)
                self._sleep(wait)
                delay = min(delay * 2, 30.0)
                continue
            if self.breaker is not None:
                self.breaker.succeeded()
            with self._lock:
                self._writing = 0
                self.written_records += count
                self.written_keys.append(key)
            self._on_written(count)
            return

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry; close() cuts the wait short so the flush starts at once."""
        with self._lock:
            self._wake.wait(seconds)

    def close(self, timeout: float = 15.0) -> None:
        """Write everything buffered within `timeout` seconds, then stop; records still
        unwritten then are counted as dropped. Only the first call flushes; later calls wait for it."""
        with self._close_lock:
            if self._closed.is_set():
                return
            with self._lock:
                self._closing = True
                self._deadline = time.monotonic() + timeout
                self._wake.notify_all()
            # A write in progress when the deadline passes ends within the store's own timeouts.
            self._thread.join(timeout + 1.0)
            with self._lock:
                if self._thread.is_alive():
                    # The writer is stuck in a write past every budget: count its batch and the
                    # buffer as dropped now, since the process is about to exit.
                    if self._writing:
                        log.error("prediction log: a write of %d records did not end in time; counted as dropped",
                                  self._writing)
                        self._drop(self._writing)
                        self._writing = 0
                    self._give_up_buffer()
            self._closed.set()


def json_lines(records: list[dict]) -> bytes:
    """Records as JSON lines, each ending in a newline (NaN as null, like json.dumps would not)."""
    return b"".join(orjson.dumps(record, default=str) + b"\n" for record in records)


def _first_time(lines: bytes) -> datetime:
    record = orjson.loads(lines[: lines.index(b"\n")])
    return datetime.fromisoformat(record["time"].replace("Z", "+00:00"))


def encode_records(records: list[dict]) -> bytes:
    """The format of `logformat.encode_batch` (gzip JSON lines, compact separators, NaN as
    null), written with orjson and zlib's default level: several times faster, and zlib
    releases the GIL while it compresses."""
    lines = b"\n".join(orjson.dumps(record, default=str) for record in records)
    return gzip.compress(lines + b"\n" if records else b"", compresslevel=6, mtime=0)


def prediction_record(request_id: str, moment: datetime, model_version: str, inputs: dict,
                      prediction, probabilities=None) -> dict:
    outputs = {"prediction": prediction}
    if probabilities is not None:
        outputs["probabilities"] = probabilities
    return {"requestId": request_id, "time": format_time(moment), "modelVersion": model_version,
            "inputs": inputs, "outputs": outputs}


def write_feedback(sink, namespace: str, inference_service: str, labels: list[tuple[str, object]],
                   moment: datetime | None = None) -> str:
    """Store one batch of (requestId, label) at once; returns the key."""
    moment = moment or utc_now()
    stamp = format_time(moment)
    records = [{"requestId": request_id, "time": stamp, "label": label} for request_id, label in labels]
    key = feedback_batch_key(namespace, inference_service, moment, new_batch_id(moment))
    sink.put_bytes(key, encode_records(records), "application/gzip")
    return key
