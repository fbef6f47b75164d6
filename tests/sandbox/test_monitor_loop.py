"""MonitorPolicies in the sandbox, driven with kubectl (issues 8 and 10).

The model server is not involved: the test writes prediction logs and feedback to the sandbox
S3 in the model server's format (`kadence.domain.monitoring.logformat`), with predictions
made by the registered Production model itself."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sklearn.metrics import f1_score

from kadence.domain.monitoring.logformat import encode_batch, feedback_batch_key, prediction_batch_key
from kadence.domain.monitoring.policy import NOT_JUDGED_REASONS
from kadence.domain.synthetic import churn_frame
from kadence.domain.training.artifact import loads
from kadence.sandbox import s3

from ..http_receiver import Receiver
from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA
from .test_training_loop import apply, data_and_features, finished, training_run

NAMESPACE = "monitor-loop"
ISVC = "churn"
TARGET = "churned"
INTERVAL_S = 10
THRESHOLD = 0.3
RETRAIN_SEARCH = {"strategy": "random", "maxTrials": 1, "families": [{"name": "logistic_regression"}]}


def kubectl_list(kubectl, what: str, selector: str) -> list[dict]:
    return json.loads(kubectl("get", what, "-n", NAMESPACE, "-l", selector, "-o", "json").stdout)["items"]


def retrain_runs(kubectl, policy: str) -> list[dict]:
    return kubectl_list(kubectl, "trainingruns", f"kadence.dev/retrained-by={policy}")


def events_of(kubectl, name: str) -> list[dict]:
    items = json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    return [e for e in items if e.get("involvedObject", {}).get("name") == name
            and e.get("involvedObject", {}).get("kind") == "MonitorPolicy"]


def metric_line(operator, name: str, **labels) -> str:
    """The sample line of one series on the operator's /metrics, or '' when absent."""
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    text = httpx.get(operator.metrics_url, timeout=10).text
    return next((line for line in text.splitlines() if line.startswith(wanted + " ")), "")


def evaluated_after(kubectl, policy: str, moment: datetime, namespace: str = NAMESPACE, **expected) -> dict | None:
    """The policy once its last evaluation's window ends after `moment` (and matches `expected`)."""
    obj = get_json(kubectl, namespace, "monitorpolicy", policy)
    last = ((obj or {}).get("status") or {}).get("lastEvaluation") or {}
    if not last.get("time") or datetime.fromisoformat(last["time"].replace("Z", "+00:00")) < moment:
        return None
    return obj if all(last.get(k) == v for k, v in expected.items()) else None


class Traffic:
    """Writes what the model server and the label source would: predictions, then feedback."""

    def __init__(self, settings: s3.S3Settings, model, version: int, namespace: str = NAMESPACE):
        self.client = s3.client(settings)
        self.bucket = settings.bucket
        self.model = model
        self.version = str(version)
        self.namespace = namespace

    def _put(self, key: str, records: list[dict]) -> None:
        data = encode_batch(records)
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def predict(self, frame, labels_of=None) -> tuple[datetime, list[str], list, list[float]]:
        """Log one prediction per row, stamped a moment ago; with `labels_of(predictions)` the
        feedback is written first, so every evaluation that sees the predictions sees their
        labels too. Returns (time, request ids, predictions, positive-class probabilities)."""
        inputs = frame.drop(columns=[TARGET])
        predictions = self.model.predict(inputs).tolist()
        probabilities = self.model.predict_proba(inputs).tolist()
        moment = datetime.now(timezone.utc) - timedelta(milliseconds=500)
        ids = [uuid.uuid4().hex for _ in range(len(frame))]
        if labels_of is not None:
            self.feedback(ids, labels_of(predictions), moment)
        records = [{"requestId": rid, "time": moment.isoformat(), "modelVersion": self.version,
                    "inputs": json.loads(row.to_json()), "outputs": {"prediction": p, "probabilities": pr}}
                   for rid, (_, row), p, pr in zip(ids, inputs.iterrows(), predictions, probabilities)]
        self._put(prediction_batch_key(self.namespace, ISVC, self.version, moment), records)
        return moment, ids, predictions, [p[-1] for p in probabilities]

    def feedback(self, ids: list[str], labels: list, moment: datetime | None = None) -> None:
        moment = moment or datetime.now(timezone.utc)
        records = [{"requestId": rid, "time": moment.isoformat(), "label": int(label)}
                   for rid, label in zip(ids, labels)]
        self._put(feedback_batch_key(self.namespace, ISVC, moment), records)


