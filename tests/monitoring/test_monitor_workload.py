"""`kadence monitor` end to end against a real S3 (SeaweedFS) with synthetic logs and feedback."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from kadence.domain.monitoring.logformat import (
    FeedbackRecord,
    PredictionRecord,
    encode_batch,
    feedback_batch_key,
    prediction_batch_key,
)
from kadence.workloads.monitor_run import run_from_args

T = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def write_reference(store, key: str, seed: int = 0, rows: int = 5000, ids: bool = False) -> str:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(0, 1, rows), "y": rng.normal(5, 2, rows),
                          "plan": rng.choice(["basic", "pro"], rows, p=[0.7, 0.3]),
                          "label": rng.integers(0, 2, rows)})
    if ids:
        frame.insert(0, "customer_id", np.arange(rows))
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return store.put_bytes(key, buffer.getvalue())


def write_traffic(store, ns: str, isvc: str, *, n: int, start: datetime, end: datetime, shift: float = 0.0,
                  accuracy: float = 0.9, labelled_share: float = 0.8, version: str = "1", seed: int = 1,
                  batch_size: int = 100, first_id: int | None = None) -> list[PredictionRecord]:
    """`first_id`: also log a `customer_id` input, counting from it (new customers, so unlike
    the reference's ids)."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, (end - start).total_seconds(), n))
    x = rng.normal(shift, 1, n)
    y = rng.normal(5 + 2 * shift, 2, n)
    moved = 0.4 * min(abs(shift), 1.0)
    plan = rng.choice(["basic", "pro"], n, p=[0.7 - moved, 0.3 + moved])
    truth = (x + rng.normal(0, 0.5, n) > shift).astype(int)
    correct = rng.random(n) < accuracy
    predicted = np.where(correct, truth, 1 - truth)
    records = []
    for i in range(n):
        p = 0.8 if predicted[i] == 1 else 0.2
        records.append(PredictionRecord(
            request_id=f"{seed}-{version}-{i}-{int(rng.integers(0, 2**62)):x}",
            time=start + timedelta(seconds=float(offsets[i])),
            model_version=version,
            inputs={**({"customer_id": first_id + i} if first_id is not None else {}),
                    "x": float(x[i]), "y": float(y[i]), "plan": str(plan[i])},
            outputs={"prediction": int(predicted[i]), "probabilities": [1 - p, p]}))
    for i in range(0, n, batch_size):
        batch = records[i:i + batch_size]
        store.put_bytes(prediction_batch_key(ns, isvc, version, batch[0].time), encode_batch(batch))
    labelled = [(r, int(t)) for r, t in zip(records, truth) if rng.random() < labelled_share]
    feedback = [FeedbackRecord(request_id=r.request_id, time=min(r.time + timedelta(minutes=5), end), label=label)
                for r, label in labelled]
    for i in range(0, len(feedback), batch_size):
        batch = feedback[i:i + batch_size]
        store.put_bytes(feedback_batch_key(ns, isvc, batch[0].time), encode_batch(batch))
    return records


def task(ns: str, reference_uri: str | None, **overrides) -> dict:
    body = {
        "namespace": ns, "policy": "churn-monitor", "inferenceService": "churn", "time": T.isoformat(),
        "window": {"durationSeconds": 3600},
        "drift": {"method": "psi", "minSamples": 100},
        "performance": {"metric": "f1", "threshold": 0.55, "minLabelled": 50},
        "referenceUri": reference_uri, "excludeColumns": ["label"],
    }
    return body | overrides


def run_monitor(tmp_path, body: dict) -> tuple[int, dict]:
    path = tmp_path / f"task-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(body))
    out = io.StringIO()
    code = run_from_args(argparse.Namespace(task=str(path)), "KADENCE_TASK", out)
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference_uri(store):
    return write_reference(store, "datasets/monitor-tests/churn/v1/sample.parquet")


def test_healthy_traffic_is_judged_healthy_and_the_report_is_written(store, s3_env, tmp_path, reference_uri):
    write_traffic(store, "healthy", "churn", n=600, start=T - HOUR, end=T)
    # traffic outside the window must not count
    write_traffic(store, "healthy", "churn", n=200, start=T - 3 * HOUR, end=T - 2 * HOUR, shift=3.0, seed=9)
    code, result = run_monitor(tmp_path, task("healthy", reference_uri))
    assert code == 0
    assert result["reason"] == "Healthy" and result["breached"] is False
    assert result["samples"] == 600  # the drift window: the last hour
    assert result["driftWindow"] == {"predictions": 600, "start": "2026-11-23T11:00:00Z", "end": "2026-11-23T12:00:00Z"}
    # the quality window: every labelled prediction of the retention (30 days), the earlier traffic too
    assert 560 < result["labelledSamples"] < 720
    quality = result["qualityWindow"]
    assert quality["labelled"] == result["labelledSamples"] and quality["limit"] == 2000
    assert quality["retentionStart"] == "2026-10-24T12:00:00Z"
    assert quality["start"] < "2026-11-23T10:00:00Z" <= quality["end"]
    assert 0 < quality["labelDelayP50Seconds"] <= quality["labelDelayP95Seconds"] <= 300
    assert result["driftedFeatures"] == []
    assert set(result["driftScores"]) == {"x", "y", "plan"}
    assert result["metrics"]["f1"] > 0.8 and "roc_auc" in result["metrics"]
    assert result["modelVersions"] == {"1": 600}
    prefix = "monitoring/healthy/churn-monitor/20261123T120000Z/"
    assert json.loads(store.get_bytes(prefix + "result.json")) == result
    page = store.get_bytes(prefix + "report.html").decode()
    assert page.count("<svg") >= 4 and "Healthy" in page  # 3 histograms and the f1 line
    report = json.loads(store.get_bytes(prefix + "report.json"))
    assert set(report["histograms"]) == {"x", "y", "plan"}
    for histogram in report["histograms"].values():
        assert sum(histogram["reference"]) == pytest.approx(1.0, abs=0.01)
        assert sum(histogram["current"]) == pytest.approx(1.0)
    assert result["reportUri"] == store.uri(prefix + "report.html")


def test_drifted_traffic_with_poor_predictions_breaches_on_both(store, s3_env, tmp_path, reference_uri):
    write_traffic(store, "drifted", "churn", n=600, start=T - HOUR, end=T, shift=1.0, accuracy=0.4)
    code, result = run_monitor(tmp_path, task("drifted", reference_uri))
    assert code == 0
    assert result["reason"] == "DriftAndQualityBreached" and result["breached"] is True
    assert set(result["driftedFeatures"]) == {"x", "y", "plan"}
    assert result["quality"]["reason"] == "QualityBelowThreshold"
    assert result["metrics"]["f1"] < 0.55
    assert result["drift"]["message"].startswith("3/3 features drifted")


def test_too_few_samples_and_labels_are_reported_as_such_not_as_healthy(store, s3_env, tmp_path, reference_uri):
    write_traffic(store, "sparse", "churn", n=40, start=T - HOUR, end=T, labelled_share=0.5)
    code, result = run_monitor(tmp_path, task("sparse", reference_uri))
    assert code == 0
    assert result["breached"] is False
    assert result["reason"] == "TooFewLabels"
    assert result["drift"]["reason"] == "TooFewSamples"
    assert "40 predictions in the window, 100 needed" in result["message"]


def test_an_empty_window_reports_no_predictions_and_no_feedback(store, s3_env, tmp_path, reference_uri):
    code, result = run_monitor(tmp_path, task("silent", reference_uri))
    assert code == 0
    assert result["samples"] == 0 and result["breached"] is False
    assert result["reason"] == "NoFeedback"
    assert result["drift"]["reason"] == "NoPredictions"


def test_a_missing_reference_is_reported_and_quality_is_still_judged(store, s3_env, tmp_path):
    write_traffic(store, "noref", "churn", n=300, start=T - HOUR, end=T, accuracy=0.3)
    code, result = run_monitor(tmp_path, task("noref", store.uri("datasets/none/profile.json")))
    assert code == 0
    assert result["drift"]["reason"] == "MissingReference"
    assert "datasets/none/profile.json" in result["drift"]["message"]
    assert result["reason"] == "QualityBelowThreshold" and result["breached"] is True


def test_a_profile_reference_and_a_last_n_window_work_together(store, s3_env, tmp_path):
    from kadence.domain.data.profile import profile_frame

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 4000), "y": rng.normal(5, 2, 4000),
                          "plan": rng.choice(["basic", "pro"], 4000, p=[0.7, 0.3])})
    uri = store.put_bytes("datasets/lastn/churn/v1/profile.json", json.dumps(profile_frame(frame)).encode())
    write_traffic(store, "lastn", "churn", n=300, start=T - 3 * HOUR, end=T - 2 * HOUR, shift=2.0, seed=4)
    write_traffic(store, "lastn", "churn", n=250, start=T - HOUR, end=T, seed=5, version="2")
    code, result = run_monitor(tmp_path, task("lastn", uri, window={"lastPredictions": 200},
                                              performance=None))
    assert code == 0
    assert result["samples"] == 200 and result["modelVersions"] == {"2": 200}
    assert result["reason"] == "Healthy", result["message"]
    code, result = run_monitor(tmp_path, task("lastn", uri, window={"lastPredictions": 400}, performance=None))
    assert result["modelVersions"] == {"1": 150, "2": 250}
    assert result["reason"] == "DriftDetected"


