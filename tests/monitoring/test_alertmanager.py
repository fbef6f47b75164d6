"""spec.actions.alert.alertmanager: each breach episode reaches Alertmanager's v2 API as one firing
alert and one resolved alert (the same labels, endsAt set), beside the webhook — checked against a
real HTTP server with Alertmanager's API shape and validation (tests/alertmanager_receiver.py)."""

from __future__ import annotations

import argparse
import json
import urllib.request
from datetime import datetime, timezone

import pytest

from kadence.api.monitorpolicy import MonitorPolicySpec, MonitorPolicyStatus
from kadence.domain.monitoring.alerts import alertmanager_alerts, alertmanager_labels
from kadence.planners.alerting import TOKEN_ENV, apply_alerts, plan_alerts
from kadence.planners.plan import Plan
from kadence.workloads import alert as alert_command

from ..alertmanager_receiver import AlertmanagerReceiver
from ..http_receiver import Receiver
from .test_alerting import evaluation

LABELS = {"alertname": "KadenceMonitorPolicyBreached", "severity": "critical", "namespace": "ns",
          "policy": "churn-monitor", "model": "churn", "version": "churn-v1"}


def policy(alertmanager_url: str, webhook_url: str | None = None) -> dict:
    alert = {"alertmanager": {"url": alertmanager_url, "severity": "critical", "endsAfter": "24h"}}
    if webhook_url:
        alert["webhook"] = {"url": webhook_url, "secretRef": {"name": "hook-token", "key": "token"}}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy",
            "metadata": {"name": "churn-monitor", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {"inferenceServiceRef": {"name": "churn"}, "performance": {"metric": "f1", "threshold": 0.55},
                     "actions": {"alert": alert}}}


def test_the_labels_name_severity_namespace_policy_model_and_version_and_leave_out_unknowns():
    assert alertmanager_labels(namespace="ns", policy="churn-monitor", severity="critical", model="churn",
                               version="churn-v1") == LABELS
    assert "version" not in alertmanager_labels(namespace="ns", policy="p", severity="warning", model="m",
                                                version=None)


def test_a_firing_alert_holds_the_numbers_and_report_and_ends_after_the_horizon_unless_resolved():
    result = {**evaluation("2026-11-23T12:00:00Z", True), "reportUri": "https://reports.example/r.html",
              "driftedFeatures": ["tenure", "region"]}
    [alert] = alertmanager_alerts(labels=LABELS, result=result, state="firing", episode="2026-11-23T12:00:00Z",
                                  ends_after_seconds=86400, inference_service="churn")
    assert (alert["startsAt"], alert["endsAt"]) == ("2026-11-23T12:00:00Z", "2026-11-24T12:00:00Z")
    assert alert["annotations"]["metrics"] == "f1=0.5" and alert["annotations"]["labelledSamples"] == "200"
    assert alert["annotations"]["driftedFeatures"] == "tenure, region"
    assert alert["annotations"]["report"] == alert["generatorURL"] == "https://reports.example/r.html"
    [resolved] = alertmanager_alerts(labels=LABELS, result=evaluation("2026-11-23T12:30:00Z", False),
                                     state="resolved", episode="2026-11-23T12:00:00Z", ends_after_seconds=86400,
                                     inference_service="churn")
    assert (resolved["labels"], resolved["startsAt"], resolved["endsAt"]) == (
        LABELS, "2026-11-23T12:00:00Z", "2026-11-23T12:30:00Z")


def test_an_s3_report_is_an_annotation_but_not_the_generator_url():
    [alert] = alertmanager_alerts(labels=LABELS, result={**evaluation("2026-11-23T12:00:00Z", True),
                                                         "reportUri": "s3://kadence/monitoring/r.html"},
                                  state="firing", episode="2026-11-23T12:00:00Z", ends_after_seconds=60,
                                  inference_service="churn")
    assert alert["annotations"]["report"] == "s3://kadence/monitoring/r.html" and "generatorURL" not in alert


