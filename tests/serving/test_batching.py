"""Adaptive micro-batching, without a server: real asyncio, a recording predictor."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from kadence.serving.batching import MicroBatcher
from kadence.serving.predictor import Prediction


class Recorder:
    def __init__(self, fail_on=None):
        self.calls: list[int] = []
        self.fail_on = fail_on

    def predict(self, columns, want_probabilities):
        values = columns["x"]
        self.calls.append(len(values))
        if self.fail_on is not None and self.fail_on in values:
            raise ValueError(f"cannot take {self.fail_on}")
        return Prediction(values * 10, None)


def merge(parts):
    return {"x": np.concatenate([p["x"] for p in parts])}


async def _run(recorder, requests, max_rows=32, max_wait=0.05, in_flight=None):
    batcher = MicroBatcher(recorder.predict, merge, max_rows=max_rows, max_wait=max_wait,
                           in_flight=in_flight or (lambda: len(requests)))
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.predict({"x": np.array(r)}, len(r), False) for r in requests),
                                       return_exceptions=True)
    finally:
        await batcher.stop()
    return results


def answers(results):
    return [r if isinstance(r, Exception) else r[0].values[r[1]:r[2]].tolist() for r in results]


def test_concurrent_requests_share_one_predict_call_and_each_gets_its_own_rows():
    recorder = Recorder()
    results = asyncio.run(_run(recorder, [[1], [2, 3], [4]]))
    assert recorder.calls == [4]
    assert answers(results) == [[10], [20, 30], [40]]


def test_a_batch_never_exceeds_the_row_limit():
    recorder = Recorder()
    results = asyncio.run(_run(recorder, [[i] for i in range(10)], max_rows=4))
    assert max(recorder.calls) <= 4 and sum(recorder.calls) == 10
    assert answers(results) == [[10 * i] for i in range(10)]


def test_a_request_larger_than_the_limit_goes_alone():
    recorder = Recorder()
    results = asyncio.run(_run(recorder, [[1, 2, 3, 4, 5], [6]], max_rows=4))
    assert sorted(recorder.calls) == [1, 5]
    assert answers(results) == [[10, 20, 30, 40, 50], [60]]


def test_a_lone_request_does_not_wait_for_company():
    recorder = Recorder()
    # in_flight says only this request is being handled: no reason to wait max_wait.
    asyncio.run(_run(recorder, [[1]], max_wait=3600, in_flight=lambda: 1))
    assert recorder.calls == [1]


def test_one_bad_request_fails_only_itself():
    recorder = Recorder(fail_on=2)
    results = asyncio.run(_run(recorder, [[1], [2], [3]]))
    assert isinstance(results[1], ValueError) and "cannot take 2" in str(results[1])
    assert answers([results[0], results[2]]) == [[10], [30]]


@pytest.mark.parametrize("wait", [0.0, 0.002])
def test_every_request_is_answered_under_load(wait):
    recorder = Recorder()
    requests = [[i, i + 1] for i in range(0, 400, 2)]
    results = asyncio.run(_run(recorder, requests, max_rows=16, max_wait=wait))
    assert answers(results) == [[10 * a, 10 * b] for a, b in requests]
    assert sum(recorder.calls) == 400
