"""The model registry's rules, pure: stage changes, their history, artifact checks.

A model has at most one Production version. Moving a version to Production is
planned as one set of changes: the new Production version, and every other
version of the same model that is in Production moves to Archived. The operator
applies the archive changes first, then the promotion, so that at no moment are
two versions Production (a reader may briefly see none, never two).

Who asks for a stage: a person (or Git) through `spec.stage`; the operator (a canary that
passed, a sibling archived by a promotion) through the `kadence.dev/stage-request`
annotation, never by rewriting the spec, so that Argo CD's self-heal does not undo it. A
request holds while the spec stays as it was when the request was made (same
`metadata.generation`); a later edit of the spec wins again.

The stage request is API (documented in the README and on the ModelVersion's
`status.requestedStage`): its value is a JSON object `{"stage": <stage>, "generation": <int>}`.
`parse_stage_request` refuses anything else with a message naming what is wrong; the
ModelVersion controller reports it in the `StageRequest` condition and an Event, and
`spec.stage` decides meanwhile. `status.requestedStage` mirrors the stage asked for,
whichever source it came from, so `kubectl get modelversions` shows it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping

from ..api.modelversion import StageHistoryEntry
from ..api import keys

STAGES = ("Candidate", "Staging", "Production", "Archived")
CHANGED_BY_ANNOTATION = keys.CHANGED_BY_ANNOTATION
REASON_ANNOTATION = keys.REASON_ANNOTATION
STAGE_REQUEST_ANNOTATION = keys.STAGE_REQUEST_ANNOTATION
MAX_HISTORY = 100

# Which stage may follow which. Archived versions can come back (a rollback).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "Candidate": frozenset({"Staging", "Production", "Archived"}),
    "Staging": frozenset({"Candidate", "Production", "Archived"}),
    "Production": frozenset({"Staging", "Archived"}),
    "Archived": frozenset({"Candidate", "Staging", "Production"}),
}


class TransitionError(ValueError):
    pass


@dataclass(frozen=True)
class VersionState:
    """What the registry needs to know about one ModelVersion."""

    name: str
    model: str
    version: int
    stage: str  # the stage in force (status.stage, or spec.stage for a new one)


@dataclass(frozen=True)
class StageChange:
    """One move of a ModelVersion (`name`) to `stage`: the registry's plan, and what the
    InferenceService controller asks for (a canary that passed, a challenger archived);
    `previous` is the stage in force when it was planned (None when the asker does not know)."""

    name: str
    previous: str | None
    stage: str
    by: str
    reason: str


class StageRequestError(ValueError):
    """A kadence.dev/stage-request annotation that cannot be read; the message says why."""


@dataclass(frozen=True)
class StageRequest:
    stage: str
    generation: int


@dataclass(frozen=True)
class RequestedStage:
    """The stage a ModelVersion is asked to hold and where that comes from."""

    stage: str
    source: Literal["spec", "stageRequest"]
    request: StageRequest | None = None  # the annotation, when it reads
    error: str | None = None  # why the annotation does not read, when it is present and malformed


@dataclass(frozen=True)
class Actor:
    by: str
    reason: str


@dataclass(frozen=True)
class TransitionPlan:
    changes: tuple[StageChange, ...] = field(default=())

    @property
    def archives(self) -> tuple[StageChange, ...]:
        return tuple(c for c in self.changes if c.stage == "Archived" and c.previous == "Production")

    def ordered(self) -> list[StageChange]:
        """Archive the old Production first, then the rest."""
        return sorted(self.changes, key=lambda c: 0 if c in self.archives else 1)


def stage_request_patch(version: Mapping, stage: str, by: str, reason: str) -> dict:
    """The merge patch by which the operator asks the registry to move a ModelVersion (its
    object as read) to `stage`, with who and why; the spec is left to its owner."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES)})")
    request = json.dumps({"stage": stage, "generation": (version.get("metadata") or {}).get("generation", 0)},
                         sort_keys=True)
    return {"metadata": {"annotations": {CHANGED_BY_ANNOTATION: by, REASON_ANNOTATION: reason,
                                         STAGE_REQUEST_ANNOTATION: request}}}


def parse_stage_request(raw: str | None) -> StageRequest | None:
    """The kadence.dev/stage-request annotation's value; None when absent, StageRequestError
    (naming the problem and the expected form) when it cannot be read."""
    if raw is None:
        return None
    expected = f'expected {{"stage": <{"|".join(STAGES)}>, "generation": <metadata.generation>}}'
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise StageRequestError(f"{STAGE_REQUEST_ANNOTATION} is not JSON ({error.msg}): {raw[:200]!r}; "
                                f"{expected}") from None
    if not isinstance(value, dict):
        raise StageRequestError(f"{STAGE_REQUEST_ANNOTATION} is not a JSON object: {raw[:200]!r}; {expected}")
    unknown = sorted(set(value) - {"stage", "generation"})
    if unknown:
        raise StageRequestError(f"{STAGE_REQUEST_ANNOTATION} has unknown keys {', '.join(unknown)}; {expected}")
    stage, generation = value.get("stage"), value.get("generation")
    if stage not in STAGES:
        raise StageRequestError(f"{STAGE_REQUEST_ANNOTATION} asks for unknown stage {stage!r}; {expected}")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise StageRequestError(f"{STAGE_REQUEST_ANNOTATION} has no valid generation ({generation!r}); {expected}")
    return StageRequest(stage=stage, generation=generation)


