"""BatchPrediction planner: (BatchPrediction, its model's versions, its Dataset, its Jobs and their results, clock) -> Plan.

How the handler uses it on every reconcile:
1. read the ModelVersions of spec.model, the Dataset of spec.input.dataset (None when absent), and
   the Jobs the BatchPrediction controls;
2. `results_to_fetch(body, jobs)` -> {job name: S3 key}; read them;
3. `plan_batchprediction(body, BatchObservation(...), now)`; realize the Plan.

Runs. A run has a deterministic name: `<name>-<tick>` for a scheduled run (its tick, in UTC,
`%Y%m%d%H%M`), else `<name>-<digest>` of what it scores (the spec's generation, the model version
and, with follow: EveryNewVersion or a pinned version, the Dataset version), so the same inputs
never run twice and a new model version, spec or Dataset version starts a new one. One run is
active at a time; a run wanted while another is active starts after it. Attempt N of a run is the
Job `<run>-a<N>` (the first is `<run>`); a failed attempt is retried after spec.retry.backoff,
doubled per attempt, up to spec.retry.limit retries. status.runs keeps the newest
spec.historyLimit runs; the Jobs of runs that fall out of it are deleted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..api.batchprediction import BatchPredictionSpec, BatchPredictionStatus, BatchRun
from ..api.common import parse_duration
from ..api.conditions import ConditionUpdate
from ..builders.jobs import WorkloadSettings, job_finished_at, job_state, task_configmap, workload_job
from ..builders.meta import child_name
from ..domain.monitoring.triggers import check_schedule
from ..workloads.batch_task import BatchResult, BatchTask, prediction_stream, result_key
from .plan import ChildRef, EventSpec, Plan

COMPONENT = "batch"
RUNNING_RECHECK_S = 15.0
MODEL_RESOLVED, INPUT_AVAILABLE, LAST_RUN = "ModelResolved", "InputAvailable", "LastRunSucceeded"
ACTIVE = ("Running", "Retrying")


@dataclass
class BatchObservation:
    versions: list[dict] = field(default_factory=list)  # the ModelVersions of spec.model
    dataset: dict | None = None
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def attempt_job_name(run: str, attempt: int) -> str:
    return run if attempt == 1 else child_name(run, f"a{attempt}")


def results_to_fetch(body: dict, jobs: list[dict]) -> dict[str, str]:
    """The results of the finished Jobs of runs still active in status (the others are settled)."""
    meta, status = body["metadata"], body.get("status") or {}
    active = {attempt_job_name(r["name"], r.get("attempt", 1)) for r in status.get("runs") or []
              if r.get("phase") == "Running"}
    return {job["metadata"]["name"]: result_key(meta["namespace"], meta["name"], job["metadata"]["name"])
            for job in jobs if job["metadata"]["name"] in active and job_state(job) != "Running"}


# --- resolution -----------------------------------------------------------------------------

def _stage(version: dict) -> str | None:
    return (version.get("status") or {}).get("stage")


def resolve_model(spec: BatchPredictionSpec, versions: list[dict]) -> tuple[dict | None, ConditionUpdate]:
    """The ModelVersion to score with, and the ModelResolved condition."""
    if spec.version is not None:
        found = next((v for v in versions if int(v["spec"]["version"]) == spec.version), None)
        if found is None:
            return None, ConditionUpdate(MODEL_RESOLVED, "False", "ModelVersionNotFound",
                                         f"model {spec.model} has no version {spec.version}")
    else:
        holders = [v for v in versions if _stage(v) == spec.stage]
        found = max(holders, key=lambda v: int(v["spec"]["version"]), default=None)
        if found is None:
            return None, ConditionUpdate(MODEL_RESOLVED, "False", "NoVersionInStage",
                                         f"no version of model {spec.model} is in stage {spec.stage}")
    name = found["metadata"]["name"]
    if (found.get("status") or {}).get("verified") is False:
        return None, ConditionUpdate(MODEL_RESOLVED, "False", "ArtifactNotVerified",
                                     f"{name}: its artifact does not match its sha256; it is never scored with")
    return found, ConditionUpdate(MODEL_RESOLVED, "True", "ModelResolved", f"scoring with {name}")


@dataclass(frozen=True)
class ResolvedInput:
    uri: str
    format: str
    snapshot: bool
    entity_column: str
    dataset_version: str | None = None
    label_column: str | None = None  # the Dataset's target: labels an input carries become feedback


def resolve_input(spec: BatchPredictionSpec, dataset: dict | None) -> tuple[ResolvedInput | None, ConditionUpdate]:
    """What a run reads (and the entity column), and the InputAvailable condition."""
    if spec.input.uri is not None:
        return (ResolvedInput(spec.input.uri, spec.input.format or "parquet", False, spec.output.entity_column),
                ConditionUpdate(INPUT_AVAILABLE, "True", "InputUri", spec.input.uri))
    ref = spec.input.dataset
    if dataset is None:
        return None, ConditionUpdate(INPUT_AVAILABLE, "False", "DatasetNotFound", f"Dataset {ref.name!r} does not exist")
    status = dataset.get("status") or {}
    versions = status.get("versions") or []
    wanted = ref.version or status.get("latestVersion")
    entry = next((v for v in versions if v.get("id") == wanted), None) if wanted else None
    if entry is None:
        if ref.version:
            known = ", ".join(v["id"] for v in versions) or "none"
            return None, ConditionUpdate(INPUT_AVAILABLE, "False", "DatasetVersionNotFound",
                                         f"version {ref.version} is not a validated version of Dataset {ref.name!r} "
                                         f"(validated versions: {known})")
        return None, ConditionUpdate(INPUT_AVAILABLE, "False", "DatasetNotReady",
                                     f"Dataset {ref.name!r} has no validated version yet")
    entity = entity_column(spec, dataset)
    if not entity:
        return None, ConditionUpdate(INPUT_AVAILABLE, "False", "NoEntityColumn",
                                     f"Dataset {ref.name!r} declares no schema.entityColumn; set spec.output.entityColumn")
    target = (((dataset.get("spec") or {}).get("schema") or {}).get("target"))
    return (ResolvedInput(entry["uri"], "parquet", True, entity, entry["id"], target),
            ConditionUpdate(INPUT_AVAILABLE, "True", "DatasetVersionValidated",
                            f"Dataset {ref.name!r} version {entry['id']}"))


def entity_column(spec: BatchPredictionSpec, dataset: dict | None) -> str | None:
    """spec.output.entityColumn, else the Dataset's schema.entityColumn."""
    return spec.output.entity_column or (((dataset or {}).get("spec") or {}).get("schema") or {}).get("entityColumn")