def test_drift_is_judged_on_the_models_features_only_and_the_export_keeps_every_input(store, s3_env, tmp_path):
    uri = write_reference(store, "datasets/features/churn/v1/sample.parquet", ids=True)
    write_traffic(store, "features", "churn", n=400, start=T - HOUR, end=T, first_id=100_000)
    every_column = task("features", uri, feedbackExport={"target": "label"})
    code, unlisted = run_monitor(tmp_path, every_column)
    assert code == 0 and unlisted["driftedFeatures"] == ["customer_id"]  # new ids look like drift

    listed = every_column | {"features": ["x", "y", "plan", "tenure"],
                             "time": (T + timedelta(seconds=1)).isoformat()}
    code, result = run_monitor(tmp_path, listed)
    assert code == 0, result["message"]
    assert set(result["driftScores"]) == {"x", "y", "plan"} and result["driftedFeatures"] == []
    assert result["drift"]["reason"] == "NoDrift" and result["drift"]["message"].startswith("0/3 features")
    features = {f["feature"]: f for f in result["features"]}
    assert list(features) == ["x", "y", "plan", "tenure"]
    assert features["tenure"]["status"] == "NoReference"
    assert features["tenure"]["message"] == ("'tenure' is not a column of the drift reference, nor an input "
                                             "logged with any prediction in the window")
    exported = pd.read_parquet(io.BytesIO(store.get_bytes(store.key_of(result["feedbackExport"]["uri"]))))
    assert list(exported.columns) == ["customer_id", "x", "y", "plan", "label"]
    assert exported["customer_id"].min() >= 100_000
    report = json.loads(store.get_bytes(store.key_of(result["reportUri"]).replace("report.html", "report.json")))
    assert set(report["histograms"]) == {"x", "y", "plan"}


