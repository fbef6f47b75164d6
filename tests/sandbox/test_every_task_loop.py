"""Issue 19, item 3: binary classification, multiclass classification and regression each go
from a Dataset to a served, monitored model, driven the way a user drives them: manifests
applied with kubectl (the multiclass and regression ones are examples/tasks/ as shipped, with
a short monitor interval and a smaller search for the test), requests to the served model over
HTTP, labels through its /feedback endpoint with the InferenceService's token, and the
MonitorPolicy's verdict read back from its status.

Each task is judged on a metric that fits it: binary on macro F1 (honest labels: a pass),
multiclass on log loss (labels rotated to the wrong cultivar: a breach, lower is better),
regression on RMSE (honest labels: a pass). The three run at once, so the module pays for one
training, serving and monitoring round, not three."""

from __future__ import annotations

import base64
import json
from io import StringIO
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from kadence.domain.synthetic import churn_frame

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA
from .test_training_loop import apply, finished

NAMESPACE = "every-task"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tasks"
ROWS = 60  # one request of this many rows per task, then a label for each
TASKS = ("churn", "wine", "diabetes")  # the InferenceService (and model) of each task


def example_documents() -> list[dict]:
    """examples/tasks/ as shipped, but monitored every 10 s and searched with two trials."""
    documents = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document["kind"] == "TrainingRun":
                document["spec"]["search"]["maxTrials"] = 2
                document["spec"]["cvFolds"] = 2
            if document["kind"] == "MonitorPolicy":
                document["spec"]["interval"] = "10s"
            documents.append(document)
    return documents


def binary_documents(folder: Path) -> list[dict]:
    """The churn task on a Dataset's raw columns, judged on macro F1."""
    path = folder / "churn.csv"
    churn_frame(400, seed=11).to_csv(path, index=False)
    api = "kadence.dev/v1alpha1"
    return [
        {"apiVersion": api, "kind": "Dataset", "metadata": {"name": "churn"},
         "spec": {"source": {"uri": f"file://{path}"}, "schema": SCHEMA}},
        {"apiVersion": api, "kind": "TrainingRun", "metadata": {"name": "churn-initial"},
         "spec": {"datasetRef": {"name": "churn"}, "task": "classification", "objective": {"metric": "f1_macro"},
                  "cvFolds": 2, "search": {"strategy": "random", "maxTrials": 2,
                                           "families": [{"name": "logistic_regression"}]},
                  "split": {"testFraction": 0.25, "seed": 3}, "model": "churn",
                  "promotion": {"mode": "Auto", "targetStage": "Production"}}},
        {"apiVersion": api, "kind": "InferenceService", "metadata": {"name": "churn"},
         "spec": {"model": "churn", "stage": "Production", "replicas": 1,
                  "logging": {"enabled": True, "sampleRate": 1.0}}},
        {"apiVersion": api, "kind": "MonitorPolicy", "metadata": {"name": "churn-quality"},
         "spec": {"inferenceServiceRef": {"name": "churn"}, "interval": "10s", "window": {"lastPredictions": 500},
                  "performance": {"metric": "f1_macro", "threshold": 0.5, "minLabelled": 30,
                                  "window": {"labelledPredictions": 500, "maxAge": "7d"}},
                  "actions": {"alert": {"event": True}}}},
    ]


def traffic_of(task: str) -> tuple[pd.DataFrame, list]:
    """ROWS rows the model did or did not see, and the labels the test sends back for them."""
    rng = np.random.default_rng(19)
    if task == "churn":
        frame = churn_frame(ROWS, seed=77)
        return frame, frame["churned"].tolist()  # honest
    data = yaml.safe_load_all((EXAMPLES / "00-data.yaml").read_text())
    tables = {d["metadata"]["name"]: next(iter(d["data"].values())) for d in data}
    if task == "wine":
        frame = pd.read_csv(StringIO(tables["wine-data"])).sample(ROWS, random_state=rng.integers(1 << 31))
        return frame, ((frame["cultivar"] + 1) % 3).tolist()  # every label the wrong cultivar
    frame = pd.read_csv(StringIO(tables["diabetes-data"])).sample(ROWS, random_state=rng.integers(1 << 31))
    return frame, frame["progression"].tolist()  # honest


def proxy_url(kubectl, service: str) -> str:
    port = wait_for(lambda: ((get_json(kubectl, NAMESPACE, "service", service) or {}).get("metadata", {})
                             .get("annotations") or {}).get("sandbox.kadence.dev/proxy-port"),
                    timeout=60, message=f"the local port of Service {service}")
    return f"http://127.0.0.1:{port}"


def serve_and_label(kubectl, task: str) -> tuple[dict, list]:
    """One predict request of ROWS rows (raw columns, as the signature lists them), then a
    label per row through /feedback with the InferenceService's token."""
    served = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "inferenceservice", task))
                      and (c := condition(o, "Ready")) and c["status"] == "True" and o,
                      timeout=240, message=f"InferenceService {task} Ready")
    version = get_json(kubectl, NAMESPACE, "modelversion", f"{task}-v{served['status']['stableVersion']}")
    inputs = [column["name"] for column in version["spec"]["signature"]["inputs"]]
    frame, labels = traffic_of(task)
    url = proxy_url(kubectl, task)
    encoded = kubectl("get", "secret", f"{task}-feedback-token", "-n", NAMESPACE,
                      "-o", "jsonpath={.data.token}").stdout
    token = base64.b64decode(encoded).decode()
    with httpx.Client(timeout=30) as client:
        answer = client.post(f"{url}/v1/models/{task}:predict", headers={"X-Request-Id": f"{task}-batch"},
                             json={"instances": json.loads(frame[inputs].to_json(orient="records"))})
        assert answer.status_code == 200, answer.text
        feedback = [{"requestId": f"{task}-batch-{i}", "label": label} for i, label in enumerate(labels)]
        stored = client.post(f"{url}/v1/models/{task}/feedback", json={"feedback": feedback},
                             headers={"Authorization": f"Bearer {token}"})
        assert stored.status_code == 200 and stored.json()["stored"] == ROWS, stored.text
    return version, answer.json()["predictions"]


