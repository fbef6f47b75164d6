"""TrainingRun planner: (TrainingRun, its data source, its Jobs, what the Job wrote,
the model's versions, clock) -> Plan.

How the handler uses it on every reconcile (and on a timer while a run is active):
1. get the Dataset or FeatureSet named by spec.datasetRef / spec.featureSetRef (None when
   missing); list the Jobs labelled kadence.dev/owner-kind=trainingrun,
   kadence.dev/owner-name=<run>; list the ModelVersions labelled kadence.dev/model=<model>;
2. read `runs/<ns>/<run>/result.json` and `progress.json` from object storage (None when
   absent), and, for a failed Job, the last ~20 lines of its pod's log;
3. `plan_trainingrun(body, TrainingRunObservation(...), now)`; apply the Plan as for the
   other kinds (children with server-side apply, status, conditions, Events, requeue);
4. when `plan.registration` is set, register the model:
   `kadence.domain.training.versions.allocate(model, registration.existing_versions,
   create, owner=<run>)`, where `create(name, version)` creates
   `registration.body(name, version)` and turns a 409 into
   `VersionTaken(name, <the existing object's kadence.dev/training-run label>)`.
   The next reconcile sees the ModelVersion and marks the run Succeeded.

A run is one Job per attempt, named `<run>-train-<attempt>`: an operator restart finds
the Job (or the result it left in S3) instead of starting another. A missing or not yet
validated Dataset/FeatureSet makes the run wait (phase Pending) with the reason; a failed
Job is retried with the next attempt up to spec.maxAttempts unless the workload said
retrying cannot help (exit code 3); the run then fails with the cause from the log.
The ModelVersion has no ownerReference to the run: deleting a run deletes its Jobs,
never a registered model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..api.conditions import ConditionUpdate, find
from ..api.trainingrun import TrainingRunSpec, TrainingRunStatus, TrialsSummary
from ..builders.jobs import WorkloadSettings, job_finished_at, job_state
from ..builders.training import RUN_LABEL, RUN_UID_ANNOTATION, model_version_body, train_children, train_job_name
from ..domain.monitoring.retrain import training_spec_hash
from ..domain.training.promotion import decide, held_by_segments
from ..tracking.model import MlflowTarget, tracked_condition
from ..workloads.train_task import FAILURE_PREFIX, Progress, TrainInput, TrainResult, TrainTask
from .plan import ChildRef, EventSpec, Plan
from ..api import keys

RUNNING_RECHECK_S = 10.0
REGISTER_RECHECK_S = 2.0
TERMINAL = ("Succeeded", "Failed")
INPUT_READY, TRAINED, REGISTERED = "InputReady", "Trained", "Registered"
MAX_CAUSE = 2000
RESULT_GRACE_S = 120.0  # a succeeded Job's result.json must be readable within this time


@dataclass
class TrainingRunObservation:
    source: dict | None = None  # the Dataset or FeatureSet the spec names
    jobs: list[dict] = field(default_factory=list)
    result: dict | None = None  # runs/<ns>/<run>/result.json
    progress: dict | None = None  # runs/<ns>/<run>/progress.json
    log_tail: str | None = None  # last lines of the failed attempt's pod log
    model_versions: list[dict] = field(default_factory=list)  # every ModelVersion of spec.model


@dataclass(frozen=True)
class Registration:
    """The ModelVersion to create; the handler allocates its name and number."""

    model: str
    namespace: str
    existing_versions: tuple[int, ...]
    spec: dict[str, Any]
    run: str
    run_uid: str | None
    changed_by: str
    reason: str

    def body(self, name: str, version: int) -> dict:
        return model_version_body(name=name, namespace=self.namespace, model=self.model, version=version,
                                  spec=self.spec, run=self.run, run_uid=self.run_uid, changed_by=self.changed_by,
                                  reason=self.reason)


@dataclass
class TrainingRunPlan(Plan):
    status: TrainingRunStatus = field(default_factory=TrainingRunStatus)
    registration: Registration | None = None


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def failure_cause(log_tail: str | None, fallback: str) -> str:
    """The workload's own failure line when it wrote one, else the last lines of the log."""
    lines = [line.rstrip() for line in (log_tail or "").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(FAILURE_PREFIX):
            return line[len(FAILURE_PREFIX):][:MAX_CAUSE]
    if lines:
        return " | ".join(lines[-3:])[-MAX_CAUSE:]
    return fallback


def retry_can_help(job: dict) -> bool:
    """False when the Job failed through its pod failure policy (exit code 3: the spec and
    the data cannot give a model) or ran past its deadline."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return condition.get("reason") not in ("PodFailurePolicy", "DeadlineExceeded")
    return True


def resolve_source(spec: TrainingRunSpec, source: dict | None) -> tuple[TrainInput | None, ConditionUpdate | None]:
    """The input to train on, or the InputReady=False condition explaining why the run must wait."""
    kind = "FeatureSet" if spec.feature_set_ref is not None else "Dataset"
    reference = spec.feature_set_ref or spec.dataset_ref
    if source is None:
        return None, ConditionUpdate(INPUT_READY, "False", f"{kind}NotFound", f"{kind} {reference.name!r} does not exist")
    status = source.get("status") or {}
    versions = status.get("versions") or []
    wanted = reference.version or status.get("latestVersion")
    entry = next((v for v in versions if v.get("id") == wanted), None) if wanted else None
    if entry is None:
        if reference.version:
            known = ", ".join(v.get("id", "?") for v in versions) or "none"
            return None, ConditionUpdate(
                INPUT_READY, "False", f"{kind}VersionNotFound",
                f"version {reference.version} is not a validated version of {kind} {reference.name!r} "
                f"(validated versions: {known})")
        ready = find(status.get("conditions"), "Ready") or {}
        detail = f": {ready['message']}" if ready.get("message") else ""
        return None, ConditionUpdate(INPUT_READY, "False", f"{kind}NotReady",
                                     f"{kind} {reference.name!r} has no validated version yet{detail}")
    return TrainInput(kind=kind, name=reference.name, version=entry["id"], uri=entry["uri"]), None


def build_task(body: dict, spec: TrainingRunSpec, source: TrainInput, attempt: int,
               mlflow_tracking_uri: str | None = None) -> dict:
    meta = body["metadata"]
    mlflow = (MlflowTarget(tracking_uri=mlflow_tracking_uri, experiment=spec.model)
              if mlflow_tracking_uri and spec.tracking.mlflow else None)
    return TrainTask(namespace=meta["namespace"], run=meta["name"], run_uid=meta.get("uid"), attempt=attempt,
                     spec=spec, input=source, mlflow=mlflow).wire()


def registered_version(body: dict, model_versions: list[dict]) -> dict | None:
    """The ModelVersion this run registered, found by its label (and uid when recorded)."""
    meta = body["metadata"]
    for version in model_versions:
        vmeta = version.get("metadata") or {}
        if (vmeta.get("labels") or {}).get(RUN_LABEL) != meta["name"]:
            continue
        uid = (vmeta.get("annotations") or {}).get(RUN_UID_ANNOTATION)
        if uid is None or meta.get("uid") is None or uid == meta.get("uid"):
            return version
    return None


def production_metrics(model_versions: list[dict]) -> dict[str, float] | None:
    for version in model_versions:
        stage = (version.get("status") or {}).get("stage") or (version.get("spec") or {}).get("stage")
        if stage == "Production":
            return (version.get("spec") or {}).get("metrics") or {}
    return None


def identical_version(sha256: str, model_versions: list[dict]) -> str | None:
    """The ModelVersion of the model whose artifact has this sha256, if any."""
    for version in model_versions:
        if ((version.get("spec") or {}).get("artifact") or {}).get("sha256") == sha256:
            return version["metadata"]["name"]
    return None


def registration_for(body: dict, spec: TrainingRunSpec, result: TrainResult, model_versions: list[dict]
                     ) -> Registration:
    meta = body["metadata"]
    decision = held_by_segments(decide(spec.promotion, result.metric, result.metrics,
                                       production_metrics(model_versions)), result.segments)
    mv_spec = {
        "task": result.task,
        "artifact": result.artifact.wire(),
        "metrics": result.metrics,
        "primaryMetric": result.metric,
        "params": {"family": result.best.family, **result.best.params},
        "signature": result.signature.wire(),
        "lineage": {**result.lineage.wire(), "trainingSpecHash": training_spec_hash(body["spec"])},
        "stage": decision.stage,
    }
    if result.estimation_reference is not None:
        mv_spec["estimationReference"] = result.estimation_reference.wire()
    if result.compiled is not None:
        # Recorded verified or not: the server uses it only when verified (planners.inferenceservice.serve_task).
        mv_spec["compiled"] = result.compiled.wire()
    existing = tuple(sorted(int((v.get("spec") or {}).get("version", 0)) for v in model_versions))
    return Registration(model=spec.model, namespace=meta["namespace"], existing_versions=existing, spec=mv_spec,
                        run=meta["name"], run_uid=meta.get("uid"),
                        changed_by=f"trainingrun/{meta['name']} (promotion policy {spec.promotion.mode})",
                        reason=f"{decision.reason}: {decision.message}")


def _progress_status(status: TrainingRunStatus, progress: dict | None, result: TrainResult | None) -> None:
    """Trials, progress and the best so far into `status`, from the result or else progress.json."""
    if result is not None:
        status.trials = TrialsSummary.model_validate(result.trials.wire())
        status.progress = f"{status.trials.done}/{status.trials.total}"
        status.best_score = result.best.cv_score
        status.best_family = result.best.family
        return
    if progress is None:
        return
    try:
        p = Progress.model_validate(progress)
    except ValidationError:
        return
    status.trials = TrialsSummary(done=p.done, total=p.total, pruned=p.pruned, failed=p.failed, timed_out=p.timed_out)
    status.progress = f"{p.done}/{p.total}"
    if p.best_score is not None:
        status.best_score = p.best_score
        status.best_family = p.best_family


def _trained_on(result: TrainResult) -> str:
    lineage = result.lineage
    if lineage.feature_set:
        return f"trained on FeatureSet {lineage.feature_set} version {lineage.feature_set_version}"
    return f"trained on Dataset {lineage.dataset} version {lineage.dataset_version}"


def _restate_finished(plan: TrainingRunPlan, status: dict, phase: str) -> None:
    """A run that finished under an operator that set Ready by hand (an upgrade) has no dependents:
    they are restated once from its Ready, so the derived Ready stays what it was."""
    conditions = status.get("conditions")
    if find(conditions, REGISTERED if phase == "Succeeded" else TRAINED) is not None:
        return
    ready = find(conditions, "Ready")
    if ready is None:
        return
    reason, message = ready.get("reason") or phase, ready.get("message") or ""
    if phase == "Succeeded":
        plan.conditions += [ConditionUpdate(INPUT_READY, "True", "InputResolved", ""),
                            ConditionUpdate(TRAINED, "True", "Trained", ""),
                            ConditionUpdate(REGISTERED, "True", reason, message)]
    else:
        plan.conditions.append(ConditionUpdate(TRAINED, "False", reason, message))


def plan_trainingrun(body: dict, observed: TrainingRunObservation, now: datetime,
                     settings: WorkloadSettings = WorkloadSettings()) -> TrainingRunPlan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = TrainingRunSpec.model_validate(body["spec"])
    plan = TrainingRunPlan()
    phase = status.get("phase")
    if phase in TERMINAL:
        plan.phase = phase
        _restate_finished(plan, status, phase)
        return plan

    attempt = int(status.get("attempt") or 1)
    job_name = train_job_name(meta["name"], attempt)
    jobs = {job["metadata"]["name"]: job for job in observed.jobs}
    result = None
    if observed.result is not None:
        candidate = TrainResult.model_validate(observed.result)
        if candidate.attempt == attempt and candidate.run == meta["name"]:
            result = candidate

    # 1. The run already produced a model: register it, then succeed.
    if result is not None:
        plan.status.attempt = attempt
        plan.status.job_name = job_name
        plan.status.metrics = result.metrics
        if result.segments is not None:
            plan.status.segments = result.segments
        plan.status.artifact_uri = result.artifact.uri
        _progress_status(plan.status, None, result)
        plan.conditions += [
            ConditionUpdate(INPUT_READY, "True", "InputResolved", _trained_on(result)),
            ConditionUpdate(TRAINED, "True", "Trained",
                            f"{result.best.family}: hold-out {result.metric}={result.metrics.get(result.metric)}")]
        tracked = tracked_condition(result.tracking)
        if tracked is not None:
            plan.conditions.append(tracked)
        registered = registered_version(body, observed.model_versions)
        identical = identical_version(result.artifact.sha256, observed.model_versions)
        if registered is None and identical is not None:
            # The same model is registered already (a retrain that learnt nothing new): not twice.
            message = (f"the trained model's sha256 {result.artifact.sha256[:12]} is that of {identical}: "
                       "not registered again")
            plan.status.identical_to = identical
            plan.status.completion_time = _stamp(now)
            plan.phase = "Succeeded"
            plan.conditions.append(ConditionUpdate(REGISTERED, "True", "IdenticalToExistingVersion", message))
            plan.events.append(EventSpec("Normal", "IdenticalToExistingVersion", message))
            return plan
        if registered is None:
            plan.registration = registration_for(body, spec, result, observed.model_versions)
            plan.phase = "Registering"
            plan.conditions.append(ConditionUpdate(REGISTERED, "Unknown", "Registering",
                                                   f"registering the winner ({result.best.family}, "
                                                   f"{result.metric}={result.metrics.get(result.metric)}) "
                                                   f"as a version of model {spec.model}"))
            plan.requeue_after = REGISTER_RECHECK_S
            return plan
        name = registered["metadata"]["name"]
        finished = job_finished_at(jobs[job_name]) if job_name in jobs else None
        plan.status.model_version = name
        plan.status.completion_time = finished or _stamp(now)
        plan.phase = "Succeeded"
        held = ((registered.get("metadata") or {}).get("annotations") or {}).get(keys.REASON_ANNOTATION, "")
        message = (f"{name}: {result.best.family} with hold-out {result.metric}="
                   f"{result.metrics.get(result.metric)}; {held}").rstrip("; ")
        plan.conditions.append(ConditionUpdate(REGISTERED, "True", "Succeeded", message))
        plan.events.append(EventSpec("Normal", "ModelRegistered", message))
        return plan

    # 2. No model yet: the data must be there first.
    source, waiting = resolve_source(spec, observed.source)
    job = jobs.get(job_name)
    if source is None and job is None:
        previous = find(status.get("conditions"), INPUT_READY) or {}
        plan.conditions.append(waiting)
        plan.phase = "Pending"  # the source's change wakes the run (no requeue needed)
        if (previous.get("reason"), previous.get("message")) != (waiting.reason, waiting.message):
            plan.events.append(EventSpec("Warning", waiting.reason, waiting.message))
        return plan

    if source is not None:
        plan.conditions.append(ConditionUpdate(INPUT_READY, "True", "InputResolved",
                                               f"{source.kind} {source.name} version {source.version}"))

    # Jobs of earlier attempts are not needed any more once a later one exists.
    for other in sorted(jobs):
        if other != job_name:
            plan.delete += [ChildRef("batch/v1", "Job", other), ChildRef("v1", "ConfigMap", other)]

    # 3. Start the attempt's Job (idempotent: same name, same body).
    if job is None:
        plan.children = train_children(body, attempt, build_task(body, spec, source, attempt,
                                                                 settings.mlflow_tracking_uri), settings)
        plan.status.attempt = attempt
        plan.status.job_name = job_name
        plan.status.start_time = status.get("startTime") or _stamp(now)
        plan.status.trials = TrialsSummary(done=0, total=spec.search.max_trials)
        plan.status.progress = f"0/{spec.search.max_trials}"
        plan.phase = "Running"
        plan.conditions.append(ConditionUpdate(TRAINED, "Unknown", "Training",
                                               f"attempt {attempt}: Job {job_name} trains on {source.kind} "
                                               f"{source.name} version {source.version}"))
        if attempt == 1:
            plan.events.append(EventSpec("Normal", "TrainingStarted", f"Job {job_name} started"))
        plan.requeue_after = RUNNING_RECHECK_S
        return plan

    state = job_state(job)
    finished = job_finished_at(job)
    if state == "Succeeded" and finished and (now - _parse(finished)).total_seconds() > RESULT_GRACE_S:
        state = "Failed"  # it exited 0 but left no result: treat as a failed attempt
        observed = TrainingRunObservation(**{**observed.__dict__, "log_tail": observed.log_tail or
                                             f"Job {job_name} succeeded but wrote no result.json"})
    if state == "Running" or state == "Succeeded":
        # Succeeded without a result yet: the result is being read; look again soon.
        plan.status.attempt = attempt
        plan.status.job_name = job_name
        _progress_status(plan.status, observed.progress, None)
        plan.phase = "Running"
        done = plan.status.progress or "0/?"
        plan.conditions.append(ConditionUpdate(TRAINED, "Unknown", "Training",
                                               f"attempt {attempt}: {done} trials"
                                               + (f", best {plan.status.best_family} {plan.status.best_score:.4g}"
                                                  if plan.status.best_score is not None else "")))
        plan.requeue_after = RUNNING_RECHECK_S
        return plan

    # 4. The attempt failed.
    cause = failure_cause(observed.log_tail, f"Job {job_name} failed; see its logs")
    if attempt < spec.max_attempts and retry_can_help(job):
        next_attempt = attempt + 1
        plan.status.attempt = next_attempt
        plan.status.job_name = train_job_name(meta["name"], next_attempt)
        plan.phase = "Running"
        plan.conditions.append(ConditionUpdate(TRAINED, "Unknown", "Retrying",
                                               f"attempt {attempt} failed: {cause}; starting attempt {next_attempt} "
                                               f"of {spec.max_attempts}"))
        plan.events.append(EventSpec("Warning", "AttemptFailed", f"attempt {attempt} failed: {cause}"))
        plan.requeue_after = 0.0
        return plan
    plan.status.attempt = attempt
    plan.status.job_name = job_name
    plan.status.completion_time = job_finished_at(job) or _stamp(now)
    plan.phase = "Failed"
    plan.conditions.append(ConditionUpdate(TRAINED, "False", "TrainingFailed", cause))
    plan.events.append(EventSpec("Warning", "TrainingFailed", cause))
    return plan
