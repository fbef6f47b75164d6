"""The MonitorPolicy planner as table tests: (policy, Jobs, results, context, clock) -> plan."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kadence.domain.monitoring.retrain import Feedback, RetrainInputs, training_spec_hash
from kadence.domain.monitoring.triggers import DatasetVersionInfo
from kadence.planners.monitorpolicy import (
    CANDIDATE_ANNOTATION,
    CAUSED_BY_ANNOTATION,
    FEEDBACK_WAIT,
    HISTORY_LIMIT,
    RESULT_KEY_ANNOTATION,
    RETRAIN_TRIGGER_ANNOTATION,
    RETRAINED_BY_LABEL,
    SLOT_ANNOTATION,
    ModelInfo,
    MonitorContext,
    MonitorObservation,
    RetrainData,
    RetrainRun,
    current_slot,
    plan_monitorpolicy,
    results_to_fetch,
    retrain_run_name,
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
                      sha256="b" * 64, training_run="churn-monitor-retrain-abc")
DATA = RetrainData("churn", latest_version="v1", versions=("v1",))
SPEC_HASH = training_spec_hash(TRAINING)
V1_INPUTS = {"dataset": "churn", "datasetVersion": "v1", "specHash": SPEC_HASH}


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
    values = dict(production=PRODUCTION, retrain_spec=TRAINING, retrain_data=DATA)
    values.update(overrides)
    return MonitorContext(**values)


def job(name: str, state: str = "Succeeded", key: str | None = None) -> dict:
    status = {"Succeeded": {"succeeded": 1}, "Failed": {"conditions": [{"type": "Failed", "status": "True"}]},
              "Running": {"active": 1}}[state]
    policy_name = name.split("-compare-")[0] if "-compare-" in name else name.rsplit("-monitor-", 1)[0]
    annotations = {RESULT_KEY_ANNOTATION: key or f"monitoring/ns/{policy_name}/20261123T115500Z/result.json"}
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
            "reportUri": "s3://kadence/monitoring/ns/churn-monitor/20261123T115500Z/report.html"}
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
    """A condition the plan writes; Ready as realize derives it from the policy's dependents."""
    return next((c for c in plan.condition_updates(None) if c.type == type_), None)


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
    assert task["excludeColumns"] == ["churned"]
    # every stored labelled prediction, for retrains, less the newest 50 (performance.minLabelled) for the comparison;
    # its checkpoint kept under this policy's uid (a policy re-created under the same name starts afresh)
    assert task["feedbackExport"] == {"target": "churned", "holdOut": 50, "holdOutMaxFraction": 0.5,
                                      "policyUid": "uid-1", "policyCreated": "2026-11-01T00:00:00Z"}
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


def test_only_the_newest_unread_monitor_result_is_fetched_from_the_policys_own_keys():
    body = policy({"lastJob": "p-monitor-1"})
    body["metadata"]["name"] = "p"
    own = "monitoring/ns/p/20261123T120000Z/result.json"
    jobs = [job("p-monitor-1"), job("p-monitor-2"), job("p-monitor-3", key=own), job("p-monitor-4", "Running"),
            job("p-compare-v4", key="k/c.json")]
    assert results_to_fetch(body, jobs) == {"p-monitor-3": own,
                                            "p-compare-v4": "monitoring/ns/p/comparisons/uid-1/p-compare-v4/result.json"}
    # a Job whose annotation names a key outside the policy's evaluations is not read at all
    jobs[2] = job("p-monitor-3", key="runs/other-ns/train/result.json")
    assert results_to_fetch(body, jobs) == {"p-monitor-2": "monitoring/ns/p/20261123T115500Z/result.json",
                                            "p-compare-v4": "monitoring/ns/p/comparisons/uid-1/p-compare-v4/result.json"}


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

RESULT_TIME = "2026-11-23T11:55:00Z"


def training_runs(plan) -> list[dict]:
    return [c for c in plan.children if c["kind"] == "TrainingRun"]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_breach_starts_one_retrain_named_after_the_decision_with_its_inputs_recorded():
    plan = plan_with(BREACH)
    [run] = training_runs(plan)
    inputs = RetrainInputs(dataset="churn", dataset_version="v1", spec_hash=SPEC_HASH)
    assert run["metadata"]["name"] == retrain_run_name("churn-monitor", RESULT_TIME, "breach", inputs)
    annotations = run["metadata"]["annotations"]
    assert annotations[RETRAIN_TRIGGER_ANNOTATION] == "breach"
    assert annotations[CAUSED_BY_ANNOTATION] == "MonitorPolicy/ns/churn-monitor"
    assert run["metadata"]["labels"][RETRAINED_BY_LABEL] == "churn-monitor"
    assert run["spec"]["datasetRef"] == {"name": "churn"}  # the latest version, the one its inputs name
    assert run["spec"]["promotion"] == {"mode": "Candidate"}  # champion/challenger and canary decide the rest
    [record] = plan.status["retrains"]
    assert record == {"time": "2026-11-23T12:02:30Z", "trigger": "breach", "trainingRun": run["metadata"]["name"],
                      "message": "breach: f1=0.5 < 0.55 over 200 labelled predictions", "inputs": V1_INPUTS,
                      "outcome": "Pending", "breachedAt": RESULT_TIME}
    assert plan.retrain_trigger == "breach"
    assert condition(plan, "Retraining").reason == "RetrainedOnBreach"
    assert condition(plan, "Breached").status == "True"
    assert {e.reason for e in plan.events} == {"QualityBelowThreshold", "RetrainStarted"}


def test_two_reconciles_of_the_same_decision_create_one_training_run_whatever_the_clock():
    first = training_runs(plan_with(BREACH))[0]["metadata"]["name"]
    again = training_runs(plan_with(BREACH, now=NOW + timedelta(seconds=40)))[0]["metadata"]["name"]
    assert first == again
    assert not first.endswith(NOW.strftime("%Y%m%d%H%M%S"))


