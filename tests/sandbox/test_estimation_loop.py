"""Issue 20's acceptance in the sandbox, driven with kubectl: a Production churn model, traffic
whose inputs shift while no label comes back; the MonitorPolicy (judgeOn: Estimated) breaches
on the F1 it estimates without labels, before any label arrives, and retrains on the new
Dataset version; then the labels arrive and the realized F1 appears beside the estimate.

As in test_monitor_loop, the model server is not involved: the test writes the prediction log
and the feedback to the sandbox S3 in the model server's format, with predictions and
probabilities made by the registered Production model itself."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from kadence.domain.synthetic import churn_frame

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA
from .test_monitor_loop import evaluated_after, serve_production
from .test_training_loop import apply, finished

NAMESPACE = "estimation-loop"
ISVC = "churn"
TARGET = "churned"
THRESHOLD = 0.3


def last_evaluation_after(kubectl, moment: datetime, **expected) -> dict | None:
    return evaluated_after(kubectl, "estimated", moment, NAMESPACE, **expected)


def retrain_runs(kubectl) -> list[dict]:
    return json.loads(kubectl("get", "trainingruns", "-n", NAMESPACE, "-l", "kadence.dev/retrained-by=estimated",
                              "-o", "json").stdout)["items"]


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


@pytest.fixture(scope="module")
def production(operator, kubectl, sandbox_s3, tmp_path_factory):
    return serve_production(kubectl, sandbox_s3, tmp_path_factory.mktemp("estimation"), NAMESPACE)


@pytest.fixture(scope="module")
def scenario(production, kubectl, tmp_path_factory):
    """Healthy traffic; a new Dataset version; then customers the model is unsure about (inputs
    shifted, no labels), then their labels."""
    version, traffic = production
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": "estimated"},
                    "spec": {"inferenceServiceRef": {"name": ISVC}, "interval": "10s",
                             "window": {"lastPredictions": 200},
                             "performance": {"metric": "f1", "threshold": THRESHOLD, "minLabelled": 50,
                                             "judgeOn": "Estimated",
                                             "window": {"labelledPredictions": 200, "maxAge": "1h"}},
                             "actions": {"retrain": {"fromTrainingRun": "base", "cooldown": "1h", "maxPerDay": 2,
                                                     "includeFeedback": False,
                                                     "promotion": {"mode": "Candidate"}}}}}, NAMESPACE)
    moment, _, _, _ = traffic.predict(churn_frame(200, seed=41))
    healthy = wait_for(lambda: last_evaluation_after(kubectl, moment, samples=200), timeout=120,
                       message="an evaluation of healthy traffic")
    # a new validated Dataset version, so that a retrain has something new to learn from
    path = tmp_path_factory.mktemp("more-data") / "more.csv"
    churn_frame(600, seed=12, drift=1.5).to_csv(path, index=False)
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "churn"},
                    "spec": {"source": {"uri": f"file://{path}"}, "schema": SCHEMA}}, NAMESPACE)
    trained_on = version["spec"]["lineage"]["datasetVersion"]
    wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "dataset", "churn"))
             and o["status"].get("latestVersion") not in (None, trained_on), timeout=120,
             message="the new Dataset version")
    # shifted customers the model is unsure about: it predicts no churn with 20-50 % confidence
    pool = churn_frame(30000, seed=43, drift=1.5)  # 8,000 left only 140 in the band for one model
    churn_probability = traffic.model.predict_proba(pool.drop(columns=[TARGET]))[:, -1]
    shifted = pool[(churn_probability >= 0.2) & (churn_probability < 0.5)].head(200)
    assert len(shifted) == 200
    moment, ids, _, probabilities = traffic.predict(shifted)
    breached = wait_for(lambda: last_evaluation_after(kubectl, moment, breached=True), timeout=120,
                        message="a breach on the estimated f1")
    runs = wait_for(lambda: retrain_runs(kubectl), timeout=180, message="the retrain TrainingRun")
    # the labels arrive: drawn from the model's own probabilities (the relation did not change)
    labels = (np.random.default_rng(5).random(len(ids)) < np.asarray(probabilities)).astype(int).tolist()
    traffic.feedback(ids, labels)
    labelled = wait_for(lambda: last_evaluation_after(kubectl, moment, labelledSamples=200), timeout=120,
                        message="an evaluation with the labels")
    return healthy, breached, runs, labelled


def test_healthy_traffic_is_estimated_above_the_threshold_without_any_label(scenario):
    healthy, _, _, _ = scenario
    last = healthy["status"]["lastEvaluation"]
    assert last["labelledSamples"] == 0 and "metrics" not in last
    assert last["estimate"]["method"] == "CBPE" and last["estimate"]["predictions"] == 200
    assert last["estimate"]["metrics"]["f1"] >= THRESHOLD
    assert last["reason"] == "Healthy" and not last["breached"]
    assert "estimated f1=" in last["message"] and ">= 0.3 over 200 predictions without labels" in last["message"]


def test_the_policy_breaches_on_the_estimated_f1_before_any_label_and_retrains(scenario, kubectl):
    _, breached, runs, _ = scenario
    last = breached["status"]["lastEvaluation"]
    assert last["reason"] == "EstimatedQualityBelowThreshold" and last["labelledSamples"] == 0
    assert last["estimate"]["metrics"]["f1"] < THRESHOLD
    assert f"estimated f1={last['estimate']['metrics']['f1']:.4g} < {THRESHOLD:g}" in last["message"]
    assert condition(breached, "Breached")["reason"] == "EstimatedQualityBelowThreshold"
    assert last["predictionDrift"]["count"] == 200
    events = json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "EstimatedQualityBelowThreshold" and e["type"] == "Warning"
               and e["involvedObject"]["name"] == "estimated" for e in events)
    assert len(runs) == 1 and runs[0]["metadata"]["annotations"]["kadence.dev/retrain-trigger"] == "breach"
    assert "estimated f1=" in runs[0]["metadata"]["annotations"]["kadence.dev/retrain-cause"]


def test_once_labels_arrive_the_realized_f1_appears_beside_the_estimate(scenario):
    _, _, _, labelled = scenario
    last = labelled["status"]["lastEvaluation"]
    assert last["labelledSamples"] == 200 and "f1" in last["metrics"] and "f1" in last["estimate"]["metrics"]
    summary = labelled["status"]["metricSummary"]
    assert summary == (f"f1={last['metrics']['f1']:.3g} est={last['estimate']['metrics']['f1']:.3g} "
                       f"(200 labelled)")
    assert last["conceptDrift"]["labelled"] == 200 and last["conceptDrift"]["detected"] is False
    assert last["labelDrift"]["count"] == 200


def test_the_retrain_on_the_new_dataset_version_finishes(scenario, kubectl):
    _, _, runs, _ = scenario
    name = runs[0]["metadata"]["name"]
    done = wait_for(lambda: finished(kubectl, name, NAMESPACE), timeout=300, message="the retrain finished")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    candidate = get_json(kubectl, NAMESPACE, "modelversion", done["status"]["modelVersion"])
    assert candidate["spec"]["estimationReference"]["rows"] > 0
