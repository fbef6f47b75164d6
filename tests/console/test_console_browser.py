"""`kadence console` end to end: the churn example on the sandbox, two consoles (read-only and
with writes) started as a user starts them, pages driven in headless chromium.

One scenario, run once: the example trains and serves churn-v1; a Candidate churn-v2 approved by
the policy's champion/challenger verdict (written through the status subresource, as the
operator would) is canaried with autoPromote off; the page follows each step without a reload;
the read-only console offers no button and its API refuses; the console with writes promotes it,
which kubectl then shows. Screenshots go to test-artifacts/console/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.sandbox.conftest import wait_for
from tests.sandbox.operator_process import get_json, running_operator

# The module fixture trains the example (minutes on a loaded 2-core machine): past the suite's 300 s default.
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "console-e2e"
TRIALS = 4  # the example's search, cut from 20 trials to keep the suite short
INSTANCE = {"customer_id": "c007-000000", "signup_date": "2020-08-03", "tenure_months": 20, "monthly_charges": 61.28,
            "support_calls": 4, "contract": "month-to-month", "payment_method": "card", "senior": False}


def example_documents() -> list[dict]:
    documents = []
    for path in sorted((REPO / "examples" / "churn").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == "TrainingRun":
                document["spec"]["search"]["maxTrials"] = TRIALS
            if document:
                documents.append(document)
    return documents


def status_of(kubectl, resource: str, name: str) -> dict:
    return (get_json(kubectl, NAMESPACE, resource, name) or {}).get("status") or {}


@pytest.fixture(scope="module")
def churn(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    """The churn example applied and served (churn-v1 in Production behind InferenceService churn)."""
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as operator:
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                     "items": example_documents()}))
        wait_for(lambda: status_of(kubectl, "inferenceservice", "churn").get("stableVersion") == 1
                 and status_of(kubectl, "inferenceservice", "churn").get("phase") == "Stable",
                 timeout=900, interval=1, message="the churn example trained and served as churn-v1")
        yield operator


class Console:
    def __init__(self, process: subprocess.Popen, url: str):
        self.process, self.url = process, url


def start_console(kubeconfig: Path, *flags: str) -> Console:
    """`kadence console --no-browser --port 0 ...` as a user runs it; its first line names its URL."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    process = subprocess.Popen([sys.executable, "-m", "kadence", "console", "--no-browser", "--port", "0",
                                "--namespace", NAMESPACE, *flags], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not match:
        process.kill()
        raise AssertionError(f"kadence console did not start: {line}{process.stdout.read()}")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
    return Console(process, match.group(1))


@pytest.fixture(scope="module")
def consoles(churn, sandbox_kubeconfig):
    read_only = start_console(sandbox_kubeconfig)
    writable = start_console(sandbox_kubeconfig, "--enable-writes")
    yield {"read_only": read_only, "writes": writable}
    for console in (read_only, writable):
        console.process.terminate()
        console.process.wait(timeout=15)


@pytest.fixture(scope="module")
def pages(browser, consoles):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.on("dialog", lambda dialog: dialog.accept())  # the action buttons ask to confirm
    read_only, writable = context.new_page(), context.new_page()
    yield {"read_only": read_only, "writes": writable}
    context.close()


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


# A month of evaluations the operator's monitor Jobs would have written (f1 falls under 0.55 on
# the last one); written through the status subresource, the page reads them from its watch.
HISTORY = [{"time": f"2026-11-{day:02d}T00:00:00Z", "samples": 400, "labelledSamples": 200, "metrics": {"f1": f1},
            "breached": f1 < 0.55, "reason": "QualityBreach" if f1 < 0.55 else "Healthy",
            "driftScores": {"monthly_charges": 0.05 + day / 100, "tenure_months": 0.02}}
           for day, f1 in ((1, 0.81), (8, 0.78), (15, 0.70), (22, 0.61), (29, 0.52))]


def test_the_home_page_lists_the_model_with_its_served_version(pages, consoles, artifacts):
    page = pages["read_only"]
    page.goto(consoles["read_only"].url)
    card = page.locator('.model-card[data-model="churn"]')
    expect()(card).to_be_visible()
    expect()(card.locator(".stable")).to_contain_text("churn-v1")
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)