def test_a_retrain_training_run_the_status_lost_is_counted_from_the_child_and_holds_the_next_one():
    name = training_runs(plan_with(BREACH))[0]["metadata"]["name"]
    child = RetrainRun(name=name, phase="Running", created=NOW - timedelta(seconds=5), trigger="breach")
    plan = plan_with(BREACH, ctx=context(retrain_runs={name: child}))
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == "RetrainInProgress"
    assert [r["trainingRun"] for r in plan.status["retrains"]] == [name]


def retrain(hours_ago: float, outcome: str, name: str | None = None, rows: int | None = None) -> dict:
    record = {"time": stamp(NOW - timedelta(hours=hours_ago)), "trigger": "breach", "outcome": outcome,
              "trainingRun": name or f"r{hours_ago}", "inputs": {**V1_INPUTS, "datasetVersion": "v0"}}
    if rows is not None:
        record["inputs"]["feedbackRows"] = rows
    return record


def export(rows: int, sha: str = "e" * 64) -> dict:
    return {"uri": f"s3://kadence/monitoring/ns/churn-monitor/x/{sha[:4]}.parquet", "rows": rows, "target": "churned",
            "start": "2026-11-01T00:00:00Z", "end": "2026-11-23T11:00:00Z", "labelsUntil": RESULT_TIME,
            "sha256": sha}


@pytest.mark.parametrize("retrains, labelled, reason", [
    pytest.param([retrain(1, "Won")], None, "CooldownActive", id="the cooldown runs from a retrain that won"),
    pytest.param([retrain(1, "Lost")], None, None, id="a lost retrain starts no cooldown"),
    pytest.param([retrain(1, "NothingNew")], None, None, id="nothing new starts no cooldown"),
    pytest.param([retrain(1, "Failed")], None, None, id="a failed retrain starts no cooldown"),
    pytest.param([retrain(1, "Lost", rows=900)], 930, "WaitingForLabels",
                 id="after a lost retrain the next waits for enough new labels"),
    pytest.param([retrain(1, "Lost", rows=900)], 950, None, id="enough new labels after a lost retrain start it"),
    pytest.param([retrain(0.5, "Pending")], None, "RetrainInProgress", id="one retrain at a time"),
    pytest.param([retrain(7, "Lost"), retrain(14, "Failed"), retrain(21, "Lost")], None, "DailyBudgetExhausted",
                 id="the budget counts every retrain started in 24h"),
    pytest.param([retrain(h, "NothingNew") for h in (1, 2, 3, 4)], None, None,
                 id="decisions with nothing new spend no budget"),
    pytest.param([retrain(7, "Won"), retrain(30, "Lost"), retrain(40, "Lost")], None, None,
                 id="retrains of yesterday are not counted"),
])
def test_the_gate_before_a_retrain(retrains, labelled, reason):
    overrides = {"feedbackExport": export(labelled)} if labelled is not None else {}
    running = {r["trainingRun"]: RetrainRun(r["trainingRun"], "Running") for r in retrains if r["outcome"] == "Pending"}
    plan = plan_with({**BREACH, **overrides}, status={"retrains": retrains}, ctx=context(retrain_runs=running))
    if reason is None:
        assert len(training_runs(plan)) == 1
        return
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == reason
    assert plan.held_reason == reason
    assert condition(plan, "Retraining").reason == reason


def test_a_breach_with_retraining_disabled_only_alerts():
    plan = plan_with(BREACH, actions={"retrain": {"enabled": False}}, ctx=context(retrain_spec=None))
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == "RetrainDisabled"
    assert any(e.type == "Warning" and e.reason == "QualityBelowThreshold" for e in plan.events)


def test_a_breach_with_on_breach_off_does_not_retrain():
    plan = plan_with(BREACH, triggers={"onBreach": False})
    assert training_runs(plan) == []
    assert "lastRetrainDecision" not in plan.status


