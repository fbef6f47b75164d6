"""A ModelVersion's MLflow mirror: one `kadence track` Job per stage it takes (pure).

With an MLflow tracking server configured (KADENCE_MLFLOW_TRACKING_URI) and a ModelVersion whose
TrainingRun was logged there (spec.lineage.mlflowRunId), each stage in force gets a small Job
that registers the version in MLflow's model registry (once) and moves the aliases (`champion`
for Production, `challenger` for Staging). The Job is named after the stage change, so a restart
plans the same Job again and a later change gets a new one (a change is mirrored in the
reconcile that makes it); the previous Jobs are deleted. Its
outcome is the informational Tracked condition: MLflow being down never touches Ready or the
stage, and the Job's backoffLimit retries it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ..api.conditions import ConditionUpdate
from ..builders.jobs import WorkloadSettings, job_state, task_configmap, workload_job
from ..builders.meta import cut_name
from ..domain.registry import requested_stage
from ..tracking.model import TRACKED, AliasSyncTask, alias_for, releasable_aliases
from .plan import ChildRef

COMPONENT = "mlflow-sync"


@dataclass
class AliasSyncPlan:
    children: list[dict] = field(default_factory=list)
    delete: list[ChildRef] = field(default_factory=list)
    condition: ConditionUpdate | None = None


def sync_job_name(model_version: str, stage: str, changed_at: str) -> str:
    digest = hashlib.sha256(f"{stage}|{changed_at}".encode()).hexdigest()[:8]
    return cut_name(f"{model_version}-mlflow-{digest}")


def plan_alias_sync(body: dict, stage: str, changed_at: str, jobs: list[dict],
                    settings: WorkloadSettings, siblings: list[dict] = ()) -> AliasSyncPlan:
    """The sync Job for `stage` (the stage in force since `changed_at`, its status.history entry),
    the older sync Jobs to delete, and Tracked. `siblings` (the model's other ModelVersions) decide
    which aliases the Job may release: none that another version holds or asks for."""
    plan = AliasSyncPlan()
    meta, spec = body["metadata"], body.get("spec") or {}
    run_id = (spec.get("lineage") or {}).get("mlflowRunId")
    if not settings.mlflow_tracking_uri or not run_id:
        return plan
    name = sync_job_name(meta["name"], stage, changed_at)
    by_name = {job["metadata"]["name"]: job for job in jobs}
    plan.delete = [ChildRef(api, kind, other) for other in sorted(by_name) if other != name
                   for api, kind in (("batch/v1", "Job"), ("v1", "ConfigMap"))]
    alias = alias_for(stage)
    target = f"stage {stage}" + (f" as alias {alias!r}" if alias else " (no alias)")
    job = by_name.get(name)
    if job is None:
        task = AliasSyncTask(tracking_uri=settings.mlflow_tracking_uri, namespace=meta["namespace"],
                             model_version=meta["name"], model_version_uid=meta.get("uid"), model=spec["model"],
                             version=int(spec["version"]), run_id=run_id, stage=stage,
                             release_aliases=releasable_aliases(stage, [_claim(s) for s in siblings]))
        job_body = workload_job(body, name, COMPONENT, ["kadence", "track"], settings)
        plan.children = [task_configmap(body, name, COMPONENT, task.wire()), job_body]
        plan.condition = ConditionUpdate(TRACKED, "Unknown", "Syncing", f"Job {name} mirrors {target} in MLflow")
        return plan
    state = job_state(job)
    if state == "Succeeded":
        plan.condition = ConditionUpdate(TRACKED, "True", "Synced",
                                         f"registered in MLflow (model {spec['model']}, run {run_id}), {target}")
    elif state == "Failed":
        plan.condition = ConditionUpdate(TRACKED, "False", "MlflowSyncFailed",
                                         f"Job {name} could not mirror {target} in MLflow: {_failure(job)}")
    else:
        plan.condition = ConditionUpdate(TRACKED, "Unknown", "Syncing", f"Job {name} mirrors {target} in MLflow")
    return plan


def _claim(sibling: dict) -> tuple[str | None, str | None]:
    return (sibling.get("status") or {}).get("stage"), requested_stage(sibling)


def _failure(job: dict) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return condition.get("message") or condition.get("reason") or "failed"
    return "failed; see its logs"
