"""The operator SIGKILLed at points of a retrain and of a canary, then restarted the way a user
restarts a sandbox component (`kadence sandbox up`): one TrainingRun per retrain decision, the
retrain budget counted once, and the canary carried to its end (promoted or rolled back).

Kill points: a SIGKILL at a random moment right after the MonitorPolicy appears (most often
before its retrain TrainingRun exists); the operator's own failpoint `exit-after-apply:TrainingRun`
(h3-runtime's KADENCE_FAILPOINT: exit 137 right after the TrainingRun is applied, before the
policy's status records it); a SIGKILL while a canary is between its steps.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from kadence.sandbox import supervisor
from kadence.sandbox.cli import _recorded_s3_settings, operator_env

from .conftest import (COLUMNS, MODEL, FaultSandbox, _train_and_store, condition, diagnose, kill,
                       namespace, predict_body, wait_for)

pytestmark = pytest.mark.sandbox

GROUP = "/apis/kadence.dev/v1alpha1"
RETRAINED_BY = "kadence.dev/retrained-by"
SCHEMA = {"target": "churned", "columns": [
    {"name": "tenure_months", "type": "int"}, {"name": "monthly_charges", "type": "float"},
    {"name": "churned", "type": "int", "nullable": False}]}


def start_operator(sandbox: FaultSandbox, **extra_env: str) -> supervisor.ComponentRecord:
    """Replace the sandbox's operator by one with `extra_env` (same command line, same record)."""
    current = sandbox.record("operator")
    proc = current.process()
    if proc is not None:
        supervisor.stop_processes([proc], timeout=15)
    env = {**operator_env(sandbox.state_dir, _recorded_s3_settings(sandbox.state_dir)), **extra_env}
    record, _ = supervisor.start_component(sandbox.state_dir, "operator", current.argv, env=env)
    return record


def sandbox_up(sandbox: FaultSandbox) -> str:
    done = subprocess.run([sys.executable, "-m", "kadence", "sandbox", "up", "--state-dir", str(sandbox.state_dir)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 400, f"{response.request.method} {response.request.url}: {response.text[:800]}"
    return response


def retrain_runs(client: httpx.Client, ns: str, policy: str) -> list[str]:
    items = client.get(f"{GROUP}/namespaces/{ns}/trainingruns",
                       params={"labelSelector": f"{RETRAINED_BY}={policy}"}).json()["items"]
    return sorted(i["metadata"]["name"] for i in items)


def inline_csv(rows: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["tenure_months,monthly_charges,churned"]
    for _ in range(rows):
        tenure, charges = rng.randint(0, 72), round(rng.uniform(20, 120), 2)
        lines.append(f"{tenure},{charges},{int(charges > 70 and tenure < 24)}")
    return "\n".join(lines) + "\n"


def test_a_retrain_interrupted_before_and_after_its_training_run_starts_once_and_counts_once(fault_sandbox):
    sandbox = fault_sandbox
    ns = namespace(sandbox, "opcrash")
    name = "crashmodel"
    with sandbox.client() as client:
        base = f"{GROUP}/namespaces/{ns}"
        ok(client.post(f"{base}/datasets", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "d"},
            "spec": {"source": {"inline": inline_csv(80, 1)}, "format": "csv", "schema": SCHEMA}}))
        # The serving model says it learnt from an older version of "d": any validated version is new data.
        uri, sha256 = _train_and_store(sandbox, ns)
        ok(client.post(f"{base}/modelversions", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": f"{name}-v1"},
            "spec": {"model": name, "version": 1, "task": "classification", "stage": "Production",
                     "artifact": {"uri": uri, "sha256": sha256}, "lineage": {"dataset": "d", "datasetVersion": "v0"},
                     "signature": {"inputs": [{"name": c, "type": "float"} for c in COLUMNS]}}}))
        wait_for(lambda: (client.get(f"{base}/modelversions/{name}-v1").json().get("status") or {}).get("verified"),
                 timeout=120, message="the ModelVersion to be verified")
        ok(client.post(f"{base}/inferenceservices", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": name},
            "spec": {"model": name, "stage": "Production", "replicas": 0}}))
        wait_for(lambda: (condition(client.get(f"{base}/datasets/d").json(), "Ready") or {}).get("status") == "True",
                 timeout=180, message="the Dataset's first version")

        operator = start_operator(sandbox, KADENCE_FAILPOINT="exit-after-apply:TrainingRun")
        ok(client.post(f"{base}/monitorpolicies", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": "p"},
            "spec": {"inferenceServiceRef": {"name": name}, "interval": "1h", "window": {"duration": "1h"},
                     "performance": {"metric": "f1", "threshold": 0.0},  # never breached: new data decides
                     "actions": {"retrain": {"template": {
                         "datasetRef": {"name": "d"}, "task": "classification", "objective": {"metric": "f1"},
                         "cvFolds": 2, "model": name, "promotion": {"mode": "Candidate"},
                         "search": {"strategy": "random", "maxTrials": 1,
                                    "families": [{"name": "logistic_regression"}]}},
                         "cooldown": "1h", "maxPerDay": 2}},
                     "triggers": {"onBreach": False, "onNewData": {"enabled": True}}}}))
        # Kill point 1: a random moment in the policy's first reconciles.
        time.sleep(random.uniform(0.0, 1.5))
        if operator.alive():
            kill(operator.pid, signal.SIGKILL)
        wait_for(lambda: not operator.alive(), timeout=30, message="the operator to die")
        before_restart = retrain_runs(client, ns, "p")
        assert len(before_restart) <= 1

        # Kill point 2: the TrainingRun applied, the policy's status not yet written.
        operator = start_operator(sandbox, KADENCE_FAILPOINT="exit-after-apply:TrainingRun")
        try:
            wait_for(lambda: not operator.alive(), timeout=180, message="the failpoint after the TrainingRun")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{diagnose(sandbox, ns)}") from None
        assert "failpoint exit-after-apply:TrainingRun" in supervisor.tail(operator.log, 200)
        [run] = retrain_runs(client, ns, "p")
        assert before_restart in ([], [run]), "the decision is remade with the same TrainingRun"
        recorded = [r for r in (client.get(f"{base}/monitorpolicies/p").json().get("status") or {}).get("retrains", [])
                    if r.get("trainingRun")]
        assert recorded == [], "the failpoint fires before the policy's status is written"

        assert "restarted operator" in sandbox_up(sandbox)

        def recorded_once():
            status = client.get(f"{base}/monitorpolicies/p").json().get("status") or {}
            return [r for r in status.get("retrains", []) if r.get("trainingRun")]
        entries = wait_for(recorded_once, timeout=180, message="the restarted operator to record the retrain")
        assert [e["trainingRun"] for e in entries] == [run]
        # Later reconciles (the TrainingRun's own progress wakes the policy) change nothing of this.
        ok(client.patch(f"{base}/monitorpolicies/p", json={"metadata": {"annotations": {"fault/poke": "1"}}},
                     headers={"Content-Type": "application/merge-patch+json"}))
        time.sleep(5)
        assert retrain_runs(client, ns, "p") == [run]
        assert [e["trainingRun"] for e in recorded_once()] == [run], "the budget counts the retrain once"
        print(f"\nretrain {run}: {'already created at' if before_restart else 'not yet created at'} the random "
              "SIGKILL; applied by the next operator, which the failpoint stopped before it wrote status; "
              "recorded once by the restarted operator")
        client.delete(f"/api/v1/namespaces/{ns}")


