"""The prediction log buffer: flush on size, on age and at close; bounded; retried."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from kadence.domain.monitoring import logformat
from kadence.serving.predictlog import DirectorySink, PredictionLogger, json_lines, prediction_record, write_feedback

MOMENT = datetime(2026, 11, 23, 0, 4, 42, 123000, tzinfo=timezone.utc)


class MemorySink:
    def __init__(self, failures: int = 0):
        self.objects: dict[str, bytes] = {}
        self.failures = failures
        self.lock = threading.Lock()

    def put_bytes(self, key, data, content_type="application/octet-stream"):
        with self.lock:
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