def judged(kubectl, task: str) -> dict | None:
    policy = get_json(kubectl, NAMESPACE, "monitorpolicy", f"{task}-quality")
    last = ((policy or {}).get("status") or {}).get("lastEvaluation") or {}
    return policy if last.get("labelledSamples") == ROWS else None


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


@pytest.fixture(scope="module")
def loop(operator, kubectl, tmp_path_factory):
    """{task: (the TrainingRun, the served ModelVersion, its predictions, the judged policy)}."""
    for document in example_documents() + binary_documents(tmp_path_factory.mktemp("every-task")):
        apply(kubectl, document, NAMESPACE)
    runs = {}
    for task in TASKS:
        run = wait_for(lambda: finished(kubectl, f"{task}-initial", NAMESPACE), timeout=420,
                       message=f"TrainingRun {task}-initial finished")
        assert run["status"]["phase"] == "Succeeded", run["status"]
        runs[task] = run
    served = {task: serve_and_label(kubectl, task) for task in TASKS}
    policies = {task: wait_for(lambda: judged(kubectl, task), timeout=120,
                               message=f"{task}-quality judged on {ROWS} labels") for task in TASKS}
    return {task: (runs[task], *served[task], policies[task]) for task in TASKS}


def test_each_task_trains_on_its_dataset_and_registers_a_production_model_with_the_metrics_that_fit(loop, kubectl):
    expected = {"churn": ("classification", {"f1", "f1_macro", "accuracy", "roc_auc", "log_loss"}),
                "wine": ("classification", {"f1", "f1_macro", "accuracy", "roc_auc", "log_loss"}),
                "diabetes": ("regression", {"r2", "rmse", "mae"})}
    for task, (run, version, _, _) in loop.items():
        kind, metrics = expected[task]
        assert version["spec"]["task"] == kind, task
        assert metrics <= set(version["spec"]["metrics"]), (task, version["spec"]["metrics"])
        assert version["status"]["stage"] == "Production", task
        assert version["spec"]["lineage"]["trainingRun"] == f"{task}-initial"


def test_each_served_model_answers_with_its_tasks_kind_of_prediction(loop):
    _, _, churn, _ = loop["churn"]
    _, _, wine, _ = loop["wine"]
    _, _, diabetes, _ = loop["diabetes"]
    assert len(churn) == len(wine) == len(diabetes) == ROWS
    assert set(churn) <= {0, 1} and set(wine) <= {0, 1, 2} and len(set(wine)) > 1
    assert all(isinstance(value, float) for value in diabetes) and len(set(diabetes)) > ROWS // 2


def test_binary_is_judged_on_macro_f1_over_the_feedback_and_passes(loop):
    last = loop["churn"][3]["status"]["lastEvaluation"]
    assert {"f1", "f1_macro", "accuracy", "precision", "recall", "roc_auc", "log_loss"} <= set(last["metrics"])
    assert last["metrics"]["f1_macro"] >= 0.5
    assert last["reason"] == "Healthy" and not last["breached"]
    assert f"f1_macro={last['metrics']['f1_macro']:.4g} >= 0.5 over {ROWS} labelled" in last["message"]


def test_multiclass_with_wrong_labels_breaches_on_log_loss_which_is_lower_is_better(loop, kubectl):
    policy = loop["wine"][3]
    last = policy["status"]["lastEvaluation"]
    assert {"f1", "f1_macro", "accuracy", "roc_auc", "log_loss"} <= set(last["metrics"])
    assert last["metrics"]["log_loss"] > 0.7 and last["metrics"]["f1_macro"] < 0.2
    assert last["reason"] == "QualityBelowThreshold" and last["breached"]
    assert f"log_loss={last['metrics']['log_loss']:.4g} > 0.7 over {ROWS} labelled" in last["message"]
    assert condition(policy, "Breached")["status"] == "True"
    events = json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "QualityBelowThreshold" and e["involvedObject"]["name"] == "wine-quality"
               for e in events)


def test_regression_is_judged_on_rmse_with_mae_beside_it_and_passes(loop):
    _, _, predictions, policy = loop["diabetes"]
    last = policy["status"]["lastEvaluation"]
    _, labels = traffic_of("diabetes")
    rmse = float(np.sqrt(np.mean((np.asarray(predictions) - np.asarray(labels)) ** 2)))
    assert last["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-6)
    assert last["metrics"]["mae"] == pytest.approx(float(np.mean(np.abs(np.asarray(predictions) - labels))), rel=1e-6)
    assert last["reason"] == "Healthy" and not last["breached"] and rmse <= 75
    assert f"rmse={last['metrics']['rmse']:.4g} <= 75 over {ROWS} labelled" in last["message"]
