"""Prediction logs and feedback, written to object storage in the monitoring log format.

The request path encodes its records to JSON lines at once (orjson, microseconds) and
appends the bytes to a bounded in-memory buffer; one background thread joins, gzips and
writes them as batches. That thread does no Python-level work per record on purpose: a
CPU-bound second thread makes the event loop wait for the GIL after every I/O call (the
convoy effect), which showed as 150 ms p99 latencies; zlib and socket I/O release the GIL.
Batches are written
when `flush_records` have gathered or the oldest is `flush_seconds` old. A failed write
keeps its batch and retries with backoff. When storage stays down and the buffer is full,
new records are refused and counted as dropped: the server keeps answering. `close()`
writes everything still buffered, so a clean stop loses nothing it accepted.
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


class PredictionLogger:
    def __init__(self, sink, namespace: str, inference_service: str, model_version: str,
                 flush_records: int = 1000, flush_seconds: float = 10.0, buffer_records: int = 100_000,
                 on_written: Callable[[int], None] | None = None, on_dropped: Callable[[int], None] | None = None):
        self.sink = sink
        self.namespace = namespace
        self.inference_service = inference_service
        self.model_version = model_version
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self.buffer_records = buffer_records
        self._on_written = on_written or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._buffer: deque = deque()  # (time, [record dicts])
        self._count = 0
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
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
        with self._lock:
            if self._closing or self._count + count > self.buffer_records:
                self.dropped_records += count
                self._on_dropped(count)
                return False
            first = self._oldest is None
            if first:
                self._oldest = time.monotonic()
            self._buffer.append((count, records))
            self._count += count
            # Wake the writer to start the age clock on the first record, or to write a full batch.
            if first or self._count >= self.flush_records:
                self._wake.notify()
        return True

    def pending(self) -> int:
        with self._lock:
            return self._count

    def _take(self, limit: int) -> list[tuple[int, bytes]]:
        taken: list[tuple[int, bytes]] = []
        count = 0
        while self._buffer and count < limit:
            n, lines = self._buffer.popleft()
            taken.append((n, lines))
            count += n
        self._count -= count
        self._oldest = time.monotonic() if self._buffer else None
        return taken

    def _due(self) -> bool:
        if self._count == 0:
            return False
        return (self._closing or self._count >= self.flush_records
                or time.monotonic() - (self._oldest or 0) >= self.flush_seconds)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due():
                    if self._closing:
                        return
                    timeout = None if self._oldest is None else max(0.0, self.flush_seconds - (time.monotonic() - self._oldest))
                    self._wake.wait(timeout)
                entries = self._take(self.flush_records)
            if entries:
                self._write_with_retries(entries)

    def _write_with_retries(self, entries: list[tuple[int, bytes]]) -> None:
        count = sum(n for n, _ in entries)
        data = gzip.compress(b"".join(lines for _, lines in entries), compresslevel=6, mtime=0)
        first_time = _first_time(entries[0][1])
        delay = 0.5
        while True:
            try:
                self._write(data, count, first_time)
                return
            except Exception as error:  # noqa: BLE001 - storage errors of any kind are retried
                log.warning("writing %d prediction log records failed (%s); retrying in %.1fs", count, error, delay)
                with self._lock:
                    if self._closing and delay > 8:
                        self.dropped_records += count
                        self._on_dropped(count)
                        log.error("giving up on %d prediction log records at shutdown", count)
                        return
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _write(self, data: bytes, count: int, first_time: datetime) -> None:
        key = prediction_batch_key(self.namespace, self.inference_service, self.model_version, first_time,
                                   new_batch_id(first_time))
        self.sink.put_bytes(key, data, "application/gzip")
        self.written_records += count
        self.written_keys.append(key)
        self._on_written(count)

    def close(self, timeout: float = 60.0) -> None:
        """Write everything buffered, then stop."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)


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
