"""`kadence train` end to end against a real SeaweedFS: small data, few trials."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .datagen import CHURN_COLUMNS, HOUSES_COLUMNS, churn_frame, houses_frame, put_dataset
from kadence.domain.training import artifact as artifacts
from kadence.workloads.train_task import TrainResult, TrainTask
from kadence.workloads.trainer import TrainingError, train

def churn_task(store, run: str, *, strategy: str = "tpe", trials: int = 8, metric: str = "f1",
               families=("logistic_regression", "random_forest", "hist_gradient_boosting"), **spec_extra) -> TrainTask:
    uri = put_dataset(store, "ml", "churn", "v1abc", churn_frame(rows=300, seed=1), CHURN_COLUMNS, "churned",
                      "customer_id")
    return TrainTask.model_validate({
        "namespace": "ml",
        "run": run,
        "spec": {
            "datasetRef": {"name": "churn"},
            "task": "classification",
            "objective": {"metric": metric},
            "search": {"strategy": strategy, "maxTrials": trials,
                       "families": [{"name": f} for f in families]},
            "cvFolds": 3,
            "model": "churn",
            **spec_extra,
        },
        "input": {"kind": "Dataset", "name": "churn", "version": "v1abc", "uri": uri},
    })


def quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def churn_result(store):
    lines: list[str] = []
    result = train(churn_task(store, "churn-tpe"), store, log=lines.append)
    return result, lines


def test_a_run_writes_trials_metrics_card_progress_and_result(store, churn_result):
    result, _ = churn_result
    prefix = "runs/ml/churn-tpe/"
    keys = set(store.list_keys(prefix))
    for name in ("trials.json", "metrics.json", "model_card.html", "progress.json", "spec.json", "result.json"):
        assert prefix + name in keys
    trials = json.loads(store.get_bytes(prefix + "trials.json"))
    assert len(trials["trials"]) == 8
    assert {t["state"] for t in trials["trials"]} <= {"complete", "pruned", "failed"}
    metrics = json.loads(store.get_bytes(prefix + "metrics.json"))
    assert set(metrics["perClass"]) == {"no", "yes"}
    matrix = metrics["confusionMatrix"]["matrix"]
    assert sum(map(sum, matrix)) == metrics["rows"]["holdout"] == 60
    progress = json.loads(store.get_bytes(prefix + "progress.json"))
    assert progress["phase"] == "Succeeded" and progress["done"] == 8
    card = store.get_bytes(prefix + "model_card.html").decode()
    # search progress, score against time, confusion matrix, calibration, permutation importance
    assert card.count("data:image/png;base64,") == 5
    stored = TrainResult.model_validate(json.loads(store.get_bytes(prefix + "result.json")))
    assert stored == result


def test_the_result_records_signature_lineage_and_the_best_trial(churn_result):
    result, _ = churn_result
    assert [c.name for c in result.signature.inputs] == ["tenure", "monthly_charges", "plan", "paperless"]
    assert result.signature.classes == ["no", "yes"]
    assert result.lineage.dataset == "churn" and result.lineage.dataset_version == "v1abc"
    assert result.lineage.seed == 42 and "scikit-learn" in result.lineage.libraries
    searched = {"logistic_regression", "random_forest", "hist_gradient_boosting"}
    # the best trial, or an ensemble of trials when that beat it on CV (search.ensemble, on by default)
    families = ({m["family"] for m in result.best.params["members"]} if result.best.family == "ensemble"
                else {result.best.family})
    assert families <= searched
    assert 0.0 <= result.metrics["f1"] <= 1.0 and set(result.metrics) >= {"f1", "accuracy", "roc_auc"}
    # The model learned something: better than always answering the majority class.
    assert result.metrics["accuracy"] > 0.6


def test_the_log_has_one_line_per_trial(churn_result):
    _, lines = churn_result
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert len(trial_lines) == 8
    assert all("family=" in line and "cv_f1=" in line and "state=" in line and "duration=" in line
               for line in trial_lines)


def test_the_stored_artifact_matches_its_sha256_and_predicts_raw_rows(store, churn_result):
    result, _ = churn_result
    data = store.get_bytes(store.key_of(result.artifact.uri))
    assert artifacts.sha256_hex(data) == result.artifact.sha256
    model = artifacts.loads(data, expected_sha256=result.artifact.sha256)
    rows = churn_frame(rows=20, seed=9).drop(columns=["churned", "customer_id"])
    assert set(model.predict(rows)) <= {"no", "yes"}
    assert model.predict_proba(rows).shape == (20, 2)


def test_the_same_spec_on_the_same_data_gives_the_same_model_and_metrics(store, churn_result):
    first, _ = churn_result
    again = train(churn_task(store, "churn-tpe-again"), store, log=quiet)
    assert again.best == first.best
    assert again.metrics == first.metrics
    assert again.artifact.sha256 == first.artifact.sha256


def test_a_regression_run_reports_residuals(store):
    uri = put_dataset(store, "ml", "houses", "h1", houses_frame(rows=200, seed=2), HOUSES_COLUMNS, "price")
    task = TrainTask.model_validate({
        "namespace": "ml", "run": "houses",
        "spec": {"datasetRef": {"name": "houses"}, "task": "regression", "objective": {"metric": "rmse"},
                 "search": {"strategy": "random", "maxTrials": 5,
                            "families": [{"name": "ridge"}, {"name": "hist_gradient_boosting",
                                                             "space": {"max_iter": {"low": 20, "high": 60, "integer": True}}}]},
                 "cvFolds": 3, "model": "houses"},
        "input": {"kind": "Dataset", "name": "houses", "version": "h1", "uri": uri},
    })
    result = train(task, store, log=quiet)
    assert result.direction == "minimize"
    assert result.metrics["rmse"] > 0 and result.metrics["r2"] > 0.5
    metrics = json.loads(store.get_bytes("runs/ml/houses/metrics.json"))
    assert set(metrics["residuals"]) >= {"mean", "std", "p05", "p95", "maxAbs"}
    # search progress, score against time, residuals, permutation importance (no calibration: a regressor)
    assert store.get_bytes("runs/ml/houses/model_card.html").decode().count("data:image/png") == 4


def test_a_missing_target_column_fails_with_a_clear_message(store):
    task = churn_task(store, "churn-bad")
    task = task.model_copy(update={"input": task.input.model_copy(update={"target": "cancelled"})})
    with pytest.raises(TrainingError, match="target column 'cancelled' is not in Dataset churn"):
        train(task, store, log=quiet)


def test_a_family_that_does_not_fit_the_task_is_refused(store):
    with pytest.raises(TrainingError, match="linear_regression does not fit the task classification"):
        train(churn_task(store, "churn-linear", families=("linear_regression",)), store, log=quiet)


def test_the_cli_runs_a_task_file_and_prints_the_result_last(store, s3_env, tmp_path):
    task = churn_task(store, "churn-cli", strategy="grid", trials=4, families=("logistic_regression", "knn"))
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task.wire()))
    env = {**os.environ, **s3_env, "KADENCE_IMAGE": "ghcr.io/kadence/kadence:test"}
    done = subprocess.run([sys.executable, "-m", "kadence", "train", "--task", str(path)],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    result = TrainResult.model_validate(json.loads(lines[-1]))
    assert result.lineage.image == "ghcr.io/kadence/kadence:test"
    assert sum(1 for line in lines if line.startswith("trial ")) == 4


def test_the_cli_refuses_an_invalid_task_with_exit_code_2(tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"namespace": "ml"}))
    done = subprocess.run([sys.executable, "-m", "kadence", "train", "--task", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "invalid task spec" in done.stderr


def test_train_help_describes_the_task_option():
    done = subprocess.run([sys.executable, "-m", "kadence", "train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0
    assert "--task" in done.stdout and "KADENCE_TASK" in done.stdout


@pytest.fixture(scope="module")
def churn_features(store):
    """A FeatureSet materialized by the real `kadence materialize` code from a churn snapshot."""
    from kadence.workloads.data_tasks import MaterializeTask
    from kadence.workloads.materialize_run import materialize

    personal_plan = [dict(c, pii=True) if c["name"] == "plan" else c for c in CHURN_COLUMNS]
    dataset_uri = put_dataset(store, "ml", "churn-raw", "d7", churn_frame(rows=300, seed=3), personal_plan,
                              "churned", "customer_id")
    task = MaterializeTask.model_validate({
        "namespace": "ml", "name": "churn-features", "datasetUri": dataset_uri,
        "spec": {"datasetRef": {"name": "churn-raw"}, "entityColumn": "customer_id", "features": [
            {"name": "log_tenure", "expression": "log1p(tenure)"},
            {"name": "charges", "transform": {"type": "impute", "column": "monthly_charges", "strategy": "median"}},
            {"name": "plan", "transform": {"type": "oneHot", "column": "plan"}},
        ]},
    })
    result = materialize(task, store)
    assert result.valid, result.message
    return result


def test_a_featureset_run_ships_the_featureset_transformer_in_front_of_the_model(store, churn_features):
    task = TrainTask.model_validate({
        "namespace": "ml", "run": "churn-fs",
        "spec": {"featureSetRef": {"name": "churn-features"}, "task": "classification",
                 "objective": {"metric": "roc_auc"},
                 "search": {"strategy": "tpe", "maxTrials": 6,
                            "families": [{"name": "logistic_regression"}, {"name": "knn"}]},
                 "cvFolds": 3, "model": "churn"},
        "input": {"kind": "FeatureSet", "name": "churn-features", "version": churn_features.version,
                  "uri": churn_features.uri},
    })
    result = train(task, store, log=quiet)
    assert result.lineage.feature_set == "churn-features"
    assert result.lineage.feature_set_version == churn_features.version
    assert result.lineage.dataset == "churn-raw" and result.lineage.dataset_version == "d7"
    assert {c.name for c in result.signature.inputs} == {"tenure", "monthly_charges", "plan"}
    # the Dataset's personal column stays personal through the FeatureSet: the server hashes it in the logs
    assert {c.name: c.pii for c in result.signature.inputs} == {"tenure": None, "monthly_charges": None, "plan": True}
    model = artifacts.loads(store.get_bytes(store.key_of(result.artifact.uri)), result.artifact.sha256)
    assert [name for name, _ in model.steps][0] == "features"
    raw = churn_frame(rows=15, seed=11)[["tenure", "monthly_charges", "plan"]]
    assert model.predict_proba(raw).shape == (15, 2)


def test_the_cli_exits_3_with_the_cause_when_the_data_cannot_give_a_model(store, s3_env, tmp_path):
    task = churn_task(store, "churn-no-target")
    task = task.model_copy(update={"input": task.input.model_copy(update={"target": "cancelled"})})
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task.wire()))
    done = subprocess.run([sys.executable, "-m", "kadence", "train", "--task", str(path)],
                          env={**os.environ, **s3_env}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 3
    assert "kadence train: failed: the target column 'cancelled' is not in Dataset churn" in done.stderr