def policy(name: str, **spec) -> dict:
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": name},
            "spec": {"inferenceServiceRef": {"name": ISVC}, **spec}}


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


def serve_production(kubectl, sandbox_s3, folder, namespace: str = NAMESPACE) -> tuple[dict, Traffic]:
    """Dataset, FeatureSet, a quick TrainingRun promoted to Production, and an InferenceService on
    it (no replicas: Traffic writes what its server would log)."""
    data_and_features(kubectl, folder, namespace)
    apply(kubectl, training_run("base", trials=1), namespace)
    run = wait_for(lambda: finished(kubectl, "base", namespace), timeout=240, message="base run finished")
    assert run["status"]["phase"] == "Succeeded", run["status"]
    version = wait_for(lambda: (o := get_json(kubectl, namespace, "modelversion", run["status"]["modelVersion"]))
                       and (o.get("status") or {}).get("stage") == "Production" and o,
                       timeout=60, message="Production ModelVersion")
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": ISVC},
                    "spec": {"model": "churn", "stage": "Production", "replicas": 0}}, namespace)
    artifact = version["spec"]["artifact"]
    bucket, key = artifact["uri"][len("s3://"):].split("/", 1)
    model = loads(s3.client(sandbox_s3).get_object(bucket, key).read(), artifact["sha256"])
    return version, Traffic(sandbox_s3, model, version["spec"]["version"], namespace)


@pytest.fixture(scope="module")
def production(operator, kubectl, sandbox_s3, tmp_path_factory):
    return serve_production(kubectl, sandbox_s3, tmp_path_factory.mktemp("monitor"))


@pytest.fixture(scope="module")
def new_data(production, kubectl, tmp_path_factory):
    """A policy that retrains on new data only, then a new Dataset version. Started before the
    quality scenario so that its retrain runs alongside it."""
    version, _ = production
    # Its own split seed: a retrain with the quality policy's spec (the base run's) on the same data
    # version would learn nothing new (NothingNewToLearn), and the quality scenario must retrain.
    template = training_run("unused")["spec"] | {"search": RETRAIN_SEARCH, "promotion": {"mode": "Candidate"},
                                                 "split": {"testFraction": 0.25, "seed": 4}}
    apply(kubectl, policy(
        "fresh-data", interval="1h", window={"lastPredictions": 200},
        performance={"metric": "f1", "threshold": 0.0},
        actions={"retrain": {"template": template, "cooldown": "1h", "includeFeedback": False}},
        triggers={"onBreach": False, "onNewData": {"minNewRows": 100}}), NAMESPACE)
    # The new-data trigger is checked on every reconcile, the first one included.
    first = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "monitorpolicy", "fresh-data"))
                     and (o.get("status") or {}).get("phase") and o, timeout=60, message="a first reconcile")
    retrains_before = retrain_runs(kubectl, "fresh-data")
    path = tmp_path_factory.mktemp("more-data") / "more.csv"
    churn_frame(600, seed=12).to_csv(path, index=False)
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "churn"},
                    "spec": {"source": {"uri": f"file://{path}"}, "schema": SCHEMA}}, NAMESPACE)
    return version["spec"]["lineage"]["datasetVersion"], first, retrains_before


@pytest.fixture(scope="module")
def webhook(kubectl):
    """A receiver on 127.0.0.1 (where the sandbox runs the alert Job) and the Secret with its token."""
    apply(kubectl, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-token"},
                    "stringData": {"token": "s3cret"}}, NAMESPACE)
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def quality_policy(new_data, production, kubectl, webhook):
    apply(kubectl, policy(
        "quality", interval=f"{INTERVAL_S}s", window={"lastPredictions": 200},
        drift={"method": "psi", "minSamples": 100},
        # the quality window: the newest 200 labelled predictions (the breach's, once they come)
        performance={"metric": "f1", "threshold": THRESHOLD, "minLabelled": 50,
                     "window": {"labelledPredictions": 200, "maxAge": "1h"}},
        actions={"retrain": {"fromTrainingRun": "base", "cooldown": "1h", "maxPerDay": 2,
                             "includeFeedback": False, "promotion": {"mode": "Candidate"}},
                 "alert": {"webhook": {"url": webhook.url, "secretRef": {"name": "hook-token", "key": "token"}}}},
        triggers={"onBreach": True}), NAMESPACE)
    return "quality"


