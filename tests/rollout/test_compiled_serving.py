"""The compiled path from the training result to `kadence serve`: the ModelVersion records
it (verified or not), the server's task carries it only when it was verified."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kadence.api.modelversion import ModelVersionSpec
from kadence.handlers.inferenceservice import model_version_info
from kadence.planners.inferenceservice import ServingContext, ServingObservation, plan_inferenceservice
from kadence.planners.trainingrun import TrainingRunObservation, plan_trainingrun
from kadence.serving.task import ServeTask

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SHA = "b" * 64
ONNX_SHA = "c" * 64


def compiled(verified: bool) -> dict:
    return {"uri": f"s3://kadence/runs/ml/churn-train/artifacts/{ONNX_SHA}/model.onnx", "sha256": ONNX_SHA,
            "format": "onnx", "maxAbsDifference": 3e-9 if verified else 0.02, "tolerance": 1e-5, "verified": verified}


def run_body() -> dict:
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
            "metadata": {"name": "churn-train", "namespace": "ml", "uid": "uid-1", "generation": 1},
            "spec": {"datasetRef": {"name": "churn"}, "task": "classification", "objective": {"metric": "f1"},
                     "search": {"maxTrials": 4}, "model": "churn"},
            "status": {"attempt": 1}}


def train_result(compiled_artifact: dict | None) -> dict:
    result = {
        "namespace": "ml", "run": "churn-train", "attempt": 1, "model": "churn", "task": "classification",
        "metric": "f1", "direction": "maximize",
        "best": {"number": 1, "family": "logistic_regression", "params": {"C": 1.0}, "cvScore": 0.8,
                 "foldScores": [0.8, 0.8]},
        "metrics": {"f1": 0.8}, "trials": {"done": 4, "total": 4, "pruned": 0, "failed": 0}, "stoppedBy": "budget",
        "artifact": {"uri": f"s3://kadence/runs/ml/churn-train/artifacts/{SHA}/model.skops", "sha256": SHA},
        "signature": {"inputs": [{"name": "tenure", "type": "int"}], "classes": ["no", "yes"]},
        "lineage": {"trainingRun": "churn-train", "dataset": "churn", "datasetVersion": "d1", "seed": 42},
        "files": {"trials": "s3://k/t", "metrics": "s3://k/m", "modelCard": "s3://k/c", "progress": "s3://k/p",
                  "spec": "s3://k/s"},
        "startedAt": "2026-11-23T11:00:00Z", "finishedAt": "2026-11-23T11:10:00Z", "durationSeconds": 600.0,
    }
    if compiled_artifact is not None:
        result["compiled"] = compiled_artifact
    return result


def registered(compiled_artifact: dict | None) -> dict:
    plan = plan_trainingrun(run_body(), TrainingRunObservation(result=train_result(compiled_artifact)), NOW)
    return plan.registration.body("churn-v1", 1)


@pytest.mark.parametrize("verified", [True, False])
def test_the_model_version_records_the_compiled_artifact_verified_or_not(verified):
    body = registered(compiled(verified))
    assert body["spec"]["compiled"] == compiled(verified)
    spec = ModelVersionSpec.model_validate(body["spec"])
    assert spec.compiled.verified is verified and spec.compiled.sha256 == ONNX_SHA


def test_a_result_without_a_compiled_artifact_registers_none():
    assert "compiled" not in registered(None)["spec"]


def serve_task_for(compiled_artifact: dict | None) -> ServeTask:
    mv = registered(compiled_artifact)
    mv["status"] = {"stage": "Production"}
    info = model_version_info(mv)
    assert info.compiled == compiled_artifact
    isvc = {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": "churn", "namespace": "ml", "uid": "u-1", "generation": 1},
            "spec": {"model": "churn", "version": 1}, "status": {}}
    plan = plan_inferenceservice(isvc, ServingObservation(), ServingContext(versions={1: info}), NOW)
    configmap = next(c for c in plan.children if c["kind"] == "ConfigMap" and c["metadata"]["name"] == "churn-stable")
    return ServeTask.model_validate_json(configmap["data"]["task.json"])


def test_the_server_is_handed_a_verified_compiled_graph():
    task = serve_task_for(compiled(True))
    assert task.compiled is not None and task.compiled.verified
    assert (task.compiled.uri, task.compiled.sha256) == (compiled(True)["uri"], ONNX_SHA)
    assert task.compiled.tolerance == 1e-5


@pytest.mark.parametrize("compiled_artifact", [compiled(False), None])
def test_the_server_is_not_handed_an_unverified_or_missing_graph_and_keeps_scikit_learn(compiled_artifact):
    task = serve_task_for(compiled_artifact)
    assert task.compiled is None
    assert task.artifact.sha256 == SHA
