"""Data drift per feature, and whether the input as a whole drifted.

A reference is built once, either from a raw sample (`reference_from_sample`, e.g. the
training data) or from a Dataset profile (`reference_from_profile`), and compared with the
current window of inputs by `evaluate_drift`.

Methods and their scores (all "higher means more drift" except the two tests):

- `psi`: population stability index over buckets cut at the reference's deciles (or, for a
  profile, at its quantiles/histogram edges). Each cut value also gets a bucket of its own,
  so a point mass (a constant or discrete column) is compared as such; values below the
  reference minimum or above its maximum fall in outer buckets. Empty buckets are clipped
  to a share of 1e-4 (as Evidently does) so the score stays finite. Default threshold 0.2.
- `ks`: two-sample Kolmogorov–Smirnov test; the score is the p-value and a feature drifted
  when it is below the threshold (default 0.05). Large samples use Stephens' approximation
  of the p-value (see `_ks_p_value`). With a profile as reference, the
  reference CDF is the piecewise-linear CDF through the profile's quantiles, and the test
  uses the profile's count as the reference sample size.
- `wasserstein`: the earth mover's distance divided by the reference's standard deviation
  (at least 0.001, as Evidently), so 0.1 means "moved by a tenth of a standard deviation".
  Default threshold 0.1.
- `jensenshannon`: the Jensen–Shannon distance (base 2, in [0, 1]) between the bucket shares
  (numeric) or category shares (categorical). Default threshold 0.1.
- `chisquared`: chi-squared test of homogeneity on the reference-versus-current category
  counts (a category seen only in the window counts as such); the score is the p-value.
  Default threshold 0.05.

Multiple testing: with many features, a p-value threshold of 0.05 flags about one feature
in twenty by chance. By default (`multipleTesting: bonferroni`) the p-value threshold is
divided by the number of features judged with a test (ks, chisquared) in the evaluation.

KS and Wasserstein need an order, so a categorical column whose policy-wide method is one of
them is judged with chi-squared; a numeric column whose policy-wide method is chi-squared
is judged with PSI. Naming such a method for one feature explicitly is an error.

Missing values (None, NaN, ±inf) are left out of the distributions and reported as the
missing share of each side. A feature that cannot be judged (no reference, nothing in the
window) has no score, a status and a message saying why; it never counts as "no drift".

How it is computed: each numeric column of a sample reference is sorted once; its deciles
and bucket shares read the sorted array. A window's column is sorted only when KS or
Wasserstein need it (PSI and JS count it against the cut points by comparison, ten times
cheaper than a sort), and then once for both: the KS statistic and the Wasserstein distance
come from one merge of the two sorted columns (`ks_and_wasserstein`), so every method a
policy enables costs little more than two sorts and one binary search per column. Large windows are judged a column per thread: numpy's sorts and searches
release the GIL. Results are the exact values scipy computes (up to float rounding).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, TypeVar

import numpy as np

EPSILON = 1e-4
MIN_STD = 1e-3
DEFAULT_BINS = 10
# Columns are judged on threads when there is this much data (rows x columns): numpy's sorts
# and binary searches release the GIL, so the columns' work overlaps on several cores.
PARALLEL_MIN_VALUES = 200_000
MAX_THREADS = 8

NUMERIC_METHODS = ("psi", "ks", "wasserstein", "jensenshannon")
CATEGORICAL_METHODS = ("psi", "jensenshannon", "chisquared")
P_VALUE_METHODS = ("ks", "chisquared")
DEFAULT_THRESHOLDS = {"psi": 0.2, "ks": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1, "chisquared": 0.05}

Kind = Literal["numeric", "categorical"]

# Why a feature has no score.
JUDGED = "Judged"
NO_REFERENCE = "NoReference"
EMPTY_REFERENCE = "EmptyReference"
NOT_IN_WINDOW = "NotInWindow"
NO_VALUES_IN_WINDOW = "NoValuesInWindow"


class DriftConfigError(ValueError):
    """A drift setting that cannot apply, e.g. KS for a categorical feature."""


class ReferenceFormatError(ValueError):
    """A reference (sample or profile) that cannot be used."""


# ---------------------------------------------------------------------------------------
# References


@dataclass(frozen=True)
class NumericReference:
    """What drift needs to know about one numeric column of the reference.

    `cdf_values`/`cdf_levels` are points of the reference CDF (increasing values, levels in
    [0, 1] from 0 at the minimum to 1 at the maximum); with a raw sample, `sample` holds
    its finite values, sorted, and is used wherever an exact answer is cheap.
    """

    count: int
    missing: int
    std: float
    cut_points: np.ndarray  # unique, increasing; the bucket edges
    bucket_shares: np.ndarray  # len 2 * len(cut_points) + 1, see `sorted_bucket_counts`
    cdf_values: np.ndarray
    cdf_levels: np.ndarray
    sample: np.ndarray | None = None  # the raw sample's finite values, sorted
    kind: Kind = "numeric"

    @property
    def sorted_values(self) -> np.ndarray | None:
        return self.sample

    def cdf(self, x: np.ndarray) -> np.ndarray:
        if self.sample is not None:
            return np.searchsorted(self.sorted_values, x, side="right") / self.count
        values, _, right = _cdf_sides(self.cdf_values, self.cdf_levels)
        return np.interp(x, values, right, left=0.0, right=1.0)

    def cdf_before(self, x: np.ndarray) -> np.ndarray:
        """The CDF's left limit (differs from `cdf` at a point mass)."""
        if self.sample is not None:
            return np.searchsorted(self.sorted_values, x, side="left") / self.count
        values, left, _ = _cdf_sides(self.cdf_values, self.cdf_levels)
        return np.interp(x, values, left, left=0.0, right=1.0)

    def quantile(self, levels: np.ndarray) -> np.ndarray:
        if self.sample is not None:
            return sorted_quantiles(self.sample, levels)
        return _inverse_cdf(self.cdf_values, self.cdf_levels, levels)


