"""The retrain state machine: from fired triggers to a retrain TrainingRun, or to a stated
reason for not starting one.

A decision goes through, in order:
1. the source: retraining enabled, the TrainingRun spec and its Dataset resolvable;
2. a breach seen without labels (drift, an estimated metric) and no new labels: the policy's
   choice (withoutNewLabels);
3. the gate (`domain.monitoring.retrain.retrain_gate`): one retrain at a time, the cooldown
   from the last retrain that WON champion/challenger, after a lost one enough new labels,
   the daily budget counted from the retrain TrainingRuns;
4. the data: with includeFeedback and a Dataset that lists this policy in spec.feedback.from,
   the evaluation's feedback export is published in status.feedback and the retrain waits
   (status.pendingRetrain, at most FEEDBACK_WAIT) for a Dataset version holding it (and the
   FeatureSet's materialization of it);
5. nothing new: inputs equal to those of a registered ModelVersion of the model, or of a
   retrain in flight, start nothing (`NothingNewToLearn`; cooldown and budget untouched), and
   the policy waits for labels or data, with a Warning once it waited longer than labelWait;
6. the TrainingRun `<policy>-retrain-<hash of the decision>` (pinned to the data version
   holding the feedback, if any), registered as a Candidate; `status.retrains` records its inputs and follows its outcome
   (Won, Lost, Failed) and the time from the breach to the promotion.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ...api.common import duration_delta
from ...api.conditions import ConditionUpdate
from ...api.monitorpolicy import MonitorPolicySpec
from ...builders.meta import child_name, cut_name, labels_for
from ...domain.monitoring import policy as verdicts
from ...domain.monitoring import retrain as learning
from ...domain.monitoring import triggers
from ...domain.monitoring.retrain import Feedback, Hold, RetrainInputs
from ...workloads.monitor_task import MonitorResult
from ..plan import EventSpec
from .challenger import verdicts_by_candidate
from .evaluation import breach_started
from .model import (CAUSED_BY_ANNOTATION, EVALUATION_ANNOTATION, RETRAIN, RETRAIN_CAUSE_ANNOTATION,
                    RETRAIN_TRIGGER_ANNOTATION, RETRAINED_BY_LABEL, RETRAINS_LIMIT, RUNNING_RECHECK_S,
                    MonitorContext, MonitorPlan, RetrainData, iso, parse_time)

FEEDBACK_WAIT = timedelta(minutes=20)
RUN_GONE_GRACE = timedelta(minutes=2)  # a recorded TrainingRun not seen for this long was deleted
DEFAULT_MIN_NEW_LABELS = 50


def retrain_run_name(policy: str, slot: str, trigger: str, inputs: RetrainInputs) -> str:
    """Derived from the decision (the evaluation that decided it, its triggers, its inputs), never
    from the clock: two reconciles of one decision create one TrainingRun."""
    return child_name(policy, RETRAIN, learning.retrain_run_name_suffix(slot, trigger, inputs))


def training_run(body: dict, context: MonitorContext, decided: dict, name: str, pin: str | None) -> dict:
    """The retrain TrainingRun: the template (or cloned spec) pinned to the data version `pin`,
    registered as a Candidate, with the cause chain in annotations."""
    meta = body["metadata"]
    run_spec = dict(context.retrain_spec or {})
    for ref in ("featureSetRef", "datasetRef"):
        if isinstance(run_spec.get(ref), dict):
            run_spec[ref] = {"name": run_spec[ref]["name"], **({"version": pin} if pin else {})}
    run_spec["promotion"] = {"mode": "Candidate"}  # champion/challenger and canary decide the rest
    annotations = {
        RETRAIN_TRIGGER_ANNOTATION: decided["trigger"],
        RETRAIN_CAUSE_ANNOTATION: (decided.get("message") or "")[:1000],
        CAUSED_BY_ANNOTATION: f"MonitorPolicy/{meta['namespace']}/{meta['name']}",
    }
    if decided.get("reportUri"):
        annotations[EVALUATION_ANNOTATION] = decided["reportUri"]
    labels = {**labels_for(body, RETRAIN), RETRAINED_BY_LABEL: cut_name(meta["name"])}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                         "annotations": annotations},
            "spec": run_spec}


# --- following past retrains ---------------------------------------------------------------


def follow_retrains(plan: MonitorPlan, status: dict, spec: MonitorPolicySpec, context: MonitorContext,
                    now: datetime) -> list[dict]:
    """status.retrains with the outcome of each retrain brought up to date (its TrainingRun, the
    champion/challenger verdict on its candidate, the served version); written when it changed.
    A retrain TrainingRun the status does not list (a status write lost after the child was
    created) is listed from the child: the budget and the one-at-a-time rule count children."""
    records = [dict(r) for r in status.get("retrains") or []]
    label_wait = (duration_delta(spec.actions.retrain.label_wait) if spec.actions.retrain
                  else timedelta(days=1))
    listed = {r.get("trainingRun") for r in records}
    adopted = sorted((run for name, run in context.retrain_runs.items() if name not in listed and run.created),
                     key=lambda run: run.created)
    for run in adopted:
        records.append({k: v for k, v in {"time": iso(run.created), "trigger": run.trigger or "unknown",
                                          "trainingRun": run.name, "outcome": learning.PENDING}.items() if v})
    known = verdicts_by_candidate(plan.status.get("verdicts", status.get("verdicts")))
    served = context.production.model_version if context.production else None
    changed = bool(adopted)
    for record in records:
        name = record.get("trainingRun")
        if record.get("outcome", learning.PENDING) == learning.PENDING and name:
            run = context.retrain_runs.get(name)
            started = parse_time(record.get("time")) or now
            if run is None and now - started > RUN_GONE_GRACE:
                result, message = learning.FAILED, f"TrainingRun {name} no longer exists"
            else:
                result, message = learning.outcome(record, run, known, served)
                verdict = known.get(record.get("modelVersion") or (run.model_version if run else None) or "")
                if (result == learning.PENDING and verdict is not None
                        and verdict.get("reason") in learning.NOT_YET_JUDGED and now - started >= label_wait):
                    result, message = learning.LOST, (f"{verdict['candidate']} could not be judged within labelWait "
                                                       f"{spec.actions.retrain.label_wait}: {verdict.get('message')}")
                if run is not None and run.model_version and record.get("modelVersion") != run.model_version:
                    record["modelVersion"] = run.model_version
                    changed = True
            if (result, message) != (record.get("outcome", learning.PENDING), record.get("outcomeMessage")):
                record.update({"outcome": result, "outcomeMessage": message})
                changed = True
                if result != learning.PENDING:
                    kind = "Normal" if result == learning.WON else "Warning"
                    plan.events.append(EventSpec(kind, f"Retrain{result}", f"retrain {name}: {message}"))
        if (record.get("outcome") == learning.WON and not record.get("promotedAt") and served
                and record.get("modelVersion") == served):
            record["promotedAt"] = iso(now)
            breached = parse_time(record.get("breachedAt"))
            if breached is not None:
                record["breachToPromotionSeconds"] = max((now - breached).total_seconds(), 0.0)
            changed = True
    if changed:
        plan.status["retrains"] = records[-RETRAINS_LIMIT:]
    return records


# --- holding -------------------------------------------------------------------------------


def hold_retrain(plan: MonitorPlan, status: dict, spec: MonitorPolicySpec, hold: Hold, trigger: str,
                 now: datetime) -> None:
    """Record a decision that starts nothing. While the policy waits for labels or data
    (NothingNewToLearn, WaitingForLabels) the Event is posted when the wait starts, and a Warning
    once it lasted longer than labelWait."""
    previous = status.get("lastRetrainDecision") or {}
    same = previous.get("reason") == hold.reason
    decision = {"time": iso(now), "reason": hold.reason, "message": hold.message, "trigger": trigger}
    reason, message = hold.reason, hold.message
    if hold.reason in (learning.NOTHING_NEW_TO_LEARN, learning.WAITING_FOR_LABELS):
        since = (previous.get("waitingSince") if same else None) or iso(now)
        decision["waitingSince"] = since
        retrain = spec.actions.retrain
        wait = duration_delta(retrain.label_wait) if retrain else timedelta(days=1)
        waited = now - (parse_time(since) or now)
        if waited >= wait:
            decision["overdue"] = True
            reason = "LabelsOverdue"
            message = f"{hold.message}; waiting since {since}, longer than labelWait {retrain.label_wait}"
            if not (same and previous.get("overdue")):
                plan.events.append(EventSpec("Warning", reason, message))
        elif not same:
            plan.events.append(EventSpec("Normal", hold.reason, hold.message))
    elif not same:  # a hold that goes on (each evaluation of a long breach) is said once
        plan.events.append(EventSpec("Normal", hold.reason, hold.message))
    plan.status["lastRetrainDecision"] = decision
    plan.held_reason = hold.reason
    plan.conditions.append(ConditionUpdate("Retraining", "False", reason, message[:1000]))


# --- deciding ------------------------------------------------------------------------------


def latest_export(result: MonitorResult | None, plan: MonitorPlan, status: dict) -> tuple[Feedback | None, dict | None]:
    """The newest evaluation's feedback export, as (Feedback, its status.feedback form)."""
    entry = (plan.status.get("lastEvaluation") or status.get("lastEvaluation") or {}).get("feedback")
    return Feedback.from_wire(entry), entry


