"""The estimate in the MonitorPolicy's verdicts, task and status (pure)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from kadence.domain.monitoring.policy import Decision, judge_estimate, judge_performance
from kadence.domain.monitoring.metrics import MonitorMetrics
from prometheus_client import CollectorRegistry

from .test_planner import PRODUCTION, condition, context, plan_with

REALIZED_LOW = Decision("QualityBelowThreshold", "f1=0.4 < 0.55 over 200 labelled predictions", True)
REALIZED_OK = Decision("QualityOK", "f1=0.7 >= 0.55 over 200 labelled predictions", False)
NO_LABELS = Decision("NoFeedback", "no labelled predictions in the window yet", False)
ESTIMATED_LOW = Decision("EstimatedQualityBelowThreshold", "estimated f1=0.4 < 0.55 over 500 predictions", True)
ESTIMATED_OK = Decision("EstimatedQualityOK", "estimated f1=0.7 >= 0.55 over 500 predictions", False)
NO_ESTIMATE = Decision("NoEstimate", "no estimate of f1: no reference", False)


@pytest.mark.parametrize("judge_on, realized, estimated, reason, breached", [
    ("Realized", NO_LABELS, ESTIMATED_LOW, "NoFeedback", False),  # today's behaviour: labels decide
    ("Realized", REALIZED_LOW, ESTIMATED_OK, "QualityBelowThreshold", True),
    ("Estimated", NO_LABELS, ESTIMATED_LOW, "EstimatedQualityBelowThreshold", True),
    ("Estimated", REALIZED_LOW, ESTIMATED_OK, "EstimatedQualityOK", False),
    ("Estimated", REALIZED_LOW, NO_ESTIMATE, "NoEstimate", False),  # could not judge, never healthy
    ("Either", NO_LABELS, ESTIMATED_LOW, "EstimatedQualityBelowThreshold", True),
    ("Either", REALIZED_LOW, ESTIMATED_OK, "QualityBelowThreshold", True),
    ("Either", NO_LABELS, ESTIMATED_OK, "EstimatedQualityOK", False),
    ("Either", REALIZED_OK, NO_ESTIMATE, "QualityOK", False),
])
def test_judge_on_says_which_verdict_breaches_and_the_message_gives_both(judge_on, realized, estimated, reason,
                                                                         breached):
    verdict = judge_performance(judge_on, realized, estimated)
    assert (verdict.reason, verdict.breached) == (reason, breached)
    assert realized.message in verdict.message and estimated.message in verdict.message


def test_without_an_estimate_the_realized_verdict_stands_alone():
    assert judge_performance("Estimated", REALIZED_LOW, None) == REALIZED_LOW


@pytest.mark.parametrize("metric, value, predictions, reason", [
    ("f1", 0.4, 500, "EstimatedQualityBelowThreshold"),
    ("f1", 0.6, 500, "EstimatedQualityOK"),
    ("f1", 0.4, 20, "TooFewPredictionsToEstimate"),
    ("f1", None, 500, "NoEstimate"),
    ("mae", 3.0, 500, "EstimatedQualityBelowThreshold"),  # an error above its threshold is worse
])
def test_the_estimate_is_judged_against_the_threshold_once_enough_predictions_were_made(metric, value,
                                                                                        predictions, reason):
    threshold = 0.55 if metric == "f1" else 2.0
    verdict = judge_estimate(metric=metric, threshold=threshold, value=value, predictions=predictions,
                             min_predictions=50, unavailable_because="no reference")
    assert verdict.reason == reason
    assert verdict.breached is (reason == "EstimatedQualityBelowThreshold")
    assert verdict.judged is (reason in ("EstimatedQualityBelowThreshold", "EstimatedQualityOK"))


REFERENCE = {"uri": "s3://kadence/training/ns/base/1/estimation-reference.parquet", "sha256": "c" * 64, "rows": 100}
ESTIMATE = {"metrics": {"f1": 0.61, "accuracy": 0.7}, "predictions": 500, "method": "CBPE"}
CONCEPT = {"detected": True, "metric": "f1", "estimated": 0.8, "realized": 0.5, "gap": 0.3, "noise": 0.05,
           "margin": 0.1, "labelled": 200, "message": "concept drift: realized f1=0.5 vs estimated 0.8"}


def test_the_task_carries_the_production_models_estimation_reference_and_its_logged_version():
    production = dataclasses.replace(PRODUCTION, estimation_reference=REFERENCE)
    task = json.loads(plan_with(jobs=[], ctx=context(production=production)).children[0]["data"]["task.json"])
    assert task["estimationReference"] == REFERENCE and task["estimationVersion"] == "3"
    task = json.loads(plan_with(jobs=[]).children[0]["data"]["task.json"])
    assert "estimationReference" not in task  # a model trained before references were kept


def test_the_estimate_goes_to_status_beside_the_realized_metric_with_the_labelled_count():
    plan = plan_with({"estimate": ESTIMATE, "labelDrift": {"drifted": False, "count": 200},
                      "predictionDrift": {"drifted": True, "count": 500, "method": "chisquared"}})
    last = plan.status["lastEvaluation"]
    assert last["estimate"] == ESTIMATE and last["metrics"] == {"f1": 0.8} and last["labelledSamples"] == 200
    assert last["predictionDrift"]["drifted"] is True and last["labelDrift"]["count"] == 200
    assert plan.status["metricSummary"] == "f1=0.8 est=0.61 (200 labelled)"


def test_concept_drift_posts_one_warning_when_it_begins():
    plan = plan_with({"estimate": ESTIMATE, "conceptDrift": CONCEPT})
    assert [(e.type, e.reason) for e in plan.events if e.reason == "ConceptDrift"] == [("Warning", "ConceptDrift")]
    assert CONCEPT["message"] in next(e.message for e in plan.events if e.reason == "ConceptDrift")
    ongoing = plan_with({"estimate": ESTIMATE, "conceptDrift": CONCEPT},
                        status={"lastEvaluation": {"time": "2026-11-23T11:50:00Z", "conceptDrift": CONCEPT}})
    assert not [e for e in ongoing.events if e.reason == "ConceptDrift"]
    assert condition(plan, "Breached").status == "False"  # concept drift is named; the metric decides a breach


def test_prometheus_shows_the_estimate_concept_drift_and_output_drift_and_forgets_them():
    metrics = MonitorMetrics(CollectorRegistry())
    metrics.record_evaluation("ns", "p", {"metrics": {"f1": 0.5}, "estimate": ESTIMATE, "conceptDrift": CONCEPT,
                                          "predictionDrift": {"drifted": True}, "reason": "Healthy"})
    assert metrics.estimated_metric.labels("ns", "p", "f1")._value.get() == 0.61
    assert metrics.concept_drift.labels("ns", "p")._value.get() == 1
    assert metrics.output_drifted.labels("ns", "p", "prediction")._value.get() == 1
    metrics.record_evaluation("ns", "p", {"metrics": {"f1": 0.5}, "reason": "Healthy"})
    names = {s.labels.get("metric") for m in metrics.estimated_metric.collect() for s in m.samples}
    assert names == set() and not list(metrics.concept_drift.collect()[0].samples)