def test_a_canary_interrupted_by_a_sigkill_is_promoted_or_rolled_back_after_the_restart(fault_sandbox, served_model):
    sandbox, served = fault_sandbox, served_model
    ns, base = served.namespace, f"{GROUP}/namespaces/{served.namespace}"
    stop = threading.Event()

    def traffic():
        with sandbox.client() as api:
            service = api.get(f"/api/v1/namespaces/{ns}/services/{served.name}").json()
        url = f"http://127.0.0.1:{service['metadata']['annotations']['sandbox.kadence.dev/proxy-port']}"
        while not stop.is_set():
            try:
                with httpx.Client(timeout=10) as client:  # a connection each: the proxy balances connections
                    client.post(f"{url}/v1/models/{MODEL}:predict", json=predict_body())
            except httpx.HTTPError:
                pass
            time.sleep(0.05)

    with sandbox.client() as client:
        uri, sha256 = _train_and_store(sandbox, ns, seed=8)
        ok(client.post(f"{base}/modelversions", json={
            "apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": f"{MODEL}-v2"},
            "spec": {"model": MODEL, "version": 2, "task": "classification", "stage": "Candidate",
                     "artifact": {"uri": uri, "sha256": sha256},
                     "signature": {"inputs": [{"name": c, "type": "float"} for c in COLUMNS]}}}))
        wait_for(lambda: (client.get(f"{base}/modelversions/{MODEL}-v2").json().get("status") or {}).get("verified"),
                 timeout=120, message="the canary's ModelVersion to be verified")
        senders = [threading.Thread(target=traffic, daemon=True) for _ in range(3)]
        for sender in senders:
            sender.start()
        try:
            ok(client.patch(f"{base}/inferenceservices/{MODEL}", json={"spec": {"canary": {
                "version": 2, "steps": [{"weight": 50, "pause": "5s"}],
                "analysis": {"interval": "1s", "minRequests": 20, "maxErrorRate": 0.05, "maxLatencyP99Ratio": 50,
                             "maxWait": "90s"}}}},
                headers={"Content-Type": "application/merge-patch+json"}))

            def status():
                return client.get(f"{base}/inferenceservices/{MODEL}").json().get("status") or {}
            wait_for(lambda: status().get("canaryVersion") == 2 and status().get("currentStep") is not None,
                     timeout=180, message="the canary to start")
            kill(sandbox.record("operator").pid, signal.SIGKILL)
            assert "restarted operator" in sandbox_up(sandbox)
            try:
                def ended():
                    s = status()
                    done = s.get("phase") == "RolledBack" or (s.get("phase") == "Stable" and s.get("stableVersion") == 2)
                    return s if done else None
                final = wait_for(ended, timeout=240, message="the canary to be promoted or rolled back")
            except AssertionError as error:
                raise AssertionError(f"{error}\n{diagnose(sandbox, ns)}") from None
        finally:
            stop.set()
            for sender in senders:
                sender.join(timeout=30)
        assert final["stableVersion"] in (1, 2), final
        wait_for(served.settled, timeout=240, message="the rollout of the stable version to finish")
        deployments = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments",
                                 params={"labelSelector": f"kadence.dev/inferenceservice={MODEL}"}).json()["items"]
        roles = sorted(d["metadata"]["labels"].get("kadence.dev/role") for d in deployments
                       if (d["spec"].get("replicas") or 0) > 0)
        assert roles == ["stable"], roles
        print(f"\nthe canary ended {final.get('phase')} with stable version {final['stableVersion']}: "
              f"{final.get('rolloutReason')}")
