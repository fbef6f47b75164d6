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


DAY = timedelta(days=1)


def _children(store, prefix: str) -> list[str]:
    """The "directories" right under `prefix`, with one delimiter LIST (a store without
    `list_dirs` lists every key once instead)."""
    if hasattr(store, "list_dirs"):
        return store.list_dirs(prefix)
    seen = set()
    for key in store.list_keys(prefix):
        head = key[len(prefix):].split("/", 1)
        if len(head) == 2:
            seen.add(prefix + head[0] + "/")
    return sorted(seen)


def _day_prefixes(store, root: str, first_day: date | None, last_day: date) -> dict[date, str]:
    """`<root><yyyy>/<mm>/<dd>/` of the days in [first_day, last_day] that hold objects,
    found by listing the date directories level by level (never the objects of other days)."""
    days: dict[date, str] = {}
    for year_dir in _children(store, root):
        year = _number(year_dir, root)
        if year is None or year > last_day.year or (first_day is not None and year < first_day.year):
            continue
        for month_dir in _children(store, year_dir):
            month = _number(month_dir, year_dir)
            if month is None or (year, month) > (last_day.year, last_day.month) or (
                    first_day is not None and (year, month) < (first_day.year, first_day.month)):
                continue
            for day_dir in _children(store, month_dir):
                number = _number(day_dir, month_dir)
                try:
                    day = date(year, month, number) if number is not None else None
                except ValueError:
                    day = None
                if day is not None and day <= last_day and (first_day is None or day >= first_day):
                    days[day] = day_dir
    return days


def _number(child: str, parent: str) -> int | None:
    name = child[len(parent):].rstrip("/")
    return int(name) if name.isdigit() else None


