"""spec.actions.alert.webhook: one alert per breach episode and one when resolved, decided purely,
delivered by `kadence alert` (retries, backoff, bearer token) — checked against a real HTTP
receiver on 127.0.0.1."""

from __future__ import annotations

import argparse
import json

import pytest

from kadence.api.monitorpolicy import MonitorPolicySpec, MonitorPolicyStatus
from kadence.domain.monitoring.alerts import alerts_to_send
from kadence.planners.alerting import TOKEN_ENV, apply_alerts, plan_alerts, report_deliveries
from kadence.planners.plan import Plan
from kadence.workloads import alert as alert_command
from kadence.workloads.alert import AlertTask, Receiver as Target, deliver

from ..http_receiver import Receiver

WEBHOOK = {"url": "http://127.0.0.1:9/hook", "secretRef": {"name": "hook-token", "key": "token"}}


def evaluation(time: str, breached: bool, reason: str | None = None) -> dict:
    return {"time": time, "breached": breached, "reason": reason or ("QualityBelowThreshold" if breached else "Healthy"),
            "message": "f1=0.5 < 0.55" if breached else "f1=0.8", "samples": 500, "labelledSamples": 200,
            "metrics": {"f1": 0.5 if breached else 0.8}}


def policy(webhook: dict | None = WEBHOOK, status: dict | None = None, url: str | None = None) -> dict:
    alert = {"webhook": {**webhook, **({"url": url} if url else {})}} if webhook else {}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy",
            "metadata": {"name": "churn-monitor", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {"inferenceServiceRef": {"name": "churn"}, "performance": {"metric": "f1", "threshold": 0.55},
                     "actions": {"alert": alert}},
            "status": status or {}}


# -- the decision ------------------------------------------------------------------------

SEQUENCES = [
    pytest.param([True, True, True], ["firing"], id="a long breach is one alert"),
    pytest.param([True, True, False], ["firing", "resolved"], id="healthy again resolves the episode"),
    pytest.param([True, False, True], ["firing", "resolved", "firing"], id="a new breach after healthy is a new episode"),
    pytest.param([False, False], [], id="healthy all along says nothing"),
    pytest.param([True, None, True, None, False], ["firing", "resolved"],
                 id="evaluations that could not judge neither resolve nor re-fire"),
    pytest.param([None, False], [], id="nothing to resolve before any breach"),
]


@pytest.mark.parametrize("breaches, expected", SEQUENCES)
def test_one_alert_per_breach_episode_and_one_when_resolved(breaches, expected):
    state, sent = None, []
    for minute, breached in enumerate(breaches):
        result = evaluation(f"2026-11-23T12:{minute:02d}:00Z", bool(breached),
                            "TooFewLabels" if breached is None else None)
        notices, state = alerts_to_send(state, result)
        sent += [n.state for n in notices]
    assert sent == expected


def test_a_resolved_alert_names_the_episode_it_closes():
    notices, state = alerts_to_send(None, evaluation("2026-11-23T12:00:00Z", True))
    resolved, closed = alerts_to_send(state, evaluation("2026-11-23T12:10:00Z", False))
    assert [(n.state, n.episode) for n in notices + resolved] == [("firing", "2026-11-23T12:00:00Z"),
                                                                 ("resolved", "2026-11-23T12:00:00Z")]
    assert closed == {"episode": "2026-11-23T12:00:00Z", "state": "resolved", "time": "2026-11-23T12:10:00Z"}
    assert notices[0].key != resolved[0].key


# -- the plan ----------------------------------------------------------------------------

def test_without_a_webhook_nothing_is_planned():
    spec = MonitorPolicySpec.model_validate(policy(webhook=None)["spec"])
    planned = plan_alerts(policy(webhook=None), spec, {}, evaluation("2026-11-23T12:00:00Z", True))
    assert (planned.children, planned.alerting, planned.events) == ([], None, [])