def _label_free_breach(request: triggers.RetrainRequest, plan: MonitorPlan, status: dict,
                       result: MonitorResult | None) -> str | None:
    evaluation = plan.status.get("lastEvaluation") or status.get("lastEvaluation") or {}
    quality = result.quality.reason if result is not None and result.quality is not None else None
    return learning.label_free_breach(breach_only=request.triggers == [triggers.BREACH],
                                      reason=evaluation.get("reason"), quality_reason=quality)


def _newer_data_than_serving(data: RetrainData, context: MonitorContext) -> bool:
    """A Dataset version the serving model was not trained on is the retrain's to learn from."""
    serving = context.production.dataset_version if context.production else None
    return bool(data.latest_version and serving and data.latest_version != serving)


def _min_new_labels(spec: MonitorPolicySpec) -> int:
    retrain = spec.actions.retrain
    if retrain is not None and retrain.min_new_labels is not None:
        return retrain.min_new_labels
    return spec.performance.min_labelled if spec.performance else DEFAULT_MIN_NEW_LABELS


def decide_retrain(plan: MonitorPlan, body: dict, spec: MonitorPolicySpec, context: MonitorContext,
                   checks: list[triggers.TriggerCheck], result: MonitorResult | None, now: datetime,
                   slot_time: datetime) -> None:
    status = body.get("status") or {}
    records = follow_retrains(plan, status, spec, context, now)
    schedule_check = next((c for c in checks if c.trigger == triggers.SCHEDULE and c.fired), None)
    if schedule_check is not None:
        plan.status["lastScheduledRun"] = iso(schedule_check.slot)  # consumed, run or held
    if status.get("pendingRetrain"):
        resume_pending(plan, body, spec, context, records, now)
        return
    request = triggers.merge_firings(checks)
    if request is None:
        return
    if triggers.MANUAL in request.triggers:  # handled once, run or held (a decided retrain first starts)
        plan.status["lastManualRequest"] = spec.triggers.manual.requested_at
    retrain = spec.actions.retrain
    data = context.retrain_data
    export, export_status = latest_export(result, plan, status)
    hold = None
    if retrain is None or not retrain.enabled:
        hold = Hold(verdicts.RETRAIN_DISABLED, f"{request.annotation} fired; retraining is not enabled in this policy")
    elif context.retrain_spec is None:
        source = (f"TrainingRun {retrain.from_training_run}" if retrain.from_training_run
                  else "the retrain template")
        hold = Hold("RetrainSourceMissing", f"{request.annotation} fired, but {source} could not be resolved into a "
                                            "TrainingRun spec")
    elif data is None:
        hold = Hold("RetrainDataNotFound", f"{request.annotation} fired, but the Dataset (or FeatureSet) the retrain "
                                           "reads could not be found")
    else:
        hold = learning.without_new_labels(choice=retrain.without_new_labels,
                                           breach=_label_free_breach(request, plan, status, result),
                                           new=learning.new_labels(export, context.production_feedback),
                                           new_data=_newer_data_than_serving(data, context))
        if hold is None:
            hold = learning.retrain_gate(
                now=now, triggers=request.triggers, past=learning.past_retrains(records),
                cooldown=duration_delta(retrain.cooldown), max_per_day=retrain.max_per_day,
                labelled_rows=export.rows if retrain.include_feedback and export is not None else None,
                min_new_labels=_min_new_labels(spec))
    if hold is not None:
        hold_retrain(plan, status, spec, Hold(hold.reason, hold.message + asked_by(request.message)),
                     request.annotation, now)
        return

    history = plan.status.get("history") or status.get("history") or []
    decided = {"time": iso(now), "trigger": request.annotation, "message": request.message[:1000],
               "slot": result.time if result is not None else iso(slot_time),
               "reportUri": result.report_uri if result is not None else None,
               "breachedAt": breach_started(history) if triggers.BREACH in request.triggers else None}
    decided = {k: v for k, v in decided.items() if v is not None}
    if any(c.trigger == triggers.NEW_DATA and c.fired for c in checks) and context.latest_dataset:
        plan.status["dataVersionBaseline"] = context.latest_dataset.name
    feedback_sha = None
    if retrain.include_feedback and export is not None and export.rows > 0:
        name = body["metadata"]["name"]
        if data.opts_in:
            feedback_sha = export.sha256
            plan.status["feedback"] = export_status
        else:
            plan.conditions.append(ConditionUpdate(
                "FeedbackFolded", "False", "DatasetNotOptedIn",
                f"{export.rows} labelled predictions are not in the training data: Dataset {data.dataset} does not "
                f"list this policy in spec.feedback.from (add {{monitorPolicy: {name}}} there)"))
    start_or_wait(plan, body, spec, context, records, decided, feedback_sha, now, give_up=None)


