"""Task and result of the erasure workload (`kadence erase`), built and read by the ErasureRequest
planner; `kadence data erase` runs the same code from the command line.

Objects it writes besides the stores it rewrites:

  monitoring/<namespace>/_erasures/audit/<time>-<request>.json   the audit record (no personal data)
  monitoring/<namespace>/_erasures/guards/<request>.json        the guard later ingests apply (keyed hashes)
  runs/<namespace>/erasurerequests/<name>/<job>/result.json   EraseResult, for the operator
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..api.common import KadenceModel
from ..api.erasurerequest import StoreErasure, SubjectMatch

RESULT_KIND = "kadence.dev/erasure-result"
AUDIT_KIND = "kadence.dev/erasure"
GUARD_KIND = "kadence.dev/erasure-guard"


def result_key(namespace: str, name: str, job: str) -> str:
    return f"runs/{namespace}/erasurerequests/{name}/{job}/result.json"


def guard_prefix(namespace: str) -> str:
    return f"monitoring/{namespace}/_erasures/guards/"  # a tenant root: the namespace's own store key writes it


def guard_key(namespace: str, request: str) -> str:
    return f"{guard_prefix(namespace)}{request}.json"


def audit_prefix(namespace: str) -> str:
    return f"monitoring/{namespace}/_erasures/audit/"


class DatasetVersionRef(KadenceModel):
    id: str
    uri: str


class EraseDataset(KadenceModel):
    """A Dataset in scope and its kept versions (status.versions) when the Job was built."""

    name: str
    versions: list[DatasetVersionRef] = Field(default_factory=list)


class EraseFeatureSet(KadenceModel):
    """A FeatureSet built on a Dataset in scope, and its kept versions (status.versions) when the Job was built."""

    name: str
    versions: list[DatasetVersionRef] = Field(default_factory=list)


class EraseTask(KadenceModel):
    namespace: str
    request: str = Field(description="The ErasureRequest's name (or the CLI's request id).")
    match: SubjectMatch
    reason: str | None = None
    inference_services: list[str] = Field(default_factory=list)
    monitor_policies: list[str] = Field(default_factory=list, description="Their feedback exports and checkpoints.")
    datasets: list[EraseDataset] = Field(default_factory=list)
    feature_sets: list[EraseFeatureSet] = Field(default_factory=list, description="Those built on the datasets.")
    result_key: str | None = None


class EraseResult(KadenceModel):
    kind: Literal["kadence.dev/erasure-result"] = RESULT_KIND
    outcome: Literal["Succeeded", "Invalid", "Error"]
    request: str
    stores: list[StoreErasure] = Field(default_factory=list)
    erased_rows: int = 0
    audit_uri: str | None = None
    guard_uri: str | None = None
    finished_at: str | None = None
    message: str = ""
