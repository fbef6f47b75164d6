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