def resume_pending(plan: MonitorPlan, body: dict, spec: MonitorPolicySpec, context: MonitorContext,
                   records: list[dict], now: datetime) -> None:
    """A decided retrain waiting for its data: start it once the data is there; past FEEDBACK_WAIT
    (or when the Dataset refused the feedback) train on the latest data, with a Warning."""
    pending = dict((body.get("status") or {}).get("pendingRetrain"))
    data = context.retrain_data
    waited = now - (parse_time(pending.get("time")) or now)
    give_up = None
    if data is None:
        give_up = f"the retrain's Dataset {pending['dataset']} could not be resolved"
    elif data.ingest_failure is not None and pending.get("feedbackSha256"):
        give_up = f"Dataset {pending['dataset']} did not take the feedback: {data.ingest_failure}"
    elif waited >= FEEDBACK_WAIT:
        give_up = f"the data was not ready after {waited}"
    if give_up is not None and data is None:
        plan.events.append(EventSpec("Warning", "RetrainDataNotFound", f"{give_up}; the retrain is dropped"))
        plan.conditions.append(ConditionUpdate("Retraining", "False", "RetrainDataNotFound", give_up))
        plan.status["pendingRetrain"] = None
        return
    start_or_wait(plan, body, spec, context, records, pending, pending.get("feedbackSha256"), now, give_up)


