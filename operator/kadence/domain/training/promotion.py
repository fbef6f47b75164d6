"""The promotion policy: what happens to a freshly registered model.

`decide(policy, metric, candidate, production)` is pure. Modes:
- Candidate: the model stays Candidate.
- Manual: the model stays Candidate and waits for a person to set its spec.stage
  (with the kadence.dev/changed-by and kadence.dev/reason annotations).
- Auto: the model goes to the target stage (Production unless said otherwise) when
  there is no Production version yet, or when it beats the Production version on
  the hold-out objective metric by more than the margin (in the metric's units, in
  its direction: an RMSE must drop, an F1 must rise). Otherwise it stays Candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from ...api.trainingrun import PromotionPolicy
from .metrics import direction, improvement

STAY = "Stay"
PROMOTE = "Promote"
AWAIT_APPROVAL = "AwaitApproval"


@dataclass(frozen=True)
class PromotionDecision:
    action: str  # Stay, Promote, AwaitApproval
    stage: str  # the stage the new model should be in
    reason: str  # CamelCase, for conditions and Events
    message: str

    @property
    def promotes(self) -> bool:
        return self.action == PROMOTE


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def decide(
    policy: PromotionPolicy,
    metric: str,
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
) -> PromotionDecision:
    """Decide the new model's stage from its hold-out metrics and those of the current
    Production version of the same model (None when there is none)."""
    if policy.mode == "Candidate":
        return PromotionDecision(STAY, "Candidate", "PolicyKeepsCandidate",
                                 "the promotion policy keeps new models as Candidate")
    target = policy.target_stage or "Production"
    if policy.mode == "Manual":
        return PromotionDecision(AWAIT_APPROVAL, "Candidate", "AwaitingApproval",
                                 f"waiting for manual approval to {target}: set spec.stage with the "
                                 "kadence.dev/changed-by and kadence.dev/reason annotations")
    value = candidate.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return PromotionDecision(STAY, "Candidate", "MetricMissing",
                                 f"the new model has no hold-out {metric}; not promoting automatically")
    if production is None:
        return PromotionDecision(PROMOTE, target, "NoProductionVersion",
                                 f"no Production version to compare with; promoted to {target} "
                                 f"with {metric}={_fmt(value)}")
    current = production.get(metric)
    if current is None or (isinstance(current, float) and math.isnan(current)):
        return PromotionDecision(STAY, "Candidate", "ProductionMetricMissing",
                                 f"the Production version has no {metric} to compare with; not promoting automatically")
    gain = improvement(metric, value, current)
    better = "higher" if direction(metric) == "maximize" else "lower"
    comparison = (f"{metric}={_fmt(value)} vs Production {_fmt(current)} "
                  f"({better} is better, improvement {_fmt(gain)}, required more than {_fmt(policy.margin)})")
    if gain > policy.margin:
        return PromotionDecision(PROMOTE, target, "BeatsProduction", f"promoted to {target}: {comparison}")
    return PromotionDecision(STAY, "Candidate", "DoesNotBeatProduction", f"kept as Candidate: {comparison}")


def held_by_segments(decision: PromotionDecision, segments) -> PromotionDecision:
    """A promotion (or a wait for approval) the hold-out's segment gate (spec.segments, a
    SegmentResult) refuses becomes Stay, with the worst segment or the disparity in its message."""
    if segments is None or segments.passed or decision.action == STAY:
        return decision
    return PromotionDecision(STAY, "Candidate", segments.reason,
                             f"kept as Candidate: the hold-out fails spec.segments: {segments.message}")
