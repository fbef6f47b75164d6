"""InferenceService planner: (object, observed children and metrics, resolved ModelVersions,
clock) -> ServingPlan.

How the handler uses it on every reconcile (create/update/resume/timer):
1. resolve a `ServingContext`: the ModelVersions of spec.model as `ModelVersionInfo` (with
   their stage in force, whether the artifact was verified, and the champion/challenger verdict
   on it from the status.verdicts of the MonitorPolicies watching this InferenceService), and
   which version holds spec.stage;
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
weight, a challenger canary and where it came from) lives in status, so GitOps tools see no
drift.

Which canary (`wanted_canary`): a pinned spec.canary.version wins (one that does not exist
yet leaves stable serving, with CanaryHealthy=False CanaryVersionNotFound). Otherwise an
InferenceService that tracks a stage rolls out `approved_candidate`: the newest verified
Candidate newer than stable whose challenger verdict (from a MonitorPolicy's
champion/challenger comparison) allows it, with spec.canary's steps and analysis or the
defaults. Passing every step moves it to spec.stage; a failed analysis moves it to Archived,
so it is never retried, and a newer approved candidate starts a fresh canary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from ..api.conditions import ConditionUpdate
from ..domain.registry import StageChange
from ..api.inferenceservice import AnalysisResult, Canary, InferenceServiceSpec, InferenceServiceStatus
from ..builders import serving as build
from ..builders.jobs import WorkloadSettings
from ..domain.rollout import (STABLE_STARTING, Observed, RolloutState, Source, Transition, VersionStats, advance,
                              parse_duration, replica_split, starting)
from .plan import ChildRef, EventSpec, Plan

ANALYSIS_HISTORY = 20
OPERATOR = "kadence-operator"  # who asks the registry for a stage (the ModelVersion's history says so)
MODEL_RESOLVED, STABLE_READY = "ModelResolved", "StableReady"
CHALLENGER = "approved challenger"


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str  # the ModelVersion object's name
    version: int
    artifact_uri: str
    sha256: str
    inputs: list[dict] | None = None  # signature columns: {name, type[, nullable]}
    task: str | None = None
    compiled: dict | None = None  # spec.compiled (uri, sha256, verified, maxAbsDifference, tolerance)
    stage: str | None = None  # status.stage, the stage in force
    verified: bool | None = None  # status.verified: the artifact matched its sha256
    verdict: dict | None = None  # its verdict in a watching MonitorPolicy's status.verdicts


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


@dataclass
class ServingPlan(Plan):
    status: InferenceServiceStatus = field(default_factory=InferenceServiceStatus)
    stage_changes: list[StageChange] = field(default_factory=list)
    promoted: int | None = None


@dataclass(frozen=True)
class WantedCanary:
    """The canary this reconcile asks for, and where it came from."""

    canary: Canary | None = None  # with its version set
    source: Source = "spec"
    origin: str = ""  # how the CanaryStarted Event names it
    missing_version: int | None = None  # a pinned spec.canary.version with no ModelVersion


def verdict_allows(info: ModelVersionInfo) -> bool:
    """The challenger verdict on this ModelVersion allows it to canary (and is about it)."""
    verdict = info.verdict or {}
    return (verdict.get("allowed") is True and verdict.get("candidate") in (None, "", info.name)
            and verdict.get("rollout", "Canary") == "Canary")  # Manual: a person promotes it


def approved_candidate(versions: Iterable[ModelVersionInfo], stable_version: int) -> int | None:
    """The newest verified Candidate newer than stable whose challenger verdict allows it."""
    approved = [v.version for v in versions if v.stage == "Candidate" and v.verified is True
                and v.version > stable_version and verdict_allows(v)]
    return max(approved, default=None)


def verdict_summary(verdict: dict | None) -> str:
    verdict = verdict or {}
    reason, message = verdict.get("reason") or "", verdict.get("message") or ""
    return f"{reason}: {message}" if reason and message else reason or message or "allowed"


def wanted_canary(spec: InferenceServiceSpec, versions: dict[int, ModelVersionInfo], stable_version: int
                  ) -> WantedCanary:
    if spec.canary is not None and spec.canary.version is not None:
        if spec.canary.version not in versions:
            return WantedCanary(missing_version=spec.canary.version)
        return WantedCanary(spec.canary)
    if spec.stage is None:
        return WantedCanary()  # a pinned spec.version takes no automatic canaries
    candidate = approved_candidate(versions.values(), stable_version)
    if candidate is None:
        return WantedCanary()
    canary = (spec.canary or Canary()).model_copy(update={"version": candidate})
    message = (versions[candidate].verdict or {}).get("message") or verdict_summary(versions[candidate].verdict)
    return WantedCanary(canary, "challenger", f"{CHALLENGER}: {message}")


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
        # statuses written before canarySource existed had only pinned canaries
        source=status.get("canarySource") or ("spec" if status.get("canaryVersion") else None),
    )


def deployment_serving(deployment: dict | None, version: int | None) -> bool:
    """A ready replica, and the pod template runs `version`; the status may still lag a replica
    change (generation ahead of observedGeneration)."""
    if not deployment or version is None:
        return False
    labels = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(build.VERSION_LABEL) == str(version) and ((deployment.get("status") or {}).get("readyReplicas")
                                                                or 0) >= 1


def deployment_ready(deployment: dict | None, version: int | None) -> bool:
    """A ready replica serving `version`: the Deployment controller has seen the latest spec, so
    a template just moved to `version` is not mistaken for the replicas of the one before."""
    if not deployment_serving(deployment, version):
        return False
    status = deployment.get("status") or {}
    if status.get("observedGeneration", 0) < (deployment.get("metadata") or {}).get("generation", 0):
        return False
    return (status.get("updatedReplicas") or 0) >= 1


def serve_task(body: dict, info: ModelVersionInfo, role: str, spec: InferenceServiceSpec) -> dict:
    """The `kadence serve` task (kadence.serving.task.ServeTask, wire form) for one version."""
    task: dict = {
        "namespace": body["metadata"]["namespace"],
        "inferenceService": body["metadata"]["name"],
        "model": spec.model,
        "version": info.version,
        "role": role,
        "artifact": {"uri": info.artifact_uri, "sha256": info.sha256},
        "logging": {"enabled": spec.logging.enabled, "sampleRate": spec.logging.sample_rate,
                    "bufferBytes": spec.logging.buffer_bytes},
        "workers": spec.server.workers,
        "maxBatchSize": spec.server.max_batch_size,
        "maxBatchWaitMs": parse_duration(spec.server.max_batch_wait) * 1000,
        "maxBodyBytes": spec.server.max_request_bytes,
        "maxRows": spec.server.max_rows,
        "maxConcurrentRequests": spec.server.max_concurrent_requests,
        "predictTimeoutSeconds": parse_duration(spec.server.predict_timeout),
        "bodyTimeoutSeconds": parse_duration(spec.server.body_timeout),
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
        return _not_servable(plan, "NoModelVersion",
                             f"no ModelVersion of model {spec.model!r} holds stage {spec.stage}")
    if target not in context.versions:
        return _not_servable(plan, "ModelVersionNotFound", f"ModelVersion {spec.model} version {target} not found")
    plan.conditions.append(ConditionUpdate(MODEL_RESOLVED, "True", "ModelVersionFound",
                                           f"version {target} of model {spec.model}"
                                           + (f" holds stage {spec.stage}" if spec.stage else "")))

    state = state_from_status(status)
    wanted = wanted_canary(spec, context.versions, max(v for v in (state.stable_version, target) if v))
    canary = wanted.canary
    if (canary and state.canary_version == canary.version and state.current_step is not None
            and state.current_step < len(canary.steps)):
        # status.canaryWeight is the share the replicas give (33 for 1 of 3 pods); the state
        # machine and the replica split work from the step's weight, which the spec holds.
        state = replace(state, canary_weight=canary.steps[state.current_step].weight)
    deployments = observation.deployments
    observed = Observed(
        stable_ready=deployment_ready(deployments.get("stable"), state.stable_version or target),
        stable_serving=deployment_serving(deployments.get("stable"), state.stable_version or target),
        canary_ready=deployment_ready(deployments.get("canary"), state.canary_version),
        stable=observation.stats.get(state.stable_version or target, VersionStats()),
        canary=observation.stats.get(state.canary_version, VersionStats()) if state.canary_version else VersionStats(),
        promote_requested=observation.promote_requested,
    )
    transition = advance(state, target, canary, observed, now, wanted.source, wanted.origin)
    new = transition.state
    if new.stable_version not in context.versions:  # e.g. a promoted canary's ModelVersion was deleted
        return _not_servable(plan, "ModelVersionNotFound",
                             f"ModelVersion {spec.model} version {new.stable_version} not found")
    weight = _children(plan, body, spec, context, new)
    _status(plan, body, status, spec, context, new, transition, now, weight)
    _canary_conditions(plan, spec, context, wanted, new)
    if transition.event:
        plan.events.append(EventSpec(*transition.event))
    where = f"InferenceService {namespace}/{name}"
    if transition.promoted is not None:
        plan.promoted = transition.promoted
        if spec.stage is not None:
            info = context.versions[transition.promoted]
            what = f" ({CHALLENGER})" if new.source == "challenger" else ""
            plan.stage_changes.append(StageChange(info.name, info.stage, spec.stage, OPERATOR,
                                                  f"canary version {transition.promoted}{what} passed every step "
                                                  f"of {where}"))
    if transition.canary_failed and new.source == "challenger" and new.canary_version in context.versions:
        # An approved challenger that failed its canary is archived, so it is not retried.
        info = context.versions[new.canary_version]
        reason = f"canary on {where} failed its analysis at {state.canary_weight}%: {transition.judgement.message}"
        plan.stage_changes.append(StageChange(info.name, info.stage, "Archived", OPERATOR, reason))
        plan.events.append(EventSpec("Warning", "ChallengerArchived",
                                     f"{info.name} ({CHALLENGER}, version {info.version}) archived: {reason}"))
    plan.requeue_after = transition.requeue_after
    return plan


def _not_servable(plan: ServingPlan, reason: str, message: str) -> ServingPlan:
    plan.conditions.append(ConditionUpdate(MODEL_RESOLVED, "False", reason, message))
    plan.phase = "Degraded"  # a change of the ModelVersions read wakes it (no requeue needed)
    return plan


def _total_replicas(spec: InferenceServiceSpec) -> int:
    if spec.autoscaling is not None:
        return spec.autoscaling.min_replicas
    return 1 if spec.replicas is None else spec.replicas


def _children(plan: ServingPlan, body: dict, spec: InferenceServiceSpec, context: ServingContext,
              state: RolloutState) -> int:
    """The Deployments, Services and route; returns the canary's effective traffic weight."""
    settings = context.settings
    resources = spec.resources.wire() if spec.resources else None
    exact = spec.gateway is not None
    canary_live = state.phase in ("Progressing", "Paused") and state.canary_version is not None and state.canary_weight > 0
    keep_canary = canary_live or state.phase == "Promoting"
    split = replica_split(_total_replicas(spec), state.canary_weight if canary_live else 0, exact)

    shadow = (spec.shadow is not None and spec.shadow.version != state.stable_version
              and spec.shadow.version in context.versions)
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
    return split.effective_weight