def start_or_wait(plan: MonitorPlan, body: dict, spec: MonitorPolicySpec, context: MonitorContext,
                  records: list[dict], decided: dict, feedback_sha: str | None, now: datetime,
                  give_up: str | None) -> None:
    status = body.get("status") or {}
    data = context.retrain_data
    version = data.version_with(feedback_sha) if feedback_sha else data.latest_version
    if version is None and give_up is not None:
        version = data.latest_version
    inputs = data.inputs(version, context.retrain_spec or {})
    ready = version is not None and (data.feature_set is None or inputs.feature_set_version is not None)
    if not ready and give_up is None:
        pending = {**{k: decided[k] for k in ("time", "trigger", "slot", "message", "reportUri", "breachedAt")
                      if decided.get(k)}, "dataset": data.dataset}
        if feedback_sha:
            pending["feedbackSha256"] = feedback_sha
        if status.get("pendingRetrain") is None:
            plan.status["pendingRetrain"] = pending
        where = f"Dataset {data.dataset}" + (f" and FeatureSet {data.feature_set}" if data.feature_set else "")
        what = (f"a version of {where} holding the published feedback (status.feedback, sha256 {feedback_sha[:12]})"
                if feedback_sha else f"a version of {where}")
        message = f"{decided['trigger']}: the retrain starts on {what}"
        if status.get("pendingRetrain") is None:
            plan.events.append(EventSpec("Normal", "RetrainDecided", message))
        plan.conditions.append(ConditionUpdate("Retraining", "Unknown", "WaitingForTrainingData", message[:1000]))
        plan.requeue_after = RUNNING_RECHECK_S
        return
    if status.get("pendingRetrain"):
        plan.status["pendingRetrain"] = None
    if give_up is not None:
        plan.events.append(EventSpec("Warning", "FeedbackDataNotIngested",
                                     f"{give_up}; the retrain trains on the latest data"))
    if feedback_sha and version is not None:
        plan.status["dataVersionBaseline"] = version  # its own new version must not fire the new-data trigger

    held_out = published_hold_out(plan.status.get("feedback") or status.get("feedback"), feedback_sha)
    in_flight = [(r["trainingRun"], RetrainInputs.from_wire(r.get("inputs"))) for r in records
                 if r.get("outcome", learning.PENDING) == learning.PENDING and r.get("trainingRun")]
    same = learning.learnt_before(inputs, [*context.model_inputs, *in_flight])
    if same is not None:
        nothing_new(plan, status, spec, records, decided, inputs, held_out, same, now)
        return

    name = retrain_run_name(body["metadata"]["name"], decided["slot"], decided["trigger"], inputs)
    # Pinned to the version holding the feedback; otherwise the TrainingRun reads the latest
    # version when it starts (the one the inputs name, unless a newer one arrives meanwhile).
    pin = inputs.data_version if feedback_sha and version == data.version_with(feedback_sha) else None
    if not any(r.get("trainingRun") == name for r in records):
        record = {"time": iso(now), "trigger": decided["trigger"], "trainingRun": name,
                  "message": decided.get("message"), "inputs": record_inputs(inputs, held_out),
                  "outcome": learning.PENDING,
                  "breachedAt": decided.get("breachedAt")}
        records.append({k: v for k, v in record.items() if v is not None})
        plan.status["retrains"] = records[-RETRAINS_LIMIT:]
    plan.children.append(training_run(body, context, decided, name, pin))
    plan.retrain_trigger = decided["trigger"].split(",")[0]
    message = f"TrainingRun {name} on {inputs.describe()} for {decided['trigger']}: {decided.get('message') or ''}"
    plan.status["lastRetrainDecision"] = {"time": iso(now), "reason": verdicts.RETRAIN_ALLOWED,
                                          "message": message[:1000], "trigger": decided["trigger"]}
    plan.events.append(EventSpec("Normal", "RetrainStarted", message[:1000]))
    primary = plan.retrain_trigger
    plan.conditions.append(ConditionUpdate("Retraining", "True", "RetrainedOn" + primary[0].upper() + primary[1:],
                                           message[:1000]))


