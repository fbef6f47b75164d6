"""spec.segments in `kadence monitor` (real S3): the quality window per segment and the sensitive
attribute's disparity in the result and the report, a failing segment breaching the policy, and a
challenger refused by the segment gate in champion/challenger."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from kadence.domain.monitoring.logformat import (FeedbackRecord, PredictionRecord, encode_batch, feedback_batch_key,
                                                 prediction_batch_key)

from .test_monitor_workload import HOUR, T, _publish_model, run_monitor, task

SEGMENTS = {"columns": ["region"], "sensitiveAttribute": "gender", "minRows": 40}


def write_segmented_traffic(store, ns: str, n: int = 600, south_accuracy: float = 0.55, seed: int = 3) -> None:
    """Every prediction labelled; right 95% of the time in the north, `south_accuracy` in the south."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    region = rng.choice(["north", "south"], n)
    gender = rng.choice(["f", "m"], n)
    truth = (x + rng.normal(0, 0.5, n) > 0).astype(int)
    right = rng.random(n) < np.where(region == "north", 0.95, south_accuracy)
    predicted = np.where(right, truth, 1 - truth)
    records = [PredictionRecord(request_id=f"{ns}-{i}", time=T - HOUR + timedelta(seconds=5 * i), model_version="1",
                                inputs={"x": float(x[i]), "y": 5.0, "region": str(region[i]), "gender": str(gender[i])},
                                outputs={"prediction": int(predicted[i]),
                                         "probabilities": [0.2, 0.8] if predicted[i] else [0.8, 0.2]})
               for i in range(n)]
    store.put_bytes(prediction_batch_key(ns, "churn", "1", records[0].time), encode_batch(records))
    feedback = [FeedbackRecord(request_id=r.request_id, time=r.time + timedelta(minutes=1), label=int(t))
                for r, t in zip(records, truth)]
    store.put_bytes(feedback_batch_key(ns, "churn", feedback[0].time), encode_batch(feedback))


def test_a_segment_under_min_segment_metric_breaches_the_policy_naming_it(store, s3_env, tmp_path):
    write_segmented_traffic(store, "seg-breach")
    code, result = run_monitor(tmp_path, task("seg-breach", None, drift=None,
                                              segments={**SEGMENTS, "minSegmentMetric": 0.7}))
    assert code == 0, result["message"]
    assert result["metrics"]["f1"] > 0.55  # the whole window passes: only the segment gate breaches
    assert result["breached"] is True and result["reason"] == "SegmentBelowThreshold"
    assert result["message"].startswith("segment region=south: f1=")
    segments = {(s["column"], s["segment"]): s for s in result["segments"]["segments"]}
    assert segments[("region", "north")]["value"] > 0.9 > 0.7 > segments[("region", "south")]["value"]
    assert segments[("region", "south")]["rows"] + segments[("region", "north")]["rows"] == 600
    assert {("gender", "f"), ("gender", "m")} <= set(segments)  # the sensitive attribute per group too
    disparity = result["segments"]["disparity"]
    assert disparity["attribute"] == "gender" and disparity["groups"] == 2
    assert 0 <= disparity["demographicParityDifference"] < 0.2  # gender is not what the model errs on
    report = store.get_bytes(store.key_of(result["reportUri"])).decode()
    assert "<h2>Segments</h2>" in report and "<td>region</td><td>south</td>" in report and "equalized-odds" in report


def test_segments_within_their_gates_leave_the_policy_healthy(store, s3_env, tmp_path):
    write_segmented_traffic(store, "seg-healthy", south_accuracy=0.93)
    code, result = run_monitor(tmp_path, task("seg-healthy", None, drift=None,
                                              segments={**SEGMENTS, "minSegmentMetric": 0.7, "maxDisparity": 0.3}))
    assert code == 0 and result["breached"] is False and result["reason"] == "Healthy"
    assert result["segments"]["reason"] == "SegmentsPassed" and result["segments"]["passed"] is True


def test_a_challenger_that_fails_the_segment_gate_is_refused_with_the_worst_segment(store, s3_env, tmp_path):
    champion = _publish_model(store, "models/seg-compare/churn/1/model.skops", shift=1.0, seed=11)
    challenger = _publish_model(store, "models/seg-compare/churn/2/model.skops", shift=0.0, seed=12)
    write_segmented_traffic(store, "seg-compare")
    code, result = run_monitor(tmp_path, task("seg-compare", None, drift=None,
                                              segments={**SEGMENTS, "minSegmentMetric": 0.99},
                                              compare={"champion": champion, "challenger": challenger}))
    assert code == 0, result["message"]
    comparison = result["comparison"]
    assert comparison["challenger"] > comparison["champion"]  # it beats the champion overall ...
    assert comparison["allowed"] is False and comparison["reason"] == "SegmentBelowThreshold"  # ... but not per segment
    assert "the candidate fails spec.segments: segment " in comparison["message"]
    assert comparison["segments"]["passed"] is False and comparison["segments"]["metric"] == "f1"
