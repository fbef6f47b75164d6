"""Quality metrics over labelled feedback joined to predictions.

Conventions, the same as training (`kadence.domain.training.metrics`) so that a live metric
and the hold-out metric recorded at training time mean the same thing:

- `f1`, `precision`, `recall`: of the positive class for two classes (the larger of the two
  sorted labels: 1 of {0, 1}, "yes" of {"no", "yes"}), support-weighted for more classes.
- `f1_macro`: the unweighted mean of every class's F1 (each class counts the same, however rare).
- `roc_auc`: binary ROC AUC on the probability of the positive class (the last entry of the
  logged `probabilities`, which are in sorted class order); one-vs-rest, support-weighted for
  more classes. It needs logged probabilities and both classes among the labels.
- `log_loss`: cross-entropy of the logged probabilities against the labels, over the model's
  classes (lower is better; it needs logged probabilities, as roc_auc does).
- `rmse`, `mae`: regression, lower is better.

A metric that cannot be computed is left out of the result and its reason is reported in
`QualityResult.unavailable`; it is never replaced by a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

CLASSIFICATION_METRICS = ("accuracy", "f1", "f1_macro", "precision", "recall", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae")
LOWER_IS_BETTER = frozenset(REGRESSION_METRICS) | {"log_loss"}


class QualityError(ValueError):
    pass


def task_of(metric: str) -> str:
    if metric in CLASSIFICATION_METRICS:
        return "classification"
    if metric in REGRESSION_METRICS:
        return "regression"
    raise QualityError(f"unknown metric {metric!r}: expected one of {', '.join(CLASSIFICATION_METRICS + REGRESSION_METRICS)}")


def is_worse_than(metric: str, value: float, threshold: float) -> bool:
    """True when `value` is on the wrong side of `threshold` (below it; above it for log_loss/rmse/mae)."""
    return value > threshold if metric in LOWER_IS_BETTER else value < threshold


def is_better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """True when `candidate` beats `reference` by strictly more than `margin`."""
    if metric in LOWER_IS_BETTER:
        return reference - candidate > margin
    return candidate - reference > margin


@dataclass(frozen=True)
class QualityResult:
    metrics: dict[str, float]
    labelled: int
    unavailable: dict[str, str] = field(default_factory=dict)


def _aligned_labels(y_true: Sequence[Any], y_pred: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as comparable values: numbers when both sides are numbers
    (so a label 1 matches a prediction 1.0), else strings."""
    import pandas as pd

    true, pred = pd.Series(list(y_true), dtype=object), pd.Series(list(y_pred), dtype=object)
    true_num, pred_num = pd.to_numeric(true, errors="coerce"), pd.to_numeric(pred, errors="coerce")
    if true_num.notna().all() and pred_num.notna().all():
        return true_num.to_numpy(dtype=float), pred_num.to_numpy(dtype=float)
    return true.astype(str).to_numpy(dtype=object), pred.astype(str).to_numpy(dtype=object)


def _aligned_classes(classes: Sequence[Any], true: np.ndarray) -> list:
    """The model's classes in the representation `_aligned_labels` chose for the labels: a
    signature stores classes as strings ("0", "1") while feedback labels are often numbers."""
    import pandas as pd

    series = pd.Series(list(classes), dtype=object)
    if true.dtype == float:
        numeric = pd.to_numeric(series, errors="coerce")
        if numeric.notna().all():
            return numeric.astype(float).tolist()
    return series.astype(str).tolist()


