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
window) has no score and a status saying why; it never counts as "no drift".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Literal, Mapping

import numpy as np

EPSILON = 1e-4
MIN_STD = 1e-3
DEFAULT_BINS = 10

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
    its finite values and is used (sorted on first need) wherever an exact answer is cheap.
    """

    count: int
    missing: int
    std: float
    cut_points: np.ndarray  # unique, increasing; the bucket edges
    bucket_shares: np.ndarray  # len 2 * len(cut_points) + 1, see `_bucket_index`
    cdf_values: np.ndarray
    cdf_levels: np.ndarray
    sample: np.ndarray | None = None  # the raw sample's finite values, unsorted
    kind: Kind = "numeric"

    @cached_property
    def sorted_values(self) -> np.ndarray | None:
        """The sample sorted, on first use (only KS and Wasserstein need it)."""
        return np.sort(self.sample) if self.sample is not None else None

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
            return np.quantile(self.sorted_values, levels)
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


def _bucket_index(cut_points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bucket 2i+1 holds values equal to cut point i; bucket 2i values strictly between cut
    points i-1 and i (bucket 0: below the first, bucket 2k: above the last)."""
    upto = np.searchsorted(cut_points, values, side="right")  # cut points <= value
    on_cut = upto > 0
    on_cut[on_cut] = cut_points[upto[on_cut] - 1] == values[on_cut]
    return 2 * upto - on_cut  # = (cut points < value) + (cut points <= value)


