"""Bodies for the training side: the `kadence train` Job (with its task ConfigMap) and
the ModelVersion a successful run registers."""

from __future__ import annotations

from typing import Any

from ..api.common import API_VERSION
from ..builders.jobs import WorkloadSettings, task_configmap, workload_job
from ..builders.meta import child_name, cut_name
from ..domain.registry import CHANGED_BY_ANNOTATION, REASON_ANNOTATION
from ..api import keys

COMPONENT = "train"
MODEL_LABEL = keys.MODEL_LABEL
RUN_LABEL = keys.TRAINING_RUN_LABEL
RUN_UID_ANNOTATION = keys.TRAINING_RUN_UID_ANNOTATION


def train_job_name(run: str, attempt: int) -> str:
    """One Job per attempt, named deterministically: a restarted operator finds the Job
    it created instead of starting a second one."""
    return child_name(run, COMPONENT, attempt)


def train_children(run_body: dict, attempt: int, task: dict, settings: WorkloadSettings = WorkloadSettings()
                   ) -> list[dict]:
    """The task ConfigMap and the Job for one attempt."""
    name = train_job_name(run_body["metadata"]["name"], attempt)
    spec = run_body.get("spec") or {}
    resources = spec.get("resources")
    job = workload_job(
        run_body, name, COMPONENT, ["kadence", "train"], settings,
        extra_env=[{"name": "KADENCE_IMAGE", "value": settings.image}],
        resources={**settings.resources, **resources} if resources else None,
        annotations={keys.ATTEMPT_LABEL: str(attempt)},
    )
    job["metadata"]["labels"][keys.ATTEMPT_LABEL] = str(attempt)
    # One pod per attempt: the operator decides about the next attempt itself (it knows
    # whether the cause can go away), so the Job does not retry on its own.
    job["spec"]["backoffLimit"] = 0
    return [task_configmap(run_body, name, COMPONENT, task), job]


def model_version_body(*, name: str, namespace: str, model: str, version: int, spec: dict[str, Any],
                       run: str, run_uid: str | None, changed_by: str, reason: str) -> dict:
    """A ModelVersion. Deliberately without an ownerReference to the run: deleting a run
    must never delete a registered model."""
    annotations = {CHANGED_BY_ANNOTATION: changed_by, REASON_ANNOTATION: reason}
    if run_uid:
        annotations[RUN_UID_ANNOTATION] = run_uid
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                keys.PART_OF_LABEL: "kadence",
                keys.MANAGED_BY_LABEL: "kadence-operator",
                MODEL_LABEL: cut_name(model),
                RUN_LABEL: cut_name(run),
            },
            "annotations": annotations,
        },
        "spec": {**spec, "model": model, "version": version},
    }