def test_breach_schedule_and_new_data_firing_together_make_one_retrain_with_every_cause():
    ctx = context(latest_dataset=DatasetVersionInfo("v2", 1500),
                  retrain_data=RetrainData("churn", latest_version="v2", versions=("v2", "v1")))
    plan = plan_with(BREACH, ctx=ctx, status={"lastScheduledRun": "2026-11-22T03:00:00Z"},
                     triggers={"schedule": {"cron": "0 3 * * *", "timeZone": "UTC"}, "onNewData": {}})
    [run] = training_runs(plan)
    assert run["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "breach,newData,schedule"
    assert plan.status["retrains"][0]["inputs"]["datasetVersion"] == "v2"
    assert condition(plan, "Retraining").reason == "RetrainedOnBreach"
    assert "newData: new validated Dataset version" in condition(plan, "Retraining").message
    assert plan.status["lastScheduledRun"] == "2026-11-23T03:00:00Z"
    assert plan.status["dataVersionBaseline"] == "v2"


def test_a_schedule_missed_for_a_week_runs_once_and_then_waits_for_the_next_slot():
    spec = dict(triggers={"schedule": {"cron": "0 3 * * *", "timeZone": "Europe/Paris"}})
    plan = plan_with(status={"lastScheduledRun": "2026-11-16T02:00:00Z"}, jobs=[], **spec)
    [run] = training_runs(plan)
    assert run["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "schedule"
    assert plan.status["lastScheduledRun"] == "2026-11-23T02:00:00Z"  # 03:00 Paris in winter
    after = plan_with(status={"lastScheduledRun": plan.status["lastScheduledRun"], "retrains": plan.status["retrains"]},
                      jobs=[], now=NOW + timedelta(minutes=5), **spec)
    assert training_runs(after) == []


def test_a_schedule_slot_inside_the_cooldown_is_consumed_not_queued():
    plan = plan_with(status={"lastScheduledRun": "2026-11-22T03:00:00Z", "retrains": [retrain(1, "Won")]}, jobs=[],
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
    data = RetrainData("churn", latest_version=latest.name, versions=(latest.name,))
    plan = plan_with(status=status, jobs=[], ctx=context(latest_dataset=latest, retrain_data=data),
                     triggers={"onNewData": {"minGrowthPercent": 5}})
    runs = training_runs(plan)
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
    assert training_runs(plan) == []


def test_a_production_gap_retrains_when_the_policy_says_so():
    plan = plan_with({"metrics": {"f1": 0.7}}, triggers={"onProductionGap": {"margin": 0.05, "retrain": True}})
    assert training_runs(plan)[0]["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "productionGap"


def test_a_retrain_whose_source_run_cannot_be_resolved_is_held_and_says_which():
    retrain_spec = {"fromTrainingRun": "churn-initial", "cooldown": "6h"}
    plan = plan_with(BREACH, actions={"retrain": retrain_spec}, ctx=context(retrain_spec=None))
    decision = plan.status["lastRetrainDecision"]
    assert decision["reason"] == "RetrainSourceMissing"
    assert "TrainingRun churn-initial could not be resolved" in decision["message"]
    assert training_runs(plan) == []


def test_a_retrain_whose_dataset_is_missing_is_held_and_says_so():
    plan = plan_with(BREACH, ctx=context(retrain_data=None))
    assert plan.status["lastRetrainDecision"]["reason"] == "RetrainDataNotFound"
    assert training_runs(plan) == []


# --- nothing new to learn ---------------------------------------------------------------------

TRAINED_ON_V1 = [("churn-v3", RetrainInputs(dataset="churn", dataset_version="v1", spec_hash=SPEC_HASH))]


@pytest.mark.parametrize("known, data, template, starts", [
    pytest.param(TRAINED_ON_V1, DATA, TRAINING, False,
                 id="the data version and spec a registered version was trained on are nothing new"),
    pytest.param(TRAINED_ON_V1, RetrainData("churn", latest_version="v2", versions=("v2", "v1")), TRAINING, True,
                 id="a new data version is something new"),
    pytest.param(TRAINED_ON_V1, DATA, {**TRAINING, "search": {"maxTrials": 50}}, True,
                 id="a changed training spec is something new"),
    pytest.param(TRAINED_ON_V1, DATA, {**TRAINING, "promotion": {"mode": "Manual"}}, False,
                 id="the promotion policy does not change what is learnt"),
    pytest.param([("churn-v3", RetrainInputs(dataset="churn", dataset_version="v1", spec_hash=SPEC_HASH,
                                             feature_set="churn-features", feature_set_version="f1"))], DATA, TRAINING,
                 True, id="inputs read through a feature set differ from the dataset read directly"),
])
def test_nothing_new_detection(known, data, template, starts):
    plan = plan_with(BREACH, ctx=context(model_inputs=known, retrain_data=data, retrain_spec=template))
    assert len(training_runs(plan)) == (1 if starts else 0)
    if not starts:
        assert plan.status["lastRetrainDecision"]["reason"] == "NothingNewToLearn"
        assert plan.held_reason == "NothingNewToLearn"  # counted in kadence_retrains_held_total
        assert condition(plan, "Retraining").reason == "NothingNewToLearn"
        assert "what churn-v3 was trained on" in condition(plan, "Retraining").message
        [record] = plan.status["retrains"]
        assert record["outcome"] == "NothingNew" and "trainingRun" not in record
        assert record["inputs"] == V1_INPUTS
        assert [e.reason for e in plan.events if e.reason == "NothingNewToLearn"] == ["NothingNewToLearn"]


def test_the_wait_for_something_new_is_stated_once_and_alerts_once_after_label_wait():
    ctx = context(model_inputs=TRAINED_ON_V1)
    first = plan_with(BREACH, ctx=ctx)
    status = {k: first.status[k] for k in ("retrains", "lastRetrainDecision")}
    later = plan_with(BREACH, ctx=ctx, status=status, now=NOW + timedelta(hours=1))
    assert "retrains" not in later.status, "the same inputs are recorded once"
    assert "NothingNewToLearn" not in {e.reason for e in later.events}
    assert later.status["lastRetrainDecision"]["waitingSince"] == "2026-11-23T12:02:30Z"
    overdue = plan_with(BREACH, ctx=ctx, status={**status, "lastRetrainDecision": later.status["lastRetrainDecision"]},
                        now=NOW + timedelta(hours=25))
    assert [e.type for e in overdue.events if e.reason == "LabelsOverdue"] == ["Warning"]
    assert overdue.status["lastRetrainDecision"]["overdue"] is True
    assert condition(overdue, "Retraining").reason == "LabelsOverdue"
    again = plan_with(BREACH, ctx=ctx, status={**status, "lastRetrainDecision": overdue.status["lastRetrainDecision"]},
                      now=NOW + timedelta(hours=26))
    assert "LabelsOverdue" not in {e.reason for e in again.events}


def test_nothing_new_leaves_cooldown_and_budget_to_the_next_retrain_on_new_data():
    status = {"retrains": [retrain(h, "NothingNew") for h in (1, 2, 3)] + [retrain(20, "Lost"), retrain(22, "Lost")]}
    data = RetrainData("churn", latest_version="v2", versions=("v2", "v1"))
    plan = plan_with(BREACH, status=status, ctx=context(model_inputs=TRAINED_ON_V1, retrain_data=data))
    assert len(training_runs(plan)) == 1


# --- a drift breach without new labels --------------------------------------------------------

DRIFT = dict(breached=True, reason="DriftDetected", message="2/3 features drifted (67% >= 50%)",
             metrics={"f1": 0.8})


ESTIMATED = dict(breached=True, reason="EstimatedQualityBelowThreshold", labelledSamples=0, metrics={},
                 message="estimated f1=0.41 < 0.55 over 500 predictions",
                 quality={"reason": "EstimatedQualityBelowThreshold", "breached": True,
                          "message": "estimated f1=0.41 < 0.55 over 500 predictions"})


@pytest.mark.parametrize("choice, result_overrides, trained_on, outcome", [
    pytest.param("WaitForLabels", DRIFT, None, "WaitingForLabels", id="by default drift without labels waits"),
    pytest.param("RetrainAnyway", DRIFT, None, "start", id="retrain anyway retrains on the data as it is"),
    pytest.param("AlertOnly", DRIFT, None, "AlertOnly", id="alert only never retrains on drift alone"),
    pytest.param("WaitForLabels", {**DRIFT, "feedbackExport": export(300)}, None, "start",
                 id="drift with labels the serving model never saw retrains"),
    pytest.param("WaitForLabels", {**DRIFT, "feedbackExport": export(300)}, Feedback(300, "e" * 64), "WaitingForLabels",
                 id="labels the serving model was trained on are not new"),
    pytest.param("WaitForLabels", BREACH, None, "start", id="a quality breach is measured on labels and retrains"),
    pytest.param("WaitForLabels", ESTIMATED, None, "WaitingForLabels",
                 id="an estimated breach without labels waits for them by default"),
    pytest.param("AlertOnly", ESTIMATED, None, "AlertOnly", id="alert only never retrains on an estimate alone"),
    pytest.param("RetrainAnyway", ESTIMATED, None, "start", id="retrain anyway retrains on an estimated breach"),
    pytest.param("AlertOnly", {**ESTIMATED, "feedbackExport": export(300)}, None, "start",
                 id="an estimated breach with labels the serving model never saw retrains"),
    pytest.param("AlertOnly", {**ESTIMATED, "reason": "DriftAndQualityBreached"}, None, "AlertOnly",
                 id="drift and an estimated breach are still seen without labels"),
    pytest.param("AlertOnly", {**ESTIMATED, "reason": "DriftAndQualityBreached", "quality": {
        "reason": "QualityBelowThreshold", "message": "f1=0.5 < 0.55", "breached": True}}, None, "start",
                 id="drift and a realized breach are measured on labels and retrain"),
])
def test_drift_breach_without_new_labels_choices(choice, result_overrides, trained_on, outcome):
    retrain_spec = {"template": TRAINING, "withoutNewLabels": choice, "includeFeedback": False}
    plan = plan_with(result_overrides, actions={"retrain": retrain_spec}, ctx=context(production_feedback=trained_on))
    if outcome == "start":
        assert len(training_runs(plan)) == 1
        return
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == outcome
    assert condition(plan, "Retraining").reason == outcome



@pytest.mark.parametrize("overrides", [DRIFT, ESTIMATED], ids=["drift", "an estimated breach"])
def test_a_breach_without_labels_retrains_when_the_dataset_has_a_version_the_serving_model_was_not_trained_on(
        overrides):
    retrain_spec = {"template": TRAINING, "withoutNewLabels": "WaitForLabels", "includeFeedback": False}
    newer = RetrainData("churn", latest_version="v2", versions=("v2", "v1"))
    plan = plan_with(overrides, actions={"retrain": retrain_spec}, ctx=context(retrain_data=newer))
    assert len(training_runs(plan)) == 1

# --- feedback: published in status.feedback, folded in by the Dataset that opts in ------------------

SHA = "f" * 64
EXPORTED = {"uri": f"s3://kadence/monitoring/ns/churn-monitor/x/{SHA[:4]}.parquet", "rows": 1200,
            "from": "2026-11-01T00:00:00Z", "to": "2026-11-23T11:00:00Z", "sha256": SHA, "time": RESULT_TIME,
            "job": PREVIOUS}
OPTED_IN = RetrainData("churn", opts_in=True, latest_version="v1", versions=("v1",))
FOLDED = Feedback(1200, SHA, start="2026-11-01T00:00:00Z", end="2026-11-23T11:00:00Z")
PENDING = {"time": "2026-11-23T12:02:30Z", "trigger": "breach", "slot": RESULT_TIME, "dataset": "churn",
           "feedbackSha256": SHA, "message": "breach: f1=0.5 < 0.55 over 200 labelled predictions",
           "breachedAt": RESULT_TIME, "reportUri": "s3://kadence/monitoring/ns/churn-monitor/20261123T115500Z/report.html"}


def test_every_evaluation_records_its_feedback_export_in_status():
    plan = plan_with({"feedbackExport": export(1200, SHA)})
    assert plan.status["lastEvaluation"]["feedback"] == EXPORTED
    assert "feedback" not in plan.status, "published only when a retrain needs it"


def test_a_breach_publishes_the_feedback_for_the_opted_in_dataset_and_waits_for_a_version_holding_it():
    plan = plan_with({**BREACH, "feedbackExport": export(1200, SHA)}, ctx=context(retrain_data=OPTED_IN))
    assert training_runs(plan) == []
    assert plan.status["feedback"] == EXPORTED
    assert plan.status["pendingRetrain"] == PENDING
    assert condition(plan, "Retraining").reason == "WaitingForTrainingData"
    assert "RetrainDecided" in {e.reason for e in plan.events}


@pytest.mark.parametrize("data, pin", [
    pytest.param(OPTED_IN, None, id="an ingest in progress is waited for"),
    pytest.param(RetrainData("churn", opts_in=True, latest_version="v2", versions=("v2", "v1"),
                             feedback_in={"v2": FOLDED}), "v2",
                 id="the dataset version holding the feedback starts the run pinned to it"),
    pytest.param(RetrainData("churn", "churn-features", True, "v2", {"v2": FOLDED}, ("v2", "v1"), {"v1": "f1"}), None,
                 id="a feature set not yet materialized on that version is waited for"),
    pytest.param(RetrainData("churn", "churn-features", True, "v2", {"v2": FOLDED}, ("v2", "v1"),
                             {"v1": "f1", "v2": "f9"}), "f9", id="the feature set version built on it is pinned"),
])
def test_a_pending_retrain_starts_once_its_feedback_is_in_the_training_data(data, pin):
    template = TRAINING
    if data.feature_set:
        template = {k: v for k, v in TRAINING.items() if k != "datasetRef"} | {"featureSetRef": {"name": "churn-features"}}
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB}, jobs=[job(JOB)], now=NOW + timedelta(minutes=2),
                     ctx=context(retrain_data=data, retrain_spec=template))
    runs = training_runs(plan)
    if pin is None:
        assert runs == [] and "pendingRetrain" not in plan.status
        assert condition(plan, "Retraining").reason == "WaitingForTrainingData"
        return
    [run] = runs
    ref = run["spec"].get("featureSetRef") or run["spec"]["datasetRef"]
    assert ref["version"] == pin
    assert plan.status["pendingRetrain"] is None and plan.status["dataVersionBaseline"] == "v2"
    [record] = plan.status["retrains"]
    assert record["inputs"]["datasetVersion"] == "v2"
    assert (record["inputs"]["feedbackRows"], record["inputs"]["feedbackFrom"], record["inputs"]["feedbackTo"],
            record["inputs"]["feedbackSha256"]) == (1200, "2026-11-01T00:00:00Z", "2026-11-23T11:00:00Z", SHA)
    assert record["breachedAt"] == RESULT_TIME
    inputs = RetrainInputs.from_wire(record["inputs"])
    assert run["metadata"]["name"] == retrain_run_name("churn-monitor", RESULT_TIME, "breach", inputs)
    assert condition(plan, "Retraining").reason == "RetrainedOnBreach"


def test_feedback_already_in_a_dataset_version_is_not_published_again_before_training():
    data = RetrainData("churn", opts_in=True, latest_version="v2", versions=("v2", "v1"), feedback_in={"v2": FOLDED})
    plan = plan_with({**BREACH, "feedbackExport": export(1200, SHA)}, ctx=context(retrain_data=data))
    assert training_runs(plan)[0]["spec"]["datasetRef"] == {"name": "churn", "version": "v2"}


def test_feedback_the_serving_model_was_trained_on_is_nothing_new():
    data = RetrainData("churn", opts_in=True, latest_version="v2", versions=("v2", "v1"), feedback_in={"v2": FOLDED})
    known = [("churn-v3", RetrainInputs(dataset="churn", dataset_version="v2", spec_hash=SPEC_HASH))]
    plan = plan_with({**BREACH, "feedbackExport": export(1200, SHA)},
                     ctx=context(retrain_data=data, model_inputs=known, production_feedback=FOLDED))
    assert training_runs(plan) == [] and plan.status["lastRetrainDecision"]["reason"] == "NothingNewToLearn"


def test_a_dataset_that_does_not_opt_in_is_trained_on_as_it_is_and_the_policy_says_so():
    plan = plan_with({**BREACH, "feedbackExport": export(1200, SHA)})
    assert training_runs(plan)[0]["spec"]["datasetRef"] == {"name": "churn"}
    folded = condition(plan, "FeedbackFolded")
    assert (folded.status, folded.reason) == ("False", "DatasetNotOptedIn")
    assert "{monitorPolicy: churn-monitor}" in folded.message
    assert "feedback" not in plan.status


def test_feedback_never_ingested_retrains_on_the_latest_data_with_a_warning():
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB}, jobs=[job(JOB)],
                     now=NOW + FEEDBACK_WAIT + timedelta(minutes=1), ctx=context(retrain_data=OPTED_IN))
    assert training_runs(plan)[0]["spec"]["datasetRef"] == {"name": "churn"}
    assert "FeedbackDataNotIngested" in {e.reason for e in plan.events if e.type == "Warning"}


