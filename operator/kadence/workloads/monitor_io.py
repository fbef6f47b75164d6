"""The monitor's reading side: prediction logs, feedback, the drift reference and previous
results, from object storage. The log format itself is `kadence.domain.monitoring.logformat`.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..domain.monitoring.logformat import (
    PredictionLog,
    decode_batch,
    feedback_frame,
    is_batch_key,
    key_date,
    parse_feedback,
    parse_predictions,
    predictions_frame,
)


@dataclass(frozen=True)
class LogWindow:
    """Predictions with `time` in (end - duration, end], or the last `last` up to `end`."""

    end: datetime
    duration: timedelta | None = None
    last: int | None = None

    def __post_init__(self) -> None:
        if (self.duration is None) == (self.last is None):
            raise ValueError("a window needs exactly one of duration, last")
        if self.end.tzinfo is None:
            raise ValueError("a window's end must be timezone-aware")


def _batch_keys(store, prefix: str, first_day: date | None, last_day: date) -> list[str]:
    keys = []
    for key in store.list_keys(prefix):
        day = key_date(key)
        if is_batch_key(key) and day <= last_day and (first_day is None or day >= first_day):
            keys.append(key)
    # date directories, then batch ids that begin with the batch's time: a time order
    return sorted(keys, key=lambda k: (key_date(k), posixpath.basename(k)))


FETCH_THREADS = 8


def _fetch_all(store, keys: list[str]) -> list[tuple[str, bytes]]:
    """GET many small objects concurrently (the latency of one S3 round trip dominates)."""
    from concurrent.futures import ThreadPoolExecutor

    if len(keys) <= 1:
        return [(k, store.get_bytes(k)) for k in keys]
    with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(keys))) as pool:
        return list(zip(keys, pool.map(store.get_bytes, keys)))


def read_prediction_logs(store, prefix: str, window: LogWindow, model_versions: list[str] | None = None
                         ) -> PredictionLog:
    """The window's predictions under `prefix` (`predictions/<ns>/<isvc>/`), oldest first.

    Expects the layout and records of `kadence.domain.monitoring.logformat`: batches under
    `<prefix><modelVersion>/<yyyy>/<mm>/<dd>/<batch-id>.jsonl.gz` (or .jsonl, .parquet), one
    record per request `{requestId, time, modelVersion, inputs: {…}, outputs: {prediction,
    probabilities?}}`. A batch dated the day before the window's start is read too, since a
    batch's date is that of its first record. For the last N, batches are read newest first
    until one lies wholly before the N newest records found. A malformed batch raises
    LogFormatError naming it.
    """
    end_day = window.end.date()
    if window.duration is not None:
        start = window.end - window.duration
        keys = _batch_keys(store, prefix, start.date() - timedelta(days=1), end_day)
        records = []
        for key, data in _fetch_all(store, keys):
            for record in parse_predictions(key, decode_batch(key, data)):
                if start < record.time <= window.end and (model_versions is None or record.model_version in model_versions):
                    records.append(record)
        return predictions_frame(records)
    keys = _batch_keys(store, prefix, None, end_day)
    collected = []
    oldest_needed = window.end
    for key in reversed(keys):
        batch = [r for r in parse_predictions(key, decode_batch(key, store.get_bytes(key)))
                 if r.time <= window.end and (model_versions is None or r.model_version in model_versions)]
        if len(collected) >= window.last and batch and max(r.time for r in batch) < oldest_needed:
            break  # a whole batch older than the N newest: the batches before it started earlier still
        collected.extend(batch)
        if len(collected) >= window.last:
            oldest_needed = sorted(r.time for r in collected)[-window.last]
    collected.sort(key=lambda r: (r.time, r.request_id))
    return predictions_frame(collected[-window.last:])


def read_feedback(store, prefix: str, since: datetime | None, until: datetime):
    """Labels under `prefix` (`feedback/<ns>/<isvc>/`) given up to `until` in batches dated
    from the day before `since`; one row per request id, the latest label winning."""
    first_day = since.date() - timedelta(days=1) if since is not None else None
    records = []
    for key, data in _fetch_all(store, _batch_keys(store, prefix, first_day, until.date())):
        records.extend(r for r in parse_feedback(key, decode_batch(key, data)) if r.time <= until)
    return feedback_frame(records)


def join_feedback(log: PredictionLog, feedback) -> Any:
    """The labelled predictions: `request_id`, `prediction`, `probabilities`, `label`."""
    meta = log.meta[["request_id", "prediction", "probabilities", "model_version", "time"]]
    return meta.merge(feedback[["request_id", "label"]], on="request_id", how="inner")


class ReferenceNotFound(LookupError):
    pass


def load_reference(store, uri: str):
    """A drift reference from a profile (.json) or a raw sample (.parquet, .csv)."""
    from ..domain.monitoring.drift import reference_from_profile, reference_from_sample

    key = store.key_of(uri)
    try:
        data = store.get_bytes(key)
    except FileNotFoundError as error:
        raise ReferenceNotFound(f"no drift reference at {uri}") from error
    if key.endswith(".json"):
        return reference_from_profile(json.loads(data))
    import pandas as pd

    if key.endswith(".parquet"):
        return reference_from_sample(pd.read_parquet(io.BytesIO(data)))
    if key.endswith(".csv"):
        return reference_from_sample(pd.read_csv(io.BytesIO(data)))
    raise ValueError(f"unknown reference format: {uri} (expected .json profile, .parquet or .csv sample)")


def previous_results(store, prefix: str, before_key: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` earlier evaluations' result.json (`<prefix><stamp>/result.json`), oldest first."""
    if limit <= 0:
        return []
    evaluation = re.compile(re.escape(prefix) + r"\d{8}T\d{6}Z/result\.json$")
    keys = sorted(k for k in store.list_keys(prefix) if evaluation.match(k) and k < before_key)
    results = []
    for key in keys[-limit:]:
        try:
            results.append(json.loads(store.get_bytes(key)))
        except (FileNotFoundError, json.JSONDecodeError):
            continue  # a result being written or damaged does not block the report
    return results
