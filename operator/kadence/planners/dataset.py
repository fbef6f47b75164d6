"""Dataset planner: (Dataset, its ingest Jobs and their results, clock) -> Plan.

How the handler uses it on every reconcile (create/update/resume/timer, and a change of the
kadence.dev/appended-data annotation):
1. list the Jobs and ConfigMaps labelled kadence.dev/owner-kind=dataset,
   kadence.dev/owner-name=<name> in the namespace;
2. `results_to_fetch(body, jobs)` names the finished Jobs whose result the status does not
   reflect yet, with the S3 key of each; read those keys (JSON) — a missing key is simply
   left out of `results`;
3. `plan_dataset(body, DatasetObservation(jobs, results), now)`; apply `plan.children`
   (ConfigMap with the task, then the Job), delete `plan.delete`, merge `plan.status` into
   .status (a merge patch: the keys given replace those in status), set `plan.conditions`,
   post `plan.events`, and look again after `plan.requeue_after` seconds when it is set.

One ingest Job per (generation, refresh slot, appended files): a spec change, a new refresh
slot or a changed kadence.dev/appended-data annotation (a digest of its URI list is part of
the name) makes a new Job; the Job's name is in status.lastJob once its result is in status,
so a result is handled (and its Event posted) once, and an operator restart finds the same
names. The version id comes from the content, so a refresh of unchanged data lists no new
version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..api.common import parse_duration
from ..api.conditions import ConditionUpdate, find
from ..api.dataset import DatasetSpec, DatasetStatus, DatasetVersion, RuleResult
from ..domain.data.appended import APPENDED_DATA_ANNOTATION, AppendedDataError, appended_digest, appended_uris
from ..builders.jobs import WorkloadSettings, job_state, task_configmap, workload_job
from ..builders.meta import child_name
from ..workloads.data_tasks import IngestResult, IngestTask, ingest_result_key
from .plan import ChildRef, EventSpec, Plan

COMPONENT = "ingest"
GENERATION_ANNOTATION = "kadence.dev/generation"
RUNNING_RECHECK_S = 15.0
INLINE_DATA_ENV = "KADENCE_INLINE_DATA"  # read by kadence ingest for configMapRef sources
INGESTED = "Ingested"


@dataclass
class DatasetObservation:
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)  # Job name -> the result JSON it wrote


def refresh_slot(spec: DatasetSpec, now: datetime) -> int:
    if not spec.refresh_interval:
        return 0
    return int(now.timestamp() // parse_duration(spec.refresh_interval))


def ingest_job_name(name: str, generation: int, slot: int, appended: list[str] | None = None) -> str:
    parts: list[str | int] = [f"g{generation}", *([slot] if slot else []),
                              *([f"a{appended_digest(appended)}"] if appended else [])]
    return child_name(name, COMPONENT, *parts)


def results_to_fetch(body: dict, jobs: list[dict]) -> dict[str, str]:
    """Finished Jobs whose result the status does not reflect yet -> the S3 key of their result."""
    meta, status = body["metadata"], body.get("status") or {}
    wanted = {}
    for job in jobs:
        job_name = job["metadata"]["name"]
        if job_state(job) != "Running" and job_name != status.get("lastJob"):
            wanted[job_name] = ingest_result_key(meta["namespace"], meta["name"], job_name)
    return wanted


def build_ingest(body: dict, spec: DatasetSpec, job_name: str, settings: WorkloadSettings,
                 appended: list[str] | None = None) -> list[dict]:
    meta = body["metadata"]
    task = IngestTask(namespace=meta["namespace"], name=meta["name"], spec=spec, run_id=job_name,
                      appended=appended or [])
    extra_env = []
    if spec.source.config_map_ref is not None:
        ref = spec.source.config_map_ref
        extra_env.append({"name": INLINE_DATA_ENV, "valueFrom": {"configMapKeyRef": {"name": ref.name, "key": ref.key}}})
    if spec.source.credentials_secret:
        secret = spec.source.credentials_secret
        extra_env += [{"name": f"KADENCE_SOURCE_S3_{env}", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                      for env, key in (("ENDPOINT", "endpoint"), ("ACCESS_KEY", "accessKey"),
                                       ("SECRET_KEY", "secretKey"))]
    return [
        task_configmap(body, job_name, COMPONENT, task.wire()),
        workload_job(body, job_name, COMPONENT, ["kadence", "ingest"], settings, extra_env=extra_env,
                     annotations={GENERATION_ANNOTATION: str(body["metadata"].get("generation") or 1)}),
    ]


def plan_dataset(body: dict, observed: DatasetObservation, now: datetime,
                 settings: WorkloadSettings = WorkloadSettings()) -> Plan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = DatasetSpec.model_validate(body["spec"])
    generation = int(meta.get("generation") or 1)
    slot = refresh_slot(spec, now)
    plan = Plan(status=DatasetStatus())
    plan.requeue_after = _until_next_slot(spec, now)
    _restate_current_version(plan, status)
    appended = _appended_files(plan, meta, status)
    if appended is None:
        return plan
    job_name = ingest_job_name(meta["name"], generation, slot, appended)
    jobs = {job["metadata"]["name"]: job for job in observed.jobs}
    if job_name not in jobs:
        # A refresh of this generation still running (or finished but not yet recorded) is seen
        # through before the next slot's Job starts: a short refresh interval must not starve it.
        unfinished = _unrecorded_job_of_generation(jobs, generation, status.get("lastJob"), job_name)
        job_name = unfinished or job_name
    for other in sorted(jobs):
        if other != job_name:  # superseded by a newer generation or refresh slot
            plan.delete += [ChildRef("batch/v1", "Job", other), ChildRef("v1", "ConfigMap", other)]
    if status.get("lastJob") == job_name:
        return plan
    job = jobs.get(job_name)
    if job is None:
        plan.children = build_ingest(body, spec, job_name, settings, appended)
        _ingesting(plan, status, f"ingest Job {job_name} started")
        return plan
    state = job_state(job)
    if state == "Running":
        _ingesting(plan, status, f"ingest Job {job_name} is running")
        plan.requeue_after = min(RUNNING_RECHECK_S, plan.requeue_after or RUNNING_RECHECK_S)
        return plan
    raw = observed.results.get(job_name)
    if raw is None:
        if state == "Succeeded":  # the result may not be readable yet; look again soon
            plan.requeue_after = RUNNING_RECHECK_S
            return plan
        result = IngestResult(outcome="Error", valid=False,
                              message=f"the ingest Job {job_name} failed without a result; see its logs")
    else:
        result = IngestResult.model_validate(raw)
    apply_result(plan, status, result, job_name, spec.retention, now)
    return plan


def _appended_files(plan: Plan, meta: dict, status: dict) -> list[str] | None:
    """The URIs of the appended-data annotation, with its AppendedData condition; None (and
    the condition False, an Event once) when the annotation cannot be read: then no ingest
    starts, since one without the files would drop rows the user asked to keep."""
    value = (meta.get("annotations") or {}).get(APPENDED_DATA_ANNOTATION)
    previous = find(status.get("conditions"), "AppendedData")
    try:
        uris = appended_uris(value)
    except AppendedDataError as error:
        message = f"{error}; no ingest starts until the annotation is fixed"
        plan.conditions.append(ConditionUpdate("AppendedData", "False", "InvalidAnnotation", message))
        if not status.get("latestVersion"):
            plan.conditions.append(ConditionUpdate(INGESTED, "False", "InvalidAppendedData", message))
        if not previous or previous.get("status") != "False" or previous.get("message") != message:
            plan.events.append(EventSpec("Warning", "InvalidAppendedData", message))
        return None
    if value is not None or previous:
        plan.conditions.append(ConditionUpdate(
            "AppendedData", "True", "Listed",
            f"{len(uris)} appended file(s) listed in {APPENDED_DATA_ANNOTATION}; "
            "every ingest reads them after the source"))
    return uris


def _unrecorded_job_of_generation(jobs: dict[str, dict], generation: int, last_job: str | None,
                                  current: str) -> str | None:
    for name, job in sorted(jobs.items()):
        annotations = job["metadata"].get("annotations") or {}
        if name not in (last_job, current) and annotations.get(GENERATION_ANNOTATION) == str(generation):
            return name
    return None


def _until_next_slot(spec: DatasetSpec, now: datetime) -> float | None:
    if not spec.refresh_interval:
        return None
    interval = parse_duration(spec.refresh_interval)
    return interval - (now.timestamp() % interval)


def _restate_current_version(plan: Plan, status: dict) -> None:
    """A status written before Ingested existed (an operator upgrade) gets it from the version in it."""
    if find(status.get("conditions"), INGESTED) is None and status.get("latestVersion"):
        plan.conditions.append(ConditionUpdate(INGESTED, "True", "Ingested",
                                               f"version {status['latestVersion']}: {status.get('latestRows')} rows"))


def _ingesting(plan: Plan, status: dict, message: str) -> None:
    plan.phase = "Ingesting"
    if not status.get("latestVersion"):
        plan.conditions.append(ConditionUpdate(INGESTED, "Unknown", "Ingesting", message))


def apply_result(plan: Plan, status: dict, result: IngestResult, job_name: str, retention: int,
                 now: datetime) -> None:
    """Turn one finished ingest into status, conditions and Events."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    plan.status.last_job = job_name
    plan.status.last_ingest_time = stamp
    plan.status.last_ingest = [RuleResult.model_validate(r.model_dump(by_alias=True, mode="json"))
                               for r in result.rule_results]
    current = status.get("latestVersion")
    if result.outcome == "Valid":
        wire = {"id": result.version, "rows": result.rows, "createdAt": result.created_at or stamp,
                "uri": result.uri, "sha256": result.sha256}
        if result.appended:
            wire["appended"] = list(result.appended)
        entry = DatasetVersion.model_validate(wire)
        kept = [DatasetVersion.model_validate(v) for v in status.get("versions") or [] if v.get("id") != result.version]
        plan.status.latest_version = result.version
        plan.status.latest_rows = result.rows
        plan.status.versions = [entry, *kept][:retention]
        passed = len(result.rule_results)
        plan.conditions += [
            ConditionUpdate("Validated", "True", "RulesPassed", f"version {result.version}: all {passed} rules passed"),
            ConditionUpdate(INGESTED, "True", "Ingested",
                            f"version {result.version}: {result.rows} rows"
                            + ("" if result.created else " (content unchanged)")),
        ]
        plan.phase = "Ready"
        if result.created:
            including = f", including {len(result.appended)} appended file(s)" if result.appended else ""
            plan.events.append(EventSpec(
                "Normal", "VersionCreated", f"version {result.version} with {result.rows} rows{including} at {result.uri}"))
        return
    if result.outcome == "Invalid":
        reason, condition = "ValidationFailed", ConditionUpdate("Validated", "False", "ValidationFailed", result.message)
        plan.conditions.append(condition)
        plan.phase = "Invalid"
    else:
        reason = "IngestFailed"
        plan.phase = "Failed"
    plan.events.append(EventSpec("Warning", reason, result.message))
    if current:
        plan.conditions.append(ConditionUpdate(
            INGESTED, "True", "PreviousVersionCurrent",
            f"version {current} stays current; the last ingest failed: {result.message}"))
    else:
        plan.conditions.append(ConditionUpdate(INGESTED, "False", reason, result.message))