@dataclass(frozen=True)
class CategoricalReference:
    count: int
    missing: int
    category_counts: dict[str, int]  # an "other" remainder from a profile is left out
    other: int = 0  # reference values in categories the profile did not list
    kind: Kind = "categorical"


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class Reference:
    columns: dict[str, ColumnReference]
    source: str  # "sample" or "profile"

    def __post_init__(self) -> None:
        if not self.columns:
            raise ReferenceFormatError("the reference has no columns")


def _counts_from_bounds(below: Any, upto: Any, size: int) -> np.ndarray:
    bounds = np.empty(2 * len(below) + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, size
    bounds[1:-1:2] = below
    bounds[2:-1:2] = upto
    return np.diff(bounds)


def sorted_bucket_counts(ordered: np.ndarray, cut_points: np.ndarray) -> np.ndarray:
    """Counts of sorted values in the buckets of `cut_points`: bucket 2i+1 holds the values
    equal to cut point i, bucket 2i those strictly between cut points i-1 and i (bucket 0:
    below the first, bucket 2k: above the last). Two binary searches per cut point."""
    return _counts_from_bounds(np.searchsorted(ordered, cut_points, side="left"),
                               np.searchsorted(ordered, cut_points, side="right"), len(ordered))


def bucket_counts(values: np.ndarray, cut_points: np.ndarray) -> np.ndarray:
    """`sorted_bucket_counts` of values in any order. For the few cut points of deciles, two
    vectorised comparisons per cut point count them about ten times faster than sorting
    them (or than a binary search per value); for many cut points, the sort wins."""
    if len(cut_points) > 32:
        return sorted_bucket_counts(np.sort(values), cut_points)
    flags = np.empty(len(values), dtype=bool)
    below = [np.count_nonzero(np.less(values, c, out=flags)) for c in cut_points]
    upto = [np.count_nonzero(np.less_equal(values, c, out=flags)) for c in cut_points]
    return _counts_from_bounds(below, upto, len(values))


def sorted_quantiles(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """`np.quantile(values, levels)` (its default, linear method) of sorted values without the
    partition pass np.quantile makes: the same indexes and the same interpolation arithmetic
    as numpy's `_lerp`, so the same numbers to the last bit."""
    last = len(ordered) - 1
    virtual = last * np.asarray(levels, dtype=float)
    previous = np.floor(virtual)
    gamma = virtual - previous
    low = np.clip(previous.astype(np.intp), 0, last)
    below, above = ordered[low], ordered[np.minimum(low + 1, last)]
    step = above - below
    result = below + step * gamma
    np.subtract(above, step * (1 - gamma), out=result, where=gamma >= 0.5)
    return result


def _as_floats(values: Any) -> np.ndarray:
    import pandas as pd

    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "fiu" and isinstance(values, (pd.Series, np.ndarray)):
        return np.asarray(values, dtype=float)  # no copy for float64
    series = pd.to_numeric(pd.Series(values), errors="coerce")
    return series.to_numpy(dtype=float, na_value=np.nan)


def finite_values(values: Any) -> tuple[np.ndarray, int]:
    """Finite floats of a column and how many entries were missing or not numeric."""
    array = _as_floats(values)
    finite = np.isfinite(array)
    if finite.all():
        return array, 0
    kept = array[finite]
    return kept, len(array) - len(kept)


def category_values(values: Any) -> tuple[np.ndarray, int]:
    import pandas as pd

    series = pd.Series(values)
    present = series[series.notna()]
    inferred = pd.api.types.infer_dtype(present, skipna=True)
    if inferred == "boolean" or (inferred.startswith("mixed") and present.map(
            lambda v: isinstance(v, (bool, np.bool_))).any()):
        # JSON spelling, as the profile writes booleans
        present = present.map(lambda v: ("true" if v else "false") if isinstance(v, (bool, np.bool_)) else v)
    return present.astype(str).to_numpy(dtype=object), len(series) - len(present)


def category_counts(present: np.ndarray) -> dict[str, int]:
    """How often each category occurs, by name (hashing, not sorting, the values)."""
    import pandas as pd

    counts = pd.Series(present, dtype=object).value_counts(sort=False)
    return {str(name): int(count) for name, count in sorted(counts.items())}


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def numeric_reference_from_values(values: Any, bins: int = DEFAULT_BINS) -> NumericReference:
    """The sample is sorted once: its deciles, bucket shares, KS and Wasserstein all read the
    sorted array (a sort costs about what np.quantile's partition plus one bucketing pass do)."""
    finite, missing = finite_values(values)
    if len(finite) == 0:
        return NumericReference(count=0, missing=missing, std=0.0, cut_points=np.empty(0),
                                bucket_shares=np.ones(1), cdf_values=np.empty(0), cdf_levels=np.empty(0))
    ordered = np.sort(finite)
    cut_points = np.unique(sorted_quantiles(ordered, np.linspace(0, 1, bins + 1)))
    shares = sorted_bucket_counts(ordered, cut_points) / len(ordered)
    return NumericReference(
        count=len(ordered), missing=missing, std=float(np.std(finite)), cut_points=cut_points,
        bucket_shares=shares, cdf_values=ordered[[0, -1]], cdf_levels=np.array([0.0, 1.0]), sample=ordered,
    )


def categorical_reference_from_values(values: Any) -> CategoricalReference:
    present, missing = category_values(values)
    return CategoricalReference(count=int(len(present)), missing=missing, category_counts=category_counts(present))


_T = TypeVar("_T")
_R = TypeVar("_R")


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def map_columns(work: Callable[[_T], _R], items: Sequence[_T], values: int) -> list[_R]:
    """`work` over the columns in order; on threads when `values` (rows x columns) is large
    enough for the GIL-free numpy work to outweigh starting them."""
    workers = min(len(items), _available_cpus(), MAX_THREADS)
    if workers < 2 or values < PARALLEL_MIN_VALUES:
        return [work(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="drift") as pool:
        return list(pool.map(work, items))


def reference_from_sample(frame: Any, categorical: Iterable[str] = (), bins: int = DEFAULT_BINS) -> Reference:
    """A reference from a raw sample (a DataFrame). Numeric dtypes are numeric columns unless
    named in `categorical`; everything else (strings, booleans, categories) is categorical."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ReferenceFormatError(f"a reference sample must be a DataFrame, not {type(frame).__name__}")
    if bins < 2:
        raise ReferenceFormatError(f"bins must be at least 2, got {bins}")
    forced = set(categorical)
    unknown = forced - set(frame.columns)
    if unknown:
        raise ReferenceFormatError(f"categorical columns not in the reference: {sorted(unknown)}")

    def build(name: Any) -> ColumnReference:
        series = frame[name]
        if _is_numeric(series) and name not in forced:
            return numeric_reference_from_values(series, bins)
        return categorical_reference_from_values(series)

    names = list(frame.columns)
    built = map_columns(build, names, len(frame) * len(names))
    return Reference(columns={str(n): c for n, c in zip(names, built)}, source="sample")


def _number(column: Mapping[str, Any], key: str, name: str, default: Any = None) -> Any:
    value = column.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ReferenceFormatError(f"profile column {name!r}: {key} must be a finite number, got {value!r}")
    return value


def _profile_cdf_points(column: Mapping[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, levels) of the reference CDF, sorted by value, from a profile column's
    quantiles and histogram (both when present: the histogram's counts are exact, the
    quantiles resolve the tails), anchored at min (level 0) and max (level 1)."""
    low, high = _number(column, "min", name), _number(column, "max", name)
    points: list[tuple[float, float]] = []
    quantiles = column.get("quantiles")
    histogram = column.get("histogram")
    if quantiles:
        items = quantiles.items() if isinstance(quantiles, Mapping) else [(q.get("q"), q.get("value")) for q in quantiles]
        for level, value in items:
            try:
                points.append((float(value), float(level)))
            except (TypeError, ValueError) as error:
                raise ReferenceFormatError(f"profile column {name!r}: bad quantile {level!r}: {value!r}") from error
    if histogram:
        edges = np.asarray(histogram.get("edges") or histogram.get("bins") or [], dtype=float)
        counts = np.asarray(histogram.get("counts") or [], dtype=float)
        if len(edges) != len(counts) + 1 or len(counts) == 0 or counts.sum() <= 0:
            raise ReferenceFormatError(
                f"profile column {name!r}: histogram needs n+1 bin edges for n counts, with some count")
        levels = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
        points.extend(zip(edges.tolist(), levels.tolist()))
    if low is not None:
        points.append((float(low), 0.0))
    if high is not None:
        points.append((float(high), 1.0))
    if not points:
        raise ReferenceFormatError(f"profile column {name!r} has neither quantiles, a histogram nor min/max")
    if any(not 0 <= level <= 1 for _, level in points):
        raise ReferenceFormatError(f"profile column {name!r}: quantile levels must lie in [0, 1]")
    points.sort()
    values = np.array([p[0] for p in points])
    # a sampled quantile may disagree slightly with exact histogram counts: keep the CDF monotone
    levels = np.maximum.accumulate(np.array([p[1] for p in points]))
    if low is None:
        values, levels = np.concatenate([[values[0]], values]), np.concatenate([[0.0], levels])
    if high is None:
        values, levels = np.concatenate([values, [values[-1]]]), np.concatenate([levels, [1.0]])
    return values, levels


def _inverse_cdf(values: np.ndarray, levels: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The quantile function of CDF points sorted by value (non-decreasing levels): linear
    between points, and a jump (the same value at two levels) maps a whole range of levels
    to its value."""
    return np.interp(at, levels, values)


def _cdf_sides(values: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values with the CDF's left limit and value there (they differ at a point mass)."""
    distinct, first = np.unique(values, return_index=True)
    last = np.append(first[1:] - 1, len(values) - 1)
    return distinct, levels[first], levels[last]


def _shares_from_cdf(values: np.ndarray, levels: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut points at the CDF's deciles (like a sample's) and the reference share of each bucket."""
    distinct, left, right = _cdf_sides(values, levels)
    cut_points = np.unique(_inverse_cdf(values, levels, np.linspace(0, 1, bins + 1)))
    below = np.interp(cut_points, distinct, left, left=0.0, right=1.0)  # F(c-)
    upto = np.interp(cut_points, distinct, right, left=0.0, right=1.0)  # F(c)
    shares = np.empty(2 * len(cut_points) + 1)
    shares[0] = below[0]
    shares[1::2] = upto - below
    shares[2:-1:2] = below[1:] - upto[:-1]
    shares[-1] = 1.0 - upto[-1]
    return cut_points, np.clip(shares, 0.0, None)


def _integer_point_masses(column: Mapping[str, Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A step CDF for an integer column whose histogram bins are narrower than 1, so that each
    bin holds at most one integer and its count is that integer's exact count. Otherwise
    (wider bins) None, and the column is treated as continuous."""
    histogram = column.get("histogram") or {}
    edges = np.asarray(histogram.get("edges") or histogram.get("bins") or [], dtype=float)
    counts = np.asarray(histogram.get("counts") or [], dtype=float)
    if len(edges) != len(counts) + 1 or len(counts) == 0 or counts.sum() <= 0:
        return None, None
    if edges[-1] - edges[0] >= len(counts):
        return None, None
    integers = np.ceil(edges[:-1] - 1e-9)  # the one integer in [e_i, e_i+1), despite rounding of e_i
    present = counts > 0
    integers, counts = integers[present], counts[present]
    after = np.cumsum(counts) / counts.sum()
    before = np.concatenate([[0.0], after[:-1]])
    # each integer appears twice: its left limit, then its value
    return np.repeat(integers, 2), np.column_stack([before, after]).ravel()


def numeric_reference_from_profile(column: Mapping[str, Any], name: str) -> NumericReference:
    count = int(_number(column, "count", name, 0))
    missing = int(_number(column, "missing", name, 0))
    if count <= 0:
        return NumericReference(count=0, missing=missing, std=0.0, cut_points=np.empty(0),
                                bucket_shares=np.ones(1), cdf_values=np.empty(0), cdf_levels=np.empty(0))
    values, levels = _integer_point_masses(column) if column.get("type") == "int" else (None, None)
    if values is None:
        values, levels = _profile_cdf_points(column, name)
    cut_points, shares = _shares_from_cdf(values, levels, DEFAULT_BINS)
    return NumericReference(
        count=count, missing=missing, std=float(_number(column, "std", name, 0.0)), cut_points=cut_points,
        bucket_shares=shares, cdf_values=values, cdf_levels=levels,
    )


def categorical_reference_from_profile(column: Mapping[str, Any], name: str) -> CategoricalReference:
    count = int(_number(column, "count", name, 0))
    missing = int(_number(column, "missing", name, 0))
    top = column.get("topCategories") or column.get("top_categories") or column.get("categories") or []
    if isinstance(top, Mapping):
        top = [{"value": k, "count": v} for k, v in top.items()]
    counts: dict[str, int] = {}
    for entry in top:
        if not isinstance(entry, Mapping) or "value" not in entry or "count" not in entry:
            raise ReferenceFormatError(f"profile column {name!r}: a top category needs value and count, got {entry!r}")
        counts[str(entry["value"])] = int(entry["count"])
    listed = sum(counts.values())
    if listed > count:
        raise ReferenceFormatError(f"profile column {name!r}: top categories count {listed} > column count {count}")
    return CategoricalReference(count=count, missing=missing, category_counts=counts, other=count - listed)


def reference_from_profile(profile: Mapping[str, Any]) -> Reference:
    """A reference from a Dataset profile (`kadence.domain.data.profile`, profile.json):
    `{"columns": {name: column}}` (or a list of columns with a `name`). Columns of type
    float/int are numeric, category/string/bool categorical (as for a raw sample), datetime
    columns are skipped; without a type, quantiles or a histogram mean numeric."""
    if not isinstance(profile, Mapping):
        raise ReferenceFormatError("a profile must be a JSON object")
    columns = profile.get("columns")
    if isinstance(columns, list):
        columns = {c.get("name"): c for c in columns if isinstance(c, Mapping)}
    if not isinstance(columns, Mapping) or not columns:
        raise ReferenceFormatError("a profile needs a non-empty `columns` object")
    result: dict[str, ColumnReference] = {}
    for name, column in columns.items():
        if not isinstance(column, Mapping):
            raise ReferenceFormatError(f"profile column {name!r} must be an object")
        kind = column.get("kind") or column.get("type")
        if kind == "datetime":
            continue  # not judged for drift; reported as NoReference if it is an input
        numeric_like = any(column.get(k) is not None for k in ("quantiles", "histogram", "mean"))
        categorical_like = any(column.get(k) is not None for k in ("topCategories", "top_categories", "categories"))
        if kind in ("numeric", "int", "integer", "float", "number") or (
                kind is None and numeric_like and not categorical_like):
            result[str(name)] = numeric_reference_from_profile(column, str(name))
        else:
            result[str(name)] = categorical_reference_from_profile(column, str(name))
    return Reference(columns=result, source="profile")


# ---------------------------------------------------------------------------------------
# Scores


def psi(reference_shares: np.ndarray, current_shares: np.ndarray, epsilon: float = EPSILON) -> float:
    r = np.clip(reference_shares, epsilon, None)
    c = np.clip(current_shares, epsilon, None)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(reference_shares, current_shares, base=2))


def _ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided p-value of the KS statistic. Up to an effective size of 10,000 scipy's exact
    finite-n distribution (`kstwo`, what `ks_2samp(method="asymp")` uses); above, Stephens'
    corrected Kolmogorov limit, within 0.5 % of `kstwo` for p >= 1e-4 and free of `kstwo`'s
    slow cases (up to 50 ms per call on large samples)."""
    from scipy.stats import kstwo, kstwobign

    effective = n_reference * n_current / (n_reference + n_current)
    if effective <= 10_000:
        return float(np.clip(kstwo.sf(statistic, round(effective)), 0.0, 1.0))
    root = math.sqrt(effective)
    return float(np.clip(kstwobign.sf(statistic * (root + 0.12 + 0.11 / root)), 0.0, 1.0))


def ks_and_wasserstein(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The KS statistic sup |F_a - F_b| and the Wasserstein distance, the integral of
    |F_a - F_b|, of two sorted, non-empty samples, from one merge of the two: a binary search
    of a in b gives each a value its slot in the merged order (after the b values below it),
    and the b values fill the other slots in order. Between two consecutive merged values both
    ECDFs are flat, at i/m and j/n after i values of a and j of b, so |F_a - F_b| there is
    |i*n - j*m| / (m*n), an integer kept exactly in a float up to 2**53. Tied values have no
    width between them, so only the last of a run of ties counts towards the supremum."""
    m, n = len(a), len(b)
    total = m + n
    slots = np.arange(m) + np.searchsorted(b, a, side="left")
    from_a = np.zeros(total, dtype=bool)
    from_a[slots] = True
    merged = np.empty(total, dtype=np.result_type(a.dtype, b.dtype, np.float64))
    merged[slots] = a
    merged[np.flatnonzero(~from_a)] = b  # integer indexes: much faster than a boolean mask here
    # i*n - j*m = i*(m+n) - (k+1)*m after the k-th merged value; the last one (F_a = F_b = 1)
    # is left out. In place, as these arrays are the size of both samples.
    # (numpy's cumsum of bools into int32 is ten times faster than into int64 or float64)
    gaps = np.cumsum(from_a[:-1], dtype=np.int32 if total < 2**31 else np.int64).astype(np.float64)
    gaps *= total
    gaps -= np.arange(1, total, dtype=np.float64) * m
    np.abs(gaps, out=gaps)
    widths = np.diff(merged)
    scale = float(m) * n
    statistic = np.max(gaps, where=widths > 0, initial=0.0) / scale
    gaps *= widths  # not np.dot: BLAS's threads stall on a busy machine, and this is no slower
    return float(statistic), float(np.sum(gaps)) / scale


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """sup |F_a - F_b| of two sorted samples (see `ks_and_wasserstein`)."""
    return ks_and_wasserstein(a, b)[0]


def wasserstein_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """The Wasserstein (earth mover's) distance of two sorted samples (see `ks_and_wasserstein`)."""
    return ks_and_wasserstein(a, b)[1]


def ks_p_value_exact(reference: NumericReference, current_sorted: np.ndarray) -> float:
    """scipy's exact two-sided test, for samples of at most 10,000 values."""
    from scipy.stats import ks_2samp

    return float(ks_2samp(reference.sample, current_sorted).pvalue)


def ks_statistic_from_profile(reference: NumericReference, current_sorted: np.ndarray) -> float:
    """sup |F_ref - F_cur| with the profile's piecewise-linear CDF: between two current values
    the step CDF is flat and the reference CDF monotone, so the largest gap lies at a current
    value or just below one."""
    n = len(current_sorted)
    ref_at = reference.cdf(current_sorted)
    after = np.searchsorted(current_sorted, current_sorted, side="right") / n
    before = np.searchsorted(current_sorted, current_sorted, side="left") / n
    ref_before = reference.cdf_before(current_sorted)
    return float(max(np.max(np.abs(ref_at - after)), np.max(np.abs(ref_before - before))))


def wasserstein_from_profile(reference: NumericReference, current_sorted: np.ndarray) -> float:
    """The distance (unscaled) by integrating |Q_ref(u) - Q_cur(u)| over u on a fine grid."""
    levels = (np.arange(2000) + 0.5) / 2000
    return float(np.mean(np.abs(reference.quantile(levels) - sorted_quantiles(current_sorted, levels))))


def chi_squared(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value of the chi-squared test of homogeneity on a 2 x k table (no Yates correction)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0  # one category on both sides: nothing differs
    return float(chi2_contingency(table, correction=False).pvalue)


# ---------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True)
class FeatureDriftResult:
    feature: str
    kind: Kind | None
    method: str | None
    score: float | None  # None when not judged
    threshold: float | None  # the effective threshold (after the multiple-testing correction)
    drifted: bool
    status: str  # JUDGED or why not
    reference_count: int = 0
    current_count: int = 0
    reference_missing_share: float | None = None
    current_missing_share: float | None = None
    message: str | None = None  # why it was not judged, in words

    @property
    def judged(self) -> bool:
        return self.status == JUDGED


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDriftResult]
    drift_share: float  # the policy's share of drifted features that makes the input drifted
    samples: int
    multiple_testing: str

    @property
    def judged(self) -> list[FeatureDriftResult]:
        return [f for f in self.features if f.judged]

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def scores(self) -> dict[str, float]:
        return {f.feature: f.score for f in self.features if f.score is not None}

    @property
    def share_drifted(self) -> float | None:
        judged = self.judged
        return len(self.drifted_features) / len(judged) if judged else None

    @property
    def dataset_drifted(self) -> bool:
        share = self.share_drifted
        return share is not None and share >= self.drift_share

    def summary(self) -> str:
        return f"{len(self.drifted_features)}/{len(self.judged)} drifted"


@dataclass(frozen=True)
class DriftSettings:
    method: str = "psi"
    threshold: float | None = None  # None: the method's default
    per_feature: dict[str, tuple[str | None, float | None]] = field(default_factory=dict)
    drift_share: float = 0.5
    multiple_testing: str = "bonferroni"  # or "none"

    @classmethod
    def from_policy(cls, policy: Any) -> "DriftSettings":
        """From the API's DriftPolicy (kadence.api.monitorpolicy)."""
        return cls(
            method=policy.method,
            threshold=policy.threshold,
            per_feature={f.name: (f.method, f.threshold) for f in (policy.features or [])},
            drift_share=policy.drift_share,
            multiple_testing=getattr(policy, "multiple_testing", "bonferroni"),
        )

    def __post_init__(self) -> None:
        known = set(DEFAULT_THRESHOLDS)
        if self.method not in known:
            raise DriftConfigError(f"unknown drift method {self.method!r}: expected one of {sorted(known)}")
        for name, (method, _) in self.per_feature.items():
            if method is not None and method not in known:
                raise DriftConfigError(f"feature {name!r}: unknown drift method {method!r}")
        if self.multiple_testing not in ("bonferroni", "none"):
            raise DriftConfigError(f"multipleTesting must be bonferroni or none, got {self.multiple_testing!r}")
        if not 0 < self.drift_share <= 1:
            raise DriftConfigError(f"driftShare must be in (0, 1], got {self.drift_share}")

    def method_for(self, feature: str, kind: Kind) -> tuple[str, float]:
        """The method and the threshold (before correction) that judge one feature."""
        method, threshold = self.per_feature.get(feature, (None, None))
        allowed = NUMERIC_METHODS if kind == "numeric" else CATEGORICAL_METHODS
        if method is not None and method not in allowed:
            raise DriftConfigError(
                f"feature {feature!r} is {kind}; {method} does not apply (use one of {', '.join(allowed)})")
        if method is None:
            # the policy-wide method where it applies, else the default of the column's kind
            method = self.method if self.method in allowed else ("psi" if kind == "numeric" else "chisquared")
        if threshold is None and method == self.method:
            threshold = self.threshold
        return method, (threshold if threshold is not None else DEFAULT_THRESHOLDS[method])


def _score_numeric(method: str, reference: NumericReference, current: "CurrentWindow", name: str) -> float:
    if method == "ks":
        count = len(current.numeric(name)[0])
        if reference.sample is not None and max(reference.count, count) <= 10_000:
            return ks_p_value_exact(reference, current.numeric_sorted(name))
        statistic, _ = current.distances(name, reference)
        return _ks_p_value(statistic, reference.count, count)
    if method == "wasserstein":
        _, distance = current.distances(name, reference)
        return distance / max(reference.std, MIN_STD)
    current_shares = current.bucket_shares(name, reference.cut_points)
    if method == "psi":
        return psi(reference.bucket_shares, current_shares)
    if method == "jensenshannon":
        return jensen_shannon(reference.bucket_shares, current_shares)
    raise DriftConfigError(f"{method} does not apply to numeric features")


def _score_categorical(method: str, reference: CategoricalReference, current_counts: Mapping[str, int]) -> float:
    categories = sorted(set(reference.category_counts) | set(current_counts))
    ref = np.array([reference.category_counts.get(c, 0) for c in categories] + [reference.other], dtype=float)
    # values the profile lumped into "other" cannot be told apart from unseen ones; a
    # current value counts as "other" only when the profile had such a remainder
    cur = np.array([current_counts.get(c, 0) for c in categories] + [0], dtype=float)
    if reference.other > 0:
        unseen = [i for i, c in enumerate(categories) if c not in reference.category_counts]
        cur[-1] += cur[unseen].sum()
        cur[unseen] = 0
    if method == "chisquared":
        return chi_squared(ref, cur)
    ref_shares, cur_shares = ref / ref.sum(), cur / cur.sum()
    if method == "psi":
        return psi(ref_shares, cur_shares)
    if method == "jensenshannon":
        return jensen_shannon(ref_shares, cur_shares)
    raise DriftConfigError(f"{method} does not apply to categorical features")


def _missing_share(missing: int, count: int) -> float | None:
    total = missing + count
    return missing / total if total else None


class CurrentWindow:
    """The window of inputs, each column cleaned (and sorted, or its categories counted) once
    however many methods judge it, and the merge with a sample reference's column (KS and
    Wasserstein) made once for both.

    One column is never prepared by two threads at once (`evaluate_drift` gives each column
    to one task), so the caches need no lock."""

    def __init__(self, frame: Any):
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"the current window must be a DataFrame, not {type(frame).__name__}")
        self.frame = frame
        self.columns = {str(c) for c in frame.columns}
        self._numeric: dict[str, tuple[np.ndarray, int]] = {}
        self._sorted: dict[str, np.ndarray] = {}
        self._buckets: dict[tuple[str, bytes], np.ndarray] = {}
        self._distances: dict[str, tuple[NumericReference, tuple[float, float]]] = {}
        self._categorical: dict[str, tuple[np.ndarray, int]] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def numeric(self, name: str) -> tuple[np.ndarray, int]:
        """The finite values (in window order) and how many were missing."""
        if name not in self._numeric:
            self._numeric[name] = finite_values(self.frame[name])
        return self._numeric[name]

    def numeric_sorted(self, name: str) -> np.ndarray:
        if name not in self._sorted:
            self._sorted[name] = np.sort(self.numeric(name)[0])
        return self._sorted[name]

    def bucket_shares(self, name: str, cut_points: np.ndarray) -> np.ndarray:
        """Shares of the column's values in the buckets of `cut_points` (PSI and JS share them)."""
        key = (name, cut_points.tobytes())
        if key not in self._buckets:
            if name in self._sorted:
                counts = sorted_bucket_counts(self._sorted[name], cut_points)
            else:  # PSI and JS need no sort
                counts = bucket_counts(self.numeric(name)[0], cut_points)
            self._buckets[key] = counts / counts.sum()
        return self._buckets[key]

    def distances(self, name: str, reference: NumericReference) -> tuple[float, float]:
        """(KS statistic, Wasserstein distance) between the reference and the column."""
        cached = self._distances.get(name)
        if cached is None or cached[0] is not reference:
            ordered = self.numeric_sorted(name)
            if reference.sample is not None:
                found = ks_and_wasserstein(reference.sample, ordered)
            else:
                found = (ks_statistic_from_profile(reference, ordered), wasserstein_from_profile(reference, ordered))
            cached = self._distances[name] = (reference, found)
        return cached[1]

    def categorical(self, name: str) -> tuple[np.ndarray, int]:
        if name not in self._categorical:
            self._categorical[name] = category_values(self.frame[name])
        return self._categorical[name]

    def category_counts(self, name: str) -> dict[str, int]:
        if name not in self._counts:
            self._counts[name] = category_counts(self.categorical(name)[0])
        return self._counts[name]


def _unjudged_message(status: str, name: str, has_reference: bool, in_window: bool, missing: int = 0) -> str:
    if status == NO_REFERENCE and not has_reference:
        return "there is no drift reference"
    if status == NO_REFERENCE:
        also = "" if in_window else ", nor an input logged with any prediction in the window"
        return f"{name!r} is not a column of the drift reference{also}"
    if status == EMPTY_REFERENCE:
        return f"the drift reference has no values of {name!r}"
    if status == NOT_IN_WINDOW:
        return f"no prediction in the window logged the input {name!r}"
    return f"no values of {name!r} in the window ({missing} missing)"


@dataclass(frozen=True)
class _Plan:
    name: str
    reference: ColumnReference | None
    method: str | None
    threshold: float | None  # after the multiple-testing correction


def _judge(plan: _Plan, current: CurrentWindow, has_reference: bool) -> FeatureDriftResult:
    name, ref, method = plan.name, plan.reference, plan.method
    in_window = name in current.columns
    if ref is None:
        return FeatureDriftResult(name, None, None, None, None, False, NO_REFERENCE,
                                  message=_unjudged_message(NO_REFERENCE, name, has_reference, in_window))
    base = dict(feature=name, kind=ref.kind, method=method, threshold=plan.threshold, reference_count=ref.count,
                reference_missing_share=_missing_share(ref.missing, ref.count))
    status = EMPTY_REFERENCE if ref.count == 0 else (NOT_IN_WINDOW if not in_window else None)
    if status is not None:
        return FeatureDriftResult(**base, score=None, drifted=False, status=status,
                                  message=_unjudged_message(status, name, True, in_window))
    values, missing = current.numeric(name) if ref.kind == "numeric" else current.categorical(name)
    base.update(current_count=len(values), current_missing_share=_missing_share(missing, len(values)))
    if len(values) == 0:
        return FeatureDriftResult(**base, score=None, drifted=False, status=NO_VALUES_IN_WINDOW,
                                  message=_unjudged_message(NO_VALUES_IN_WINDOW, name, True, True, missing))
    if ref.kind == "numeric":
        score = _score_numeric(method, ref, current, name)
    else:
        score = _score_categorical(method, ref, current.category_counts(name))
    drifted = score < plan.threshold if method in P_VALUE_METHODS else score > plan.threshold
    return FeatureDriftResult(**base, score=score, drifted=bool(drifted), status=JUDGED)


def evaluate_drift(reference: Reference | None, current: Any, settings: DriftSettings,
                   features: Iterable[str] | None = None) -> DriftResult:
    """Judge every feature of the reference (or exactly `features`, each once) in the current
    window (a DataFrame of inputs, or a CurrentWindow to reuse across evaluations). Columns of
    the window that the reference lacks are reported as `NoReference`, as are all features
    when there is no reference at all; a listed feature the window lacks as `NotInWindow`.
    Large windows are judged a column per thread."""
    if not isinstance(current, CurrentWindow):
        current = CurrentWindow(current)
    reference_columns = reference.columns if reference is not None else {}
    if features is None:
        names = list(reference_columns) + [str(c) for c in current.frame.columns if str(c) not in reference_columns]
    else:
        names = list(dict.fromkeys(str(f) for f in features))

    chosen: list[tuple[str, ColumnReference | None, str | None, float | None]] = []
    for name in names:
        column_reference = reference_columns.get(name)
        if column_reference is None:
            chosen.append((name, None, None, None))
        else:
            chosen.append((name, column_reference, *settings.method_for(name, column_reference.kind)))
    tests = sum(1 for name, ref, method, _ in chosen
                if ref is not None and ref.count > 0 and method in P_VALUE_METHODS and name in current.columns)
    correction = tests if settings.multiple_testing == "bonferroni" and tests > 1 else 1
    plans = [_Plan(name, ref, method, threshold / correction if method in P_VALUE_METHODS else threshold)
             for name, ref, method, threshold in chosen]

    judged = sum(1 for plan in plans if plan.reference is not None and plan.name in current.columns)
    results = map_columns(lambda plan: _judge(plan, current, reference is not None), plans, len(current) * judged)
    return DriftResult(features=results, drift_share=settings.drift_share, samples=len(current),
                       multiple_testing=settings.multiple_testing)
