"""MonitorPolicy planner: (policy, its Jobs and their results, what the handler resolved,
clock) -> MonitorPlan. Three parts, one module each:

- `evaluation`: the monitor Job of each interval slot, its task, and its result turned into
  status (lastEvaluation, history, summaries), conditions and Events;
- `challenger`: champion/challenger Jobs and the verdict as typed status
  (`status.lastComparison`, `status.verdicts`, read by the InferenceService);
- `retrain`: the retrain state machine (triggers -> gates -> data -> nothing new? ->
  TrainingRun), with `status.retrains` following each retrain's inputs and outcome.

How the handler uses it on every reconcile (create/update/resume/timer):
1. resolve a `MonitorContext`: whether the InferenceService exists; its Production
   ModelVersion as `ModelInfo`; a Candidate ModelVersion created by one of this policy's
   retrain TrainingRuns (label kadence.dev/retrained-by=<policy>), if any; the latest
   validated version of that Dataset; the drift reference named in spec.drift.reference;
   the TrainingRun spec to retrain with (the template, or the spec of fromTrainingRun) and
   the data it reads (`RetrainData`: does the Dataset list this policy in spec.feedback.from,
   which version holds which feedback export, the FeatureSet's versions); the feedback in the
   serving model's data version; the inputs of every registered version of the model
   (lineage); this policy's retrain TrainingRuns (`RetrainRun`); and any reference that
   cannot be resolved, as {spec field: message};
2. list the Jobs labelled kadence.dev/owner-kind=monitorpolicy, owner-name=<name>;
   `results_to_fetch(body, jobs)` names the finished ones whose result the status does not
   reflect yet, with the S3 key of each; read them (a missing key is left out);
3. `plan_monitorpolicy(body, MonitorObservation(jobs, results), context, now)`; apply
   `plan.children` (ConfigMap then Job; a TrainingRun for a retrain), delete `plan.delete`,
   merge `plan.status`, set `plan.conditions`, post `plan.events`;
4. metrics (kadence.domain.monitoring.metrics.monitor_metrics()): for `plan.evaluated`
   call record_evaluation; for `plan.production_gap` record_production_gap; for
   `plan.retrain_trigger` record_retrain; for `plan.held_reason` (NothingNewToLearn included)
   record_held_retrain.
"""

from __future__ import annotations

from datetime import datetime

from ...api.conditions import ConditionUpdate, find
from ...api.monitorpolicy import MonitorPolicySpec
from ..batch_monitoring import watched
from ...builders.jobs import WorkloadSettings, job_state
from ...domain.monitoring import triggers
from ...domain.monitoring.retrain import NOT_YET_JUDGED, PENDING
from ...domain.monitoring.triggers import DatasetVersionInfo
from ...workloads.monitor_task import MonitorResult
from ..alerting import apply_alerts, is_alert_job
from ..plan import ChildRef, EventSpec
from .challenger import apply_comparison, rollout_after_verdict, unseen_after, verdicts_by_candidate, with_verdict
from .evaluation import (apply_evaluation, build_job, build_task, compare_job_name, compare_result_key, current_slot,
                         evaluation_status, interval_seconds, is_comparison, monitor_job_name, production_gap_check,
                         newest_comparisons, results_to_fetch)
from .model import (CANDIDATE_ANNOTATION, CAUSED_BY_ANNOTATION, COMPARE, COMPONENT, EVALUATION_ANNOTATION,
                    HISTORY_LIMIT, RESULT_KEY_ANNOTATION, RETRAIN_CAUSE_ANNOTATION, RETRAIN_TRIGGER_ANNOTATION,
                    RETRAINED_BY_LABEL, RETRAINS_LIMIT, RUNNING_RECHECK_S, SLOT_ANNOTATION, VERDICTS_LIMIT, ModelInfo,
                    MonitorContext, MonitorObservation, MonitorPlan, RetrainData, RetrainRun, iso, parse_time)
