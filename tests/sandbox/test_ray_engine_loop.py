"""engine: ray in the sandbox, driven with kubectl: a Dataset and a TrainingRun on the
sandbox's real Ray head (as `kadence sandbox up --ray` starts it) become Ready with the same
versions and results as their `engine: local` twins. One module, one Ray head, small data."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from kadence.domain.synthetic import churn_frame
from kadence.sandbox import ray as sandbox_ray
from kadence.sandbox import supervisor

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA

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
        state = kubectl("get", "datasets,trainingruns,jobs", "-n", NAMESPACE, "-o", "yaml", check=False).stdout
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
            apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "TrainingRun",
                            "metadata": {"name": f"train-{engine}"},
                            "spec": {"datasetRef": {"name": f"churn-{engine}"}, "task": "classification",
                                     "objective": {"metric": "f1"}, "cvFolds": 2, "engine": engine,
                                     "search": {"strategy": "tpe", "maxTrials": 4, "parallelism": 2,
                                                "families": [{"name": "logistic_regression"},
                                                             {"name": "random_forest"}]},
                                     "split": {"testFraction": 0.25, "seed": 3}, "model": f"churn-{engine}",
                                     "promotion": {"mode": "Manual"}}})
        found: dict = {engine: {} for engine in ENGINES}
        for engine in ENGINES:
            found[engine]["Dataset"] = explained(kubectl, lambda: ready(kubectl, "dataset", f"churn-{engine}"),
                                                 f"Dataset churn-{engine} Ready", timeout=300)
        for engine in ENGINES:
            found[engine]["TrainingRun"] = explained(
                kubectl, lambda: (o := get_json(kubectl, NAMESPACE, "trainingrun", f"train-{engine}"))
                and (o.get("status") or {}).get("phase") in ("Succeeded", "Failed") and o,
                f"TrainingRun train-{engine} finished", timeout=600)
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
