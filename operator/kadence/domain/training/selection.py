"""Which rows train a model and how much each counts, by the rows' event time
(`TrainingRun.spec.dataSelection`).

- `event_times`: the time column as UTC timestamps; a value that is no date-time is an
  error naming it, a missing one stays missing (NaT) and counts as the oldest row.
- `recent_rows`: mode Recent — the rows within `period` of the newest row, or the newest `rows`.
- `recency_weights`: mode RecencyWeighted — `0.5 ** (age / half_life)`, the age behind the
  newest row (a missing time has the oldest row's age), scaled so the weights average 1 (a
  weighted fit then sees as many "rows" as an unweighted one, which keeps regularisation and
  min-samples settings meaning what they mean without weights).
- `time_holdout`: the hold-out is the newest `fraction` of the rows (missing times first in
  the order, so never in the hold-out unless every row is missing); ties by position.
- `recent_validation_folds`: cross-validation that scores on the newest half of the training
  rows only (the regime the model will serve), each fold training on every other row.
- `effective_rows`: Kish's effective sample size of a weighting, (Σw)² / Σw², for the log.

Pure functions over numpy/pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


class SelectionError(ValueError):
    pass


def event_times(values: Any, column: str):
    """The column as a pandas Series of UTC timestamps (NaT where missing)."""
    import pandas as pd

    series = pd.Series(values)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        raise SelectionError(f"the time column {column!r} holds numbers, not date-times")
    try:
        times = pd.to_datetime(series, utc=True, errors="raise", format="mixed")
    except (ValueError, TypeError) as error:
        raise SelectionError(f"the time column {column!r} holds values that are not date-times: {error}") from error
    return times.reset_index(drop=True)


def _ages_seconds(times) -> np.ndarray:
    known = times.dropna()
    if known.empty:
        return np.zeros(len(times))
    newest, oldest = known.max(), known.min()
    filled = times.fillna(oldest)
    return (newest - filled).dt.total_seconds().to_numpy(dtype=float)


def recent_rows(times, period_seconds: float | None = None, rows: int | None = None) -> np.ndarray:
    """Positions of the rows selected by mode Recent, in their original order."""
    if (period_seconds is None) == (rows is None):
        raise SelectionError("recent needs exactly one of period, rows")
    n = len(times)
    if rows is not None:
        order = time_order(times)
        return np.sort(order[max(0, n - rows):])
    known = times.notna().to_numpy()
    ages = _ages_seconds(times)
    return np.flatnonzero(known & (ages <= period_seconds))


def recency_weights(times, half_life_seconds: float) -> np.ndarray:
    """0.5 ** (age / halfLife), scaled to mean 1."""
    if not half_life_seconds > 0:
        raise SelectionError("halfLife must be positive")
    weights = np.power(0.5, _ages_seconds(times) / half_life_seconds)
    if len(weights) == 0:
        return weights
    return weights * (len(weights) / weights.sum())  # the newest row weighs 1 before scaling: never 0


def time_order(times) -> np.ndarray:
    """Positions from the oldest row to the newest; missing times first; ties by position."""
    # as integers NaT is the smallest value: missing times sort first
    key = times.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").astype("int64")
    return np.asarray(key.argsort(kind="stable"))


@dataclass(frozen=True)
class TimeSplit:
    train: np.ndarray  # positions, in time order
    holdout: np.ndarray  # positions of the newest rows, in time order


def time_holdout(times, fraction: float) -> TimeSplit:
    """The newest ceil(fraction * n) rows are the hold-out (at least one, never every row)."""
    n = len(times)
    if n < 2:
        raise SelectionError(f"{n} rows cannot be split into training rows and a hold-out")
    size = min(n - 1, max(1, math.ceil(fraction * n)))
    order = time_order(times)
    return TimeSplit(train=order[: n - size], holdout=order[n - size:])


def effective_rows(weights: np.ndarray | None, n: int) -> float:
    if weights is None:
        return float(n)
    total = float(np.sum(weights))
    return total * total / float(np.sum(np.square(weights))) if total > 0 else 0.0


RECENT_VALIDATION_SHARE = 0.5


def recent_validation_folds(times, y, k: int, seed: int, stratify: bool,
                            share: float = RECENT_VALIDATION_SHARE) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds scored on the regime the model will serve: the newest `share`
    of the rows (by time, missing times oldest) is split into `k` folds (stratified by class
    when asked and every class of that part has k rows); fold j validates on part j and trains
    on every other row, older ones included. Positions, each sorted."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(times)
    if n < 2 * k:
        raise SelectionError(f"{n} rows are too few for {k} folds")
    size = max(k, math.ceil(share * n))
    recent = time_order(times)[n - size:]
    labels = np.asarray(y)[recent]
    splitter = KFold(k, shuffle=True, random_state=seed)
    if stratify:
        _, counts = np.unique(labels, return_counts=True)
        if len(counts) > 1 and counts.min() >= k:
            splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    everything = np.arange(n)
    folds = []
    for _, valid in splitter.split(recent, labels):
        valid_rows = np.sort(recent[valid])
        folds.append((np.setdiff1d(everything, valid_rows, assume_unique=True), valid_rows))
    return folds
