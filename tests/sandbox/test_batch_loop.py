"""BatchPredictions in the sandbox, driven with kubectl (issue 21): a served model, a BatchPrediction that scores
each new version of the churn Dataset, its output in S3 with every row, the run history in status, a second run on
a new Dataset version, a MonitorPolicy judging the scored rows, and `kadence models export` from the command line.

One scenario, run once by module fixtures; the tests read what it left."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from kadence.domain.synthetic import churn_frame
from kadence.storage import ObjectStore, StorageConfig

from .conftest import wait_for
from .operator_process import get_json, running_operator
from .test_data_loop import SCHEMA
from .test_training_loop import apply, churn_features, finished, training_run

NAMESPACE = "batch-loop"
BATCH = "churn-scores"
OUTPUT = f"s3://kadence/predictions/{NAMESPACE}/{BATCH}/"
BIN = Path(sys.executable).parent


def write_csv(directory: Path, rows: int, seed: int) -> Path:
    path = directory / f"churn-{seed}.csv"
    churn_frame(rows, seed=seed).to_csv(path, index=False)
    return path


def dataset(path: Path) -> dict:
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "churn"},
            "spec": {"source": {"uri": f"file://{path}"}, "schema": SCHEMA}}


def batch_status(kubectl) -> dict:
    return (get_json(kubectl, NAMESPACE, "batchprediction", BATCH) or {}).get("status") or {}


def settled_runs(kubectl, count: int) -> list[dict] | None:
    runs = batch_status(kubectl).get("runs") or []
    settled = [r for r in runs if r["phase"] in ("Succeeded", "Failed")]
    return runs if len(settled) >= count else None


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


@pytest.fixture(scope="module")
def store(sandbox_s3) -> ObjectStore:
    return ObjectStore(StorageConfig.from_env(sandbox_s3.env()))


@pytest.fixture(scope="module")
def served(operator, kubectl, tmp_path_factory):
    """Dataset, FeatureSet, a quick TrainingRun promoted to Production, and an InferenceService serving it."""
    directory = tmp_path_factory.mktemp("batch")
    apply(kubectl, dataset(write_csv(directory, 400, seed=11)), NAMESPACE)
    churn_features(kubectl, NAMESPACE)
    apply(kubectl, training_run("base", trials=1), NAMESPACE)
    run = wait_for(lambda: finished(kubectl, "base", NAMESPACE), timeout=300, message="base run finished")
    assert run["status"]["phase"] == "Succeeded", run["status"]
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "churn"},
                    "spec": {"model": "churn", "stage": "Production", "replicas": 1}}, NAMESPACE)
    wait_for(lambda: ((get_json(kubectl, NAMESPACE, "inferenceservice", "churn") or {}).get("status") or {})
             .get("phase") == "Stable", timeout=180, message="the InferenceService serving")
    return directory, run["status"]["modelVersion"]


@pytest.fixture(scope="module")
def first_run(served, kubectl):
    """kubectl apply of a BatchPrediction that scores every new version of the Dataset, and its first run."""
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps({
        "apiVersion": "kadence.dev/v1alpha1", "kind": "BatchPrediction", "metadata": {"name": BATCH},
        "spec": {"model": "churn", "stage": "Production",
                 "input": {"dataset": {"name": "churn", "follow": "EveryNewVersion"}},
                 "output": {"uri": OUTPUT, "format": "parquet", "probabilities": True}, "chunkRows": 1000}}))
    runs = wait_for(lambda: settled_runs(kubectl, 1), timeout=240, message="the first batch run settled")
    return runs


@pytest.fixture(scope="module")
def policy(first_run, kubectl):
    """A MonitorPolicy watching the BatchPrediction: drift on the scored inputs, F1 on those whose labels are known."""
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": "batch-quality"},
                    "spec": {"batchPredictionRef": {"name": BATCH}, "interval": "10s",
                             "window": {"lastPredictions": 1000}, "drift": {"method": "psi", "minSamples": 100},
                             "performance": {"metric": "f1", "threshold": 0.05, "minLabelled": 50,
                                             "window": {"labelledPredictions": 1000, "maxAge": "1h"}}}}, NAMESPACE)

    def evaluated():
        status = (get_json(kubectl, NAMESPACE, "monitorpolicy", "batch-quality") or {}).get("status") or {}
        last = status.get("lastEvaluation") or {}
        return status if last.get("samples") and last.get("labelledSamples") else None
    return wait_for(evaluated, timeout=180, message="an evaluation of the batch predictions")


@pytest.fixture(scope="module")
def second_run(policy, served, kubectl):
    """A new version of the Dataset (other rows): the BatchPrediction scores it in a run of its own."""
    directory, _ = served
    apply(kubectl, dataset(write_csv(directory, 300, seed=12)), NAMESPACE)
    return wait_for(lambda: settled_runs(kubectl, 2), timeout=240, message="the second batch run settled")


def proxy_url(kubectl, service: str) -> str:
    """The sandbox proxy's local port for a Service (as tests/sandbox/test_inferenceservice_loop finds it)."""
    def port():
        svc = get_json(kubectl, NAMESPACE, "service", service)
        return ((svc or {}).get("metadata", {}).get("annotations") or {}).get("sandbox.kadence.dev/proxy-port")
    return f"http://127.0.0.1:{wait_for(port, timeout=30, message=f'proxy port of Service {service}')}"


