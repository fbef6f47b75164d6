"""What a planner returns: the desired children, status and Events for one object.

Planners are pure: `(spec, observed children, clock) -> Plan`. The handlers hand a
Plan to `kadence.handlers.common.realize`, which applies children with server-side
apply, deletes what is listed, writes status and conditions, and posts Events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..api.conditions import SPEC_VALID, ConditionUpdate, with_ready


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    name: str


@dataclass
class Plan:
    children: list[dict] = field(default_factory=list)
    delete: list[ChildRef] = field(default_factory=list)
    # The kind's pydantic *Status model, holding only the fields this reconcile writes (a field
    # assigned None is cleared). Unknown fields are refused as they are assigned.
    status: Any = field(default_factory=dict)
    conditions: list[ConditionUpdate] = field(default_factory=list)
    phase: str | None = None
    events: list[EventSpec] = field(default_factory=list)
    # Seconds until the planner wants to look again, for waits on TIME only: a schedule, a
    # canary step's pause or analysis interval, a workload's progress or result in S3 (which
    # no watch announces). The engine (handlers.runtime) reconciles an object again when it,
    # a child or anything its reconcile read changes, so a wait on another object (a missing
    # Dataset, a Job still running) leaves this None; a slow safety-net resync covers the rest.
    requeue_after: float | None = None

    def status_patch(self) -> dict[str, Any]:
        """The status fields to write (wire names), for a merge patch of .status."""
        status = self.status
        if not isinstance(status, BaseModel):
            return dict(status)
        return status_fields(status)

    def condition_updates(self, before: list[dict] | None) -> list[ConditionUpdate]:
        """What `realize` writes into status.conditions over `before`: SpecValid (the spec parsed,
        or no planner would run), the planner's own conditions, then Ready derived from the
        kind's condition set (api.conditions.derive_ready)."""
        condition_set = getattr(type(self.status), "CONDITIONS", None)
        if condition_set is None:
            return list(self.conditions)
        return with_ready(condition_set, before, [SPEC_ACCEPTED, *self.conditions])


SPEC_ACCEPTED = ConditionUpdate(SPEC_VALID, "True", "SpecAccepted", "the spec fits the API")


def status_fields(status: BaseModel) -> dict[str, Any]:
    """The fields of a status model assigned so far, with their wire names; nested values
    without their unset optional fields, a field assigned None as None (cleared)."""
    dumped = status.model_dump(by_alias=True, mode="json", include=set(status.model_fields_set),
                               exclude_none=True)
    for name in status.model_fields_set:
        if getattr(status, name) is None:
            dumped[type(status).model_fields[name].alias or name] = None
    return dumped
