"""The TrainingRun and ModelVersion planners, pure: observed state in, Plan out."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest

from kadence.builders.training import RUN_LABEL, train_job_name
from kadence.domain import registry
from kadence.domain.training.versions import VersionTaken, allocate
from kadence.planners.modelversion import ModelVersionObservation, needs_verification, plan_modelversion
from kadence.planners.trainingrun import (
    TrainingRunObservation,
    failure_cause,
    plan_trainingrun,
)

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
ARTIFACT = b"the model"
SHA = hashlib.sha256(ARTIFACT).hexdigest()


def ready_of(plan, before=None):
    """The Ready condition realize derives from the plan's conditions over `before`."""
    return next(c for c in plan.condition_updates(before) if c.type == "Ready")


def status(plan):
    """The status fields the plan writes (wire names)."""
    return plan.status_patch()


def run_body(status=None, promotion=None, max_attempts=2, source="featureSetRef", name="churn-train"):
    spec = {source: {"name": "churn"}, "task": "classification", "objective": {"metric": "f1"},
            "search": {"maxTrials": 20}, "model": "churn", "maxAttempts": max_attempts}
    if promotion:
        spec["promotion"] = promotion
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": name, "namespace": "ml", "uid": "uid-1", "generation": 1},
            "spec": spec, "status": status or {}}


def featureset(versions=("f1",), ready_message=""):
    status = {"versions": [{"id": v, "uri": f"s3://kadence/features/ml/churn/{v}/", "datasetVersion": "d1",
                            "createdAt": "2026-01-01T00:00:00Z"} for v in versions]}
    if versions:
        status["latestVersion"] = versions[0]
    if ready_message:
        status["conditions"] = [{"type": "Ready", "status": "False", "reason": "X", "message": ready_message}]
    return {"metadata": {"name": "churn"}, "status": status}


def job(name, state="Running", reason=None, finished="2026-01-02T11:59:00Z"):
    status = {}
    if state == "Succeeded":
        status = {"succeeded": 1, "completionTime": finished,
                  "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": finished}]}
    elif state == "Failed":
        status = {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": reason or "BackoffLimitExceeded",
                                               "lastTransitionTime": finished}]}
    return {"metadata": {"name": name}, "status": status}


TRAINED_SHA = "ef" * 32  # the new model's artifact: not the registered versions' SHA


def result(attempt=1, f1=0.8, run="churn-train"):
    return {
        "namespace": "ml", "run": run, "attempt": attempt, "model": "churn", "task": "classification",
        "metric": "f1", "direction": "maximize",
        "best": {"number": 3, "family": "random_forest", "params": {"n_estimators": 100}, "cvScore": 0.79,
                 "foldScores": [0.78, 0.8]},
        "metrics": {"f1": f1, "accuracy": 0.9},
        "trials": {"done": 20, "total": 20, "pruned": 5, "failed": 0}, "stoppedBy": "budget",
        "artifact": {"uri": "s3://kadence/runs/ml/churn-train/artifacts/x/model.skops", "sha256": TRAINED_SHA},
        "signature": {"inputs": [{"name": "tenure", "type": "int"}], "classes": ["no", "yes"]},
        "lineage": {"trainingRun": run, "featureSet": "churn", "featureSetVersion": "f1", "dataset": "churn-raw",
                    "datasetVersion": "d1", "seed": 42},
        "files": {"trials": "s3://k/t", "metrics": "s3://k/m", "modelCard": "s3://k/c", "progress": "s3://k/p",
                  "spec": "s3://k/s"},
        "startedAt": "2026-01-02T11:00:00Z", "finishedAt": "2026-01-02T11:59:00Z", "durationSeconds": 3540.0,
    }