def read_run(store: ObjectStore, run: dict):
    prefix = store.key_of(run["outputUri"])
    manifest = json.loads(store.get_bytes(prefix + "_manifest.json"))
    tables = [pq.read_table(io.BytesIO(store.get_bytes(prefix + f["name"]))).to_pandas() for f in manifest["files"]]
    import pandas as pd

    return manifest, pd.concat(tables, ignore_index=True)


def test_the_first_run_writes_every_row_of_the_dataset_version_to_s3(first_run, store, served):
    run = first_run[0]
    assert run["phase"] == "Succeeded", run
    assert run["rows"] == 400 and run["modelVersion"] == served[1] and run["datasetVersion"]
    manifest, table = read_run(store, run)
    assert manifest["rows"] == len(table) == 400
    assert sorted(table["customer_id"]) == sorted(churn_frame(400, seed=11)["customer_id"])
    assert set(table["model_version"]) == {served[1]}
    assert run["manifestUri"] == run["outputUri"] + "_manifest.json"
    for part in manifest["files"]:
        assert hashlib.sha256(store.get_bytes(store.key_of(run["outputUri"]) + part["name"])).hexdigest() == part["sha256"]


def test_the_batch_predictions_are_the_online_servers_row_by_row(first_run, served, store, kubectl):
    _, table = read_run(store, first_run[0])
    frame = churn_frame(400, seed=11).set_index("customer_id")
    signature = get_json(kubectl, NAMESPACE, "modelversion", served[1])["spec"]["signature"]["inputs"]
    ids = table["customer_id"].tolist()[:50]
    rows = [{c["name"]: (v.item() if hasattr(v, "item") else v) for c in signature
             for v in [frame.loc[i, c["name"]]]} for i in ids]
    url = proxy_url(kubectl, "churn")
    response = httpx.post(f"{url}/v1/models/churn:predict", json={"instances": rows}, timeout=60)
    assert response.status_code == 200, response.text
    assert table["prediction"].tolist()[:50] == response.json()["predictions"]


def test_kubectl_shows_the_run_history_and_the_versions_scored(second_run, kubectl):
    assert [r["phase"] for r in second_run] == ["Succeeded", "Succeeded"]
    assert second_run[0]["datasetVersion"] != second_run[1]["datasetVersion"] and second_run[0]["rows"] == 300
    assert all(r["durationSeconds"] >= 0 and r["startedAt"] and r["finishedAt"] for r in second_run)
    status = batch_status(kubectl)
    assert status["lastRun"] == second_run[0]["name"] and status["lastRows"] == 300
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
    table = kubectl("get", "batchpredictions", "-n", NAMESPACE).stdout
    assert BATCH in table and second_run[0]["name"] in table
    assert BATCH in kubectl("get", "kadence", "-n", NAMESPACE).stdout  # in the kadence category
    explained = kubectl("explain", "batchpredictions.spec.input.dataset").stdout
    assert "follow" in explained and "EveryNewVersion" in explained, explained


def test_a_monitorpolicy_judges_the_scored_inputs_and_their_labels(policy):
    last = policy["lastEvaluation"]
    assert last["samples"] >= 100 and last["labelledSamples"] >= 50
    assert "f1" in (last.get("metrics") or {}) or policy.get("metricSummary", "").startswith("f1")
    found = next(c for c in policy["conditions"] if c["type"] == "InferenceServiceFound")
    assert found["status"] == "True" and found["message"] == f"BatchPrediction {BATCH}"


def test_kadence_models_export_writes_the_featureset_models_whole_graph(served, kubectl, sandbox_kubeconfig, sandbox_s3,
                                                                 tmp_path):
    env = {**os.environ, "KUBECONFIG": str(sandbox_kubeconfig), **sandbox_s3.env()}
    done = subprocess.run([str(BIN / "kadence"), "models", "export", served[1], "--format", "onnx", "-n", NAMESPACE,
                           "-o", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    version = get_json(kubectl, NAMESPACE, "modelversion", served[1])
    compiled = version["spec"].get("compiled") or {}
    # the churn FeatureSet's transformer converts: the whole pipeline exports, raw columns in
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / f"{served[1]}.manifest.json").read_text())
    assert manifest["sha256"] == compiled["sha256"]
    assert hashlib.sha256((tmp_path / f"{served[1]}.onnx").read_bytes()).hexdigest() == compiled["sha256"]
    inputs = {i["name"]: i["type"] for i in manifest["signature"]["inputs"]}
    assert inputs == {"contract": "string", "monthly_charges": "float64", "support_calls": "int64",
                      "tenure_months": "int64"}
