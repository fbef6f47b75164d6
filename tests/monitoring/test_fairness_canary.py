"""spec.canary.analysis.quality.segments: the `kadence canary` Job reports each version's segments
on the step's labelled requests (real S3), the operator carries a failed gate into the step's
analysis, and the step fails naming the worst segment."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np

from kadence.api.inferenceservice import Analysis
from kadence.builders.jobs import WorkloadSettings
from kadence.domain.monitoring.logformat import (FeedbackRecord, PredictionRecord, encode_batch, feedback_batch_key,
                                                 prediction_batch_key)
from kadence.domain.rollout import VersionStats, judge
from kadence.handlers.inferenceservice import plan_quality, quality_job_prefix
from kadence.workloads import canary

from ..operator.test_canary_quality import START, STEP, isvc, job

SEGMENTS = {"columns": ["region"], "minRows": 20, "minSegmentMetric": 0.8}


def write_step(store, ns: str, seed: int = 4) -> None:
    """Stable (2) right 95% of the time everywhere; the canary (3) right 95% in the north, 50% in the south."""
    rng = np.random.default_rng(seed)
    records, feedback = [], []
    for version, south in (("2", 0.95), ("3", 0.5)):
        for i in range(200):
            region = "north" if i % 2 else "south"
            truth = int(rng.integers(0, 2))
            right = rng.random() < (0.95 if region == "north" else south)
            record = PredictionRecord(request_id=f"{version}-{i}", time=START + timedelta(seconds=i + 1),
                                      model_version=version, inputs={"x": float(truth), "region": region},
                                      outputs={"prediction": truth if right else 1 - truth, "probabilities": None})
            records.append(record)
            feedback.append(FeedbackRecord(request_id=record.request_id, time=record.time + timedelta(seconds=1),
                                           label=truth))
        store.put_bytes(prediction_batch_key(ns, "churn", version, START), encode_batch(records[-200:]))
    store.put_bytes(feedback_batch_key(ns, "churn", START), encode_batch(feedback))


def test_the_canary_job_reports_each_versions_segments_and_the_failing_one(store):
    write_step(store, "canary-seg")
    task = canary.CanaryQualityTask(namespace="canary-seg", inference_service="churn", versions=["2", "3"],
                                    metric="accuracy", since=START, until=START + timedelta(minutes=10),
                                    result_key="monitoring/canary-seg/churn/canary/x.json", segments=SEGMENTS)
    outcome = canary.evaluate(store, task)
    stable, candidate = outcome.versions["2"], outcome.versions["3"]
    assert stable.segments.passed and stable.segments_failure is None
    south = next(s for s in candidate.segments.segments if s.segment == "south")
    assert south.rows == 100 and south.value < 0.7
    assert candidate.segments_failure.startswith(
        f"SegmentBelowThreshold: segment region=south: accuracy={south.value:.4g} < minSegmentMetric 0.8 over 100 rows")


def test_the_operator_passes_the_gate_to_the_job_and_a_failed_gate_into_the_analysis():
    prefix = quality_job_prefix("churn", STEP)
    failed = {"metric": "accuracy", "segments": [], "passed": False, "reason": "SegmentBelowThreshold",
              "message": "segment region=south: accuracy=0.5 < minSegmentMetric 0.8 over 100 rows"}
    results = {f"{prefix}0": {"since": STEP, "until": STEP, "versions": {
        "2": {"labelled": 200, "value": 0.95}, "3": {"labelled": 200, "value": 0.72, "segments": failed}}}}
    policy = canary.SegmentPolicy.model_validate(SEGMENTS)
    work = plan_quality(isvc(), "accuracy", 1.0, [job(0, "Succeeded")], results, START + timedelta(seconds=31),
                        WorkloadSettings(), policy)
    assert work.segment_failures == {3: "SegmentBelowThreshold: " + failed["message"]}
    task = json.loads(next(iter(work.children[0]["data"].values())))
    assert task["segments"]["minSegmentMetric"] == 0.8


def test_a_canary_failing_its_segment_gate_fails_the_step_even_within_max_drop():
    analysis = Analysis.model_validate({"minRequests": 10, "quality": {"metric": "accuracy", "maxDrop": 0.5,
                                                                       "minLabelled": 30, "segments": SEGMENTS}})
    stable = VersionStats(requests=200, labelled=200, quality=0.95)
    failing = VersionStats(requests=200, labelled=200, quality=0.72,
                           segments_failure="SegmentBelowThreshold: segment region=south: accuracy=0.5 < 0.8")
    verdict = judge(analysis, stable, failing)
    assert verdict.verdict == "fail" and "segments: SegmentBelowThreshold: segment region=south" in verdict.message
    too_few = VersionStats(requests=200, labelled=10, quality=0.72, segments_failure=failing.segments_failure)
    assert judge(analysis, stable, too_few).verdict == "pass"  # not judged on 10 labels