def _bucket_counts(cut_points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bucket counts of values in any order, in O(n log k)."""
    return np.bincount(_bucket_index(cut_points, values), minlength=2 * len(cut_points) + 1)


def finite_values(values: Any) -> tuple[np.ndarray, int]:
    """Finite floats of a column and how many entries were missing or not numeric."""
    import pandas as pd

    series = pd.to_numeric(pd.Series(values), errors="coerce")
    array = series.to_numpy(dtype=float, na_value=np.nan)
    finite = array[np.isfinite(array)]
    return finite, len(array) - len(finite)


def category_values(values: Any) -> tuple[np.ndarray, int]:
    import pandas as pd

    series = pd.Series(values)
    present = series[series.notna()]
    if pd.api.types.is_bool_dtype(present.dtype) or present.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        # JSON spelling, as the profile writes booleans
        present = present.map(lambda v: ("true" if v else "false") if isinstance(v, (bool, np.bool_)) else v)
    return present.astype(str).to_numpy(dtype=object), len(series) - len(present)


def _is_numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def numeric_reference_from_values(values: Any, bins: int = DEFAULT_BINS) -> NumericReference:
    finite, missing = finite_values(values)
    if len(finite) == 0:
        return NumericReference(count=0, missing=missing, std=0.0, cut_points=np.empty(0),
                                bucket_shares=np.ones(1), cdf_values=np.empty(0), cdf_levels=np.empty(0))
    cut_points = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
    shares = _bucket_counts(cut_points, finite) / len(finite)
    return NumericReference(
        count=len(finite), missing=missing, std=float(np.std(finite)), cut_points=cut_points,
        bucket_shares=shares, cdf_values=np.array([finite.min(), finite.max()]), cdf_levels=np.array([0.0, 1.0]),
        sample=finite,
    )


def categorical_reference_from_values(values: Any) -> CategoricalReference:
    present, missing = category_values(values)
    names, counts = np.unique(present, return_counts=True) if len(present) else ([], [])
    return CategoricalReference(count=int(len(present)), missing=missing,
                                category_counts={str(n): int(c) for n, c in zip(names, counts)})


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
    columns: dict[str, ColumnReference] = {}
    for name in frame.columns:
        series = frame[name]
        if _is_numeric(series) and name not in forced:
            columns[str(name)] = numeric_reference_from_values(series, bins)
        else:
            columns[str(name)] = categorical_reference_from_values(series)
    return Reference(columns=columns, source="sample")


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


def _has_ties(sorted_values: np.ndarray) -> bool:
    return len(sorted_values) > 1 and bool(np.any(sorted_values[1:] == sorted_values[:-1]))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """sup |F_a - F_b| of two sorted samples. Both ECDFs are right-continuous steps, so the
    supremum is reached at a value of one of the samples; evaluating there with searchsorted
    on the sorted arrays avoids sorting the pooled sample."""
    m, n = len(a), len(b)
    a_at_a = np.searchsorted(a, a, side="right") if _has_ties(a) else np.arange(1, m + 1)
    b_at_b = np.searchsorted(b, b, side="right") if _has_ties(b) else np.arange(1, n + 1)
    at_b = np.max(np.abs(np.searchsorted(a, b, side="right") / m - b_at_b / n))
    at_a = np.max(np.abs(a_at_a / m - np.searchsorted(b, a, side="right") / n))
    return float(max(at_a, at_b))


def wasserstein_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """W1 of two sorted samples as the integral of |Q_a(u) - Q_b(u)| over u in (0, 1]. The
    quantile functions are steps at the levels i/m and j/n; each merged segment ends at one
    such level and its width and the two quantiles on it follow from integer arithmetic, so no
    pooled sort is needed (for m == n it is mean |a - b|). At a shared level the a-segment
    takes the width and the b-segment is empty."""
    m, n = len(a), len(b)
    i, j = np.arange(1, m + 1), np.arange(1, n + 1)
    b_below_i = -(-i * n // m) - 1  # b levels strictly below i/m; also Q_b's index at i/m
    a_upto_j = j * m // n  # a levels at or below j/n
    a_at_j = -(-j * m // n) - 1  # Q_a's index at j/n
    ends_a = np.maximum((i - 1) / m, b_below_i / n)
    ends_b = np.maximum((j - 1) / n, a_upto_j / m)
    from_a = np.sum((i / m - ends_a) * np.abs(a - b[b_below_i]))
    from_b = np.sum((j / n - ends_b) * np.abs(a[a_at_j] - b))
    return float(from_a + from_b)


def ks_numeric(reference: NumericReference, current_sorted: np.ndarray) -> float:
    """Two-sided two-sample KS p-value: scipy's exact test for samples of at most 10,000
    values, else the statistic from sorted arrays and `_ks_p_value`."""
    if reference.sample is not None and max(reference.count, len(current_sorted)) <= 10_000:
        from scipy.stats import ks_2samp

        return float(ks_2samp(reference.sorted_values, current_sorted).pvalue)
    if reference.sample is not None:
        statistic = ks_statistic(reference.sorted_values, current_sorted)
    else:
        # between two current values the step CDF is flat and the reference CDF monotone, so
        # the largest gap lies at a current value or just below one
        n = len(current_sorted)
        ref_at = reference.cdf(current_sorted)
        after = np.searchsorted(current_sorted, current_sorted, side="right") / n
        before = np.searchsorted(current_sorted, current_sorted, side="left") / n
        ref_before = reference.cdf_before(current_sorted)
        statistic = float(max(np.max(np.abs(ref_at - after)), np.max(np.abs(ref_before - before))))
    return _ks_p_value(statistic, reference.count, len(current_sorted))


def wasserstein_numeric(reference: NumericReference, current_sorted: np.ndarray) -> float:
    """Earth mover's distance / max(reference std, 0.001)."""
    scale = max(reference.std, MIN_STD)
    if reference.sample is not None:
        return wasserstein_sorted(reference.sorted_values, current_sorted) / scale
    # Profile: integrate |Q_ref(u) - Q_cur(u)| over u on a fine grid of levels.
    levels = (np.arange(2000) + 0.5) / 2000
    distance = np.mean(np.abs(reference.quantile(levels) - np.quantile(current_sorted, levels)))
    return float(distance / scale)


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
        return ks_numeric(reference, current.numeric_sorted(name))
    if method == "wasserstein":
        return wasserstein_numeric(reference, current.numeric_sorted(name))
    current_shares = current.bucket_shares(name, reference.cut_points)
    if method == "psi":
        return psi(reference.bucket_shares, current_shares)
    if method == "jensenshannon":
        return jensen_shannon(reference.bucket_shares, current_shares)
    raise DriftConfigError(f"{method} does not apply to numeric features")


def _score_categorical(method: str, reference: CategoricalReference, current: np.ndarray) -> float:
    names, counts = np.unique(current, return_counts=True)
    current_counts = dict(zip(names.tolist(), counts.tolist()))
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
    """The window of inputs, each column cleaned (and sorted, when numeric) once however many
    methods judge it."""

    def __init__(self, frame: Any):
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"the current window must be a DataFrame, not {type(frame).__name__}")
        self.frame = frame
        self.columns = {str(c) for c in frame.columns}
        self._numeric: dict[str, tuple[np.ndarray, int]] = {}
        self._sorted: dict[str, np.ndarray] = {}
        self._buckets: dict[tuple[str, bytes], np.ndarray] = {}
        self._categorical: dict[str, tuple[np.ndarray, int]] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def numeric(self, name: str) -> tuple[np.ndarray, int]:
        """The finite values (in window order) and how many were missing."""
        if name not in self._numeric:
            self._numeric[name] = finite_values(self.frame[name])
        return self._numeric[name]

    def bucket_shares(self, name: str, cut_points: np.ndarray) -> np.ndarray:
        """Shares of the column's values in the buckets of `cut_points` (PSI and JS share them)."""
        key = (name, cut_points.tobytes())
        if key not in self._buckets:
            if name in self._sorted:
                ordered = self._sorted[name]
                bounds = np.empty(2 * len(cut_points) + 2, dtype=np.int64)
                bounds[0], bounds[-1] = 0, len(ordered)
                bounds[1:-1:2] = np.searchsorted(ordered, cut_points, side="left")
                bounds[2:-1:2] = np.searchsorted(ordered, cut_points, side="right")
                counts = np.diff(bounds)
            else:
                values, _ = self.numeric(name)
                counts = _bucket_counts(cut_points, values)
            self._buckets[key] = counts / counts.sum()
        return self._buckets[key]

    def numeric_sorted(self, name: str) -> np.ndarray:
        if name not in self._sorted:
            self._sorted[name] = np.sort(self.numeric(name)[0])
        return self._sorted[name]

    def categorical(self, name: str) -> tuple[np.ndarray, int]:
        if name not in self._categorical:
            self._categorical[name] = category_values(self.frame[name])
        return self._categorical[name]


