"""ErasureRequest planner: (ErasureRequest, the Datasets and MonitorPolicies in scope, its Jobs and their results) -> Plan.

How the handler uses it on every reconcile:
1. read the Datasets named in spec.scope.datasets (None when absent), the namespace's
   MonitorPolicies and FeatureSets, and the Jobs the request controls;
2. `results_to_fetch(body, jobs)` -> {job name: S3 key}; read them;
3. `plan_erasurerequest(body, ErasureObservation(...))`; realize the Plan.

One erasure Job per generation, `<name>-erase-g<generation>`: its task lists the InferenceServices,
the feedback prefixes of the MonitorPolicies watching them, and each Dataset's kept versions as its
status lists them now, and so the versions of each FeatureSet built on one of those Datasets
(spec.datasetRef: a Dataset in scope implies its FeatureSets). The Job's result becomes
status.stores (per store: rows erased, the Dataset and FeatureSet versions replaced), the audit
record's and the guard's URIs, and the Erased condition. A Dataset or FeatureSet re-points its
versions to the replacements itself (planners.dataset and planners.featureset read them here);
later ingests of it apply the guard. A finished generation is never erased again: a new
generation (an edit of the spec) runs a new Job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..api.conditions import ConditionUpdate
from ..api.erasurerequest import ErasureRequestSpec, ErasureRequestStatus, StoreErasure
from ..builders.jobs import WorkloadSettings, job_state, pii_env, task_configmap, workload_job
from ..builders.meta import child_name
from ..workloads.erase_task import (DatasetVersionRef, EraseDataset, EraseFeatureSet, EraseResult, EraseTask,
                                   result_key)
from .plan import ChildRef, EventSpec, Plan

COMPONENT = "erase"
ERASED = "Erased"
RUNNING_RECHECK_S = 15.0


@dataclass
class ErasureObservation:
    datasets: dict[str, dict | None] = field(default_factory=dict)  # spec.scope.datasets -> the Dataset or None
    monitor_policies: list[dict] = field(default_factory=list)  # the namespace's
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)
    feature_sets: list[dict] = field(default_factory=list)  # the namespace's (when Datasets are in scope)


def erase_job_name(name: str, generation: int) -> str:
    return child_name(name, COMPONENT, f"g{generation}")


def results_to_fetch(body: dict, jobs: list[dict]) -> dict[str, str]:
    """The result of this generation's finished Job, until the status records it."""
    meta, status = body["metadata"], body.get("status") or {}
    wanted = erase_job_name(meta["name"], int(meta.get("generation") or 1))
    if status.get("job") == wanted and status.get("completedAt"):
        return {}
    return {job["metadata"]["name"]: result_key(meta["namespace"], meta["name"], job["metadata"]["name"])
            for job in jobs if job["metadata"]["name"] == wanted and job_state(job) != "Running"}


def watching_policies(policies: list[dict], services: list[str]) -> list[str]:
    """The MonitorPolicies whose inferenceServiceRef is one of `services` (their feedback exports)."""
    wanted = set(services)
    return sorted(p["metadata"]["name"] for p in policies
                  if ((p.get("spec") or {}).get("inferenceServiceRef") or {}).get("name") in wanted)


def kept_versions(obj: dict | None) -> list[DatasetVersionRef]:
    versions = ((obj or {}).get("status") or {}).get("versions") or []
    return [DatasetVersionRef(id=v["id"], uri=v["uri"]) for v in versions if v.get("id") and v.get("uri")]


def feature_sets_on(feature_sets: list[dict], datasets: list[str]) -> list[EraseFeatureSet]:
    """The FeatureSets whose spec.datasetRef names one of `datasets`, with their kept versions."""
    wanted = set(datasets)
    return [EraseFeatureSet(name=f["metadata"]["name"], versions=kept_versions(f))
            for f in sorted(feature_sets, key=lambda f: f["metadata"]["name"])
            if ((f.get("spec") or {}).get("datasetRef") or {}).get("name") in wanted]