from .retrain import FEEDBACK_WAIT, decide_retrain, retrain_run_name

__all__ = [
    "CANDIDATE_ANNOTATION", "CAUSED_BY_ANNOTATION", "EVALUATION_ANNOTATION", "FEEDBACK_WAIT", "HISTORY_LIMIT",
    "RESULT_KEY_ANNOTATION", "RETRAIN_CAUSE_ANNOTATION", "RETRAIN_TRIGGER_ANNOTATION", "RETRAINED_BY_LABEL",
    "RETRAINS_LIMIT", "SLOT_ANNOTATION", "VERDICTS_LIMIT", "ModelInfo", "MonitorContext", "MonitorObservation",
    "MonitorPlan", "RetrainData", "RetrainRun", "build_task", "compare_job_name", "compare_result_key",
    "current_slot", "evaluation_status", "interval_seconds", "monitor_job_name", "plan_monitorpolicy",
    "results_to_fetch", "retrain_run_name", "rollout_after_verdict", "verdicts_by_candidate", "with_verdict",
]


def plan_comparison(plan: MonitorPlan, body: dict, spec: MonitorPolicySpec, context: MonitorContext,
                    jobs: dict[str, dict], slot: int, now: datetime, settings: WorkloadSettings) -> None:
    """One comparison Job per candidate; while its verdict could not judge yet (too few labelled
    predictions the candidate did not train on) and its retrain is still pending, again at the
    next monitor slot, replacing the previous attempt."""
    meta, status = body["metadata"], body.get("status") or {}
    candidate = context.candidate
    merged = {**status, **plan.status}
    verdict = verdicts_by_candidate(merged.get("verdicts")).get(candidate.model_version)
    if verdict is None:
        name = compare_job_name(meta["name"], candidate.model_version)
    elif verdict.get("reason") in NOT_YET_JUDGED and retrain_pending(merged, candidate.training_run):
        name = compare_job_name(meta["name"], candidate.model_version, slot)
    else:
        return
    if name in jobs or (verdict or {}).get("job") == name:
        return
    after, held_out = unseen_after(merged, candidate.training_run)
    plan.children += build_job(body, build_task(body, spec, context, now, name, compare=True, unseen_after=after,
                                                held_out=held_out),
                               name, COMPARE, settings,
                               {CANDIDATE_ANNOTATION: candidate.model_version, SLOT_ANNOTATION: str(slot)})
    previous = (verdict or {}).get("job")
    if previous in jobs:  # one comparison Job per candidate: the attempt it replaces goes
        plan.delete += [ChildRef("batch/v1", "Job", previous), ChildRef("v1", "ConfigMap", previous)]


