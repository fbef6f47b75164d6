"""Champion/challenger: a retrained Candidate against the Production model on the most recent
labelled predictions the candidate's training did not see, and the verdict as typed status.

The verdict is published in `status.lastComparison` and in `status.verdicts` (one entry per
candidate, newest last). An InferenceService tracking a stage reads it there (from the
policies watching it, in its namespace) to canary an approved candidate by itself: status is
written by the operator only, so a user who may edit a ModelVersion cannot forge a verdict.
"""

from __future__ import annotations

from datetime import datetime

from ...api.conditions import ConditionUpdate
from ...api.monitorpolicy import MonitorPolicySpec
from ...workloads.monitor_task import MonitorResult
from ..plan import EventSpec
from .model import VERDICTS_LIMIT, MonitorContext, MonitorPlan, iso


def rollout_after_verdict(spec: MonitorPolicySpec) -> str:
    """Canary unless the retrain's promotion policy asks a person to promote."""
    promotion = spec.actions.retrain.promotion if spec.actions.retrain else None
    return "Manual" if promotion is not None and promotion.mode in ("Candidate", "Manual") else "Canary"


def unseen_after(status: dict, candidate_run: str | None) -> tuple[str | None, int | None]:
    """Where the candidate's training feedback ends, and how many newer labelled predictions
    its retrain held out (the retrain record's inputs): the comparison scores both models on
    labelled predictions made after it only."""
    if not candidate_run:
        return None, None
    for record in reversed(status.get("retrains") or []):
        if record.get("trainingRun") == candidate_run:
            inputs = record.get("inputs") or {}
            return inputs.get("feedbackTo"), inputs.get("comparisonHoldout")
    return None, None


def with_verdict(verdicts: list[dict] | None, verdict: dict) -> list[dict]:
    """The verdict list with `verdict` replacing any earlier one about the same candidate."""
    kept = [v for v in verdicts or [] if v.get("candidate") != verdict.get("candidate")]
    return [*kept, verdict][-VERDICTS_LIMIT:]


def verdicts_by_candidate(verdicts: list[dict] | None) -> dict[str, dict]:
    return {v["candidate"]: v for v in verdicts or [] if v.get("candidate")}


def apply_comparison(plan: MonitorPlan, status: dict, spec: MonitorPolicySpec, result: MonitorResult,
                     job_name: str, context: MonitorContext, now: datetime) -> None:
    comparison = result.comparison
    if comparison is None:
        verdict = {"time": iso(now), "candidate": context.candidate.model_version if context.candidate else "",
                   "metric": "", "allowed": False, "reason": "ComparisonFailed", "message": result.message,
                   "job": job_name}
    else:
        verdict = {
            "time": iso(now), "candidate": context.candidate.model_version if context.candidate else
            comparison.challenger_version,
            "champion": context.production.model_version if context.production else None,
            "metric": comparison.metric, "candidateScore": comparison.challenger,
            "championScore": comparison.champion, "labelled": comparison.labelled, "heldOut": comparison.held_out,
            "allowed": comparison.allowed,
            "rollout": rollout_after_verdict(spec) if comparison.allowed else None,
            "reason": comparison.reason, "message": comparison.message, "job": job_name,
        }
    verdict = {k: v for k, v in verdict.items() if v is not None}
    plan.status["lastComparison"] = verdict
    plan.status["verdicts"] = with_verdict(plan.status.get("verdicts", status.get("verdicts")), verdict)
    plan.conditions.append(ConditionUpdate("CandidateApproved", "True" if verdict["allowed"] else "False",
                                           verdict["reason"], verdict["message"]))
    next_step = {"Canary": "; it goes on as a canary", "Manual": "; it waits for a person to promote it"}
    plan.events.append(EventSpec("Normal" if verdict["allowed"] else "Warning", verdict["reason"],
                                 f"candidate {verdict['candidate']}: {verdict['message']}"
                                 f"{next_step.get(verdict.get('rollout'), '')}"))