def test_feedback_the_dataset_refused_retrains_at_once_on_the_latest_data_saying_why():
    data = RetrainData("churn", opts_in=True, latest_version="v1", versions=("v1",),
                       ingest_failure="rule minRows failed: 40 < 1000")
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB}, jobs=[job(JOB)], now=NOW + timedelta(minutes=1),
                     ctx=context(retrain_data=data))
    assert training_runs(plan)[0]["spec"]["datasetRef"] == {"name": "churn"}
    warning = next(e for e in plan.events if e.reason == "FeedbackDataNotIngested")
    assert "did not take the feedback: rule minRows failed" in warning.message


def test_a_pending_retrain_is_not_doubled_by_its_own_new_dataset_version_or_a_new_breach():
    plan = plan_with(BREACH, status={"pendingRetrain": PENDING}, triggers={"onNewData": {}},
                     ctx=context(retrain_data=OPTED_IN, latest_dataset=DatasetVersionInfo("v2", 2000)))
    assert training_runs(plan) == []
    assert "retrains" not in plan.status


# --- outcomes of past retrains ----------------------------------------------------------------------

RUN = "churn-monitor-retrain-abc"


@pytest.mark.parametrize("run, verdicts, served, outcome", [
    pytest.param(RetrainRun(RUN, "Running"), [], "churn-v3", "Pending", id="a run still training is pending"),
    pytest.param(RetrainRun(RUN, "Failed", message="no model fits"), [], "churn-v3", "Failed", id="a failed run"),
    pytest.param(RetrainRun(RUN, "Succeeded", identical_to="churn-v3"), [], "churn-v3", "Lost",
                 id="an artifact identical to a registered one lost"),
    pytest.param(RetrainRun(RUN, "Succeeded", model_version="churn-v4"), [], "churn-v3", "Pending",
                 id="a candidate awaiting its verdict is pending"),
    pytest.param(RetrainRun(RUN, "Succeeded", model_version="churn-v4"),
                 [{"candidate": "churn-v4", "allowed": True, "reason": "ChallengerBeatsChampion", "message": "better"}],
                 "churn-v3", "Won", id="a candidate that beat production won"),
    pytest.param(RetrainRun(RUN, "Succeeded", model_version="churn-v4"),
                 [{"candidate": "churn-v4", "allowed": False, "reason": "ChallengerNotBetter", "message": "worse"}],
                 "churn-v3", "Lost", id="a candidate that did not lost"),
])
def test_each_retrain_is_followed_to_its_outcome(run, verdicts, served, outcome):
    record = {"time": stamp(NOW - timedelta(minutes=30)), "trigger": "breach", "trainingRun": RUN,
              "outcome": "Pending", "inputs": V1_INPUTS}
    from dataclasses import replace

    plan = plan_with(status={"retrains": [record], "verdicts": verdicts, "lastJob": JOB}, jobs=[job(JOB)],
                     ctx=context(retrain_runs={RUN: run}, production=replace(PRODUCTION, model_version=served)))
    records = plan.status.get("retrains", [record])
    assert records[0]["outcome"] == outcome
    if outcome != "Pending":
        assert f"Retrain{outcome}" in {e.reason for e in plan.events}


