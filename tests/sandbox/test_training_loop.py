"""TrainingRuns and the model registry in the sandbox, driven with kubectl (issue 6)."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from kadence.domain.synthetic import churn_frame
from kadence.domain.training.artifact import loads
from kadence.sandbox import s3

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA

NAMESPACE = "training-loop"


def apply(kubectl, body: dict, namespace: str = NAMESPACE) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def data_and_features(kubectl, tmp_path, namespace: str = NAMESPACE) -> None:
    path = tmp_path / f"{namespace}.csv"
    churn_frame(400, seed=11).to_csv(path, index=False)
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "churn"},
                    "spec": {"source": {"uri": f"file://{path}"}, "schema": SCHEMA}}, namespace)
    churn_features(kubectl, namespace)


def churn_features(kubectl, namespace: str = NAMESPACE) -> None:
    """The churn FeatureSet on Dataset 'churn'."""
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet", "metadata": {"name": "churn-features"},
                    "spec": {"datasetRef": {"name": "churn"}, "target": "churned", "features": [
                        {"name": "tenure", "expression": "log1p(tenure_months)"},
                        {"name": "charges", "transform": {"type": "standardScale", "column": "monthly_charges"}},
                        {"name": "calls", "expression": "support_calls"},
                        {"name": "contract", "transform": {"type": "oneHot", "column": "contract"}},
                    ]}}, namespace)


def training_run(name: str, trials: int = 2, promotion: dict | None = None, seed: int = 3) -> dict:
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": name},
            "spec": {"featureSetRef": {"name": "churn-features"}, "task": "classification",
                     "objective": {"metric": "f1"}, "cvFolds": 2,
                     "search": {"strategy": "random", "maxTrials": trials,
                                "families": [{"name": "logistic_regression"}]},
                     "split": {"testFraction": 0.25, "seed": seed}, "model": "churn",
                     "promotion": promotion or {"mode": "Auto", "targetStage": "Production"}}}


def finished(kubectl, name: str, namespace: str = NAMESPACE) -> dict | None:
    obj = get_json(kubectl, namespace, "trainingrun", name)
    phase = ((obj or {}).get("status") or {}).get("phase")
    return obj if phase in ("Succeeded", "Failed") else None


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


@pytest.fixture(scope="module")
def first_run(operator, kubectl, tmp_path_factory):
    data_and_features(kubectl, tmp_path_factory.mktemp("training"))
    apply(kubectl, training_run("first"))
    run = wait_for(lambda: finished(kubectl, "first"), timeout=300, message="first run finished")
    assert run["status"]["phase"] == "Succeeded", run["status"]
    return run


def test_a_run_on_a_featureset_registers_a_model_that_loads_and_predicts(first_run, kubectl, sandbox_s3):
    name = first_run["status"]["modelVersion"]
    version = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "modelversion", name))
                       and (c := condition(o, "Ready")) and c["status"] == "True" and o,
                       timeout=60, message="ModelVersion Ready")
    spec = version["spec"]
    bucket, key = spec["artifact"]["uri"][len("s3://"):].split("/", 1)
    stored = s3.client(sandbox_s3).get_object(bucket, key).read()
    assert hashlib.sha256(stored).hexdigest() == spec["artifact"]["sha256"]
    model = loads(stored, spec["artifact"]["sha256"])
    rows = churn_frame(5, seed=99).drop(columns=["churned"])
    assert len(model.predict(rows)) == 5
    assert version["status"]["stage"] == "Production"
    assert first_run["status"]["trials"]["done"] == 2


def test_the_lineage_resolves_to_the_dataset_and_featureset_versions(first_run, kubectl):
    version = get_json(kubectl, NAMESPACE, "modelversion", first_run["status"]["modelVersion"])
    lineage = version["spec"]["lineage"]
    dataset = get_json(kubectl, NAMESPACE, "dataset", "churn")
    features = get_json(kubectl, NAMESPACE, "featureset", "churn-features")
    assert lineage["trainingRun"] == "first"
    assert (lineage["dataset"], lineage["datasetVersion"]) == ("churn", dataset["status"]["latestVersion"])
    assert (lineage["featureSet"], lineage["featureSetVersion"]) == ("churn-features",
                                                                     features["status"]["latestVersion"])
    assert lineage["seed"] == 3


def test_the_model_a_run_registered_is_served_through_its_service(first_run, kubectl, sandbox_s3):
    """Issue 7: serve a model from a TrainingRun; clients send raw columns by name."""
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "churn"},
                    "spec": {"model": "churn", "stage": "Production", "replicas": 1}})
    served = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "inferenceservice", "churn"))
                      and (c := condition(o, "Ready")) and c["status"] == "True" and o,
                      timeout=180, message="InferenceService Ready")
    version = get_json(kubectl, NAMESPACE, "modelversion", first_run["status"]["modelVersion"])
    assert served["status"]["stableVersion"] == version["spec"]["version"]
    port = wait_for(lambda: ((get_json(kubectl, NAMESPACE, "service", "churn") or {}).get("metadata", {})
                             .get("annotations") or {}).get("sandbox.kadence.dev/proxy-port"),
                    timeout=30, message="the Service's local port")
    inputs = [column["name"] for column in version["spec"]["signature"]["inputs"]]
    rows = churn_frame(4, seed=123)[inputs]  # raw columns by name, as the signature lists them
    instances = json.loads(rows.to_json(orient="records"))
    bucket, key = version["spec"]["artifact"]["uri"][len("s3://"):].split("/", 1)
    model = loads(s3.client(sandbox_s3).get_object(bucket, key).read(), version["spec"]["artifact"]["sha256"])
    with httpx.Client(timeout=30) as client:
        answer = client.post(f"http://127.0.0.1:{port}/v1/models/churn:predict", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == model.predict(rows).tolist()


def test_a_model_that_does_not_beat_production_by_the_margin_stays_a_candidate(first_run, kubectl):
    # Another split seed: the same spec on the same data trains the same artifact, which is never registered twice.
    apply(kubectl, training_run("hopeless", promotion={"mode": "Auto", "targetStage": "Production", "margin": 1.0},
                                seed=4))
    run = wait_for(lambda: finished(kubectl, "hopeless"), timeout=300, message="second run finished")
    candidate = get_json(kubectl, NAMESPACE, "modelversion", run["status"]["modelVersion"])
    production = get_json(kubectl, NAMESPACE, "modelversion", first_run["status"]["modelVersion"])
    assert candidate["spec"]["version"] == 2
    assert candidate["status"]["stage"] == "Candidate"
    assert production["status"]["stage"] == "Production"


def test_a_model_version_whose_artifact_differs_from_its_sha256_never_becomes_ready(first_run, kubectl):
    real = get_json(kubectl, NAMESPACE, "modelversion", first_run["status"]["modelVersion"])
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": "churn-v90"},
                    "spec": {"model": "churn", "version": 90, "stage": "Production",
                             "artifact": {**real["spec"]["artifact"], "sha256": "0" * 64}}})
    refused = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "modelversion", "churn-v90"))
                       and (c := condition(o, "Ready")) and c["status"] == "False" and o,
                       timeout=60, message="verification failure")
    assert "sha256" in condition(refused, "Ready")["message"]
    assert (refused["status"].get("stage")) != "Production"
    still = get_json(kubectl, NAMESPACE, "modelversion", first_run["status"]["modelVersion"])
    assert still["status"]["stage"] == "Production"


def test_deleting_a_run_deletes_its_jobs_but_never_its_model(first_run, kubectl):
    name = first_run["status"]["modelVersion"]
    kubectl("delete", "trainingrun", "first", "-n", NAMESPACE, "--wait=true", "--timeout=60s")
    wait_for(lambda: not json.loads(kubectl("get", "jobs", "-n", NAMESPACE, "-l",
                                            "kadence.dev/owner-name=first", "-o", "json").stdout)["items"],
             timeout=60, message="the run's Jobs gone")
    assert get_json(kubectl, NAMESPACE, "modelversion", name) is not None


def test_an_operator_restart_during_a_run_neither_duplicates_the_job_nor_loses_the_result(
        sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl, tmp_path):
    namespace = "training-restart"
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, namespace):
        data_and_features(kubectl, tmp_path, namespace)
        apply(kubectl, training_run("restarted", trials=4), namespace)
        wait_for(lambda: json.loads(kubectl("get", "jobs", "-n", namespace, "-l",
                                            "kadence.dev/owner-name=restarted", "-o", "json").stdout)["items"],
                 timeout=240, message="the training Job")
    # The operator is gone while the Job runs; a new one takes over.
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, namespace):
        run = wait_for(lambda: finished(kubectl, "restarted", namespace), timeout=300, message="run finished")
    assert run["status"]["phase"] == "Succeeded"
    jobs = json.loads(kubectl("get", "jobs", "-n", namespace, "-l", "kadence.dev/owner-name=restarted",
                              "-o", "json").stdout)["items"]
    assert [j["metadata"]["name"] for j in jobs] == ["restarted-train-1"]
    versions = [v for v in json.loads(kubectl("get", "modelversions", "-n", namespace, "-o", "json").stdout)["items"]
                if v["metadata"].get("labels", {}).get("kadence.dev/training-run") == "restarted"]
    assert len(versions) == 1
