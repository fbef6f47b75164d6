"""ModelVersion planner: (ModelVersion, its siblings, the artifact's bytes, clock) -> Plan.

How the handler uses it on every reconcile of a ModelVersion:
1. list the ModelVersions of the same model in the namespace (label kadence.dev/model);
2. when `needs_verification(body)`, read the artifact's bytes from object storage
   (`artifact_missing=True` when the object does not exist);
3. `plan_modelversion(body, ModelVersionObservation(...), now)`; apply status, conditions
   and Events as for the other kinds, and for each `plan.sibling_patches` entry
   merge-patch that sibling (a stage request and the who/why annotations; never its spec).

Rules:
- the artifact's sha256 is checked against the stored bytes before the version is
  Ready; a mismatch never becomes Ready and cannot be promoted;
- at most one version per model is in Production (status.stage is the stage in force):
  a version asked to go to Production first asks every sibling in Production to move to
  Archived, and takes Production only once none is left — readers may briefly see no
  Production version, never two. Two versions asked for Production at the same time:
  the higher version wins and archives the lower;
- every stage change lands in status.history and an Event with who and why (the
  kadence.dev/changed-by and kadence.dev/reason annotations, else "unknown");
- a transition the registry does not allow (Production → Candidate) is refused with
  the allowed ones named; the stage in force stays;
- the stage asked for is mirrored in status.requestedStage; a kadence.dev/stage-request
  annotation that cannot be read is ignored (spec.stage decides) and reported in the
  StageRequest condition and a Warning Event, once per distinct problem.

Ready derives from SpecValid and ArtifactVerified (api.modelversion.ModelVersionStatus.CONDITIONS);
StageChange and StageRequest are informational.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..api.conditions import ConditionUpdate, find
from ..api.modelversion import ModelVersionSpec, ModelVersionStatus
from ..domain import registry
from ..builders.jobs import WorkloadSettings
from ..domain.registry import TransitionError, VersionState
from .mlflow_sync import plan_alias_sync
from .plan import EventSpec, Plan

RECHECK_S = 30.0
PROMOTION_RECHECK_S = 2.0
OPERATOR = "kadence-operator"
ARTIFACT_VERIFIED, STAGE_CHANGE, STAGE_REQUEST = "ArtifactVerified", "StageChange", "StageRequest"


@dataclass
class ModelVersionObservation:
    siblings: list[dict] = field(default_factory=list)  # every ModelVersion of the same model (self included or not)
    artifact: bytes | None = None
    artifact_missing: bool = False
    jobs: list[dict] = field(default_factory=list)  # the version's `kadence track` Jobs (MLflow configured)


@dataclass(frozen=True)
class SiblingPatch:
    name: str
    namespace: str
    patch: dict  # JSON merge patch


@dataclass
class ModelVersionPlan(Plan):
    status: ModelVersionStatus = field(default_factory=ModelVersionStatus)
    sibling_patches: list[SiblingPatch] = field(default_factory=list)


def _stage_in_force(body: dict) -> str | None:
    return (body.get("status") or {}).get("stage")


def _state(body: dict) -> VersionState:
    spec = body.get("spec") or {}
    return VersionState(name=body["metadata"]["name"], model=spec.get("model", ""), version=int(spec.get("version", 0)),
                        stage=_stage_in_force(body) or "Candidate")


def needs_verification(body: dict) -> bool:
    status = body.get("status") or {}
    return not (status.get("verified") is True
                and status.get("verifiedSha256") == (body.get("spec") or {}).get("artifact", {}).get("sha256"))


def metric_summary(spec: ModelVersionSpec) -> str | None:
    metrics = spec.metrics or {}
    name = spec.primary_metric if spec.primary_metric in metrics else (sorted(metrics)[0] if metrics else None)
    return f"{name}={metrics[name]:.4g}" if name else None


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def plan_modelversion(body: dict, observed: ModelVersionObservation, now: datetime,
                      settings: WorkloadSettings = WorkloadSettings()) -> ModelVersionPlan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = ModelVersionSpec.model_validate(body["spec"])
    plan = ModelVersionPlan()
    summary = metric_summary(spec)
    if summary:
        plan.status.metric_summary = summary
    if spec.lineage is not None and spec.lineage.model_card:
        plan.status.model_card = spec.lineage.model_card
    requested = registry.resolve_requested_stage(body)
    plan.status.requested_stage = requested.stage
    _report_stage_request(plan, status, requested)

    # 1. The artifact: verified once per sha256.
    verified = not needs_verification(body)
    if not verified:
        if observed.artifact_missing or observed.artifact is None:
            plan.status.verified = False
            plan.conditions.append(ConditionUpdate(ARTIFACT_VERIFIED, "False", "ArtifactNotFound",
                                                   f"no object at {spec.artifact.uri}"))
            plan.phase = _stage_in_force(body) or "Unverified"
            plan.requeue_after = RECHECK_S
            if (find(status.get("conditions"), ARTIFACT_VERIFIED) or {}).get("reason") != "ArtifactNotFound":
                plan.events.append(EventSpec("Warning", "ArtifactNotFound", f"no object at {spec.artifact.uri}"))
            return plan
        check = registry.verify_artifact(observed.artifact, spec.artifact.sha256)
        plan.status.verified = check.ok
        if not check.ok:
            plan.conditions.append(ConditionUpdate(ARTIFACT_VERIFIED, "False", check.reason, check.message))
            plan.phase = "Invalid"
            plan.events.append(EventSpec("Warning", check.reason, check.message))
            if _stage_in_force(body) is None:
                plan.status.stage = "Candidate"
            return plan
        plan.status.verified_sha256 = check.actual
        plan.events.append(EventSpec("Normal", check.reason, check.message))
        verified = True

    # 2. The stage.
    me = _state(body)
    in_force = _stage_in_force(body)
    desired = requested.stage
    siblings = [_state(s) for s in observed.siblings
                if s["metadata"]["name"] != meta["name"] and (s.get("spec") or {}).get("model") == spec.model]
    annotations = meta.get("annotations") or {}
    actor = registry.actor_from_annotations(annotations, default_by="unknown")

    if in_force is None and desired == "Candidate":
        plan.status.stage = "Candidate"
        entry = registry.history_entry(registry.StageChange(me.name, None, "Candidate", actor.by,
                                                            actor.reason or "registered"), _stamp(now))
        plan.status.history = registry.append_history(status.get("history"), entry)
        in_force = "Candidate"

    if desired != (in_force or "Candidate") or in_force is None:
        try:
            transition = registry.plan_stage_change(me, desired, siblings, actor)
        except TransitionError as error:
            plan.conditions.append(ConditionUpdate(STAGE_CHANGE, "False", "InvalidTransition", str(error)))
            plan.events.append(EventSpec("Warning", "InvalidTransition", str(error)))
            transition = None
        if transition is not None:
            _apply_transition(plan, body, spec, siblings, observed, transition, actor, now, in_force)
    else:
        plan.conditions.append(ConditionUpdate(STAGE_CHANGE, "True", "InForce", f"stage {in_force} in force"))

    stage = (plan.status.stage if "stage" in plan.status.model_fields_set else in_force) or "Candidate"
    plan.phase = stage
    plan.conditions.append(ConditionUpdate(ARTIFACT_VERIFIED, "True", "Verified",
                                           f"{stage}; artifact sha256 verified" + (f"; {summary}" if summary else "")))
    if settings.mlflow_tracking_uri:
        history = plan.status.history if "history" in plan.status.model_fields_set else status.get("history")
        others = [s for s in observed.siblings if s["metadata"]["name"] != meta["name"]
                  and (s.get("spec") or {}).get("model") == spec.model]
        mirror = plan_alias_sync(body, stage, _last_change_at(history), observed.jobs, settings, others)
        plan.children, plan.delete = mirror.children, mirror.delete
        plan.conditions += [mirror.condition] if mirror.condition else []
    return plan


def _last_change_at(history: list | None) -> str:
    last = (history or [None])[-1]
    return "" if last is None else (last.get("at", "") if isinstance(last, dict) else last.at)


def _report_stage_request(plan: ModelVersionPlan, status: dict, requested: registry.RequestedStage) -> None:
    """The StageRequest condition: why an annotation is ignored (and a Warning Event the first
    time this problem is seen), or which request is in force; nothing when there is none."""
    previous = find(status.get("conditions"), STAGE_REQUEST) or {}
    if requested.error is not None:
        plan.conditions.append(ConditionUpdate(STAGE_REQUEST, "False", "InvalidStageRequest", requested.error))
        if (previous.get("status"), previous.get("message")) != ("False", requested.error):
            plan.events.append(EventSpec("Warning", "InvalidStageRequest",
                                         f"{requested.error}; spec.stage ({requested.stage}) decides meanwhile"))
    elif requested.source == "stageRequest":
        plan.conditions.append(ConditionUpdate(STAGE_REQUEST, "True", "InForce",
                                               f"the stage request for {requested.stage} holds at generation "
                                               f"{requested.request.generation}"))
    elif requested.request is not None:
        plan.conditions.append(ConditionUpdate(STAGE_REQUEST, "True", "Superseded",
                                               f"the stage request for {requested.request.stage} was made at generation "
                                               f"{requested.request.generation}; the spec changed since, spec.stage "
                                               f"({requested.stage}) decides"))
    elif previous:
        plan.conditions.append(ConditionUpdate(STAGE_REQUEST, "True", "NoRequest",
                                               f"no stage request; spec.stage ({requested.stage}) decides"))


def _apply_transition(plan: ModelVersionPlan, body: dict, spec: ModelVersionSpec, siblings: list[VersionState],
                      observed: ModelVersionObservation, transition: registry.TransitionPlan,
                      actor: registry.Actor, now: datetime, in_force: str | None) -> None:
    meta, status = body["metadata"], body.get("status") or {}
    me = _state(body)
    desired = registry.requested_stage(body)
    if desired == "Production":
        # A sibling version asked for Production at the same time: the higher version wins.
        contenders = [s for s in observed.siblings
                      if s["metadata"]["name"] != meta["name"] and (s.get("spec") or {}).get("model") == spec.model
                      and registry.requested_stage(s) == "Production"
                      and (s.get("status") or {}).get("stage") != "Production"]
        higher = [s for s in contenders if int(s["spec"]["version"]) > me.version]
        if higher:
            plan.conditions.append(ConditionUpdate(
                STAGE_CHANGE, "Unknown", "Contended",
                f"{higher[0]['metadata']['name']} (a higher version) is being promoted to Production at the same time"))
            plan.requeue_after = PROMOTION_RECHECK_S
            return
        to_archive = [c for c in transition.archives] + [
            registry.StageChange(s["metadata"]["name"], (s.get("status") or {}).get("stage") or "Candidate",
                                 "Archived", actor.by, f"superseded by the concurrent promotion of {me.name}")
            for s in contenders]
        bodies = {s["metadata"]["name"]: s for s in observed.siblings}
        for change in to_archive:
            plan.sibling_patches.append(SiblingPatch(change.name, meta["namespace"], registry.stage_request_patch(
                bodies.get(change.name, {}), "Archived", f"{OPERATOR} for {actor.by}", change.reason)))
        still_production = [s.name for s in siblings if s.stage == "Production"]
        if still_production or to_archive:
            plan.conditions.append(ConditionUpdate(
                STAGE_CHANGE, "Unknown", "Promoting",
                f"waiting for {', '.join(sorted(set(still_production) | {c.name for c in to_archive}))} "
                f"to leave Production"))
            plan.requeue_after = PROMOTION_RECHECK_S
            return
    change = next(c for c in transition.changes if c.name == me.name)
    previous = in_force or "Candidate"
    entry = registry.history_entry(registry.StageChange(me.name, previous, desired, actor.by, actor.reason),
                                   _stamp(now))
    plan.status.stage = desired
    history = plan.status.history if "history" in plan.status.model_fields_set else status.get("history")
    plan.status.history = registry.append_history(history, entry)
    plan.conditions.append(ConditionUpdate(STAGE_CHANGE, "True", "InForce", f"stage {desired} in force"))
    plan.events.append(EventSpec("Normal", f"Stage{desired}", registry.event_message(
        registry.StageChange(me.name, previous, desired, change.by, change.reason))))