def test_the_promotion_of_a_winning_candidate_records_the_time_from_the_breach():
    from dataclasses import replace

    record = {"time": "2026-11-23T11:00:00Z", "trigger": "breach", "trainingRun": RUN, "outcome": "Won",
              "modelVersion": "churn-v4", "breachedAt": "2026-11-23T10:30:00Z", "inputs": V1_INPUTS}
    plan = plan_with(status={"retrains": [record], "lastJob": JOB}, jobs=[job(JOB)],
                     ctx=context(retrain_runs={RUN: RetrainRun(RUN, "Succeeded", model_version="churn-v4")},
                                 production=replace(PRODUCTION, model_version="churn-v4")))
    [promoted] = plan.status["retrains"]
    assert promoted["promotedAt"] == "2026-11-23T12:02:30Z"
    assert promoted["breachToPromotionSeconds"] == 5550.0


def test_a_recorded_retrain_whose_training_run_was_deleted_fails_and_frees_the_next_one():
    record = {"time": stamp(NOW - timedelta(minutes=30)), "trigger": "breach", "trainingRun": RUN, "outcome": "Pending",
              "inputs": {**V1_INPUTS, "datasetVersion": "v0"}}
    plan = plan_with(BREACH, status={"retrains": [record]})
    assert plan.status["retrains"][0]["outcome"] == "Failed"
    assert len(training_runs(plan)) == 1


