"""InferenceService planner: (object, observed children and metrics, resolved ModelVersions,
clock) -> ServingPlan.

How the handler uses it on every reconcile (create/update/resume/timer):
1. resolve a `ServingContext`: the ModelVersions of spec.model that the spec names
   (spec.version, the one holding spec.stage, canary.version, shadow.version, and
   status.stableVersion/canaryVersion) as `ModelVersionInfo`, and which version holds
   spec.stage;
2. observe the Deployments labelled kadence.dev/inferenceservice=<name> (by role), and the
   per-version `VersionStats` since status.stepStartedAt (`domain.rollout.stats_from_metrics`
   over the pods' /metrics scrapes, plus f1/accuracy from the prediction log and feedback
   when a quality gate is set); `promote_requested` is the annotation kadence.dev/promote=true;
3. `plan_inferenceservice(body, ServingObservation(...), context, now)`; apply `plan.children`
   (server-side apply), delete `plan.delete`, merge `plan.status`, set `plan.conditions`, post
   `plan.events`, requeue after `plan.requeue_after`; for each `plan.stage_changes` set that
   ModelVersion's stage (with changed-by kadence-operator and the reason); remove the
   kadence.dev/promote annotation once `plan.promoted` is set.

The user's spec is never rewritten: automatic progress (the promoted version, the step, the
weight) lives in status, so GitOps tools see no drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from ..api.conditions import ConditionUpdate
from ..api.inferenceservice import InferenceServiceSpec
from ..builders import serving as build
from ..builders.jobs import WorkloadSettings
from ..domain.rollout import Observed, RolloutState, Transition, VersionStats, advance, parse_duration, replica_split
from .plan import ChildRef, EventSpec, Plan

ANALYSIS_HISTORY = 20


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str  # the ModelVersion object's name
    version: int
    artifact_uri: str
    sha256: str
    inputs: list[dict] | None = None  # signature columns: {name, type[, nullable]}
    task: str | None = None
    compiled: dict | None = None  # spec.compiled (uri, sha256, verified, maxAbsDifference, tolerance)
    stage: str | None = None


@dataclass(frozen=True)
class ServingContext:
    versions: dict[int, ModelVersionInfo] = field(default_factory=dict)
    stage_version: int | None = None
    settings: WorkloadSettings = field(default_factory=WorkloadSettings)


@dataclass(frozen=True)
class ServingObservation:
    deployments: dict[str, dict] = field(default_factory=dict)  # role -> observed Deployment
    stats: dict[int, VersionStats] = field(default_factory=dict)  # version -> since the step started
    promote_requested: bool = False


@dataclass(frozen=True)
class StageChange:
    model_version: str
    stage: str
    reason: str


@dataclass
class ServingPlan(Plan):
    stage_changes: list[StageChange] = field(default_factory=list)
    promoted: int | None = None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _format_time(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def state_from_status(status: dict) -> RolloutState:
    return RolloutState(
        phase=status.get("phase") or "Stable",
        stable_version=status.get("stableVersion"),
        canary_version=status.get("canaryVersion"),
        canary_weight=status.get("canaryWeight") or 0,
        current_step=status.get("currentStep"),
        step_started_at=_parse_time(status.get("stepStartedAt")),
        reason=status.get("rolloutReason") or "",
    )


def deployment_ready(deployment: dict | None, version: int | None) -> bool:
    """A ready replica serving `version` (the pod template's version label matches)."""
    if not deployment or version is None:
        return False
    labels = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    if labels.get(build.VERSION_LABEL) != str(version):
        return False
    status = deployment.get("status") or {}
    if status.get("observedGeneration", 0) < (deployment.get("metadata") or {}).get("generation", 0):
        return False
    return (status.get("readyReplicas") or 0) >= 1 and (status.get("updatedReplicas") or 0) >= 1


def serve_task(body: dict, info: ModelVersionInfo, role: str, spec: InferenceServiceSpec) -> dict:
    """The `kadence serve` task (kadence.serving.task.ServeTask, wire form) for one version."""
    task: dict = {
        "namespace": body["metadata"]["namespace"],
        "inferenceService": body["metadata"]["name"],
        "model": spec.model,
        "version": info.version,
        "role": role,
        "artifact": {"uri": info.artifact_uri, "sha256": info.sha256},
        "logging": {"enabled": spec.logging.enabled, "sampleRate": spec.logging.sample_rate},
        "workers": spec.server.workers,
        "maxBatchSize": spec.server.max_batch_size,
        "maxBatchWaitMs": parse_duration(spec.server.max_batch_wait) * 1000,
    }
    if info.task:
        task["task"] = info.task
    if info.inputs:
        task["inputs"] = info.inputs
    if info.compiled and info.compiled.get("verified") is True:
        # Only a graph that matched scikit-learn on the hold-out within its tolerance is served.
        task["compiled"] = {k: info.compiled[k] for k in ("uri", "sha256", "verified", "maxAbsDifference", "tolerance")
                            if k in info.compiled}
    if role == "shadow":
        task["logging"]["enabled"] = True  # a shadow exists to have its answers logged
    return task


def plan_inferenceservice(body: dict, observation: ServingObservation, context: ServingContext,
                          now: datetime) -> ServingPlan:
    spec = InferenceServiceSpec.model_validate(body["spec"])
    status = body.get("status") or {}
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    plan = ServingPlan()

    target = spec.version if spec.version is not None else context.stage_version
    if target is None:
        message = f"no ModelVersion of model {spec.model!r} holds stage {spec.stage}"
        plan.conditions.append(ConditionUpdate("Ready", "False", "NoModelVersion", message))
        plan.phase = "Degraded"
        plan.requeue_after = 30.0
        return plan
    wanted = {target, *(v for v in (spec.canary and spec.canary.version, spec.shadow and spec.shadow.version,
                                    status.get("stableVersion"), status.get("canaryVersion")) if v)}
    missing = sorted(v for v in wanted if v not in context.versions)
    if target in missing or (spec.canary and spec.canary.version in missing):
        message = f"ModelVersion {spec.model} version {', '.join(map(str, missing))} not found"
        plan.conditions.append(ConditionUpdate("Ready", "False", "ModelVersionNotFound", message))
        plan.phase = "Degraded"
        plan.requeue_after = 30.0
        return plan

    state = state_from_status(status)
    if (spec.canary and state.canary_version == spec.canary.version and state.current_step is not None
            and state.current_step < len(spec.canary.steps)):
        # status.canaryWeight is the share the replicas give (33 for 1 of 3 pods); the state
        # machine and the replica split work from the step's weight, which the spec holds.
        state = replace(state, canary_weight=spec.canary.steps[state.current_step].weight)
    deployments = observation.deployments
    observed = Observed(
        stable_ready=deployment_ready(deployments.get("stable"), state.stable_version or target),
        canary_ready=deployment_ready(deployments.get("canary"), state.canary_version),
        stable=observation.stats.get(state.stable_version or target, VersionStats()),
        canary=observation.stats.get(state.canary_version, VersionStats()) if state.canary_version else VersionStats(),
        promote_requested=observation.promote_requested,
    )
    transition = advance(state, target, spec.canary, observed, now)
    new = transition.state
    _children(plan, body, spec, context, new)
    _status(plan, body, status, spec, new, transition, now)
    if transition.event:
        plan.events.append(EventSpec(*transition.event))
    if transition.promoted is not None:
        plan.promoted = transition.promoted
        if spec.stage is not None:
            info = context.versions[transition.promoted]
            plan.stage_changes.append(StageChange(info.name, spec.stage, f"canary version {transition.promoted} passed "
                                                                        f"every step of InferenceService {namespace}/{name}"))
    plan.requeue_after = transition.requeue_after
    return plan


def _total_replicas(spec: InferenceServiceSpec) -> int:
    if spec.autoscaling is not None:
        return spec.autoscaling.min_replicas
    return 1 if spec.replicas is None else spec.replicas


def _children(plan: ServingPlan, body: dict, spec: InferenceServiceSpec, context: ServingContext,
              state: RolloutState) -> None:
    settings = context.settings
    resources = spec.resources.wire() if spec.resources else None
    exact = spec.gateway is not None
    canary_live = state.phase in ("Progressing", "Paused") and state.canary_version is not None and state.canary_weight > 0
    keep_canary = canary_live or state.phase == "Promoting"
    split = replica_split(_total_replicas(spec), state.canary_weight if canary_live else 0, exact)

    shadow = spec.shadow is not None and spec.shadow.version != state.stable_version
    namespace = body["metadata"]["namespace"]
    mirror_to = (f"http://{build.role_service_name(body['metadata']['name'], 'shadow')}.{namespace}.svc.cluster.local"
                 if shadow and not exact else None)

    def add(role: str, version: int, replicas: int | None) -> None:
        task = serve_task(body, context.versions[version], role, spec)
        if mirror_to and role in ("stable", "canary"):
            task["mirrorTo"] = mirror_to  # no gateway to mirror: the servers copy requests to the shadow
        plan.children.append(build.serving_configmap(body, role, task))
        plan.children.append(build.serving_deployment(body, role, version, task, replicas, settings, resources))

    stable_replicas = None if spec.autoscaling is not None else split.stable_replicas
    add("stable", state.stable_version, stable_replicas)
    if canary_live:
        add("canary", state.canary_version, split.canary_replicas)
    elif not keep_canary:
        _delete(plan, body, "canary")
    if shadow:
        add("shadow", spec.shadow.version, 1)
    else:
        _delete(plan, body, "shadow")

    plan.children.append(build.main_service(body))
    isvc = body["metadata"]["name"]
    if exact:
        plan.children.append(build.role_service(body, "stable"))
        if canary_live:
            plan.children.append(build.role_service(body, "canary"))
        if shadow:
            plan.children.append(build.role_service(body, "shadow"))
        plan.children.append(build.http_route(body, spec.gateway.wire(), state.canary_weight if canary_live else 0,
                                              canary_live, shadow))
        if not canary_live:
            plan.delete.append(ChildRef("v1", "Service", build.role_service_name(isvc, "canary")))
        if not shadow:
            plan.delete.append(ChildRef("v1", "Service", build.role_service_name(isvc, "shadow")))
    elif shadow:
        plan.children.append(build.role_service(body, "shadow"))
    else:
        plan.delete.append(ChildRef("v1", "Service", build.role_service_name(isvc, "shadow")))
    if spec.autoscaling is not None:
        plan.children.append(build.autoscaler(body, spec.autoscaling.wire()))
    plan.status["effectiveCanaryWeight"] = split.effective_weight


def _delete(plan: ServingPlan, body: dict, role: str) -> None:
    name = build.deployment_name(body["metadata"]["name"], role)
    plan.delete.append(ChildRef("apps/v1", "Deployment", name))
    plan.delete.append(ChildRef("v1", "ConfigMap", name))


def _status(plan: ServingPlan, body: dict, status: dict, spec: InferenceServiceSpec, state: RolloutState,
            transition: Transition, now: datetime) -> None:
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    weight = plan.status.pop("effectiveCanaryWeight")
    plan.phase = state.phase
    plan.status.update({
        "url": f"http://{name}.{namespace}.svc.cluster.local/v1/models/{spec.model}:predict",
        "stableVersion": state.stable_version,
        "canaryVersion": state.canary_version,
        "canaryWeight": weight if state.phase in ("Progressing", "Paused") else 0,
        "currentStep": state.current_step,
        "stepStartedAt": _format_time(state.step_started_at),
        "rolloutReason": state.reason or None,
    })
    history = list(status.get("analysis") or [])
    if transition.judgement is not None:
        judgement = transition.judgement
        result = {"at": _format_time(now), "step": transition.judged_step, "requests": judgement.requests,
                  "passed": judgement.verdict == "pass", "message": judgement.message}
        for key, value in (("errorRate", judgement.error_rate), ("latencyP99Ratio", judgement.latency_p99_ratio),
                           ("qualityDelta", judgement.quality_delta)):
            if value is not None:
                result[key] = round(value, 6)
        history.append(result)
        plan.status["analysis"] = history[-ANALYSIS_HISTORY:]

    serving = state.phase not in ("Degraded",)
    plan.conditions.append(ConditionUpdate(
        "Ready", "True" if serving else "False",
        "Serving" if serving else "StableNotReady",
        f"version {state.stable_version} serves" if serving else state.reason))
    rollout_reason = {"Stable": "Stable", "Progressing": "Progressing", "Paused": "Paused",
                      "Promoting": "Promoting", "RolledBack": "RolledBack", "Degraded": "Degraded"}[state.phase]
    plan.conditions.append(ConditionUpdate(
        "CanaryHealthy", "False" if state.phase == "RolledBack" else "True", rollout_reason,
        state.reason or f"phase {state.phase}"))