def _delete(plan: ServingPlan, body: dict, role: str) -> None:
    name = build.deployment_name(body["metadata"]["name"], role)
    plan.delete.append(ChildRef("apps/v1", "Deployment", name))
    plan.delete.append(ChildRef("v1", "ConfigMap", name))


def _status(plan: ServingPlan, body: dict, status: dict, spec: InferenceServiceSpec, context: ServingContext,
            state: RolloutState, transition: Transition, now: datetime, weight: int) -> None:
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    challenger = context.versions.get(state.canary_version) if state.source == "challenger" else None
    plan.phase = state.phase
    out = plan.status
    out.url = f"http://{name}.{namespace}.svc.cluster.local/v1/models/{spec.model}:predict"
    out.stable_version = state.stable_version
    out.canary_version = state.canary_version
    out.canary_source = state.source if state.canary_version is not None else None
    out.canary_approval = verdict_summary(challenger.verdict) if challenger else None
    out.canary_weight = weight if state.phase in ("Progressing", "Paused") else 0
    out.current_step = state.current_step
    out.step_started_at = _format_time(state.step_started_at)
    out.rollout_reason = state.reason or None
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
        plan.status.analysis = [AnalysisResult.model_validate(entry) for entry in history[-ANALYSIS_HISTORY:]]

    if state.phase == "Degraded":
        stable = ConditionUpdate(STABLE_READY, "False", "StableNotReady", state.reason)
    elif starting(state):
        # Not a failure: Unknown posts no Warning Event while the first replica comes up.
        stable = ConditionUpdate(STABLE_READY, "Unknown", STABLE_STARTING, state.reason)
    else:
        stable = ConditionUpdate(STABLE_READY, "True", "Serving", f"version {state.stable_version} serves")
    plan.conditions.append(stable)