def test_the_model_page_shows_the_lineage_the_f1_chart_with_its_threshold_and_the_served_version(
        pages, consoles, kubectl, artifacts):
    page = pages["read_only"]
    page.goto(f"{consoles['read_only'].url}models/{NAMESPACE}/churn")
    expect()(page.locator("#served-version")).to_have_text("churn-v1")
    lineage = page.locator("#lineage")
    version = get_json(kubectl, NAMESPACE, "modelversion", "churn-v1")["spec"]["lineage"]
    expect()(lineage).to_contain_text(
        f"Dataset churn@{version['datasetVersion']} → FeatureSet churn-features@{version['featureSetVersion']} → "
        f"TrainingRun churn-initial → ModelVersion churn-v1 (Production) → InferenceService churn (stable)")
    expect()(lineage.locator("svg")).to_have_count(1)

    kubectl("patch", "-n", NAMESPACE, "monitorpolicy", "churn-quality", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"history": HISTORY, "lastEvaluation": HISTORY[-1]}}))
    policy = page.locator('.policy[data-name="churn-quality"]')
    expect()(policy.locator(".threshold")).to_have_text("0.550")
    chart = page.locator("#chart-metric-churn-quality svg")
    expect()(chart).to_have_count(1)
    expect()(chart.locator(".mark-rule.role-mark line")).not_to_have_count(0)  # the threshold
    expect()(chart.locator(".mark-symbol.role-mark path")).to_have_count(len(HISTORY))  # a point per evaluation
    # The search's scores per trial and the model card, read from S3 by the console.
    expect()(page.locator("#chart-trials-churn-initial svg .mark-symbol.role-mark path")).not_to_have_count(0)
    page.locator('.run[data-name="churn-initial"] summary').click()
    card = page.frame_locator('.run[data-name="churn-initial"] iframe.model-card-frame')
    expect()(card.locator("h1")).to_contain_text("Model card: churn")
    page.screenshot(path=str(artifacts / "model.png"), full_page=True)


def service_url(kubectl) -> str:
    def port():
        service = get_json(kubectl, NAMESPACE, "service", "churn") or {}
        return (service.get("metadata", {}).get("annotations") or {}).get("sandbox.kadence.dev/proxy-port")
    return f"http://127.0.0.1:{wait_for(port, timeout=30, message='the Service proxy port')}"


def test_the_churn_examples_model_exports_whole_and_onnxruntime_alone_scores_it_as_served(
        churn, kubectl, sandbox_kubeconfig, sandbox_s3, tmp_path):
    """`kadence models export` on the example's FeatureSet model (expressions, one-hot, buckets, the month of a
    datetime column): the whole graph, raw columns in, scored without Kadence as the InferenceService answers."""
    import numpy as np
    import onnxruntime

    env = {**os.environ, "KUBECONFIG": str(sandbox_kubeconfig), **sandbox_s3.env()}
    done = subprocess.run([sys.executable, "-m", "kadence", "models", "export", "churn-v1", "-n", NAMESPACE,
                           "-o", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "churn-v1.manifest.json").read_text())
    inputs = {i["name"]: i for i in manifest["signature"]["inputs"]}
    assert inputs["signup_date"]["type"] == "int64" and inputs["signup_date"]["encoding"].startswith("milliseconds")
    rows = [{**INSTANCE, "tenure_months": tenure, "contract": contract, "signup_date": f"20{year}-0{month}-15",
             "support_calls": calls}
            for tenure, contract, year, month, calls in ((2, "month-to-month", 21, 3, 5), (40, "two-year", 19, 9, 0),
                                                        (12, "one-year", 23, 1, 2), (30, "month-to-month", 24, 7, 1))]
    feeds = {}
    for name, tensor in inputs.items():
        values = [row[name] for row in rows]
        if tensor.get("encoding"):
            array = np.array([np.datetime64(v, "ms").astype(np.int64) for v in values])
        else:
            array = np.array(values, dtype={"int64": np.int64, "float64": np.float64, "bool": np.bool_,
                                            "string": object}[tensor["type"]])
        feeds[name] = array.reshape(-1, 1)
    labels, _ = onnxruntime.InferenceSession(str(tmp_path / "churn-v1.onnx"),
                                             providers=["CPUExecutionProvider"]).run(None, feeds)
    instances = [{name: row[name] for name in inputs} for row in rows]
    served = httpx.post(f"{service_url(kubectl)}/v1/models/churn:predict", json={"instances": instances},
                        timeout=30).json()["predictions"]
    assert [str(label) for label in labels.ravel().tolist()] == [str(label) for label in served]


