"""Labelled predictions: labels joined to their predictions by request id however late they
come, the quality window chosen among them, the label delay, and the feedback export.

Definitions (the monitor and the README use these words):

- A *labelled prediction* is a logged prediction with at least one label given up to the
  evaluation time; a relabelled prediction counts once, with its latest label (by the label's
  time). A label whose prediction is not in the log is not a labelled prediction.
- The *quality window* is the newest `limit` labelled predictions, by prediction time, among
  those whose prediction is younger than `max_age` at the evaluation time (the retention).
  It is empty — "no labelled predictions" — only when no labelled prediction lies within the
  retention, however long ago the last one was made.
- The *label delay* of a labelled prediction is its (latest) label's time minus its
  prediction's time; a label stamped before its prediction (clock skew) counts as 0.
- The *feedback export* is every labelled prediction made after `since` up to the evaluation
  time: the logged inputs, the label as the target column, optionally the prediction time as a
  time column; one row per request id, oldest prediction first. An export that starts from the
  previous one's checkpoint (see `fold_checkpoint`) takes the rows of predictions older than the
  retention from it as they were.

Pure functions over pandas frames; reading storage is `kadence.workloads.monitor_io`.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

LABEL_COLUMNS = ("label", "label_time")


@dataclass(frozen=True)
class QualityWindowSpec:
    """The newest `limit` labelled predictions made within `max_age` of the evaluation time."""

    limit: int
    max_age: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a quality window needs a limit of at least one labelled prediction")
        if self.max_age <= timedelta(0):
            raise ValueError("a quality window needs a positive maxAge")

    def retention_start(self, end: datetime) -> datetime:
        return end - self.max_age


@dataclass(frozen=True)
class DelayStats:
    p50_seconds: float | None
    p95_seconds: float | None


def join_labels(meta, feedback):
    """Predictions (`meta`: request_id, time, …) that have a label, with `label` and
    `label_time` (the latest label of the request: `feedback` holds one row per request id
    as `logformat.feedback_frame` builds it; a frame with repeated ids is reduced here the
    same way). Oldest prediction first, ties by request id."""
    latest = latest_labels(feedback)
    joined = meta.merge(latest[["request_id", *LABEL_COLUMNS]], on="request_id", how="inner")
    return joined.sort_values(["time", "request_id"], kind="stable").reset_index(drop=True)


def latest_labels(feedback):
    """One row per request id: the label with the latest `label_time` (on equal times, the
    one given last)."""
    return (feedback.sort_values("label_time", kind="stable")
            .drop_duplicates("request_id", keep="last").reset_index(drop=True))


def quality_window(joined, end: datetime, spec: QualityWindowSpec, after: datetime | None = None):
    """The quality window among joined labelled predictions: prediction time in
    (max(end - maxAge, after), end], label given by `end`, the newest `limit` of them,
    oldest first. `after`: also leave out predictions made at or before it (champion/
    challenger: what the challenger's training saw)."""
    import pandas as pd

    lower = spec.retention_start(end)
    if after is not None and after > lower:
        lower = after
    end_ts, lower_ts = pd.Timestamp(end), pd.Timestamp(lower)
    kept = joined[(joined["time"] > lower_ts) & (joined["time"] <= end_ts) & (joined["label_time"] <= end_ts)]
    return kept.sort_values(["time", "request_id"], kind="stable").tail(spec.limit).reset_index(drop=True)


def label_delays_seconds(joined) -> list[float]:
    """Each labelled prediction's label delay in seconds (negative clock skew counts as 0)."""
    seconds = (joined["label_time"] - joined["time"]).dt.total_seconds()
    return [max(0.0, float(s)) for s in seconds]


def delay_percentiles(delays: list[float]) -> DelayStats:
    """p50 and p95 of the delays (linear interpolation between ranks, as numpy's default);
    None for both when there is none."""
    import numpy as np

    if not delays:
        return DelayStats(None, None)
    values = np.asarray(delays, dtype=float)
    return DelayStats(float(np.percentile(values, 50)), float(np.percentile(values, 95)))


def export_frame(inputs, joined, target: str, time_column: str | None = None):
    """The feedback export's rows: `inputs` (the logged inputs, one row per request id, a
    `request_id` column besides them) of the joined labelled predictions, the label under
    `target`, the prediction time under `time_column` (when given and not itself a logged
    input). One row per request id (latest label), oldest prediction first."""
    if not target:
        raise ValueError("the feedback export needs the target column's name")
    if time_column is not None and time_column == target:
        raise ValueError(f"the time column and the target are both named {target!r}")
    rows = joined[["request_id", "time", "label"]].drop_duplicates("request_id", keep="last")
    merged = rows.merge(inputs, on="request_id", how="left", suffixes=("", "__input"))
    columns = [c for c in inputs.columns if c != "request_id" and c != target]
    frame = merged[[c if c not in ("time", "label") else f"{c}__input" for c in columns]]
    frame.columns = columns
    frame = frame.assign(**{target: merged["label"].to_numpy()})
    if time_column is not None and time_column not in columns:
        frame = frame.assign(**{time_column: merged["time"].to_numpy()})
    return frame.reset_index(drop=True)


def held_out_count(labelled: int, rows: int, max_fraction: float) -> int:
    """How many of `labelled` labelled predictions a hold-out of `rows` keeps back: never more
    than `max_fraction` of them, so that the rest still trains."""
    return max(0, min(rows, int(labelled * max_fraction)))


def hold_out_newest(joined, count: int):
    """(kept, held): the joined labelled predictions less the newest `count` request ids by
    prediction time (ties broken by request id), and those. A request id is held out whole."""
    if count <= 0:
        return joined, joined.iloc[0:0]
    newest = (joined[["request_id", "time"]].sort_values(["time", "request_id"], kind="stable")
              .drop_duplicates("request_id", keep="last")["request_id"].tail(count))
    held = joined["request_id"].isin(set(newest))
    return joined[~held].reset_index(drop=True), joined[held].reset_index(drop=True)


def parquet_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def iso(moment: Any) -> str | None:
    """RFC 3339 in UTC to the second, for results and status; None for a missing time."""
    if moment is None or (isinstance(moment, float) and math.isnan(moment)):
        return None
    import pandas as pd

    stamp = pd.Timestamp(moment)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the export's checkpoint: what lets an export "since" a long time ago read only the retention

INPUT_PREFIX = "input:"
CHECKPOINT_COLUMNS = ("request_id", "time", "label", "label_time")


def to_checkpoint(joined, inputs):
    """Joined labelled predictions and their inputs as one frame (request_id, time, label,
    label_time, then `input:<name>` per logged input), oldest first."""
    rows = joined[list(CHECKPOINT_COLUMNS)]
    prefixed = inputs.rename(columns={c: INPUT_PREFIX + str(c) for c in inputs.columns if c != "request_id"})
    merged = rows.merge(prefixed, on="request_id", how="left")
    return merged.sort_values(["time", "request_id"], kind="stable").reset_index(drop=True)


def from_checkpoint(frame):
    """(joined, inputs) of a checkpoint frame, as `export_frame` takes them."""
    joined = frame[list(CHECKPOINT_COLUMNS)].reset_index(drop=True)
    names = [c for c in frame.columns if str(c).startswith(INPUT_PREFIX)]
    inputs = frame[["request_id", *names]].rename(columns={c: c[len(INPUT_PREFIX):] for c in names})
    return joined, inputs.reset_index(drop=True)


def fold_checkpoint(previous, recent, horizon: datetime):
    """The labelled predictions of a new export from the previous one's checkpoint and what was
    read now: predictions made up to `horizon` (the retention's start) come from `previous`
    as they were (labels arriving later for them lie outside the retention), newer ones from
    `recent`; one row per request id, oldest first. A column only one side has is empty on
    the other's rows."""
    import pandas as pd

    horizon_ts = pd.Timestamp(horizon)
    kept = previous[previous["time"] <= horizon_ts]
    newer = recent[recent["time"] > horizon_ts]
    frames = [f for f in (kept, newer) if len(f)]
    if not frames:
        return recent.iloc[0:0]
    merged = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    merged = merged.drop_duplicates("request_id", keep="last")
    return merged.sort_values(["time", "request_id"], kind="stable").reset_index(drop=True)