def _probability_matrix(probabilities: Sequence[Any] | None, n: int) -> tuple[np.ndarray | None, str | None]:
    if probabilities is None:
        return None, "no probabilities were logged"
    rows = list(probabilities)
    if len(rows) != n or any(r is None for r in rows):
        return None, "probabilities were not logged for every labelled prediction"
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        return None, "probability vectors of different lengths were logged"
    return np.asarray(rows, dtype=float), None


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], probabilities: Sequence[Any] | None = None,
                           classes: Sequence[Any] | None = None, wanted: Sequence[str] = CLASSIFICATION_METRICS
                           ) -> QualityResult:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    if len(y_true) != len(y_pred):
        raise QualityError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    n = len(y_true)
    if n == 0:
        return QualityResult({}, 0, {m: "no labelled predictions" for m in wanted})
    true, pred = _aligned_labels(y_true, y_pred)
    labels = sorted(set(true.tolist()) | set(pred.tolist()))
    binary = len(labels) == 2
    metrics: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    for name in wanted:
        if name == "accuracy":
            metrics[name] = float(accuracy_score(true, pred))
        elif name in ("f1", "precision", "recall"):
            score = {"f1": f1_score, "precision": precision_score, "recall": recall_score}[name]
            if len(labels) < 2:
                unavailable[name] = f"only one class ({labels[0]!r}) among labels and predictions"
            elif binary:
                metrics[name] = float(score(true, pred, pos_label=labels[-1], zero_division=0))
            else:
                metrics[name] = float(score(true, pred, labels=labels, average="weighted", zero_division=0))
        elif name == "f1_macro":
            if len(labels) < 2:
                unavailable[name] = f"only one class ({labels[0]!r}) among labels and predictions"
            else:
                metrics[name] = float(f1_score(true, pred, labels=labels, average="macro", zero_division=0))
        elif name == "log_loss":
            matrix, why = _probability_matrix(probabilities, n)
            model_classes = sorted(_aligned_classes(classes, true)) if classes is not None else labels
            if why:
                unavailable[name] = why
            elif matrix.shape[1] != len(model_classes):
                unavailable[name] = (f"{matrix.shape[1]} probabilities per prediction but {len(model_classes)} "
                                     "known classes; log the model's classes to compute log_loss")
            elif unknown := sorted({str(v) for v in true.tolist()} - {str(c) for c in model_classes})[:5]:
                unavailable[name] = f"labels {unknown} are none of the model's classes {model_classes}"
            else:
                position = {str(c): i for i, c in enumerate(model_classes)}
                given = matrix[np.arange(n), [position[str(v)] for v in true.tolist()]]
                metrics[name] = float(-np.log(np.clip(given, 1e-15, 1.0)).mean())
        elif name == "roc_auc":
            matrix, why = _probability_matrix(probabilities, n)
            present = sorted(set(true.tolist()))
            if why:
                unavailable[name] = why
            elif len(present) < 2:
                unavailable[name] = f"roc_auc needs at least two classes among the labels, got {present}"
            else:
                model_classes = sorted(_aligned_classes(classes, true)) if classes is not None else labels
                if matrix.shape[1] != len(model_classes):
                    unavailable[name] = (f"{matrix.shape[1]} probabilities per prediction but {len(model_classes)} "
                                         "known classes; log the model's classes to compute roc_auc")
                elif len(model_classes) == 2:
                    positive = model_classes[-1]
                    metrics[name] = float(roc_auc_score(true == positive, matrix[:, -1]))
                else:
                    metrics[name] = float(roc_auc_score(true, matrix, multi_class="ovr", average="weighted",
                                                        labels=model_classes))
        else:
            raise QualityError(f"{name} is not a classification metric")
    return QualityResult(metrics, n, unavailable)


def regression_metrics(y_true: Sequence[Any], y_pred: Sequence[Any], wanted: Sequence[str] = REGRESSION_METRICS
                       ) -> QualityResult:
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    if len(y_true) != len(y_pred):
        raise QualityError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        return QualityResult({}, 0, {m: "no labelled predictions" for m in wanted})
    try:
        true = np.asarray(y_true, dtype=float)
        pred = np.asarray(y_pred, dtype=float)
    except (TypeError, ValueError) as error:
        raise QualityError(f"regression labels and predictions must be numbers: {error}") from error
    finite = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[finite], pred[finite]
    if len(true) == 0:
        return QualityResult({}, 0, {m: "no finite labelled predictions" for m in wanted})
    metrics: dict[str, float] = {}
    for name in wanted:
        if name == "rmse":
            metrics[name] = float(root_mean_squared_error(true, pred))
        elif name == "mae":
            metrics[name] = float(mean_absolute_error(true, pred))
        else:
            raise QualityError(f"{name} is not a regression metric")
    return QualityResult(metrics, int(len(true)))


def quality_for(metric: str, y_true: Sequence[Any], y_pred: Sequence[Any],
                probabilities: Sequence[Any] | None = None, classes: Sequence[Any] | None = None) -> QualityResult:
    """All metrics of the policy metric's task (the policy metric among them)."""
    if task_of(metric) == "regression":
        return regression_metrics(y_true, y_pred)
    return classification_metrics(y_true, y_pred, probabilities, classes)


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