def asked_by(message: str | None) -> str:
    """' (manual: requested by <who> ...)' for a decision a person's request caused (the first cause
    of a request lists it), so that a held decision names who asked; else ''."""
    first = (message or "").split("; ")[0]
    return f" ({first})" if first.startswith(f"{triggers.MANUAL}: ") else ""


def published_hold_out(published: dict | None, feedback_sha: str | None) -> int | None:
    """The hold-out of the published export (status.feedback) the retrain trains on: how many
    newer labelled predictions it left out for champion/challenger."""
    if not feedback_sha or not published or published.get("sha256") != feedback_sha:
        return None
    return published.get("heldOut") or None


def record_inputs(inputs: RetrainInputs, held_out: int | None) -> dict:
    """A retrain record's inputs: what it learns from, and the labelled predictions it left out."""
    return {**inputs.wire(), **({"comparisonHoldout": held_out} if held_out else {})}


def nothing_new(plan: MonitorPlan, status: dict, spec: MonitorPolicySpec, records: list[dict], decided: dict,
                inputs: RetrainInputs, held_out: int | None, same: str, now: datetime) -> None:
    """Equal inputs learn nothing new: no TrainingRun, cooldown and budget untouched; one
    NothingNew record per distinct inputs, and the policy waits for labels or data."""
    message = (f"{decided['trigger']} fired, but {inputs.describe()} are what {same} was trained on: nothing new "
               "to learn; waiting for new labels or data") + asked_by(decided.get("message"))
    last = next((r for r in reversed(records) if r.get("outcome") == learning.NOTHING_NEW), None)
    if last is None or last.get("inputs") != record_inputs(inputs, held_out) or records[-1] is not last:
        record = {"time": iso(now), "trigger": decided["trigger"], "message": decided.get("message"),
                  "inputs": record_inputs(inputs, held_out), "outcome": learning.NOTHING_NEW,
                  "outcomeMessage": f"same inputs as {same}", "breachedAt": decided.get("breachedAt")}
        records.append({k: v for k, v in record.items() if v is not None})
        plan.status["retrains"] = records[-RETRAINS_LIMIT:]
    hold_retrain(plan, status, spec, Hold(learning.NOTHING_NEW_TO_LEARN, message), decided["trigger"], now)
