"""The MonitorPolicy's decisions, as pure functions in the style of cert-manager's
`(inputs) -> (reason, message, flag)`.

- `judge_drift`, `judge_quality`, `judge_evaluation`: did this evaluation breach the policy,
  and if it could not judge (no predictions, too few samples, no feedback yet, no reference),
  say so with its own reason; "could not judge" is never reported as "healthy".
- (whether a retrain may start — one at a time, cooldown after a win, budget — is
  `domain.monitoring.retrain.retrain_gate`)
- `challenger_gate`: may a retrained candidate go on to canary (it must beat the Production
  model on the recent labelled window)?

Reasons are CamelCase words for Kubernetes conditions and Events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .quality import LOWER_IS_BETTER, is_better, is_worse_than

# Evaluation reasons
HEALTHY = "Healthy"
NO_DRIFT = "NoDrift"
DRIFT_DETECTED = "DriftDetected"
QUALITY_OK = "QualityOK"
QUALITY_BELOW_THRESHOLD = "QualityBelowThreshold"
DRIFT_AND_QUALITY = "DriftAndQualityBreached"
NO_PREDICTIONS = "NoPredictions"
TOO_FEW_SAMPLES = "TooFewSamples"
MISSING_REFERENCE = "MissingReference"
NOTHING_JUDGED = "NoFeatureJudged"
NO_FEEDBACK = "NoFeedback"
TOO_FEW_LABELS = "TooFewLabels"
METRIC_UNAVAILABLE = "MetricUnavailable"
ESTIMATED_QUALITY_OK = "EstimatedQualityOK"
ESTIMATED_QUALITY_BELOW_THRESHOLD = "EstimatedQualityBelowThreshold"
NO_ESTIMATE = "NoEstimate"
TOO_FEW_PREDICTIONS_TO_ESTIMATE = "TooFewPredictionsToEstimate"
NOT_JUDGED_REASONS = frozenset({NO_PREDICTIONS, TOO_FEW_SAMPLES, MISSING_REFERENCE, NOTHING_JUDGED,
                                NO_FEEDBACK, TOO_FEW_LABELS, METRIC_UNAVAILABLE, NO_ESTIMATE,
                                TOO_FEW_PREDICTIONS_TO_ESTIMATE})

# Retrain gate reasons
RETRAIN_DISABLED = "RetrainDisabled"
RETRAIN_ALLOWED = "RetrainAllowed"

# Champion/challenger reasons
CHALLENGER_NOT_EVALUATED = "ChallengerNotEvaluated"
TOO_FEW_LABELS_TO_COMPARE = "TooFewLabelsToCompare"
NO_CHAMPION = "NoChampion"
CHALLENGER_WINS = "ChallengerBeatsChampion"
CHALLENGER_NOT_BETTER = "ChallengerNotBetter"



@dataclass(frozen=True)
class Decision:
    """The verdict of one evaluation."""

    reason: str
    message: str
    breached: bool

    @property
    def judged(self) -> bool:
        return self.reason not in NOT_JUDGED_REASONS


@dataclass(frozen=True)
class Gate:
    """Whether something may proceed, and why (not)."""

    reason: str
    message: str
    allowed: bool


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def judge_drift(*, samples: int, min_samples: int, reference_available: bool,
                judged_features: int, drifted_features: Sequence[str], drift_share: float) -> Decision:
    if not reference_available:
        return Decision(MISSING_REFERENCE, "no drift reference: the serving model's training profile "
                                           "(or the policy's reference dataset) was not found", False)
    if samples == 0:
        return Decision(NO_PREDICTIONS, "no predictions in the window", False)
    if samples < min_samples:
        return Decision(TOO_FEW_SAMPLES, f"{samples} predictions in the window, {min_samples} needed to judge drift",
                        False)
    if judged_features == 0:
        return Decision(NOTHING_JUDGED, "no feature could be compared with the reference", False)
    share = len(drifted_features) / judged_features
    listed = ", ".join(drifted_features[:10]) + (" …" if len(drifted_features) > 10 else "")
    summary = f"{len(drifted_features)}/{judged_features} features drifted ({share:.0%}"
    if share >= drift_share:
        return Decision(DRIFT_DETECTED, f"{summary} >= {drift_share:.0%}): {listed}", True)
    tail = f": {listed}" if drifted_features else ""
    return Decision(NO_DRIFT, f"{summary} < {drift_share:.0%}){tail}", False)


def judge_quality(*, metric: str, threshold: float, value: float | None, labelled: int, min_labelled: int,
                  unavailable_because: str | None = None) -> Decision:
    if labelled == 0:
        return Decision(NO_FEEDBACK, "no labelled predictions in the window yet", False)
    if labelled < min_labelled:
        return Decision(TOO_FEW_LABELS, f"{labelled} labelled predictions in the window, {min_labelled} needed "
                                        f"to judge {metric}", False)
    if value is None:
        return Decision(METRIC_UNAVAILABLE, f"{metric} could not be computed: {unavailable_because or 'unknown'}",
                        False)
    if is_worse_than(metric, value, threshold):
        side = ">" if metric in LOWER_IS_BETTER else "<"
        return Decision(QUALITY_BELOW_THRESHOLD,
                        f"{metric}={_fmt(value)} {side} {_fmt(threshold)} over {labelled} labelled predictions", True)
    side = "<=" if metric in LOWER_IS_BETTER else ">="
    return Decision(QUALITY_OK, f"{metric}={_fmt(value)} {side} {_fmt(threshold)} over {labelled} labelled predictions",
                    False)


def judge_estimate(*, metric: str, threshold: float, value: float | None, predictions: int, min_predictions: int,
                   unavailable_because: str | None = None) -> Decision:
    """The metric estimated without labels over the drift window, against the threshold."""
    if value is None:
        return Decision(NO_ESTIMATE, f"no estimate of {metric}: {unavailable_because or 'unknown'}", False)
    if predictions < min_predictions:
        return Decision(TOO_FEW_PREDICTIONS_TO_ESTIMATE, f"{predictions} predictions in the window, {min_predictions} "
                                                         f"needed to estimate {metric}", False)
    over = f"over {predictions} predictions without labels"
    if is_worse_than(metric, value, threshold):
        side = ">" if metric in LOWER_IS_BETTER else "<"
        return Decision(ESTIMATED_QUALITY_BELOW_THRESHOLD, f"estimated {metric}={_fmt(value)} {side} "
                                                           f"{_fmt(threshold)} {over}", True)
    side = "<=" if metric in LOWER_IS_BETTER else ">="
    return Decision(ESTIMATED_QUALITY_OK, f"estimated {metric}={_fmt(value)} {side} {_fmt(threshold)} {over}", False)


def judge_performance(judge_on: str, realized: Decision, estimated: Decision | None) -> Decision:
    """One quality verdict from the realized and the estimated ones (spec.performance.judgeOn:
    Realized, Estimated or Either); the message always gives both."""
    if estimated is None:
        return realized
    if judge_on == "Realized":
        return Decision(realized.reason, f"{realized.message}; {estimated.message}", realized.breached)
    if judge_on == "Estimated":
        return Decision(estimated.reason, f"{estimated.message}; {realized.message}", estimated.breached)
    if judge_on != "Either":
        raise ValueError(f"judgeOn must be Realized, Estimated or Either, got {judge_on!r}")
    message = f"{realized.message}; {estimated.message}"
    breached = [d for d in (realized, estimated) if d.breached]
    judged = [d for d in (realized, estimated) if d.judged]
    decisive = (breached or judged or [realized])[0]
    return Decision(decisive.reason, message, bool(breached))


def judge_evaluation(drift: Decision | None, quality: Decision | None) -> Decision:
    """One verdict from the drift and quality verdicts (either may be absent: not configured)."""
    parts = [d for d in (quality, drift) if d is not None]
    if not parts:
        raise ValueError("an evaluation needs a drift or a quality verdict")
    breached = [d for d in parts if d.breached]
    message = "; ".join(d.message for d in parts)
    if len(breached) == 2:
        return Decision(DRIFT_AND_QUALITY, message, True)
    if breached:
        return Decision(breached[0].reason, message, True)
    not_judged = [d for d in parts if not d.judged]
    if not_judged:
        return Decision(not_judged[0].reason, message, False)
    return Decision(HEALTHY, message, False)


def challenger_gate(*, metric: str, champion: float | None, challenger: float | None, labelled: int,
                    min_labelled: int, margin: float = 0.0) -> Gate:
    """The candidate (challenger) must beat the Production model (champion) on the same recent
    labelled window, by more than `margin`. With no Production model there is nothing to beat.
    Against a Production model, too few labelled predictions is the verdict whatever the scores:
    on a handful of rows the metric may be undefined (f1 of one class), and the wait is for labels."""
    if champion is not None and labelled < min_labelled:
        return Gate(TOO_FEW_LABELS_TO_COMPARE,
                    f"{labelled} labelled predictions in the window, {min_labelled} needed to compare", False)
    if challenger is None:
        return Gate(CHALLENGER_NOT_EVALUATED, "the candidate has not been scored on the recent labelled window", False)
    if champion is None:
        return Gate(NO_CHAMPION, f"no Production model to compare with; candidate {metric}={_fmt(challenger)}", True)
    comparison = (f"candidate {metric}={_fmt(challenger)} vs Production {_fmt(champion)} "
                  f"on {labelled} labelled predictions")
    if is_better(metric, challenger, champion, margin):
        return Gate(CHALLENGER_WINS, comparison, True)
    needed = f" (needs to be better by more than {_fmt(margin)})" if margin else ""
    return Gate(CHALLENGER_NOT_BETTER, comparison + needed, False)


