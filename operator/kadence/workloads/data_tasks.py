"""Task specs and results of the data workloads (`kadence ingest`, `kadence materialize`).

The operator's planners build the tasks (JSON, given to the Job as `--task FILE` or the
KADENCE_TASK variable) and read the results back from object storage (`resultKey`) or from
the last line of the Job's log. Object layout:

  datasets/<namespace>/<name>/<version>/data.parquet | profile.json | manifest.json
  features/<namespace>/<name>/<version>/features.parquet | transformer-<sha>.skops | profile.json | manifest.json

A snapshot is complete when its manifest.json exists (written last, write-once).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..api.common import KadenceModel
from ..api.dataset import DatasetSpec, RuleResult
from ..api.featureset import FeatureSetSpec, ResolvedFeature

# Exit codes of both workloads.
EXIT_VALID = 0
EXIT_ERROR = 2  # the task could not run: bad task, unreadable source, storage failure
EXIT_INVALID = 3  # the data or definitions broke a rule; nothing new became current


def dataset_prefix(namespace: str, name: str, version: str) -> str:
    return f"datasets/{namespace}/{name}/{version}/"


def features_prefix(namespace: str, name: str, version: str) -> str:
    return f"features/{namespace}/{name}/{version}/"


def ingest_result_key(namespace: str, name: str, run_id: str) -> str:
    return f"datasets/{namespace}/{name}/runs/{run_id}/result.json"


def materialize_result_key(namespace: str, name: str, run_id: str) -> str:
    return f"features/{namespace}/{name}/runs/{run_id}/result.json"


class IngestTask(KadenceModel):
    """What an ingest Job is asked to do."""

    namespace: str
    name: str
    spec: DatasetSpec
    inline_data: str | None = Field(
        None, description="The data of a configMapRef source; when unset the Job reads it from $KADENCE_INLINE_DATA "
        "(an env var the Job takes from the ConfigMap key).")
    result_key: str | None = Field(None, description="Where to write the result; default datasets/<ns>/<name>/runs/<runId>/result.json.")
    run_id: str = Field("latest", pattern=r"^[A-Za-z0-9._-]{1,128}$", description="Names this run (the Job name).")
    appended: list[str] = Field(
        default_factory=list, description="Files whose rows follow the source's, in order: the feedback "
        "exports of the MonitorPolicies in the Dataset's spec.feedback.from; s3:// ones are read with Kadence's own "
        "storage credentials.")

    def resolved_result_key(self) -> str:
        return self.result_key or ingest_result_key(self.namespace, self.name, self.run_id)


class ColumnInfo(KadenceModel):
    name: str
    type: str
    pii: bool | None = Field(None, description="True for a personal column (set only then, so older manifests "
                                               "read the same).")


class IngestResult(KadenceModel):
    """What an ingest Job found; the planner turns it into Dataset status."""

    kind: Literal["kadence.dev/ingest-result"] = "kadence.dev/ingest-result"
    outcome: Literal["Valid", "Invalid", "Error"]
    valid: bool
    version: str | None = Field(None, description="The content-derived version id (also when invalid).")
    sha256: str | None = None
    rows: int | None = None
    uri: str | None = Field(None, description="The snapshot prefix, when valid.")
    created: bool = Field(False, description="True when this run wrote the snapshot; False when it already existed.")
    created_at: str | None = None
    source_files: list[str] = Field(default_factory=list)
    appended: list[str] = Field(default_factory=list, description="The appended files read after the source.")
    pruned_versions: list[str] = Field(default_factory=list, description="Old snapshots deleted to keep `retention`.")
    erased: dict[str, int] = Field(default_factory=dict, description=(
        "ErasureRequest -> rows its guard dropped from this version (rows of an erased subject)."))
    columns: list[ColumnInfo] = Field(default_factory=list)
    rule_results: list[RuleResult] = Field(default_factory=list)
    failed_rules: list[str] = Field(default_factory=list)
    message: str = ""


class MaterializeTask(KadenceModel):
    """What a materialize Job is asked to do."""

    namespace: str
    name: str
    spec: FeatureSetSpec
    dataset_uri: str = Field(description="The dataset snapshot prefix, s3://bucket/datasets/<ns>/<name>/<version>/.")
    result_key: str | None = None
    run_id: str = Field("latest", pattern=r"^[A-Za-z0-9._-]{1,128}$")

    def resolved_result_key(self) -> str:
        return self.result_key or materialize_result_key(self.namespace, self.name, self.run_id)


class MaterializeResult(KadenceModel):
    kind: Literal["kadence.dev/materialize-result"] = "kadence.dev/materialize-result"
    outcome: Literal["Valid", "Invalid", "Error"]
    valid: bool
    version: str | None = Field(None, description="Hash of the definitions plus the dataset version.")
    dataset_version: str | None = None
    rows: int | None = None
    uri: str | None = None
    created: bool = False
    created_at: str | None = None
    features: list[ResolvedFeature] = Field(default_factory=list)
    feature_columns: list[str] = Field(default_factory=list, description="The transformer's output columns.")
    transformer_uri: str | None = None
    transformer_sha256: str | None = None
    message: str = ""
    failed_feature: str | None = Field(None, description="The feature whose definition was refused.")
