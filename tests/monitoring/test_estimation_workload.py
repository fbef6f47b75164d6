"""`kadence monitor` estimating performance without labels against a real S3 (SeaweedFS): the
estimate beside the realized metric, judgeOn, concept, label and prediction drift."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from kadence.domain.monitoring.estimation import reference_frame
from kadence.domain.monitoring.logformat import (
    FeedbackRecord,
    PredictionRecord,
    encode_batch,
    feedback_batch_key,
    prediction_batch_key,
)
from kadence.serving.artifact import sha256_hex

from .test_monitor_workload import HOUR, T, run_monitor


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture(scope="module")
def estimation_reference(store):
    """The model's hold-out: x ~ N(0, 1), P(y=1) = sigmoid(2x), the model serves that probability."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 2000)
    p = sigmoid(2 * x)
    labels = (rng.random(2000) < p).astype(int)
    data = reference_frame(labels, (p > 0.5).astype(int), np.column_stack([1 - p, p]), None)
    uri = store.put_bytes("training/estimation-tests/run/estimation-reference.parquet", data)
    return {"uri": uri, "sha256": sha256_hex(data), "rows": 2000}


def write_traffic(store, ns: str, *, n: int, shift: float, labelled: bool, flip: bool = False, seed: int = 1):
    """Served predictions of the reference's model in the last hour, on inputs around `shift`;
    with `labelled`, their labels too (the mirror relation when `flip`: concept shift)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    p = sigmoid(2 * x)
    truth = (rng.random(n) < (1 - p if flip else p)).astype(int)
    records = [PredictionRecord(request_id=f"{ns}-{seed}-{i}", time=T - HOUR + timedelta(seconds=(i + 1) * 3600 / (n + 1)),
                                model_version="1", inputs={"x": float(x[i])},
                                outputs={"prediction": int(p[i] > 0.5), "probabilities": [1 - p[i], p[i]]})
               for i in range(n)]
    for i in range(0, n, 250):
        store.put_bytes(prediction_batch_key(ns, "churn", "1", records[i].time), encode_batch(records[i:i + 250]))
    if labelled:
        feedback = [FeedbackRecord(request_id=r.request_id, time=T - timedelta(minutes=1), label=int(t))
                    for r, t in zip(records, truth)]
        for i in range(0, n, 250):
            store.put_bytes(feedback_batch_key(ns, "churn", feedback[i].time), encode_batch(feedback[i:i + 250]))


def task(ns: str, reference: dict | None, judge_on: str = "Realized") -> dict:
    body = {"namespace": ns, "policy": "churn-monitor", "inferenceService": "churn", "time": T.isoformat(),
            "window": {"durationSeconds": 3600}, "classes": ["0", "1"],
            "performance": {"metric": "f1", "threshold": 0.55, "minLabelled": 50, "judgeOn": judge_on}}
    if reference is not None:
        body |= {"estimationReference": reference, "estimationVersion": "1"}
    return body


def test_shifted_inputs_without_labels_breach_on_the_estimated_f1(store, s3_env, tmp_path, estimation_reference):
    write_traffic(store, "est-shift", n=1500, shift=-2.0, labelled=False)
    code, result = run_monitor(tmp_path, task("est-shift", estimation_reference, judge_on="Estimated"))
    assert code == 0
    assert result["breached"] is True and result["reason"] == "EstimatedQualityBelowThreshold"
    estimate = result["estimate"]
    assert estimate["method"] == "CBPE" and estimate["predictions"] == 1500
    assert 0.2 < estimate["metrics"]["f1"] < 0.45  # realized f1 of this population is about 0.31
    assert set(estimate["metrics"]) == {"accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "log_loss"}
    assert result["labelledSamples"] == 0 and result["metrics"] == {}
    assert f"estimated f1={estimate['metrics']['f1']:.4g} < 0.55 over 1500 predictions without labels" \
        in result["message"]
    assert "no labelled predictions" in result["message"]
    assert result["predictionDrift"]["drifted"] is True and result["predictionDrift"]["count"] == 1500
    assert "labelDrift" not in result and "conceptDrift" not in result
    page = store.get_bytes(store.key_of(result["reportUri"])).decode()
    assert "estimated without labels (1500 predictions, CBPE)" in page and "Prediction drift" in page


def test_by_default_the_breach_is_still_judged_on_labels_and_the_estimate_is_reported_beside(
        store, s3_env, tmp_path, estimation_reference):
    write_traffic(store, "est-default", n=1500, shift=-2.0, labelled=False)
    code, result = run_monitor(tmp_path, task("est-default", estimation_reference))
    assert code == 0 and result["breached"] is False and result["reason"] == "NoFeedback"
    assert result["estimate"]["metrics"]["f1"] < 0.55
    code, either = run_monitor(tmp_path, task("est-default", estimation_reference, judge_on="Either"))
    assert either["breached"] is True and either["reason"] == "EstimatedQualityBelowThreshold"


def test_labels_that_contradict_the_model_s_confidence_are_concept_drift_with_the_numbers(
        store, s3_env, tmp_path, estimation_reference):
    write_traffic(store, "est-concept", n=1500, shift=0.0, labelled=True, flip=True)
    code, result = run_monitor(tmp_path, task("est-concept", estimation_reference))
    assert code == 0 and result["reason"] == "QualityBelowThreshold"
    realized, estimated = result["metrics"]["f1"], result["estimate"]["metrics"]["f1"]
    assert realized < 0.3 and estimated > 0.7  # the inputs look as expected; the relation changed
    concept = result["conceptDrift"]
    assert concept["detected"] is True and concept["labelled"] == 1500
    assert concept["realized"] == pytest.approx(realized) and concept["gap"] > 0.4
    assert "concept drift: realized f1=" in result["message"]
    assert result["labelDrift"]["count"] == 1500 and result["predictionDrift"]["drifted"] is False
    report = json.loads(store.get_bytes(store.key_of(result["reportUri"]).replace("report.html", "report.json")))
    assert report["result"]["conceptDrift"]["detected"] is True


def test_labels_that_agree_with_the_model_s_confidence_are_no_concept_drift(store, s3_env, tmp_path,
                                                                             estimation_reference):
    write_traffic(store, "est-agree", n=1500, shift=-1.0, labelled=True)
    code, result = run_monitor(tmp_path, task("est-agree", estimation_reference, judge_on="Either"))
    assert result["conceptDrift"]["detected"] is False
    assert result["metrics"]["f1"] == pytest.approx(result["estimate"]["metrics"]["f1"], abs=0.06)
    assert "concept drift:" not in result["message"]


def test_without_an_estimation_reference_the_estimate_says_why_and_judges_nothing(store, s3_env, tmp_path):
    write_traffic(store, "est-none", n=300, shift=-2.0, labelled=False)
    code, result = run_monitor(tmp_path, task("est-none", None, judge_on="Estimated"))
    assert code == 0 and result["breached"] is False and result["reason"] == "NoEstimate"
    assert "no estimation reference" in result["estimate"]["unavailable"]


def test_a_regressor_s_mae_is_estimated_by_a_loss_model_trained_on_its_hold_out(store, s3_env, tmp_path):
    import pandas as pd

    rng = np.random.default_rng(3)

    def rows(n, shift):  # y = 2x with noise that grows with |x|: inputs far from 0 are served worse
        x = rng.normal(shift, 1, n)
        return x, 2 * x, 2 * x + rng.normal(0, 0.2 + np.abs(x), n)

    x, predictions, labels = rows(1500, 0.0)
    data = reference_frame(labels, predictions, None, pd.DataFrame({"x": x}))
    reference = {"uri": store.put_bytes("training/estimation-tests/regressor/estimation-reference.parquet", data),
                 "sha256": sha256_hex(data), "rows": 1500}
    x, predictions, labels = rows(1000, 1.5)
    records = [PredictionRecord(request_id=f"reg-{i}", time=T - HOUR + timedelta(seconds=(i + 1) * 3),
                                model_version="1", inputs={"x": float(x[i])}, outputs={"prediction": float(p)})
               for i, p in enumerate(predictions)]
    store.put_bytes(prediction_batch_key("est-reg", "churn", "1", records[0].time), encode_batch(records))
    body = task("est-reg", reference, judge_on="Estimated") | {"classes": None}
    body["performance"] |= {"metric": "mae", "threshold": 1.2}
    code, result = run_monitor(tmp_path, {k: v for k, v in body.items() if v is not None})
    assert code == 0 and result["estimate"]["method"] == "DLE"
    realized = float(np.mean(np.abs(labels - predictions)))  # about 1.5, the hold-out's about 0.8: beyond 1.2
    assert result["estimate"]["metrics"]["mae"] == pytest.approx(realized, rel=0.1)
    assert result["reason"] == "EstimatedQualityBelowThreshold" and result["breached"] is True