def model_version(name, version, stage=None, spec_stage=None, metrics=None, run="other-run", verified=True):
    status = {}
    if stage:
        status["stage"] = stage
    if verified:
        status.update({"verified": True, "verifiedSha256": SHA})
    return {"metadata": {"name": name, "namespace": "ml", "labels": {RUN_LABEL: run}, "annotations": {}},
            "spec": {"model": "churn", "version": version, "stage": spec_stage or stage or "Candidate",
                     "artifact": {"uri": "s3://kadence/a", "sha256": SHA}, "metrics": metrics or {"f1": 0.7},
                     "primaryMetric": "f1"},
            "status": status}


# ---- TrainingRun


def test_a_run_on_a_missing_featureset_waits_with_the_reason():
    plan = plan_trainingrun(run_body(), TrainingRunObservation(source=None), NOW)
    assert plan.phase == "Pending" and not plan.children
    (condition,) = plan.conditions
    assert (condition.status, condition.reason) == ("False", "FeatureSetNotFound")
    # no polling: the FeatureSet's creation wakes the run
    assert plan.requeue_after is None and plan.events[0].reason == "FeatureSetNotFound"


def test_a_run_on_an_unvalidated_dataset_waits_and_quotes_the_dataset():
    body = run_body(source="datasetRef")
    plan = plan_trainingrun(body, TrainingRunObservation(source=featureset(versions=(), ready_message="minRows failed")),
                            NOW)
    assert plan.phase == "Pending"
    assert plan.conditions[0].reason == "DatasetNotReady"
    assert "no validated version yet: minRows failed" in plan.conditions[0].message


def test_waiting_again_for_the_same_reason_posts_no_second_event():
    first = plan_trainingrun(run_body(), TrainingRunObservation(source=None), NOW)
    c = first.conditions[0]
    body = run_body(status={"conditions": [{"type": "InputReady", "status": "False", "reason": c.reason,
                                            "message": c.message}]})
    assert plan_trainingrun(body, TrainingRunObservation(source=None), NOW).events == []


def test_a_pinned_version_that_is_not_validated_waits_and_lists_the_validated_ones():
    body = run_body()
    body["spec"]["featureSetRef"]["version"] = "f9"
    plan = plan_trainingrun(body, TrainingRunObservation(source=featureset(versions=("f1", "f2"))), NOW)
    assert plan.conditions[0].reason == "FeatureSetVersionNotFound" and "f1, f2" in plan.conditions[0].message


def test_the_first_reconcile_creates_the_attempt_1_job_with_its_task():
    plan = plan_trainingrun(run_body(), TrainingRunObservation(source=featureset()), NOW)
    configmap, job_body = plan.children
    assert job_body["metadata"]["name"] == "churn-train-train-1" == configmap["metadata"]["name"]
    assert job_body["spec"]["template"]["spec"]["containers"][0]["command"] == ["kadence", "train"]
    task = json.loads(configmap["data"]["task.json"])
    assert task["input"] == {"kind": "FeatureSet", "name": "churn", "version": "f1",
                             "uri": "s3://kadence/features/ml/churn/f1/"}
    assert task["attempt"] == 1 and task["run"] == "churn-train"
    assert status(plan)["attempt"] == 1 and status(plan)["progress"] == "0/20"
    assert plan.phase == "Running"


def test_a_restarted_operator_plans_the_same_job_again_never_a_second_one():
    first = plan_trainingrun(run_body(), TrainingRunObservation(source=featureset()), NOW)
    again = plan_trainingrun(run_body(status=status(first)), TrainingRunObservation(source=featureset()), NOW)
    assert [c["metadata"]["name"] for c in again.children] == [c["metadata"]["name"] for c in first.children]
    running = plan_trainingrun(run_body(status=status(first)),
                               TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1")]), NOW)
    assert running.children == [] and running.delete == []


def test_job_names_are_deterministic_and_fit_a_kubernetes_name():
    assert train_job_name("churn", 2) == "churn-train-2"
    long = train_job_name("r" * 80, 1)
    assert len(long) <= 63 and long == train_job_name("r" * 80, 1)


def test_a_running_job_shows_progress_from_progress_json():
    progress = {"done": 7, "total": 20, "pruned": 2, "failed": 0, "timedOut": 1, "bestScore": 0.81, "bestFamily": "knn",
                "phase": "Searching", "updatedAt": "2026-01-02T11:59:00Z"}
    plan = plan_trainingrun(run_body(status={"attempt": 1}),
                            TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1")],
                                                   progress=progress), NOW)
    assert status(plan)["progress"] == "7/20" and status(plan)["bestScore"] == 0.81
    assert status(plan)["trials"] == {"done": 7, "total": 20, "pruned": 2, "failed": 0, "timedOut": 1}
    assert "7/20 trials, best knn 0.81" in ready_of(plan).message


