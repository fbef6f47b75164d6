"""Hold-out evaluation of the refitted winner."""

from __future__ import annotations

import math
from typing import Any, Sequence

from .metrics import MetricError, make_metric_scorer, metrics_for_task


def _label(value: Any) -> str:
    return str(value.item() if hasattr(value, "item") else value)


def holdout_metrics(estimator, X, y, task: str, classes: Sequence | None = None) -> dict[str, float]:
    """Every metric of the task the estimator can compute, in natural units."""
    out: dict[str, float] = {}
    for metric in metrics_for_task(task):
        scorer = make_metric_scorer(metric, classes)
        try:
            value = scorer(estimator, X, y)
        except (AttributeError, MetricError, ValueError):
            continue  # e.g. no predict_proba for log_loss: leave the metric out
        if math.isfinite(value):
            out[metric] = round(float(value), 6)
    return out


def classification_details(y_true, y_pred, classes: Sequence) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and the confusion matrix (rows: true, columns: predicted)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(sorted(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = {
        _label(label): {
            "precision": round(float(p), 6),
            "recall": round(float(r), 6),
            "f1": round(float(f), 6),
            "support": int(s),
        }
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "perClass": per_class,
        "confusionMatrix": {"labels": [_label(x) for x in labels], "matrix": matrix.astype(int).tolist()},
    }


def residual_summary(y_true, y_pred) -> dict[str, float]:
    import numpy as np

    residuals = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    q = np.quantile(residuals, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "mean": round(float(residuals.mean()), 6),
        "std": round(float(residuals.std()), 6),
        "maxAbs": round(float(np.abs(residuals).max()), 6),
        "p05": round(float(q[0]), 6),
        "p25": round(float(q[1]), 6),
        "median": round(float(q[2]), 6),
        "p75": round(float(q[3]), 6),
        "p95": round(float(q[4]), 6),
    }
