"""The InferenceService planner and the serving builders, table-tested without a cluster."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kadence.builders import serving as build
from kadence.domain.rollout import VersionStats
from kadence.planners.inferenceservice import (
    ModelVersionInfo,
    ServingContext,
    ServingObservation,
    plan_inferenceservice,
)
from kadence.serving.task import ServeTask

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SHA = "a" * 64


def info(version: int, stage: str | None = None) -> ModelVersionInfo:
    return ModelVersionInfo(name=f"churn-v{version}", version=version,
                            artifact_uri=f"s3://kadence/models/churn/{version}/model.skops", sha256=SHA,
                            inputs=[{"name": "tenure", "type": "int"}, {"name": "plan", "type": "category"}],
                            task="classification", stage=stage,
                            compiled={"uri": f"s3://kadence/models/churn/{version}/model.onnx", "sha256": SHA,
                                      "verified": True, "maxAbsDifference": 1e-8, "tolerance": 1e-6})


CONTEXT = ServingContext(versions={v: info(v) for v in (3, 4, 5)}, stage_version=3)


def isvc(spec: dict, status: dict | None = None) -> dict:
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService",
            "metadata": {"name": "churn", "namespace": "shop", "uid": "u-1", "generation": 1},
            "spec": {"model": "churn", **spec}, "status": status or {}}


def ready(version: int, replicas: int = 1) -> dict:
    return {"metadata": {"generation": 1}, "spec": {"template": {"metadata": {"labels": {build.VERSION_LABEL: str(version)}}}},
            "status": {"observedGeneration": 1, "readyReplicas": replicas, "updatedReplicas": replicas}}


def children(plan, kind: str) -> dict[str, dict]:
    return {c["metadata"]["name"]: c for c in plan.children if c["kind"] == kind}


CANARY = {"version": 4, "steps": [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "1m"}],
          "analysis": {"minRequests": 50, "maxErrorRate": 0.01, "maxWait": "10m"}}
PROGRESSING = {"phase": "Progressing", "stableVersion": 3, "canaryVersion": 4, "canaryWeight": 10, "currentStep": 0,
               "stepStartedAt": "2026-11-23T12:00:00Z"}


def test_a_fixed_version_gets_a_stable_deployment_and_a_service():
    plan = plan_inferenceservice(isvc({"version": 3, "replicas": 2}), ServingObservation(), CONTEXT, T0)
    deployment = children(plan, "Deployment")["churn-stable"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["metadata"]["labels"][build.TRAFFIC_LABEL] == "serve"
    assert children(plan, "Service")["churn"]["spec"]["selector"] == {build.ISVC_LABEL: "churn", build.TRAFFIC_LABEL: "serve"}
    assert plan.status["stableVersion"] == 3 and plan.status["url"] == "http://churn.shop.svc.cluster.local/v1/models/churn:predict"


def test_the_deployment_runs_kadence_serve_with_a_task_the_server_accepts():
    plan = plan_inferenceservice(isvc({"version": 3, "logging": {"sampleRate": 0.25}}), ServingObservation(), CONTEXT, T0)
    configmap = children(plan, "ConfigMap")["churn-stable"]
    task = ServeTask.model_validate_json(configmap["data"]["task.json"])
    assert (task.model, task.version, task.inference_service, task.namespace, task.role) == ("churn", 3, "churn", "shop", "stable")
    assert task.artifact.sha256 == SHA and task.compiled.verified and task.logging.sample_rate == 0.25
    container = children(plan, "Deployment")["churn-stable"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["kadence", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_a_stage_is_resolved_to_the_version_that_holds_it():
    plan = plan_inferenceservice(isvc({"stage": "Production"}), ServingObservation(), CONTEXT, T0)
    assert plan.status["stableVersion"] == 3


def test_no_version_in_the_stage_is_reported_not_guessed():
    plan = plan_inferenceservice(isvc({"stage": "Production"}), ServingObservation(),
                                 ServingContext(versions={}, stage_version=None), T0)
    assert plan.children == [] and plan.conditions[0].reason == "NoModelVersion"
    assert "holds stage Production" in plan.conditions[0].message


def test_a_missing_model_version_is_reported():
    plan = plan_inferenceservice(isvc({"version": 9}), ServingObservation(), CONTEXT, T0)
    assert plan.conditions[0].reason == "ModelVersionNotFound" and "version 9" in plan.conditions[0].message


@pytest.mark.parametrize("replicas, weight, stable, canary", [(10, 10, 9, 1), (2, 50, 1, 1), (4, 10, 3, 1)])
def test_a_canary_step_splits_replicas_by_its_weight(replicas, weight, stable, canary):
    status = {**PROGRESSING, "canaryWeight": weight}
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)})
    plan = plan_inferenceservice(isvc({"version": 3, "replicas": replicas, "canary": CANARY}, status), observation,
                                 CONTEXT, T0 + timedelta(seconds=10))
    deployments = children(plan, "Deployment")
    assert deployments["churn-stable"]["spec"]["replicas"] == stable
    assert deployments["churn-canary"]["spec"]["replicas"] == canary
    assert deployments["churn-canary"]["spec"]["template"]["metadata"]["labels"][build.VERSION_LABEL] == "4"


def test_a_gateway_gets_an_httproute_with_exact_weights_and_a_mirror_for_the_shadow():
    spec = {"version": 3, "replicas": 4, "canary": CANARY, "shadow": {"version": 5},
            "gateway": {"name": "web", "namespace": "infra", "hostname": "churn.example.com"}}
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4), "shadow": ready(5)})
    plan = plan_inferenceservice(isvc(spec, PROGRESSING), observation, CONTEXT, T0 + timedelta(seconds=10))
    route = children(plan, "HTTPRoute")["churn"]
    assert route["spec"]["parentRefs"][0] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "web",
                                              "namespace": "infra"}
    assert route["spec"]["hostnames"] == ["churn.example.com"]
    rule = route["spec"]["rules"][0]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("churn-stable", 90), ("churn-canary", 10)]
    assert rule["filters"] == [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "churn-shadow", "port": 80}}}]
    deployments = children(plan, "Deployment")
    assert deployments["churn-stable"]["spec"]["replicas"] == 4  # exact routing keeps stable's capacity
    assert plan.status["canaryWeight"] == 10
    shadow_task = ServeTask.model_validate_json(children(plan, "ConfigMap")["churn-shadow"]["data"]["task.json"])
    assert shadow_task.role == "shadow" and shadow_task.version == 5 and shadow_task.logging.enabled
    assert "shadow" not in deployments["churn-shadow"]["spec"]["template"]["metadata"]["labels"].get(build.TRAFFIC_LABEL, "")


def test_a_failed_analysis_removes_the_canary_and_says_why():
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)},
                                     stats={3: VersionStats(requests=900, latency_p99=0.01),
                                            4: VersionStats(requests=100, errors=20, latency_p99=0.01)})
    plan = plan_inferenceservice(isvc({"version": 3, "canary": CANARY}, PROGRESSING), observation, CONTEXT,
                                 T0 + timedelta(seconds=20))
    assert plan.phase == "RolledBack" and "churn-canary" not in children(plan, "Deployment")
    assert ("apps/v1", "Deployment", "churn-canary") in [(d.api_version, d.kind, d.name) for d in plan.delete]
    assert plan.status["rolloutReason"] == "AnalysisFailed: error rate 0.2000 is above 0.01"
    assert plan.status["analysis"][-1] == {"at": "2026-11-23T12:00:20Z", "step": 0, "requests": 100, "passed": False,
                                           "message": "error rate 0.2000 is above 0.01", "errorRate": 0.2,
                                           "latencyP99Ratio": 1.0}
    canary_condition = next(c for c in plan.conditions if c.type == "CanaryHealthy")
    assert (canary_condition.status, canary_condition.reason) == ("False", "RolledBack")
    assert plan.events[0].type == "Warning" and plan.events[0].reason == "RolledBack"


def test_promoting_a_stage_tracking_canary_moves_the_model_version_stage():
    status = {**PROGRESSING, "currentStep": 1, "canaryWeight": 50}
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)},
                                     stats={3: VersionStats(requests=900, latency_p99=0.01),
                                            4: VersionStats(requests=400, latency_p99=0.01)})
    plan = plan_inferenceservice(isvc({"stage": "Production", "canary": CANARY}, status), observation, CONTEXT,
                                 T0 + timedelta(minutes=1))
    assert plan.phase == "Promoting" and plan.promoted == 4
    assert [(c.model_version, c.stage) for c in plan.stage_changes] == [("churn-v4", "Production")]
    stable = children(plan, "Deployment")["churn-stable"]
    assert stable["spec"]["template"]["metadata"]["labels"][build.VERSION_LABEL] == "4"
    assert "churn-canary" not in [d.name for d in plan.delete]  # kept until the stable serves version 4


def test_autoscaling_gets_an_hpa_and_leaves_stable_replicas_to_it():
    spec = {"version": 3, "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "metric": "requestRate", "target": 300}}
    plan = plan_inferenceservice(isvc(spec), ServingObservation(), CONTEXT, T0)
    hpa = children(plan, "HorizontalPodAutoscaler")["churn-stable"]
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["metrics"][0]["pods"]["target"] == {"type": "AverageValue", "averageValue": "300"}
    assert "replicas" not in children(plan, "Deployment")["churn-stable"]["spec"]


def test_the_status_validates_against_the_api_model():
    from kadence.api.inferenceservice import InferenceServiceStatus

    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)},
                                     stats={3: VersionStats(requests=900, latency_p99=0.01),
                                            4: VersionStats(requests=100, latency_p99=0.01)})
    plan = plan_inferenceservice(isvc({"version": 3, "canary": CANARY}, PROGRESSING), observation, CONTEXT,
                                 T0 + timedelta(minutes=1))
    InferenceServiceStatus.model_validate({**plan.status, "phase": plan.phase})


def test_without_a_gateway_the_servers_mirror_to_the_shadow_service():
    plan = plan_inferenceservice(isvc({"version": 3, "shadow": {"version": 5}}), ServingObservation(
        deployments={"stable": ready(3)}), CONTEXT, T0)
    stable_task = ServeTask.model_validate_json(children(plan, "ConfigMap")["churn-stable"]["data"]["task.json"])
    assert stable_task.mirror_to == "http://churn-shadow.shop.svc.cluster.local"
    assert children(plan, "Service")["churn-shadow"]["spec"]["selector"] == {build.ISVC_LABEL: "churn", build.ROLE_LABEL: "shadow"}
    assert "HTTPRoute" not in {c["kind"] for c in plan.children}


def test_a_shadow_equal_to_stable_is_not_deployed():
    plan = plan_inferenceservice(isvc({"version": 3, "shadow": {"version": 3}}), ServingObservation(
        deployments={"stable": ready(3)}), CONTEXT, T0)
    assert "churn-shadow" not in children(plan, "Deployment")
    assert ("apps/v1", "Deployment", "churn-shadow") in [(d.api_version, d.kind, d.name) for d in plan.delete]


def test_the_replica_split_of_a_step_is_stable_across_reconciles_though_status_shows_the_effective_weight():
    spec = {"stage": "Production", "replicas": 3, "canary": {**CANARY, "steps": [{"weight": 30, "pause": "1m"},
                                                                                  {"weight": 60, "pause": "1m"}]}}
    status = {**PROGRESSING, "currentStep": 1, "canaryWeight": 67}  # 2 of 3 pods, as the last reconcile wrote
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4, 2)})
    plan = plan_inferenceservice(isvc(spec, status), observation, CONTEXT, T0 + timedelta(seconds=10))
    deployments = children(plan, "Deployment")
    assert (deployments["churn-stable"]["spec"]["replicas"], deployments["churn-canary"]["spec"]["replicas"]) == (1, 2)
    assert plan.status["canaryWeight"] == 67
