"""The planners and the workloads agree: the task a planner puts in a Job's ConfigMap is what the
workload runs, and the result the workload stores is what the planner reads back.

This walks one Dataset and one FeatureSet through the operator's loop by hand: plan, run the
Job's command with the Job's environment (task from the ConfigMap, storage from the Secret)
against SeaweedFS, mark the Job finished, fetch the results the planner asks for, plan again.
"""

import json
import subprocess
import sys
from datetime import datetime, timezone

from kadence.api.conditions import apply_all
from kadence.planners.dataset import DatasetObservation, plan_dataset
from kadence.planners.dataset import results_to_fetch as dataset_results
from kadence.planners.featureset import FeatureSetObservation, plan_featureset
from kadence.planners.featureset import results_to_fetch as featureset_results

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
CSV = "id,age,plan,churn\n" + "".join(f"{i},{20 + i % 50},{['basic', 'pro'][i % 2]},{i % 2}\n" for i in range(40))


def run_job(job: dict, configmap: dict, s3_config) -> subprocess.CompletedProcess:
    """What a kubelet would run for the Job's single container."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    secret = {"endpoint": s3_config.endpoint, "accessKey": s3_config.access_key,
              "secretKey": s3_config.secret_key, "bucket": s3_config.bucket, "secure": "false"}
    env = {"PATH": "/usr/bin:/bin"}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
            continue
        source = variable["valueFrom"]
        if "configMapKeyRef" in source:
            env[variable["name"]] = configmap["data"][source["configMapKeyRef"]["key"]]
        elif source["secretKeyRef"].get("optional") and source["secretKeyRef"]["key"] not in secret:
            continue  # an optional Secret this namespace has not got (the hashing key), as a kubelet does
        else:
            env[variable["name"]] = secret[source["secretKeyRef"]["key"]]
    assert container["command"][0] == "kadence"
    return subprocess.run([sys.executable, "-m", "kadence", *container["command"][1:]], env=env,
                          capture_output=True, text=True, timeout=120)


def finished(job: dict, ok: bool) -> dict:
    kind = "Complete" if ok else "Failed"
    return {**job, "status": {"conditions": [{"type": kind, "status": "True"}]}}


def merge(body: dict, plan) -> dict:
    """What `realize` writes: the status fields, and the conditions with Ready derived."""
    before = body.get("status") or {}
    status = {**before, **plan.status_patch()}
    status["conditions"] = apply_all(before.get("conditions"), plan.condition_updates(before.get("conditions")), 1,
                                     "2026-01-01T12:00:00Z")
    return {**body, "status": status}


def reconcile(body, plan_fn, observation_fn, results_fn, store, s3_config):
    plan = plan_fn(body, observation_fn([], {}), NOW)
    configmap, job = plan.children
    done = run_job(job, configmap, s3_config)
    jobs = [finished(job, done.returncode == 0)]
    wanted = results_fn(body, jobs)
    assert list(wanted) == [job["metadata"]["name"]]
    results = {name: json.loads(store.get_bytes(key)) for name, key in wanted.items()}
    return merge(body, plan_fn(body, observation_fn(jobs, results), NOW)), done


def test_a_dataset_and_a_featureset_go_through_plan_job_result_and_status(store, s3_config):
    store.put_bytes("raw/contract/users.csv", CSV.encode())
    dataset = {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset",
               "metadata": {"name": "users", "namespace": "contract", "uid": "d-1", "generation": 1},
               "spec": {"source": {"uri": "s3://kadence/raw/contract/users.csv"},
                        "schema": {"columns": [{"name": "id", "type": "int"}, {"name": "age", "type": "float"},
                                               {"name": "plan", "type": "category"}, {"name": "churn", "type": "int"}],
                                   "target": "churn", "entityColumn": "id"},
                        "quality": {"minRows": 10}}}
    dataset, done = reconcile(dataset, plan_dataset, lambda jobs, results: DatasetObservation(jobs, results),
                              dataset_results, store, s3_config)
    assert done.returncode == 0, done.stdout + done.stderr
    status = dataset["status"]
    assert status["latestRows"] == 40 and status["versions"][0]["id"] == status["latestVersion"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Validated": "True", "Ingested": "True", "SpecValid": "True", "Ready": "True"}

    featureset = {"apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet",
                  "metadata": {"name": "user-features", "namespace": "contract", "uid": "f-1", "generation": 1},
                  "spec": {"datasetRef": {"name": "users"},
                           "features": [{"name": "age_log", "expression": "log1p(age)"},
                                        {"name": "plan", "transform": {"type": "oneHot", "column": "plan"}}]}}
    featureset, done = reconcile(featureset, plan_featureset,
                                 lambda jobs, results: FeatureSetObservation(dataset, jobs, results),
                                 featureset_results, store, s3_config)
    assert done.returncode == 0, done.stdout + done.stderr
    status = featureset["status"]
    assert status["datasetVersion"] == dataset["status"]["latestVersion"]
    assert status["versions"][0]["transformerUri"].startswith(status["versions"][0]["uri"])
    assert [f["name"] for f in status["features"]] == ["age_log", "plan"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "SpecValid": "True", "DataAvailable": "True", "DefinitionsValid": "True", "Materialized": "True",
        "Ready": "True"}


def test_a_rule_failure_travels_from_the_job_to_the_validated_condition(store, s3_config):
    dataset = {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset",
               "metadata": {"name": "small", "namespace": "contract", "uid": "d-2", "generation": 1},
               "spec": {"source": {"inline": CSV},
                        "schema": {"columns": [{"name": "id", "type": "int"}, {"name": "age", "type": "float"},
                                               {"name": "plan", "type": "category"}, {"name": "churn", "type": "int"}]},
                        "quality": {"minRows": 1000}}}
    dataset, done = reconcile(dataset, plan_dataset, lambda jobs, results: DatasetObservation(jobs, results),
                              dataset_results, store, s3_config)
    assert done.returncode == 3
    conditions = {c["type"]: c for c in dataset["status"]["conditions"]}
    assert conditions["Validated"]["status"] == "False"
    assert conditions["Validated"]["message"] == "minRows: 40 rows, at least 1000 required"
    assert conditions["Ready"]["reason"] == "ValidationFailed" and "latestVersion" not in dataset["status"]
