"""Column profiles: the summary of a Dataset version (and of a feature table) that
drift detection compares live traffic with.

How it is computed without holding the data: `Profiler.update(batch)` is called once per
batch/file (pass 1) and keeps, per column,
- exact counts, missing counts, min and max, and mean/variance as (n, mean, M2) merged
  with Chan et al.'s parallel formula;
- (for all numeric columns together) a bottom-k sample of SAMPLE_SIZE rows keyed by each
  row's content hash (the rows whose hashes are smallest). That is a uniform sample that
  does not depend on how the rows were split into files or batches, and two samples merge
  by keeping the k smallest keys. Quantiles come from its non-missing values; they are
  exact whenever the data has at most SAMPLE_SIZE rows (`quantilesExact`);
- exact value counts of categorical columns (pruned to the most frequent PRUNE_TO values if
  more than MAX_TRACKED distinct values show up; `topCategoriesExact` then turns false).
Histograms need the final min/max for their edges, so they take a second pass:
`Profiler.start_histograms()` fixes equal-width edges over [min, max], then
`update_histograms(batch)` (or `update_histogram_arrays`) is fed the same batches again —
the ingest keeps pass 1's numeric arrays while they fit a memory budget and otherwise re-reads
its local Parquet snapshot — and counts are exact. A constant column gets the edges
[v - 0.5, v + 0.5]. `profile_frame(frame)` does both passes over an in-memory frame.

The JSON shape (`Profiler.result()`, written as profile.json):

    {
      "kind": "kadence.dev/profile", "version": 1,
      "rows": 1000,
      "columns": {
        "<numeric column (float, int, bool)>": {
          "type": "float", "count": 990, "missing": 10,
          "min": 0.0, "max": 9.5, "mean": 4.1, "std": 2.0,        # std with ddof=1, as pandas
          "quantiles": {"0.01": …, "0.05": …, "0.25": …, "0.5": …, "0.75": …, "0.95": …, "0.99": …},
          "quantilesExact": true,
          "histogram": {"edges": [21 ascending numbers], "counts": [20 integers]}
                       # np.histogram convention: bins [e_i, e_i+1), the last one closed
        },
        "<categorical column (category, string, bool)>": {
          "type": "category", "count": 990, "missing": 10, "distinct": 3,
          "topCategories": [{"value": "a", "count": 500}, …],   # at most TOP_CATEGORIES, by count desc
          "otherCount": 0,                                     # count of values not listed
          "topCategoriesExact": true
        },
        "<datetime column>": {"type": "datetime", "count": …, "missing": …,
                              "min": "2024-01-01T00:00:00+00:00", "max": "…"}
      }
    }

Bool columns get both the numeric fields (mean = share of true) and the categorical ones.
A column whose values are all missing has count 0 and null statistics.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .versioning import row_hashes

PROFILE_KIND = "kadence.dev/profile"
SAMPLE_SIZE = 100_000
HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20
MAX_TRACKED = 50_000
PRUNE_TO = 10_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
NUMERIC = ("float", "int", "bool")
CATEGORICAL = ("category", "string", "bool")


def _float_values(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _clean(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def batch_moments(values: np.ndarray) -> tuple[int, int, float, float, float, float]:
    """(missing, count, mean, M2, min, max) of one batch's float64 values (NaN = missing)."""
    present = ~np.isnan(values)
    kept = values[present]
    n = len(kept)
    if n == 0:
        return len(values), 0, 0.0, 0.0, math.inf, -math.inf
    mean = float(kept.mean())
    return len(values) - n, n, mean, float(((kept - mean) ** 2).sum()), float(kept.min()), float(kept.max())


