"""The prediction log buffer: flush on size, on age and at close; bounded in records and bytes;
retried under one key; closed once within its budget. And the storage breaker and the mirror's
byte-bounded queue."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from kadence.domain.monitoring import logformat
import asyncio

import pytest

from kadence.serving.mirror import Mirror
from kadence.serving.predictlog import (
    DirectorySink,
    PredictionLogger,
    StorageBreaker,
    json_lines,
    prediction_record,
    write_feedback,
)

MOMENT = datetime(2026, 11, 23, 0, 4, 42, 123000, tzinfo=timezone.utc)


class MemorySink:
    def __init__(self, failures: int = 0):
        self.objects: dict[str, bytes] = {}
        self.failures = failures
        self.attempts: list[str] = []
        self.lock = threading.Lock()

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        with self.lock:
            self.attempts.append(key)
            if self.failures:
                self.failures -= 1
                raise ConnectionError("storage is down")
            self.objects[key] = data
        return key

    def records(self):
        out = []
        for key, data in sorted(self.objects.items()):
            out += logformat.parse_predictions(key, logformat.decode_batch(key, data))
        return out


def record(i: int) -> dict:
    return prediction_record(f"r{i}", MOMENT, "3", {"x": float(i)}, i % 2, [0.5, 0.5])


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    return condition()


def test_a_full_batch_is_written_without_waiting_for_the_interval():
    sink = MemorySink()
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=5, flush_seconds=3600)
    for i in range(5):
        logger.add([record(i)])
    assert wait_for(lambda: len(sink.objects) == 1)
    key = next(iter(sink.objects))
    assert key.startswith("predictions/ns/isvc/3/2026/11/23/20261123T000442123Z-") and key.endswith(".jsonl.gz")
    logger.close()


def test_records_are_written_once_they_are_old_enough():
    sink = MemorySink()
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=1000, flush_seconds=0.05)
    logger.add([record(1)])
    assert wait_for(lambda: len(sink.records()) == 1)
    logger.close()


def test_close_writes_everything_buffered():
    sink = MemorySink()
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=1000, flush_seconds=3600)
    for i in range(2500):
        logger.add(json_lines([record(i)]), 1)
    logger.close()
    assert sorted(r.request_id for r in sink.records()) == sorted(f"r{i}" for i in range(2500))
    assert logger.written_records == 2500 and logger.dropped_records == 0


def test_a_full_buffer_drops_and_counts_instead_of_blocking():
    sink = MemorySink(failures=10**9)  # storage never comes back
    dropped = []
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=1000, flush_seconds=3600, buffer_records=10,
                              on_dropped=dropped.append)
    accepted = [logger.add([record(i)]) for i in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert sum(dropped) == 5


def test_a_failed_write_is_retried():
    sink = MemorySink(failures=1)
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=1, flush_seconds=3600)
    logger.add([record(7)])
    assert wait_for(lambda: len(sink.records()) == 1)
    logger.close()
    assert logger.written_records == 1


def test_feedback_goes_to_its_own_prefix_in_the_monitoring_format(tmp_path):
    key = write_feedback(DirectorySink(tmp_path), "ns", "isvc", [("r1", 1), ("r2", 0)], MOMENT)
    assert key.startswith("feedback/ns/isvc/2026/11/23/")
    records = logformat.parse_feedback(key, logformat.decode_batch(key, (tmp_path / key).read_bytes()))
    assert [(r.request_id, r.label) for r in records] == [("r1", 1), ("r2", 0)]


def test_the_fast_encoder_writes_what_the_monitoring_format_reads():
    from kadence.serving.predictlog import encode_records

    records = [record(i) for i in range(3)] + [prediction_record("n", MOMENT, "3", {"x": None, "s": "é"}, "a")]
    key = "predictions/ns/isvc/3/2026/11/23/b.jsonl.gz"
    assert logformat.decode_batch(key, encode_records(records)) == logformat.decode_batch(key, logformat.encode_batch(records))


def test_a_buffer_full_in_bytes_drops_and_counts_while_storage_is_down():
    sink = MemorySink(failures=10**9)
    dropped, buffered = [], []
    one = json_lines([record(1)])
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=10**6, flush_seconds=3600,
                              buffer_records=10**6, buffer_bytes=len(one) * 4 + len(one) // 2,
                              on_dropped=dropped.append, on_buffered=buffered.append)
    accepted = [logger.add(json_lines([record(i)]), 1) for i in range(10)]
    assert accepted == [True] * 4 + [False] * 6
    assert sum(dropped) == 6 and logger.dropped_records == 6
    assert buffered[-1] == logger.buffered_bytes() == 4 * len(one)


def test_a_write_retried_after_a_failure_rewrites_the_same_key_so_a_batch_is_stored_once():
    sink = MemorySink(failures=2)
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=3, flush_seconds=3600)
    for i in range(3):
        logger.add([record(i)])
    assert wait_for(lambda: len(sink.objects) == 1)
    logger.close()
    assert len(sink.attempts) == 3 and len(set(sink.attempts)) == 1
    assert sorted(r.request_id for r in sink.records()) == ["r0", "r1", "r2"]


def test_at_the_shutdown_deadline_what_storage_did_not_take_is_counted_as_dropped():
    sink = MemorySink(failures=10**9)
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=2, flush_seconds=3600)
    for i in range(5):
        logger.add([record(i)])
    logger.close(timeout=0.3)
    assert logger.written_records == 0 and logger.dropped_records == 5 and logger.pending() == 0


def test_close_flushes_once_and_a_second_close_writes_nothing():
    sink = MemorySink()
    logger = PredictionLogger(sink, "ns", "isvc", "3", flush_records=1000, flush_seconds=3600)
    for i in range(3):
        logger.add([record(i)])
    logger.close()
    logger.close()
    assert len(sink.attempts) == 1 and logger.written_records == 3
    assert logger.add([record(9)]) is False and logger.dropped_records == 1


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_breaker_lets_one_caller_probe_after_the_cooldown_and_closes_on_success():
    clock = Clock()
    breaker = StorageBreaker(cooldown=10, clock=clock)
    assert breaker.try_acquire() and breaker.retry_after() is None
    breaker.failed()
    assert not breaker.try_acquire() and breaker.retry_after() == 10
    clock.now += 4
    assert not breaker.try_acquire() and breaker.retry_after() == 6
    clock.now += 6
    assert breaker.try_acquire(), "the first caller after the cooldown probes"
    assert not breaker.try_acquire(), "only one probe at a time"
    breaker.succeeded()
    assert breaker.try_acquire() and breaker.try_acquire()


def test_the_breaker_reopens_when_the_probe_fails():
    clock = Clock()
    breaker = StorageBreaker(cooldown=10, clock=clock)
    breaker.failed()
    clock.now += 10
    assert breaker.try_acquire()
    breaker.failed()
    assert not breaker.try_acquire() and breaker.retry_after() == 10


@pytest.mark.parametrize("bodies, kept", [
    ([100] * 5, 5),
    ([400, 400, 400], 2),
    ([1001, 10, 10], 2),  # a copy too large is dropped; smaller ones after it still fit
])
def test_the_mirror_queue_is_bounded_in_bytes_and_counts_what_it_drops(bodies, kept):
    outcomes = []

    async def offer_all():
        mirror = Mirror("http://shadow.invalid", outcomes.append, buffer_bytes=1000)  # not started: nothing sent
        for i, size in enumerate(bodies):
            mirror.offer("/v1/models/m:predict", b"x" * size, f"r{i}")
        return mirror

    mirror = asyncio.run(offer_all())
    assert outcomes.count("dropped") == len(bodies) - kept
    assert mirror.queued_bytes <= 1000
