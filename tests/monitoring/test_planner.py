"""The MonitorPolicy planner as table tests: (policy, Jobs, results, context, clock) -> plan."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kadence.domain.monitoring.triggers import DatasetVersionInfo
from kadence.planners.monitorpolicy import (
    CANDIDATE_ANNOTATION,
    CANDIDATE_VERDICT_ANNOTATION,
    CAUSED_BY_ANNOTATION,
    FEEDBACK_DATA_ANNOTATION,
    HISTORY_LIMIT,
    RESULT_KEY_ANNOTATION,
    RETRAIN_TRIGGER_ANNOTATION,
    DATA_VERSION_ANNOTATION,
    FEEDBACK_WAIT,
    RETRAINED_BY_LABEL,
    SLOT_ANNOTATION,
    AppendData,
    ModelInfo,
    MonitorContext,
    RetrainData,
    MonitorObservation,
    current_slot,
    plan_monitorpolicy,
    results_to_fetch,
)

NOW = datetime(2026, 11, 23, 12, 2, 30, tzinfo=timezone.utc)  # slot of 12:00 with a 5m interval
SLOT = int(datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc).timestamp() // 300)
JOB = f"churn-monitor-monitor-{SLOT}"
TRAINING = {"datasetRef": {"name": "churn", "version": "v1"}, "task": "classification",
            "objective": {"metric": "f1"}, "model": "churn"}
PRODUCTION = ModelInfo(model_version="churn-v3", version="3", uri="s3://kadence/models/churn/3/model.skops",
                       sha256="a" * 64, holdout_metrics={"f1": 0.82}, reference_uri="s3://kadence/datasets/ns/churn/v1/profile.json",
                       target="churned", classes=[0, 1], dataset="churn", dataset_version="v1", dataset_rows=1000)
CANDIDATE = ModelInfo(model_version="churn-v4", version="4", uri="s3://kadence/models/churn/4/model.skops",
                      sha256="b" * 64)


def policy(status: dict | None = None, **spec_overrides) -> dict:
    spec = {
        "inferenceServiceRef": {"name": "churn"}, "interval": "5m", "window": {"duration": "1h"},
        "drift": {"method": "psi"}, "performance": {"metric": "f1", "threshold": 0.55, "minLabelled": 50},
        "actions": {"retrain": {"template": TRAINING, "cooldown": "6h", "maxPerDay": 3,
                                "promotion": {"mode": "Auto", "targetStage": "Production"}}},
    }
    spec.update(spec_overrides)
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy",
            "metadata": {"name": "churn-monitor", "namespace": "ns", "uid": "uid-1", "generation": 1,
                         "creationTimestamp": "2026-11-01T00:00:00Z"},
            "spec": spec, "status": status or {}}


def context(**overrides) -> MonitorContext:
    values = dict(production=PRODUCTION, retrain_spec=TRAINING)
    values.update(overrides)
    return MonitorContext(**values)


def job(name: str, state: str = "Succeeded", key: str | None = None) -> dict:
    status = {"Succeeded": {"succeeded": 1}, "Failed": {"conditions": [{"type": "Failed", "status": "True"}]},
              "Running": {"active": 1}}[state]
    annotations = {RESULT_KEY_ANNOTATION: key or f"results/{name}.json"}
    if "-compare-" in name:
        annotations[CANDIDATE_ANNOTATION] = name.split("-compare-")[1]
    else:
        annotations[SLOT_ANNOTATION] = name.rsplit("-", 1)[1]
    return {"metadata": {"name": name, "annotations": annotations}, "status": status}


def result(**overrides) -> dict:
    body = {"kind": "kadence.dev/monitor-result", "outcome": "Evaluated", "time": "2026-11-23T11:55:00Z",
            "samples": 500, "labelledSamples": 200, "driftScores": {"x": 0.05}, "driftedFeatures": [],
            "features": [{"feature": "x", "status": "Judged", "score": 0.05}], "metrics": {"f1": 0.8},
            "breached": False, "reason": "Healthy", "message": "f1=0.8 >= 0.55; 0/1 features drifted",
            "reportUri": "s3://kadence/monitoring/ns/churn-monitor/20261123T115500Z/report.html",
            "labelledDataUri": "s3://kadence/monitoring/ns/churn-monitor/20261123T115500Z/labelled.parquet"}
    return body | overrides


BREACH = dict(metrics={"f1": 0.5}, breached=True, reason="QualityBelowThreshold",
              message="f1=0.5 < 0.55 over 200 labelled predictions")
PREVIOUS = "churn-monitor-monitor-1"


def plan_with(result_overrides=None, status=None, now=NOW, ctx=None, jobs=None, **spec_overrides):
    observed_jobs = jobs if jobs is not None else [job(PREVIOUS)]
    results = {PREVIOUS: result(**(result_overrides or {}))} if result_overrides is not None else {}
    return plan_monitorpolicy(policy(status, **spec_overrides), MonitorObservation(observed_jobs, results),
                              ctx or context(), now)


def kinds(plan) -> list[tuple[str, str]]:
    return [(c["kind"], c["metadata"]["name"]) for c in plan.children]


def condition(plan, type_):
    return next((c for c in plan.conditions if c.type == type_), None)


# --- monitor Jobs -------------------------------------------------------------------------


def test_a_first_reconcile_starts_the_monitor_job_of_the_current_slot():
    plan = plan_with(jobs=[])
    assert kinds(plan) == [("ConfigMap", JOB), ("Job", JOB)]
    job_body = plan.children[1]
    assert job_body["spec"]["template"]["spec"]["containers"][0]["command"] == ["kadence", "monitor"]
    assert job_body["metadata"]["annotations"][RESULT_KEY_ANNOTATION] == \
        "monitoring/ns/churn-monitor/20261123T120000Z/result.json"
    assert plan.requeue_after == pytest.approx(150.0)
    assert condition(plan, "Ready").reason == "Evaluating"


def test_the_task_judges_the_window_ending_at_the_slot_start_against_the_production_profile():
    import json

    task = json.loads(plan_with(jobs=[]).children[0]["data"]["task.json"])
    assert task["time"] == "2026-11-23T12:00:00Z"
    assert task["window"] == {"durationSeconds": 3600.0}
    assert task["referenceUri"] == PRODUCTION.reference_uri
    assert task["excludeColumns"] == ["churned"] and task["exportLabelledAs"] == "churned"
    assert task["offlineMetric"] == 0.82 and task["classes"] == [0, 1]


def test_a_reference_named_in_the_policy_overrides_the_production_profile():
    import json

    ctx = context(reference_uri="s3://kadence/datasets/ns/golden/v9/profile.json")
    task = json.loads(plan_with(jobs=[], ctx=ctx).children[0]["data"]["task.json"])
    assert task["referenceUri"] == "s3://kadence/datasets/ns/golden/v9/profile.json"


def test_the_same_slot_gives_the_same_job_and_task_at_any_moment_inside_it():
    early = plan_with(jobs=[], now=NOW.replace(minute=0, second=0))
    late = plan_with(jobs=[], now=NOW.replace(minute=4, second=59))
    assert early.children == late.children


def test_a_running_job_of_the_slot_is_waited_for():
    plan = plan_with(jobs=[job(JOB, "Running")])
    assert plan.children == [] and plan.requeue_after == 15.0


def test_a_slot_already_in_status_starts_nothing_until_the_next_slot():
    plan = plan_with(jobs=[job(JOB)], status={"lastJob": JOB})
    assert plan.children == [] and plan.requeue_after == pytest.approx(150.0)


def test_after_an_outage_only_the_current_slot_runs():
    plan = plan_with(jobs=[], status={"lastJob": "churn-monitor-monitor-100"}, now=NOW + timedelta(days=3))
    assert [name for kind, name in kinds(plan) if kind == "Job"] == [
        f"churn-monitor-monitor-{current_slot(policy_spec(), NOW + timedelta(days=3))[0]}"]


def policy_spec():
    from kadence.api.monitorpolicy import MonitorPolicySpec

    return MonitorPolicySpec.model_validate(policy()["spec"])


def test_finished_jobs_already_reflected_or_superseded_are_deleted_and_the_current_one_kept():
    jobs = [job("churn-monitor-monitor-1"), job("churn-monitor-monitor-2"), job("churn-monitor-monitor-3"),
            job(JOB, "Running")]
    plan = plan_with(jobs=jobs, status={"lastJob": "churn-monitor-monitor-2"})
    deleted = {ref.name for ref in plan.delete if ref.kind == "Job"}
    assert deleted == {"churn-monitor-monitor-1"}  # 2 is in status, 3 is still to be read


def test_only_the_newest_unread_monitor_result_is_fetched_from_the_key_its_job_names():
    body = policy({"lastJob": "p-monitor-1"})
    jobs = [job("p-monitor-1"), job("p-monitor-2"), job("p-monitor-3", key="k/3.json"), job("p-monitor-4", "Running"),
            job("p-compare-v4", key="k/c.json")]
    assert results_to_fetch(body, jobs) == {"p-monitor-3": "k/3.json", "p-compare-v4": "k/c.json"}


# --- evaluations --------------------------------------------------------------------------


def test_a_healthy_result_goes_to_status_with_summaries_for_kubectl_get():
    plan = plan_with({})
    assert plan.status["lastJob"] == PREVIOUS
    assert plan.status["lastEvaluation"]["reason"] == "Healthy"
    assert plan.status["metricSummary"] == "f1=0.8" and plan.status["driftSummary"] == "0/1 drifted"
    assert condition(plan, "Breached").status == "False"
    assert condition(plan, "Ready").reason == "Monitoring"
    assert plan.evaluated["reason"] == "Healthy"
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)


def test_too_few_samples_are_reported_as_unknown_never_as_healthy():
    plan = plan_with({"reason": "TooFewSamples", "message": "12 predictions in the window, 100 needed"})
    breached = condition(plan, "Breached")
    assert (breached.status, breached.reason) == ("Unknown", "TooFewSamples")
    assert plan.phase == "Waiting"
    assert [e.reason for e in plan.events] == ["TooFewSamples"]


def test_the_history_keeps_the_newest_evaluations_only():
    old = [{"time": f"2026-11-22T00:{i:02d}:00Z", "samples": 1, "labelledSamples": 0, "breached": False,
            "reason": "Healthy"} for i in range(HISTORY_LIMIT)]
    plan = plan_with({}, status={"history": old})
    assert len(plan.status["history"]) == HISTORY_LIMIT
    assert plan.status["history"][-1]["job"] == PREVIOUS


def test_a_failed_job_without_a_result_is_reported_and_not_retried_for_the_same_slot():
    plan = plan_with(None, jobs=[job(PREVIOUS, "Failed")])
    assert condition(plan, "Ready").reason == "MonitorJobFailed"
    assert plan.status["lastJob"] == PREVIOUS
    assert plan.events[0].type == "Warning"


def test_a_succeeded_job_whose_result_is_not_readable_yet_is_looked_at_again_soon():
    plan = plan_with(None, jobs=[job(PREVIOUS)])
    assert "lastJob" not in plan.status and plan.requeue_after == 15.0


# --- breaches and retrains ------------------------------------------------------------------


def test_a_breach_starts_one_retrain_with_the_cause_chain_in_annotations():
    plan = plan_with(BREACH)
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert len(runs) == 1
    run = runs[0]
    assert run["metadata"]["name"] == "churn-monitor-retrain-20261123120230"
    annotations = run["metadata"]["annotations"]
    assert annotations[RETRAIN_TRIGGER_ANNOTATION] == "breach"
    assert annotations[CAUSED_BY_ANNOTATION] == "MonitorPolicy/ns/churn-monitor"
    assert annotations[FEEDBACK_DATA_ANNOTATION].endswith("labelled.parquet")
    assert run["metadata"]["labels"][RETRAINED_BY_LABEL] == "churn-monitor"
    assert run["spec"]["datasetRef"] == {"name": "churn"}  # unpinned: fresh data
    assert run["spec"]["promotion"] == {"mode": "Candidate"}  # champion/challenger and canary decide the rest
    assert plan.status["retrains"] == [{"time": "2026-11-23T12:02:30Z", "trigger": "breach",
                                        "trainingRun": run["metadata"]["name"],
                                        "message": "breach: f1=0.5 < 0.55 over 200 labelled predictions"}]
    assert plan.retrain_trigger == "breach"
    assert condition(plan, "Retraining").reason == "RetrainedOnBreach"
    assert condition(plan, "Breached").status == "True"
    assert {e.reason for e in plan.events} == {"QualityBelowThreshold", "RetrainStarted"}


@pytest.mark.parametrize("past_hours, reason", [
    pytest.param([1], "CooldownActive", id="a breach inside the cooldown is held"),
    pytest.param([7, 14, 21], "DailyBudgetExhausted", id="a breach past the daily budget is held"),
])
def test_a_held_retrain_is_reported_with_its_reason(past_hours, reason):
    retrains = [{"time": (NOW - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ"), "trigger": "breach",
                 "trainingRun": f"r{h}"} for h in past_hours]
    plan = plan_with(BREACH, status={"retrains": retrains})
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)
    assert plan.status["lastRetrainDecision"]["reason"] == reason
    assert plan.held_reason == reason
    assert condition(plan, "Retraining").reason == reason


def test_a_breach_with_retraining_disabled_only_alerts():
    plan = plan_with(BREACH, actions={"retrain": {"enabled": False}}, ctx=context(retrain_spec=None))
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)
    assert plan.status["lastRetrainDecision"]["reason"] == "RetrainDisabled"
    assert any(e.type == "Warning" and e.reason == "QualityBelowThreshold" for e in plan.events)


def test_a_breach_with_on_breach_off_does_not_retrain():
    plan = plan_with(BREACH, triggers={"onBreach": False})
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)
    assert "lastRetrainDecision" not in plan.status


def test_breach_schedule_and_new_data_firing_together_make_one_retrain_with_every_cause():
    ctx = context(latest_dataset=DatasetVersionInfo("v2", 1500))
    plan = plan_with(BREACH, ctx=ctx, status={"lastScheduledRun": "2026-11-22T03:00:00Z"},
                     triggers={"schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}, "onNewData": {}})
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert len(runs) == 1
    assert runs[0]["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "breach,newData,schedule"
    assert condition(plan, "Retraining").reason == "RetrainedOnBreach"
    assert "newData: new validated Dataset version" in condition(plan, "Retraining").message
    assert plan.status["lastScheduledRun"] == "2026-11-23T03:00:00Z"
    assert plan.status["dataVersionBaseline"] == "v2"


def test_a_schedule_missed_for_a_week_runs_once_and_then_waits_for_the_next_slot():
    spec = dict(triggers={"schedule": {"cron": "0 3 * * *", "timeZone": "Europe/Paris"}})
    plan = plan_with(status={"lastScheduledRun": "2026-11-16T02:00:00Z"}, jobs=[], **spec)
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert len(runs) == 1 and runs[0]["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "schedule"
    assert plan.status["lastScheduledRun"] == "2026-11-23T02:00:00Z"  # 03:00 Paris in winter
    after = plan_with(status={"lastScheduledRun": plan.status["lastScheduledRun"], "retrains": plan.status["retrains"]},
                      jobs=[], now=NOW + timedelta(minutes=5), **spec)
    assert not any(c["kind"] == "TrainingRun" for c in after.children)


def test_a_schedule_slot_inside_the_cooldown_is_consumed_not_queued():
    recent = [{"time": "2026-11-23T11:00:00Z", "trigger": "breach", "trainingRun": "r1"}]
    plan = plan_with(status={"lastScheduledRun": "2026-11-22T03:00:00Z", "retrains": recent}, jobs=[],
                     triggers={"schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}})
    assert plan.status["lastScheduledRun"] == "2026-11-23T03:00:00Z"
    assert plan.status["lastRetrainDecision"]["reason"] == "CooldownActive"


@pytest.mark.parametrize("latest, baseline, fires", [
    pytest.param(DatasetVersionInfo("v2", 1200), None, True, id="a new validated version retrains"),
    pytest.param(DatasetVersionInfo("v2", 1200, validated=False), None, False, id="an invalid version does not"),
    pytest.param(DatasetVersionInfo("v1", 1000), None, False, id="the training version does not"),
    pytest.param(DatasetVersionInfo("v2", 1200), "v2", False, id="a version that already retrained does not"),
    pytest.param(DatasetVersionInfo("v2", 1010), None, False, id="too little growth does not"),
])
def test_the_new_data_trigger(latest, baseline, fires):
    status = {"dataVersionBaseline": baseline} if baseline else {}
    plan = plan_with(status=status, jobs=[], ctx=context(latest_dataset=latest),
                     triggers={"onNewData": {"minGrowthPercent": 5}})
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert len(runs) == (1 if fires else 0)
    if fires:
        assert runs[0]["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "newData"
        assert condition(plan, "Retraining").reason == "RetrainedOnNewData"


def test_a_production_gap_is_reported_even_when_it_does_not_retrain():
    plan = plan_with({"metrics": {"f1": 0.7}, "message": "f1=0.7 >= 0.55"},
                     triggers={"onProductionGap": {"margin": 0.05}})
    assert plan.status["productionGap"]["gap"] == pytest.approx(0.12)
    assert plan.status["productionGap"]["exceeded"] is True
    assert condition(plan, "ProductionGap").status == "True"
    assert plan.production_gap["offline"] == 0.82
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)


def test_a_production_gap_retrains_when_the_policy_says_so():
    plan = plan_with({"metrics": {"f1": 0.7}}, triggers={"onProductionGap": {"margin": 0.05, "retrain": True}})
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert runs[0]["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "productionGap"


# --- champion/challenger ------------------------------------------------------------------------


def test_a_candidate_gets_one_comparison_job_against_production():
    import json

    plan = plan_with(status={"lastJob": JOB}, jobs=[job(JOB)], ctx=context(candidate=CANDIDATE))
    assert kinds(plan) == [("ConfigMap", "churn-monitor-compare-churn-v4"), ("Job", "churn-monitor-compare-churn-v4")]
    task = json.loads(plan.children[0]["data"]["task.json"])
    assert task["compare"]["challenger"]["version"] == "4" and task["compare"]["champion"]["version"] == "3"
    assert task["resultKey"] == "monitoring/ns/churn-monitor/comparisons/churn-monitor-compare-churn-v4/result.json"
    running = plan_with(status={"lastJob": JOB}, jobs=[job(JOB), job("churn-monitor-compare-churn-v4", "Running")],
                        ctx=context(candidate=CANDIDATE))
    assert running.children == []


@pytest.mark.parametrize("allowed, reason, event_type", [
    (True, "ChallengerBeatsChampion", "Normal"),
    (False, "ChallengerNotBetter", "Warning"),
])
def test_the_comparison_result_decides_whether_the_candidate_may_go_to_canary(allowed, reason, event_type):
    name = "churn-monitor-compare-churn-v4"
    comparison = {"metric": "f1", "labelled": 200, "championVersion": "3", "challengerVersion": "4",
                  "champion": 0.5, "challenger": 0.9 if allowed else 0.45, "reason": reason,
                  "message": "candidate f1=… vs Production 0.5 on 200 labelled predictions", "allowed": allowed}
    plan = plan_monitorpolicy(policy({"lastJob": JOB}), MonitorObservation([job(JOB), job(name)],
                                                                            {name: result(comparison=comparison)}),
                              context(candidate=CANDIDATE), NOW)
    verdict = plan.status["lastComparison"]
    assert (verdict["allowed"], verdict["reason"], verdict["candidate"]) == (allowed, reason, "churn-v4")
    assert plan.candidate_verdict == verdict and verdict["champion"] == "churn-v3"
    assert condition(plan, "CandidateApproved").status == ("True" if allowed else "False")
    assert plan.events[-1].type == event_type
    assert "lastEvaluation" not in plan.status  # a comparison is not an evaluation
    assert CANDIDATE_VERDICT_ANNOTATION == "kadence.dev/challenger-verdict"


# --- spec problems ---------------------------------------------------------------------------------


def test_a_missing_reference_dataset_is_invalid_spec_naming_the_field():
    ctx = context(spec_problems={"spec.drift.reference.dataset": "Dataset golden not found"})
    plan = plan_with(jobs=[], ctx=ctx)
    ready = condition(plan, "Ready")
    assert (ready.status, ready.reason) == ("False", "InvalidSpec")
    assert ready.message == "spec.drift.reference.dataset: Dataset golden not found"
    assert plan.children == []


def test_a_missing_inference_service_waits_and_says_so():
    plan = plan_with(jobs=[], ctx=context(inference_service_found=False))
    assert condition(plan, "Ready").reason == "InferenceServiceNotFound" and plan.children == []


def test_an_unusable_schedule_is_refused_by_the_spec_naming_the_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        plan_with(jobs=[], triggers={"schedule": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}})


def test_the_churn_example_policy_plans_its_first_monitor_job():
    import json
    from pathlib import Path

    import yaml

    example = yaml.safe_load((Path(__file__).parents[2] / "examples/churn/05-monitorpolicy.yaml").read_text())
    example["metadata"].update(namespace="default", uid="uid-2", generation=1,
                               creationTimestamp="2026-11-01T00:00:00Z")
    plan = plan_monitorpolicy(example, MonitorObservation(), context(), NOW)
    task = json.loads(plan.children[0]["data"]["task.json"])
    assert task["window"] == {"durationSeconds": 86400.0}
    assert task["drift"]["features"] == [{"name": "monthly_charges", "method": "ks", "threshold": 0.01}]
    assert task["exportLabelledAs"] == "churned"


def test_a_retrain_whose_source_run_cannot_be_resolved_is_held_and_says_which():
    retrain = {"fromTrainingRun": "churn-initial", "cooldown": "6h"}
    plan = plan_with(BREACH, actions={"retrain": retrain}, ctx=context(retrain_spec=None))
    decision = plan.status["lastRetrainDecision"]
    assert decision["reason"] == "RetrainSourceMissing"
    assert "TrainingRun churn-initial could not be resolved" in decision["message"]
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)


# --- feedback folded into a new Dataset version before the retrain ---------------------------------

FEEDBACK = "s3://kadence/monitoring/ns/churn-monitor/20261123T115500Z/labelled.parquet"
RUN = "churn-monitor-retrain-20261123120230"
PENDING = {"time": "2026-11-23T12:02:30Z", "trigger": "breach", "trainingRun": RUN, "dataset": "churn",
           "feedbackUri": FEEDBACK, "message": "breach: f1=0.5 < 0.55 over 200 labelled predictions"}


def test_a_breach_with_feedback_appends_it_to_the_dataset_and_waits_before_training():
    plan = plan_with(BREACH, ctx=context(retrain_data=RetrainData("churn")))
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)
    assert plan.append_data == AppendData("churn", FEEDBACK)
    assert plan.status["pendingRetrain"]["trainingRun"] == RUN
    assert plan.status["retrains"][0]["trainingRun"] == RUN  # the cooldown counts from the decision
    assert condition(plan, "Retraining").reason == "WaitingForFeedbackData"
    assert "RetrainDecided" in {e.reason for e in plan.events}


@pytest.mark.parametrize("data, pin, appended_again", [
    pytest.param(RetrainData("churn"), None, True, id="a lost annotation is added again while waiting"),
    pytest.param(RetrainData("churn", requested=(FEEDBACK,)), None, False, id="an ingest in progress is waited for"),
    pytest.param(RetrainData("churn", requested=(FEEDBACK,), appended_in={FEEDBACK: "v2"}), "v2", False,
                 id="the dataset version holding the feedback starts the run pinned to it"),
    pytest.param(RetrainData("churn", "churn-features", (FEEDBACK,), {FEEDBACK: "v2"}, {}), None, False,
                 id="a feature set not yet materialized on that version is waited for"),
    pytest.param(RetrainData("churn", "churn-features", (FEEDBACK,), {FEEDBACK: "v2"}, {"v2": "f9"}), "f9", False,
                 id="the feature set version built on it is pinned"),
])
def test_a_pending_retrain_starts_once_its_feedback_is_in_the_training_data(data, pin, appended_again):
    template = {**TRAINING, "datasetRef": {"name": "churn"}}
    if data.feature_set:
        template = {k: v for k, v in TRAINING.items() if k != "datasetRef"} | {"featureSetRef": {"name": "churn-features"}}
    now = NOW + timedelta(minutes=2)
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB}, jobs=[job(JOB)], now=now,
                     ctx=context(retrain_data=data, retrain_spec=template))
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert (plan.append_data is not None) == appended_again
    if pin is None:
        assert runs == [] and "pendingRetrain" not in plan.status
        return
    ref = runs[0]["spec"].get("featureSetRef") or runs[0]["spec"]["datasetRef"]
    assert runs[0]["metadata"]["name"] == RUN and ref["version"] == pin
    assert runs[0]["metadata"]["annotations"][DATA_VERSION_ANNOTATION] == pin
    assert plan.status["pendingRetrain"] is None and plan.status["dataVersionBaseline"] == "v2"
    assert condition(plan, "Retraining").reason == "RetrainedOnBreach"


def test_feedback_never_ingested_retrains_on_the_latest_data_with_a_warning():
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB}, jobs=[job(JOB)],
                     now=NOW + FEEDBACK_WAIT + timedelta(minutes=1),
                     ctx=context(retrain_data=RetrainData("churn", requested=(FEEDBACK,))))
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert runs[0]["spec"]["datasetRef"] == {"name": "churn"}
    assert "FeedbackDataNotIngested" in {e.reason for e in plan.events if e.type == "Warning"}


def test_a_pending_retrain_is_not_doubled_by_its_own_new_dataset_version_or_a_new_breach():
    plan = plan_with(BREACH, status={"pendingRetrain": PENDING, "retrains": [PENDING]}, triggers={"onNewData": {}},
                     ctx=context(retrain_data=RetrainData("churn", requested=(FEEDBACK,)),
                                 latest_dataset=DatasetVersionInfo("v2", 2000)))
    assert not any(c["kind"] == "TrainingRun" for c in plan.children)
    assert "retrains" not in plan.status


@pytest.mark.parametrize("promotion, rollout", [
    pytest.param(None, "Canary", id="by default an approved candidate goes on as a canary"),
    pytest.param({"mode": "Auto", "targetStage": "Production", "margin": 0.02}, "Canary", id="auto promotion canaries"),
    pytest.param({"mode": "Manual", "targetStage": "Production"}, "Manual", id="manual promotion waits for a person"),
])
def test_an_allowed_verdict_says_what_follows(promotion, rollout):
    import json

    name = "churn-monitor-compare-churn-v4"
    retrain = {"template": TRAINING, **({"promotion": promotion} if promotion else {})}
    comparison = {"metric": "f1", "labelled": 200, "championVersion": "3", "challengerVersion": "4",
                  "champion": 0.5, "challenger": 0.9, "reason": "ChallengerBeatsChampion", "message": "…",
                  "allowed": True}
    body = policy({"lastJob": JOB}, actions={"retrain": retrain})
    plan = plan_monitorpolicy(body, MonitorObservation([job(JOB), job(name)], {name: result(comparison=comparison)}),
                              context(candidate=CANDIDATE), NOW)
    assert plan.candidate_verdict["rollout"] == rollout
    fresh = plan_monitorpolicy(policy({"lastJob": JOB}, actions={"retrain": retrain}),
                               MonitorObservation([job(JOB)], {}), context(candidate=CANDIDATE), NOW)
    task = json.loads(fresh.children[0]["data"]["task.json"])
    assert task["compare"]["margin"] == (promotion or {}).get("margin", 0.0)


@pytest.mark.parametrize("inputs, expected", [
    pytest.param(["customer_id", "tenure", "plan"], ["customer_id", "tenure", "plan"],
                 id="the signature inputs are the features drift judges"),
    pytest.param(["tenure", "churned"], ["tenure"], id="the target is never a feature"),
    pytest.param(None, None, id="a model without a signature leaves the choice to the reference"),
])
def test_drift_is_judged_on_the_serving_models_inputs(inputs, expected):
    import json
    from dataclasses import replace

    plan = plan_with(jobs=[], ctx=context(production=replace(PRODUCTION, inputs=inputs)))
    task = json.loads(plan.children[0]["data"]["task.json"])
    assert task.get("features") == expected


def test_feedback_the_dataset_refused_retrains_at_once_on_the_latest_data_saying_why():
    data = RetrainData("churn", requested=(FEEDBACK,), ingest_failure="rule minRows failed: 40 < 1000")
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB}, jobs=[job(JOB)], now=NOW + timedelta(minutes=1),
                     ctx=context(retrain_data=data))
    runs = [c for c in plan.children if c["kind"] == "TrainingRun"]
    assert runs[0]["spec"]["datasetRef"] == {"name": "churn"}
    warning = next(e for e in plan.events if e.reason == "FeedbackDataNotIngested")
    assert "did not take the feedback: rule minRows failed" in warning.message
