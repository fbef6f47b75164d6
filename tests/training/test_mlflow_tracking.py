"""Issue 19.4: the training Job logs its search to MLflow; MLflow being down never fails training.

The workload tests log to an MLflow SQLite store (MLflow's own client, no server) and read the
runs back through `MlflowClient`; the sandbox test (tests/sandbox/test_mlflow_loop.py) does the
same against a real tracking server started by `kadence sandbox`."""

from __future__ import annotations

import numpy as np
import pytest

from kadence.api.conditions import ConditionUpdate
from kadence.tracking import mlflow_log
from kadence.tracking.model import MlflowTarget, TrackingOutcome, alias_for, owner_tags, tracked_condition, trial_metrics
from kadence.workloads.trainer import train

from .datagen import churn_frame
from .test_train_workload import churn_task, quiet

mlflow = pytest.importorskip("mlflow")


# ---- pure -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage, alias", [("Production", "champion"), ("Staging", "challenger"),
                                          ("Candidate", None), ("Archived", None), (None, None)])
def test_the_stage_in_force_maps_to_its_mlflow_alias(stage, alias):
    assert alias_for(stage) == alias


def test_a_run_that_was_not_to_be_logged_has_no_tracked_condition():
    assert tracked_condition(None) is None


def test_a_logged_run_is_tracked_with_its_run_id():
    condition = tracked_condition(TrackingOutcome(tracked=True, reason="Logged", run_id="abc", experiment_id="7"))
    assert (condition.type, condition.status, condition.reason) == ("Tracked", "True", "Logged")
    assert "abc" in condition.message and "7" in condition.message


def test_an_unreachable_server_is_tracked_false_with_the_cause_and_the_attempts():
    condition = tracked_condition(TrackingOutcome(tracked=False, reason="MlflowUnavailable", attempts=3,
                                                  message="ConnectionError: refused"))
    assert condition == ConditionUpdate("Tracked", "False", "MlflowUnavailable",
                                        "after 3 attempts: ConnectionError: refused")


def test_trial_metrics_are_the_mean_and_one_per_fold():
    assert trial_metrics([0.5, 0.75], 0.625, "f1") == {"cv_f1_fold0": 0.5, "cv_f1_fold1": 0.75, "cv_f1": 0.625}
    assert trial_metrics([0.5], None, "rmse") == {"cv_rmse_fold0": 0.5}


def test_owner_tags_name_the_kubernetes_object():
    assert owner_tags("ml", "TrainingRun", "r1", "u-1") == {
        "kadence.namespace": "ml", "kadence.kind": "TrainingRun", "kadence.name": "r1", "kadence.uid": "u-1"}