def test_the_report_shows_the_metric_over_previous_evaluations(store, s3_env, tmp_path, reference_uri):
    for hour, accuracy in ((3, 0.95), (2, 0.8), (1, 0.6)):
        write_traffic(store, "history", "churn", n=300, start=T - (hour + 1) * HOUR, end=T - hour * HOUR,
                      accuracy=accuracy, seed=hour)
        run_monitor(tmp_path, task("history", reference_uri, time=(T - hour * HOUR).isoformat()))
    write_traffic(store, "history", "churn", n=300, start=T - HOUR, end=T, accuracy=0.4, seed=0)
    code, result = run_monitor(tmp_path, task("history", reference_uri))
    report = json.loads(store.get_bytes("monitoring/history/churn-monitor/20261123T120000Z/report.json"))
    f1s = [h["metrics"]["f1"] for h in report["history"]] + [result["metrics"]["f1"]]
    assert len(f1s) == 4 and f1s == sorted(f1s, reverse=True)
    page = store.get_bytes("monitoring/history/churn-monitor/20261123T120000Z/report.html").decode()
    assert "<polyline" in page and "threshold 0.55" in page


def test_a_malformed_log_batch_fails_the_job_naming_the_object(store, s3_env, tmp_path, reference_uri):
    key = prediction_batch_key("broken", "churn", "1", T - timedelta(minutes=5), batch_id="bad")
    store.put_bytes(key, b"not gzip")
    code, result = run_monitor(tmp_path, task("broken", reference_uri))
    assert code == 2
    assert result["outcome"] == "Error" and key in result["message"]
    assert json.loads(store.get_bytes("monitoring/broken/churn-monitor/20261123T120000Z/result.json")) == result