# --- the comparison hold-out: the newest labelled predictions kept out of a retrain's feedback ----


@pytest.mark.parametrize("retrain, performance, rows", [
    pytest.param({}, {"metric": "f1", "threshold": 0.55, "minLabelled": 120}, 120,
                 id="by default what the comparison needs to judge"),
    pytest.param({}, None, 50, id="without performance the default of minLabelled"),
    pytest.param({"comparisonHoldout": {"rows": 300}}, {"metric": "f1", "threshold": 0.55}, 300,
                 id="the declared row count"),
    pytest.param({"comparisonHoldout": {"rows": 0}}, {"metric": "f1", "threshold": 0.55}, 0,
                 id="zero holds none back"),
    pytest.param({"includeFeedback": False}, {"metric": "f1", "threshold": 0.55}, 0,
                 id="a retrain that does not train on feedback holds none back"),
])
def test_how_many_labelled_predictions_a_retrains_feedback_holds_out(retrain, performance, rows):
    from kadence.api.monitorpolicy import MonitorPolicySpec
    from kadence.planners.monitorpolicy.evaluation import comparison_holdout_rows

    spec = policy()["spec"] | {"performance": performance}
    spec["actions"] = {"retrain": spec["actions"]["retrain"] | retrain}
    assert comparison_holdout_rows(MonitorPolicySpec.model_validate({k: v for k, v in spec.items() if v})) == rows


def test_a_hold_out_larger_than_the_quality_window_is_refused_naming_the_field():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"comparisonHoldout.rows \(500\) exceeds performance.window"):
        plan_with(jobs=[], performance={"metric": "f1", "threshold": 0.55, "window": {"labelledPredictions": 200}},
                  actions={"retrain": {"template": TRAINING, "comparisonHoldout": {"rows": 500}}})


def test_every_evaluation_asks_for_the_export_less_the_hold_out_and_publishes_how_many_it_held_out():
    import json

    plan = plan_with(status={"lastJob": PREVIOUS}, jobs=[job(PREVIOUS)], now=NOW + timedelta(minutes=5),
                     actions={"retrain": {"template": TRAINING, "comparisonHoldout": {"rows": 80, "maxFraction": 0.3}}})
    task = json.loads(next(c for c in plan.children if c["kind"] == "ConfigMap")["data"]["task.json"])
    assert (task["feedbackExport"]["holdOut"], task["feedbackExport"]["holdOutMaxFraction"]) == (80, 0.3)
    plan = plan_with({"feedbackExport": export(1200, SHA) | {"heldOut": 80}})
    assert plan.status["lastEvaluation"]["feedback"] == EXPORTED | {"heldOut": 80}


@pytest.mark.parametrize("published, held_out", [
    pytest.param(EXPORTED | {"heldOut": 100}, 100, id="the published export it trains on held 100 out"),
    pytest.param(EXPORTED | {"heldOut": 100, "sha256": "a" * 64}, None,
                 id="another export's hold-out is not this retrain's"),
    pytest.param(EXPORTED, None, id="an export that held none out records none"),
])
def test_the_retrain_record_says_how_many_newer_labelled_predictions_its_feedback_held_out(published, held_out):
    data = RetrainData("churn", opts_in=True, latest_version="v2", versions=("v2", "v1"), feedback_in={"v2": FOLDED})
    plan = plan_with(status={"pendingRetrain": PENDING, "lastJob": JOB, "feedback": published}, jobs=[job(JOB)],
                     now=NOW + timedelta(minutes=2), ctx=context(retrain_data=data))
    [record] = plan.status["retrains"]
    assert record["inputs"].get("comparisonHoldout") == held_out
    assert record["inputs"]["feedbackTo"] == "2026-11-23T11:00:00Z"  # the hold-out is newer than what it trains on


# --- champion/challenger ------------------------------------------------------------------------


