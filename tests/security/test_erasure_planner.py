"""The ErasureRequest planner, table-tested: one Job per generation with the scope resolved, its
result turned into per-store status and a derived Ready, a refused or failed erasure said with
its reason."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from kadence.planners.erasurerequest import (ErasureObservation, erase_job_name, plan_erasurerequest, results_to_fetch,
                                             watching_policies)

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
SPEC = {"match": {"column": "customer_id", "values": ["c-3"]},
        "scope": {"inferenceServices": ["churn"], "datasets": ["people", "gone"]}, "reason": "ticket 7"}


def request(status=None, generation=1):
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "ErasureRequest",
            "metadata": {"name": "forget", "namespace": "ml", "uid": "u1", "generation": generation},
            "spec": SPEC, "status": status or {}}


def job(name, state=None):
    conditions = [{"type": "Complete", "status": "True"}] if state == "Succeeded" else (
        [{"type": "Failed", "status": "True"}] if state == "Failed" else [])
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


DATASET = {"status": {"versions": [{"id": "v2", "uri": "s3://k/datasets/ml/people/v2/"},
                                   {"id": "v1", "uri": "s3://k/datasets/ml/people/v1/"}]}}
POLICIES = [{"metadata": {"name": "churn-quality"}, "spec": {"inferenceServiceRef": {"name": "churn"}}},
            {"metadata": {"name": "other"}, "spec": {"inferenceServiceRef": {"name": "fraud"}}}]
JOB = erase_job_name("forget", 1)
SUCCEEDED = {"kind": "kadence.dev/erasure-result", "outcome": "Succeeded", "request": "forget", "erasedRows": 6,
             "auditUri": "s3://k/monitoring/ml/_erasures/audit/x.json",
             "guardUri": "s3://k/monitoring/ml/_erasures/guards/forget.json", "finishedAt": "2026-12-01T12:00:05Z",
             "message": "erased 6 rows per request forget: ...",
             "stores": [{"store": "PredictionLog", "name": "churn", "erasedRows": 2, "objects": 1},
                        {"store": "DatasetSnapshot", "name": "people", "erasedRows": 4, "objects": 2,
                         "versions": [{"replaced": "v2", "version": "v3", "uri": "s3://k/datasets/ml/people/v3/",
                                       "rows": 16, "erasedRows": 4}]}]}


def plan(status=None, jobs=(), results=None, generation=1):
    observed = ErasureObservation({"people": DATASET, "gone": None}, POLICIES, list(jobs), results or {})
    return plan_erasurerequest(request(status, generation), observed, NOW)


def condition(p, type_="Erased"):
    return next(c for c in p.conditions if c.type == type_)


def test_a_new_request_starts_one_job_whose_task_names_every_store_in_scope():
    p = plan()
    configmap, job_ = p.children
    assert job_["kind"] == "Job" and job_["metadata"]["name"] == JOB == "forget-erase-g1"
    task = json.loads(next(iter(configmap["data"].values())))
    assert task["inferenceServices"] == ["churn"] and task["monitorPolicies"] == ["churn-quality"]
    assert task["datasets"] == [{"name": "people", "versions": [{"id": "v2", "uri": "s3://k/datasets/ml/people/v2/"},
                                                               {"id": "v1", "uri": "s3://k/datasets/ml/people/v1/"}]},
                                {"name": "gone", "versions": []}]
    assert task["match"] == SPEC["match"] and task["reason"] == "ticket 7"
    env = {e["name"] for e in job_["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "KADENCE_PII_KEY" in env, "the guard needs the namespace's hashing key"
    erased = condition(p)
    assert erased.status == "Unknown" and "gone do not exist: only their guard applies" in erased.message


def test_a_running_job_is_waited_for_and_its_result_is_read_once_it_finished():
    assert condition(plan({"job": JOB}, [job(JOB)])).reason == "Erasing"
    assert results_to_fetch(request({"job": JOB}), [job(JOB)]) == {}
    assert results_to_fetch(request({"job": JOB}), [job(JOB, "Succeeded")]) == {
        JOB: "runs/ml/erasurerequests/forget/forget-erase-g1/result.json"}


def test_a_finished_erasure_reports_each_store_the_audit_and_the_guard():
    p = plan({"job": JOB}, [job(JOB, "Succeeded")], {JOB: SUCCEEDED})
    assert condition(p).status == "True" and p.phase == "Erased"
    assert p.status.erased_rows == 6 and p.status.audit_uri.endswith("x.json")
    assert p.status.guard_uri.endswith("guards/forget.json") and p.status.completed_at == "2026-12-01T12:00:05Z"
    [_, snapshots] = p.status.stores
    assert snapshots.versions[0].replaced == "v2" and snapshots.versions[0].version == "v3"
    assert ("Normal", "Erased") in {(e.type, e.reason) for e in p.events}


def test_a_finished_generation_is_not_erased_again_and_an_edit_runs_a_new_job():
    done = {"job": JOB, "completedAt": "2026-12-01T12:00:05Z"}
    assert plan(done, [job(JOB, "Succeeded")]).children == []
    assert results_to_fetch(request(done), [job(JOB, "Succeeded")]) == {}
    edited = plan(done, [job(JOB, "Succeeded")], generation=2)
    assert [c["metadata"]["name"] for c in edited.children] == ["forget-erase-g2"] * 2
    assert {(d.kind, d.name) for d in edited.delete} == {("Job", JOB), ("ConfigMap", JOB)}


def test_a_refused_or_failed_erasure_says_why_and_is_settled():
    refused = {**SUCCEEDED, "outcome": "Invalid", "message": "no hashing key (Secret kadence-pii-key): ..."}
    p = plan({"job": JOB}, [job(JOB, "Failed")], {JOB: refused})
    assert (condition(p).status, condition(p).reason) == ("False", "ErasureRefused")
    assert "no hashing key" in condition(p).message and p.status.completed_at
    failed = plan({"job": JOB}, [job(JOB, "Failed")])
    assert condition(failed).reason == "ErasureFailed" and "failed without a result" in condition(failed).message
    assert failed.status.completed_at == "2026-12-01T12:00:00Z"


def test_only_the_policies_watching_a_service_in_scope_have_their_exports_erased():
    assert watching_policies(POLICIES, ["churn"]) == ["churn-quality"]
    assert watching_policies(POLICIES, []) == []