def test_a_result_asks_for_registration_with_the_promotion_decision():
    body = run_body(status={"attempt": 1}, promotion={"mode": "Auto", "targetStage": "Production"})
    current = model_version("churn-v1", 1, stage="Production", metrics={"f1": 0.7})
    plan = plan_trainingrun(body, TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1", "Succeeded")],
                                                         result=result(f1=0.8), model_versions=[current]), NOW)
    registration = plan.registration
    assert plan.phase == "Registering" and registration.existing_versions == (1,)
    mv = registration.body("churn-v2", 2)
    assert mv["metadata"]["name"] == "churn-v2" and mv["spec"]["version"] == 2
    assert mv["spec"]["stage"] == "Production"
    assert mv["metadata"]["labels"][RUN_LABEL] == "churn-train"
    assert "ownerReferences" not in mv["metadata"]  # deleting the run never deletes the model
    assert "BeatsProduction" in mv["metadata"]["annotations"]["kadence.dev/reason"]
    assert mv["spec"]["lineage"]["datasetVersion"] == "d1" and mv["spec"]["params"]["family"] == "random_forest"


def test_a_worse_model_is_registered_as_candidate_under_auto_promotion():
    body = run_body(status={"attempt": 1}, promotion={"mode": "Auto"})
    current = model_version("churn-v1", 1, stage="Production", metrics={"f1": 0.9})
    plan = plan_trainingrun(body, TrainingRunObservation(result=result(f1=0.8), model_versions=[current]), NOW)
    assert plan.registration.spec["stage"] == "Candidate"


def test_the_registration_goes_through_race_free_allocation():
    plan = plan_trainingrun(run_body(status={"attempt": 1}),
                            TrainingRunObservation(result=result(), model_versions=[model_version("churn-v1", 1)]), NOW)
    created = {"churn-v2": "someone-else"}

    def create(name, version):
        if name in created:
            raise VersionTaken(name, created[name])
        created[name] = plan.registration.body(name, version)

    allocation = allocate("churn", plan.registration.existing_versions, create, owner="churn-train")
    assert allocation.name == "churn-v3"


def test_once_the_model_version_exists_the_run_succeeds_and_names_it():
    registered = model_version("churn-v2", 2, run="churn-train")
    plan = plan_trainingrun(run_body(status={"attempt": 1}),
                            TrainingRunObservation(jobs=[job("churn-train-train-1", "Succeeded")], result=result(),
                                                   model_versions=[registered]), NOW)
    assert plan.phase == "Succeeded" and plan.registration is None
    assert status(plan)["modelVersion"] == "churn-v2" and status(plan)["completionTime"] == "2026-01-02T11:59:00Z"
    assert ready_of(plan).status == "True" and plan.events[0].reason == "ModelRegistered"


def test_a_result_of_an_earlier_attempt_is_not_taken_for_the_current_one():
    plan = plan_trainingrun(run_body(status={"attempt": 2}),
                            TrainingRunObservation(source=featureset(), result=result(attempt=1)), NOW)
    assert plan.registration is None and plan.children[1]["metadata"]["name"] == "churn-train-train-2"