class Partitions:
    """The batch objects of a log (`predictions/<ns>/<isvc>/`, whose model versions each have
    their own date tree, or `feedback/<ns>/<isvc>/`) by UTC date directory, listed only for the
    days asked for: an evaluation over 30 days lists 30 day directories per model version, not
    the log's whole history."""

    def __init__(self, store, prefix: str, versioned: bool, model_versions: list[str] | None = None):
        self.store, self.prefix = store, prefix
        if versioned:
            roots = _children(store, prefix)
            if model_versions is not None:
                wanted = {f"{prefix}{v}/" for v in model_versions}
                roots = [r for r in roots if r in wanted]
            self.roots = roots
        else:
            self.roots = [prefix]

    def days(self, first_day: date | None, last_day: date) -> dict[date, list[str]]:
        """Day -> the day directories holding it (one per model version)."""
        found: dict[date, list[str]] = {}
        for root in self.roots:
            for day, directory in _day_prefixes(self.store, root, first_day, last_day).items():
                found.setdefault(day, []).append(directory)
        return dict(sorted(found.items()))

    def keys(self, directories: list[str]) -> list[str]:
        """The batch keys of some day directories, in time order (batch ids begin with their
        first record's time)."""
        keys = [k for d in directories for k in self.store.list_keys(d) if is_batch_key(k)]
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
    batch's date is that of its first record. For the last N, days are read newest first
    until one lies wholly before the N newest records found. Only the date directories of
    the days read are listed. A malformed batch raises LogFormatError naming it.
    """
    partitions = Partitions(store, prefix, versioned=True, model_versions=model_versions)
    end_day = window.end.date()
    if window.duration is not None:
        start = window.end - window.duration
        days = partitions.days(start.date() - DAY, end_day)
        keys = partitions.keys([d for directories in days.values() for d in directories])
        records = []
        for key, data in _fetch_all(store, keys):
            for record in parse_predictions(key, decode_batch(key, data)):
                if start < record.time <= window.end and (model_versions is None or record.model_version in model_versions):
                    records.append(record)
        return predictions_frame(records)
    days = partitions.days(None, end_day)
    collected = []
    enough_at: date | None = None
    for day in sorted(days, reverse=True):
        if enough_at is not None and day < enough_at - DAY:
            break  # batches dated two days before the N newest records' day end before them
        for key, data in _fetch_all(store, partitions.keys(days[day])):
            collected.extend(r for r in parse_predictions(key, decode_batch(key, data))
                             if r.time <= window.end and (model_versions is None or r.model_version in model_versions))
        if enough_at is None and len(collected) >= window.last:
            enough_at = day
    collected.sort(key=lambda r: (r.time, r.request_id))
    return predictions_frame(collected[-window.last:])


def read_feedback(store, prefix: str, since: datetime | None, until: datetime):
    """Labels under `prefix` (`feedback/<ns>/<isvc>/`) given up to `until` in batches dated
    from the day before `since`; one row per request id, the latest label winning."""
    partitions = Partitions(store, prefix, versioned=False)
    first_day = since.date() - DAY if since is not None else None
    days = partitions.days(first_day, until.date())
    records = []
    for key, data in _fetch_all(store, partitions.keys([d for ds in days.values() for d in ds])):
        records.extend(r for r in parse_feedback(key, decode_batch(key, data)) if r.time <= until)
    return feedback_frame(records)


def join_feedback(log: PredictionLog, feedback) -> Any:
    """The labelled predictions: `request_id`, `prediction`, `probabilities`, `label`."""
    meta = log.meta[["request_id", "prediction", "probabilities", "model_version", "time"]]
    return meta.merge(feedback[["request_id", "label"]], on="request_id", how="inner")


@dataclass
class Labelled:
    """Labelled predictions read from storage: `joined` (the prediction log's meta columns
    plus `label`, `label_time`; oldest first) and `inputs` (the logged inputs, a
    `request_id` column beside them), one row per request id."""

    joined: Any
    inputs: Any

    def __len__(self) -> int:
        return len(self.joined)


def read_labelled(store, predictions: str, feedback: str, end: datetime, after: datetime | None,
                  newest: int | None = None, model_versions: list[str] | None = None) -> Labelled:
    """The labelled predictions made in (after, end] whose label was given by `end` (the
    newest `newest` of them when set; all when None), labels joined by request id however
    late they came (a label for a prediction of `after` or later is given after it, so the
    feedback read is bounded by `after` too).

    Cost: the feedback day directories from the day before `after` to `end`, and the
    predictions' day directories from `end` back, newest first, stopping once `newest`
    labelled predictions are found (and the day before, for batches crossing midnight) —
    never beyond the day before `after`. Only labelled records are kept in memory."""
    from ..domain.monitoring.labelled import join_labels

    labels = read_feedback(store, feedback, after, end)
    wanted = set(labels["request_id"])
    partitions = Partitions(store, predictions, versioned=True, model_versions=model_versions)
    first_day = after.date() - DAY if after is not None else None
    days = partitions.days(first_day, end.date())
    kept = []
    enough_at: date | None = None
    for day in sorted(days, reverse=True):
        if not wanted:
            break
        if enough_at is not None and day < enough_at - DAY:
            break
        for key, data in _fetch_all(store, partitions.keys(days[day])):
            kept.extend(r for r in parse_predictions(key, decode_batch(key, data))
                        if r.request_id in wanted and r.time <= end and (after is None or r.time > after)
                        and (model_versions is None or r.model_version in model_versions))
        if newest is not None and enough_at is None and len({r.request_id for r in kept}) >= newest:
            enough_at = day
    log = predictions_frame(kept)
    joined = join_labels(log.meta, labels)
    if newest is not None:
        joined = joined.tail(newest).reset_index(drop=True)
    inputs = log.inputs.assign(request_id=log.meta["request_id"].to_numpy())
    inputs = inputs[inputs["request_id"].isin(set(joined["request_id"]))].reset_index(drop=True)
    return Labelled(joined=joined, inputs=inputs)


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