def test_the_kadence_monitor_command_runs_in_its_own_process(store, s3_env, tmp_path, reference_uri):
    write_traffic(store, "cli", "churn", n=200, start=T - HOUR, end=T)
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task("cli", reference_uri)))
    done = subprocess.run([sys.executable, "-m", "kadence", "monitor", "--task", str(path)],
                          capture_output=True, text=True, env={**__import__("os").environ, **s3_env}, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["samples"] == 200 and result["outcome"] == "Evaluated"


def _publish_model(store, key: str, shift: float, seed: int) -> dict:
    """A logistic regression trained on the concept of `shift` (label = x + noise > shift)."""
    import hashlib

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, 2000)
    frame = pd.DataFrame({"x": x, "y": rng.normal(5, 2, 2000)})
    target = (x + rng.normal(0, 0.5, 2000) > shift).astype(int)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, target)
    data = sio.dumps(pipeline)
    return {"version": key.split("/")[-2], "uri": store.put_bytes(key, data),
            "sha256": hashlib.sha256(data).hexdigest()}


def test_a_challenger_that_learned_the_new_concept_beats_the_champion_on_the_same_rows(store, s3_env, tmp_path,
                                                                                      reference_uri):
    champion = _publish_model(store, "models/compare/churn/1/model.skops", shift=0.0, seed=11)
    challenger = _publish_model(store, "models/compare/churn/2/model.skops", shift=1.0, seed=12)
    write_traffic(store, "compare", "churn", n=400, start=T - HOUR, end=T, shift=1.0, accuracy=0.5)
    body = task("compare", reference_uri, compare={"champion": champion, "challenger": challenger},
                feedbackExport={"target": "churned"})
    code, result = run_monitor(tmp_path, body)
    assert code == 0, result["message"]
    comparison = result["comparison"]
    assert comparison["reason"] == "ChallengerBeatsChampion" and comparison["allowed"] is True
    assert comparison["challenger"] > comparison["champion"] + 0.05
    assert comparison["labelled"] == result["labelledSamples"]
    exported = pd.read_parquet(io.BytesIO(store.get_bytes(store.key_of(result["feedbackExport"]["uri"]))))
    assert list(exported.columns) == ["x", "y", "plan", "churned"]
    assert len(exported) == result["feedbackExport"]["rows"] == result["labelledSamples"]


def test_a_challenger_no_better_than_the_champion_is_refused_with_both_scores(store, s3_env, tmp_path, reference_uri):
    champion = _publish_model(store, "models/tie/churn/1/model.skops", shift=0.0, seed=11)
    write_traffic(store, "tie", "churn", n=300, start=T - HOUR, end=T)
    code, result = run_monitor(tmp_path, task("tie", reference_uri,
                                              compare={"champion": champion, "challenger": champion}))
    assert code == 0
    comparison = result["comparison"]
    assert comparison["reason"] == "ChallengerNotBetter" and comparison["allowed"] is False
    assert comparison["champion"] == comparison["challenger"]
    assert f"vs Production {comparison['champion']:.4g}" in comparison["message"]


