"""Every label and annotation key Kadence reads or writes, in one place.

Keys marked USER are API: a person (or a GitOps tool) may set them, and they are documented in
the README. Every other key is written by the operator on objects it creates, read only by the
operator, and is no contract with anyone. State one controller hands another goes through a
status field in a schema (e.g. MonitorPolicy.status.verdicts), never through a key here.
`tests/test_keys.py` fails when a `kadence.dev/...` key string appears anywhere else in the package.
"""

from __future__ import annotations

from .common import GROUP

PREFIX = f"{GROUP}/"

# -- standard Kubernetes labels on everything the operator creates ----------------------
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
COMPONENT_LABEL = "app.kubernetes.io/component"

# -- ownership: a child's owner, by kind and name (with the ownerReference's UID) ----------
OWNER_KIND_LABEL = "kadence.dev/owner-kind"
OWNER_NAME_LABEL = "kadence.dev/owner-name"
FINALIZER = "kadence.dev/finalizer"

# -- ModelVersion ------------------------------------------------------------------------
MODEL_LABEL = "kadence.dev/model"  # the registry name (spec.model)
TRAINING_RUN_LABEL = "kadence.dev/training-run"  # the TrainingRun that registered it
TRAINING_RUN_UID_ANNOTATION = "kadence.dev/training-run-uid"
CHANGED_BY_ANNOTATION = "kadence.dev/changed-by"  # USER: who asked for the stage change
REASON_ANNOTATION = "kadence.dev/reason"  # USER: why
STAGE_REQUEST_ANNOTATION = "kadence.dev/stage-request"  # USER/operator: {"stage": ..., "generation": ...}

# -- Jobs the operator runs ----------------------------------------------------------------
ATTEMPT_LABEL = "kadence.dev/attempt"  # a training Job's attempt number (label and annotation)
GENERATION_ANNOTATION = "kadence.dev/generation"  # the Dataset generation an ingest Job serves
FEEDBACK_ANNOTATION = "kadence.dev/feedback"  # the feedback exports an ingest Job reads
RESULT_KEY_ANNOTATION = "kadence.dev/result-key"  # where a monitor Job writes its result
SLOT_ANNOTATION = "kadence.dev/slot"  # a monitor Job's evaluation slot
CANDIDATE_ANNOTATION = "kadence.dev/candidate"  # a champion/challenger Job's candidate
ALERT_STATE_ANNOTATION = "kadence.dev/alert-state"  # an alert Job's alert (firing or resolved)

# -- retrain TrainingRuns a MonitorPolicy creates ----------------------------------------------
RETRAINED_BY_LABEL = "kadence.dev/retrained-by"  # the MonitorPolicy
RETRAIN_TRIGGER_ANNOTATION = "kadence.dev/retrain-trigger"
RETRAIN_CAUSE_ANNOTATION = "kadence.dev/retrain-cause"
CAUSED_BY_ANNOTATION = "kadence.dev/caused-by"
EVALUATION_ANNOTATION = "kadence.dev/evaluation-report"
DATA_VERSION_ANNOTATION = "kadence.dev/data-version"

# -- InferenceService ------------------------------------------------------------------------
PROMOTE_ANNOTATION = "kadence.dev/promote"  # USER: "true" promotes a paused canary
INFERENCE_SERVICE_LABEL = "kadence.dev/inferenceservice"
ROLE_LABEL = "kadence.dev/role"  # stable, canary or shadow
MODEL_VERSION_LABEL = "kadence.dev/model-version"
TRAFFIC_LABEL = "kadence.dev/traffic"  # "serve" on pods behind the Service
TASK_HASH_ANNOTATION = "kadence.dev/task-hash"

# -- storage tenancy -------------------------------------------------------------------------
TENANT_STORAGE_LABEL = "kadence.dev/tenant-storage"

# -- the local sandbox (kadence sandbox): the local ports its kubelet and proxy give out ------
SANDBOX_PORT_ANNOTATION = "sandbox.kadence.dev/port"  # a pod's first container port
SANDBOX_NAMED_PORT_PREFIX = "sandbox.kadence.dev/port-"  # + a port's name, e.g. ...port-metrics
SANDBOX_PROXY_PORT_ANNOTATION = "sandbox.kadence.dev/proxy-port"  # a Service's local port


def sandbox_port_annotation(port_name: str) -> str:
    return f"{SANDBOX_NAMED_PORT_PREFIX}{port_name}"


def owner_selector(owner_kind: str, owner_name: str) -> str:
    """The label selector of an owner's children."""
    return f"{OWNER_KIND_LABEL}={owner_kind.lower()},{OWNER_NAME_LABEL}={owner_name}"


USER_KEYS = (CHANGED_BY_ANNOTATION, REASON_ANNOTATION, STAGE_REQUEST_ANNOTATION, PROMOTE_ANNOTATION)