def test_a_lost_operator_state_still_finds_the_result_in_storage():
    # status was never written (operator restarted), the Job is gone (TTL), the result is in S3
    plan = plan_trainingrun(run_body(), TrainingRunObservation(source=featureset(), result=result()), NOW)
    assert plan.registration is not None and not plan.children


def test_a_failed_attempt_is_retried_with_the_next_attempt():
    plan = plan_trainingrun(run_body(status={"attempt": 1}),
                            TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1", "Failed")],
                                                   log_tail="Traceback ...\nMemoryError"), NOW)
    assert status(plan)["attempt"] == 2 and plan.phase == "Running"
    assert ready_of(plan).reason == "Retrying" and "MemoryError" in ready_of(plan).message
    nxt = plan_trainingrun(run_body(status=status(plan)),
                           TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1", "Failed")]), NOW)
    assert nxt.children[1]["metadata"]["name"] == "churn-train-train-2"
    assert {(d.kind, d.name) for d in nxt.delete} == {("Job", "churn-train-train-1"), ("ConfigMap", "churn-train-train-1")}


def test_the_last_attempt_failing_fails_the_run_with_the_cause_from_the_log():
    log = "trial 1/20 ...\nkadence train: failed: the target column 'churned' has 3 missing values\n"
    plan = plan_trainingrun(run_body(status={"attempt": 2}),
                            TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-2", "Failed")],
                                                   log_tail=log), NOW)
    assert plan.phase == "Failed"
    assert ready_of(plan).reason == "TrainingFailed"
    assert ready_of(plan).message == "the target column 'churned' has 3 missing values"


def test_a_failure_retrying_cannot_help_fails_at_once():
    plan = plan_trainingrun(run_body(status={"attempt": 1}, max_attempts=3),
                            TrainingRunObservation(source=featureset(),
                                                   jobs=[job("churn-train-train-1", "Failed", reason="PodFailurePolicy")],
                                                   log_tail="kadence train: failed: no model family fits"), NOW)
    assert plan.phase == "Failed" and ready_of(plan).message == "no model family fits"


def test_a_job_that_succeeded_without_a_result_for_long_counts_as_failed():
    plan = plan_trainingrun(run_body(status={"attempt": 2}),
                            TrainingRunObservation(source=featureset(),
                                                   jobs=[job("churn-train-train-2", "Succeeded",
                                                             finished="2026-01-02T11:00:00Z")]), NOW)
    assert plan.phase == "Failed" and "wrote no result.json" in ready_of(plan).message


def test_a_finished_run_is_left_alone():
    plan = plan_trainingrun(run_body(status={"phase": "Succeeded"}), TrainingRunObservation(), NOW)
    assert plan.phase == "Succeeded" and not plan.children and not plan.conditions


@pytest.mark.parametrize("log, cause", [
    ("a\nb\nkadence train: failed: bad data\n", "bad data"),
    ("one\ntwo\nthree\nfour\n", "two | three | four"),
    ("", "fallback"),
])
def test_the_failure_cause_prefers_the_workload_s_own_line(log, cause):
    assert failure_cause(log, "fallback") == cause


# ---- ModelVersion


def mv_body(stage="Candidate", status=None, annotations=None, version=2):
    body = model_version(f"churn-v{version}", version, spec_stage=stage, verified=False)
    body["status"] = status or {}
    body["metadata"]["annotations"] = annotations or {}
    return body


def test_a_new_version_is_verified_before_it_is_ready():
    plan = plan_modelversion(mv_body(), ModelVersionObservation(artifact=ARTIFACT), NOW)
    assert status(plan)["verified"] is True and status(plan)["verifiedSha256"] == SHA
    assert status(plan)["stage"] == "Candidate" and plan.phase == "Candidate"
    ready = ready_of(plan)
    assert ready.status == "True" and "f1=0.7" in ready.message
    assert status(plan)["metricSummary"] == "f1=0.7"


