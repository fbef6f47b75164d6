"""Glue shared by the per-kind handler modules.

Every kind is reconciled the same way: `accept_spec` parses the spec (or reports
`Ready=False, reason=InvalidSpec` naming the field, posts an Event and stops — a bad spec
does not get better by retrying); the kind's module observes what it needs and calls its
pure planner; `realize` carries out the Plan. `register_reconciler` hands the reconcile
function to the engine (`handlers.runtime`), which runs it when the object, one of its
children or anything it read changes, after the plan's `requeue_after`, and on a slow
safety-net resync; the loop stays level-triggered, but nothing polls.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
from datetime import datetime, timezone
from typing import Any, Callable

import kopf
from pydantic import BaseModel

from ..api.common import API_VERSION, GROUP, VERSION
from ..api.conditions import SPEC_VALID, ConditionUpdate, apply_all, find, now_rfc3339, ready_transition, with_ready
from ..api.kinds import Kind
from ..api.validation import parse_spec, summarize
from ..builders.jobs import WorkloadSettings, controlled_by
from ..images import WORKLOAD_IMAGE
from ..k8s.apply import apply, delete, list_children, list_objects, patch_status
from ..k8s.cache import CACHE, contains
from ..metrics import reconcile_errors
from ..planners.plan import Plan
from ..settings import Settings, settings
from ..storage import TENANT_SECRET, ObjectStore
from .runtime import ENGINE, Outcome, current_outcome
from .tenancy import ensure_namespace_storage, owned_results, reference_problems

INVALID_SPEC = "InvalidSpec"
# (connect, read) seconds of one S3 request from the operator; minio's default waits minutes.
S3_TIMEOUT_SECONDS = (3.0, 10.0)
logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def update_conditions(
    status: dict[str, Any],
    patch: kopf.Patch,
    body: kopf.Body,
    updates: list[ConditionUpdate],
    generation: int | None,
    phase: str | None = None,
) -> tuple[str, str] | None:
    """Write changed conditions (and phase) into the status patch; post an Event when Ready changed.

    Returns the (old, new) Ready status when it changed."""
    before = status.get("conditions") or []
    after = apply_all(before, updates, generation, now_rfc3339())
    if after != before:
        patch.status["conditions"] = after
    if status.get("observedGeneration") != generation:
        patch.status["observedGeneration"] = generation
    if phase is not None and status.get("phase") != phase:
        patch.status["phase"] = phase
    transition = ready_transition(before, after)
    if transition is not None:
        ready = next(c for c in after if c["type"] == "Ready")
        event_type = "Warning" if ready["status"] == "False" else "Normal"
        kopf.event(body, type=event_type, reason=ready["reason"], message=ready["message"] or ready["reason"])
    return transition


def accept_spec(
    kind: Kind,
    spec: dict[str, Any],
    status: dict[str, Any],
    meta: dict[str, Any],
    patch: kopf.Patch,
    body: kopf.Body,
) -> BaseModel:
    parsed, problems = parse_spec(kind.spec, dict(spec))
    if parsed is not None:
        # what the spec points at: file:// outside sandbox mode, another namespace's storage
        problems = reference_problems(kind.kind, parsed, meta)
        if not problems:
            return parsed
    message = f"invalid {kind.kind} spec: {summarize(problems)}"
    previous = find(status.get("conditions"), "Ready") or {}
    already_reported = previous.get("reason") == INVALID_SPEC and previous.get("message") == message
    invalid = ConditionUpdate(SPEC_VALID, "False", INVALID_SPEC, message)
    updates = with_ready(kind.status.CONDITIONS, status.get("conditions"), [invalid])
    transition = update_conditions(status, patch, body, updates, meta.get("generation"), phase="Invalid")
    if not already_reported:
        reconcile_errors.labels(kind=kind.kind, namespace=meta.get("namespace", ""), reason=INVALID_SPEC).inc()
        if transition is None:
            # Ready was already False for another reason: the new spec error still deserves its Event.
            kopf.event(body, type="Warning", reason=INVALID_SPEC, message=message)
    raise kopf.PermanentError(message)


def realize(plan: Plan, status: dict[str, Any], meta: dict[str, Any], patch: kopf.Patch, body: kopf.Body) -> None:
    """Carry out a planner's Plan: children, deletions, status, conditions, Events, and the
    requeue it asks for. A child identical to what this process last applied, and still in
    the cache with every field it sets, is not applied again (but on a resync it is)."""
    outcome = current_outcome.get()
    if plan.children:  # the namespace's store identity and Secret, which Jobs and servers read
        ensure_namespace_storage(meta["namespace"])
    for child in plan.children:
        apply_child(child, force=outcome is None or outcome.force_apply)
    for ref in plan.delete:
        delete(ref.api_version, ref.kind, meta["namespace"], ref.name)
    for key, value in plan.status_patch().items():
        if status.get(key) != value:
            patch.status[key] = value
    update_conditions(status, patch, body, plan.condition_updates(status.get("conditions")), meta.get("generation"),
                      plan.phase)
    for event in plan.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if outcome is not None:
        outcome.requeue(plan.requeue_after)


# What this process last applied, by child: {(apiVersion, kind, namespace, name): digest}.
_APPLIED: dict[tuple[str, str, str, str], str] = {}


def apply_child(child: dict, force: bool = False) -> None:
    meta = child["metadata"]
    key = (child["apiVersion"], child["kind"], meta.get("namespace") or "", meta["name"])
    digest = hashlib.sha256(json.dumps(child, sort_keys=True, default=str).encode()).hexdigest()
    cached = CACHE.serves(child["apiVersion"], child["kind"], labels=meta.get("labels") or {})
    if not force and _APPLIED.get(key) == digest:
        if not cached:
            return
        current = CACHE.peek(*key)
        if current is not None and contains(child, current):
            return
    apply(child)  # the cache gets what it returned
    _APPLIED[key] = digest
    if settings().failpoint == f"exit-after-apply:{child['kind']}":
        logger.error("failpoint %s: exiting after applying %s/%s", settings().failpoint, child["kind"], meta["name"])
        os._exit(137)


def run_reconcile(kind: Kind, reconcile: Callable[..., None], body: dict, outcome: Outcome) -> None:
    """One reconcile of `body` (a private copy), in a worker thread: parse the spec, call the
    kind's reconcile, write the status it patched. Errors are counted, logged by the engine
    and retried with backoff; an invalid spec is reported and waits for the next change."""
    meta, status = body["metadata"], body.get("status") or {}
    patch = kopf.Patch()
    try:
        parsed = accept_spec(kind, body.get("spec") or {}, status, meta, patch, body)
        reconcile(obj=copy.deepcopy(body), spec=parsed, body=body, patch=patch)
    except kopf.PermanentError:
        pass
    except kopf.TemporaryError as error:
        outcome.requeue(error.delay)
    except Exception as error:
        reconcile_errors.labels(kind=kind.kind, namespace=meta.get("namespace", ""),
                                reason=type(error).__name__).inc()
        write_status(kind, body, patch, outcome)
        raise
    write_status(kind, body, patch, outcome)


def write_status(kind: Kind, body: dict, patch: kopf.Patch, outcome: Outcome) -> None:
    changes = dict(patch.get("status") or {})
    if not changes:
        return
    meta = body["metadata"]
    written = patch_status(API_VERSION, kind.kind, meta["namespace"], meta["name"], changes)
    if written.get("metadata"):  # the cache has it already (k8s.apply)
        outcome.written_resource_version = written["metadata"].get("resourceVersion")


def register_reconciler(kind: Kind, reconcile: Callable[..., None]) -> None:
    """Have the engine run `reconcile(obj, spec, body, patch)` whenever the object needs it
    (see `handlers.runtime`): `obj` is a plain-dict copy for the planner, `spec` the parsed
    spec, `patch.status` what to write into the status."""
    ENGINE.kinds[kind.kind] = kind
    ENGINE.reconcilers[kind.kind] = reconcile
    ENGINE.run_one = run_reconcile


# Observation helpers: the side effects planners need, kept here so kind modules stay thin.

@functools.lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    """The operator's S3 client: short timeouts and few retries (it runs in worker threads, so
    a slow store delays only the object whose reconcile reads it)."""
    import urllib3

    connect, read = S3_TIMEOUT_SECONDS
    return ObjectStore.from_env(http_client=urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect, read=read), maxsize=8,
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])))


def owned_jobs(kind: Kind, body: dict) -> list[dict]:
    """The Jobs this object controls: labels select them, the controller ownerReference's UID
    proves it (a Job labelled alike by someone else, or left by an earlier object of the same
    name, is not this object's)."""
    meta = body["metadata"]
    return [job for job in list_children("batch/v1", "Job", meta["namespace"], kind.kind, meta["name"])
            if controlled_by(job, body)]


def model_versions_of(namespace: str, model: str) -> list[dict]:
    """Every ModelVersion of `model`, those users imported by hand (without labels) included."""
    if CACHE.serves(API_VERSION, "ModelVersion"):
        return CACHE.by_field(API_VERSION, "ModelVersion", namespace, "model", model)
    return [mv for mv in list_objects(API_VERSION, "ModelVersion", namespace)
            if (mv.get("spec") or {}).get("model") == model]


def monitor_policies_of(namespace: str, inference_service: str) -> list[dict]:
    """The MonitorPolicies whose spec.inferenceServiceRef names `inference_service` (through the
    cache's index: a policy's change wakes only the InferenceService it watches)."""
    if CACHE.serves(API_VERSION, "MonitorPolicy"):
        return CACHE.by_field(API_VERSION, "MonitorPolicy", namespace, "inferenceService", inference_service)
    return [p for p in list_objects(API_VERSION, "MonitorPolicy", namespace)
            if ((p.get("spec") or {}).get("inferenceServiceRef") or {}).get("name") == inference_service]


def read_json_objects(keys: dict[str, str], owner: dict | None = None) -> dict[str, dict]:
    """{name: S3 key} -> {name: parsed JSON} for the keys that exist; with `owner` (the body of the
    object reconciled), only the results its own workloads wrote (others: a ForeignResult Event)."""
    if owner is not None:
        return owned_results(object_store(), keys, owner)
    found = {}
    for name, key in keys.items():
        try:
            found[name] = json.loads(object_store().get_bytes(key))
        except FileNotFoundError:
            continue
    return found


def read_json(key: str, owner: dict | None = None) -> dict | None:
    return read_json_objects({key: key}, owner).get(key)


def workload_settings(env: dict[str, str] | None = None) -> WorkloadSettings:
    """Workload Job settings from the operator's environment (set by the Helm chart or the sandbox)."""
    settings = Settings.from_env(env)  # noqa: F811 (this function's own)
    return WorkloadSettings(
        image=settings.workload_image or WORKLOAD_IMAGE,
        # every key (endpoint, bucket, secure, the namespace's own credentials) comes from the
        # tenant Secret the operator writes into the namespace (handlers.tenancy)
        storage_secret=TENANT_SECRET,
        service_account=settings.workload_service_account,
        image_pull_policy=settings.workload_image_pull_policy,
        image_pull_secrets=settings.workload_image_pull_secrets,
        mlflow_tracking_uri=settings.mlflow_tracking_uri,
        engine=settings.engine,
        ray_address=settings.ray_address,
    )