class _NumericAccumulator:
    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.sample = np.empty(0, dtype=np.float64)  # set by the Profiler from its row sample
        self.range: tuple[float, float] | None = None
        self.counts: np.ndarray | None = None

    def update(self, values: np.ndarray) -> None:
        self.add_moments(batch_moments(values))

    def add_moments(self, moments: tuple[int, int, float, float, float, float]) -> None:
        """Fold in one batch's `batch_moments`: the same arithmetic in the same order whether the
        batch was summarised here or on another worker, so the merged mean and std are bit-identical."""
        missing, n, batch_mean, batch_m2, low, high = moments
        self.missing += missing
        if n == 0:
            return
        self._merge_moments(n, batch_mean, batch_m2)
        self.min = min(self.min, low)
        self.max = max(self.max, high)

    def _merge_moments(self, n: int, mean: float, m2: float) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def merge(self, other: "_NumericAccumulator") -> None:
        self.missing += other.missing
        if other.count:
            self._merge_moments(other.count, other.mean, other.m2)
            self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def start_histogram(self, bins: int) -> None:
        if self.count == 0:
            return
        low, high = self.min, self.max
        if low == high:
            low, high = low - 0.5, high + 0.5
        self.range = (low, high)
        self.counts = np.zeros(bins, dtype=np.int64)

    def update_histogram(self, values: np.ndarray) -> None:
        if self.range is None or self.counts is None:
            return
        values = values[~np.isnan(values)]
        # bins + range (not an edges array) takes numpy's equal-width path, which needs no sort
        counts, _ = np.histogram(values, bins=len(self.counts), range=self.range)
        self.counts += counts

    def result(self, sample_exact: bool) -> dict:
        out: dict[str, Any] = {"count": self.count, "missing": self.missing}
        if self.count == 0:
            out.update({"min": None, "max": None, "mean": None, "std": None, "quantiles": None,
                        "quantilesExact": True, "histogram": None})
            return out
        std = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0
        sample = self.sample[~np.isnan(self.sample)]
        quantiles = np.quantile(sample, QUANTILES) if len(sample) else [math.nan] * len(QUANTILES)
        out.update({
            "min": _clean(self.min), "max": _clean(self.max), "mean": _clean(self.mean), "std": _clean(std),
            "quantiles": {str(q): _clean(float(v)) for q, v in zip(QUANTILES, quantiles)},
            "quantilesExact": sample_exact,
        })
        if self.range is not None and self.counts is not None:
            edges = np.linspace(self.range[0], self.range[1], len(self.counts) + 1)
            out["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in self.counts]}
        return out


class _CategoryAccumulator:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.count = 0
        self.missing = 0
        self.exact = True

    def update(self, series: pd.Series) -> None:
        present = series.dropna()
        self.missing += len(series) - len(present)
        self.count += len(present)
        if len(present) == 0:
            return
        if pd.api.types.is_bool_dtype(present.dtype):
            present = present.map({True: "true", False: "false"})
        # unsorted counts, as plain lists: Series.to_dict boxes value by value, several times slower
        # on a high-cardinality column (the order does not matter: results rank by count, then value)
        counts = present.astype(str).value_counts(sort=False)
        self.counts.update(dict(zip(counts.index.tolist(), counts.tolist())))
        self._prune()

    def merge(self, other: "_CategoryAccumulator") -> None:
        self.count += other.count
        self.missing += other.missing
        self.exact = self.exact and other.exact
        self.counts.update(other.counts)
        self._prune()

    def _prune(self) -> None:
        if len(self.counts) > MAX_TRACKED:
            self.counts = Counter(dict(self._ranked()[:PRUNE_TO]))
            self.exact = False

    def _ranked(self) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))

    def result(self) -> dict:
        top = self._ranked()[:TOP_CATEGORIES]
        listed = sum(count for _, count in top)
        return {
            "count": self.count,
            "missing": self.missing,
            "distinct": len(self.counts),
            "topCategories": [{"value": value, "count": int(count)} for value, count in top],
            "otherCount": int(self.count - listed),
            "topCategoriesExact": self.exact,
        }


class _DatetimeAccumulator:
    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.min: pd.Timestamp | None = None
        self.max: pd.Timestamp | None = None

    def update(self, series: pd.Series) -> None:
        present = series.dropna()
        self.missing += len(series) - len(present)
        self.count += len(present)
        if len(present):
            low, high = present.min(), present.max()
            self.min = low if self.min is None else min(self.min, low)
            self.max = high if self.max is None else max(self.max, high)

    def merge(self, other: "_DatetimeAccumulator") -> None:
        self.count += other.count
        self.missing += other.missing
        for value in (other.min, other.max):
            if value is not None:
                self.min = value if self.min is None else min(self.min, value)
                self.max = value if self.max is None else max(self.max, value)

    def result(self) -> dict:
        return {"count": self.count, "missing": self.missing,
                "min": self.min.isoformat() if self.min is not None else None,
                "max": self.max.isoformat() if self.max is not None else None}


