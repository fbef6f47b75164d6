"""Monitor Jobs and evaluation-to-status: which Job evaluates which slot, the task it runs,
and how its result becomes status, conditions and Events.

Monitor Jobs: one per interval slot, named `<policy>-monitor-<slot>` (slot = floor(unix time /
interval)); its window ends at the slot's start, so a Job retried or re-created evaluates
exactly the same window. After an outage only the current slot runs. A champion/challenger Job
`<policy>-compare-<candidate>` runs once per candidate.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

from ...api.common import parse_duration
from ...api.conditions import ConditionUpdate
from ...api.monitorpolicy import MonitorPolicySpec
from ..batch_monitoring import watched
from ...builders.jobs import WorkloadSettings, job_state, pii_env, task_configmap, workload_job
from ...builders.meta import child_name
from ...domain.monitoring import policy as verdicts
from ...domain.monitoring import triggers
from ...workloads.monitor_task import MonitorResult, MonitorTask, monitoring_prefix
from ..plan import EventSpec
from .model import (CANDIDATE_ANNOTATION, COMPARE, COMPONENT, HISTORY_LIMIT, RESULT_KEY_ANNOTATION, SLOT_ANNOTATION,
                    MonitorContext, MonitorPlan, iso)

DEFAULT_HOLDOUT_ROWS = 50  # comparisonHoldout without performance (performance.minLabelled's default)


def interval_seconds(spec: MonitorPolicySpec) -> float:
    return parse_duration(spec.interval)


def current_slot(spec: MonitorPolicySpec, now: datetime) -> tuple[int, datetime]:
    """The slot index and its start (the evaluation time: the window's end)."""
    seconds = interval_seconds(spec)
    index = math.floor(now.timestamp() / seconds)
    return index, datetime.fromtimestamp(index * seconds, tz=timezone.utc)


def monitor_job_name(policy: str, slot: int) -> str:
    return child_name(policy, COMPONENT, slot)


def compare_job_name(policy: str, candidate: str, slot: int | None = None) -> str:
    """The candidate's comparison; again at a later monitor slot while it could not judge yet."""
    return child_name(policy, COMPARE, candidate, *([slot] if slot is not None else []))


def compare_result_key(namespace: str, policy: str, job_name: str, uid: str | None = None) -> str:
    """Keyed by the policy's uid too: a policy deleted and re-created under the same name never
    reads the verdict its previous incarnation left."""
    return f"monitoring/{namespace}/{policy}/comparisons/{uid + '/' if uid else ''}{job_name}/result.json"


def annotation(job: dict, key: str) -> str | None:
    return (job["metadata"].get("annotations") or {}).get(key)


def slot_of(job: dict) -> int:
    try:
        return int(annotation(job, SLOT_ANNOTATION) or -1)
    except ValueError:
        return -1


def is_comparison(job: dict) -> bool:
    return annotation(job, CANDIDATE_ANNOTATION) is not None


_EVALUATION_RESULT = re.compile(r"^\d{8}T\d{6}Z/result\.json$")


def result_key_of(body: dict, job: dict) -> str | None:
    """Where the result of `job` (one of the policy's own Jobs) lies: a comparison's key follows
    from the policy and the Job's name; a monitor Job's from its evaluation time, which its
    annotation records, accepted only as `monitoring/<ns>/<policy>/<stamp>/result.json` (an
    annotation naming any other key — another policy's, another namespace's — is not read)."""
    meta = body["metadata"]
    name = job["metadata"]["name"]
    if is_comparison(job):
        return compare_result_key(meta["namespace"], meta["name"], name, meta.get("uid"))
    key = annotation(job, RESULT_KEY_ANNOTATION) or ""
    prefix = monitoring_prefix(meta["namespace"], meta["name"])
    return key if key.startswith(prefix) and _EVALUATION_RESULT.match(key[len(prefix):]) else None


def results_to_fetch(body: dict, jobs: list[dict]) -> dict[str, str]:
    """Finished Jobs whose result the status does not reflect yet -> the S3 key of their result
    (`result_key_of`): the newest finished monitor Job (older unread ones are superseded and
    deleted) and any finished comparison Job."""
    status = body.get("status") or {}
    seen = {status.get("lastJob"), (status.get("lastComparison") or {}).get("job"),
            *(v.get("job") for v in status.get("verdicts") or [])}
    finished = [j for j in jobs if job_state(j) != "Running" and result_key_of(body, j)]
    monitors = sorted((j for j in finished if not is_comparison(j) and j["metadata"]["name"] not in seen),
                      key=slot_of)
    wanted = [j for j in newest_comparisons(finished) if j["metadata"]["name"] not in seen] + monitors[-1:]
    return {j["metadata"]["name"]: result_key_of(body, j) for j in wanted}


def newest_comparisons(jobs: list[dict]) -> list[dict]:
    """The latest finished comparison of each candidate. An earlier attempt is superseded even
    while it is still around: reading it again after the newer verdict replaced it would flip
    the verdict back and forth at every reconcile (and a canary with it)."""
    newest: dict[str, dict] = {}
    for job in sorted((j for j in jobs if is_comparison(j)),
                      key=lambda j: (slot_of(j), j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"])):
        newest[annotation(job, CANDIDATE_ANNOTATION)] = job
    return list(newest.values())


def _window(spec: MonitorPolicySpec) -> dict:
    if spec.window.duration:
        return {"durationSeconds": parse_duration(spec.window.duration)}
    return {"lastPredictions": spec.window.last_predictions}


def comparison_holdout_rows(spec: MonitorPolicySpec) -> int:
    """How many of the newest labelled predictions a retrain's feedback leaves out for
    champion/challenger: comparisonHoldout.rows, by default what the comparison needs to judge
    (performance.minLabelled, else 50); none when the retrain does not train on feedback."""
    retrain = spec.actions.retrain
    if retrain is None or not retrain.include_feedback:
        return 0
    if retrain.comparison_holdout.rows is not None:
        return retrain.comparison_holdout.rows
    return spec.performance.min_labelled if spec.performance else DEFAULT_HOLDOUT_ROWS


def feedback_export_task(spec: MonitorPolicySpec, context: MonitorContext) -> dict | None:
    """Ask the monitor Job for every stored labelled prediction as one file (a row per request id,
    its latest label) whenever the policy retrains: what a retrain would learn from, and whether
    any label arrived since the serving model's data. The prediction time goes into the retrain
    spec's dataSelection.timeColumn when it has one."""
    retrain, production = spec.actions.retrain, context.production
    if retrain is None or not retrain.enabled or production is None or not production.target:
        return None
    task: dict[str, Any] = {"target": production.target, "holdOut": comparison_holdout_rows(spec),
                            "holdOutMaxFraction": retrain.comparison_holdout.max_fraction}
    time_column = ((context.retrain_spec or {}).get("dataSelection") or {}).get("timeColumn")
    if time_column and time_column != production.target:
        task["timeColumn"] = time_column
    return task


def build_task(body: dict, spec: MonitorPolicySpec, context: MonitorContext, evaluation_time: datetime,
               job_name: str, compare: bool = False, unseen_after: str | None = None,
               held_out: int | None = None) -> MonitorTask:
    meta = body["metadata"]
    production = context.production
    retrain = spec.actions.retrain
    metric = spec.performance.metric if spec.performance else None
    task: dict[str, Any] = {
        "namespace": meta["namespace"], "policy": meta["name"],
        "inferenceService": watched(spec).stream, "time": iso(evaluation_time),
        "window": _window(spec),
        "performance": spec.performance.wire() if spec.performance else None,
        "classes": production.classes if production else None,
        "segments": spec.segments.wire() if spec.segments else None,
        "engine": spec.engine,
    }
    if compare:
        task["resultKey"] = compare_result_key(meta["namespace"], meta["name"], job_name, meta.get("uid"))
        candidate = context.candidate
        task["compare"] = {
            "champion": ({"version": production.version, "uri": production.uri, "sha256": production.sha256}
                         if production else None),
            "challenger": {"version": candidate.version, "uri": candidate.uri, "sha256": candidate.sha256},
        }
        if unseen_after:
            task["compare"]["unseenAfter"] = unseen_after
            task["compare"]["heldOut"] = held_out or None
        if retrain is not None and retrain.promotion is not None:
            task["compare"]["margin"] = retrain.promotion.margin
        task["history"] = 0
    else:
        task["drift"] = spec.drift.wire() if spec.drift else None
        task["referenceUri"] = context.reference_uri or (production.reference_uri if production else None)
        features = [f for f in (production.inputs or []) if f != production.target] if production else []
        if features:
            task["features"] = features
        if production and production.target:
            task["excludeColumns"] = [production.target]
        if production and production.personal:
            task["personalColumns"] = list(production.personal)
        export = feedback_export_task(spec, context)
        if export is not None:  # its checkpoint is this incarnation's: see FeedbackExport.policyUid
            export.update({"policyUid": meta.get("uid"), "policyCreated": meta.get("creationTimestamp")})
        task["feedbackExport"] = export
        if production and metric and metric in production.holdout_metrics:
            task["offlineMetric"] = production.holdout_metrics[metric]
        if production and production.estimation_reference:
            task["estimationReference"] = production.estimation_reference
            task["estimationVersion"] = production.version
    return MonitorTask.model_validate({k: v for k, v in task.items() if v is not None})


def build_job(body: dict, task: MonitorTask, job_name: str, component: str, settings: WorkloadSettings,
              annotations: dict[str, str]) -> list[dict]:
    return [task_configmap(body, job_name, component, task.wire()),
            workload_job(body, job_name, component, ["kadence", "monitor"], settings, extra_env=pii_env(),
                         annotations={RESULT_KEY_ANNOTATION: task.resolved_result_key(), **annotations})]


def feedback_status(result: MonitorResult, job_name: str) -> dict | None:
    """The monitor result's feedback export as status.feedback would publish it; None without
    labelled predictions."""
    export = result.feedback_export
    if export is None or not export.uri or not export.rows or not export.sha256:
        return None
    entry = {"uri": export.uri, "rows": export.rows, "since": export.since, "from": export.start, "to": export.end,
             "sha256": export.sha256, "heldOut": export.held_out or None, "time": result.time, "job": job_name}
    return {k: v for k, v in entry.items() if v is not None}


def evaluation_status(result: MonitorResult, job_name: str) -> dict:
    entry = {
        "time": result.time, "samples": result.samples, "labelledSamples": result.labelled_samples,
        "driftScores": result.drift_scores or None, "driftedFeatures": result.drifted_features or None,
        "metrics": result.metrics or None, "breached": result.breached, "reason": result.reason,
        "message": result.message, "reportUri": result.report_uri, "job": job_name,
        "feedback": feedback_status(result, job_name),
        "driftWindow": result.drift_window.wire() if result.drift_window else None,
        "qualityWindow": result.quality_window.wire() if result.quality_window else None,
        **{key: part.wire() for key, part in (("estimate", result.estimate), ("conceptDrift", result.concept_drift),
                                              ("labelDrift", result.label_drift),
                                              ("predictionDrift", result.prediction_drift)) if part is not None},
    }
    return {k: v for k, v in entry.items() if v is not None}


def _summaries(spec: MonitorPolicySpec, result: MonitorResult) -> dict:
    status: dict[str, Any] = {}
    if spec.performance:
        metric = spec.performance.metric
        value = result.metrics.get(metric)
        summary = f"{metric}={value:.3g}" if value is not None else f"{metric}=n/a"
        estimated = result.estimate.metrics.get(metric) if result.estimate else None
        if estimated is not None:
            summary += f" est={estimated:.3g} ({result.labelled_samples} labelled)"
        status["metricSummary"] = summary
    if spec.drift:
        judged = sum(1 for f in result.features if f.status == "Judged")
        status["driftSummary"] = f"{len(result.drifted_features)}/{judged} drifted"
    return status


def apply_evaluation(plan: MonitorPlan, status: dict, spec: MonitorPolicySpec, result: MonitorResult,
                     job_name: str) -> None:
    entry = evaluation_status(result, job_name)
    history = [*(status.get("history") or []), entry][-HISTORY_LIMIT:]
    plan.status.update({"lastEvaluation": entry, "history": history, "lastJob": job_name,
                        **_summaries(spec, result)})
    plan.evaluated = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    previous = status.get("lastEvaluation") or {}
    if result.concept_drift is not None and result.concept_drift.detected and not (
            previous.get("conceptDrift") or {}).get("detected"):
        plan.events.append(EventSpec("Warning", "ConceptDrift", result.concept_drift.message))
    if result.breached:
        plan.conditions.append(ConditionUpdate("Breached", "True", result.reason, result.message))
        if spec.actions.alert.event:  # spec.actions.alert.event: false silences the breach's Warning Event
            plan.events.append(EventSpec("Warning", result.reason, result.message))
        plan.phase = "Breached"
    elif result.reason in verdicts.NOT_JUDGED_REASONS:
        plan.conditions.append(ConditionUpdate("Breached", "Unknown", result.reason, result.message))
        if previous.get("reason") != result.reason:
            plan.events.append(EventSpec("Normal", result.reason, result.message))
        plan.phase = "Waiting"
    else:
        plan.conditions.append(ConditionUpdate("Breached", "False", result.reason, result.message))
        if previous.get("breached"):
            plan.events.append(EventSpec("Normal", "Recovered", result.message))
        plan.phase = "Healthy"


def breach_started(history: list[dict]) -> str | None:
    """The time of the first breached evaluation of the run of breaches the history ends with."""
    start = None
    for entry in reversed(history):
        if not entry.get("breached"):
            break
        start = entry.get("time")
    return start


def production_gap_check(plan: MonitorPlan, spec: MonitorPolicySpec, context: MonitorContext,
                         result: MonitorResult, now: datetime):
    gap_spec = spec.triggers.on_production_gap
    if gap_spec is None or spec.performance is None:
        return None
    metric = spec.performance.metric
    offline = context.production.holdout_metrics.get(metric) if context.production else None
    check = triggers.check_production_gap(
        metric=metric, offline=offline, live=result.metrics.get(metric), margin=gap_spec.margin,
        labelled=result.labelled_samples, min_labelled=spec.performance.min_labelled, retrain=gap_spec.retrain)
    if check.gap is not None:
        gap = {"time": iso(now), "metric": metric, "offline": offline, "live": result.metrics[metric],
               "gap": check.gap, "margin": gap_spec.margin, "exceeded": check.gap > gap_spec.margin}
        plan.status["productionGap"] = gap
        plan.production_gap = gap
        plan.conditions.append(ConditionUpdate("ProductionGap", "True" if gap["exceeded"] else "False",
                                               check.reason, check.message))
        if gap["exceeded"]:
            plan.events.append(EventSpec("Warning", check.reason, check.message))
    return check
