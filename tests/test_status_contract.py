"""The status contract (tests/status_contract.py): planners' statuses checked against the CRDs."""

from __future__ import annotations

import importlib

import pytest

from kadence.planners.plan import Plan

from .status_contract import PLANNERS, check, problems, status_schema


@pytest.mark.parametrize("kind", sorted(PLANNERS))
def test_every_kinds_planner_is_checked_in_every_test(kind):
    module, function = PLANNERS[kind]
    assert getattr(importlib.import_module(module), function).__status_contract__ == kind


@pytest.mark.parametrize("status, found", [
    pytest.param({"latestVersion": "v1", "latestRows": 3}, [], id="declared fields pass"),
    pytest.param({"latestVersoin": "v1"}, ["status.latestVersoin: not defined in the CRD"], id="a typo is caught"),
    pytest.param({"latestRows": "3"}, ["status.latestRows: str where the CRD says integer"], id="a wrong type"),
    pytest.param({"latestRows": True}, ["status.latestRows: bool where the CRD says integer"], id="a bool is no int"),
    pytest.param({"versions": [{"id": "v1", "rows": 1, "createdAt": "t", "uri": "u", "size": 3}]},
                 ["status.versions[0].size: not defined in the CRD"], id="inside list items"),
    pytest.param({"latestVersion": None}, [], id="clearing a field is allowed"),
])
def test_problems_are_found_against_the_dataset_crd(status, found):
    assert problems(status_schema("Dataset"), status) == found


def test_maps_are_checked_against_their_value_schema():
    assert problems(status_schema("TrainingRun"), {"metrics": {"f1": 0.8, "auc": "high"}}) == [
        "status.metrics.auc: str where the CRD says number"]


def test_a_planner_writing_an_undeclared_field_fails_the_test_that_made_it():
    with pytest.raises(AssertionError, match="lastIngestion: not defined in the CRD"):
        check("Dataset", Plan(status={"lastIngestion": "2026-01-01T00:00:00Z"}))


def test_a_dict_status_is_checked_against_its_model_as_it_is_written():
    from kadence.api.monitorpolicy import MonitorPolicyStatus
    from kadence.planners.plan import StatusPatch

    status = StatusPatch(MonitorPolicyStatus)
    status["lastJob"] = "churn-monitor-monitor-1"
    status.update({"pendingRetrain": None})  # clearing a field
    with pytest.raises(ValueError, match="lastJobs"):
        status["lastJobs"] = "x"
    with pytest.raises(ValueError):
        status.update({"metricSummary": 3})
    assert Plan(status=status).status_patch() == {"lastJob": "churn-monitor-monitor-1", "pendingRetrain": None}
    assert status.CONDITIONS is MonitorPolicyStatus.CONDITIONS