def test_a_breach_plans_one_alert_job_with_the_token_from_a_secret_key_ref():
    body = policy()
    spec = MonitorPolicySpec.model_validate(body["spec"])
    planned = plan_alerts(body, spec, {}, evaluation("2026-11-23T12:00:00Z", True))
    configmap, job = planned.children
    assert job["metadata"]["name"] == configmap["metadata"]["name"] == planned.alerting["job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["kadence", "alert"]
    token = next(e for e in container["env"] if e["name"] == TOKEN_ENV)
    assert token["valueFrom"] == {"secretKeyRef": {"name": "hook-token", "key": "token"}}
    [receiver] = json.loads(configmap["data"]["task.json"])["receivers"]
    assert receiver["url"] == WEBHOOK["url"] and receiver["payload"]["state"] == "firing" and receiver["bearer"]
    assert receiver["payload"]["policy"] == {"namespace": "ns", "name": "churn-monitor"}
    MonitorPolicyStatus.model_validate({"alerting": planned.alerting})  # fits the API
    again = plan_alerts(body, spec, {"alerting": planned.alerting}, evaluation("2026-11-23T12:05:00Z", True))
    assert again.children == [] and again.events == []


def test_an_alert_job_that_failed_is_reported_once():
    alerting = {"episode": "2026-11-23T12:00:00Z", "state": "firing", "time": "2026-11-23T12:00:00Z",
                "job": "churn-monitor-alert-x"}
    failed = {"metadata": {"name": "churn-monitor-alert-x", "annotations": {"kadence.dev/alert-state": "firing"}},
              "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    updated, events = report_deliveries({"alerting": alerting}, [failed])
    assert updated["delivery"] == "Failed" and [e.reason for e in events] == ["AlertNotDelivered"]
    assert report_deliveries({"alerting": updated}, [failed]) == (None, [])


def test_apply_alerts_writes_typed_status_and_tidies_older_alert_jobs():
    body = policy()
    spec = MonitorPolicySpec.model_validate(body["spec"])
    old = {"metadata": {"name": "churn-monitor-alert-old", "annotations": {"kadence.dev/alert-state": "firing"}},
           "status": {"succeeded": 1}}
    plan = Plan(status=MonitorPolicyStatus())
    apply_alerts(plan, body, spec, {}, evaluation("2026-11-23T12:00:00Z", True), [old])
    assert plan.status_patch()["alerting"]["state"] == "firing"
    assert {(d.kind, d.name) for d in plan.delete} == {("Job", "churn-monitor-alert-old"),
                                                       ("ConfigMap", "churn-monitor-alert-old")}


# -- delivery, against a real receiver ---------------------------------------------------

def test_delivery_retries_a_busy_receiver_with_backoff_and_sends_the_bearer_token():
    waits = []
    with Receiver(answers=[503, 429, 200]) as receiver:
        target = Target(kind="webhook", url=receiver.url, payload={"state": "firing"}, bearer=True)
        outcome = deliver(AlertTask(receivers=[target]), target, "s3cret", sleep=waits.append)
    assert (outcome.delivered, outcome.attempts, outcome.status) == (True, 3, 200)
    assert waits == [1.0, 2.0]
    assert [r["authorization"] for r in receiver.requests] == ["Bearer s3cret"] * 3
    assert receiver.requests[0]["body"] == {"state": "firing"}


def test_a_receiver_refusing_the_alert_is_not_retried():
    with Receiver(answers=[401]) as receiver:
        target = Target(kind="webhook", url=receiver.url, payload={})
        outcome = deliver(AlertTask(receivers=[target]), target, None, sleep=lambda s: None)
    assert (outcome.delivered, outcome.retryable, outcome.attempts) == (False, False, 1)
    assert receiver.requests[0]["authorization"] is None


def test_an_unreachable_receiver_fails_after_every_attempt():
    with Receiver() as receiver:
        url = receiver.url
    target = Target(kind="webhook", url=url, payload={})
    outcome = deliver(AlertTask(receivers=[target], attempts=3, timeout_seconds=1), target, None, sleep=lambda s: None)
    assert (outcome.delivered, outcome.attempts, outcome.retryable) == (False, 3, True)
    assert "not delivered after 3 attempts" in outcome.message


def test_a_receiver_sees_one_alert_per_breach_episode_end_to_end(tmp_path, capsys):
    """Evaluations go through the planner's decision; every alert Job it plans runs `kadence alert`
    with the Job's own task and token, as the Job would, against one receiver."""
    with Receiver() as receiver:
        body = policy(url=receiver.url)
        spec = MonitorPolicySpec.model_validate(body["spec"])
        status: dict = {}
        jobs_run = set()
        for minute, breached in enumerate([True, True, True, False, False, True, True]):
            planned = plan_alerts(body, spec, status, evaluation(f"2026-11-23T12:{minute:02d}:00Z", breached))
            status = {"alerting": planned.alerting} if planned.alerting else status
            for configmap in (c for c in planned.children if c["kind"] == "ConfigMap"):
                task = tmp_path / f"{configmap['metadata']['name']}.json"
                task.write_text(configmap["data"]["task.json"])
                code = alert_command.run(argparse.Namespace(task=str(task)), env={TOKEN_ENV: "tok"})
                assert code == 0, capsys.readouterr().out
                jobs_run.add(configmap["metadata"]["name"])
    states = [(r["body"]["state"], r["body"]["episode"]) for r in receiver.requests]
    assert states == [("firing", "2026-11-23T12:00:00Z"), ("resolved", "2026-11-23T12:00:00Z"),
                      ("firing", "2026-11-23T12:05:00Z")]
    assert len(jobs_run) == 3 and {r["authorization"] for r in receiver.requests} == {"Bearer tok"}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["delivered"] is True
