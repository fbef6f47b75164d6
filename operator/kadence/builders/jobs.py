"""Job bodies for the workload commands (`kadence ingest|materialize|train|monitor`).

A workload Job gets its task spec from a ConfigMap of its own (same name as the Job,
key `task.json`, exposed as $KADENCE_TASK) and the object-storage settings from the
storage Secret (keys endpoint, accessKey, secretKey, bucket, secure -> $KADENCE_S3_*).
It needs no Kubernetes API rights: no service-account token is mounted.

Workloads exit 0 on success, EXIT_INVALID (3) when the input broke a rule — retrying
cannot help, so a podFailurePolicy fails the Job at once — and anything else on errors,
which are retried up to backoffLimit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..images import WORKLOAD_IMAGE
from .meta import child_metadata

STORAGE_SECRET = "kadence-storage"
TASK_KEY = "task.json"
TASK_ENV = "KADENCE_TASK"
EXIT_INVALID = 3
STORAGE_ENV = {
    "KADENCE_S3_ENDPOINT": "endpoint",
    "KADENCE_S3_ACCESS_KEY": "accessKey",
    "KADENCE_S3_SECRET_KEY": "secretKey",
    "KADENCE_S3_BUCKET": "bucket",
    "KADENCE_S3_SECURE": "secure",
}
OPTIONAL_STORAGE_KEYS = {"bucket", "secure"}


@dataclass(frozen=True)
class WorkloadSettings:
    """Operator-wide settings for workload Jobs (from the operator's configuration)."""

    image: str = WORKLOAD_IMAGE
    storage_secret: str = STORAGE_SECRET
    backoff_limit: int = 2
    ttl_seconds_after_finished: int = 86400
    active_deadline_seconds: int | None = 6 * 3600
    service_account: str | None = None
    resources: dict = field(default_factory=lambda: {"requests": {"cpu": "250m", "memory": "512Mi"},
                                                     "limits": {"memory": "4Gi"}})
    # Where the Helm chart configures the store: plain values (endpoint, bucket, secure) that
    # override the Secret's keys, and the names of the credential keys inside the Secret.
    storage_values: dict[str, str] = field(default_factory=dict)  # env name -> value
    secret_keys: dict[str, str] = field(default_factory=dict)  # env name -> key in the Secret
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()


def image_fields(settings: WorkloadSettings) -> dict:
    """A container's image and pull policy."""
    return {"image": settings.image, **({"imagePullPolicy": settings.image_pull_policy}
                                        if settings.image_pull_policy else {})}


def pod_identity(settings: WorkloadSettings) -> dict:
    """The pod's ServiceAccount (no API rights, see the chart) and image pull Secrets."""
    identity: dict = {}
    if settings.service_account:
        identity["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        identity["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    return identity


def storage_env(settings: WorkloadSettings) -> list[dict]:
    env = []
    for name, default_key in STORAGE_ENV.items():
        if settings.storage_values.get(name):
            env.append({"name": name, "value": settings.storage_values[name]})
            continue
        key = settings.secret_keys.get(name, default_key)
        optional = {"optional": True} if default_key in OPTIONAL_STORAGE_KEYS else {}
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": settings.storage_secret, "key": key,
                                                                 **optional}}})
    return env


def restricted_container_settings() -> dict:
    """A container's security context under the `restricted` Pod Security Standard, and the
    writable /tmp (an emptyDir, see `tmp_volume`) that its read-only root filesystem needs."""
    return {
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def restricted_pod_security_context() -> dict:
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def tmp_volume() -> dict:
    return {"name": "tmp", "emptyDir": {}}


def task_configmap(owner: dict, name: str, component: str, task: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(owner, name, component),
        "data": {TASK_KEY: json.dumps(task, sort_keys=True, separators=(",", ":"))},
    }


def workload_job(
    owner: dict,
    name: str,
    component: str,
    command: list[str],
    settings: WorkloadSettings = WorkloadSettings(),
    extra_env: list[dict] | None = None,
    resources: dict | None = None,
    annotations: dict | None = None,
) -> dict:
    """The Job running `command` with its task from the ConfigMap `name`."""
    metadata = child_metadata(owner, name, component)
    if annotations:
        metadata["annotations"] = dict(annotations)
    pod_labels = {k: v for k, v in metadata["labels"].items()}
    container = {
        "name": component,
        **image_fields(settings),
        "command": list(command),
        "env": [
            {"name": TASK_ENV, "valueFrom": {"configMapKeyRef": {"name": name, "key": TASK_KEY}}},
            *storage_env(settings),
            *(extra_env or []),
        ],
        "resources": resources or settings.resources,
        **restricted_container_settings(),
    }
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": restricted_pod_security_context(),
        "containers": [container],
        "volumes": [tmp_volume()],
        **pod_identity(settings),
    }
    spec = {
        "backoffLimit": settings.backoff_limit,
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": component, "operator": "In",
                                                  "values": [EXIT_INVALID]}},
        ]},
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    if settings.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = settings.active_deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def job_state(job: dict) -> str:
    """Running, Succeeded or Failed, from the Job's conditions (counts as a fallback)."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded"
        if condition.get("status") == "True" and condition.get("type") in ("Failed", "FailureTarget"):
            return "Failed"
    if status.get("succeeded"):
        return "Succeeded"
    return "Running"


def job_finished_at(job: dict) -> str | None:
    status = job.get("status") or {}
    if status.get("completionTime"):
        return status["completionTime"]
    for condition in status.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition.get("lastTransitionTime")
    return None