@pytest.fixture(scope="module")
def canary(consoles, kubectl):
    """churn-v2 (churn-v1's artifact, registered again) as a Candidate the policy approved; the
    InferenceService canaries it in two one-second steps, then waits for a person (autoPromote off)."""
    v1 = get_json(kubectl, NAMESPACE, "modelversion", "churn-v1")
    v2 = {"apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion", "metadata": {"name": "churn-v2"},
          "spec": {**{k: v for k, v in v1["spec"].items() if k != "stage"}, "version": 2, "stage": "Candidate"}}
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(v2))
    wait_for(lambda: status_of(kubectl, "modelversion", "churn-v2").get("verified"), timeout=60,
             message="churn-v2 verified")
    kubectl("patch", "-n", NAMESPACE, "inferenceservice", "churn", "--type=merge", "-p", json.dumps({"spec": {"canary": {
        "steps": [{"weight": 10, "pause": "1s"}, {"weight": 50, "pause": "1s"}], "autoPromote": False,
        "analysis": {"interval": "1s", "minRequests": 5, "maxErrorRate": 0.5, "maxLatencyP99Ratio": 100,
                     "maxWait": "5m", "quality": None}}}}))
    verdict = {"allowed": True, "rollout": "Canary", "reason": "ChallengerBeatsChampion", "candidate": "churn-v2",
               "champion": "churn-v1", "message": "candidate f1=0.83 vs Production 0.52 on 200 labelled predictions",
               "time": "2026-11-29T01:00:00Z", "metric": "f1", "labelled": 200}
    kubectl("patch", "-n", NAMESPACE, "monitorpolicy", "churn-quality", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"verdicts": [verdict]}}))
    return verdict


def send_traffic(kubectl, stop: threading.Event) -> None:
    """Requests through the Service's local proxy port until told to stop (each step needs some)."""
    def port():
        service = get_json(kubectl, NAMESPACE, "service", "churn") or {}
        return (service.get("metadata", {}).get("annotations") or {}).get("sandbox.kadence.dev/proxy-port")
    url = f"http://127.0.0.1:{wait_for(port, timeout=30, message='the Service proxy port')}/v1/models/churn:predict"
    signature = get_json(kubectl, NAMESPACE, "modelversion", "churn-v1")["spec"]["signature"]["inputs"]
    instance = {column["name"]: INSTANCE[column["name"]] for column in signature}  # the columns the model takes
    while not stop.is_set():
        try:
            with httpx.Client(timeout=10) as client:  # a fresh connection: the proxy balances connections
                client.post(url, json={"instances": [instance]})
        except httpx.HTTPError:
            pass
        stop.wait(0.05)


def test_during_a_canary_the_page_shows_each_step_without_a_reload(pages, consoles, canary, kubectl, artifacts):
    page = pages["writes"]
    page.goto(f"{consoles['writes'].url}models/{NAMESPACE}/churn")
    expect()(page.locator("#served-version")).to_have_text("churn-v1")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    first = page.locator('.service [data-step-index="0"]')
    expect()(first).to_have_attribute("data-state", "current", timeout=120_000)
    # The weight the rollout reports: the share of serving pods (one canary pod of two is 50%).
    weight = status_of(kubectl, "inferenceservice", "churn")["canaryWeight"]
    expect()(page.locator("#canary-step")).to_contain_text(f"canary churn-v2 (challenger) at {weight}%, step 1 of 2")

    stop = threading.Event()
    traffic = threading.Thread(target=send_traffic, args=(kubectl, stop), daemon=True)
    traffic.start()
    try:
        wait_for(lambda: status_of(kubectl, "inferenceservice", "churn").get("currentStep") == 1, timeout=180,
                 interval=0.1, message="the canary's second step")
        seen_at = time.monotonic()
        expect()(page.locator('.service [data-step-index="1"]')).to_have_attribute("data-state", "current")
        print(f"the page showed step 2 {time.monotonic() - seen_at:.2f} s after kubectl saw it")
        expect()(page.locator('.service [data-step-index="0"]')).to_have_attribute("data-state", "done")
        wait_for(lambda: status_of(kubectl, "inferenceservice", "churn").get("phase") == "Paused", timeout=180,
                 interval=0.2, message="the canary paused at its last step, awaiting promotion")
    finally:
        stop.set()
        traffic.join(timeout=15)
    expect()(page.locator("#canary-step")).to_contain_text("step 2 of 2 · Paused")
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(artifacts / "canary.png"), full_page=True)


def test_without_writes_the_promote_button_is_absent_and_the_api_refuses(pages, consoles, canary, kubectl):
    page = pages["read_only"]
    page.goto(f"{consoles['read_only'].url}models/{NAMESPACE}/churn")
    expect()(page.locator("#canary-step")).to_contain_text("Paused")
    expect()(page.locator("#read-only")).to_be_visible()
    expect()(page.locator("button[data-action]")).to_have_count(0)
    response = httpx.post(f"{consoles['read_only'].url}api/actions", timeout=10, json={
        "namespace": NAMESPACE, "model": "churn", "action": "promote", "name": "churn"})
    assert response.status_code == 403
    assert "start the console with `kadence console --enable-writes`" in response.json()["error"]
    annotations = get_json(kubectl, NAMESPACE, "inferenceservice", "churn")["metadata"].get("annotations") or {}
    assert "kadence.dev/promote" not in annotations
    assert status_of(kubectl, "inferenceservice", "churn")["phase"] == "Paused"