def evaluate_drift(reference: Reference | None, current: Any, settings: DriftSettings,
                   features: Iterable[str] | None = None) -> DriftResult:
    """Judge every feature of the reference (or `features`) in the current window (a
    DataFrame of inputs, or a CurrentWindow to reuse across evaluations). Columns of the
    window that the reference lacks are reported as `NoReference`, as are all features when
    there is no reference at all."""
    if not isinstance(current, CurrentWindow):
        current = CurrentWindow(current)
    reference_columns = reference.columns if reference is not None else {}
    if features is None:
        names = list(reference_columns) + [str(c) for c in current.frame.columns if str(c) not in reference_columns]
    else:
        names = list(features)

    plans: list[tuple[str, ColumnReference | None, str | None, float | None]] = []
    for name in names:
        column_reference = reference_columns.get(name)
        if column_reference is None:
            plans.append((name, None, None, None))
            continue
        method, threshold = settings.method_for(name, column_reference.kind)
        plans.append((name, column_reference, method, threshold))

    def testable(plan) -> bool:
        name, ref, method, _ = plan
        return ref is not None and ref.count > 0 and method in P_VALUE_METHODS and name in current.columns

    tests = sum(1 for plan in plans if testable(plan))
    correction = tests if settings.multiple_testing == "bonferroni" and tests > 1 else 1

    results = []
    for name, ref, method, threshold in plans:
        if ref is None:
            results.append(FeatureDriftResult(name, None, None, None, None, False, NO_REFERENCE))
            continue
        effective = threshold / correction if method in P_VALUE_METHODS else threshold
        base = dict(feature=name, kind=ref.kind, method=method, threshold=effective, reference_count=ref.count,
                    reference_missing_share=_missing_share(ref.missing, ref.count))
        if ref.count == 0:
            results.append(FeatureDriftResult(**base, score=None, drifted=False, status=EMPTY_REFERENCE))
            continue
        if name not in current.columns:
            results.append(FeatureDriftResult(**base, score=None, drifted=False, status=NOT_IN_WINDOW))
            continue
        values, missing = current.numeric(name) if ref.kind == "numeric" else current.categorical(name)
        base.update(current_count=len(values), current_missing_share=_missing_share(missing, len(values)))
        if len(values) == 0:
            results.append(FeatureDriftResult(**base, score=None, drifted=False, status=NO_VALUES_IN_WINDOW))
            continue
        if ref.kind == "numeric":
            score = _score_numeric(method, ref, current, name)
        else:
            score = _score_categorical(method, ref, values)
        drifted = score < effective if method in P_VALUE_METHODS else score > effective
        results.append(FeatureDriftResult(**base, score=score, drifted=bool(drifted), status=JUDGED))
    return DriftResult(features=results, drift_share=settings.drift_share, samples=len(current),
                       multiple_testing=settings.multiple_testing)