def _canary_conditions(plan: ServingPlan, spec: InferenceServiceSpec, context: ServingContext, wanted: WantedCanary,
                       state: RolloutState) -> None:
    if wanted.missing_version is not None:
        plan.conditions.append(ConditionUpdate(
            "CanaryHealthy", "False", "CanaryVersionNotFound",
            f"spec.canary.version {wanted.missing_version}: ModelVersion {spec.model} version {wanted.missing_version} "
            f"not found; version {state.stable_version} serves all traffic"))
    else:
        reason = STABLE_STARTING if starting(state) else state.phase
        plan.conditions.append(ConditionUpdate(
            "CanaryHealthy", "False" if state.phase == "RolledBack" else "True", reason,
            state.reason or f"phase {state.phase}"))
    if spec.shadow is None:
        plan.conditions.append(ConditionUpdate("ShadowHealthy", "True", "NoShadow", "no shadow in the spec"))
    elif spec.shadow.version not in context.versions:
        plan.conditions.append(ConditionUpdate(
            "ShadowHealthy", "False", "ShadowVersionNotFound",
            f"spec.shadow.version {spec.shadow.version}: ModelVersion {spec.model} version {spec.shadow.version} "
            "not found; nothing is mirrored"))
    elif spec.shadow.version == state.stable_version:
        plan.conditions.append(ConditionUpdate("ShadowHealthy", "True", "ShadowIsStable",
                                               f"version {spec.shadow.version} is stable; nothing is mirrored"))
    else:
        plan.conditions.append(ConditionUpdate("ShadowHealthy", "True", "Mirroring",
                                               f"version {spec.shadow.version} gets a copy of the traffic"))