@pytest.fixture(scope="module")
def healthy(quality_policy, production, kubectl):
    """Evaluations before any traffic, with predictions only, then with honest feedback."""
    _, traffic = production
    empty = wait_for(lambda: evaluated_after(kubectl, "quality", datetime.fromtimestamp(0, timezone.utc)),
                     timeout=90, message="a first evaluation")
    frame = churn_frame(200, seed=41)
    moment, ids, predictions, _ = traffic.predict(frame)
    unlabelled = wait_for(lambda: evaluated_after(kubectl, "quality", moment, samples=200), timeout=90,
                          message="an evaluation of the predictions")
    traffic.feedback(ids, frame[TARGET].tolist())
    labelled = wait_for(lambda: evaluated_after(kubectl, "quality", moment, labelledSamples=200), timeout=90,
                        message="an evaluation with feedback")
    expected_f1 = f1_score(frame[TARGET].astype(int), [int(p) for p in predictions])
    return empty, unlabelled, labelled, expected_f1


def test_no_traffic_and_no_feedback_are_reported_as_such_never_as_no_drift(healthy):
    empty, unlabelled, _, _ = healthy
    first = empty["status"]["history"][0]
    assert first["samples"] == 0 and first["reason"] in NOT_JUDGED_REASONS
    assert not first["breached"]
    last = unlabelled["status"]["lastEvaluation"]
    assert (last["samples"], last["labelledSamples"], last["reason"]) == (200, 0, "NoFeedback")
    assert last["driftScores"], "drift is judged on predictions alone"
    assert not last["breached"]
    assert condition(unlabelled, "Breached")["status"] == "Unknown"
    assert unlabelled["status"]["phase"] == "Waiting"


def test_honest_feedback_gives_a_healthy_evaluation_in_status_events_and_metrics(healthy, kubectl, operator):
    _, _, labelled, expected_f1 = healthy
    last = labelled["status"]["lastEvaluation"]
    assert expected_f1 > THRESHOLD, "the test's premise: the model is good on undrifted data"
    assert last["reason"] == "Healthy" and not last["breached"]
    assert last["metrics"]["f1"] == pytest.approx(expected_f1)
    assert last["qualityWindow"]["labelled"] == 200 and last["driftWindow"]["predictions"] == 200
    assert last["reportUri"].startswith("s3://")
    assert condition(labelled, "Breached")["status"] == "False"
    assert condition(labelled, "Ready")["reason"] == "Monitoring"
    assert labelled["status"]["phase"] == "Healthy"
    assert labelled["status"]["metricSummary"].startswith("f1=")
    assert "Monitoring" in {e["reason"] for e in events_of(kubectl, "quality")}
    assert metric_line(operator, "kadence_monitor_evaluations_total", namespace=NAMESPACE, policy="quality",
                       reason="Healthy")
    assert metric_line(operator, "kadence_monitor_breached", namespace=NAMESPACE, policy="quality").endswith(" 0.0")
    assert not retrain_runs(kubectl, "quality")


@pytest.fixture(scope="module")
def breach(healthy, production, kubectl):
    """Drifted customers the model says will churn, none of whom did: f1 falls to zero for the
    Production model and for any model retrained later (no positive label to find), so the
    champion/challenger verdict is known in advance."""
    _, traffic = production
    frame = churn_frame(3000, seed=43, drift=1.5)
    frame = frame[traffic.model.predict(frame.drop(columns=[TARGET])) == 1].head(200)
    assert len(frame) == 200
    moment, _, _, _ = traffic.predict(frame, labels_of=lambda predictions: [0] * len(predictions))
    return moment, wait_for(lambda: evaluated_after(kubectl, "quality", moment, breached=True), timeout=90,
                            message="a breached evaluation")


