"""Glue shared by the per-kind handler modules.

Every kind is reconciled the same way: `accept_spec` parses the spec (or reports
`Ready=False, reason=InvalidSpec` naming the field, posts an Event and raises
`kopf.PermanentError` — a bad spec does not get better by retrying); the kind's
module observes what it needs and calls its pure planner; `realize` carries out the
Plan. `register_reconciler` hooks one reconcile function to create, update (of the
spec), resume and a resync timer, so the loop is level-triggered: a missed event is
caught at the next tick.
"""

from __future__ import annotations

import copy
import functools
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
from ..builders.jobs import WorkloadSettings
from ..images import WORKLOAD_IMAGE
from ..k8s.apply import apply, delete, list_children, list_objects
from ..metrics import reconcile_errors
from ..planners.plan import Plan
from ..storage import ObjectStore

INVALID_SPEC = "InvalidSpec"
RESYNC_SECONDS = float(os.environ.get("KADENCE_RESYNC_SECONDS", "5"))
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
        return parsed
    message = f"invalid {kind.kind} spec: {summarize(problems)}"
    previous = find(status.get("conditions"), "Ready") or {}
    already_reported = previous.get("reason") == INVALID_SPEC and previous.get("message") == message
    invalid = ConditionUpdate(SPEC_VALID, "False", INVALID_SPEC, message)
    condition_set = getattr(kind.status, "CONDITIONS", None)
    updates = (with_ready(condition_set, status.get("conditions"), [invalid]) if condition_set is not None
               else [ConditionUpdate("Ready", "False", INVALID_SPEC, message)])
    transition = update_conditions(status, patch, body, updates, meta.get("generation"), phase="Invalid")
    if not already_reported:
        reconcile_errors.labels(kind=kind.kind, namespace=meta.get("namespace", ""), reason=INVALID_SPEC).inc()
        if transition is None:
            # Ready was already False for another reason: the new spec error still deserves its Event.
            kopf.event(body, type="Warning", reason=INVALID_SPEC, message=message)
    raise kopf.PermanentError(message)


def realize(plan: Plan, status: dict[str, Any], meta: dict[str, Any], patch: kopf.Patch, body: kopf.Body) -> None:
    """Carry out a planner's Plan: children, deletions, status, conditions, Events."""
    for child in plan.children:
        apply(child)
    for ref in plan.delete:
        delete(ref.api_version, ref.kind, meta["namespace"], ref.name)
    for key, value in plan.status_patch().items():
        if status.get(key) != value:
            patch.status[key] = value
    update_conditions(status, patch, body, plan.condition_updates(status.get("conditions")), meta.get("generation"),
                      plan.phase)
    for event in plan.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def register_reconciler(kind: Kind, reconcile: Callable[..., None]) -> None:
    """Run `reconcile(obj, parsed_spec, body, patch)` on create, spec update, resume and every resync.

    `obj` is a plain-dict copy of the object for the planner, `body` kopf's view for Events."""

    def handler(body, spec, status, meta, patch, **_):
        parsed = accept_spec(kind, spec, status, meta, patch, body)
        try:
            reconcile(obj=copy.deepcopy(dict(body)), spec=parsed, body=body, patch=patch)
        except kopf.PermanentError:
            raise
        except Exception as error:
            reconcile_errors.labels(kind=kind.kind, namespace=meta.get("namespace", ""),
                                    reason=type(error).__name__).inc()
            raise

    kopf.on.resume(GROUP, VERSION, kind.plural, id="reconcile")(handler)
    kopf.on.create(GROUP, VERSION, kind.plural, id="reconcile")(handler)
    kopf.on.update(GROUP, VERSION, kind.plural, field="spec", id="reconcile")(handler)
    kopf.timer(GROUP, VERSION, kind.plural, id="resync", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)(
        handler)


# Observation helpers: the side effects planners need, kept here so kind modules stay thin.

@functools.lru_cache(maxsize=1)
def object_store() -> ObjectStore:
    return ObjectStore.from_env()


def owned_jobs(kind: Kind, body: dict) -> list[dict]:
    meta = body["metadata"]
    return list_children("batch/v1", "Job", meta["namespace"], kind.kind, meta["name"])


def model_versions_of(namespace: str, model: str) -> list[dict]:
    """Every ModelVersion of `model`, those users imported by hand (without labels) included."""
    return [mv for mv in list_objects(API_VERSION, "ModelVersion", namespace)
            if (mv.get("spec") or {}).get("model") == model]


def read_json_objects(keys: dict[str, str]) -> dict[str, dict]:
    """{name: S3 key} -> {name: parsed JSON} for the keys that exist."""
    found = {}
    for name, key in keys.items():
        try:
            found[name] = json.loads(object_store().get_bytes(key))
        except FileNotFoundError:
            continue
    return found


def read_json(key: str) -> dict | None:
    return read_json_objects({key: key}).get(key)


def workload_settings(env: dict[str, str] | None = None) -> WorkloadSettings:
    """Workload Job settings from the operator's environment (set by the Helm chart or the sandbox)."""
    env = os.environ if env is None else env
    defaults = WorkloadSettings()
    return WorkloadSettings(
        image=env.get("KADENCE_WORKLOAD_IMAGE") or WORKLOAD_IMAGE,
        storage_secret=env.get("KADENCE_S3_CREDENTIALS_SECRET") or defaults.storage_secret,
        service_account=env.get("KADENCE_WORKLOAD_SERVICE_ACCOUNT") or None,
        image_pull_policy=env.get("KADENCE_WORKLOAD_IMAGE_PULL_POLICY") or None,
        image_pull_secrets=tuple(n.strip() for n in env.get("KADENCE_WORKLOAD_IMAGE_PULL_SECRETS", "").split(",")
                                 if n.strip()),
        # The chart names the store's endpoint in the operator's environment and keeps only the
        # credentials in the Secret; the sandbox's Secret holds every key, so nothing is overridden there.
        storage_values={name: env[name] for name in ("KADENCE_S3_ENDPOINT", "KADENCE_S3_BUCKET", "KADENCE_S3_SECURE")
                        if env.get("KADENCE_S3_CREDENTIALS_SECRET") and env.get(name)},
        secret_keys={target: env[source] for target, source in (
            ("KADENCE_S3_ACCESS_KEY", "KADENCE_S3_CREDENTIALS_ACCESS_KEY_FIELD"),
            ("KADENCE_S3_SECRET_KEY", "KADENCE_S3_CREDENTIALS_SECRET_KEY_FIELD")) if env.get(source)},
    )
