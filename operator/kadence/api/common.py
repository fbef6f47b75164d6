"""Building blocks shared by the six Kadence kinds.

The pydantic models in this package are the single source of truth for the API:
`kadence.api.crdgen` turns them into the CustomResourceDefinitions under `crds/`,
and a test fails when the committed files drift from what the models generate.
Cross-field rules are written twice on purpose: as CEL (`x-kubernetes-validations`,
enforced at admission by the API server) and as pydantic validators (enforced by
the operator, which also serves clusters where admission was bypassed). The
examples under `examples/invalid/` are checked against both.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "kadence.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
QUANTITY_PATTERN = (
    r"^[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
)
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict:
    """One `x-kubernetes-validations` entry; `field_path` is relative to the node, e.g. "target"."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = "." + field_path
    if reason:
        entry["reason"] = reason
    return entry


def exactly_one_of(*fields: str) -> str:
    """A CEL rule that holds when exactly one of the optional fields is set."""
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " == 1"


def at_most_one_of(*fields: str) -> str:
    return " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields) + " <= 1"


class KadenceModel(BaseModel):
    """Base of every spec/status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
    )

    def wire(self) -> dict:
        """The model as it appears in a Kubernetes object (camelCase, unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def set_fields(model: BaseModel, *names: str) -> int:
    return sum(1 for name in names if getattr(model, name) is not None)


def require_exactly_one(model: BaseModel, *names: str) -> None:
    if set_fields(model, *names) != 1:
        wire = ", ".join(to_camel(n) for n in names)
        raise ValueError(f"exactly one of {wire} must be set")


def require_at_most_one(model: BaseModel, *names: str) -> None:
    if set_fields(model, *names) > 1:
        wire = ", ".join(to_camel(n) for n in names)
        raise ValueError(f"at most one of {wire} may be set")


Duration = str  # validated by DURATION_PATTERN where used
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration of the API's DURATION_PATTERN: `1h30m` -> 5400.0, `250ms`, `1.5d`.

    The one duration parser of the package; ValueError names the text and an example."""
    parts = _DURATION_PART.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h30m, 2d)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def duration_delta(text: str) -> timedelta:
    """`parse_duration` as a timedelta."""
    return timedelta(seconds=parse_duration(text))


def duration_field(default: str | None = None, description: str = "", **kwargs: Any) -> Any:
    return Field(default, pattern=DURATION_PATTERN, description=description, **kwargs)


Engine = Literal["local", "ray"]


def engine_field() -> Any:
    return Field(None, description="Where the workload computes: local (inside its Job's pod, streaming batch by "
                                   "batch) or ray (the Job is a thin driver submitting Ray tasks to the cluster at the "
                                   "operator's ray address). Unset: the operator-wide default (chart value `engine`). "
                                   "Both give the same versions and answers.")


class LocalObjectReference(KadenceModel):
    """A reference to another object in the same namespace."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="Name of the object.")


class VersionedReference(KadenceModel):
    """A reference to a Kadence object, at its latest version unless one is pinned."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="Name of the object.")
    version: str | None = Field(
        None,
        pattern=r"^[a-z0-9]{1,64}$",
        description="Pinned version id (as listed in the object's status.versions); latest when unset.",
    )


class SecretKeyReference(KadenceModel):
    """A key of a Secret in the same namespace."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="Secret name.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret.")


class ResourceRequirements(KadenceModel):
    """CPU and memory for the Job or Deployment pods, as in a container's `resources`."""

    requests: dict[str, str] | None = Field(
        None,
        description="Minimum resources, e.g. {cpu: 500m, memory: 1Gi}.",
        json_schema_extra={"additionalProperties": {"type": "string", "pattern": QUANTITY_PATTERN}},
    )
    limits: dict[str, str] | None = Field(
        None,
        description="Maximum resources, e.g. {cpu: '2', memory: 4Gi}.",
        json_schema_extra={"additionalProperties": {"type": "string", "pattern": QUANTITY_PATTERN}},
    )


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KadenceModel):
    """A condition in Kubernetes API conventions."""

    type: str = Field(max_length=316, description="Type of condition, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="One CamelCase word explaining the status.",
    )
    message: str = Field("", max_length=32768, description="Human-readable details.")
    last_transition_time: str = Field(
        description="When the status last changed.", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(
        None, ge=0, description="The .metadata.generation the condition was set for."
    )


class CommonStatus(KadenceModel):
    """Fields every Kadence status carries.

    Planners fill a status model field by field (`validate_assignment`: a value that does not
    fit, or a field the API does not define, fails as it is assigned); each kind's model names
    the conditions its Ready derives from in `CONDITIONS` (api.conditions.ConditionSet)."""

    model_config = ConfigDict(validate_assignment=True)

    observed_generation: int | None = Field(None, ge=0, description="Last generation the operator acted on.")
    phase: str | None = Field(None, description="Short summary of where the object is in its life.")
    conditions: list[Condition] | None = Field(
        None,
        description="Latest observations; Ready rolls them up.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
