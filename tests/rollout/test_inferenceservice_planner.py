"""The InferenceService planner and the serving builders, table-tested without a cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from kadence.api.inferenceservice import InferenceServiceSpec
from kadence.builders import serving as build
from kadence.domain.rollout import VersionStats
from kadence.planners.inferenceservice import (
    ModelVersionInfo,
    ServingContext,
    ServingObservation,
    StageChange,
    approved_candidate,
    plan_inferenceservice,
    wanted_canary,
)
from kadence.planners.plan import EventSpec
from kadence.serving.task import ServeTask

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
SHA = "a" * 64


def status(plan) -> dict:
    """The status fields the plan writes (wire names)."""
    return plan.status_patch()


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
    assert status(plan)["stableVersion"] == 3 and status(plan)["url"] == "http://churn.shop.svc.cluster.local/v1/models/churn:predict"


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
    assert status(plan)["stableVersion"] == 3


def test_no_version_in_the_stage_is_reported_not_guessed():
    plan = plan_inferenceservice(isvc({"stage": "Production"}), ServingObservation(),
                                 ServingContext(versions={}, stage_version=None), T0)
    assert plan.children == [] and condition(plan, "Ready").reason == "NoModelVersion"
    assert "holds stage Production" in condition(plan, "ModelResolved").message


def test_a_missing_model_version_is_reported():
    plan = plan_inferenceservice(isvc({"version": 9}), ServingObservation(), CONTEXT, T0)
    assert condition(plan, "Ready").reason == "ModelVersionNotFound" and "version 9" in condition(plan, "Ready").message


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
    assert status(plan)["canaryWeight"] == 10
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
    assert status(plan)["rolloutReason"] == "AnalysisFailed: error rate 0.2000 is above 0.01"
    assert status(plan)["analysis"][-1] == {"at": "2026-11-23T12:00:20Z", "step": 0, "requests": 100, "passed": False,
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
    assert [(c.name, c.stage) for c in plan.stage_changes] == [("churn-v4", "Production")]
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
    InferenceServiceStatus.model_validate({**status(plan), "phase": plan.phase})


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
    before = {**PROGRESSING, "currentStep": 1, "canaryWeight": 67}  # 2 of 3 pods, as the last reconcile wrote
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4, 2)})
    plan = plan_inferenceservice(isvc(spec, before), observation, CONTEXT, T0 + timedelta(seconds=10))
    deployments = children(plan, "Deployment")
    assert (deployments["churn-stable"]["spec"]["replicas"], deployments["churn-canary"]["spec"]["replicas"]) == (1, 2)
    assert status(plan)["canaryWeight"] == 67


# ---------------------------------------------------------------- approved challengers


def verdict(allowed: bool = True, candidate: str | None = None, message: str = "candidate f1=0.810 vs Production "
            "0.740 on 120 labelled predictions") -> dict:
    return {"allowed": allowed, "reason": "ChallengerBeatsChampion" if allowed else "ChallengerNotBetter",
            "message": message, "time": "2026-11-23T11:00:00Z", **({"candidate": candidate} if candidate else {})}


def candidate(version: int, stage: str = "Candidate", allowed: bool | None = True, verified: bool = True,
              about: str | None = None) -> ModelVersionInfo:
    return replace(info(version, stage), verified=verified,
                   verdict=None if allowed is None else verdict(allowed, about or f"churn-v{version}"))


@pytest.mark.parametrize("versions, stable, expected", [
    ([candidate(4)], 3, 4),
    ([candidate(4), candidate(5)], 3, 5),
    ([candidate(4), candidate(5, allowed=False)], 3, 4),
    ([candidate(4, allowed=False)], 3, None),
    ([candidate(4, allowed=None)], 3, None),
    ([candidate(2)], 3, None),
    ([candidate(3)], 3, None),
    ([candidate(4, stage="Archived")], 3, None),
    ([candidate(4, stage="Staging")], 3, None),
    ([candidate(4, verified=False)], 3, None),
    ([candidate(4, about="churn-v9")], 3, None),
    ([replace(candidate(4), verdict={**verdict(True, "churn-v4"), "rollout": "Manual"})], 3, None),
    ([replace(candidate(4), verdict={**verdict(True, "churn-v4"), "rollout": "Canary"})], 3, 4),
    ([], 3, None),
], ids=[
    "an approved candidate newer than stable",
    "the newest of two approved candidates",
    "the newest approved one when a newer one was refused",
    "a verdict that does not allow it",
    "no verdict at all",
    "a candidate older than stable",
    "the stable version itself",
    "an archived version, though once approved",
    "a version in another stage",
    "an artifact that failed verification",
    "a verdict written about another ModelVersion",
    "a verdict leaving promotion to a person",
    "a verdict sending it to canary",
    "no versions",
])
def test_the_approved_candidate_is_the_newest_verified_allowed_candidate_newer_than_stable(versions, stable, expected):
    assert approved_candidate(versions, stable) == expected


VERSIONS = {3: info(3, "Production"), 4: candidate(4), 5: candidate(5, allowed=False)}
STEPS = [{"weight": 20, "pause": "30s"}]


@pytest.mark.parametrize("spec, version, source, steps", [
    ({"stage": "Production"}, 4, "challenger", [10, 50]),
    ({"stage": "Production", "canary": {"steps": STEPS}}, 4, "challenger", [20]),
    ({"stage": "Production", "canary": {"version": 5, "steps": STEPS}}, 5, "spec", [20]),
    ({"version": 3}, None, None, None),
    ({"version": 3, "canary": {"version": 4}}, 4, "spec", [10, 50]),
], ids=[
    "a stage-tracking service without canary spec takes the approved challenger with the default steps",
    "spec.canary without a version gives the challenger its steps",
    "a pinned canary version wins over the approved challenger",
    "a service pinned to spec.version takes no automatic canary",
    "a service pinned to spec.version still takes its pinned canary",
])
def test_the_wanted_canary(spec, version, source, steps):
    wanted = wanted_canary(InferenceServiceSpec.model_validate({"model": "churn", **spec}), VERSIONS, 3)
    assert (wanted.canary.version if wanted.canary else None) == version
    if wanted.canary:
        assert (wanted.source, [s.weight for s in wanted.canary.steps]) == (source, steps)
        assert wanted.origin.startswith("approved challenger: candidate f1=0.810") == (source == "challenger")


def test_a_pinned_canary_version_that_does_not_exist_is_reported_not_replaced_by_a_challenger():
    spec = InferenceServiceSpec.model_validate({"model": "churn", "stage": "Production", "canary": {"version": 9}})
    wanted = wanted_canary(spec, VERSIONS, 3)
    assert wanted.canary is None and wanted.missing_version == 9


CHALLENGER_CONTEXT = ServingContext(versions=VERSIONS, stage_version=3)
STABLE_3 = {"phase": "Stable", "stableVersion": 3}


def condition(plan, type_: str):
    """A condition the plan writes, Ready derived from its dependents as realize derives it."""
    return next(c for c in plan.condition_updates(None) if c.type == type_)


def test_an_approved_challenger_starts_a_canary_by_itself_and_status_says_where_it_came_from():
    spec = {"stage": "Production", "replicas": 2}
    plan = plan_inferenceservice(isvc(spec, STABLE_3), ServingObservation(deployments={"stable": ready(3)}),
                                 CHALLENGER_CONTEXT, T0)
    assert plan.phase == "Progressing"
    assert (status(plan)["canaryVersion"], status(plan)["canarySource"]) == (4, "challenger")
    assert status(plan)["canaryApproval"] == ("ChallengerBeatsChampion: candidate f1=0.810 vs Production 0.740 on 120 "
                                             "labelled predictions")
    assert children(plan, "Deployment")["churn-canary"]["spec"]["template"]["metadata"]["labels"][
        build.VERSION_LABEL] == "4"
    assert plan.events == [EventSpec("Normal", "CanaryStarted", "canary version 4 (approved challenger: candidate "
                                     "f1=0.810 vs Production 0.740 on 120 labelled predictions) started at 10% of "
                                     "traffic")]
    assert plan.stage_changes == []


def test_a_challenger_the_verdict_does_not_allow_is_not_canaried():
    context = ServingContext(versions={3: info(3, "Production"), 4: candidate(4, allowed=False)}, stage_version=3)
    plan = plan_inferenceservice(isvc({"stage": "Production"}, STABLE_3),
                                 ServingObservation(deployments={"stable": ready(3)}), context, T0)
    assert plan.phase == "Stable" and status(plan)["canaryVersion"] is None and plan.events == []
    assert "churn-canary" not in children(plan, "Deployment")


def test_a_service_pinned_to_a_version_ignores_approved_challengers():
    plan = plan_inferenceservice(isvc({"version": 3}, STABLE_3), ServingObservation(deployments={"stable": ready(3)}),
                                 CHALLENGER_CONTEXT, T0)
    assert plan.phase == "Stable" and status(plan)["canaryVersion"] is None


CHALLENGER_RUNNING = {**PROGRESSING, "canarySource": "challenger"}


def test_a_challenger_that_passes_every_step_is_promoted_to_the_tracked_stage():
    status = {**CHALLENGER_RUNNING, "currentStep": 1, "canaryWeight": 50}
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)},
                                     stats={3: VersionStats(requests=900, latency_p99=0.01),
                                            4: VersionStats(requests=400, latency_p99=0.01)})
    plan = plan_inferenceservice(isvc({"stage": "Production"}, status), observation, CHALLENGER_CONTEXT,
                                 T0 + timedelta(minutes=1))
    assert plan.phase == "Promoting" and plan.promoted == 4
    assert plan.stage_changes == [StageChange("churn-v4", "Candidate", "Production", "kadence-operator",
                                              "canary version 4 (approved challenger) passed every step of "
                                              "InferenceService shop/churn")]


def test_a_challenger_that_fails_its_analysis_is_rolled_back_and_archived_with_the_numbers():
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)},
                                     stats={3: VersionStats(requests=900, latency_p99=0.01),
                                            4: VersionStats(requests=100, errors=20, latency_p99=0.01)})
    plan = plan_inferenceservice(isvc({"stage": "Production"}, CHALLENGER_RUNNING), observation, CHALLENGER_CONTEXT,
                                 T0 + timedelta(seconds=20))
    assert plan.phase == "RolledBack" and status(plan)["canarySource"] == "challenger"
    assert status(plan)["rolloutReason"] == "AnalysisFailed: error rate 0.2000 is above 0.01"
    assert status(plan)["analysis"][-1]["errorRate"] == 0.2 and status(plan)["analysis"][-1]["passed"] is False
    reason = ("canary on InferenceService shop/churn failed its analysis at 10%: error rate 0.2000 is above 0.01")
    assert plan.stage_changes == [StageChange("churn-v4", "Candidate", "Archived", "kadence-operator", reason)]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RolledBack"), ("Warning", "ChallengerArchived")]
    assert plan.events[1].message == f"churn-v4 (approved challenger, version 4) archived: {reason}"
    assert "churn-canary" not in children(plan, "Deployment")

    # Once archived it is no longer a candidate: the status keeps the rollback and its numbers.
    archived = ServingContext(versions={**VERSIONS, 4: replace(VERSIONS[4], stage="Archived")}, stage_version=3)
    after = plan_inferenceservice(isvc({"stage": "Production"}, {**CHALLENGER_RUNNING, **status(plan),
                                                                 "phase": "RolledBack"}),
                                  ServingObservation(deployments={"stable": ready(3)}), archived,
                                  T0 + timedelta(minutes=5))
    assert after.phase == "RolledBack" and after.stage_changes == [] and after.events == []
    assert status(after)["rolloutReason"].startswith("AnalysisFailed") and status(after)["canaryVersion"] == 4
    assert (condition(after, "CanaryHealthy").status, condition(after, "CanaryHealthy").reason) == ("False", "RolledBack")


def test_a_rolled_back_challenger_stays_rolled_back_while_stable_scales_back_up():
    scaling = ready(3)
    scaling["metadata"]["generation"] = 2  # the rollback gave stable its replicas back; not observed yet
    status = {**CHALLENGER_RUNNING, "phase": "RolledBack", "canaryWeight": 0, "rolloutReason": "AnalysisFailed: x"}
    archived = ServingContext(versions={**VERSIONS, 4: replace(VERSIONS[4], stage="Archived")}, stage_version=3)
    plan = plan_inferenceservice(isvc({"stage": "Production"}, status), ServingObservation(
        deployments={"stable": scaling}), archived, T0 + timedelta(minutes=1))
    assert plan.phase == "RolledBack" and condition(plan, "Ready").status == "True"


def test_a_challenger_rolled_back_because_stable_went_down_is_not_archived():
    observation = ServingObservation(deployments={"canary": ready(4)}, stats={4: VersionStats(requests=100)})
    plan = plan_inferenceservice(isvc({"stage": "Production"}, CHALLENGER_RUNNING), observation, CHALLENGER_CONTEXT,
                                 T0 + timedelta(seconds=20))
    assert plan.phase == "RolledBack" and "stable version 3 has no ready replica" in status(plan)["rolloutReason"]
    assert plan.stage_changes == [] and "ChallengerArchived" not in [e.reason for e in plan.events]


def test_a_pinned_canary_that_fails_is_rolled_back_but_its_model_version_stage_is_left_alone():
    observation = ServingObservation(deployments={"stable": ready(3), "canary": ready(4)},
                                     stats={4: VersionStats(requests=100, errors=20)})
    plan = plan_inferenceservice(isvc({"stage": "Production", "canary": CANARY}, PROGRESSING), observation, CONTEXT,
                                 T0 + timedelta(seconds=20))
    assert plan.phase == "RolledBack" and plan.stage_changes == []


# ---------------------------------------------------------------- missing versions and start-up


def test_a_canary_version_that_does_not_exist_yet_leaves_stable_serving_and_says_so():
    spec = {"stage": "Production", "canary": {**CANARY, "version": 9}}
    plan = plan_inferenceservice(isvc(spec, STABLE_3), ServingObservation(deployments={"stable": ready(3)}), CONTEXT,
                                 T0)
    assert plan.phase == "Stable" and "churn-stable" in children(plan, "Deployment")
    assert "churn-canary" not in children(plan, "Deployment")
    assert (condition(plan, "Ready").status, condition(plan, "Ready").reason) == ("True", "Serving")
    healthy = condition(plan, "CanaryHealthy")
    assert (healthy.status, healthy.reason) == ("False", "CanaryVersionNotFound")
    assert healthy.message == ("spec.canary.version 9: ModelVersion churn version 9 not found; version 3 serves all "
                               "traffic")


def test_a_shadow_version_that_does_not_exist_is_not_deployed_and_is_reported():
    plan = plan_inferenceservice(isvc({"version": 3, "shadow": {"version": 9}}, STABLE_3),
                                 ServingObservation(deployments={"stable": ready(3)}), CONTEXT, T0)
    assert plan.phase == "Stable" and "churn-shadow" not in children(plan, "Deployment")
    shadow = condition(plan, "ShadowHealthy")
    assert (shadow.status, shadow.reason) == ("False", "ShadowVersionNotFound")


def test_a_new_inference_service_is_starting_without_a_warning_until_its_first_replica_is_ready():
    plan = plan_inferenceservice(isvc({"stage": "Production"}), ServingObservation(), CONTEXT, T0)
    assert plan.phase == "Progressing" and status(plan)["canaryVersion"] is None and plan.events == []
    ready_condition = condition(plan, "Ready")
    assert (ready_condition.status, ready_condition.reason) == ("Unknown", "StableStarting")
    assert ready_condition.message == "StableStarting: version 3 has no ready replica yet"
    assert status(plan)["stepStartedAt"] == "2026-11-23T12:00:00Z"
    serving = plan_inferenceservice(isvc({"stage": "Production"}, status(plan) | {"phase": plan.phase}),
                                    ServingObservation(deployments={"stable": ready(3)}), CONTEXT,
                                    T0 + timedelta(seconds=30))
    assert serving.phase == "Stable" and condition(serving, "Ready").status == "True"


def test_a_stable_version_that_was_serving_and_lost_its_replicas_is_degraded():
    plan = plan_inferenceservice(isvc({"stage": "Production"}, STABLE_3), ServingObservation(), CONTEXT, T0)
    assert plan.phase == "Degraded"
    assert (condition(plan, "Ready").status, condition(plan, "Ready").reason) == ("False", "StableNotReady")
