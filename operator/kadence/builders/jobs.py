"""Job bodies for the workload commands (`kadence ingest|materialize|train|monitor`).

A workload Job gets its task spec from a ConfigMap of its own (same name as the Job,
key `task.json`, exposed as $KADENCE_TASK) and the object-storage settings from its
namespace's tenant Secret `kadence-tenant-storage` (keys endpoint, accessKey, secretKey, bucket,
secure -> $KADENCE_S3_*), which the operator writes with credentials that reach only that
namespace's prefixes (kadence.tenancy). $KADENCE_OWNER_* name the owner (kind, name, namespace,
uid): every object the workload writes carries them, and the operator accepts a result only
from its own owner. It needs no Kubernetes API rights: no service-account token is mounted.
Its scratch /tmp is an emptyDir with a sizeLimit (the kubelet evicts a pod that fills more).

Workloads exit 0 on success, EXIT_INVALID (3) when the input broke a rule — retrying
cannot help, so a podFailurePolicy fails the Job at once — and anything else on errors,
which are retried up to backoffLimit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..domain.data.pii import PII_KEY_ENV, PII_SECRET, PII_SECRET_KEY
from ..images import WORKLOAD_IMAGE
from ..storage import TENANT_SECRET
from .meta import child_metadata

STORAGE_SECRET = TENANT_SECRET
SCRATCH_SIZE_LIMIT = "8Gi"  # a Job's /tmp: downloads (capped, see workloads/dataio.py) and local snapshots
SERVER_SCRATCH_SIZE_LIMIT = "1Gi"  # a model server's /tmp: the artifact and log buffers' spill
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
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    scratch_size_limit: str = SCRATCH_SIZE_LIMIT
    mlflow_tracking_uri: str | None = None  # the training and registry-sync Jobs log there when set
    engine: str = "local"  # for objects whose spec.engine is unset ($KADENCE_ENGINE of the Job)
    ray_address: str | None = None  # where `engine: ray` workloads submit ($KADENCE_RAY_ADDRESS of the Job)


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
    """$KADENCE_S3_*, every one from the namespace's tenant Secret."""
    env = []
    for name, key in STORAGE_ENV.items():
        optional = {"optional": True} if key in OPTIONAL_STORAGE_KEYS else {}
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": settings.storage_secret, "key": key,
                                                                 **optional}}})
    return env


def pii_env() -> list[dict]:
    """$KADENCE_PII_KEY, the namespace's personal-data hashing key (domain.data.pii), from its
    Secret; optional: without it a model server leaves personal inputs out of its log."""
    return [{"name": PII_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": PII_SECRET, "key": PII_SECRET_KEY,
                                                                 "optional": True}}}]


def owner_env(owner: dict) -> list[dict]:
    """$KADENCE_OWNER_*: the object a workload works for; stamped on every object it writes."""
    meta = owner["metadata"]
    values = {"KADENCE_OWNER_KIND": owner.get("kind", ""), "KADENCE_OWNER_NAME": meta.get("name", ""),
              "KADENCE_OWNER_NAMESPACE": meta.get("namespace", ""), "KADENCE_OWNER_UID": meta.get("uid", "")}
    return [{"name": name, "value": value} for name, value in values.items() if value]


def engine_env(settings: WorkloadSettings) -> list[dict]:
    """$KADENCE_ENGINE (the default for an unset spec.engine) and $KADENCE_RAY_ADDRESS, when not the defaults."""
    env = [{"name": "KADENCE_ENGINE", "value": settings.engine}] if settings.engine != "local" else []
    if settings.ray_address:
        env.append({"name": "KADENCE_RAY_ADDRESS", "value": settings.ray_address})
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


def tmp_volume(size_limit: str = SERVER_SCRATCH_SIZE_LIMIT) -> dict:
    """The writable /tmp, bounded: past `size_limit` the kubelet evicts the pod instead of letting
    it fill the node's disk."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": size_limit}}


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
            *owner_env(owner),
            *engine_env(settings),
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
        "volumes": [tmp_volume(settings.scratch_size_limit)],
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


def controlled_by(child: dict, owner: dict) -> bool:
    """True when `child`'s controller ownerReference names `owner` by UID (ControllerRef)."""
    uid = owner["metadata"].get("uid")
    return bool(uid) and any(ref.get("controller") and ref.get("uid") == uid
                             for ref in child["metadata"].get("ownerReferences") or [])


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
