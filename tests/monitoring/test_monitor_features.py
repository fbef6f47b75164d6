"""The monitor task's `features`: the serving model's inputs, the only columns judged for drift."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kadence.workloads.monitor_task import FeatureDriftReport, MonitorResult, MonitorTask

BASE = {"namespace": "ns", "policy": "p", "inferenceService": "churn", "time": "2026-11-23T12:00:00Z",
        "window": {"durationSeconds": 3600}, "drift": {"method": "psi"}}


def test_the_features_field_is_named_features_on_the_wire_and_kept_in_order():
    task = MonitorTask.model_validate(BASE | {"features": ["tenure", "plan"], "excludeColumns": ["churned"]})
    assert task.features == ["tenure", "plan"]
    assert task.wire()["features"] == ["tenure", "plan"]


def test_without_features_the_task_judges_every_column_but_the_excluded_ones():
    task = MonitorTask.model_validate(BASE | {"excludeColumns": ["churned"]})
    assert task.features is None and "features" not in task.wire()


@pytest.mark.parametrize("features, excluded, message", [
    pytest.param([], [], "at least 1 item", id="an empty list judges nothing and is refused"),
    pytest.param(["tenure", ""], [], "empty name", id="an empty name is refused"),
    pytest.param(["tenure", "plan", "tenure"], [], "'tenure' more than once", id="a repeated name is refused"),
    pytest.param(["tenure", "churned"], ["churned"], "both name 'churned'",
                 id="a feature that is also excluded is refused"),
])
def test_a_bad_feature_list_is_refused_with_a_specific_message(features, excluded, message):
    with pytest.raises(ValidationError, match=message):
        MonitorTask.model_validate(BASE | {"features": features, "excludeColumns": excluded})


def test_a_feature_result_carries_why_it_was_not_judged():
    result = MonitorResult.model_validate({
        "outcome": "Evaluated", "time": "2026-11-23T12:00:00Z", "reason": "Healthy", "message": "ok",
        "features": [{"feature": "tenure", "status": "NotInWindow",
                      "message": "no prediction in the window logged the input 'tenure'"}]})
    assert result.features == [FeatureDriftReport(feature="tenure", status="NotInWindow",
                                                  message="no prediction in the window logged the input 'tenure'")]
    assert result.wire()["features"][0]["message"].endswith("'tenure'")
