"""Status conditions in Kubernetes API conventions, set by one pure helper.

`lastTransitionTime` changes only when a condition's status flips; reason and
message may change in place. `ready_transition` tells the handlers whether Ready
changed, which is the only moment they post an Event about readiness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

Status = Literal["True", "False", "Unknown"]


def now_rfc3339(clock: datetime | None = None) -> str:
    moment = clock or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: Status
    reason: str
    message: str = ""


def find(conditions: list[dict] | None, type_: str) -> dict | None:
    for condition in conditions or []:
        if condition.get("type") == type_:
            return condition
    return None


def set_condition(
    conditions: list[dict] | None,
    update: ConditionUpdate,
    observed_generation: int | None,
    now: str,
) -> list[dict]:
    """Return a new list with `update` applied; other conditions are left as they are."""
    previous = find(conditions, update.type)
    flipped = previous is None or previous.get("status") != update.status
    condition = {
        "type": update.type,
        "status": update.status,
        "reason": update.reason,
        "message": update.message,
        "lastTransitionTime": now if flipped else previous.get("lastTransitionTime", now),
    }
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    kept = [c for c in (conditions or []) if c.get("type") != update.type]
    return sorted([*kept, condition], key=lambda c: (c["type"] != "Ready", c["type"]))


def apply_all(
    conditions: list[dict] | None,
    updates: list[ConditionUpdate],
    observed_generation: int | None,
    now: str,
) -> list[dict]:
    for update in updates:
        conditions = set_condition(conditions, update, observed_generation, now)
    return conditions or []


def ready_transition(before: list[dict] | None, after: list[dict] | None) -> tuple[str, str] | None:
    """(old status, new status) when Ready changed between two condition lists, else None."""
    old = find(before, "Ready")
    new = find(after, "Ready")
    old_status = old.get("status") if old else None
    new_status = new.get("status") if new else None
    if old_status == new_status:
        return None
    return (old_status or "Unknown", new_status or "Unknown")


# Ready, derived (KServe's LivingConditionSet): each kind declares the conditions its
# readiness depends on, in order; Ready is never set by hand.

READY = "Ready"
SPEC_VALID = "SpecValid"


@dataclass(frozen=True)
class ConditionSet:
    """The conditions a kind reports. `dependents` roll up into Ready, in order: Ready is
    False with the reason and message of the first dependent that is False; else Unknown
    with those of the first that is Unknown (or not reported yet); else True with those of
    the last dependent. `informational` conditions are reported and never affect Ready."""

    dependents: tuple[str, ...]
    informational: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.dependents or self.dependents[0] != SPEC_VALID:
            raise ValueError(f"every kind's readiness depends on {SPEC_VALID} first")
        if READY in self.dependents or READY in self.informational:
            raise ValueError("Ready is derived, never declared")
        overlap = set(self.dependents) & set(self.informational)
        if overlap:
            raise ValueError(f"both dependent and informational: {sorted(overlap)}")

    @property
    def types(self) -> tuple[str, ...]:
        return (READY, *self.dependents, *self.informational)


def derive_ready(condition_set: ConditionSet, conditions: list[dict] | None) -> ConditionUpdate:
    """The Ready condition that `conditions` (the merged list, Ready itself ignored) imply."""
    by_type = {c.get("type"): c for c in conditions or []}
    states = [(name, by_type.get(name)) for name in condition_set.dependents]
    for name, condition in states:
        if condition is not None and condition.get("status") == "False":
            return ConditionUpdate(READY, "False", condition.get("reason") or f"{name}False",
                                   condition.get("message") or "")
    for name, condition in states:
        if condition is None:
            return ConditionUpdate(READY, "Unknown", f"Awaiting{name}", f"{name} is not reported yet")
        if condition.get("status") != "True":
            return ConditionUpdate(READY, "Unknown", condition.get("reason") or f"{name}Unknown",
                                   condition.get("message") or "")
    _, last = states[-1]
    return ConditionUpdate(READY, "True", last.get("reason") or f"{states[-1][0]}True", last.get("message") or "")


def with_ready(
    condition_set: ConditionSet,
    before: list[dict] | None,
    updates: list[ConditionUpdate],
) -> list[ConditionUpdate]:
    """`updates` followed by the Ready they imply once applied to `before`. An update of
    Ready itself, or of a type the set does not declare, is a programming error."""
    for update in updates:
        if update.type not in condition_set.types or update.type == READY:
            raise ValueError(f"condition {update.type!r} is not one this kind declares "
                             f"({', '.join(condition_set.types[1:])}; Ready is derived)")
    merged = apply_all(before, updates, None, "")
    return [*updates, derive_ready(condition_set, merged)]