def resolve_requested_stage(version: Mapping) -> RequestedStage:
    """The stage a ModelVersion is asked to hold: the operator's request while the spec is
    unchanged since it was made, else `spec.stage` (Candidate when unset). A malformed
    request is reported in `error` and ignored."""
    metadata = version.get("metadata") or {}
    spec_stage = (version.get("spec") or {}).get("stage") or "Candidate"
    try:
        request = parse_stage_request((metadata.get("annotations") or {}).get(STAGE_REQUEST_ANNOTATION))
    except StageRequestError as error:
        return RequestedStage(spec_stage, "spec", error=str(error))
    if request is not None and request.generation == metadata.get("generation", 0):
        return RequestedStage(request.stage, "stageRequest", request)
    return RequestedStage(spec_stage, "spec", request)


def requested_stage(version: Mapping) -> str:
    """`resolve_requested_stage(version).stage`."""
    return resolve_requested_stage(version).stage


def actor_from_annotations(annotations: Mapping[str, str] | None, default_by: str, default_reason: str = "") -> Actor:
    annotations = annotations or {}
    by = (annotations.get(CHANGED_BY_ANNOTATION) or "").strip() or default_by
    reason = (annotations.get(REASON_ANNOTATION) or "").strip() or default_reason
    return Actor(by=by, reason=reason)


def check_transition(previous: str, stage: str) -> None:
    for value in (previous, stage):
        if value not in STAGES:
            raise TransitionError(f"unknown stage {value!r}: expected one of {', '.join(STAGES)}")
    if stage != previous and stage not in ALLOWED_TRANSITIONS[previous]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[previous]))
        raise TransitionError(f"a {previous} version cannot move to {stage} (allowed: {allowed})")


def plan_stage_change(target: VersionState, stage: str, siblings: Iterable[VersionState], actor: Actor) -> TransitionPlan:
    """The changes that move `target` to `stage`; `siblings` are the other versions of
    the same model (any including `target` itself are ignored)."""
    check_transition(target.stage, stage)
    if stage == target.stage:
        return TransitionPlan()
    changes: list[StageChange] = []
    if stage == "Production":
        for other in sorted(siblings, key=lambda v: v.version):
            if other.name == target.name or other.model != target.model:
                continue
            if other.stage == "Production":
                changes.append(StageChange(
                    other.name, "Production", "Archived", actor.by,
                    f"replaced in Production by {target.name}" + (f": {actor.reason}" if actor.reason else ""),
                ))
    changes.append(StageChange(target.name, target.stage, stage, actor.by, actor.reason))
    return TransitionPlan(tuple(changes))


def production_conflicts(versions: Iterable[VersionState]) -> dict[str, list[str]]:
    """Models with more than one Production version (by model, names in version order):
    a state the operator repairs by keeping the highest version."""
    by_model: dict[str, list[VersionState]] = {}
    for v in versions:
        if v.stage == "Production":
            by_model.setdefault(v.model, []).append(v)
    return {m: [v.name for v in sorted(vs, key=lambda v: v.version)] for m, vs in by_model.items() if len(vs) > 1}


def history_entry(change: StageChange, at: str) -> StageHistoryEntry:
    """The `status.history` item recording `change` at `at`."""
    return StageHistoryEntry(stage=change.stage, previous=change.previous, at=at, by=change.by, reason=change.reason)


def append_history(history: list[dict | StageHistoryEntry] | None, entry: StageHistoryEntry,
                   limit: int = MAX_HISTORY) -> list[StageHistoryEntry]:
    """Oldest first, at most `limit` entries (the oldest drop out)."""
    kept = [StageHistoryEntry.model_validate(h) if isinstance(h, dict) else h for h in history or []]
    return (kept + [entry])[-limit:]


def event_message(change: StageChange) -> str:
    text = f"{change.name}: {change.previous} → {change.stage} by {change.by}"
    return f"{text}: {change.reason}" if change.reason else text


@dataclass(frozen=True)
class Verification:
    ok: bool
    actual: str
    reason: str  # CamelCase
    message: str


def verify_artifact(data: bytes, expected_sha256: str) -> Verification:
    """Check the stored bytes against the sha256 recorded in the ModelVersion."""
    actual = hashlib.sha256(data).hexdigest()
    if actual == expected_sha256.lower():
        return Verification(True, actual, "ArtifactVerified", f"sha256 {actual} matches ({len(data)} bytes)")
    return Verification(False, actual, "ArtifactChecksumMismatch",
                        f"stored artifact has sha256 {actual}, the ModelVersion expects {expected_sha256}")