def test_the_resolved_alert_repeats_the_episodes_labels_after_a_new_version_took_over():
    body = policy("http://alertmanager:9093")
    spec = MonitorPolicySpec.model_validate(body["spec"])
    fired = plan_alerts(body, spec, {}, evaluation("2026-11-23T12:00:00Z", True), model="churn", version="churn-v1")
    assert fired.alerting["labels"] == LABELS
    MonitorPolicyStatus.model_validate({"alerting": fired.alerting})  # fits the API
    resolved = plan_alerts(body, spec, {"alerting": fired.alerting}, evaluation("2026-11-23T12:10:00Z", False),
                           model="churn", version="churn-v2")
    [receiver] = json.loads(resolved.children[0]["data"]["task.json"])["receivers"]
    assert receiver["url"] == "http://alertmanager:9093/api/v2/alerts"
    assert receiver["payload"][0]["labels"]["version"] == "churn-v1"
    assert [e.message.endswith("Alertmanager") for e in resolved.events] == [True]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """Evaluations go through the MonitorPolicy planner's alert step (apply_alerts, with the served
    model); every alert Job it plans runs `kadence alert` with its own task and token, as the Job
    would, against Alertmanager's API shape and a webhook."""
    tmp = tmp_path_factory.mktemp("alerts")
    now = datetime(2026, 11, 23, 13, 0, tzinfo=timezone.utc)
    with AlertmanagerReceiver(now=now) as alertmanager, Receiver() as webhook:
        body = policy(alertmanager.url + "/", webhook.url)
        spec = MonitorPolicySpec.model_validate(body["spec"])
        status: dict = {}
        codes = []
        served = ["churn-v1"] * 4 + ["churn-v2"] * 3
        for minute, (breached, version) in enumerate(zip([True, True, True, False, False, True, None], served)):
            plan = Plan(status=MonitorPolicyStatus())
            result = evaluation(f"2026-11-23T12:{minute:02d}:00Z", bool(breached),
                                "TooFewLabels" if breached is None else None)
            apply_alerts(plan, body, spec, status, result, [], model="churn", version=version)
            status = {**status, **plan.status_patch()}
            for configmap in (c for c in plan.children if c["kind"] == "ConfigMap"):
                task = tmp / f"{configmap['metadata']['name']}.json"
                task.write_text(configmap["data"]["task.json"])
                codes.append(alert_command.run(argparse.Namespace(task=str(task)), env={TOKEN_ENV: "tok"}))
        with urllib.request.urlopen(alertmanager.url + "/api/v2/alerts") as response:
            listed = json.load(response)
    return {"alertmanager": alertmanager, "webhook": webhook, "codes": codes, "listed": listed}


def test_alertmanager_sees_one_firing_and_one_resolved_alert_per_breach_episode(delivered):
    posts = [(a["startsAt"], a["endsAt"], a["labels"]["version"]) for body in delivered["alertmanager"].posts
             for a in body]
    assert delivered["codes"] == [0, 0, 0]
    assert posts == [("2026-11-23T12:00:00Z", "2026-11-24T12:00:00Z", "churn-v1"),  # firing
                     ("2026-11-23T12:00:00Z", "2026-11-23T12:03:00Z", "churn-v1"),  # resolved
                     ("2026-11-23T12:05:00Z", "2026-11-24T12:05:00Z", "churn-v2")]  # a new episode


def test_alertmanager_lists_only_the_second_episode_as_active(delivered):
    assert [(a["startsAt"], a["status"]["state"]) for a in delivered["listed"]] == [("2026-11-23T12:05:00Z", "active")]


def test_the_webhook_gets_the_same_episodes_with_the_bearer_token(delivered):
    requests = delivered["webhook"].requests
    assert [(r["body"]["state"], r["body"]["episode"]) for r in requests] == [
        ("firing", "2026-11-23T12:00:00Z"), ("resolved", "2026-11-23T12:00:00Z"), ("firing", "2026-11-23T12:05:00Z")]
    assert {r["authorization"] for r in requests} == {"Bearer tok"}


def test_an_alert_alertmanager_refuses_is_not_retried(tmp_path, capsys):
    with AlertmanagerReceiver() as alertmanager:
        task = tmp_path / "task.json"
        task.write_text(json.dumps({"receivers": [{"kind": "alertmanager", "url": alertmanager.url + "/api/v2/alerts",
                                                   "payload": [{"labels": {"bad-name": "x"}}]}]}))
        code = alert_command.run(argparse.Namespace(task=str(task)), env={TOKEN_ENV: "tok"})
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == alert_command.EXIT_REFUSED and out["receivers"]["alertmanager"]["attempts"] == 1
    assert "HTTP 400" in out["receivers"]["alertmanager"]["message"] and alertmanager.posts == []
