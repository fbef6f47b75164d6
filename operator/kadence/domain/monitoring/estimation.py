"""Performance without labels, and concept drift named as such.

Classifiers: confidence-based performance estimation (CBPE, as NannyML's). The reference is
the model's hold-out predictions with their labels, stored at training time. Its served
probabilities are calibrated against its labels (isotonic, one-vs-rest, kept only when
cross-validation shows it lowers the expected calibration error); on a window of served
predictions without labels, the calibrated probability of each class is the chance that
the row's label is that class, so the expected confusion matrix is

    C[k, j] = sum over rows predicted j of P(label = k)

and accuracy, precision, recall and F1 follow from it with the same conventions as the
realized metrics (`quality`: positive class = the larger sorted label; support-weighted for
more classes, the support being the expected one). ROC AUC is the area under the curve of
expected true and false positives cumulated down the served scores.

Regressors: direct loss estimation (as NannyML's DLE): two gradient-boosted models trained on
the reference learn the absolute and the squared error from the inputs and the prediction;
their mean over a window estimates MAE and MSE (RMSE = its root).

Both assume the relationship between inputs and label is the reference's (covariate shift
only). When it changes, the estimate stays where it was while the realized metric falls:
`concept_drift` compares the two on the same labelled rows, beyond a margin and beyond the
sampling noise of the realized metric (simulated from the calibrated probabilities, or the
losses' standard error), and names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .quality import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS

MIN_REFERENCE_ROWS = 20
SIMULATIONS = 200
NOISE_SIGMAS = 3.0
CALIBRATION_FOLDS = 5
CALIBRATION_BINS = 10


class EstimationError(ValueError):
    """The reference cannot support an estimate (too few rows, no probabilities, one class)."""


# ---------------------------------------------------------------- values as comparable keys


def class_key(value: Any) -> str:
    """A label, prediction or class name as a comparable string: numbers, booleans and their
    spellings in one canonical form (a label 1, a prediction 1.0 or True, a class "1" or "True"
    are the same class), anything else as str."""
    if isinstance(value, (bool, np.bool_)):
        return repr(float(value))
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return repr(1.0 if value.strip().lower() == "true" else 0.0)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return repr(number) if math.isfinite(number) else str(value)


def class_keys(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([class_key(v) for v in values], dtype=object)


def _indices(values: Sequence[Any], classes: Sequence[str]) -> np.ndarray:
    """Index of each value in `classes` (keys), -1 when it is none of them (keys are made once per
    distinct value: a window holds thousands of predictions of a few classes)."""
    import pandas as pd

    series = values if isinstance(values, np.ndarray) else pd.Series(list(values), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    lookup = {c: i for i, c in enumerate(classes)}
    positions = np.asarray([lookup.get(key, -1) for key in class_keys(list(uniques))], dtype=int)
    return positions[codes] if len(codes) else np.zeros(0, dtype=int)


def _ordered_classes(classes: Sequence[Any]) -> list[str]:
    """Class keys in the order the logged probabilities use (the model's sorted classes)."""
    keys = list(class_keys(classes))
    if len(set(keys)) != len(keys):
        raise EstimationError(f"the model's classes {list(classes)} repeat")
    return keys


# ---------------------------------------------------------------- the reference file

INPUT_PREFIX = "input."


def reference_frame(labels: Sequence[Any], predictions: Sequence[Any], probabilities: Any | None,
                    inputs: Any | None) -> bytes:
    """The stored reference as Parquet: `label`, `prediction`, `probabilities` (a list per row,
    sorted class order) when the model has them, and `input.<column>` when inputs are kept."""
    import io

    import pandas as pd

    frame = pd.DataFrame({"label": list(labels), "prediction": list(predictions)})
    if probabilities is not None:
        frame["probabilities"] = [list(map(float, row)) for row in np.asarray(probabilities)]
    if inputs is not None:
        for name in inputs.columns:
            frame[f"{INPUT_PREFIX}{name}"] = inputs[name].to_numpy()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@dataclass
class StoredReference:
    labels: list
    predictions: list
    probabilities: list | None
    inputs: Any | None  # DataFrame of the raw inputs, or None when not kept


def read_reference(data: bytes) -> StoredReference:
    import io

    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except (ValueError, OSError) as error:
        raise EstimationError(f"the estimation reference is not a readable Parquet file: {error}") from error
    missing = {"label", "prediction"} - set(frame.columns)
    if missing:
        raise EstimationError(f"the estimation reference lacks the columns {sorted(missing)}")
    inputs = [c for c in frame.columns if c.startswith(INPUT_PREFIX)]
    return StoredReference(
        labels=frame["label"].tolist(), predictions=frame["prediction"].tolist(),
        probabilities=[list(r) for r in frame["probabilities"]] if "probabilities" in frame.columns else None,
        inputs=frame[inputs].rename(columns=lambda c: c[len(INPUT_PREFIX):]) if inputs else None)


# ---------------------------------------------------------------- calibration


def expected_calibration_error(probabilities: np.ndarray, outcomes: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Weighted mean |share of outcomes - mean probability| over equal-width probability bins."""
    edges = np.clip((probabilities * bins).astype(int), 0, bins - 1)
    gap = np.bincount(edges, weights=outcomes, minlength=bins) - np.bincount(edges, weights=probabilities,
                                                                            minlength=bins)
    return float(np.abs(gap).sum() / max(len(probabilities), 1))


@dataclass(frozen=True)
class Isotonic:
    """A non-decreasing map fitted by pool-adjacent-violators (scipy's), tied scores pooled first;
    linear between the fitted points and clipped beyond them (as scikit-learn's IsotonicRegression
    with out_of_bounds="clip", at a fraction of its overhead)."""

    x: np.ndarray
    y: np.ndarray

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)


def _isotonic(scores: np.ndarray, outcomes: np.ndarray, presorted: bool = False) -> Isotonic:
    from scipy.optimize import isotonic_regression

    if not presorted:
        order = np.argsort(scores)
        scores, outcomes = scores[order], outcomes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(scores)) + 1]  # the first row of each distinct score
    x = scores[starts]
    counts = np.diff(np.r_[starts, len(scores)])
    means = np.add.reduceat(outcomes, starts) / counts if len(scores) else np.zeros(0)
    fitted = np.clip(isotonic_regression(means, weights=counts.astype(float), increasing=True).x, 0.0, 1.0)
    # the fit is flat within each pooled block: its first and last points draw the same line, and
    # interpolating through a few hundred points instead of every distinct score is what is fast
    keep = np.ones(len(x), dtype=bool)
    if len(x) > 2:
        same = fitted[1:-1] == fitted[:-2]
        keep[1:-1] = ~(same & (fitted[1:-1] == fitted[2:]))
    return Isotonic(x[keep], fitted[keep])


def needs_calibration(scores: np.ndarray, outcomes: np.ndarray, seed: int = 0, order: np.ndarray | None = None) -> bool:
    """True when isotonic calibration lowers the expected calibration error out of fold
    (NannyML's rule): on a well-calibrated model a calibrator only adds noise."""
    if len(scores) < 2 * CALIBRATION_FOLDS or outcomes.min() == outcomes.max():
        return False
    fold_of = np.empty(len(scores), dtype=int)  # the same folds as before: a seeded permutation cut in five
    for i, fold in enumerate(np.array_split(np.random.default_rng(seed).permutation(len(scores)), CALIBRATION_FOLDS)):
        fold_of[fold] = i
    order = np.argsort(scores) if order is None else order  # sorted once; each fold's training rows stay sorted
    sorted_scores, sorted_outcomes, sorted_folds = scores[order], outcomes[order], fold_of[order]
    raw, calibrated = 0.0, 0.0
    for i in range(CALIBRATION_FOLDS):
        train = sorted_folds != i
        train_outcomes = sorted_outcomes[train]
        if train_outcomes.min() == train_outcomes.max():
            return False
        fitted = _isotonic(sorted_scores[train], train_outcomes, presorted=True)
        held = ~train
        raw += expected_calibration_error(sorted_scores[held], sorted_outcomes[held])
        calibrated += expected_calibration_error(fitted.predict(sorted_scores[held]), sorted_outcomes[held])
    return calibrated < raw


@dataclass
class Calibrator:
    """One isotonic map per class (one-vs-rest; None where calibration does not help), rows
    renormalized to sum to one."""

    maps: list[Any]

    @classmethod
    def fit(cls, probabilities: np.ndarray, labels: np.ndarray) -> "Calibrator":
        columns = probabilities.shape[1]
        targets = range(1, 2) if columns == 2 else range(columns)  # binary: the positive class decides both
        maps: list[Any] = [None] * columns
        for k in targets:
            scores, outcome = probabilities[:, k], (labels == k).astype(float)
            order = np.argsort(scores)  # one sort serves the check's folds and the final fit
            if needs_calibration(scores, outcome, order=order):
                maps[k] = _isotonic(scores[order], outcome[order], presorted=True)
        return cls(maps)

    @property
    def calibrated(self) -> bool:
        return any(m is not None for m in self.maps)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        if probabilities.shape[1] == 2:
            positive = probabilities[:, 1] if self.maps[1] is None else self.maps[1].predict(probabilities[:, 1])
            return np.column_stack([1 - positive, positive])
        out = np.column_stack([p if m is None else m.predict(p) for m, p in zip(self.maps, probabilities.T)])
        totals = out.sum(axis=1, keepdims=True)
        return np.where(totals > 0, out / np.where(totals > 0, totals, 1), probabilities)


# ---------------------------------------------------------------- metrics from a confusion matrix


def _safe(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


def metrics_from_confusion(matrix: np.ndarray) -> dict[str, float]:
    """accuracy, precision, recall, f1 from a (possibly expected) confusion matrix, rows the
    true class and columns the predicted one, classes in sorted order. Two classes: of the
    positive (last) class; more: weighted by each class's (expected) support."""
    total = matrix.sum()
    out = {"accuracy": _safe(np.trace(matrix), total)}
    k = matrix.shape[0]
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.array([_safe(tp[i], predicted[i]) for i in range(k)])
    recall = np.array([_safe(tp[i], actual[i]) for i in range(k)])
    f1 = np.array([_safe(2 * tp[i], predicted[i] + actual[i]) for i in range(k)])
    if k == 2:
        out.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]))
    else:
        weights = actual / total if total > 0 else np.zeros(k)
        out.update(precision=float(precision @ weights), recall=float(recall @ weights), f1=float(f1 @ weights))
    out["f1_macro"] = float(f1.mean())
    return out


def expected_log_loss(scores: np.ndarray, expected: np.ndarray) -> float:
    """Mean cross-entropy of the served probabilities under the calibrated ones: what log loss
    the labels would give on average were they drawn from the calibrated probabilities."""
    return float(-(expected * np.log(np.clip(scores, 1e-15, 1.0))).sum(axis=1).mean())


def expected_roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC with soft labels: `positive` the probability that each row is positive, the
    curve drawn through the expected true and false positives above each distinct score."""
    positives, negatives = positive.sum(), (1 - positive).sum()
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-scores)  # ties are summed as groups: their order does not matter
    ranked, weight = scores[order], positive[order]
    last_of_each = np.r_[np.nonzero(np.diff(ranked))[0], len(ranked) - 1]
    tps = np.r_[0.0, np.cumsum(weight)[last_of_each]]
    fps = np.r_[0.0, np.cumsum(1 - weight)[last_of_each]]
    return float(np.trapezoid(tps / positives, fps / negatives))


def _roc_auc(scores: np.ndarray, membership: np.ndarray, weights_by_class: np.ndarray) -> float | None:
    """Binary (one column) or one-vs-rest weighted by (expected) support."""
    if scores.shape[1] == 2:
        return expected_roc_auc(scores[:, 1], membership[:, 1])
    values, weights = [], []
    for k in range(scores.shape[1]):
        value = expected_roc_auc(scores[:, k], membership[:, k])
        if value is not None:
            values.append(value)
            weights.append(weights_by_class[k])
    if not values or sum(weights) <= 0:
        return None
    return float(np.average(values, weights=weights))


# ---------------------------------------------------------------- CBPE


@dataclass(frozen=True)
class Estimate:
    """Estimated metrics of one window, and on how many predictions."""

    metrics: dict[str, float]
    predictions: int
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass
class ConfidenceEstimator:
    """CBPE fitted on a classifier's reference (hold-out predictions with labels)."""

    classes: list[str]
    calibrator: Calibrator
    reference_rows: int

    @classmethod
    def fit(cls, labels: Sequence[Any], probabilities: Any, classes: Sequence[Any]) -> "ConfidenceEstimator":
        ordered = _ordered_classes(classes)
        matrix = _matrix(probabilities, len(ordered), "the reference")
        if len(matrix) < MIN_REFERENCE_ROWS:
            raise EstimationError(f"the reference holds {len(matrix)} predictions, {MIN_REFERENCE_ROWS} needed")
        index = _indices(labels, ordered)
        if (index < 0).any():
            unknown = sorted({str(v) for v, i in zip(labels, index) if i < 0})[:5]
            raise EstimationError(f"reference labels {unknown} are none of the model's classes {list(classes)}")
        if len(set(index.tolist())) < 2:
            raise EstimationError("the reference's labels hold one class only: nothing to calibrate against")
        return cls(ordered, Calibrator.fit(matrix, index), len(matrix))

    def calibrated(self, probabilities: Any) -> np.ndarray:
        return self.calibrator.apply(_matrix(probabilities, len(self.classes), "the window"))

    def estimate(self, predictions: Sequence[Any], probabilities: Any) -> Estimate:
        n = len(predictions)
        if n == 0:
            return Estimate({}, 0, {m: "no predictions in the window" for m in CLASSIFICATION_METRICS})
        scores = _matrix(probabilities, len(self.classes), "the window")
        expected = self.calibrator.apply(scores)
        predicted = _indices(predictions, self.classes)
        if (predicted < 0).any():
            raise EstimationError("served predictions are none of the model's classes "
                                  f"{sorted({str(v) for v, i in zip(predictions, predicted) if i < 0})[:5]}")
        matrix = expected_confusion(expected, predicted)
        metrics = metrics_from_confusion(matrix)
        unavailable = {}
        auc = _roc_auc(scores, expected, matrix.sum(axis=1))
        if auc is None:
            unavailable["roc_auc"] = "the calibrated probabilities expect a single class in the window"
        else:
            metrics["roc_auc"] = auc
        metrics["log_loss"] = expected_log_loss(scores, expected)
        return Estimate(metrics, n, unavailable)

    def realized_spread(self, metric: str, predictions: Sequence[Any], probabilities: Any,
                        seed: int = 0) -> float:
        """The standard deviation the realized metric would have on these rows by chance alone,
        were the labels drawn from the calibrated probabilities (no concept drift)."""
        expected = self.calibrated(probabilities)
        predicted = _indices(predictions, self.classes)
        scores = _matrix(probabilities, len(self.classes), "the window")
        rng = np.random.default_rng(seed)
        cumulative = np.cumsum(expected, axis=1)
        k, values = len(self.classes), []
        for _ in range(SIMULATIONS):
            drawn = (rng.random((len(predicted), 1)) > cumulative).sum(axis=1).clip(0, k - 1)
            if metric == "roc_auc":
                membership = np.eye(k)[drawn]
                value = _roc_auc(scores, membership, membership.sum(axis=0))
            elif metric == "log_loss":
                value = float(-np.log(np.clip(scores[np.arange(len(drawn)), drawn], 1e-15, 1.0)).mean())
            else:
                value = metrics_from_confusion(confusion(drawn, predicted, k)).get(metric)
            if value is not None:
                values.append(value)
        return float(np.std(values)) if len(values) > 1 else 0.0


def expected_confusion(expected: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """C[k, j] = sum over the rows predicted j of P(label = k)."""
    k = expected.shape[1]
    return np.stack([np.bincount(predicted, weights=expected[:, c], minlength=k) for c in range(k)])


def confusion(true: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(true * k + predicted, minlength=k * k).reshape(k, k).astype(float)


def _matrix(probabilities: Any, width: int, what: str) -> np.ndarray:
    if probabilities is None:
        raise EstimationError(f"no probabilities were logged in {what}")
    if isinstance(probabilities, np.ndarray):
        matrix = probabilities.astype(float, copy=False)
    else:
        rows = list(probabilities)
        if any(r is None for r in rows):
            raise EstimationError(f"probabilities were not logged for every prediction in {what}")
        matrix = np.asarray(rows, dtype=float) if rows else np.zeros((0, width))
    if matrix.ndim != 2 or matrix.shape[1] != width:
        raise EstimationError(f"{what} logs {matrix.shape[-1] if matrix.ndim == 2 else '?'} probabilities per "
                              f"prediction but the model has {width} classes")
    return matrix


# ---------------------------------------------------------------- DLE


def _loss_features(inputs: Any, predictions: Sequence[Any], categories: dict[str, list]) -> np.ndarray:
    import pandas as pd

    frame = pd.DataFrame(inputs).reset_index(drop=True)
    columns = []
    for name, known in categories.items():
        column = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
        if known is None:
            columns.append(pd.to_numeric(column, errors="coerce").to_numpy(dtype=float))
        else:
            codes = {v: i for i, v in enumerate(known)}
            columns.append(np.asarray([codes.get(str(v), np.nan) for v in column], dtype=float))
    columns.append(np.asarray(predictions, dtype=float))
    return np.column_stack(columns)


@dataclass
class LossEstimator:
    """DLE fitted on a regressor's reference: the inputs and the prediction -> |error| and error²."""

    categories: dict[str, list | None]  # input column -> its categories (None: numeric)
    absolute: Any
    squared: Any
    reference_rows: int

    @classmethod
    def fit(cls, inputs: Any, predictions: Sequence[Any], labels: Sequence[Any], seed: int = 0) -> "LossEstimator":
        import pandas as pd
        from sklearn.ensemble import HistGradientBoostingRegressor

        frame = pd.DataFrame(inputs).reset_index(drop=True)
        if len(frame) < MIN_REFERENCE_ROWS:
            raise EstimationError(f"the reference holds {len(frame)} predictions, {MIN_REFERENCE_ROWS} needed")
        categories: dict[str, list | None] = {}
        for name in frame.columns:
            numeric = pd.to_numeric(frame[name], errors="coerce")
            categories[str(name)] = None if numeric.notna().sum() >= frame[name].notna().sum() else sorted(
                {str(v) for v in frame[name].dropna()})
        X = _loss_features(frame, predictions, categories)
        error = np.asarray(labels, dtype=float) - np.asarray(predictions, dtype=float)
        categorical = [i for i, known in enumerate(categories.values()) if known is not None] or None

        def model():
            return HistGradientBoostingRegressor(max_iter=100, min_samples_leaf=20, random_state=seed,
                                                 categorical_features=categorical)

        with threadpool_limits(1):  # small data: OpenMP threads only contend with each other
            return cls(categories, model().fit(X, np.abs(error)), model().fit(X, error ** 2), len(frame))

    def estimate(self, inputs: Any, predictions: Sequence[Any]) -> Estimate:
        if len(predictions) == 0:
            return Estimate({}, 0, {m: "no predictions in the window" for m in REGRESSION_METRICS})
        X = _loss_features(inputs, predictions, self.categories)
        with threadpool_limits(1):
            absolute = np.clip(self.absolute.predict(X), 0, None)
            squared = np.clip(self.squared.predict(X), 0, None)
        return Estimate({"mae": float(absolute.mean()), "rmse": float(math.sqrt(squared.mean()))}, len(predictions))


def realized_loss_spread(metric: str, labels: Sequence[Any], predictions: Sequence[Any]) -> float:
    """Standard error of the realized MAE (or RMSE, by the delta method) on these rows."""
    error = np.asarray(labels, dtype=float) - np.asarray(predictions, dtype=float)
    n = len(error)
    if n < 2:
        return 0.0
    if metric == "mae":
        return float(np.std(np.abs(error), ddof=1) / math.sqrt(n))
    mse = float(np.mean(error ** 2))
    return float(np.std(error ** 2, ddof=1) / math.sqrt(n) / (2 * math.sqrt(mse))) if mse > 0 else 0.0


# ---------------------------------------------------------------- concept drift


CONCEPT_DRIFT = "ConceptDrift"
NO_CONCEPT_DRIFT = "NoConceptDrift"


@dataclass(frozen=True)
class ConceptDriftVerdict:
    detected: bool
    metric: str
    estimated: float
    realized: float
    gap: float  # estimate minus realized (realized minus estimate for rmse/mae), positive when worse than expected
    noise: float  # the gap chance alone would explain (NOISE_SIGMAS standard deviations)
    margin: float
    labelled: int

    @property
    def reason(self) -> str:
        return CONCEPT_DRIFT if self.detected else NO_CONCEPT_DRIFT

    @property
    def message(self) -> str:
        relative = " of the estimate" if self.metric in LOWER_IS_BETTER else ""
        worse = "above" if self.metric in LOWER_IS_BETTER else "below"
        numbers = (f"realized {self.metric}={self.realized:.4g} vs estimated {self.estimated:.4g} on the same "
                   f"{self.labelled} labelled predictions: {abs(self.gap):.4g} {worse if self.gap > 0 else 'off'}")
        if self.detected:
            return (f"concept drift: {numbers} the estimate (margin {self.margin:.4g}{relative}, chance alone "
                    f"{self.noise:.2g}): the inputs look as the model expects but their relation to the label changed")
        return f"no concept drift: {numbers} (margin {self.margin:.4g}{relative}, chance alone {self.noise:.2g})"


def concept_drift(*, metric: str, estimated: float, realized: float, spread: float, margin: float,
                  labelled: int) -> ConceptDriftVerdict:
    """Concept drift when the realized metric is worse than the estimate on the same rows by
    more than `margin` (relative for rmse and mae) and by more than chance explains."""
    if metric in LOWER_IS_BETTER:
        gap = realized - estimated
        allowed = margin * estimated
    else:
        gap = estimated - realized
        allowed = margin
    noise = NOISE_SIGMAS * spread
    return ConceptDriftVerdict(gap > allowed and gap > noise, metric, estimated, realized, gap, noise, margin,
                               labelled)
