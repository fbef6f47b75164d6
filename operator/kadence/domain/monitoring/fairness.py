"""Segments and fairness, computed and judged purely (spec.segments of a TrainingRun, a
MonitorPolicy and its champion/challenger comparison, an InferenceService's canary analysis).

- Per segment: the policy metric (`quality.quality_for`, the same figure the whole-window gate
  judges) for every value of every segment column, with its row count. A segment with fewer
  than `minRows` rows is reported but not judged: its metric is noise.
- For the sensitive attribute: fairlearn's demographic-parity difference (the largest gap in
  selection rate, the share predicted positive, between groups) and equalized-odds difference
  (the larger of the largest true-positive-rate gap and the largest false-positive-rate gap),
  over the groups with at least `minRows` rows. Both are defined for two classes (the positive
  class is the larger sorted label, as in `quality`); for more classes or regression they are
  skipped with that reason, never replaced by a number.

`judge_segments` turns a report into a gate: `minSegmentMetric` (every judged segment's metric
reaches it; for rmse/mae stays under it) and `maxDisparity` (both differences at most it). The
message names the worst segment or the disparity and its numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .quality import LOWER_IS_BETTER, QualityError, is_worse_than, quality_for, task_of

MISSING = "(missing)"
SEGMENTS_PASSED = "SegmentsPassed"
SEGMENT_BELOW_THRESHOLD = "SegmentBelowThreshold"
DISPARITY_ABOVE_LIMIT = "DisparityAboveLimit"
SEGMENTS_NOT_JUDGED = "SegmentsNotJudged"


@dataclass(frozen=True)
class SegmentMetric:
    column: str
    segment: str
    rows: int
    value: float | None
    judged: bool  # rows >= minRows and the metric could be computed
    unavailable: str | None = None

    def wire(self) -> dict[str, Any]:
        out = {"column": self.column, "segment": self.segment, "rows": self.rows, "judged": self.judged}
        if self.value is not None:
            out["value"] = round(self.value, 6)
        if self.unavailable:
            out["unavailable"] = self.unavailable
        return out


@dataclass(frozen=True)
class Disparity:
    attribute: str
    demographic_parity_difference: float | None = None
    equalized_odds_difference: float | None = None
    selection_rates: dict[str, float] = field(default_factory=dict)  # group -> share predicted positive
    groups: int = 0  # groups judged (>= minRows rows)
    unavailable: str | None = None

    @property
    def worst(self) -> float | None:
        values = [v for v in (self.demographic_parity_difference, self.equalized_odds_difference) if v is not None]
        return max(values) if values else None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute, "groups": self.groups}
        if self.demographic_parity_difference is not None:
            out["demographicParityDifference"] = round(self.demographic_parity_difference, 6)
        if self.equalized_odds_difference is not None:
            out["equalizedOddsDifference"] = round(self.equalized_odds_difference, 6)
        if self.selection_rates:
            out["selectionRates"] = {k: round(v, 6) for k, v in self.selection_rates.items()}
        if self.unavailable:
            out["unavailable"] = self.unavailable
        return out


@dataclass(frozen=True)
class SegmentReport:
    metric: str
    segments: list[SegmentMetric] = field(default_factory=list)
    disparity: Disparity | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not reported

    def worst(self) -> SegmentMetric | None:
        judged = [s for s in self.segments if s.judged and s.value is not None]
        if not judged:
            return None
        lower_better = self.metric in LOWER_IS_BETTER
        return max(judged, key=lambda s: s.value) if lower_better else min(judged, key=lambda s: s.value)

    def wire(self, limit: int = 100) -> dict[str, Any]:
        """On the wire, at most `limit` segments: the judged ones worst first, then the rest by rows."""
        lower_better = self.metric in LOWER_IS_BETTER
        ranked = sorted(self.segments, key=lambda s: (not s.judged, s.value is None,
                                                      -(s.value or 0) if lower_better else (s.value or 0), -s.rows))
        out: dict[str, Any] = {"metric": self.metric, "segments": [s.wire() for s in ranked[:limit]]}
        if self.disparity is not None:
            out["disparity"] = self.disparity.wire()
        skipped = dict(self.skipped)
        if len(ranked) > limit:
            skipped["(more)"] = f"{len(ranked) - limit} more segments not listed"
        if skipped:
            out["skipped"] = skipped
        return out


@dataclass(frozen=True)
class SegmentGate:
    passed: bool
    reason: str
    message: str


def _key(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def segment_report(metric: str, y_true: Sequence[Any], y_pred: Sequence[Any], *,
                   columns: Mapping[str, Sequence[Any] | None], sensitive: str | None = None,
                   probabilities: Sequence[Any] | None = None, classes: Sequence[Any] | None = None,
                   min_rows: int = 30) -> SegmentReport:
    """The metric per value of each segment column and, for `sensitive` (one of `columns`'
    keys, or also given there), the disparity. `columns` maps a column to its values row by row
    (None: the column is not in the data, reported as skipped)."""
    task_of(metric)  # a QualityError for an unknown metric
    n = len(y_true)
    segments: list[SegmentMetric] = []
    skipped: dict[str, str] = {}
    wanted = list(dict.fromkeys([*columns, *([sensitive] if sensitive else [])]))
    for column in wanted:
        values = columns.get(column)
        if values is None:
            skipped[column] = f"column {column!r} is not in the data"
            continue
        if len(values) != n:
            raise QualityError(f"segment column {column!r} has {len(values)} values for {n} rows")
        keys = np.array([_key(v) for v in values], dtype=object)
        for segment in sorted(set(keys)):
            rows = np.flatnonzero(keys == segment)
            pick = rows.tolist()
            quality = quality_for(metric, [y_true[i] for i in pick], [y_pred[i] for i in pick],
                                  [probabilities[i] for i in pick] if probabilities is not None else None, classes)
            value = quality.metrics.get(metric)
            value = value if value is not None and math.isfinite(value) else None
            judged = len(rows) >= min_rows and value is not None
            why = quality.unavailable.get(metric) if value is None else (
                None if judged else f"{len(rows)} rows < minRows {min_rows}")
            segments.append(SegmentMetric(column, segment, len(rows), value, judged, why))
    disparity = None
    if sensitive and columns.get(sensitive) is not None:
        disparity = disparity_of(metric, y_true, y_pred, sensitive, columns[sensitive], classes, min_rows)
    return SegmentReport(metric, segments, disparity, skipped)


def disparity_of(metric: str, y_true: Sequence[Any], y_pred: Sequence[Any], attribute: str,
                 groups: Sequence[Any], classes: Sequence[Any] | None, min_rows: int) -> Disparity:
    """fairlearn's demographic-parity and equalized-odds differences over the groups of
    `attribute` with at least `min_rows` rows."""
    if task_of(metric) == "regression":
        return Disparity(attribute, unavailable="demographic parity and equalized odds are defined for classifiers; "
                                                "this model is a regressor")
    labels = sorted({*map(_label, y_true), *map(_label, classes or [])} | set(map(_label, y_pred)), key=str)
    if len(labels) > 2:
        return Disparity(attribute, unavailable=f"demographic parity and equalized odds are defined for two classes; "
                                                f"there are {len(labels)}")
    if len(labels) < 2:
        return Disparity(attribute, unavailable="only one class among the labels and predictions")
    positive = labels[-1]
    keys = np.array([_key(v) for v in groups], dtype=object)
    counts = {g: int((keys == g).sum()) for g in sorted(set(keys))}
    kept = [g for g, c in counts.items() if c >= min_rows]
    if len(kept) < 2:
        return Disparity(attribute, groups=len(kept),
                         unavailable=f"fewer than two groups of {attribute!r} with at least {min_rows} rows "
                                     f"({', '.join(f'{g}: {c}' for g, c in counts.items())})")
    mask = np.isin(keys, kept)
    truth = np.array([_label(v) == positive for v in y_true], dtype=int)[mask]
    predicted = np.array([_label(v) == positive for v in y_pred], dtype=int)[mask]
    sensitive = keys[mask]
    from fairlearn.metrics import (demographic_parity_difference, equalized_odds_difference,  # noqa: PLC0415
                                   selection_rate)
    from fairlearn.metrics import MetricFrame  # noqa: PLC0415

    rates = MetricFrame(metrics=selection_rate, y_true=truth, y_pred=predicted, sensitive_features=sensitive)
    dp = float(demographic_parity_difference(truth, predicted, sensitive_features=sensitive))
    eo = float(equalized_odds_difference(truth, predicted, sensitive_features=sensitive))
    unavailable = None
    if not math.isfinite(eo):
        unavailable = "equalized odds needs both classes among the labels of every group"
    return Disparity(attribute, dp if math.isfinite(dp) else None, eo if math.isfinite(eo) else None,
                     {str(k): float(v) for k, v in rates.by_group.items()}, len(kept), unavailable)


def _label(value: Any) -> Any:
    """Labels compared as the model logs them: 1 and 1.0 and True are one class."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def judge_segments(report: SegmentReport, *, min_segment_metric: float | None,
                   max_disparity: float | None) -> SegmentGate:
    """The gates: every judged segment's metric on the right side of `min_segment_metric`, and
    the disparity at most `max_disparity`. Nothing to judge is not a failure, but says why."""
    metric = report.metric
    if min_segment_metric is not None:
        failing = [s for s in report.segments if s.judged and is_worse_than(metric, s.value, min_segment_metric)]
        if failing:
            worst = report.worst()
            side = ">" if metric in LOWER_IS_BETTER else "<"
            return SegmentGate(False, SEGMENT_BELOW_THRESHOLD,
                               f"segment {worst.column}={worst.segment}: {metric}={worst.value:.4g} {side} "
                               f"minSegmentMetric {min_segment_metric:g} over {worst.rows} rows "
                               f"({len(failing)} of {sum(s.judged for s in report.segments)} judged segments fail)")
    disparity = report.disparity
    if max_disparity is not None and disparity is not None and disparity.worst is not None \
            and disparity.worst > max_disparity:
        rates = ", ".join(f"{g}: {r:.3g}" for g, r in disparity.selection_rates.items())
        return SegmentGate(False, DISPARITY_ABOVE_LIMIT,
                           f"{disparity.attribute}: demographic-parity difference "
                           f"{_fmt(disparity.demographic_parity_difference)}, equalized-odds difference "
                           f"{_fmt(disparity.equalized_odds_difference)} > maxDisparity {max_disparity:g} "
                           f"(selection rates {rates})")
    problems = []
    if min_segment_metric is not None and not any(s.judged for s in report.segments):
        problems.append(f"no segment has {metric} over enough rows")
    if max_disparity is not None and (disparity is None or disparity.worst is None):
        problems.append(disparity.unavailable if disparity is not None and disparity.unavailable
                        else "no sensitive attribute in the data")
    if problems:
        return SegmentGate(True, SEGMENTS_NOT_JUDGED, "; ".join(problems))
    worst = report.worst()
    parts = [f"worst segment {worst.column}={worst.segment} {metric}={worst.value:.4g}"] if worst else []
    if disparity is not None and disparity.worst is not None:
        parts.append(f"{disparity.attribute} disparity {disparity.worst:.3g}")
    return SegmentGate(True, SEGMENTS_PASSED, "; ".join(parts) or "no segments")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def evaluate_segments(metric: str, y_true: Sequence[Any], y_pred: Sequence[Any], *,
                      columns: Mapping[str, Sequence[Any] | None], sensitive: str | None,
                      min_segment_metric: float | None, max_disparity: float | None, min_rows: int,
                      probabilities: Sequence[Any] | None = None,
                      classes: Sequence[Any] | None = None) -> tuple[SegmentReport, SegmentGate, dict[str, Any]]:
    """The report, its gate, and both on the wire as a result or status stores them:
    {metric, segments, disparity?, skipped?, passed, reason, message}."""
    report = segment_report(metric, y_true, y_pred, columns=columns, sensitive=sensitive,
                            probabilities=probabilities, classes=classes, min_rows=min_rows)
    gate = judge_segments(report, min_segment_metric=min_segment_metric, max_disparity=max_disparity)
    return report, gate, {**report.wire(), "passed": gate.passed, "reason": gate.reason, "message": gate.message}