def run_key(spec: BatchPredictionSpec, generation: int, model_version: str, source: ResolvedInput) -> str:
    """The digest naming an unscheduled run: what it scores."""
    scored_version = source.dataset_version if spec.input.dataset is not None and (
        spec.input.dataset.version or spec.input.dataset.follow == "EveryNewVersion") else None
    text = "|".join(str(part) for part in (generation, model_version, scored_version or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# --- children -------------------------------------------------------------------------------

def batch_model(version: dict) -> dict:
    """The model part of the task: the fields `planners.inferenceservice.serve_task` gives a server."""
    spec = version["spec"]
    model: dict = {"name": version["metadata"]["name"], "model": spec["model"], "version": int(spec["version"]),
                   "artifact": {"uri": spec["artifact"]["uri"], "sha256": spec["artifact"]["sha256"]}}
    if spec.get("task"):
        model["task"] = spec["task"]
    inputs = (spec.get("signature") or {}).get("inputs")
    if inputs:
        model["inputs"] = [{"name": c["name"], "type": c["type"]} for c in inputs]
    compiled = spec.get("compiled")
    if compiled and compiled.get("verified") is True:  # as served: only a graph that matched scikit-learn
        model["compiled"] = {k: compiled[k] for k in ("uri", "sha256", "verified", "maxAbsDifference", "tolerance")
                             if k in compiled}
    return model


def run_children(body: dict, spec: BatchPredictionSpec, run: BatchRun, model: dict, source: ResolvedInput,
                 settings: WorkloadSettings) -> list[dict]:
    meta = body["metadata"]
    job = attempt_job_name(run.name, run.attempt)
    task = BatchTask(
        namespace=meta["namespace"], name=meta["name"], run=run.name, attempt=run.attempt, engine=spec.engine,
        model=model, chunk_rows=spec.chunk_rows, stream=prediction_stream(meta["name"]), label_column=source.label_column,
        input={"uri": source.uri, "format": source.format, "snapshot": source.snapshot,
               "dataset": spec.input.dataset.name if spec.input.dataset else None,
               "datasetVersion": source.dataset_version},
        output={"uri": spec.output.uri.rstrip("/") + f"/{run.name}/", "format": spec.output.format,
                "entityColumn": source.entity_column, "probabilities": spec.output.probabilities},
        result_key=result_key(meta["namespace"], meta["name"], job),
    )
    resources = spec.resources.wire() if spec.resources is not None else None
    return [task_configmap(body, job, COMPONENT, task.wire()),
            workload_job(body, job, COMPONENT, ["kadence", "batch"], settings, resources=resources or None)]


# --- the plan -------------------------------------------------------------------------------

def plan_batchprediction(body: dict, observed: BatchObservation, now: datetime,
                         settings: WorkloadSettings = WorkloadSettings()) -> Plan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = BatchPredictionSpec.model_validate(body["spec"])
    plan = Plan(status=BatchPredictionStatus())
    runs = [BatchRun.model_validate(r) for r in status.get("runs") or []]
    jobs = {job["metadata"]["name"]: job for job in observed.jobs}

    version, model_condition = resolve_model(spec, observed.versions)
    source, input_condition = resolve_input(spec, observed.dataset)
    plan.conditions += [model_condition, input_condition]
    if version is not None:
        plan.status.model_version = version["metadata"]["name"]
    if source is not None and source.dataset_version:
        plan.status.dataset_version = source.dataset_version

    # 1. follow the active run: its Job's outcome, a retry that is due
    active = next((r for r in runs if r.phase in ACTIVE), None)
    if active is not None:
        runs = _follow(plan, body, spec, active, runs, jobs, observed, now, settings)
        active = next((r for r in runs if r.phase in ACTIVE), None)

    # 2. the run wanted now, when nothing is active
    wanted_name, tick = None, None
    if version is not None and source is not None:
        wanted_name, tick = _wanted(plan, spec, meta, status, version, source, now)
    if wanted_name is not None and active is None and all(r.name != wanted_name for r in runs):
        run = BatchRun(name=wanted_name, phase="Running", attempt=1, model_version=version["metadata"]["name"],
                       dataset_version=source.dataset_version, input_uri=source.uri, started_at=iso(now),
                       output_uri=spec.output.uri.rstrip("/") + f"/{wanted_name}/")
        plan.children += run_children(body, spec, run, batch_model(version), source, settings)
        runs = [run, *runs]
        active = run
        if tick is not None:
            plan.status.last_scheduled_at = iso(tick)
        plan.events.append(EventSpec("Normal", "RunStarted", f"run {run.name}: scoring "
                                     f"{source.dataset_version or source.uri} with {run.model_version}"))
    elif tick is not None and wanted_name is not None and active is not None and active.name != wanted_name:
        plan.status.last_scheduled_at = iso(tick)  # a tick while a run is active is skipped, not queued
        plan.events.append(EventSpec("Warning", "RunSkipped",
                                     f"schedule tick {iso(tick)} skipped: run {active.name} is still active"))

    # 3. history, trimmed; the Jobs of runs that fell out of it go
    kept, dropped = runs[: spec.history_limit], runs[spec.history_limit:]  # the active run is always the newest
    for run in dropped:
        for attempt in range(1, run.attempt + 1):
            job = attempt_job_name(run.name, attempt)
            if job in jobs:
                plan.delete += [ChildRef("batch/v1", "Job", job), ChildRef("v1", "ConfigMap", job)]
    if runs or status.get("runs"):
        plan.status.runs = kept
    _summarize(plan, kept, active)
    return plan


def _wanted(plan: Plan, spec: BatchPredictionSpec, meta: dict, status: dict, version: dict,
            source: ResolvedInput, now: datetime) -> tuple[str | None, datetime | None]:
    """(the run wanted now or None, its schedule tick or None); sets next_run_at and the requeue."""
    if spec.schedule is None:
        return child_name(meta["name"], run_key(spec, meta.get("generation") or 0, version["metadata"]["name"],
                                                source)), None
    since = parse_time(meta.get("creationTimestamp")) or now
    check = check_schedule(cron=spec.schedule.cron, time_zone=spec.schedule.time_zone, now=now,
                           last_run=parse_time(status.get("lastScheduledAt")), since=since)
    if check.next_time is not None:
        plan.status.next_run_at = iso(check.next_time)
        plan.requeue_after = max(1.0, (check.next_time - now).total_seconds())
    if not check.fired:
        return None, None
    return child_name(meta["name"], check.slot.astimezone(timezone.utc).strftime("%Y%m%d%H%M")), check.slot


def _follow(plan: Plan, body: dict, spec: BatchPredictionSpec, run: BatchRun, runs: list[BatchRun],
            jobs: dict[str, dict], observed: BatchObservation, now: datetime,
            settings: WorkloadSettings) -> list[BatchRun]:
    """`runs` with the active run moved on by what its Job and result say."""
    results = observed.results
    job_name = attempt_job_name(run.name, run.attempt)
    updated = run
    if run.phase == "Retrying":
        retry_at = parse_time(run.retry_at)
        if retry_at is not None and retry_at > now:
            plan.requeue_after = max(1.0, (retry_at - now).total_seconds())
            return runs
        updated = run.model_copy(update={"phase": "Running", "attempt": run.attempt + 1, "retry_at": None,
                                         "message": f"attempt {run.attempt + 1} started"})
        children = _attempt_children(body, spec, updated, observed, settings)
        if isinstance(children, str):
            return _settle_failed(plan, run, runs, children, now)
        plan.children += children
        plan.events.append(EventSpec("Normal", "RunRetried", f"run {run.name}: attempt {updated.attempt} started"))
        return [updated if r is run else r for r in runs]
    job = jobs.get(job_name)
    if job is None:  # not in the cache yet, or deleted by hand: apply it again (same name, same task)
        children = _attempt_children(body, spec, run, observed, settings)
        if isinstance(children, str):
            return _settle_failed(plan, run, runs, children, now)
        plan.children += children
        return runs
    state = job_state(job)
    raw = results.get(job_name)
    if state == "Running" or (state == "Succeeded" and raw is None):
        plan.requeue_after = RUNNING_RECHECK_S
        return runs
    result = BatchResult.model_validate(raw) if raw is not None else BatchResult(
        outcome="Error", run=run.name, message=f"Job {job_name} failed without a result; see its logs")
    finished = parse_time(result.finished_at) or parse_time(job_finished_at(job)) or now
    started = parse_time(run.started_at) or finished
    fields = {"finished_at": iso(finished), "duration_seconds": round((finished - started).total_seconds(), 3),
              "message": result.message}
    if result.outcome == "Succeeded":
        updated = run.model_copy(update={**fields, "phase": "Succeeded", "rows": result.rows,
                                         "output_uri": result.output_uri, "manifest_uri": result.manifest_uri})
        plan.events.append(EventSpec("Normal", "RunSucceeded", f"run {run.name}: {result.rows} rows at "
                                     f"{result.output_uri}"))
    elif result.outcome == "Error" and run.attempt <= spec.retry.limit:
        delay = parse_duration(spec.retry.backoff) * 2 ** (run.attempt - 1)
        retry_at = max(finished, now) + timedelta(seconds=delay)
        updated = run.model_copy(update={**fields, "phase": "Retrying", "retry_at": iso(retry_at)})
        plan.requeue_after = max(1.0, (retry_at - now).total_seconds())
        plan.events.append(EventSpec("Warning", "RunRetrying", f"run {run.name} attempt {run.attempt} failed "
                                     f"({result.message}); retrying at {iso(retry_at)}"))
    else:
        why = "" if result.outcome == "Invalid" else f" after {run.attempt} attempts"
        updated = run.model_copy(update={**fields, "phase": "Failed", "message": result.message + why})
        plan.events.append(EventSpec("Warning", "RunFailed", f"run {run.name} failed{why}: {result.message}"))
    return [updated if r is run else r for r in runs]


def _attempt_children(body: dict, spec: BatchPredictionSpec, run: BatchRun, observed: BatchObservation,
                      settings: WorkloadSettings) -> list[dict] | str:
    """The Job of `run`'s current attempt, built from what the run recorded (model version, input), so a
    retry scores exactly what the first attempt did; or why it cannot be built any more."""
    version = next((v for v in observed.versions if v["metadata"]["name"] == run.model_version), None)
    if version is None:
        return f"ModelVersion {run.model_version} no longer exists"
    entity = entity_column(spec, observed.dataset)
    if entity is None:
        return "no entity column: the Dataset is gone or declares none, and spec.output.entityColumn is unset"
    target = (((observed.dataset or {}).get("spec") or {}).get("schema") or {}).get("target")
    source = ResolvedInput(run.input_uri or "", (spec.input.format or "parquet") if spec.input.uri else "parquet",
                           spec.input.dataset is not None, entity, run.dataset_version,
                           target if spec.input.dataset is not None else None)
    return run_children(body, spec, run, batch_model(version), source, settings)


def _settle_failed(plan: Plan, run: BatchRun, runs: list[BatchRun], message: str, now: datetime) -> list[BatchRun]:
    updated = run.model_copy(update={"phase": "Failed", "retry_at": None, "finished_at": iso(now),
                                     "message": message})
    plan.events.append(EventSpec("Warning", "RunFailed", f"run {run.name} failed: {message}"))
    return [updated if r is run else r for r in runs]


def _summarize(plan: Plan, runs: list[BatchRun], active: BatchRun | None) -> None:
    finished = next((r for r in runs if r.phase in ("Succeeded", "Failed")), None)
    newest = runs[0] if runs else None
    if newest is not None:
        plan.status.last_run = newest.name
    succeeded = next((r for r in runs if r.phase == "Succeeded"), None)
    if succeeded is not None:
        plan.status.last_output = succeeded.output_uri
        plan.status.last_rows = succeeded.rows
    if active is not None and active.phase == "Retrying":
        plan.conditions.append(ConditionUpdate(LAST_RUN, "False", "RunRetrying",
                                               f"run {active.name} attempt {active.attempt} failed: {active.message}; "
                                               f"retrying at {active.retry_at}"))
        plan.phase = "Retrying"
        return
    if finished is None:
        plan.conditions.append(ConditionUpdate(LAST_RUN, "Unknown", "Running" if active else "NoRunYet",
                                               f"run {active.name} is running" if active else "no run has finished"))
    elif finished.phase == "Succeeded":
        plan.conditions.append(ConditionUpdate(LAST_RUN, "True", "RunSucceeded",
                                               f"run {finished.name}: {finished.rows} rows at {finished.output_uri}"))
    else:
        plan.conditions.append(ConditionUpdate(LAST_RUN, "False", "RunFailed", f"run {finished.name}: {finished.message}"))
    plan.phase = "Running" if active is not None else ("Scheduled" if plan.status.next_run_at else
                                                        (finished.phase if finished else "Waiting"))
