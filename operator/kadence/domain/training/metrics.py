"""Objective metrics: how each is computed, which way is better, how to compare scores.

Scores are always reported in the metric's natural units (an RMSE of 3.2 is
3.2, never -3.2). Internally scikit-learn's scorers return "greater is better"
values; `natural_score` undoes the sign for the minimized metrics.

Conventions for classification:
- `f1` is the F1 of the positive class for two classes (the positive class is the
  larger of the two sorted labels, e.g. 1 of {0, 1}, True of {False, True},
  "yes" of {"no", "yes"}), and the support-weighted F1 for more classes.
- `roc_auc` is the binary ROC AUC, one-vs-rest weighted for more classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

CLASSIFICATION_METRICS = ("f1", "f1_macro", "accuracy", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "rmse", "mae")
MINIMIZED_METRICS = frozenset({"log_loss", "rmse", "mae"})
# Metrics that need class probabilities (or a decision function, for binary roc_auc).
SCORE_BASED_METRICS = frozenset({"roc_auc", "log_loss"})


class MetricError(ValueError):
    pass


def metrics_for_task(task: str) -> tuple[str, ...]:
    if task == "classification":
        return CLASSIFICATION_METRICS
    if task == "regression":
        return REGRESSION_METRICS
    raise MetricError(f"unknown task {task!r}: expected classification or regression")


def direction(metric: str) -> str:
    """'minimize' or 'maximize'."""
    if metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
        raise MetricError(f"unknown metric {metric!r}")
    return "minimize" if metric in MINIMIZED_METRICS else "maximize"


def is_better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """True when `candidate` beats `reference` by strictly more than `margin` (0: any improvement)."""
    if math.isnan(candidate):
        return False
    if math.isnan(reference):
        return True
    if direction(metric) == "maximize":
        return candidate - reference > margin
    return reference - candidate > margin


def improvement(metric: str, candidate: float, reference: float) -> float:
    """How much better the candidate is, positive when better, in the metric's units."""
    return candidate - reference if direction(metric) == "maximize" else reference - candidate


def best_of(metric: str, scores: Sequence[float]) -> float | None:
    finite = [s for s in scores if s is not None and not math.isnan(s)]
    if not finite:
        return None
    return max(finite) if direction(metric) == "maximize" else min(finite)


def natural_score(metric: str, greater_is_better_value: float) -> float:
    return -greater_is_better_value if metric in MINIMIZED_METRICS else greater_is_better_value


def optuna_direction(metric: str) -> str:
    return direction(metric)


@dataclass(frozen=True)
class MetricScorer:
    metric: str
    scorer: Callable  # scikit-learn scorer: (estimator, X, y) -> greater-is-better value

    def __call__(self, estimator, X, y) -> float:
        return natural_score(self.metric, float(self.scorer(estimator, X, y)))


def positive_class(classes: Sequence) -> object:
    return sorted(classes)[-1]


def make_metric_scorer(metric: str, classes: Sequence | None = None) -> MetricScorer:
    """A scorer returning the metric in natural units. `classes` (all labels) is needed
    for classification metrics."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        log_loss,
        make_scorer,
        mean_absolute_error,
        r2_score,
        roc_auc_score,
        root_mean_squared_error,
    )

    if metric in CLASSIFICATION_METRICS:
        if not classes or len(classes) < 2:
            raise MetricError(f"{metric} needs at least two classes, got {list(classes or [])}")
        labels = sorted(classes)
        binary = len(labels) == 2
    if metric == "accuracy":
        scorer = make_scorer(accuracy_score)
    elif metric == "f1":
        if binary:
            scorer = make_scorer(f1_score, pos_label=labels[-1], zero_division=0)
        else:
            scorer = make_scorer(f1_score, average="weighted", labels=labels, zero_division=0)
    elif metric == "f1_macro":
        scorer = make_scorer(f1_score, average="macro", labels=labels, zero_division=0)
    elif metric == "roc_auc":
        if binary:
            scorer = make_scorer(roc_auc_score, response_method=("predict_proba", "decision_function"))
        else:
            scorer = make_scorer(roc_auc_score, response_method="predict_proba", multi_class="ovr",
                                 average="weighted", labels=labels)
    elif metric == "log_loss":
        scorer = make_scorer(log_loss, response_method="predict_proba", greater_is_better=False, labels=labels)
    elif metric == "r2":
        scorer = make_scorer(r2_score)
    elif metric == "rmse":
        scorer = make_scorer(root_mean_squared_error, greater_is_better=False)
    elif metric == "mae":
        scorer = make_scorer(mean_absolute_error, greater_is_better=False)
    else:
        raise MetricError(f"unknown metric {metric!r}")
    return MetricScorer(metric, scorer)