def test_a_corrupt_artifact_never_becomes_ready():
    plan = plan_modelversion(mv_body(stage="Production"), ModelVersionObservation(artifact=ARTIFACT + b"x"), NOW)
    ready = ready_of(plan)
    assert (ready.status, ready.reason) == ("False", "ArtifactChecksumMismatch")
    assert status(plan)["verified"] is False and status(plan).get("stage") == "Candidate"
    assert plan.events[0].type == "Warning" and plan.phase == "Invalid"


def test_a_missing_artifact_waits():
    plan = plan_modelversion(mv_body(), ModelVersionObservation(artifact_missing=True), NOW)
    assert ready_of(plan).reason == "ArtifactNotFound" and plan.requeue_after


def test_a_verified_artifact_is_not_downloaded_again():
    body = mv_body(status={"verified": True, "verifiedSha256": SHA, "stage": "Candidate"})
    assert not needs_verification(body)
    assert needs_verification(mv_body())


def test_promotion_archives_the_current_production_first_and_waits():
    body = mv_body(stage="Production", status={"verified": True, "verifiedSha256": SHA, "stage": "Staging"},
                   annotations={"kadence.dev/changed-by": "alice", "kadence.dev/reason": "beats v1"})
    current = model_version("churn-v1", 1, stage="Production")
    plan = plan_modelversion(body, ModelVersionObservation(siblings=[current, body]), NOW)
    (patch,) = plan.sibling_patches
    assert patch.name == "churn-v1" and "spec" not in patch.patch  # the spec belongs to its owner (Git)
    request = json.loads(patch.patch["metadata"]["annotations"]["kadence.dev/stage-request"])
    assert request == {"stage": "Archived", "generation": current["metadata"].get("generation", 0)}
    assert "replaced in Production by churn-v2: beats v1" in patch.patch["metadata"]["annotations"]["kadence.dev/reason"]
    assert status(plan).get("stage") is None  # not Production before v1 left it
    assert plan.phase == "Staging" and plan.requeue_after


def test_promotion_takes_production_once_no_sibling_holds_it_and_records_who_and_why():
    body = mv_body(stage="Production", status={"verified": True, "verifiedSha256": SHA, "stage": "Staging",
                                               "history": [{"stage": "Staging", "at": "t0", "by": "bob", "reason": ""}]},
                   annotations={"kadence.dev/changed-by": "alice", "kadence.dev/reason": "beats v1"})
    archived = model_version("churn-v1", 1, stage="Archived")
    plan = plan_modelversion(body, ModelVersionObservation(siblings=[archived]), NOW)
    assert status(plan)["stage"] == "Production" and plan.phase == "Production"
    assert status(plan)["history"][-1] == {"stage": "Production", "previous": "Staging", "at": "2026-01-02T12:00:00Z",
                                          "by": "alice", "reason": "beats v1"}
    assert len(status(plan)["history"]) == 2
    assert plan.events[-1].reason == "StageProduction" and "by alice: beats v1" in plan.events[-1].message


def test_of_two_versions_promoted_at_once_the_higher_wins():
    lower = mv_body(stage="Production", status={"verified": True, "verifiedSha256": SHA, "stage": "Candidate"},
                    version=2)
    higher = model_version("churn-v3", 3, stage="Candidate", spec_stage="Production")
    waits = plan_modelversion(lower, ModelVersionObservation(siblings=[higher]), NOW)
    assert waits.sibling_patches == [] and status(waits).get("stage") is None
    assert any(c.reason == "Contended" for c in waits.conditions)
    higher["status"]["verifiedSha256"] = SHA
    wins = plan_modelversion(higher, ModelVersionObservation(siblings=[lower]), NOW)
    assert [p.name for p in wins.sibling_patches] == ["churn-v2"]