def test_a_candidate_gets_one_comparison_job_on_the_labels_its_training_did_not_see():
    import json

    status = {"lastJob": JOB, "retrains": [{"time": "2026-11-23T11:00:00Z", "trigger": "breach", "outcome": "Pending",
                                            "trainingRun": CANDIDATE.training_run,
                                            "inputs": {**V1_INPUTS, "feedbackTo": "2026-11-23T10:00:00Z",
                                                       "comparisonHoldout": 100}}]}
    plan = plan_with(status=status, jobs=[job(JOB)], ctx=context(candidate=CANDIDATE))
    assert kinds(plan) == [("ConfigMap", "churn-monitor-compare-churn-v4"), ("Job", "churn-monitor-compare-churn-v4")]
    task = json.loads(plan.children[0]["data"]["task.json"])
    assert task["compare"]["challenger"]["version"] == "4" and task["compare"]["champion"]["version"] == "3"
    assert task["compare"]["unseenAfter"] == "2026-11-23T10:00:00Z" and task["compare"]["heldOut"] == 100
    # keyed by the policy's uid: a re-created policy never reads its predecessor's verdict
    assert task["resultKey"] == ("monitoring/ns/churn-monitor/comparisons/uid-1/churn-monitor-compare-churn-v4/"
                                 "result.json")
    running = plan_with(status=status, jobs=[job(JOB), job("churn-monitor-compare-churn-v4", "Running")],
                        ctx=context(candidate=CANDIDATE))
    assert running.children == []


COMPARED = "churn-monitor-compare-churn-v4"


def comparison(allowed: bool, reason: str) -> dict:
    return {"metric": "f1", "labelled": 200, "championVersion": "3", "challengerVersion": "4", "champion": 0.5,
            "challenger": 0.9 if allowed else 0.45, "reason": reason,
            "message": "candidate f1=… vs Production 0.5 on 200 labelled predictions", "allowed": allowed}


@pytest.mark.parametrize("allowed, reason, event_type", [
    (True, "ChallengerBeatsChampion", "Normal"),
    (False, "ChallengerNotBetter", "Warning"),
])
def test_the_comparison_result_is_the_typed_verdict_the_inference_service_reads(allowed, reason, event_type):
    older = {"candidate": "churn-v2", "allowed": False, "reason": "ChallengerNotBetter", "time": "2026-11-01T00:00:00Z",
             "metric": "f1", "message": "old"}
    stale = {"candidate": "churn-v4", "allowed": not allowed, "reason": "Stale", "time": "2026-11-02T00:00:00Z",
             "metric": "f1", "message": "stale"}
    plan = plan_monitorpolicy(policy({"lastJob": JOB, "verdicts": [older, stale]}),
                              MonitorObservation([job(JOB), job(COMPARED)],
                                                 {COMPARED: result(comparison=comparison(allowed, reason)
                                                                   | {"heldOut": 100})}),
                              context(candidate=CANDIDATE), NOW)
    verdict = plan.status["lastComparison"]
    assert (verdict["allowed"], verdict["reason"], verdict["candidate"]) == (allowed, reason, "churn-v4")
    assert verdict["heldOut"] == 100
    assert verdict["champion"] == "churn-v3"
    assert plan.status["verdicts"] == [older, verdict], "one verdict per candidate, newest last"
    assert condition(plan, "CandidateApproved").status == ("True" if allowed else "False")
    assert plan.events[-1].type == event_type
    assert "lastEvaluation" not in plan.status  # a comparison is not an evaluation


@pytest.mark.parametrize("promotion, rollout", [
    pytest.param(None, "Canary", id="by default an approved candidate goes on as a canary"),
    pytest.param({"mode": "Auto", "targetStage": "Production", "margin": 0.02}, "Canary", id="auto promotion canaries"),
    pytest.param({"mode": "Manual", "targetStage": "Production"}, "Manual", id="manual promotion waits for a person"),
])
def test_an_allowed_verdict_says_what_follows(promotion, rollout):
    import json

    retrain_spec = {"template": TRAINING, **({"promotion": promotion} if promotion else {})}
    body = policy({"lastJob": JOB}, actions={"retrain": retrain_spec})
    plan = plan_monitorpolicy(body, MonitorObservation([job(JOB), job(COMPARED)],
                                                       {COMPARED: result(comparison=comparison(True, "ChallengerBeatsChampion"))}),
                              context(candidate=CANDIDATE), NOW)
    assert plan.status["verdicts"][-1]["rollout"] == rollout
    fresh = plan_monitorpolicy(policy({"lastJob": JOB}, actions={"retrain": retrain_spec}),
                               MonitorObservation([job(JOB)], {}), context(candidate=CANDIDATE), NOW)
    task = json.loads(fresh.children[0]["data"]["task.json"])
    assert task["compare"]["margin"] == (promotion or {}).get("margin", 0.0)


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
    assert task["feedbackExport"]["target"] == "churned"


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


def test_a_breach_with_a_webhook_plans_one_alert_job_and_silences_the_event_when_asked():
    actions = {"retrain": {"enabled": False}, "alert": {"event": False, "webhook": {"url": "https://hooks.example/k"}}}
    plan = plan_with(BREACH, actions=actions, ctx=context(retrain_spec=None))
    alerts = [name for kind, name in kinds(plan) if kind == "Job" and "-alert-" in name]
    assert len(alerts) == 1 and plan.status["alerting"]["state"] == "firing"
    assert plan.status["alerting"]["job"] == alerts[0]
    assert not any(e.type == "Warning" and e.reason == "QualityBelowThreshold" for e in plan.events)
    again = plan_with(BREACH, actions=actions, ctx=context(retrain_spec=None), status={"alerting": plan.status["alerting"]})
    assert [name for kind, name in kinds(again) if "-alert-" in name] == []


# --- a verdict that could not judge yet is asked again as labels arrive -----------------------------

NOT_YET = {"candidate": "churn-v4", "allowed": False, "reason": "TooFewLabelsToCompare", "metric": "f1",
           "message": "no labelled predictions made after 2026-11-23T10:00:00Z in the quality window yet",
           "time": "2026-11-23T11:58:00Z", "job": COMPARED}