def test_a_challenger_whose_artifact_does_not_match_its_sha256_fails_the_job(store, s3_env, tmp_path, reference_uri):
    champion = _publish_model(store, "models/tampered/churn/1/model.skops", shift=0.0, seed=11)
    write_traffic(store, "tampered", "churn", n=100, start=T - HOUR, end=T)
    tampered = champion | {"sha256": "0" * 64}
    code, result = run_monitor(tmp_path, task("tampered", reference_uri,
                                              compare={"champion": champion, "challenger": tampered}))
    assert code == 2 and "sha256" in result["message"]


def test_the_planners_task_runs_in_the_workload_and_its_result_drives_a_retrain(store, s3_env, tmp_path,
                                                                                reference_uri):
    """Planner -> task ConfigMap -> kadence monitor against S3 -> result.json -> planner."""
    from kadence.planners.monitorpolicy import (
        RESULT_KEY_ANNOTATION,
        RETRAIN_TRIGGER_ANNOTATION,
        ModelInfo,
        MonitorContext,
        MonitorObservation,
        plan_monitorpolicy,
    )
    from kadence.planners.monitorpolicy.model import RetrainData

    training = {"datasetRef": {"name": "churn"}, "task": "classification", "objective": {"metric": "f1"},
                "model": "churn"}
    body = {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy",
            "metadata": {"name": "loop", "namespace": "loop", "uid": "u", "generation": 1,
                         "creationTimestamp": "2026-11-01T00:00:00Z"},
            "spec": {"inferenceServiceRef": {"name": "churn"}, "interval": "5m", "window": {"duration": "1h"},
                     "drift": {"method": "psi"}, "performance": {"metric": "f1", "threshold": 0.55},
                     "actions": {"retrain": {"template": training}}},
            "status": {}}
    production = ModelInfo(model_version="churn-v1", version="1", uri="s3://kadence/m", sha256="c" * 64,
                           holdout_metrics={"f1": 0.9}, reference_uri=reference_uri, target="label")
    # a Dataset that does not fold the policy's feedback in: the retrain trains on it as it is
    context = MonitorContext(production=production, retrain_spec=training,
                             retrain_data=RetrainData(dataset="churn", latest_version="v1", versions=("v1",)))
    now = T + timedelta(minutes=2)
    write_traffic(store, "loop", "churn", n=500, start=T - HOUR, end=T, shift=1.0, accuracy=0.4)

    first = plan_monitorpolicy(body, MonitorObservation(), context, now)
    configmap, job = first.children[0], first.children[1]
    task_path = tmp_path / "planned-task.json"
    task_path.write_text(configmap["data"]["task.json"])
    out = io.StringIO()
    assert run_from_args(argparse.Namespace(task=str(task_path)), "KADENCE_TASK", out) == 0
    key = job["metadata"]["annotations"][RESULT_KEY_ANNOTATION]
    result = json.loads(store.get_bytes(key))
    assert result["breached"] and "label" not in result["driftScores"]
    assert result["feedbackExport"]["uri"].endswith("feedback.parquet") and result["feedbackExport"]["rows"] > 0

    job["status"] = {"succeeded": 1}
    second = plan_monitorpolicy(body, MonitorObservation([job], {job["metadata"]["name"]: result}), context,
                                now + timedelta(seconds=30))
    runs = [c for c in second.children if c["kind"] == "TrainingRun"]
    assert len(runs) == 1 and runs[0]["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "breach"
    assert second.status["lastEvaluation"]["reason"] == "DriftAndQualityBreached"
    # status says what each window covered
    evaluation = second.status["lastEvaluation"]
    assert evaluation["driftWindow"] == result["driftWindow"] and evaluation["driftWindow"]["predictions"] == 500
    assert evaluation["qualityWindow"] == result["qualityWindow"]
    assert evaluation["qualityWindow"]["labelled"] == result["labelledSamples"] > 0
