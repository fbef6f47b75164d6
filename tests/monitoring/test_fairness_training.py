"""spec.segments on a TrainingRun: `kadence train` reports the hold-out per segment and the
sensitive attribute's disparity (real S3), and a failed gate keeps the model Candidate."""

from __future__ import annotations

import pytest

from kadence.planners.trainingrun import TrainingRunObservation, plan_trainingrun

from ..training.datagen import CHURN_COLUMNS, churn_frame, put_dataset
from ..training.test_planners import NOW, model_version, result, run_body
from kadence.workloads.train_task import TrainTask
from kadence.workloads.trainer import train

FAILED = {"metric": "f1", "segments": [{"column": "plan", "segment": "basic", "rows": 80, "value": 0.41,
                                        "judged": True}],
          "passed": False, "reason": "SegmentBelowThreshold",
          "message": "segment plan=basic: f1=0.41 < minSegmentMetric 0.6 over 80 rows (1 of 3 judged segments fail)"}


def test_a_model_failing_the_segment_gate_is_registered_as_candidate_naming_the_segment():
    body = run_body(status={"attempt": 1}, promotion={"mode": "Auto", "targetStage": "Production"})
    current = model_version("churn-v1", 1, stage="Production", metrics={"f1": 0.7})
    plan = plan_trainingrun(body, TrainingRunObservation(result={**result(f1=0.8), "segments": FAILED},
                                                         model_versions=[current]), NOW)
    assert plan.registration.spec["stage"] == "Candidate"  # it beats Production, but not in every segment
    assert plan.registration.reason.startswith("SegmentBelowThreshold: kept as Candidate: the hold-out fails "
                                               "spec.segments: segment plan=basic: f1=0.41")
    assert plan.status_patch()["segments"]["reason"] == "SegmentBelowThreshold"


def test_a_model_passing_the_segment_gate_is_promoted_as_before():
    body = run_body(status={"attempt": 1}, promotion={"mode": "Auto", "targetStage": "Production"})
    passed = {**FAILED, "passed": True, "reason": "SegmentsPassed", "message": "worst segment plan=basic f1=0.71"}
    plan = plan_trainingrun(body, TrainingRunObservation(result={**result(f1=0.8), "segments": passed},
                                                         model_versions=[]), NOW)
    assert plan.registration.spec["stage"] == "Production"


@pytest.fixture(scope="module")
def segmented(store):
    uri = put_dataset(store, "ml", "churn-seg", "v1seg", churn_frame(rows=400, seed=5), CHURN_COLUMNS, "churned",
                      "customer_id")
    task = TrainTask.model_validate({
        "namespace": "ml", "run": "churn-seg",
        "spec": {"datasetRef": {"name": "churn-seg"}, "task": "classification", "objective": {"metric": "f1"},
                 "search": {"maxTrials": 2, "families": [{"name": "logistic_regression"}]}, "cvFolds": 2,
                 "model": "churn", "segments": {"columns": ["plan", "region"], "sensitiveAttribute": "paperless",
                                                "minRows": 10, "minSegmentMetric": 0.99, "maxDisparity": 0.9}},
        "input": {"kind": "Dataset", "name": "churn-seg", "version": "v1seg", "uri": uri}})
    return train(task, store, log=lambda line: None)


def test_training_reports_the_holdout_metric_per_segment_and_the_disparity(segmented):
    segments = segmented.segments
    assert segments.metric == "f1"
    by_plan = {s.segment: s for s in segments.segments if s.column == "plan"}
    assert set(by_plan) == {"basic", "plus", "premium"}
    holdout = sum(s.rows for s in by_plan.values())
    assert holdout == sum(s.rows for s in segments.segments if s.column == "paperless") > 0
    assert segments.disparity.attribute == "paperless" and segments.disparity.groups == 2
    assert segments.disparity.demographic_parity_difference is not None
    assert segments.skipped == {"region": "column 'region' is not in the data"}


def test_a_segment_under_min_segment_metric_fails_the_training_gate_with_its_numbers(segmented):
    segments = segmented.segments
    assert (segments.passed, segments.reason) == (False, "SegmentBelowThreshold")
    worst = min((s for s in segments.segments if s.judged), key=lambda s: s.value)
    assert segments.message.startswith(f"segment {worst.column}={worst.segment}: f1={worst.value:.4g} < "
                                       f"minSegmentMetric 0.99 over {worst.rows} rows")
