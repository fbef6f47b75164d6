"""The serving loop in the sandbox: an InferenceService tracking Production, a canary rolled
through its steps with the traffic split following the replica ratio, promotion moving the
ModelVersion stages, a failing canary rolled back with its reason, a Candidate approved by a
champion/challenger verdict canaried and promoted by itself, and shadow traffic.

Models are tiny scikit-learn pipelines trained here and stored as skops artifacts in the
sandbox S3; ModelVersions point at them and are verified by the ModelVersion controller.
Requests go through the Service's local proxy port, one connection each, so the proxy's
round robin over ready pods shows the replica ratio.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from kadence.sandbox import s3, supervisor

from .conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "isvc-loop"
MODEL = "churn"
COLUMNS = ["tenure", "charges", "calls"]
ROWS = [{"tenure": 1.5, "charges": -0.3, "calls": 0.2}, {"tenure": -2.0, "charges": 0.4, "calls": -1.0},
        {"tenure": 0.1, "charges": 2.2, "calls": 0.7}, {"tenure": -0.4, "charges": -1.6, "calls": 1.9}]


# ------------------------------------------------------------------ models


def training_data(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=COLUMNS)
    return frame, ((frame.tenure - frame.charges + 0.3 * rng.normal(size=300)) > 0).astype(int)


def good_model(seed: int, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = training_data(seed)
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=c))]).fit(features, labels)


def contrarian_model():
    """A deliberately worse model: fitted to the opposite of the true labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = training_data(4)
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(features, 1 - labels)


def failing_model():
    """Loads and becomes ready, then fails every prediction: a damaged model whose
    coefficients always pick the second class while it lists only one class, so picking
    the label raises IndexError inside predict (answered 500) - broken only under traffic."""
    pipeline = good_model(3, 1.0)
    estimator = pipeline.named_steps["model"]
    estimator.intercept_ = np.array([100.0])
    estimator.classes_ = estimator.classes_[:1]
    return pipeline


def store_model(storage: s3.S3Settings, pipeline, version: int) -> tuple[str, str]:
    from kadence.domain.training.artifact import dumps, sha256_hex
    from kadence.storage import ObjectStore, StorageConfig

    data = dumps(pipeline)
    store = ObjectStore(StorageConfig.from_env(storage.env()))
    key = f"raw/{NAMESPACE}/models/{MODEL}/{version}/{sha256_hex(data)}/model.skops"  # the namespace's own prefix
    store.put_bytes(key, data)
    return store.uri(key), sha256_hex(data)


