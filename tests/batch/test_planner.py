"""The BatchPrediction planner, table by table: which run is wanted, how a run is followed through
its Job and result, retries with backoff, the schedule, the bounded history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kadence.planners.batchprediction import (BatchObservation, attempt_job_name, plan_batchprediction,
                                              results_to_fetch)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
SHA = "a" * 64


def body(spec: dict | None = None, status: dict | None = None, generation: int = 1) -> dict:
    base = {"model": "churn", "stage": "Production", "input": {"dataset": {"name": "churn"}},
            "output": {"uri": "s3://kadence/predictions/ns/nightly/", "probabilities": True},
            "retry": {"limit": 2, "backoff": "1m"}}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "BatchPrediction",
            "metadata": {"name": "nightly", "namespace": "ns", "uid": "u-1", "generation": generation,
                         "creationTimestamp": "2026-12-01T00:00:00Z"},
            "spec": {**base, **(spec or {})}, "status": status or {}}


def version(number: int, stage: str | None = "Production", verified: bool | None = True, compiled: bool = True) -> dict:
    spec = {"model": "churn", "version": number, "task": "classification",
            "artifact": {"uri": f"s3://kadence/runs/ns/churn/v{number}/model.skops", "sha256": SHA},
            "signature": {"inputs": [{"name": "tenure", "type": "int"}, {"name": "plan", "type": "category"}]}}
    if compiled:
        spec["compiled"] = {"uri": f"s3://kadence/runs/ns/churn/v{number}/model.onnx", "sha256": SHA,
                            "maxAbsDifference": 0.0, "tolerance": 1e-6, "verified": True}
    return {"metadata": {"name": f"churn-v{number}"}, "spec": spec, "status": {"stage": stage, "verified": verified}}


def dataset(*ids: str, entity: str | None = "customer_id") -> dict:
    schema = {"target": "churned", **({"entityColumn": entity} if entity else {})}
    return {"metadata": {"name": "churn"}, "spec": {"schema": schema},
            "status": {"latestVersion": ids[-1] if ids else None,
                       "versions": [{"id": i, "uri": f"s3://kadence/datasets/ns/churn/{i}/", "rows": 10} for i in ids]}}


def job(name: str, state: str = "Running", finished: str | None = None) -> dict:
    conditions = []
    if state != "Running":
        conditions = [{"type": "Complete" if state == "Succeeded" else "Failed", "status": "True",
                       "lastTransitionTime": finished or "2026-12-07T11:59:00Z"}]
    return {"metadata": {"name": name, "ownerReferences": [{"uid": "u-1", "controller": True}]},
            "status": {"conditions": conditions}}


def result(run: str, outcome: str = "Succeeded", rows: int = 10, message: str = "") -> dict:
    return {"kind": "kadence.dev/batch-result", "outcome": outcome, "run": run, "rows": rows,
            "outputUri": f"s3://kadence/predictions/ns/nightly/{run}/",
            "manifestUri": f"s3://kadence/predictions/ns/nightly/{run}/_manifest.json",
            "finishedAt": "2026-12-07T11:59:30Z", "message": message or f"{rows} rows"}


def condition(plan, type_: str):
    return next(c for c in plan.conditions if c.type == type_)


def plan_for(spec=None, status=None, versions=None, data=None, jobs=(), results=None, now=NOW, generation=1):
    observed = BatchObservation(versions=[version(3)] if versions is None else versions,
                                dataset=dataset("d1") if data is None else data, jobs=list(jobs),
                                results=results or {})
    return plan_batchprediction(body(spec, status, generation), observed, now)


def started_run(plan):
    jobs = [c for c in plan.children if c["kind"] == "Job"]
    assert len(jobs) == 1
    return jobs[0], next(c for c in plan.children if c["kind"] == "ConfigMap")


# --- resolution -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, versions, reason", [
    ({}, [version(3, stage="Staging")], "NoVersionInStage"),
    ({"stage": None, "version": 4}, [version(3)], "ModelVersionNotFound"),
    ({}, [version(3, verified=False)], "ArtifactNotVerified"),
], ids=["no version holds the stage", "a pinned version that does not exist", "an unverified artifact"])
def test_a_model_that_cannot_be_resolved_starts_no_run_and_says_why(spec, versions, reason):
    observed = BatchObservation(versions=versions, dataset=dataset("d1"))
    plan = plan_batchprediction({**body(), "spec": _spec(spec)}, observed, NOW)
    assert plan.children == []
    assert condition(plan, "ModelResolved").status == "False"
    assert condition(plan, "ModelResolved").reason == reason


def _spec(changes: dict) -> dict:
    spec = body()["spec"]
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


@pytest.mark.parametrize("data, spec, reason", [
    (None, {}, "DatasetNotFound"),
    (dataset(), {}, "DatasetNotReady"),
    (dataset("d1"), {"input": {"dataset": {"name": "churn", "version": "zz"}}}, "DatasetVersionNotFound"),
    (dataset("d1", entity=None), {}, "NoEntityColumn"),
], ids=["no Dataset", "no validated version yet", "a pinned version it does not have", "no entity column anywhere"])
def test_an_input_that_is_not_there_starts_no_run_and_says_why(data, spec, reason):
    observed = BatchObservation(versions=[version(3)], dataset=data)
    plan = plan_batchprediction(body(spec), observed, NOW)
    assert plan.children == []
    assert condition(plan, "InputAvailable").reason == reason


# --- starting runs --------------------------------------------------------------------------

def test_the_first_reconcile_starts_a_run_with_the_model_exactly_as_served():
    import json

    plan = plan_for()
    job_, configmap = started_run(plan)
    task = json.loads(configmap["data"]["task.json"])
    assert job_["spec"]["template"]["spec"]["containers"][0]["command"] == ["kadence", "batch"]
    assert task["model"]["name"] == "churn-v3" and task["model"]["compiled"]["verified"] is True
    assert [(c["name"], c["type"]) for c in task["model"]["inputs"]] == [("tenure", "int"), ("plan", "category")]
    assert task["input"] == {"uri": "s3://kadence/datasets/ns/churn/d1/", "format": "parquet", "snapshot": True,
                             "dataset": "churn", "datasetVersion": "d1"}
    assert task["output"]["uri"] == f"s3://kadence/predictions/ns/nightly/{task['run']}/"
    assert task["output"]["entityColumn"] == "customer_id"  # from the Dataset's schema
    assert task["stream"] == "batch.nightly"
    assert task["labelColumn"] == "churned"  # labels a later input carries are logged for the MonitorPolicy
    run = plan.status.runs[0]
    assert (run.name, run.phase, run.attempt, run.model_version, run.dataset_version) == (
        task["run"], "Running", 1, "churn-v3", "d1")
    assert [e.reason for e in plan.events] == ["RunStarted"]


def test_an_unverified_compiled_graph_is_left_out_as_the_server_leaves_it_out():
    import json

    unverified = version(3)
    unverified["spec"]["compiled"]["verified"] = False
    _, configmap = started_run(plan_for(versions=[unverified]))
    assert "compiled" not in json.loads(configmap["data"]["task.json"])["model"]


def test_run_names_are_deterministic_and_change_with_what_is_scored():
    def name(**kwargs):
        return started_run(plan_for(**kwargs))[0]["metadata"]["name"]

    assert name() == name()
    assert name(generation=2) != name()
    assert name(versions=[version(4)]) != name()
    # Latest: a new Dataset version alone is no new run; EveryNewVersion: it is
    assert name(data=dataset("d1", "d2")) == name()
    every = {"input": {"dataset": {"name": "churn", "follow": "EveryNewVersion"}}}
    assert name(spec=every, data=dataset("d1", "d2")) != name(spec=every)


def test_a_settled_run_of_the_same_inputs_is_not_started_again():
    first = plan_for()
    run = first.status.runs[0].model_copy(update={"phase": "Succeeded", "rows": 10})
    plan = plan_for(status={"runs": [run.wire()]})
    assert plan.children == [] and len(plan.status.runs) == 1


def test_a_new_dataset_version_starts_a_new_run_after_the_active_one_finished():
    every = {"input": {"dataset": {"name": "churn", "follow": "EveryNewVersion"}}}
    first = plan_for(spec=every)
    running = first.status.runs[0]
    # d2 appears while d1 is still scored: nothing new starts
    busy = plan_for(spec=every, status={"runs": [running.wire()]}, data=dataset("d1", "d2"),
                    jobs=[job(running.name)])
    assert busy.children == []
    done = running.model_copy(update={"phase": "Succeeded"})
    plan = plan_for(spec=every, status={"runs": [done.wire()]}, data=dataset("d1", "d2"))
    job_, _ = started_run(plan)
    assert [r.dataset_version for r in plan.status.runs] == ["d2", "d1"]


# --- following a run ------------------------------------------------------------------------

def running_status(attempt: int = 1):
    run = plan_for().status.runs[0].model_copy(update={"attempt": attempt, "startedAt": None})
    run = run.model_copy(update={"started_at": "2026-12-07T11:58:00Z"})
    return run, {"runs": [run.wire()]}


def test_results_are_fetched_only_for_the_finished_job_of_the_active_attempt():
    run, status = running_status(attempt=2)
    jobs = [job(run.name, "Failed"), job(attempt_job_name(run.name, 2), "Failed")]
    assert list(results_to_fetch(body(status=status), jobs)) == [attempt_job_name(run.name, 2)]


def test_a_successful_run_lands_in_the_history_with_rows_output_and_duration():
    run, status = running_status()
    plan = plan_for(status=status, jobs=[job(run.name, "Succeeded")], results={run.name: result(run.name, rows=1234)})
    settled = plan.status.runs[0]
    assert (settled.phase, settled.rows, settled.duration_seconds) == ("Succeeded", 1234, 90.0)
    assert settled.manifest_uri.endswith(f"/{run.name}/_manifest.json")
    assert plan.status.last_output == settled.output_uri and plan.status.last_rows == 1234
    assert condition(plan, "LastRunSucceeded").status == "True"
    assert [e.reason for e in plan.events] == ["RunSucceeded"]


def test_a_job_that_finished_without_its_result_yet_is_waited_for():
    run, status = running_status()
    plan = plan_for(status=status, jobs=[job(run.name, "Succeeded")])
    assert plan.status.runs[0].phase == "Running" and plan.requeue_after


def test_a_failed_attempt_is_retried_after_a_backoff_that_doubles():
    run, status = running_status(attempt=2)
    job_name = attempt_job_name(run.name, 2)
    plan = plan_for(status=status, jobs=[job(job_name, "Failed")],
                    results={job_name: result(run.name, "Error", message="S3 timed out")})
    retrying = plan.status.runs[0]
    assert retrying.phase == "Retrying"
    assert retrying.retry_at == "2026-12-07T12:02:00Z"  # now + 1m * 2**(2-1)
    assert plan.requeue_after == 120
    assert condition(plan, "LastRunSucceeded").reason == "RunRetrying" and plan.phase == "Retrying"
    # before the time nothing happens; at the time attempt 3 starts, with the same model and input
    early = plan_for(status={"runs": [retrying.wire()]}, now=NOW + timedelta(seconds=60))
    assert early.children == [] and early.status.runs[0].phase == "Retrying"
    due = plan_for(status={"runs": [retrying.wire()]}, versions=[version(3), version(4)],
                   now=NOW + timedelta(seconds=121))
    job_, _ = started_run(due)
    assert job_["metadata"]["name"] == attempt_job_name(run.name, 3)
    assert due.status.runs[0].attempt == 3 and due.status.runs[0].model_version == "churn-v3"


def test_the_last_allowed_attempt_failing_fails_the_run():
    run, status = running_status(attempt=3)
    job_name = attempt_job_name(run.name, 3)
    plan = plan_for(status=status, jobs=[job(job_name, "Failed")], results={job_name: result(run.name, "Error",
                                                                                            message="boom")})
    assert plan.status.runs[0].phase == "Failed" and "after 3 attempts" in plan.status.runs[0].message
    assert condition(plan, "LastRunSucceeded").reason == "RunFailed"


def test_an_input_the_model_cannot_score_fails_at_once_without_retries():
    run, status = running_status()
    plan = plan_for(status=status, jobs=[job(run.name, "Failed")],
                    results={run.name: result(run.name, "Invalid", message="row 7: column 'tenure' is null")})
    assert plan.status.runs[0].phase == "Failed" and plan.status.runs[0].message == "row 7: column 'tenure' is null"


def test_a_failed_job_without_a_result_counts_as_a_failed_attempt():
    run, status = running_status()
    plan = plan_for(status=status, jobs=[job(run.name, "Failed")])
    assert plan.status.runs[0].phase == "Retrying" and "without a result" in plan.status.runs[0].message


def test_a_running_run_whose_job_is_missing_gets_the_same_job_again():
    run, status = running_status()
    job_, _ = started_run(plan_for(status=status))
    assert job_["metadata"]["name"] == run.name


# --- schedule -------------------------------------------------------------------------------

SCHEDULED = {"schedule": {"cron": "0 2 * * *", "timeZone": "Europe/Paris"}}


def test_a_schedule_runs_once_for_the_latest_missed_tick_named_after_it():
    plan = plan_for(spec=SCHEDULED)
    job_, _ = started_run(plan)
    assert job_["metadata"]["name"] == "nightly-202612070100"  # 02:00 in Paris is 01:00 UTC
    assert plan.status.last_scheduled_at == "2026-12-07T01:00:00Z"
    assert plan.status.next_run_at == "2026-12-08T01:00:00Z"
    assert plan.requeue_after == 13 * 3600


def test_between_ticks_a_schedule_starts_nothing():
    plan = plan_for(spec=SCHEDULED, status={"lastScheduledAt": "2026-12-07T01:00:00Z"})
    assert plan.children == [] and plan.phase == "Scheduled"


def test_a_tick_while_a_run_is_active_is_skipped_with_a_warning():
    run, status = running_status()
    plan = plan_for(spec=SCHEDULED, status={**status, "lastScheduledAt": "2026-12-06T01:00:00Z"},
                    jobs=[job(run.name)])
    assert [c for c in plan.children if c["kind"] == "Job"] == []
    assert plan.status.last_scheduled_at == "2026-12-07T01:00:00Z"
    assert "RunSkipped" in [e.reason for e in plan.events]


# --- history --------------------------------------------------------------------------------

def test_the_history_keeps_the_newest_runs_and_deletes_the_jobs_of_the_others():
    old = [plan_for().status.runs[0].model_copy(update={"name": f"nightly-old{i}", "phase": "Succeeded"})
           for i in range(3)]
    plan = plan_for(spec={"historyLimit": 2}, status={"runs": [r.wire() for r in old]},
                    jobs=[job(r.name, "Succeeded") for r in old])
    names = [r.name for r in plan.status.runs]
    assert len(names) == 2 and names[1] == "nightly-old0"  # the new run first, then the newest old one
    assert {(d.kind, d.name) for d in plan.delete} == {("Job", "nightly-old1"), ("ConfigMap", "nightly-old1"),
                                                      ("Job", "nightly-old2"), ("ConfigMap", "nightly-old2")}