# ---- the workload -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tracked(store, tmp_path_factory):
    """One `kadence train` logged to an MLflow SQLite store."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    task = churn_task(store, "tracked", trials=4, families=("logistic_regression", "random_forest"))
    task = task.model_copy(update={"run_uid": "uid-tracked", "mlflow": MlflowTarget(tracking_uri=uri,
                                                                                     experiment="churn")})
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    # A SQLite store keeps a new experiment's artifacts under the working directory; a server does not.
    client.create_experiment("churn", artifact_location=(root / "artifacts").as_uri())
    return train(task, store, log=quiet), client


def test_the_run_is_an_mlflow_run_in_the_models_experiment_with_tags_naming_the_trainingrun(tracked):
    result, client = tracked
    assert result.tracking.tracked and result.tracking.reason == "Logged"
    run = client.get_run(result.tracking.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "churn"
    assert run.info.status == "FINISHED"
    assert {k: run.data.tags[k] for k in ("kadence.namespace", "kadence.kind", "kadence.name", "kadence.uid")} == {
        "kadence.namespace": "ml", "kadence.kind": "TrainingRun", "kadence.name": "tracked",
        "kadence.uid": "uid-tracked"}
    assert run.data.params["family"] == result.best.family  # a trial's family, or "ensemble"
    assert run.data.metrics["cv_f1"] == pytest.approx(result.best.cv_score)
    assert run.data.metrics[f"holdout_{result.metric}"] == pytest.approx(result.metrics[result.metric])
    assert result.lineage.mlflow_run_id == run.info.run_id


def test_every_trial_is_a_child_run_with_params_fold_metrics_duration_and_state(tracked):
    result, client = tracked
    parent = client.get_run(result.tracking.run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == result.trials.done == 4
    for child in children:
        assert child.data.params["family"] in ("logistic_regression", "random_forest")
        state = child.data.tags["kadence.trialState"]
        assert state in ("complete", "pruned", "failed", "timeout")
        assert child.data.tags["kadence.pruned"] == str(state == "pruned").lower()
        assert child.info.status == {"failed": "FAILED", "timeout": "KILLED"}.get(state, "FINISHED")
        assert child.data.metrics["duration_seconds"] >= 0
        folds = [v for k, v in child.data.metrics.items() if k.startswith("cv_f1_fold")]
        assert folds, child.data.metrics
        if state == "complete":
            assert child.data.metrics["cv_f1"] == pytest.approx(np.mean(folds))
    assert sorted(int(c.data.tags["kadence.trial"]) for c in children) == [0, 1, 2, 3]


def test_the_data_version_is_a_dataset_input_of_the_run(tracked):
    result, client = tracked
    inputs = client.get_run(result.tracking.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("Dataset/churn", "v1abc")]
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_the_model_is_an_mlflow_model_with_a_signature_that_predicts_like_the_artifact(tracked, store):
    from mlflow.models import get_model_info

    from kadence.domain.training import artifact as artifacts

    result, _ = tracked
    info = get_model_info(f"runs:/{result.tracking.run_id}/model")
    names = [c.name for c in result.signature.inputs]
    assert [c["name"] for c in info.signature.inputs.to_dict()] == names
    loaded = mlflow.sklearn.load_model(f"runs:/{result.tracking.run_id}/model")
    ours = artifacts.loads(store.get_bytes(store.key_of(result.artifact.uri)), result.artifact.sha256)
    rows = churn_frame(rows=20, seed=9)[names]
    assert loaded.predict(rows).tolist() == ours.predict(rows).tolist()


def test_an_unreachable_tracking_server_never_fails_training(store, monkeypatch):
    monkeypatch.setattr(mlflow_log, "BACKOFF_S", (0.0, 0.0))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    task = churn_task(store, "untracked", trials=2, families=("logistic_regression",))
    task = task.model_copy(update={"mlflow": MlflowTarget(tracking_uri="http://127.0.0.1:9", experiment="churn")})
    lines: list[str] = []
    result = train(task, store, log=lines.append)
    assert result.tracking == TrackingOutcome(tracked=False, reason="MlflowUnavailable", attempts=3,
                                              message=result.tracking.message)
    assert "127.0.0.1" in result.tracking.message or "onnection" in result.tracking.message
    assert sum("mlflow: attempt" in line for line in lines) == 3
    assert result.lineage.mlflow_run_id is None and result.artifact.sha256


# ---- the planners -------------------------------------------------------------------------------

from kadence.builders.jobs import WorkloadSettings  # noqa: E402
from kadence.planners.mlflow_sync import plan_alias_sync, sync_job_name  # noqa: E402
from kadence.planners.modelversion import ModelVersionObservation, plan_modelversion  # noqa: E402
from kadence.planners.trainingrun import TrainingRunObservation, plan_trainingrun  # noqa: E402
from kadence.tracking.model import alias_changes, releasable_aliases  # noqa: E402

from .test_planners import NOW, featureset, job, ready_of, result, run_body  # noqa: E402

TRACKING = WorkloadSettings(mlflow_tracking_uri="http://mlflow:5000")


def task_of(plan) -> dict:
    import json

    return json.loads(plan.children[0]["data"]["task.json"])


def test_an_operator_with_a_tracking_uri_hands_the_training_job_the_models_experiment():
    plan = plan_trainingrun(run_body(), TrainingRunObservation(source=featureset()), NOW, TRACKING)
    assert task_of(plan)["mlflow"] == {"trackingUri": "http://mlflow:5000", "experiment": "churn"}


def test_a_trainingrun_that_opts_out_is_not_logged():
    body = run_body()
    body["spec"]["tracking"] = {"mlflow": False}
    plan = plan_trainingrun(body, TrainingRunObservation(source=featureset()), NOW, TRACKING)
    assert "mlflow" not in task_of(plan)


def test_an_operator_without_a_tracking_uri_logs_nothing():
    plan = plan_trainingrun(run_body(), TrainingRunObservation(source=featureset()), NOW)
    assert "mlflow" not in task_of(plan)


def registered_run(tracking: dict | None):
    """A run whose result is in and whose ModelVersion exists."""
    from .test_planners import model_version

    outcome = result()
    if tracking is not None:
        outcome["tracking"] = tracking
        outcome["lineage"]["mlflowRunId"] = tracking.get("runId")
    mine = model_version("churn-v1", 1, run="churn-train")
    body = run_body(status={"attempt": 1})
    return plan_trainingrun(body, TrainingRunObservation(source=featureset(), jobs=[job("churn-train-train-1",
                                                                                        "Succeeded")],
                                                         result=outcome, model_versions=[mine]), NOW)


def test_mlflow_being_down_is_reported_in_tracked_and_the_run_still_succeeds_ready():
    plan = registered_run({"tracked": False, "reason": "MlflowUnavailable", "attempts": 3,
                           "message": "ConnectionError: refused"})
    tracked = next(c for c in plan.conditions if c.type == "Tracked")
    assert (tracked.status, tracked.reason) == ("False", "MlflowUnavailable")
    assert plan.phase == "Succeeded" and ready_of(plan).status == "True"


def test_a_logged_run_is_tracked_and_a_run_not_to_be_logged_has_no_tracked_condition():
    logged = registered_run({"tracked": True, "reason": "Logged", "runId": "r1", "experimentId": "1"})
    assert next(c for c in logged.conditions if c.type == "Tracked").status == "True"
    assert not [c for c in registered_run(None).conditions if c.type == "Tracked"]


def test_the_registration_carries_the_mlflow_run_into_the_modelversions_lineage():
    outcome = result()
    outcome["tracking"] = {"tracked": True, "reason": "Logged", "runId": "r1", "experimentId": "1"}
    outcome["lineage"]["mlflowRunId"] = "r1"
    plan = plan_trainingrun(run_body(status={"attempt": 1}), TrainingRunObservation(result=outcome), NOW)
    assert plan.registration.spec["lineage"]["mlflowRunId"] == "r1"


@pytest.mark.parametrize("stage, current, expected", [
    ("Production", {}, ({"champion": "2"}, [])),
    ("Production", {"champion": "1"}, ({"champion": "2"}, [])),  # moved from the old champion
    ("Production", {"champion": "2", "challenger": "2"}, ({}, ["challenger"])),
    ("Staging", {"champion": "1"}, ({"challenger": "2"}, [])),
    ("Archived", {"champion": "2"}, ({}, ["champion"])),
    ("Archived", {"champion": "3"}, ({}, [])),  # another version's alias is never touched
    ("Candidate", {}, ({}, [])),
])
def test_alias_changes_mirror_the_stage_and_leave_other_versions_aliases_alone(stage, current, expected):
    assert alias_changes(stage, "2", current, releasable=["challenger", "champion"]) == expected


def test_an_alias_is_deleted_only_where_releasable_allows():
    assert alias_changes("Archived", "2", {"champion": "2"}, releasable=[]) == ({}, [])
    assert alias_changes("Archived", "2", {"champion": "2", "challenger": "2"}, releasable=["challenger"]) == (
        {}, ["challenger"])


@pytest.mark.parametrize("stage, others, expected", [
    ("Archived", [], ["challenger", "champion"]),  # the last Production version archived: nobody holds it
    ("Archived", [("Staging", "Production")], []),  # a successor asks for Production (and holds Staging)
    ("Archived", [("Candidate", "Production")], ["challenger"]),
    ("Archived", [("Production", "Production")], ["challenger"]),  # a successor already holds it
    ("Production", [("Candidate", "Staging")], []),  # a new challenger is on its way
    ("Production", [("Archived", "Archived")], ["challenger"]),
    ("Staging", [(None, "Candidate")], ["champion"]),
])
def test_a_version_releases_only_the_aliases_no_other_version_holds_or_asks_for(stage, others, expected):
    assert releasable_aliases(stage, others) == expected


def test_a_version_archived_for_a_successor_leaves_champion_for_the_successors_job():
    import json

    successor = model_version_body(stage="Staging")
    successor["metadata"]["name"], successor["spec"]["version"], successor["spec"]["stage"] = "churn-v2", 2, "Production"
    plan = plan_modelversion(model_version_body(stage="Archived"), ModelVersionObservation(siblings=[successor]), NOW,
                             TRACKING)
    assert json.loads(plan.children[0]["data"]["task.json"])["releaseAliases"] == []


def model_version_body(stage="Production", run_id="r1", history_at="2026-01-02T11:00:00Z"):
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion",
            "metadata": {"name": "churn-v1", "namespace": "ml", "uid": "mv-uid", "labels": {}, "annotations": {}},
            "spec": {"model": "churn", "version": 1, "stage": stage,
                     "artifact": {"uri": "s3://kadence/a", "sha256": "ab" * 32},
                     "lineage": {"mlflowRunId": run_id} if run_id else {}},
            "status": {"stage": stage, "verified": True, "verifiedSha256": "ab" * 32,
                       "history": [{"stage": stage, "at": history_at, "by": "x"}]}}


def test_a_stage_in_force_gets_one_sync_job_with_the_run_and_the_stage():
    body = model_version_body()
    plan = plan_modelversion(body, ModelVersionObservation(), NOW, TRACKING)
    configmap, sync_job = plan.children
    name = sync_job_name("churn-v1", "Production", "2026-01-02T11:00:00Z")
    assert sync_job["metadata"]["name"] == name == configmap["metadata"]["name"]
    assert sync_job["spec"]["template"]["spec"]["containers"][0]["command"] == ["kadence", "track"]
    import json

    task = json.loads(configmap["data"]["task.json"])
    assert (task["runId"], task["stage"], task["model"], task["version"]) == ("r1", "Production", "churn", 1)
    tracked = next(c for c in plan.conditions if c.type == "Tracked")
    assert tracked.status == "Unknown" and "champion" in tracked.message


def test_a_stage_change_gets_a_new_sync_job_and_the_old_one_is_deleted():
    old = sync_job_name("churn-v1", "Staging", "2026-01-01T00:00:00Z")
    plan = plan_alias_sync(model_version_body(), "Production", "2026-01-02T11:00:00Z", [job(old, "Succeeded")],
                           TRACKING)
    assert plan.children[1]["metadata"]["name"] != old
    assert {(ref.kind, ref.name) for ref in plan.delete} == {("Job", old), ("ConfigMap", old)}


def test_a_stage_change_is_mirrored_in_the_reconcile_that_makes_it():
    body = model_version_body(stage="Candidate")
    body["spec"]["stage"] = "Staging"
    plan = plan_modelversion(body, ModelVersionObservation(), NOW, TRACKING)
    assert plan.status.stage == "Staging"
    sync_job = plan.children[1]
    assert sync_job["metadata"]["name"] == sync_job_name("churn-v1", "Staging", "2026-01-02T12:00:00Z")
    assert "'challenger'" in next(c for c in plan.conditions if c.type == "Tracked").message


@pytest.mark.parametrize("state, status, reason", [("Succeeded", "True", "Synced"),
                                                   ("Failed", "False", "MlflowSyncFailed"),
                                                   ("Running", "Unknown", "Syncing")])
def test_the_sync_jobs_outcome_is_the_tracked_condition(state, status, reason):
    name = sync_job_name("churn-v1", "Production", "2026-01-02T11:00:00Z")
    plan = plan_alias_sync(model_version_body(), "Production", "2026-01-02T11:00:00Z", [job(name, state)], TRACKING)
    assert plan.children == [] and (plan.condition.status, plan.condition.reason) == (status, reason)


def test_a_failed_sync_leaves_the_modelversion_ready_in_its_stage():
    name = sync_job_name("churn-v1", "Production", "2026-01-02T11:00:00Z")
    plan = plan_modelversion(model_version_body(), ModelVersionObservation(jobs=[job(name, "Failed")]), NOW,
                             TRACKING)
    assert ready_of(plan).status == "True" and plan.phase == "Production"


@pytest.mark.parametrize("settings, run_id", [(WorkloadSettings(), "r1"), (TRACKING, None)])
def test_no_sync_without_a_tracking_server_or_without_an_mlflow_run(settings, run_id):
    plan = plan_modelversion(model_version_body(run_id=run_id), ModelVersionObservation(), NOW, settings)
    assert plan.children == [] and not [c for c in plan.conditions if c.type == "Tracked"]


# ---- `kadence track` ----------------------------------------------------------------------------

import argparse  # noqa: E402
import json  # noqa: E402

from kadence.tracking.mlflow_log import refused  # noqa: E402
from kadence.tracking.model import AliasSyncTask  # noqa: E402
from kadence.tracking.registry_sync import sync  # noqa: E402
from kadence.workloads import track  # noqa: E402


@pytest.mark.parametrize("code, expected", [("RESOURCE_DOES_NOT_EXIST", True), ("INVALID_PARAMETER_VALUE", True),
                                            ("INTERNAL_ERROR", False), ("TEMPORARILY_UNAVAILABLE", False),
                                            ("REQUEST_LIMIT_EXCEEDED", False)])
def test_only_a_refusal_that_another_attempt_cannot_fix_stops_the_retries(code, expected):
    from mlflow.exceptions import RestException

    assert refused(RestException({"error_code": code, "message": "x"})) is expected


def sync_task(uri: str, run_id: str, stage: str, **extra) -> AliasSyncTask:
    return AliasSyncTask(tracking_uri=uri, namespace="ml", model_version="churn-v1", model_version_uid="mv-uid",
                         model="churn", version=1, run_id=run_id, stage=stage,
                         release_aliases=releasable_aliases(stage, []), **extra)  # the model's only version


def aliases(client) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model("churn").aliases.items()}


def test_sync_registers_the_run_once_and_mirrors_each_stage_as_an_alias(tracked):
    result, client = tracked
    uri, run_id = client.tracking_uri, result.tracking.run_id
    first = sync(sync_task(uri, run_id, "Staging"), log=quiet)
    assert aliases(client) == {"challenger": first["version"]}
    again = sync(sync_task(uri, run_id, "Production"), log=quiet)
    assert again["version"] == first["version"] and again["set"] == ["champion"] and again["deleted"] == ["challenger"]
    assert aliases(client) == {"champion": first["version"]}
    rows = churn_frame(rows=20, seed=9)[[c.name for c in result.signature.inputs]]
    assert mlflow.sklearn.load_model("models:/churn@champion").predict(rows).tolist() == \
        mlflow.sklearn.load_model(f"runs:/{run_id}/model").predict(rows).tolist()
    registered = client.get_model_version("churn", first["version"])
    assert registered.run_id == run_id and registered.tags["kadence.modelVersion"] == "churn-v1"
    assert registered.tags["kadence.uid"] == "mv-uid" and registered.tags["kadence.stage"] == "Production"
    assert sync(sync_task(uri, run_id, "Archived"), log=quiet)["deleted"] == ["champion"]
    assert aliases(client) == {}


def run_track(tmp_path, task: dict | str) -> tuple[int, dict]:
    path = tmp_path / "task.json"
    path.write_text(task if isinstance(task, str) else json.dumps(task))
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = track.run(argparse.Namespace(task=str(path)), env={})
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


def test_track_with_a_bad_task_exits_2_and_says_why(tmp_path):
    code, line = run_track(tmp_path, {"trackingUri": "http://x"})
    assert code == track.EXIT_BAD_TASK and "bad task" in line["message"] and line["synced"] is False


def test_track_against_an_unreachable_server_exits_1_for_the_job_to_retry(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    code, line = run_track(tmp_path, sync_task("http://127.0.0.1:9", "r1", "Production").wire())
    assert code == track.EXIT_FAILED and line["synced"] is False


def test_track_in_an_image_without_the_mlflow_client_is_refused_with_exit_3_saying_so(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow.exceptions", None)  # what `import` sees when mlflow is missing
    code, line = run_track(tmp_path, sync_task("http://127.0.0.1:9", "r1", "Production").wire())
    assert code == track.EXIT_REFUSED and "kadence[mlflow]" in line["message"]


def test_training_in_an_image_without_the_mlflow_client_is_tracked_false_saying_so(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)
    outcome = mlflow_log.log_training(None, log=quiet)
    assert (outcome.tracked, outcome.reason) == (False, "MlflowUnavailable") and "kadence[mlflow]" in outcome.message


def test_track_of_a_run_mlflow_does_not_know_is_refused_with_exit_3(tracked, tmp_path):
    _, client = tracked
    code, line = run_track(tmp_path, sync_task(client.tracking_uri, "0" * 32, "Production").wire())
    assert code == track.EXIT_REFUSED and "RESOURCE_DOES_NOT_EXIST" in line["message"]