def model_version(version: int, uri: str, sha256: str, stage: str) -> dict:
    return {
        "apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v{version}", "annotations": {
            "kadence.dev/changed-by": "test", "kadence.dev/reason": "imported by the serving test"}},
        "spec": {"model": MODEL, "version": version, "task": "classification", "stage": stage,
                 "artifact": {"uri": uri, "sha256": sha256},
                 "signature": {"inputs": [{"name": c, "type": "float"} for c in COLUMNS]}},
    }


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def operator_process(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("create", "namespace", NAMESPACE)
    kubectl("apply", "-f", "-", input=json.dumps(s3.secret_manifest(sandbox_s3, NAMESPACE)))
    metrics_port = supervisor.free_port()
    log = open(sandbox_apiserver.state_dir / f"operator-{NAMESPACE}.log", "w")
    env = {**os.environ, "KUBECONFIG": str(sandbox_kubeconfig), **sandbox_s3.operator_env(),
           "KADENCE_METRICS_PORT": str(metrics_port), "KADENCE_METRICS_ADDRESS": "127.0.0.1"}
    process = subprocess.Popen([sys.executable, "-m", "kadence", "operator", "--namespace", NAMESPACE],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    yield process
    supervisor.stop_processes([supervisor.psutil.Process(process.pid)], timeout=15)
    log.close()


@pytest.fixture(scope="module")
def models(operator_process, sandbox_s3, kubectl):
    """v1 in Production, v2 a better Candidate, v3 a Candidate that fails every request,
    v4 a Candidate that answers but is wrong."""
    pipelines = {1: good_model(1, 0.01), 2: good_model(2, 10.0), 3: failing_model(), 4: contrarian_model()}
    stages = ((1, "Production"), (2, "Candidate"), (3, "Candidate"), (4, "Candidate"))
    for version, stage in stages:
        uri, sha256 = store_model(sandbox_s3, pipelines[version], version)
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(model_version(version, uri, sha256, stage)))
    for version, stage in stages:
        wait_for(lambda: (status_of(kubectl, "modelversion", f"{MODEL}-v{version}").get("stage") == stage
                          and status_of(kubectl, "modelversion", f"{MODEL}-v{version}").get("verified")),
                 timeout=60, message=f"ModelVersion v{version} verified in {stage}")
    return pipelines


# ------------------------------------------------------------------ helpers


def get_json(kubectl, *what: str) -> dict | None:
    result = kubectl("get", *what, "-n", NAMESPACE, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def status_of(kubectl, resource: str, name: str) -> dict:
    return (get_json(kubectl, resource, name) or {}).get("status") or {}


def condition(status: dict, type_: str) -> dict:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def events_for(kubectl, name: str, reason: str) -> list[dict]:
    events = get_json(kubectl, "events", "--field-selector", f"involvedObject.name={name}") or {"items": []}
    return [e for e in events["items"] if e["reason"] == reason]


def apply_isvc(kubectl, name: str, spec: dict) -> None:
    body = {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": name},
            "spec": spec}
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(body))


def proxy_url(kubectl, service: str) -> str:
    def port():
        svc = get_json(kubectl, "service", service)
        return ((svc or {}).get("metadata", {}).get("annotations") or {}).get("sandbox.kadence.dev/proxy-port")
    return f"http://127.0.0.1:{wait_for(port, timeout=30, message=f'proxy port of Service {service}')}"


def ready_replicas(kubectl, isvc: str) -> dict[str, tuple[int, str]]:
    """{role: (ready pods, model version)} of the isvc's pods that the proxy sends traffic to
    (Ready and not being deleted); a role whose pods run two versions shows both, joined."""
    found = get_json(kubectl, "pods", "-l", f"kadence.dev/inferenceservice={isvc}") or {"items": []}
    versions: dict[str, list[str]] = {}
    for pod in found["items"]:
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
        if ready and not pod["metadata"].get("deletionTimestamp"):
            labels = pod["metadata"]["labels"]
            versions.setdefault(labels["kadence.dev/role"], []).append(labels["kadence.dev/model-version"])
    return {role: (len(found), ",".join(sorted(set(found)))) for role, found in versions.items()}


def rollout_view(kubectl, isvc: str) -> tuple:
    status = status_of(kubectl, "inferenceservice", isvc)
    return (status.get("currentStep"), ready_replicas(kubectl, isvc), status.get("phase"), status.get("canaryWeight"),
            status.get("rolloutReason"))


def infer(url: str, rows: list[dict], request_id: str | None = None) -> httpx.Response:
    """One v2 request on a fresh connection (the proxy balances connections)."""
    body = {"inputs": [{"name": c, "datatype": "FP64", "shape": [len(rows)], "data": [r[c] for r in rows]}
                       for c in COLUMNS], "outputs": [{"name": "predict"}]}
    if request_id:
        body["id"] = request_id
    with httpx.Client(timeout=10) as client:
        return client.post(f"{url}/v2/models/{MODEL}/infer", json=body)


def answering_versions(url: str, count: int) -> list[str]:
    """The model version behind each of `count` requests (5xx answers count as 'error')."""
    answered = []
    for _ in range(count):
        response = infer(url, ROWS[:1])
        answered.append(response.json()["model_version"] if response.status_code == 200 else "error")
    return answered


def send_until(url: str, done, message: str, timeout: float = 90) -> None:
    """Keep traffic flowing (the analysis needs requests) until `done()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        answering_versions(url, 5)
    raise AssertionError(f"timed out waiting for {message}")


def rollback_count(operator_process, isvc: str) -> float:
    pattern = re.compile(r'^kadence_canary_rollbacks_total\{inferenceservice="%s",namespace="%s"\} ([0-9.]+)$'
                         % (isvc, NAMESPACE), re.M)
    try:
        match = pattern.search(httpx.get(operator_process.metrics_url, timeout=2).text)
    except httpx.HTTPError:
        return 0.0
    return float(match.group(1)) if match else 0.0


CANARY_ANALYSIS = {"interval": "1s", "minRequests": 30, "maxErrorRate": 0.05, "maxLatencyP99Ratio": 50,
                   "maxWait": "90s"}


# ------------------------------------------------------------------ the loop


def test_the_production_version_serves_then_a_canary_steps_through_its_weights_and_is_promoted(
        operator_process, models, kubectl):
    apply_isvc(kubectl, MODEL, {"model": MODEL, "stage": "Production", "replicas": 3})
    wait_for(lambda: (s := status_of(kubectl, "inferenceservice", MODEL)).get("phase") == "Stable"
             and condition(s, "Ready").get("status") == "True" and s,
             timeout=90, message="InferenceService Stable and Ready on v1")
    status = status_of(kubectl, "inferenceservice", MODEL)
    assert status["stableVersion"] == 1
    # Starting up is not a failure: no Warning while the first replica comes up.
    starting = events_for(kubectl, MODEL, "StableStarting")
    assert starting and {e["type"] for e in starting} == {"Normal"}
    assert not events_for(kubectl, MODEL, "StableNotReady")
    assert status["url"] == f"http://{MODEL}.{NAMESPACE}.svc.cluster.local/v1/models/{MODEL}:predict"
    wait_for(lambda: ready_replicas(kubectl, MODEL).get("stable") == (3, "1"), timeout=60,
             message="three stable replicas of v1")
    url = proxy_url(kubectl, MODEL)

    # v1 and v2 protocols both answer with the Production model's predictions.
    expected_v1 = models[1].predict(pd.DataFrame(ROWS)).tolist()
    with httpx.Client(timeout=10) as client:
        v1 = client.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": ROWS})
    assert v1.status_code == 200, v1.text
    assert v1.json()["predictions"] == expected_v1
    v2 = infer(url, ROWS)
    assert v2.status_code == 200, v2.text
    assert v2.json()["model_version"] == "1"
    assert v2.json()["outputs"][0]["data"] == expected_v1

    # Feedback needs the InferenceService's token, read from its Secret the way a user reads it.
    encoded = kubectl("get", "secret", f"{MODEL}-feedback-token", "-n", NAMESPACE, "-o", "jsonpath={.data.token}").stdout
    token = base64.b64decode(encoded).decode()
    label = {"requestId": v2.json()["id"], "label": int(expected_v1[0])}
    with httpx.Client(timeout=10) as client:
        refused = client.post(f"{url}/v2/models/{MODEL}/feedback", json=label)
        stored = client.post(f"{url}/v2/models/{MODEL}/feedback", json=label, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401, refused.text
    assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text

    # A canary of v2 in two steps: 30% of 3 replicas is one canary pod (1 of 3), 60% two (2 of 3).
    apply_isvc(kubectl, MODEL, {"model": MODEL, "stage": "Production", "replicas": 3, "canary": {
        "version": 2, "steps": [{"weight": 30, "pause": "2s"}, {"weight": 60, "pause": "2s"}],
        "analysis": CANARY_ANALYSIS, "autoPromote": False}})
    for step, (stable_pods, canary_pods) in enumerate([(2, 1), (1, 2)]):
        expected = (step, {"stable": (stable_pods, "1"), "canary": (canary_pods, "2")})
        wait_for(lambda: (view := rollout_view(kubectl, MODEL))[:2] == expected or print(view),
                 timeout=90, message=f"step {step + 1} with {stable_pods} stable and {canary_pods} canary pods")
        status = status_of(kubectl, "inferenceservice", MODEL)
        assert status["phase"] == "Progressing"
        assert status["canaryVersion"] == 2
        assert status["canaryWeight"] == round(100 * canary_pods / 3), (status, ready_replicas(kubectl, MODEL))
        # Fewer canary answers than minRequests: the step cannot pass while we sample.
        answered = answering_versions(url, 24)
        assert set(answered) <= {"1", "2"}
        assert answered.count("2") == pytest.approx(24 * canary_pods / 3, abs=3)
        if step == 0:
            send_until(url, lambda: status_of(kubectl, "inferenceservice", MODEL).get("currentStep") == 1,
                       "step 1 to pass")
    send_until(url, lambda: status_of(kubectl, "inferenceservice", MODEL).get("phase") == "Paused",
               "the last step to pass")
    status = status_of(kubectl, "inferenceservice", MODEL)
    assert status["rolloutReason"].startswith("awaiting promotion") and status["stableVersion"] == 1
    assert events_for(kubectl, MODEL, "CanaryAwaitingPromotion")

    # A person approves: the annotation promotes the canary and is removed once acted on.
    kubectl("annotate", "-n", NAMESPACE, "inferenceservice", MODEL, "kadence.dev/promote=true")
    wait_for(lambda: status_of(kubectl, "inferenceservice", MODEL).get("stableVersion") == 2, timeout=30,
             message="the canary promoted on request")
    wait_for(lambda: "kadence.dev/promote" not in (get_json(kubectl, "inferenceservice", MODEL)["metadata"]
                                                   .get("annotations") or {}),
             timeout=30, message="the promote annotation removed")

    wait_for(lambda: status_of(kubectl, "inferenceservice", MODEL).get("phase") == "Stable", timeout=60,
             message="Stable on v2")
    status = status_of(kubectl, "inferenceservice", MODEL)
    assert status["stableVersion"] == 2 and status.get("canaryVersion") is None
    # step 1 passed, step 2 passed (awaiting promotion), judged once more when promoted
    assert [(a["step"], a["passed"]) for a in status["analysis"]] == [(0, True), (1, True), (1, True)]
    assert all(a["requests"] >= 30 and a["errorRate"] == 0 for a in status["analysis"])
    assert events_for(kubectl, MODEL, "CanaryStepPassed") and events_for(kubectl, MODEL, "Promoted")
    wait_for(lambda: status_of(kubectl, "modelversion", f"{MODEL}-v2").get("stage") == "Production"
             and status_of(kubectl, "modelversion", f"{MODEL}-v1").get("stage") == "Archived",
             timeout=60, message="v2 Production and v1 Archived in the registry")
    history = status_of(kubectl, "modelversion", f"{MODEL}-v2")["history"]
    assert history[-1]["stage"] == "Production" and "kadence-operator" in history[-1]["by"]
    assert "passed every step" in history[-1]["reason"]
    wait_for(lambda: "canary" not in ready_replicas(kubectl, MODEL)
             and ready_replicas(kubectl, MODEL).get("stable") == (3, "2"),
             timeout=60, message="three stable replicas of v2 and no canary")
    assert set(answering_versions(url, 9)) == {"2"}
    expected_v2 = models[2].predict(pd.DataFrame(ROWS)).tolist()
    assert infer(url, ROWS).json()["outputs"][0]["data"] == expected_v2


def test_a_canary_that_fails_its_requests_is_rolled_back_with_the_reason(operator_process, models, kubectl):
    wait_for(lambda: status_of(kubectl, "inferenceservice", MODEL).get("stableVersion") == 2, timeout=5,
             message="v2 stable (after the promotion test)")
    before = rollback_count(operator_process, MODEL)
    apply_isvc(kubectl, MODEL, {"model": MODEL, "stage": "Production", "replicas": 3, "canary": {
        "version": 3, "steps": [{"weight": 30, "pause": "2s"}, {"weight": 60, "pause": "2s"}],
        "analysis": CANARY_ANALYSIS}})
    wait_for(lambda: (view := rollout_view(kubectl, MODEL))[1].get("canary") == (1, "3") or print(view),
             timeout=90, message="the failing canary ready (it loads fine)")
    url = proxy_url(kubectl, MODEL)
    send_until(url, lambda: status_of(kubectl, "inferenceservice", MODEL).get("phase") == "RolledBack",
               "the rollback")

    status = status_of(kubectl, "inferenceservice", MODEL)
    assert status["stableVersion"] == 2 and status["canaryWeight"] == 0
    assert status["rolloutReason"].startswith("AnalysisFailed: error rate 1.0000 is above 0.05")
    healthy = condition(status, "CanaryHealthy")
    assert (healthy["status"], healthy["reason"]) == ("False", "RolledBack")
    assert "error rate 1.0000" in healthy["message"]
    assert status["analysis"][-1]["passed"] is False
    event = wait_for(lambda: events_for(kubectl, MODEL, "RolledBack"), timeout=30, message="RolledBack event")[0]
    assert event["type"] == "Warning" and "canary version 3 rolled back at 30%" in event["message"]
    assert wait_for(lambda: rollback_count(operator_process, MODEL) >= before + 1, timeout=30,
                    message="the rollback counted")
    wait_for(lambda: "canary" not in ready_replicas(kubectl, MODEL), timeout=60, message="canary removed")
    assert set(answering_versions(url, 9)) == {"2"}
    assert status_of(kubectl, "modelversion", f"{MODEL}-v3").get("stage") == "Candidate"


def test_a_canary_worse_on_labelled_feedback_is_rolled_back_by_its_quality_gate(operator_process, models, kubectl):
    wait_for(lambda: status_of(kubectl, "inferenceservice", MODEL).get("stableVersion") == 2, timeout=5,
             message="v2 stable (after the promotion test)")
    # The pause outlasts the servers' prediction-log flush (10 s), so labels arrive within the step.
    apply_isvc(kubectl, MODEL, {"model": MODEL, "stage": "Production", "replicas": 3, "canary": {
        "version": 4, "steps": [{"weight": 30, "pause": "2m"}],
        "analysis": {**CANARY_ANALYSIS, "quality": {"metric": "accuracy", "maxDrop": 0.1, "minLabelled": 10}}}})
    wait_for(lambda: (view := rollout_view(kubectl, MODEL))[1].get("canary") == (1, "4") or print(view),
             timeout=90, message="the contrarian canary ready")
    url = proxy_url(kubectl, MODEL)
    rng = np.random.default_rng(7)
    token = base64.b64decode(kubectl("get", "secret", f"{MODEL}-feedback-token", "-n", NAMESPACE, "-o",
                                     "jsonpath={.data.token}").stdout).decode()

    def traffic_with_feedback() -> None:
        rows = [dict(zip(COLUMNS, values)) for values in rng.normal(size=(10, 3)).tolist()]
        feedback = []
        for row in rows:
            request_id = uuid.uuid4().hex
            if infer(url, [row], request_id).status_code == 200:
                feedback.append({"requestId": request_id, "label": int(row["tenure"] - row["charges"] > 0)})
        with httpx.Client(timeout=10) as client:
            assert client.post(f"{url}/v1/models/{MODEL}/feedback", json={"feedback": feedback},
                               headers={"Authorization": f"Bearer {token}"}).status_code == 200

    deadline = time.monotonic() + 120
    while status_of(kubectl, "inferenceservice", MODEL).get("phase") != "RolledBack":
        assert time.monotonic() < deadline, rollout_view(kubectl, MODEL)
        traffic_with_feedback()

    status = status_of(kubectl, "inferenceservice", MODEL)
    assert re.match(r"AnalysisFailed: accuracy [01]\.\d{3} is [01]\.\d{3} below stable's [01]\.\d{3} \(at most 0\.1\)",
                    status["rolloutReason"]), status["rolloutReason"]
    last = status["analysis"][-1]
    assert last["passed"] is False and last["qualityDelta"] < -0.1
    assert status["stableVersion"] == 2
    wait_for(lambda: "canary" not in ready_replicas(kubectl, MODEL), timeout=60, message="canary removed")


def test_a_candidate_approved_by_its_challenger_verdict_is_canaried_and_promoted_by_itself(
        operator_process, models, kubectl, sandbox_s3):
    wait_for(lambda: status_of(kubectl, "inferenceservice", MODEL).get("stableVersion") == 2, timeout=5,
             message="v2 stable (after the promotion test)")
    uri, sha256 = store_model(sandbox_s3, good_model(5, 1.0), 5)
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(model_version(5, uri, sha256, "Candidate")))
    wait_for(lambda: status_of(kubectl, "modelversion", f"{MODEL}-v5").get("verified"), timeout=60,
             message="ModelVersion v5 verified")
    # spec.canary without a version: the steps and analysis for approved challengers. Two
    # replicas (one per role at 50%) keep the promotion's rolling update short.
    apply_isvc(kubectl, MODEL, {"model": MODEL, "stage": "Production", "replicas": 2, "canary": {
        "steps": [{"weight": 50, "pause": "2s"}], "analysis": CANARY_ANALYSIS}})
    wait_for(lambda: status_of(kubectl, "inferenceservice", MODEL).get("phase") == "Stable", timeout=30,
             message="Stable on v2: no candidate is approved yet")
    assert status_of(kubectl, "inferenceservice", MODEL).get("canaryVersion") is None

    verdict = {"allowed": True, "reason": "ChallengerBeatsChampion", "candidate": f"{MODEL}-v5",
               "message": "candidate f1=0.930 vs Production 0.880 on 200 labelled predictions",
               "time": "2026-11-23T12:00:00Z", "job": "churn-quality-compare-churn-v5", "metric": "f1"}
    # The verdict is a MonitorPolicy's typed status (written by the operator's champion/challenger;
    # here by the test through the status subresource, which a user editing ModelVersions cannot).
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps({
        "apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": "churn-quality"},
        "spec": {"inferenceServiceRef": {"name": MODEL}, "interval": "24h",
                 "performance": {"metric": "f1", "threshold": 0.5}}}))
    kubectl("patch", "-n", NAMESPACE, "monitorpolicy", "churn-quality", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"verdicts": [verdict]}}))
    wait_for(lambda: (view := rollout_view(kubectl, MODEL))[1].get("canary") == (1, "5") or print(view),
             timeout=90, message="the approved challenger v5 on one of two pods")
    status = status_of(kubectl, "inferenceservice", MODEL)
    assert (status["phase"], status["canaryVersion"], status["canarySource"]) == ("Progressing", 5, "challenger")
    assert status["canaryApproval"] == f"ChallengerBeatsChampion: {verdict['message']}"
    started = [e["message"] for e in events_for(kubectl, MODEL, "CanaryStarted")]
    assert f"canary version 5 (approved challenger: {verdict['message']}) started at 50% of traffic" in started
    assert get_json(kubectl, "inferenceservice", MODEL)["spec"]["canary"].get("version") is None  # spec untouched

    url = proxy_url(kubectl, MODEL)
    send_until(url, lambda: status_of(kubectl, "inferenceservice", MODEL).get("phase") == "Stable",
               "the challenger to pass its step and be promoted")
    status = status_of(kubectl, "inferenceservice", MODEL)
    assert (status["stableVersion"], status.get("canaryVersion"), status.get("canarySource")) == (5, None, None)
    assert status["analysis"][-1]["passed"] is True and status["analysis"][-1]["requests"] >= 30
    wait_for(lambda: (stages := [status_of(kubectl, "modelversion", f"{MODEL}-v{v}").get("stage") for v in (5, 2)])
             == ["Production", "Archived"] or print(stages, rollout_view(kubectl, MODEL)),
             timeout=60, message="v5 Production and v2 Archived in the registry")
    history = status_of(kubectl, "modelversion", f"{MODEL}-v5")["history"]
    assert "kadence-operator" in history[-1]["by"]
    assert history[-1]["reason"] == f"canary version 5 (approved challenger) passed every step of InferenceService " \
                                    f"{NAMESPACE}/{MODEL}"
    wait_for(lambda: (view := rollout_view(kubectl, MODEL))[1] == {"stable": (2, "5")} or print(view), timeout=60,
             message="two stable replicas of v5 and no canary")
    assert set(answering_versions(url, 6)) == {"5"}
    kubectl("delete", "monitorpolicy", "churn-quality", "-n", NAMESPACE, "--wait=false")


def logged_predictions(storage: s3.S3Settings, isvc: str):
    from datetime import datetime, timedelta, timezone

    from kadence.domain.monitoring.logformat import predictions_prefix
    from kadence.storage import ObjectStore, StorageConfig
    from kadence.workloads.monitor_io import LogWindow, read_prediction_logs

    store = ObjectStore(StorageConfig.from_env(storage.env()))
    window = LogWindow(end=datetime.now(timezone.utc) + timedelta(minutes=1), duration=timedelta(hours=1))
    return read_prediction_logs(store, predictions_prefix(NAMESPACE, isvc), window).meta


def test_shadow_traffic_is_answered_by_stable_and_logged_for_the_shadow_version_only(
        operator_process, models, kubectl, sandbox_s3):
    name = f"{MODEL}-shadowed"
    apply_isvc(kubectl, name, {"model": MODEL, "version": 2, "shadow": {"version": 1}, "logging": {"enabled": False}})
    wait_for(lambda: (view := rollout_view(kubectl, name))[1] == {"stable": (1, "2"), "shadow": (1, "1")}
             and view[2] == "Stable" or print(view), timeout=90, message="stable v2 and shadow v1 ready")
    url = proxy_url(kubectl, name)
    ids = [f"shadowed-{uuid.uuid4().hex[:8]}-{i}" for i in range(len(ROWS))]
    answers = [infer(url, [row], request_id) for request_id, row in zip(ids, ROWS)]
    assert [a.status_code for a in answers] == [200] * len(ROWS)
    assert {a.json()["model_version"] for a in answers} == {"2"}
    assert [a.json()["outputs"][0]["data"][0] for a in answers] == models[2].predict(pd.DataFrame(ROWS)).tolist()

    # Stable logs nothing (logging is off); the shadow always logs, under its own version.
    logged = wait_for(lambda: len(records := logged_predictions(sandbox_s3, name).to_dict("records")) >= len(ids)
                      and records, timeout=60, message="the shadow's prediction log in S3")
    assert {r["model_version"] for r in logged} == {"1"}
    by_id = {r["request_id"]: r["prediction"] for r in logged}
    assert [by_id[i] for i in ids] == models[1].predict(pd.DataFrame(ROWS)).tolist()