def test_with_writes_promote_on_the_approved_candidate_promotes_it(pages, consoles, canary, kubectl, artifacts):
    page = pages["writes"]
    button = page.locator('button[data-action="promote"][data-name="churn"]')
    expect()(button).to_have_text("Promote canary churn-v2")
    button.click()
    expect()(page.locator("#action-result")).to_contain_text("promoted canary churn-v2 of churn in kadence console")
    wait_for(lambda: status_of(kubectl, "inferenceservice", "churn").get("stableVersion") == 2
             and status_of(kubectl, "modelversion", "churn-v2").get("stage") == "Production",
             timeout=180, interval=0.5, message="churn-v2 promoted: stable and in Production")
    events = get_json(kubectl, NAMESPACE, "events", "--field-selector", "involvedObject.name=churn")["items"]
    [promoted] = [e for e in events if e["reason"] == "ConsolePromote"]
    # Who: the API server's SelfSubjectReview (the sandbox answers it, as kube-apiserver >= 1.28 does).
    assert promoted["message"] == ("kadence-sandbox-admin (kadence console) promoted canary churn-v2 of churn in kadence "
                                   "console (kadence.dev/promote)")
    assert promoted["source"]["component"] == "kadence-console"
    expect()(page.locator("#served-version")).to_have_text("churn-v2", timeout=60_000)
    page.screenshot(path=str(artifacts / "promoted.png"), full_page=True)


def test_with_writes_retrain_now_writes_the_policys_request_and_the_planner_handles_it(pages, consoles, kubectl):
    """The button writes spec.triggers.manual; the operator handles it as any trigger: churn-v1's
    data and spec are all there is, so nothing new to learn, the decision naming who asked."""
    page = pages["writes"]
    page.goto(f"{consoles['writes'].url}models/{NAMESPACE}/churn")
    button = page.locator('button[data-action="retrain"][data-name="churn-quality"]')
    expect()(button).to_have_text("Retrain now (churn-quality)")
    button.click()  # the prompt asking why is accepted empty: the console's default reason
    expect()(page.locator("#action-result")).to_contain_text(
        "kadence-sandbox-admin (kadence console) asked MonitorPolicy churn-quality to retrain in kadence console")
    request = get_json(kubectl, NAMESPACE, "monitorpolicy", "churn-quality")["spec"]["triggers"]["manual"]
    assert request["requestedBy"] == "kadence-sandbox-admin (kadence console)"
    assert request["reason"] == "asked in kadence console"
    wait_for(lambda: status_of(kubectl, "monitorpolicy", "churn-quality").get("lastManualRequest")
             == request["requestedAt"], timeout=120, interval=0.5, message="the operator handled the request")
    decision = status_of(kubectl, "monitorpolicy", "churn-quality")["lastRetrainDecision"]
    assert (decision["trigger"], decision["reason"]) == ("manual", "NothingNewToLearn"), decision
    assert "(manual: requested by kadence-sandbox-admin (kadence console) at" in decision["message"]
    events = get_json(kubectl, NAMESPACE, "events", "--field-selector", "involvedObject.name=churn-quality")["items"]
    assert any(e["reason"] == "ConsoleRetrain" and e["source"]["component"] == "kadence-console" for e in events)
    expect()(button).to_have_count(1)  # handled: another request may be made


def test_a_retrain_request_patched_by_hand_with_kubectl_is_handled_once(kubectl):
    explained = kubectl("explain", "monitorpolicies.spec.triggers.manual").stdout
    assert "requestedAt" in explained and "requestedBy" in explained and "reason" in explained
    request = {"requestedAt": "2026-12-07T23:00:00Z", "requestedBy": "alice", "reason": "labels of May are in"}
    kubectl("patch", "-n", NAMESPACE, "monitorpolicy", "churn-quality", "--type=merge",
            "-p", json.dumps({"spec": {"triggers": {"manual": request}}}))
    wait_for(lambda: status_of(kubectl, "monitorpolicy", "churn-quality").get("lastManualRequest")
             == request["requestedAt"], timeout=120, interval=0.5, message="the operator handled alice's request")
    decision = status_of(kubectl, "monitorpolicy", "churn-quality")["lastRetrainDecision"]
    assert decision["trigger"] == "manual"
    assert "(manual: requested by alice at 2026-12-07T23:00:00Z: labels of May are in)" in decision["message"]
    invalid = kubectl("patch", "-n", NAMESPACE, "monitorpolicy", "churn-quality", "--type=merge", "-p",
                      json.dumps({"spec": {"triggers": {"manual": {"requestedAt": "yesterday", "requestedBy": "bob"}}}}),
                      check=False)
    assert invalid.returncode != 0 and "requestedAt" in invalid.stderr