def test_a_breach_is_reported_with_its_reason_and_starts_exactly_one_retrain(breach, kubectl, operator):
    _, obj = breach
    last = obj["status"]["lastEvaluation"]
    assert last["reason"] in ("QualityBelowThreshold", "DriftAndQualityBreached")
    assert last["metrics"]["f1"] < THRESHOLD
    assert condition(obj, "Breached")["status"] == "True"
    assert last["reason"] in {e["reason"] for e in events_of(kubectl, "quality") if e["type"] == "Warning"}
    runs = wait_for(lambda: retrain_runs(kubectl, "quality"), timeout=30, message="the retrain TrainingRun")
    assert len(runs) == 1
    annotations = runs[0]["metadata"]["annotations"]
    assert annotations["kadence.dev/retrain-trigger"] == "breach"
    assert annotations["kadence.dev/caused-by"] == f"MonitorPolicy/{NAMESPACE}/quality"
    assert "f1=" in annotations["kadence.dev/retrain-cause"]
    assert annotations["kadence.dev/evaluation-report"].startswith("s3://")
    assert runs[0]["spec"]["promotion"]["mode"] == "Candidate"
    assert runs[0]["spec"]["featureSetRef"] == {"name": "churn-features"}
    assert "RetrainStarted" in {e["reason"] for e in events_of(kubectl, "quality")}
    assert metric_line(operator, "kadence_retrains_total", namespace=NAMESPACE, policy="quality",
                       trigger="breach").endswith(" 1.0")


def test_no_retrain_storm_while_the_metric_stays_low(breach, kubectl, operator):
    moment, _ = breach
    later = wait_for(lambda: evaluated_after(kubectl, "quality", moment + timedelta(seconds=2 * INTERVAL_S),
                                             breached=True),
                     timeout=90, message="two more breached evaluations")
    assert len(retrain_runs(kubectl, "quality")) == 1
    assert len([r for r in later["status"]["retrains"] if r.get("trainingRun")]) == 1
    # Held while the first retrain runs (one at a time), then, its candidate having lost, because the
    # same inputs would learn nothing new (issue 15: the cooldown runs only from a winning retrain).
    held = later["status"]["lastRetrainDecision"]["reason"]
    assert held in ("RetrainInProgress", "NothingNewToLearn")
    assert condition(later, "Retraining")["reason"] == held
    assert metric_line(operator, "kadence_retrains_held_total", namespace=NAMESPACE, policy="quality",
                       reason=held)
    assert metric_line(operator, "kadence_retrains_total", namespace=NAMESPACE, policy="quality",
                       trigger="breach").endswith(" 1.0")


def test_the_webhook_gets_one_alert_for_the_breach_episode_with_the_secrets_token(breach, kubectl, webhook):
    moment, _ = breach
    wait_for(lambda: evaluated_after(kubectl, "quality", moment + timedelta(seconds=2 * INTERVAL_S), breached=True),
             timeout=90, message="two more breached evaluations")
    obj = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "monitorpolicy", "quality"))
                   and ((o.get("status") or {}).get("alerting") or {}).get("delivery") and o,
                   timeout=90, message="the alert Job's delivery in status.alerting")
    assert obj["status"]["alerting"]["delivery"] == "Delivered" and obj["status"]["alerting"]["state"] == "firing"
    [alert] = webhook.requests  # one alert for the episode, however many breached evaluations it holds
    assert alert["authorization"] == "Bearer s3cret"
    assert (alert["body"]["state"], alert["body"]["policy"]) == ("firing", {"namespace": NAMESPACE, "name": "quality"})
    assert alert["body"]["breached"] and alert["body"]["episode"] == obj["status"]["alerting"]["episode"]