PENDING_RETRAIN = {"time": "2026-11-23T11:00:00Z", "trigger": "breach", "outcome": "Pending",
                   "trainingRun": CANDIDATE.training_run, "modelVersion": "churn-v4",
                   "inputs": {**V1_INPUTS, "feedbackTo": "2026-11-23T10:00:00Z"}}


def test_a_comparison_that_could_not_judge_runs_again_at_the_next_slot_replacing_the_last_attempt():
    status = {"lastJob": JOB, "verdicts": [NOT_YET], "lastComparison": NOT_YET, "retrains": [PENDING_RETRAIN]}
    run = RetrainRun(CANDIDATE.training_run, "Succeeded", model_version="churn-v4")
    plan = plan_with(status=status, jobs=[job(JOB), job(COMPARED)],
                     ctx=context(candidate=CANDIDATE, retrain_runs={CANDIDATE.training_run: run}))
    again = f"{COMPARED}-{SLOT}"
    assert kinds(plan) == [("ConfigMap", again), ("Job", again)]
    assert {(d.kind, d.name) for d in plan.delete} == {("Job", COMPARED), ("ConfigMap", COMPARED)}
    assert "retrains" not in plan.status or plan.status["retrains"][0]["outcome"] == "Pending"
    assert results_to_fetch(policy(status), [job(COMPARED)]) == {}, "a verdict in status is not read again"


def test_a_candidate_never_judged_within_label_wait_lost_and_is_not_compared_again():
    status = {"lastJob": JOB, "verdicts": [NOT_YET], "retrains": [PENDING_RETRAIN]}
    run = RetrainRun(CANDIDATE.training_run, "Succeeded", model_version="churn-v4")
    ctx = context(candidate=CANDIDATE, retrain_runs={CANDIDATE.training_run: run})
    plan = plan_with(status=status, jobs=[job(JOB), job(COMPARED)], ctx=ctx, now=NOW + timedelta(hours=24))
    [record] = plan.status["retrains"]
    assert record["outcome"] == "Lost" and "could not be judged within labelWait 24h" in record["outcomeMessage"]
    later = plan_with(status={**status, "retrains": plan.status["retrains"]}, jobs=[job(JOB), job(COMPARED)], ctx=ctx,
                      now=NOW + timedelta(hours=24, minutes=5))
    assert [c for c in later.children if "-compare-" in c["metadata"]["name"]] == []


def test_a_hold_that_goes_on_is_said_once_while_the_breach_lasts():
    status = {"retrains": [retrain(1, "Won")]}
    first = plan_with(BREACH, status=status)
    assert [e.reason for e in first.events if e.reason == "CooldownActive"] == ["CooldownActive"]
    again = plan_with(BREACH, status={**status, "lastRetrainDecision": first.status["lastRetrainDecision"]},
                      now=NOW + timedelta(minutes=5))
    assert again.status["lastRetrainDecision"]["reason"] == "CooldownActive"
    assert "CooldownActive" not in {e.reason for e in again.events}


def test_a_policy_evaluated_before_ready_was_derived_stays_ready_after_an_upgrade():
    last = {"time": "2026-11-23T11:55:00Z", "samples": 500, "labelledSamples": 200, "breached": False,
            "reason": "Healthy", "job": PREVIOUS}
    plan = plan_with(None, status={"lastEvaluation": last, "lastJob": PREVIOUS,
                                   "conditions": [{"type": "Ready", "status": "True", "reason": "Monitoring"}]},
                     jobs=[])
    assert (condition(plan, "Ready").status, condition(plan, "Ready").reason) == ("True", "Monitoring")


# --- two attempts at one comparison finished: only the latest is ever read ----------------------


def comparison_attempt(name: str, slot: int | None, candidate: str = "churn-v4") -> dict:
    attempt = job(name)
    attempt["metadata"]["annotations"][CANDIDATE_ANNOTATION] = candidate
    if slot is not None:
        attempt["metadata"]["annotations"][SLOT_ANNOTATION] = str(slot)
    return attempt


def test_of_two_finished_attempts_at_a_comparison_only_the_latest_is_read_whatever_the_verdict_says():
    earlier, later = f"{COMPARED}-{SLOT - 1}", f"{COMPARED}-{SLOT}"
    jobs = [comparison_attempt(earlier, SLOT - 1), comparison_attempt(later, SLOT)]
    fetched = lambda verdict_job: set(results_to_fetch(policy({"verdicts": [{**NOT_YET, "job": verdict_job}]}), jobs))
    # The verdict holds the earlier attempt: the later one is read. Once the later one is the
    # verdict, the earlier is not read again (it used to be, and the verdict flipped at every
    # reconcile, starting and removing the canary each time).
    assert fetched(earlier) == {later}
    assert fetched(later) == set()


def test_comparisons_made_before_attempts_carried_their_slot_are_ordered_by_name():
    jobs = [comparison_attempt(COMPARED, None), comparison_attempt(f"{COMPARED}-{SLOT}", None)]
    assert set(results_to_fetch(policy({"verdicts": [{**NOT_YET, "job": f"{COMPARED}-{SLOT}"}]}), jobs)) == set()


def test_each_candidate_keeps_its_own_latest_comparison():
    jobs = [comparison_attempt("p-compare-churn-v4", 1), comparison_attempt("p-compare-churn-v5", 1, "churn-v5")]
    assert set(results_to_fetch(policy({}), jobs)) == {"p-compare-churn-v4", "p-compare-churn-v5"}


def test_a_superseded_comparison_attempt_is_deleted_and_the_latest_kept_as_the_verdicts_record():
    earlier, later = f"{COMPARED}-{SLOT - 1}", f"{COMPARED}-{SLOT}"
    verdict = {**NOT_YET, "reason": "ChallengerBeatsChampion", "allowed": True, "job": later}
    plan = plan_with(status={"lastJob": JOB, "verdicts": [verdict], "lastComparison": verdict},
                     jobs=[job(JOB), comparison_attempt(earlier, SLOT - 1), comparison_attempt(later, SLOT)])
    deleted = {ref.name for ref in plan.delete if ref.kind == "Job"}
    assert earlier in deleted and later not in deleted