def erase_task(body: dict, spec: ErasureRequestSpec, observed: ErasureObservation, job: str) -> EraseTask:
    meta = body["metadata"]
    datasets = [EraseDataset(name=name, versions=kept_versions(observed.datasets.get(name)))
                for name in spec.scope.datasets or []]
    services = list(spec.scope.inference_services or [])
    return EraseTask(namespace=meta["namespace"], request=meta["name"], match=spec.match, reason=spec.reason,
                     inference_services=services, monitor_policies=watching_policies(observed.monitor_policies,
                                                                                      services),
                     datasets=datasets, feature_sets=feature_sets_on(observed.feature_sets, spec.scope.datasets or []),
                     result_key=result_key(meta["namespace"], meta["name"], job))


def plan_erasurerequest(body: dict, observed: ErasureObservation, now: datetime,
                        settings: WorkloadSettings = WorkloadSettings()) -> Plan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = ErasureRequestSpec.model_validate(body["spec"])
    plan = Plan(status=ErasureRequestStatus())
    job_name = erase_job_name(meta["name"], int(meta.get("generation") or 1))
    jobs = {job["metadata"]["name"]: job for job in observed.jobs}
    for other in sorted(jobs):
        if other != job_name:  # an earlier generation's
            plan.delete += [ChildRef("batch/v1", "Job", other), ChildRef("v1", "ConfigMap", other)]
    if status.get("job") == job_name and status.get("completedAt"):
        return plan  # this generation is done; its status stands
    plan.status.job = job_name
    job = jobs.get(job_name)
    if job is None:
        task = erase_task(body, spec, observed, job_name)
        plan.children = [task_configmap(body, job_name, COMPONENT, task.model_dump(by_alias=True, mode="json")),
                         workload_job(body, job_name, COMPONENT, ["kadence", "erase"], settings, extra_env=pii_env())]
        missing = [name for name, found in observed.datasets.items() if found is None]
        note = (f"; Datasets {', '.join(missing)} do not exist: only their guard applies (to versions to come)"
                if missing else "")
        plan.conditions.append(ConditionUpdate(ERASED, "Unknown", "Erasing", f"erasure Job {job_name} started{note}"))
        plan.events.append(EventSpec("Normal", "ErasureStarted", f"erasure Job {job_name} started{note}"))
        plan.phase = "Erasing"
        return plan
    state = job_state(job)
    raw = observed.results.get(job_name)
    if state == "Running" or (state == "Succeeded" and raw is None):
        plan.conditions.append(ConditionUpdate(ERASED, "Unknown", "Erasing", f"erasure Job {job_name} is running"))
        plan.phase = "Erasing"
        if state == "Succeeded":
            plan.requeue_after = RUNNING_RECHECK_S  # the result may not be readable yet
        return plan
    result = EraseResult.model_validate(raw) if raw is not None else EraseResult(
        outcome="Error", request=meta["name"], message=f"the erasure Job {job_name} failed without a result; see its logs")
    apply_result(plan, result, now)
    return plan


def apply_result(plan: Plan, result: EraseResult, now: datetime) -> None:
    if result.outcome == "Succeeded":
        plan.status.stores = [StoreErasure.model_validate(s.model_dump(by_alias=True)) for s in result.stores]
        plan.status.erased_rows = result.erased_rows
        plan.status.audit_uri = result.audit_uri
        plan.status.guard_uri = result.guard_uri
        plan.status.completed_at = result.finished_at
        plan.conditions.append(ConditionUpdate(ERASED, "True", "Erased", result.message[:1000]))
        plan.events.append(EventSpec("Normal", "Erased", result.message[:1000]))
        plan.phase = "Erased"
        return
    reason = "ErasureRefused" if result.outcome == "Invalid" else "ErasureFailed"
    plan.status.completed_at = result.finished_at or now.strftime("%Y-%m-%dT%H:%M:%SZ")  # settled: not read again
    plan.conditions.append(ConditionUpdate(ERASED, "False", reason, result.message[:1000]))
    plan.events.append(EventSpec("Warning", reason, result.message[:1000]))
    plan.phase = "Failed"
