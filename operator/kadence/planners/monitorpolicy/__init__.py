"""MonitorPolicy planner: (policy, its Jobs and their results, what the handler resolved,
clock) -> MonitorPlan.

How the handler uses it on every reconcile (create/update/resume/timer):
1. resolve a `MonitorContext`: whether the InferenceService exists; its Production
   ModelVersion as `ModelInfo` (version label used in the logs, artifact URI + sha256,
   hold-out metrics, the profile.json of its training Dataset version, target column,
   Dataset name/version/rows); a Candidate ModelVersion created by one of this policy's
   retrain TrainingRuns (label kadence.dev/retrained-by=<policy>), if any; the latest
   validated version of that Dataset; the drift reference named in spec.drift.reference;
   the TrainingRun spec to retrain with (the template, or the spec of fromTrainingRun);
   and any reference that cannot be resolved, as {spec field: message};
2. list the Jobs labelled kadence.dev/owner-kind=monitorpolicy, owner-name=<name>;
   `results_to_fetch(body, jobs)` names the finished ones whose result the status does not
   reflect yet, with the S3 key of each; read them (a missing key is left out);
3. `plan_monitorpolicy(body, MonitorObservation(jobs, results), context, now)`; apply
   `plan.children` (ConfigMap then Job; a TrainingRun for a retrain), delete `plan.delete`,
   merge `plan.status`, set `plan.conditions`, post `plan.events`, requeue after
   `plan.requeue_after`;
4. metrics (kadence.domain.monitoring.metrics.monitor_metrics()): for `plan.evaluated`
   call record_evaluation(ns, name, plan.evaluated); for `plan.production_gap`
   record_production_gap; for `plan.retrain_trigger` record_retrain; for
   `plan.held_reason` record_held_retrain;
5. `plan.candidate_verdict` (a Comparison wire dict) tells whether the candidate may go on
   to canary (`allowed`, and `rollout: Canary`); the handler annotates the candidate
   ModelVersion with it (`CANDIDATE_VERDICT_ANNOTATION`), which an InferenceService tracking a
   stage reads to start the canary by itself;
6. `plan.append_data` names a Dataset and the URI of the window's labelled feedback: the
   handler adds it to the Dataset's appended-data annotation (idempotent), which makes the
   Dataset controller ingest a new version that includes it.

Retrains: every retrain registers its model as a Candidate (the TrainingRun's promotion is
forced to Candidate), so nothing skips champion/challenger and canary. With
`includeFeedback` and labelled rows in the window, a retrain is decided in two passes: the
decision (cooldown and budget counted, `status.pendingRetrain`, feedback appended), then,
once the Dataset has a version holding the feedback (and the FeatureSet materialized it),
the TrainingRun pinned to that version. Feedback that is not ingested within
`FEEDBACK_WAIT` retrains on the latest data, with a Warning saying so.

Monitor Jobs: one per interval slot, named `<policy>-monitor-<slot>` (slot = floor(unix
time / interval)); its window ends at the slot's start, so a Job retried or re-created
evaluates exactly the same window. After an outage only the current slot runs. A
champion/challenger Job `<policy>-compare-<candidate>` runs once per candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..api.conditions import ConditionUpdate
from ..api.monitorpolicy import MonitorPolicySpec
from ..builders.jobs import WorkloadSettings, job_state, task_configmap, workload_job
from ..builders.meta import child_name, cut_name, labels_for
from ..domain.monitoring import policy as verdicts
from ..domain.monitoring import triggers
from ..domain.monitoring.triggers import DatasetVersionInfo
from ..workloads.monitor_task import MonitorResult, MonitorTask, stamp
from .plan import ChildRef, EventSpec, Plan

COMPONENT = "monitor"
COMPARE = "compare"
RETRAIN = "retrain"
HISTORY_LIMIT = 20
RETRAINS_LIMIT = 50
RUNNING_RECHECK_S = 15.0
RETRAIN_TRIGGER_ANNOTATION = "kadence.dev/retrain-trigger"
RETRAIN_CAUSE_ANNOTATION = "kadence.dev/retrain-cause"
CAUSED_BY_ANNOTATION = "kadence.dev/caused-by"
EVALUATION_ANNOTATION = "kadence.dev/evaluation-report"
FEEDBACK_DATA_ANNOTATION = "kadence.dev/feedback-data"
CANDIDATE_VERDICT_ANNOTATION = "kadence.dev/challenger-verdict"
RETRAINED_BY_LABEL = "kadence.dev/retrained-by"
RESULT_KEY_ANNOTATION = "kadence.dev/result-key"
DATA_VERSION_ANNOTATION = "kadence.dev/data-version"
FEEDBACK_WAIT = timedelta(minutes=20)
SLOT_ANNOTATION = "kadence.dev/slot"
CANDIDATE_ANNOTATION = "kadence.dev/candidate"


@dataclass(frozen=True)
class ModelInfo:
    model_version: str  # the ModelVersion object's name
    version: str  # the version label the model server writes into its logs
    uri: str
    sha256: str
    holdout_metrics: dict[str, float] = field(default_factory=dict)
    reference_uri: str | None = None  # profile.json of its training data
    target: str | None = None
    classes: list | None = None
    dataset: str | None = None
    dataset_version: str | None = None
    dataset_rows: int | None = None
    inputs: list[str] | None = None  # the signature's input columns: the features drift is judged on


@dataclass(frozen=True)
class RetrainData:
    """The data a retrain reads, as the handler found it: the Dataset behind the retrain spec
    (directly, or through its FeatureSet) and what has been built from it."""

    dataset: str
    feature_set: str | None = None
    requested: tuple[str, ...] = ()  # URIs already in the Dataset's appended-data annotation
    appended_in: dict[str, str] = field(default_factory=dict)  # appended URI -> newest version holding it
    feature_versions: dict[str, str] = field(default_factory=dict)  # Dataset version -> FeatureSet version
    ingest_failure: str | None = None  # why the ingest that read the appended list as it stands failed

    def pinned_version(self, feedback_uri: str) -> str | None:
        """The version id a retrain pins once the feedback is in: the FeatureSet's
        materialization of the Dataset version holding it, or that Dataset version."""
        data_version = self.appended_in.get(feedback_uri)
        if data_version is None or self.feature_set is None:
            return data_version
        return self.feature_versions.get(data_version)


@dataclass(frozen=True)
class AppendData:
    dataset: str
    uri: str


@dataclass
class MonitorContext:
    inference_service_found: bool = True
    production: ModelInfo | None = None
    candidate: ModelInfo | None = None
    latest_dataset: DatasetVersionInfo | None = None
    reference_uri: str | None = None  # spec.drift.reference resolved; overrides the production profile
    retrain_spec: dict | None = None  # TrainingRun spec (wire form) to retrain with
    retrain_data: RetrainData | None = None  # None when the retrain's Dataset cannot be resolved
    spec_problems: dict[str, str] = field(default_factory=dict)  # spec field -> why it cannot be used


@dataclass
class MonitorObservation:
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)  # Job name -> result.json


@dataclass
class MonitorPlan(Plan):
    evaluated: dict | None = None  # the monitor result processed in this pass (for metrics)
    production_gap: dict | None = None
    retrain_trigger: str | None = None  # the primary trigger of a retrain started in this pass
    held_reason: str | None = None  # why a fired trigger did not retrain
    candidate_verdict: dict | None = None
    append_data: AppendData | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def interval_seconds(spec: MonitorPolicySpec) -> float:
    return verdicts.parse_duration(spec.interval).total_seconds()


def current_slot(spec: MonitorPolicySpec, now: datetime) -> tuple[int, datetime]:
    """The slot index and its start (the evaluation time: the window's end)."""
    seconds = interval_seconds(spec)
    index = math.floor(now.timestamp() / seconds)
    return index, datetime.fromtimestamp(index * seconds, tz=timezone.utc)


def monitor_job_name(policy: str, slot: int) -> str:
    return child_name(policy, COMPONENT, slot)


def compare_job_name(policy: str, candidate: str) -> str:
    return child_name(policy, COMPARE, candidate)


def retrain_run_name(policy: str, now: datetime) -> str:
    return child_name(policy, RETRAIN, now.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S"))


def compare_result_key(namespace: str, policy: str, job_name: str) -> str:
    return f"monitoring/{namespace}/{policy}/comparisons/{job_name}/result.json"


def _annotation(job: dict, key: str) -> str | None:
    return (job["metadata"].get("annotations") or {}).get(key)


def _slot_of(job: dict) -> int:
    try:
        return int(_annotation(job, SLOT_ANNOTATION) or -1)
    except ValueError:
        return -1


def _is_comparison(job: dict) -> bool:
    return _annotation(job, CANDIDATE_ANNOTATION) is not None


def results_to_fetch(body: dict, jobs: list[dict]) -> dict[str, str]:
    """Finished Jobs whose result the status does not reflect yet -> the S3 key of their result
    (the Job's `kadence.dev/result-key` annotation): the newest finished monitor Job (older
    unread ones are superseded and deleted) and any finished comparison Job."""
    status = body.get("status") or {}
    seen = {status.get("lastJob"), (status.get("lastComparison") or {}).get("job")}
    finished = [j for j in jobs if job_state(j) != "Running" and j["metadata"]["name"] not in seen
                and _annotation(j, RESULT_KEY_ANNOTATION)]
    monitors = sorted((j for j in finished if not _is_comparison(j)), key=_slot_of)
    wanted = [j for j in finished if _is_comparison(j)] + monitors[-1:]
    return {j["metadata"]["name"]: _annotation(j, RESULT_KEY_ANNOTATION) for j in wanted}


def _window(spec: MonitorPolicySpec) -> dict:
    if spec.window.duration:
        return {"durationSeconds": verdicts.parse_duration(spec.window.duration).total_seconds()}
    return {"lastPredictions": spec.window.last_predictions}


def build_task(body: dict, spec: MonitorPolicySpec, context: MonitorContext, evaluation_time: datetime,
               job_name: str, compare: bool = False) -> MonitorTask:
    meta = body["metadata"]
    production = context.production
    retrain = spec.actions.retrain
    metric = spec.performance.metric if spec.performance else None
    task: dict[str, Any] = {
        "namespace": meta["namespace"], "policy": meta["name"],
        "inferenceService": spec.inference_service_ref.name, "time": _iso(evaluation_time),
        "window": _window(spec),
        "performance": spec.performance.wire() if spec.performance else None,
        "classes": production.classes if production else None,
    }
    if compare:
        task["resultKey"] = compare_result_key(meta["namespace"], meta["name"], job_name)
        candidate = context.candidate
        task["compare"] = {
            "champion": ({"version": production.version, "uri": production.uri, "sha256": production.sha256}
                         if production else None),
            "challenger": {"version": candidate.version, "uri": candidate.uri, "sha256": candidate.sha256},
        }
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
            if retrain is not None and retrain.enabled and retrain.include_feedback:
                task["exportLabelledAs"] = production.target
        if production and metric and metric in production.holdout_metrics:
            task["offlineMetric"] = production.holdout_metrics[metric]
    return MonitorTask.model_validate({k: v for k, v in task.items() if v is not None})


def _build_job(body: dict, task: MonitorTask, job_name: str, component: str, settings: WorkloadSettings,
               annotations: dict[str, str]) -> list[dict]:
    return [task_configmap(body, job_name, component, task.wire()),
            workload_job(body, job_name, component, ["kadence", "monitor"], settings,
                         annotations={RESULT_KEY_ANNOTATION: task.resolved_result_key(), **annotations})]


def evaluation_status(result: MonitorResult, job_name: str) -> dict:
    entry = {
        "time": result.time, "samples": result.samples, "labelledSamples": result.labelled_samples,
        "driftScores": result.drift_scores or None, "driftedFeatures": result.drifted_features or None,
        "metrics": result.metrics or None, "breached": result.breached, "reason": result.reason,
        "message": result.message, "reportUri": result.report_uri, "job": job_name,
    }
    return {k: v for k, v in entry.items() if v is not None}


def _summaries(spec: MonitorPolicySpec, result: MonitorResult) -> dict:
    status: dict[str, Any] = {}
    if spec.performance:
        value = result.metrics.get(spec.performance.metric)
        status["metricSummary"] = (f"{spec.performance.metric}={value:.3g}" if value is not None
                                   else f"{spec.performance.metric}=n/a")
    if spec.drift:
        judged = sum(1 for f in result.features if f.status == "Judged")
        status["driftSummary"] = f"{len(result.drifted_features)}/{judged} drifted"
    return status


def _apply_evaluation(plan: MonitorPlan, status: dict, spec: MonitorPolicySpec, result: MonitorResult,
                      job_name: str) -> None:
    entry = evaluation_status(result, job_name)
    history = [*(status.get("history") or []), entry][-HISTORY_LIMIT:]
    plan.status.update({"lastEvaluation": entry, "history": history, "lastJob": job_name,
                        **_summaries(spec, result)})
    plan.evaluated = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    previous = status.get("lastEvaluation") or {}
    if result.breached:
        plan.conditions.append(ConditionUpdate("Breached", "True", result.reason, result.message))
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


def _production_gap_check(plan: MonitorPlan, spec: MonitorPolicySpec, context: MonitorContext,
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
        gap = {"time": _iso(now), "metric": metric, "offline": offline, "live": result.metrics[metric],
               "gap": check.gap, "margin": gap_spec.margin, "exceeded": check.gap > gap_spec.margin}
        plan.status["productionGap"] = gap
        plan.production_gap = gap
        plan.conditions.append(ConditionUpdate("ProductionGap", "True" if gap["exceeded"] else "False",
                                               check.reason, check.message))
        if gap["exceeded"]:
            plan.events.append(EventSpec("Warning", check.reason, check.message))
    return check


def rollout_after_verdict(spec: MonitorPolicySpec) -> str:
    """Canary unless the retrain's promotion policy asks a person to promote."""
    promotion = spec.actions.retrain.promotion if spec.actions.retrain else None
    return "Manual" if promotion is not None and promotion.mode in ("Candidate", "Manual") else "Canary"


def _apply_comparison(plan: MonitorPlan, spec: MonitorPolicySpec, result: MonitorResult, job_name: str,
                      context: MonitorContext, now: datetime) -> None:
    comparison = result.comparison
    if comparison is None:
        verdict = {"time": _iso(now), "candidate": context.candidate.model_version if context.candidate else "",
                   "metric": "", "allowed": False, "reason": "ComparisonFailed", "message": result.message,
                   "job": job_name}
    else:
        verdict = {
            "time": _iso(now), "candidate": context.candidate.model_version if context.candidate else
            comparison.challenger_version,
            "champion": context.production.model_version if context.production else None,
            "metric": comparison.metric, "candidateScore": comparison.challenger,
            "championScore": comparison.champion, "labelled": comparison.labelled, "allowed": comparison.allowed,
            "rollout": rollout_after_verdict(spec) if comparison.allowed else None,
            "reason": comparison.reason, "message": comparison.message, "job": job_name,
        }
    verdict = {k: v for k, v in verdict.items() if v is not None}
    plan.status["lastComparison"] = verdict
    plan.candidate_verdict = verdict
    plan.conditions.append(ConditionUpdate("CandidateApproved", "True" if verdict["allowed"] else "False",
                                           verdict["reason"], verdict["message"]))
    next_step = {"Canary": "; it goes on as a canary", "Manual": "; it waits for a person to promote it"}
    plan.events.append(EventSpec("Normal" if verdict["allowed"] else "Warning", verdict["reason"],
                                 f"candidate {verdict['candidate']}: {verdict['message']}"
                                 f"{next_step.get(verdict.get('rollout'), '')}"))


def _training_run(body: dict, context: MonitorContext, retrain: dict, pin: str | None) -> dict:
    """The retrain TrainingRun: the template (or cloned spec) on fresh data (pinned to `pin`, the
    version holding the feedback, else the latest), registered as a Candidate, with the cause
    chain in annotations. `retrain`: the pendingRetrain-shaped record of the decision."""
    meta = body["metadata"]
    run_spec = dict(context.retrain_spec or {})
    for ref in ("featureSetRef", "datasetRef"):
        if isinstance(run_spec.get(ref), dict):
            run_spec[ref] = {"name": run_spec[ref]["name"], **({"version": pin} if pin else {})}
    run_spec["promotion"] = {"mode": "Candidate"}  # champion/challenger and canary decide the rest
    annotations = {
        RETRAIN_TRIGGER_ANNOTATION: retrain["trigger"],
        RETRAIN_CAUSE_ANNOTATION: (retrain.get("message") or "")[:1000],
        CAUSED_BY_ANNOTATION: f"MonitorPolicy/{meta['namespace']}/{meta['name']}",
    }
    for key, value in ((EVALUATION_ANNOTATION, retrain.get("reportUri")),
                       (FEEDBACK_DATA_ANNOTATION, retrain.get("feedbackUri")),
                       (DATA_VERSION_ANNOTATION, pin)):
        if value:
            annotations[key] = value
    labels = {**labels_for(body, RETRAIN), RETRAINED_BY_LABEL: cut_name(meta["name"])}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": retrain["trainingRun"], "namespace": meta["namespace"], "labels": labels,
                         "annotations": annotations},
            "spec": run_spec}


def _start_training_run(plan: MonitorPlan, body: dict, context: MonitorContext, retrain: dict,
                        pin: str | None) -> None:
    name = retrain["trainingRun"]
    plan.children.append(_training_run(body, context, retrain, pin))
    on = f" on version {pin}" if pin else ""
    plan.events.append(EventSpec("Normal", "RetrainStarted",
                                 f"TrainingRun {name}{on} for {retrain['trigger']}: {retrain.get('message') or ''}"))
    primary = retrain["trigger"].split(",")[0]
    reason = "RetrainedOn" + primary[0].upper() + primary[1:]  # e.g. RetrainedOnNewData
    plan.conditions.append(ConditionUpdate("Retraining", "True", reason,
                                           f"TrainingRun {name}{on} ({retrain['trigger']}): "
                                           f"{retrain.get('message') or ''}"[:1000]))


def _resume_pending_retrain(plan: MonitorPlan, body: dict, context: MonitorContext, now: datetime) -> None:
    """Start the TrainingRun of a pending retrain once its feedback is in a Dataset version (and
    in the FeatureSet's features); ask again for the feedback to be appended until it is."""
    pending = (body.get("status") or {}).get("pendingRetrain")
    if not pending:
        return
    data = context.retrain_data
    pin = data.pinned_version(pending["feedbackUri"]) if data is not None else None
    if pin is None:
        waited = now - (_parse_time(pending.get("time")) or now)
        rejected = data.ingest_failure if data is not None and pending["feedbackUri"] in data.requested else None
        if waited < FEEDBACK_WAIT and data is not None and rejected is None:
            if pending["feedbackUri"] not in data.requested:
                plan.append_data = AppendData(data.dataset, pending["feedbackUri"])
            where = (f"Dataset {data.dataset}" + (f" and FeatureSet {data.feature_set}" if data.feature_set else ""))
            plan.conditions.append(ConditionUpdate(
                "Retraining", "Unknown", "WaitingForFeedbackData",
                f"TrainingRun {pending['trainingRun']} starts once {where} include the window's labelled "
                f"feedback ({pending['feedbackUri']})"))
            plan.requeue_after = RUNNING_RECHECK_S
            return
        if rejected is not None:
            why = f"Dataset {pending['dataset']} did not take the feedback: {rejected}"
        elif data is not None:
            why = f"the feedback was not in a version of Dataset {pending['dataset']} after {waited}"
        else:
            why = f"the retrain's Dataset {pending['dataset']} could not be resolved"
        plan.events.append(EventSpec("Warning", "FeedbackDataNotIngested",
                                     f"{why}; TrainingRun {pending['trainingRun']} trains on the latest data"))
    elif data is not None and data.appended_in.get(pending["feedbackUri"]):
        plan.status["dataVersionBaseline"] = data.appended_in[pending["feedbackUri"]]
    _start_training_run(plan, body, context, pending, pin)
    plan.status["pendingRetrain"] = None


def _decide_retrain(plan: MonitorPlan, body: dict, spec: MonitorPolicySpec, context: MonitorContext,
                    checks: list[triggers.TriggerCheck], result: MonitorResult | None, now: datetime) -> None:
    status = body.get("status") or {}
    request = triggers.merge_firings(checks)
    schedule_check = next((c for c in checks if c.trigger == triggers.SCHEDULE and c.fired), None)
    if schedule_check is not None:
        plan.status["lastScheduledRun"] = _iso(schedule_check.slot)  # consumed, run or held
    if request is None:
        return
    retrain = spec.actions.retrain
    enabled = retrain is not None and retrain.enabled
    if enabled and context.retrain_spec is None:
        source = (f"TrainingRun {retrain.from_training_run}" if retrain.from_training_run
                  else "the retrain template")
        gate = verdicts.Gate("RetrainSourceMissing", f"{request.annotation} fired, but {source} could not be "
                                                     "resolved into a TrainingRun spec", False)
    else:
        gate = verdicts.retrain_gate(
            now=now, enabled=enabled, triggers=request.triggers,
            past_retrains=verdicts.retrain_times(status.get("retrains") or []),
            cooldown=verdicts.parse_duration(retrain.cooldown) if retrain else timedelta(0),
            max_per_day=retrain.max_per_day if retrain else 0)
    decision = {"time": _iso(now), "reason": gate.reason, "message": gate.message, "trigger": request.annotation}
    plan.status["lastRetrainDecision"] = decision
    if not gate.allowed:
        plan.held_reason = gate.reason
        plan.events.append(EventSpec("Normal", gate.reason, gate.message))
        plan.conditions.append(ConditionUpdate("Retraining", "False", gate.reason, gate.message))
        return
    name = retrain_run_name(body["metadata"]["name"], now)
    record = {"time": _iso(now), "trigger": request.annotation, "trainingRun": name, "message": request.message[:1000]}
    plan.status["retrains"] = [*(status.get("retrains") or []), record][-RETRAINS_LIMIT:]
    if any(c.trigger == triggers.NEW_DATA and c.fired for c in checks) and context.latest_dataset:
        plan.status["dataVersionBaseline"] = context.latest_dataset.name
    plan.retrain_trigger = request.primary
    decided = {**record, "reportUri": result.report_uri if result else None,
               "feedbackUri": result.labelled_data_uri if result else None}
    data = context.retrain_data
    if retrain.include_feedback and decided["feedbackUri"] and data is not None:
        pending = {k: v for k, v in {**decided, "dataset": data.dataset}.items() if v is not None}
        plan.status["pendingRetrain"] = pending
        if decided["feedbackUri"] not in data.requested:
            plan.append_data = AppendData(data.dataset, decided["feedbackUri"])
        rows = f"{result.labelled_rows} " if result and result.labelled_rows else ""
        message = (f"{request.annotation}: the window's {rows}labelled predictions go into a new version of Dataset "
                   f"{data.dataset}; TrainingRun {name} starts on it")
        plan.events.append(EventSpec("Normal", "RetrainDecided", message))
        plan.conditions.append(ConditionUpdate("Retraining", "Unknown", "WaitingForFeedbackData", message[:1000]))
        return
    _start_training_run(plan, body, context, {k: v for k, v in decided.items() if v is not None}, None)


def plan_monitorpolicy(body: dict, observed: MonitorObservation, context: MonitorContext, now: datetime,
                       settings: WorkloadSettings = WorkloadSettings()) -> MonitorPlan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = MonitorPolicySpec.model_validate(body["spec"])
    plan = MonitorPlan()
    problems = dict(context.spec_problems)
    if spec.triggers.schedule is not None:
        try:
            triggers.validate_schedule(spec.triggers.schedule.cron, spec.triggers.schedule.time_zone)
        except triggers.TriggerSpecError as error:
            problems[error.field] = str(error).split(": ", 1)[1]
    if problems:
        message = "; ".join(f"{path}: {why}" for path, why in sorted(problems.items()))
        plan.conditions.append(ConditionUpdate("Ready", "False", "InvalidSpec", message))
        plan.phase = "Invalid"
        return plan
    if not context.inference_service_found:
        message = f"InferenceService {spec.inference_service_ref.name} not found"
        plan.conditions.append(ConditionUpdate("Ready", "False", "InferenceServiceNotFound", message))
        plan.phase = "Waiting"
        plan.requeue_after = 60.0
        return plan

    slot, evaluation_time = current_slot(spec, now)
    job_name = monitor_job_name(meta["name"], slot)
    jobs = {job["metadata"]["name"]: job for job in observed.jobs}
    checks: list[triggers.TriggerCheck] = []
    processed: MonitorResult | None = None

    # 1. results of finished Jobs that status does not reflect yet (oldest first)
    for name in sorted(results_to_fetch(body, observed.jobs)):
        raw = observed.results.get(name)
        failed = job_state(jobs[name]) == "Failed"
        if raw is None and not failed:
            plan.requeue_after = RUNNING_RECHECK_S  # succeeded, result not readable yet
            continue
        result = (MonitorResult.model_validate(raw) if raw is not None else
                  MonitorResult(outcome="Error", time=_iso(now), reason="MonitorJobFailed",
                                message=f"the monitor Job {name} failed without a result; see its logs"))
        if _is_comparison(jobs[name]):
            _apply_comparison(plan, spec, result, name, context, now)
            continue
        if result.outcome == "Error":
            plan.status["lastJob"] = name
            plan.conditions.append(ConditionUpdate("Ready", "False", "MonitorJobFailed", result.message))
            plan.events.append(EventSpec("Warning", "MonitorJobFailed", result.message))
            plan.phase = "Failed"
            continue
        _apply_evaluation(plan, status, spec, result, name)
        processed = result
        gap_check = _production_gap_check(plan, spec, context, result, now)
        if gap_check is not None:
            checks.append(gap_check)
        checks.append(triggers.check_breach(enabled=spec.triggers.on_breach, breached=result.breached,
                                            message=result.message))
    if processed is not None:
        plan.conditions.append(ConditionUpdate("Ready", "True", "Monitoring",
                                               f"evaluated at {processed.time}: {processed.reason}"))

    # 2. triggers that do not depend on an evaluation
    schedule = spec.triggers.schedule
    if schedule is not None:
        created = _parse_time(meta.get("creationTimestamp")) or now
        checks.append(triggers.check_schedule(cron=schedule.cron, time_zone=schedule.time_zone, now=now,
                                              last_run=_parse_time(status.get("lastScheduledRun")), since=created))
    new_data = spec.triggers.on_new_data
    pending = bool(status.get("pendingRetrain"))  # its own feedback version must not fire new data
    if new_data is not None and new_data.enabled and context.latest_dataset is not None and not pending:
        baseline_name = status.get("dataVersionBaseline") or (
            context.production.dataset_version if context.production else None)
        baseline = None
        if baseline_name:
            rows = context.production.dataset_rows if (context.production and
                                                       context.production.dataset_version == baseline_name) else None
            baseline = DatasetVersionInfo(baseline_name, rows if rows is not None else context.latest_dataset.rows)
        checks.append(triggers.check_new_data(baseline=baseline, latest=context.latest_dataset,
                                              min_new_rows=new_data.min_new_rows,
                                              min_growth_percent=new_data.min_growth_percent))
    if pending:
        _resume_pending_retrain(plan, body, context, now)
    else:
        _decide_retrain(plan, body, spec, context, checks, processed, now)

    # 3. the Jobs to run now
    reflected = plan.status.get("lastJob", status.get("lastJob"))
    if job_name not in jobs and reflected != job_name:
        plan.children[:0] = _build_job(body, build_task(body, spec, context, evaluation_time, job_name),
                                       job_name, COMPONENT, settings, {SLOT_ANNOTATION: str(slot)})
        plan.phase = plan.phase or "Evaluating"
        if not status.get("lastEvaluation") and processed is None:
            plan.conditions.append(ConditionUpdate("Ready", "Unknown", "Evaluating",
                                                   f"monitor Job {job_name} started"))
    candidate = context.candidate
    if candidate is not None and spec.performance is not None:
        compare_name = compare_job_name(meta["name"], candidate.model_version)
        compared = (plan.status.get("lastComparison") or status.get("lastComparison") or {}).get("job")
        if compare_name not in jobs and compared != compare_name:
            plan.children += _build_job(body, build_task(body, spec, context, now, compare_name, compare=True),
                                        compare_name, COMPARE, settings,
                                        {CANDIDATE_ANNOTATION: candidate.model_version})

    # 4. housekeeping: keep the current slot's Job, the one status reflects and one still to
    #    be read; finished monitor Jobs beyond those are superseded. Comparison Jobs stay
    #    (one per candidate) as the record of the verdict, until the policy goes.
    keep = {job_name, plan.status.get("lastJob", status.get("lastJob")),
            *results_to_fetch(body, observed.jobs)}
    for name, job in sorted(jobs.items()):
        if name in keep or _is_comparison(job) or job_state(job) == "Running":
            continue
        plan.delete += [ChildRef("batch/v1", "Job", name), ChildRef("v1", "ConfigMap", name)]

    seconds = interval_seconds(spec)
    until_next = (slot + 1) * seconds - now.timestamp()
    running = any(job_state(j) == "Running" for j in jobs.values())
    plan.requeue_after = min(x for x in (until_next, RUNNING_RECHECK_S if running else None, plan.requeue_after)
                             if x is not None)
    return plan
