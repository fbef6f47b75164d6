"""What a planner returns: the desired children, status and Events for one object.

Planners are pure: `(spec, observed children, clock) -> Plan`. The handlers hand a
Plan to `kadence.handlers.common.realize`, which applies children with server-side
apply, deletes what is listed, writes status and conditions, and posts Events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.conditions import ConditionUpdate


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
    status: dict = field(default_factory=dict)
    conditions: list[ConditionUpdate] = field(default_factory=list)
    phase: str | None = None
    events: list[EventSpec] = field(default_factory=list)
    # Seconds until the planner wants to look again. The handlers reconcile every object on a
    # resync timer (KADENCE_RESYNC_SECONDS, 5 s by default) shorter than any planner asks for,
    # so `realize` needs no requeue of its own; the value documents the planner's intent.
    requeue_after: float | None = None
