"""The canary's quality gate reads figures a short Job computed where the data is (issue 16.4):
one `kadence canary` Job per analysis slot of the step, never two at once, the newest finished
one's figures, old Jobs removed. The operator itself loads no prediction log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from kadence.builders.jobs import WorkloadSettings
from kadence.handlers.inferenceservice import QUALITY_COMPONENT, plan_quality, quality_job_prefix
from kadence.workloads import canary

STEP = "2026-12-07T10:00:00Z"
START = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def isvc(step=STEP):
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": "churn", "namespace": "ml", "uid": "u-1"},
            "status": {"stableVersion": 2, "canaryVersion": 3, "stepStartedAt": step}}


def job(slot, state, step=STEP):
    conditions = {"Succeeded": [{"type": "Complete", "status": "True"}],
                  "Failed": [{"type": "Failed", "status": "True"}], "Running": []}[state]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{quality_job_prefix('churn', step)}{slot}",
                         "labels": {"app.kubernetes.io/component": QUALITY_COMPONENT}},
            "status": {"conditions": conditions, **({"succeeded": 1} if state == "Succeeded" else {}),
                       **({"active": 1} if state == "Running" else {})}}


def result(stable, canary_):
    return {"since": STEP, "until": STEP, "versions": {"2": {"labelled": stable[0], "value": stable[1]},
                                                       "3": {"labelled": canary_[0], "value": canary_[1]}}}


def plan(jobs, results=None, seconds=1.0, interval=1.0, obj=None):
    return plan_quality(obj or isvc(), "accuracy", interval, jobs, results or {}, START + timedelta(seconds=seconds),
                        WorkloadSettings())


def test_the_first_slot_of_a_step_starts_one_job_over_both_versions_since_the_step_began():
    work = plan([])
    kinds = [c["kind"] for c in work.children]
    assert kinds == ["ConfigMap", "Job"] and work.figures == {}
    config, job_ = work.children
    task = json.loads(next(iter(config["data"].values())))
    assert task["versions"] == ["2", "3"] and task["metric"] == "accuracy"
    assert task["since"].startswith("2026-12-07T10:00:00")
    assert task["resultKey"] == f"monitoring/ml/churn/canary/{job_['metadata']['name']}.json"
    assert job_["spec"]["template"]["spec"]["containers"][0]["command"] == ["kadence", "canary"]
    assert job_["metadata"]["labels"]["app.kubernetes.io/component"] == QUALITY_COMPONENT


def test_no_second_job_while_one_runs_and_none_again_within_its_slot():
    assert plan([job(0, "Running")], seconds=40).children == []
    done = plan([job(0, "Succeeded")], {f"{quality_job_prefix('churn', STEP)}0": result((5, 1.0), (5, 0.5))},
                seconds=10)
    assert done.children == []  # slot 0 lasts 15 s (the log flush) even with a 1 s analysis interval


def test_the_newest_finished_job_gives_the_figures_and_older_slots_go():
    prefix = quality_job_prefix("churn", STEP)
    results = {f"{prefix}0": result((5, 1.0), (5, 0.5)), f"{prefix}1": result((20, 0.9), (20, 0.6))}
    work = plan([job(0, "Succeeded"), job(1, "Succeeded")], results, seconds=31)
    assert work.figures == {2: (20, 0.9), 3: (20, 0.6)}
    assert {(r.kind, r.name) for r in work.delete} == {("Job", f"{prefix}0"), ("ConfigMap", f"{prefix}0")}
    assert [c["metadata"]["name"] for c in work.children] == [f"{prefix}2", f"{prefix}2"]


def test_a_job_that_succeeded_without_a_readable_result_gives_no_figures_yet():
    work = plan([job(0, "Succeeded")], {}, seconds=5)
    assert work.figures == {} and work.children == []


def test_jobs_of_an_earlier_step_are_removed_and_a_new_step_starts_its_own():
    old = job(3, "Succeeded", step="2026-12-07T09:00:00Z")
    work = plan([old])
    assert {r.name for r in work.delete} == {old["metadata"]["name"]}
    assert work.children and work.children[0]["metadata"]["name"].startswith(quality_job_prefix("churn", STEP))


def test_without_a_canary_nothing_starts_and_leftover_jobs_go():
    obj = isvc()
    obj["status"] = {"stableVersion": 2}
    leftover = job(0, "Succeeded")
    work = plan([leftover], obj=obj)
    assert work.children == [] and {r.name for r in work.delete} == {leftover["metadata"]["name"]}


def test_the_workload_refuses_a_bad_task_with_exit_code_2(capsys):
    import argparse

    code = canary.run(argparse.Namespace(task=None), env={"KADENCE_TASK": json.dumps({"namespace": "ml"})})
    assert code == canary.EXIT_BAD_TASK
    assert "bad task" in capsys.readouterr().out


def test_the_workload_computes_each_versions_metric_over_the_joined_labels(monkeypatch):
    import pandas as pd

    from kadence.workloads import monitor_io

    predictions = pd.DataFrame({"request_id": list("abcde"), "model_version": ["2", "2", "3", "3", "3"],
                                "prediction": [1, 0, 1, 1, 0]})
    feedback = pd.DataFrame({"request_id": ["a", "b", "c", "d", "zz"], "label": [1, 0, 0, 1, 1]})
    monkeypatch.setattr(monitor_io, "read_prediction_logs", lambda *a, **k: predictions)
    monkeypatch.setattr(monitor_io, "read_feedback", lambda *a, **k: feedback)
    monkeypatch.setattr(monitor_io, "join_feedback", lambda p, f: p.merge(f, on="request_id"))
    task = canary.CanaryQualityTask(namespace="ml", inference_service="churn", versions=["2", "3", "4"],
                                    metric="accuracy", since=START, until=START + timedelta(minutes=1),
                                    result_key="monitoring/ml/churn/canary/x.json")
    outcome = canary.evaluate(store=None, task=task)
    assert outcome.versions["2"].labelled == 2 and outcome.versions["2"].value == pytest.approx(1.0)
    assert outcome.versions["3"].labelled == 2 and outcome.versions["3"].value == pytest.approx(0.5)
    assert outcome.versions["4"].labelled == 0 and outcome.versions["4"].value is None