def retrain_pending(status: dict, training_run: str | None) -> bool:
    return any(r.get("trainingRun") == training_run and r.get("outcome", PENDING) == PENDING
               for r in status.get("retrains") or []) if training_run else False


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
        plan.conditions.append(ConditionUpdate("SpecValid", "False", "InvalidSpec", message))
        plan.phase = "Invalid"
        return plan
    if not context.inference_service_found:
        message = f"{watched(spec)} not found"
        plan.conditions.append(ConditionUpdate("InferenceServiceFound", "False", f"{watched(spec).kind}NotFound", message))
        plan.phase = "Waiting"  # the InferenceService's creation wakes the policy (no requeue needed)
        return plan
    plan.conditions.append(ConditionUpdate("InferenceServiceFound", "True", "Found",
                                           str(watched(spec))))

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
                  MonitorResult(outcome="Error", time=iso(now), reason="MonitorJobFailed",
                                message=f"the monitor Job {name} failed without a result; see its logs"))
        if is_comparison(jobs[name]):
            apply_comparison(plan, status, spec, result, name, context, now)
            continue
        if result.outcome == "Error":
            plan.status["lastJob"] = name
            plan.conditions.append(ConditionUpdate("Monitoring", "False", "MonitorJobFailed", result.message))
            plan.events.append(EventSpec("Warning", "MonitorJobFailed", result.message))
            plan.phase = "Failed"
            continue
        apply_evaluation(plan, status, spec, result, name)
        processed = result
        gap_check = production_gap_check(plan, spec, context, result, now)
        if gap_check is not None:
            checks.append(gap_check)
        checks.append(triggers.check_breach(enabled=spec.triggers.on_breach, breached=result.breached,
                                            message=result.message))
    if processed is not None:
        plan.conditions.append(ConditionUpdate("Monitoring", "True", "Monitoring",
                                               f"evaluated at {processed.time}: {processed.reason}"))
    elif find(status.get("conditions"), "Monitoring") is None and status.get("lastEvaluation"):
        # evaluated before Ready was derived (an operator upgrade): say so until the next evaluation
        last = status["lastEvaluation"]
        plan.conditions.append(ConditionUpdate("Monitoring", "True", "Monitoring",
                                               f"evaluated at {last.get('time')}: {last.get('reason')}"))

    # 2. triggers that do not depend on an evaluation, then the retrain decision
    schedule = spec.triggers.schedule
    if schedule is not None:
        created = parse_time(meta.get("creationTimestamp")) or now
        checks.append(triggers.check_schedule(cron=schedule.cron, time_zone=schedule.time_zone, now=now,
                                              last_run=parse_time(status.get("lastScheduledRun")), since=created))
    manual = spec.triggers.manual
    if manual is not None:
        checks.append(triggers.check_manual(requested_at=manual.requested_at, requested_by=manual.requested_by,
                                            reason=manual.reason, handled=status.get("lastManualRequest")))
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
    decide_retrain(plan, body, spec, context, checks, processed, now, evaluation_time)

    # 3. the Jobs to run now
    reflected = plan.status.get("lastJob", status.get("lastJob"))
    if job_name not in jobs and reflected != job_name:
        plan.children[:0] = build_job(body, build_task(body, spec, context, evaluation_time, job_name),
                                      job_name, COMPONENT, settings, {SLOT_ANNOTATION: str(slot)})
        plan.phase = plan.phase or "Evaluating"
        failed = any(c.type == "Monitoring" and c.status == "False" for c in plan.conditions)
        if not status.get("lastEvaluation") and processed is None and not failed:  # a failure stays reported
            plan.conditions.append(ConditionUpdate("Monitoring", "Unknown", "Evaluating",
                                                   f"monitor Job {job_name} started"))
    candidate = context.candidate
    if candidate is not None and spec.performance is not None:
        plan_comparison(plan, body, spec, context, jobs, slot, now, settings)

    # alerts to the webhook, one per breach episode (planners.alerting; alert Jobs tidy themselves)
    served = context.production
    apply_alerts(plan, body, spec, status,
                 processed.model_dump(by_alias=True, mode="json", exclude_none=True) if processed else None,
                 observed.jobs, settings, model=served.model if served else None,
                 version=served.model_version if served else None)

    # 4. housekeeping: keep the current slot's Job, the one status reflects and one still to
    #    be read; finished monitor Jobs beyond those are superseded. The latest comparison Job
    #    of each candidate stays as the record of its verdict, until the policy goes.
    keep = {job_name, plan.status.get("lastJob", status.get("lastJob")),
            *results_to_fetch(body, observed.jobs),
            *(j["metadata"]["name"] for j in newest_comparisons([j for j in jobs.values() if job_state(j) != "Running"]))}
    for name, job in sorted(jobs.items()):
        if name in keep or is_alert_job(job) or job_state(job) == "Running":
            continue
        plan.delete += [ChildRef("batch/v1", "Job", name), ChildRef("v1", "ConfigMap", name)]

    seconds = interval_seconds(spec)
    until_next = (slot + 1) * seconds - now.timestamp()
    running = any(job_state(j) == "Running" for j in jobs.values())
    plan.requeue_after = min(x for x in (until_next, RUNNING_RECHECK_S if running else None, plan.requeue_after)
                             if x is not None)
    return plan