@pytest.mark.parametrize("spec_stage, request_generation, generation, expected", [
    pytest.param("Production", 3, 3, "Archived", id="the operator's request holds while the spec is unchanged"),
    pytest.param("Staging", 3, 4, "Staging", id="an edit of the spec after the request wins"),
    pytest.param("Candidate", None, 1, "Candidate", id="without a request the spec says"),
])
def test_the_requested_stage_is_the_operators_request_until_the_spec_changes(spec_stage, request_generation,
                                                                               generation, expected):
    annotations = ({"kadence.dev/stage-request": json.dumps({"stage": "Archived", "generation": request_generation})}
                   if request_generation is not None else {})
    body = mv_body(stage=spec_stage, annotations=annotations)
    body["metadata"]["generation"] = generation
    assert registry.requested_stage(body) == expected


def test_an_operator_request_moves_the_stage_in_force_without_touching_the_spec():
    body = mv_body(stage="Candidate", status={"verified": True, "verifiedSha256": SHA, "stage": "Candidate"})
    body["metadata"]["generation"] = 2
    patch = registry.stage_request_patch(body, "Staging", "kadence-operator", "canary passed")
    assert "spec" not in patch
    body["metadata"]["annotations"] = {**(body["metadata"].get("annotations") or {}), **patch["metadata"]["annotations"]}
    plan = plan_modelversion(body, ModelVersionObservation(), NOW)
    assert status(plan)["stage"] == "Staging" and status(plan)["history"][-1]["by"] == "kadence-operator"


def test_a_forbidden_transition_is_refused_and_the_stage_stays():
    body = mv_body(stage="Candidate", status={"verified": True, "verifiedSha256": SHA, "stage": "Production"})
    plan = plan_modelversion(body, ModelVersionObservation(), NOW)
    refused = [c for c in plan.conditions if c.type == "StageChange"][0]
    assert (refused.status, refused.reason) == ("False", "InvalidTransition")
    assert "stage" not in status(plan) and plan.phase == "Production"


def test_a_registered_candidate_gets_a_history_entry():
    plan = plan_modelversion(mv_body(annotations={"kadence.dev/changed-by": "trainingrun/churn-train"}),
                             ModelVersionObservation(artifact=ARTIFACT), NOW)
    assert status(plan)["history"] == [{"stage": "Candidate", "at": "2026-01-02T12:00:00Z",
                                       "by": "trainingrun/churn-train", "reason": "registered"}]


def test_a_model_identical_to_a_registered_version_is_not_registered_twice():
    twin = model_version("churn-v1", 1, stage="Production")
    twin["spec"]["artifact"]["sha256"] = TRAINED_SHA
    plan = plan_trainingrun(run_body(), TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1",
                                                               "Succeeded")], result=result(), model_versions=[twin]),
                            NOW)
    assert plan.registration is None and plan.phase == "Succeeded"
    assert status(plan)["identicalTo"] == "churn-v1"
    assert (ready_of(plan).status, ready_of(plan).reason) == ("True", "IdenticalToExistingVersion")


@pytest.mark.parametrize("phase, ready, expected", [
    ("Succeeded", {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "churn-v2: ..."},
     ("True", "Succeeded")),
    ("Failed", {"type": "Ready", "status": "False", "reason": "TrainingFailed", "message": "no family fits"},
     ("False", "TrainingFailed")),
])
def test_a_run_finished_before_ready_was_derived_keeps_its_ready_after_an_upgrade(phase, ready, expected):
    old = {"phase": phase, "conditions": [ready]}
    plan = plan_trainingrun(run_body(status=old), TrainingRunObservation(), NOW)
    derived = ready_of(plan, old["conditions"])
    assert (derived.status, derived.reason) == expected and derived.message == ready["message"]
    restated = [{"type": c.type, "status": c.status, "reason": c.reason} for c in plan.conditions]
    again = plan_trainingrun(run_body(status={"phase": phase, "conditions": restated}), TrainingRunObservation(), NOW)
    assert again.conditions == []  # restated once