def test_a_retrained_candidate_that_is_not_better_is_not_promoted_and_the_verdict_says_why(breach, kubectl):
    run = retrain_runs(kubectl, "quality")[0]["metadata"]["name"]
    done = wait_for(lambda: finished(kubectl, run, NAMESPACE), timeout=240, message="the retrain finished")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    candidate = done["status"]["modelVersion"]
    obj = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "monitorpolicy", "quality"))
                   and (o["status"].get("lastComparison") or {}).get("candidate") == candidate and o,
                   timeout=90, message="the champion/challenger verdict")
    verdict = obj["status"]["lastComparison"]
    # Both models are judged on the same window, where no label is positive: neither can score.
    assert verdict["allowed"] is False
    assert verdict["reason"] in ("ChallengerNotBetter", "ChallengerNotEvaluated")
    assert verdict.get("championScore") == 0.0
    assert condition(obj, "CandidateApproved")["status"] == "False"
    version = get_json(kubectl, NAMESPACE, "modelversion", candidate)
    published = next(v for v in obj["status"]["verdicts"] if v["candidate"] == candidate)
    assert (published["allowed"], published["reason"]) == (False, verdict["reason"])
    assert "kadence.dev/challenger-verdict" not in (version["metadata"].get("annotations") or {})
    assert version["status"]["stage"] == "Candidate"
    kubectl("delete", "monitorpolicy", "quality", "-n", NAMESPACE, "--wait=false")


def test_a_new_validated_dataset_version_starts_exactly_one_retrain_and_gives_a_candidate(new_data, kubectl):
    trained_on, first, retrains_before = new_data
    assert first["status"]["phase"] != "Invalid", first["status"]
    assert retrains_before == [], "the serving model's own Dataset version is not new data"
    dataset = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "dataset", "churn"))
                       and o["status"].get("latestVersion") != trained_on and o,
                       timeout=120, message="the new Dataset version")
    runs = wait_for(lambda: retrain_runs(kubectl, "fresh-data"), timeout=30, message="the retrain TrainingRun")
    assert runs[0]["metadata"]["annotations"]["kadence.dev/retrain-trigger"] == "newData"
    assert dataset["status"]["latestVersion"] in runs[0]["metadata"]["annotations"]["kadence.dev/retrain-cause"]
    done = wait_for(lambda: finished(kubectl, runs[0]["metadata"]["name"], NAMESPACE), timeout=240,
                    message="the retrain finished")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    candidate = get_json(kubectl, NAMESPACE, "modelversion", done["status"]["modelVersion"])
    assert candidate["status"]["stage"] == "Candidate"
    obj = get_json(kubectl, NAMESPACE, "monitorpolicy", "fresh-data")
    assert len(retrain_runs(kubectl, "fresh-data")) == 1
    assert [r["trigger"] for r in obj["status"]["retrains"]] == ["newData"]
    assert obj["status"]["dataVersionBaseline"] == dataset["status"]["latestVersion"]
    assert condition(obj, "Retraining")["reason"] == "RetrainedOnNewData"


def test_references_that_cannot_be_resolved_are_reported_against_their_fields(operator, kubectl):
    apply(kubectl, policy(
        "broken-refs", interval="1h", drift={"reference": {"dataset": "no-such-data"}},
        actions={"retrain": {"fromTrainingRun": "no-such-run"}}), NAMESPACE)
    apply(kubectl, policy("no-service", interval="1h", drift={}) | {
        "spec": {"inferenceServiceRef": {"name": "no-such-service"}, "interval": "1h", "drift": {}}}, NAMESPACE)
    broken = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "monitorpolicy", "broken-refs"))
                      and (c := condition(o, "Ready")) and c["status"] == "False" and o,
                      timeout=60, message="broken references reported")
    ready = condition(broken, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "actions.retrain.fromTrainingRun: TrainingRun no-such-run not found" in ready["message"]
    assert "drift.reference.dataset: Dataset no-such-data not found" in ready["message"]
    assert broken["status"]["phase"] == "Invalid"
    assert not kubectl_list(kubectl, "jobs", "kadence.dev/owner-name=broken-refs")
    waiting = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "monitorpolicy", "no-service"))
                       and (c := condition(o, "Ready")) and c["status"] == "False" and o,
                       timeout=60, message="missing InferenceService reported")
    assert condition(waiting, "Ready")["reason"] == "InferenceServiceNotFound"
    assert "InferenceServiceNotFound" in {e["reason"] for e in events_of(kubectl, "no-service")}
