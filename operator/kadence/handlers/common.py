"""Glue shared by the per-kind handler modules: validate the spec, report it in status.

Handlers stay thin: they call `accept_spec`, which either returns the parsed spec
or reports `Ready=False, reason=InvalidSpec` naming the field, posts an Event, and
raises `kopf.PermanentError` (a bad spec does not get better by retrying).
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import BaseModel

from ..api.conditions import ConditionUpdate, apply_all, find, now_rfc3339, ready_transition
from ..api.common import GROUP, VERSION
from ..api.kinds import Kind
from ..api.validation import parse_spec, summarize
from ..k8s.apply import apply, delete
from ..metrics import reconcile_errors
from ..planners.plan import Plan

INVALID_SPEC = "InvalidSpec"


def update_conditions(
    status: dict[str, Any],
    patch: kopf.Patch,
    body: kopf.Body,
    updates: list[ConditionUpdate],
    generation: int | None,
    phase: str | None = None,
) -> tuple[str, str] | None:
    """Write the conditions (and phase) into the status patch; post an Event when Ready changed.

    Returns the (old, new) Ready status when it changed."""
    before = status.get("conditions") or []
    after = apply_all(before, updates, generation, now_rfc3339())
    patch.status["conditions"] = after
    patch.status["observedGeneration"] = generation
    if phase is not None:
        patch.status["phase"] = phase
    transition = ready_transition(before, after)
    if transition is not None:
        ready = next(c for c in after if c["type"] == "Ready")
        event_type = "Normal" if ready["status"] == "True" else "Warning"
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
    reconcile_errors.labels(kind=kind.kind, namespace=meta.get("namespace", ""), reason=INVALID_SPEC).inc()
    previous = find(status.get("conditions"), "Ready") or {}
    already_reported = previous.get("reason") == INVALID_SPEC and previous.get("message") == message
    transition = update_conditions(
        status,
        patch,
        body,
        [ConditionUpdate("Ready", "False", INVALID_SPEC, message)],
        meta.get("generation"),
        phase="Invalid",
    )
    if transition is None and not already_reported:
        # Ready was already False for another reason: the new spec error still deserves its Event.
        kopf.event(body, type="Warning", reason=INVALID_SPEC, message=message)
    raise kopf.PermanentError(message)


def report_not_reconciled_yet(kind: Kind, status: dict, meta: dict, patch: kopf.Patch, body: kopf.Body) -> None:
    """For kinds whose controller has not landed: say plainly that the spec is valid but not acted on."""
    update_conditions(
        status,
        patch,
        body,
        [ConditionUpdate(
            "Ready",
            "Unknown",
            "ControllerNotAvailable",
            f"the spec is valid; reconciling {kind.kind} objects is not available in this release of Kadence yet",
        )],
        meta.get("generation"),
        phase="Accepted",
    )


def register_spec_validation(kind: Kind) -> None:
    """Handlers for a kind whose controller has not landed yet: validate, report, nothing more."""

    @kopf.on.resume(GROUP, VERSION, kind.plural, id="validate-spec")
    @kopf.on.create(GROUP, VERSION, kind.plural, id="validate-spec")
    @kopf.on.update(GROUP, VERSION, kind.plural, field="spec", id="validate-spec")
    def validate_spec(spec, status, meta, patch, body, **_):
        accept_spec(kind, spec, status, meta, patch, body)
        report_not_reconciled_yet(kind, status, meta, patch, body)


def realize(plan: Plan, status: dict[str, Any], meta: dict[str, Any], patch: kopf.Patch, body: kopf.Body) -> None:
    """Carry out a planner's Plan: children, deletions, status, conditions, Events, requeue."""
    for child in plan.children:
        apply(child)
    for ref in plan.delete:
        delete(ref.api_version, ref.kind, meta["namespace"], ref.name)
    for key, value in plan.status.items():
        patch.status[key] = value
    if plan.conditions or plan.phase is not None:
        update_conditions(status, patch, body, plan.conditions, meta.get("generation"), plan.phase)
    for event in plan.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if plan.requeue_after is not None:
        raise kopf.TemporaryError("waiting for the next look", delay=plan.requeue_after)
