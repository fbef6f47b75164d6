"""Adaptive micro-batching: concurrent requests share one predict call.

A request never waits for company it cannot get: the batcher waits (at most
`max_wait`) only while more requests are in flight than it has collected, so a
lone request goes straight through and a burst fills a batch. Rows are bounded by
`max_rows` (a single larger request still goes alone). Slow predictors run on one
worker thread so the event loop keeps parsing the next requests; fast ones (the
ONNX path, microseconds per batch) run inline, where a thread hop would cost more
than the prediction. A request whose caller stopped waiting (the predict timeout
cancelled its future) is skipped when its turn comes.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

INLINE_BELOW_SECONDS = 0.001


@dataclass
class _Pending:
    columns: dict
    rows: int
    want_probabilities: bool
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    def __init__(self, predict: Callable, merge: Callable, max_rows: int, max_wait: float,
                 in_flight: Callable[[], int], observe_batch: Callable | None = None):
        """`predict(columns, want_probabilities) -> Prediction`; `merge(list of columns) -> columns`;
        `in_flight()` -> requests the server holds right now (including those being decoded);
        `observe_batch(rows, columns, prediction)` runs after each predict call (metrics)."""
        self._predict = predict
        self._merge = merge
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._in_flight = in_flight
        self._observe_batch = observe_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._carry: _Pending | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._task: asyncio.Task | None = None
        self._seconds_per_batch = 0.0  # moving average; decides inline vs thread

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def predict(self, columns: dict, rows: int, want_probabilities: bool):
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(columns, rows, want_probabilities, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, rows = [first], first.rows
        deadline = None
        while rows < self.max_rows:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                # Others are mid-request (being read or decoded): give them a moment to join.
                if self.max_wait <= 0 or self._in_flight() <= len(batch):
                    break
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + self.max_wait
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if rows + item.rows > self.max_rows:
                self._carry = item
                break
            batch.append(item)
            rows += item.rows
        return batch

    def _run(self, batch: list[_Pending]):
        columns = self._merge([p.columns for p in batch])
        want = any(p.want_probabilities for p in batch)
        started = time.perf_counter()
        prediction = self._predict(columns, want)
        elapsed = time.perf_counter() - started
        self._seconds_per_batch = elapsed if not self._seconds_per_batch else 0.8 * self._seconds_per_batch + 0.2 * elapsed
        if self._observe_batch is not None:
            self._observe_batch(sum(p.rows for p in batch), columns, prediction)
        return prediction

    def _run_each(self, batch: list[_Pending]) -> list:
        """After a batch failed: each request alone, so one bad request fails only itself."""
        results = []
        for pending in batch:
            try:
                results.append(self._run([pending]))
            except Exception as error:  # noqa: BLE001
                results.append(error)
        return results

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Requests that timed out while queued (their futures cancelled) are not predicted.
            batch = [pending for pending in await self._collect() if not pending.future.done()]
            if not batch:
                continue
            try:
                if self._seconds_per_batch and self._seconds_per_batch < INLINE_BELOW_SECONDS:
                    prediction = self._run(batch)
                else:
                    prediction = await loop.run_in_executor(self._executor, self._run, batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.cancel()
                raise
            except Exception as error:  # noqa: BLE001 - handed to the waiting requests
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(error)
                    continue
                results = await loop.run_in_executor(self._executor, self._run_each, batch)
                for pending, result in zip(batch, results):
                    if pending.future.done():
                        continue
                    if isinstance(result, Exception):
                        pending.future.set_exception(result)
                    else:
                        pending.future.set_result((result, 0, pending.rows))
                continue
            start = 0
            for pending in batch:
                end = start + pending.rows
                if not pending.future.done():
                    pending.future.set_result((prediction, start, end))
                start = end
