"""Dataset planner: (Dataset, its ingest Jobs and their results, the feedback its
MonitorPolicies publish, clock) -> Plan.

How the handler uses it on every reconcile (create/update/resume/timer):
1. list the Jobs and ConfigMaps labelled kadence.dev/owner-kind=dataset,
   kadence.dev/owner-name=<name> in the namespace;
2. `results_to_fetch(body, jobs)` names the finished Jobs whose result the status does not
   reflect yet, with the S3 key of each; read those keys (JSON) — a missing key is simply
   left out of `results`;
3. for each MonitorPolicy in spec.feedback.from, read it (same namespace) and turn its
   status.feedback into a FeedbackFile (`kadence.domain.data.feedback.published_feedback`),
   or the reason there is none;
4. `plan_dataset(body, DatasetObservation(jobs, results, feedback, feedback_missing), now)`;
   apply `plan.children` (ConfigMap with the task, then the Job), delete `plan.delete`, merge
   `plan.status` into .status, set `plan.conditions`, post `plan.events`.

One ingest Job per (generation, refresh slot, feedback read): a spec change, a new refresh
slot or a newly published feedback export (a digest of the exports' sha256s is part of the
name) makes a new Job; the Job's name is in status.lastJob once its result is in status, so a
result is handled (and its Event posted) once, and an operator restart finds the same names.
The version id comes from the content, so a refresh of unchanged data lists no new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..api.common import parse_duration
from ..api.conditions import ConditionUpdate, find
from ..api.dataset import DatasetSpec, DatasetStatus, DatasetVersion, RuleResult
from ..domain.data.feedback import FeedbackFile, feedback_digest
from ..builders.jobs import WorkloadSettings, job_state, pii_env, task_configmap, workload_job
from ..builders.meta import child_name
from ..workloads.data_tasks import IngestResult, IngestTask, ingest_result_key
from .plan import ChildRef, EventSpec, Plan
from ..api import keys

COMPONENT = "ingest"
GENERATION_ANNOTATION = keys.GENERATION_ANNOTATION
FEEDBACK_ANNOTATION = keys.FEEDBACK_ANNOTATION  # on the ingest Job: the feedback exports it reads
FEEDBACK = "Feedback"
RUNNING_RECHECK_S = 15.0
INLINE_DATA_ENV = "KADENCE_INLINE_DATA"  # read by kadence ingest for configMapRef sources
INGESTED = "Ingested"


@dataclass
class DatasetObservation:
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)  # Job name -> the result JSON it wrote
    feedback: list[FeedbackFile] = field(default_factory=list)  # published by the spec.feedback.from policies
    feedback_missing: dict[str, str] = field(default_factory=dict)  # policy -> why it published nothing usable
    erasures: list[dict] = field(default_factory=list)  # the namespace's ErasureRequests (their status.stores)


def erased_versions(requests: list[dict], dataset: str, store_kind: str = "DatasetSnapshot"
                    ) -> dict[str, tuple[dict, str]]:
    """Version id -> (the version replacing it, the ErasureRequest): what the requests' erasure Jobs
    rewrote of this Dataset's snapshots (status.stores[DatasetSnapshot].versions; a FeatureSet's
    with store_kind FeatureSetSnapshot)."""
    out: dict[str, tuple[dict, str]] = {}
    for request in requests:
        for store in (request.get("status") or {}).get("stores") or []:
            if store.get("store") == store_kind and store.get("name") == dataset:
                for version in store.get("versions") or []:
                    out[version["replaced"]] = (version, request["metadata"]["name"])
    return out


def snapshot_fields(entry: dict, new: dict) -> dict:
    """What a Dataset version entry takes from the version replacing it."""
    return {"rows": new["rows"], "uri": new["uri"], "sha256": new.get("sha256")}


def apply_erasures(versions: list[dict], replacements: dict[str, tuple[dict, str]],
                   fields: Callable[[dict, dict], dict] = snapshot_fields) -> tuple[list[dict], list[str]]:
    """status.versions with each erased version replaced by its successor (the same createdAt and
    feedback, the erasure added to its lineage, `fields` taken from it; a version erased twice
    follows both), and a line per replacement for the Events."""
    out, lines = [], []
    for entry in versions:
        seen = set()
        while entry.get("id") in replacements and entry["id"] not in seen:
            seen.add(entry["id"])
            new, request = replacements[entry["id"]]
            lineage = [*(entry.get("erasures") or []),
                       {"request": request, "erasedRows": new["erasedRows"], "replaces": entry["id"]}]
            lines.append(f"version {entry['id']} -> {new['version']}: erased {new['erasedRows']} rows per request "
                         f"{request}")
            entry = {**entry, "id": new["version"], **fields(entry, new), "erasures": lineage}
        out.append(entry)
    return out, lines


def refresh_slot(spec: DatasetSpec, now: datetime) -> int:
    if not spec.refresh_interval:
        return 0
    return int(now.timestamp() // parse_duration(spec.refresh_interval))


def ingest_job_name(name: str, generation: int, slot: int, feedback: list[FeedbackFile] | None = None) -> str:
    parts: list[str | int] = [f"g{generation}", *([slot] if slot else []),
                              *([f"f{feedback_digest(feedback)}"] if feedback else [])]
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
                 feedback: list[FeedbackFile] | None = None) -> list[dict]:
    meta = body["metadata"]
    task = IngestTask(namespace=meta["namespace"], name=meta["name"], spec=spec, run_id=job_name,
                      appended=[f.uri for f in feedback or []])
    annotations = {GENERATION_ANNOTATION: str(body["metadata"].get("generation") or 1)}
    if feedback:
        annotations[FEEDBACK_ANNOTATION] = json.dumps([f.wire() for f in feedback], separators=(",", ":"))
    extra_env = pii_env()  # the hashing key, to match the erasure guards of ErasureRequests
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
                     annotations=annotations),
    ]


def plan_dataset(body: dict, observed: DatasetObservation, now: datetime,
                 settings: WorkloadSettings = WorkloadSettings()) -> Plan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = DatasetSpec.model_validate(body["spec"])
    generation = int(meta.get("generation") or 1)
    slot = refresh_slot(spec, now)
    plan = Plan(status=DatasetStatus())
    plan.requeue_after = _until_next_slot(spec, now)
    status = _erased(plan, status, erased_versions(observed.erasures, meta["name"]))
    _restate_current_version(plan, status)
    feedback = _feedback_files(plan, spec, status, observed)
    job_name = ingest_job_name(meta["name"], generation, slot, feedback)
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
        plan.children = build_ingest(body, spec, job_name, settings, feedback)
        _ingesting(plan, status, f"ingest Job {job_name} started")
        return plan
    state = job_state(job)
    if state == "Running":
        _ingesting(plan, status, f"ingest Job {job_name} is running")
        # the Job's completion wakes the Dataset (no polling); a refresh slot may still be due
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
    apply_result(plan, status, result, job_name, spec.retention, now, feedback_read(job))
    return plan


def _feedback_files(plan: Plan, spec: DatasetSpec, status: dict, observed: DatasetObservation) -> list[FeedbackFile]:
    """The feedback exports the next ingest reads (spec.feedback.from, in order), with the Feedback
    condition; a listed policy that published nothing yet is named there and the ingest goes on
    without it."""
    if spec.feedback is None:
        if find(status.get("conditions"), FEEDBACK) is not None:
            plan.conditions.append(ConditionUpdate(FEEDBACK, "False", "NotRequested",
                                                   "spec.feedback lists no MonitorPolicy"))
        return []
    wanted = [source.monitor_policy for source in spec.feedback.from_]
    published = {f.monitor_policy: f for f in observed.feedback}
    files = [published[name] for name in wanted if name in published]
    missing = {name: observed.feedback_missing.get(name, f"MonitorPolicy {name} has published no feedback yet")
               for name in wanted if name not in published}
    read = "; ".join(f"{f.rows} labelled predictions of MonitorPolicy {f.monitor_policy} "
                     f"({f.start} to {f.end})" for f in files)
    if missing and not files:
        plan.conditions.append(ConditionUpdate(FEEDBACK, "False", "NoFeedbackPublished",
                                               "; ".join(missing.values())))
    else:
        message = f"every ingest reads {read} after the source"
        if missing:
            message += "; " + "; ".join(missing.values())
        plan.conditions.append(ConditionUpdate(FEEDBACK, "True", "FeedbackRead", message[:1000]))
    return files


def feedback_read(job: dict | None) -> list[FeedbackFile]:
    """The feedback exports an ingest Job was started with (its annotation)."""
    raw = ((job or {}).get("metadata", {}).get("annotations") or {}).get(FEEDBACK_ANNOTATION)
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError:
        return []
    return [FeedbackFile(monitor_policy=e["monitorPolicy"], uri=e["uri"], rows=int(e.get("rows") or 0),
                         sha256=e["sha256"], start=e.get("from"), end=e.get("to"))
            for e in entries if isinstance(e, dict) and e.get("uri") and e.get("sha256") and e.get("monitorPolicy")]


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


def _erased(plan: Plan, status: dict, replacements: dict[str, tuple[dict, str]]) -> dict:
    """The status with the versions ErasureRequests rewrote re-pointed to their replacements (also
    written to plan.status); the rest of the plan works on it."""
    before = status.get("versions") or []
    versions, lines = apply_erasures(before, replacements)
    if not lines:
        return status
    plan.status.versions = [DatasetVersion.model_validate(v) for v in versions]
    current = next((i for i, v in enumerate(before) if v.get("id") == status.get("latestVersion")), None)
    latest = versions[current] if current is not None else None
    status = {**status, "versions": versions}
    if latest is not None and latest["id"] != status.get("latestVersion"):
        plan.status.latest_version, plan.status.latest_rows = latest["id"], latest["rows"]
        status.update(latestVersion=latest["id"], latestRows=latest["rows"])
    for line in lines:
        plan.events.append(EventSpec("Normal", "VersionErased", line))
    return status


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
                 now: datetime, feedback: list[FeedbackFile] | None = None) -> None:
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
        included = [f for f in feedback or [] if f.uri in result.appended]
        if included:
            wire["feedback"] = [f.wire() for f in included]
        # rows a guard dropped (an ErasureRequest's subject); the same content again keeps the lineage it had
        previous = next((v for v in status.get("versions") or [] if v.get("id") == result.version), {})
        known = list(previous.get("erasures") or [])
        dropped = [{"request": request, "erasedRows": rows} for request, rows in sorted(result.erased.items())
                   if request not in {e["request"] for e in known}]
        if known or dropped:
            wire["erasures"] = known + dropped
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
            including = (f", including {sum(f.rows for f in included)} labelled predictions of "
                         f"{', '.join(f.monitor_policy for f in included)}" if included else "")
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
