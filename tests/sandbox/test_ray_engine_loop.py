"""engine: ray in the sandbox, driven with kubectl: a Dataset, a FeatureSet, a TrainingRun and a
MonitorPolicy on the sandbox's real Ray head (as `kadence sandbox up --ray` starts it) become
Ready, or evaluate, with the same versions and results as their `engine: local` twins. One
module, one Ray head, small data. The two MonitorPolicies watch one InferenceService (no
replicas: the test writes the prediction logs its server would, as test_monitor_loop does)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from kadence.domain.synthetic import churn_frame
from kadence.domain.training.artifact import loads
from kadence.sandbox import s3
from kadence.sandbox import ray as sandbox_ray
from kadence.sandbox import supervisor

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA
from .test_monitor_loop import ISVC, Traffic, evaluated_after

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1200)]

NAMESPACE = "ray-engine"
ENGINES = ("local", "ray")


def apply(kubectl, body: dict) -> None:
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(body))


def explained(kubectl, check, what: str, timeout: float):
    """wait_for `check`, failing with the objects' status and the Jobs' logs when it does not come."""
    try:
        return wait_for(check, timeout=timeout, message=what)
    except AssertionError as error:
        state = kubectl("get", "datasets,featuresets,trainingruns,monitorpolicies,jobs", "-n", NAMESPACE, "-o", "yaml",
                        check=False).stdout
        logs = kubectl("logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/managed-by", "--tail", "40",
                       "--prefix", check=False)
        raise AssertionError(f"{error}\n{state[-6000:]}\n{logs.stdout[-6000:]}{logs.stderr[-2000:]}") from None


def ready(kubectl, kind: str, name: str) -> dict | None:
    obj = get_json(kubectl, NAMESPACE, kind, name)
    found = condition(obj, "Ready")
    return obj if found and found["status"] == "True" else None


@pytest.fixture(scope="module")
def ray_head(sandbox_apiserver):
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    record = sandbox_ray.start(sandbox_apiserver.state_dir, env, die_with_parent=True)
    yield sandbox_ray.address(record.port)
    proc = record.process()
    if proc is not None:
        supervisor.stop_processes([proc], timeout=30)


@pytest.fixture(scope="module")
def twins(ray_head, sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl, tmp_path_factory):
    """Each object applied twice, `engine: local` and `engine: ray`; -> {engine: {kind: object}}."""
    source = tmp_path_factory.mktemp("ray-source")
    data = churn_frame(600, seed=5)
    data.iloc[:350].to_csv(source / "part-0.csv", index=False)
    data.iloc[350:].to_csv(source / "part-1.csv", index=False)
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE,
                          extra_env={"KADENCE_RAY_ADDRESS": ray_head}):
        for engine in ENGINES:
            apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset",
                            "metadata": {"name": f"churn-{engine}"},
                            "spec": {"source": {"uri": f"file://{source}"}, "schema": SCHEMA,
                                     "quality": {"minRows": 100, "maxDuplicateFraction": 0.0}, "engine": engine}})
            apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet",
                            "metadata": {"name": f"features-{engine}"},
                            "spec": {"datasetRef": {"name": f"churn-{engine}"}, "engine": engine, "features": [
                                {"name": "tenure", "expression": "log1p(tenure_months)"},
                                {"name": "charges", "transform": {"type": "standardScale",
                                                                  "column": "monthly_charges"}},
                                {"name": "contract", "transform": {"type": "oneHot", "column": "contract"}}]}})
            apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
                            "metadata": {"name": f"train-{engine}"},
                            "spec": {"datasetRef": {"name": f"churn-{engine}"}, "task": "classification",
                                     "objective": {"metric": "f1"}, "cvFolds": 2, "engine": engine,
                                     "search": {"strategy": "tpe", "maxTrials": 4, "parallelism": 2,
                                                "families": [{"name": "logistic_regression"},
                                                             {"name": "random_forest"}]},
                                     "split": {"testFraction": 0.25, "seed": 3}, "model": f"churn-{engine}",
                                     "promotion": {"mode": "Auto", "targetStage": "Production"}}})
        found: dict = {engine: {} for engine in ENGINES}
        for engine in ENGINES:
            found[engine]["Dataset"] = explained(kubectl, lambda: ready(kubectl, "dataset", f"churn-{engine}"),
                                                 f"Dataset churn-{engine} Ready", timeout=300)
        for engine in ENGINES:
            found[engine]["FeatureSet"] = explained(
                kubectl, lambda: ready(kubectl, "featureset", f"features-{engine}"),
                f"FeatureSet features-{engine} Ready", timeout=300)
        for engine in ENGINES:
            found[engine]["TrainingRun"] = explained(
                kubectl, lambda: (o := get_json(kubectl, NAMESPACE, "trainingrun", f"train-{engine}"))
                and (o.get("status") or {}).get("phase") in ("Succeeded", "Failed") and o,
                f"TrainingRun train-{engine} finished", timeout=600)
        version = explained(
            kubectl, lambda: (o := get_json(kubectl, NAMESPACE, "modelversion",
                                            found["local"]["TrainingRun"]["status"]["modelVersion"]))
            and (o.get("status") or {}).get("stage") == "Production" and o, "Production ModelVersion", timeout=120)
        apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": ISVC},
                        "spec": {"model": "churn-local", "stage": "Production", "replicas": 0}})
        artifact = version["spec"]["artifact"]
        bucket, key = artifact["uri"][len("s3://"):].split("/", 1)
        model = loads(s3.client(sandbox_s3).get_object(bucket, key).read(), artifact["sha256"])
        shifted = churn_frame(300, seed=8)
        shifted["monthly_charges"] = shifted["monthly_charges"] * 1.6  # drift in one input
        moment, *_ = Traffic(sandbox_s3, model, version["spec"]["version"], NAMESPACE).predict(shifted)
        for engine in ENGINES:
            apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy",
                            "metadata": {"name": f"monitor-{engine}"},
                            "spec": {"inferenceServiceRef": {"name": ISVC}, "interval": "10s", "engine": engine,
                                     "window": {"lastPredictions": 300},
                                     "drift": {"method": "psi", "minSamples": 100}}})
        for engine in ENGINES:
            found[engine]["MonitorPolicy"] = explained(
                kubectl, lambda: evaluated_after(kubectl, f"monitor-{engine}", moment, NAMESPACE, samples=300),
                f"MonitorPolicy monitor-{engine} evaluated the traffic", timeout=300)
        yield found


def test_a_ray_dataset_is_ready_with_the_version_of_its_local_twin(twins):
    local, ray = twins["local"]["Dataset"]["status"], twins["ray"]["Dataset"]["status"]
    assert ray["latestVersion"] == local["latestVersion"] and ray["latestRows"] == local["latestRows"] == 600


def test_a_ray_training_run_succeeds_with_the_trials_and_winner_of_its_local_twin(twins):
    local, ray = twins["local"]["TrainingRun"]["status"], twins["ray"]["TrainingRun"]["status"]
    assert ray["phase"] == local["phase"] == "Succeeded", (ray, local)
    assert (ray["bestFamily"], ray["bestScore"], ray["metrics"]) == (local["bestFamily"], local["bestScore"],
                                                                      local["metrics"])
    assert ray["trials"] == local["trials"]


def test_a_ray_feature_set_is_ready_with_the_version_of_its_local_twin(twins):
    local, ray = twins["local"]["FeatureSet"]["status"], twins["ray"]["FeatureSet"]["status"]
    assert ray["latestVersion"] == local["latestVersion"]
    assert [(v["id"], v["datasetVersion"], v["rows"]) for v in ray["versions"]] == \
        [(v["id"], v["datasetVersion"], v["rows"]) for v in local["versions"]]
    assert local["versions"][0]["rows"] == 600


def test_a_ray_monitor_policy_scores_the_drift_of_its_local_twin(twins):
    local = twins["local"]["MonitorPolicy"]["status"]["lastEvaluation"]
    ray = twins["ray"]["MonitorPolicy"]["status"]["lastEvaluation"]
    same = ("samples", "driftScores", "driftedFeatures", "breached", "reason", "message")
    assert {k: ray.get(k) for k in same} == {k: local.get(k) for k in same}
    assert ray["driftWindow"]["predictions"] == local["driftWindow"]["predictions"] == 300
    assert local["driftedFeatures"] == ["monthly_charges"] and local["driftScores"]["monthly_charges"] > 0.2
