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
        if isinstance(status, StatusPatch):
            return status.wire()
        if not isinstance(status, BaseModel):
            return dict(status)
        return status_fields(status)

    def condition_updates(self, before: list[dict] | None) -> list[ConditionUpdate]:
        """What `realize` writes into status.conditions over `before`: SpecValid (the spec parsed,
        or no planner would run), the planner's own conditions, then Ready derived from the
        kind's condition set (api.conditions.derive_ready)."""
        condition_set = getattr(self.status, "CONDITIONS", None)
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


class StatusPatch(dict):
    """A status written as a dict of wire names (`status["lastJob"] = ...`), checked against the
    kind's pydantic *Status model as each field is written: a field the model (and so the CRD) does
    not define, or a value that does not fit it, raises at once. `CONDITIONS` is the model's, so
    Ready is derived as for a typed status; `model()` is the status as the pydantic model."""

    def __init__(self, model: type[BaseModel], values: dict | None = None):
        super().__init__()
        self._model = model
        self.CONDITIONS = getattr(model, "CONDITIONS", None)
        self.update(values or {})

    def _check(self, key: str, value: Any) -> None:
        if value is not None:
            self._model.model_validate({key: value})

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key, value)
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> "StatusPatch":
        self.update(other)
        return self

    def wire(self) -> dict[str, Any]:
        return dict(self)

    def model(self) -> BaseModel:
        return self._model.model_validate({k: v for k, v in self.items() if v is not None})