class Profiler:
    """Accumulates a profile over batches; mergeable (`merge`) across files or workers."""

    def __init__(self, column_types: Mapping[str, str], bins: int = HISTOGRAM_BINS):
        self.column_types = dict(column_types)
        self.bins = bins
        self.rows = 0
        self.numeric = {c: _NumericAccumulator() for c, t in self.column_types.items() if t in NUMERIC}
        self.categorical = {c: _CategoryAccumulator() for c, t in self.column_types.items() if t in CATEGORICAL}
        self.datetimes = {c: _DatetimeAccumulator() for c, t in self.column_types.items() if t == "datetime"}
        self.sample_keys = np.empty(0, dtype=np.uint64)
        # one row per sampled row, one column per numeric column (in self.numeric's order)
        self.sample_rows = np.empty((0, len(self.numeric)), dtype=np.float64)

    def update(self, frame: pd.DataFrame, hashes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Pass 1 over one batch. `hashes` are the batch's row hashes when already known.
        Returns the numeric columns as float64 arrays (what pass 2 needs, if the caller keeps them)."""
        keys = row_hashes(frame) if hashes is None else hashes
        self.rows += len(frame)
        values = {column: _float_values(frame[column]) for column in self.numeric}
        for column, accumulator in self.numeric.items():
            accumulator.update(values[column])
        self._sample_batch(keys, values)
        for column, accumulator in self.categorical.items():
            accumulator.update(frame[column])
        for column, accumulator in self.datetimes.items():
            accumulator.update(frame[column])
        return values

    def _sample_batch(self, keys: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Offer a batch's rows to the sample; only rows that can enter it are gathered."""
        if len(self.sample_keys) >= SAMPLE_SIZE:
            candidates = np.flatnonzero(keys < self.sample_keys.max())
        else:
            candidates = np.arange(len(keys))
        rows = np.empty((len(candidates), len(self.numeric)), dtype=np.float64)
        for index, column in enumerate(self.numeric):
            rows[:, index] = values[column][candidates]
        self._merge_sample(keys[candidates], rows)

    def _merge_sample(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Keep the SAMPLE_SIZE rows with the smallest row hashes. Rows with equal hashes are
        identical rows, so which of them is kept does not change the sample's values."""
        all_keys = np.concatenate([self.sample_keys, keys])
        all_rows = np.concatenate([self.sample_rows, rows])
        if len(all_keys) > SAMPLE_SIZE:
            chosen = np.argpartition(all_keys, SAMPLE_SIZE - 1)[:SAMPLE_SIZE]
            all_keys, all_rows = all_keys[chosen], all_rows[chosen]
        self.sample_keys, self.sample_rows = all_keys, all_rows

    def merge(self, other: "Profiler", numeric: bool = True) -> "Profiler":
        """Add `other`'s rows. `numeric=False` leaves the numeric moments out, for a caller that
        folds them in batch by batch (`_NumericAccumulator.add_moments`) to stay bit-identical."""
        if other.column_types != self.column_types:
            raise ValueError("cannot merge profiles of different columns")
        self.rows += other.rows
        self._merge_sample(other.sample_keys, other.sample_rows)
        groups = [(self.categorical, other.categorical), (self.datetimes, other.datetimes)]
        for group, other_group in [(self.numeric, other.numeric)] * numeric + groups:
            for column, accumulator in group.items():
                accumulator.merge(other_group[column])
        return self

    def start_histograms(self) -> None:
        for accumulator in self.numeric.values():
            accumulator.start_histogram(self.bins)

    def numeric_columns(self) -> list[str]:
        return list(self.numeric)

    def update_histograms(self, frame: pd.DataFrame) -> None:
        """Pass 2 over one batch (after start_histograms)."""
        self.update_histogram_arrays({column: _float_values(frame[column]) for column in self.numeric})

    def update_histogram_arrays(self, values: Mapping[str, np.ndarray]) -> None:
        """Pass 2 over one batch given as float64 arrays (NaN = missing) of the numeric columns."""
        for column, accumulator in self.numeric.items():
            accumulator.update_histogram(values[column])

    def column(self, name: str) -> dict:
        kind = self.column_types[name]
        out: dict[str, Any] = {"type": kind}
        if name in self.numeric:
            accumulator = self.numeric[name]
            accumulator.sample = self.sample_rows[:, list(self.numeric).index(name)]
            out.update(accumulator.result(sample_exact=self.rows <= SAMPLE_SIZE))
        if name in self.categorical:
            out.update(self.categorical[name].result())
        if name in self.datetimes:
            out.update(self.datetimes[name].result())
        return out

    def result(self) -> dict:
        return {"kind": PROFILE_KIND, "version": 1, "rows": self.rows,
                "columns": {name: self.column(name) for name in self.column_types}}


def profile_batches(batches: Iterable[pd.DataFrame], column_types: Mapping[str, str],
                    bins: int = HISTOGRAM_BINS) -> dict:
    """Both passes over a re-iterable collection of batches (e.g. a list of frames)."""
    batches = list(batches) if not isinstance(batches, (list, tuple)) else batches
    profiler = Profiler(column_types, bins)
    for batch in batches:
        profiler.update(batch)
    profiler.start_histograms()
    for batch in batches:
        profiler.update_histograms(batch)
    return profiler.result()


def profile_frame(frame: pd.DataFrame, column_types: Mapping[str, str] | None = None,
                  bins: int = HISTOGRAM_BINS) -> dict:
    """The profile of an in-memory frame; types are inferred when not given."""
    if column_types is None:
        from .transforms import infer_column_types

        column_types = infer_column_types(frame)
    return profile_batches([frame], column_types, bins)
