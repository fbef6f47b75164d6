"""Dataset: where data comes from, what it must look like, how often to re-read it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .conditions import SPEC_VALID, ConditionSet
from .common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    CommonStatus,
    Engine,
    KadenceModel,
    cel,
    duration_field,
    engine_field,
    exactly_one_of,
    require_exactly_one,
)

ColumnType = Literal["float", "int", "bool", "category", "string", "datetime"]
DataFormat = Literal["csv", "parquet", "jsonl"]


class ConfigMapKeyReference(KadenceModel):
    """A key of a ConfigMap in the same namespace holding the data itself."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="ConfigMap name.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the ConfigMap.")


class DataSource(KadenceModel):
    """Exactly one of `uri`, `inline` or `configMapRef`."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("uri", "inline", "configMapRef"), "exactly one of uri, inline, configMapRef must be set"),
    ]}}

    uri: str | None = Field(
        None,
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|https?://.+|file:///.+)$",
        description="s3://bucket/key or s3://bucket/prefix/ (every file under it), http(s)://…, "
        "or file:///abs/path (sandbox only).",
    )
    inline: str | None = Field(None, max_length=262144, description="The data itself, for tiny datasets.")
    config_map_ref: ConfigMapKeyReference | None = Field(None, description="A ConfigMap key holding the data.")
    credentials_secret: str | None = Field(
        None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Secret with endpoint/accessKey/secretKey for an S3 source other than Kadence's own store.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> "DataSource":
        require_exactly_one(self, "uri", "inline", "config_map_ref")
        return self


class Column(KadenceModel):
    """One column: its type and the constraints every row must meet."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.min) || !has(self.max) || self.min <= self.max", "min must not exceed max"),
        cel("!has(self.allowedValues) || self.type == 'category' || self.type == 'string' || self.type == 'int'",
            "allowedValues applies to category, string and int columns"),
        cel("!has(self.regex) || self.type == 'string' || self.type == 'category'",
            "regex applies to string and category columns"),
    ]}}

    name: str = Field(min_length=1, max_length=128, description="Column name in the source.")
    type: ColumnType = Field(description="float, int, bool, category, string or datetime.")
    nullable: bool = Field(True, description="Whether missing values are allowed at all.")
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    allowed_values: list[str] | None = Field(None, max_length=1000, description="The only values allowed.")
    regex: str | None = Field(None, max_length=1024, description="Every value must match this regular expression.")
    description: str | None = Field(None, max_length=1024, description="What the column means.")
    pii: bool = Field(False, description=(
        "Personal data: a model's prediction logs, and the feedback exports and monitor reports made from them, "
        "hold a keyed hash of it (the namespace's Secret kadence-pii-key), never the value. Drift on a personal "
        "category compares hashes; a personal number is skipped with that reason."))

    @model_validator(mode="after")
    def _consistent(self) -> "Column":
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        if self.allowed_values is not None and self.type not in ("category", "string", "int"):
            raise ValueError("allowedValues applies to category, string and int columns")
        if self.regex is not None and self.type not in ("string", "category"):
            raise ValueError("regex applies to string and category columns")
        return self


class DataSchema(KadenceModel):
    """The columns, the target and the entity column."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.target) || self.columns.exists(c, c.name == self.target)",
            "target must name one of the columns", "target"),
        cel("!has(self.entityColumn) || self.columns.exists(c, c.name == self.entityColumn)",
            "entityColumn must name one of the columns", "entityColumn"),
    ]}}

    columns: list[Column] = Field(
        min_length=1,
        max_length=1000,
        description="Every column the data must have.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    target: str | None = Field(None, max_length=128, description="The label column that models learn to predict.")
    entity_column: str | None = Field(None, max_length=128, description="The id column identifying an entity (a customer, a row).")

    @model_validator(mode="after")
    def _references(self) -> "DataSchema":
        names = {c.name for c in self.columns}
        if len(names) != len(self.columns):
            raise ValueError("column names must be unique")
        if self.target is not None and self.target not in names:
            raise ValueError(f"target {self.target!r} must name one of the columns")
        if self.entity_column is not None and self.entity_column not in names:
            raise ValueError(f"entityColumn {self.entity_column!r} must name one of the columns")
        return self


class ClassBalance(KadenceModel):
    """Bounds on the share of each target class."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.minFraction) || !has(self.maxFraction) || self.minFraction <= self.maxFraction",
            "minFraction must not exceed maxFraction"),
    ]}}

    min_fraction: float | None = Field(None, ge=0, le=1, description="Every class makes up at least this share.")
    max_fraction: float | None = Field(None, ge=0, le=1, description="No class makes up more than this share.")

    @model_validator(mode="after")
    def _ordered(self) -> "ClassBalance":
        if self.min_fraction is not None and self.max_fraction is not None and self.min_fraction > self.max_fraction:
            raise ValueError("minFraction must not exceed maxFraction")
        return self


class QualityRules(KadenceModel):
    """Rules an ingested version must pass to become current."""

    min_rows: int | None = Field(None, ge=0, description="At least this many rows, e.g. 1000.")
    max_missing_fraction: float | None = Field(
        None, ge=0, le=1, description="In any column, at most this share of values missing, e.g. 0.05."
    )
    max_missing_fraction_per_column: dict[str, float] | None = Field(
        None,
        description="Overrides of maxMissingFraction per column, e.g. {income: 0.2}.",
        json_schema_extra={"additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
    )
    max_duplicate_fraction: float | None = Field(
        None, ge=0, le=1, description="At most this share of fully duplicated rows, e.g. 0.01."
    )
    class_balance: ClassBalance | None = Field(None, description="Bounds on the target classes' shares.")


class FeedbackSource(KadenceModel):
    """Where labelled feedback comes from: a MonitorPolicy in the same namespace."""

    monitor_policy: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253,
                                description="The MonitorPolicy whose status.feedback (its labelled predictions, one "
                                            "row per request id with the latest label) is ingested after the source.")


class DatasetFeedback(KadenceModel):
    """Opt-in: fold the labelled predictions that MonitorPolicies publish into this Dataset's versions."""

    from_: list[FeedbackSource] = Field(
        alias="from", min_length=1, max_length=10,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["monitorPolicy"]},
        description="MonitorPolicies whose published feedback every ingest reads after the source (only the "
                    "schema's columns are kept; a missing one reads as null). A new export makes a new version.")

    @model_validator(mode="after")
    def _distinct(self) -> "DatasetFeedback":
        names = [s.monitor_policy for s in self.from_]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"feedback.from lists monitorPolicy {', '.join(repeated)} more than once")
        return self


class DatasetSpec(KadenceModel):
    """What data to ingest and what it must look like."""

    source: DataSource = Field(description="Where the data comes from.")
    format: DataFormat = Field("csv", description="csv, parquet or jsonl.")
    schema_: DataSchema = Field(alias="schema", description="Columns and their constraints.")
    quality: QualityRules | None = Field(None, description="Rules an ingested version must pass.")
    refresh_interval: str | None = duration_field(
        None, "Re-read the source this often, e.g. 1h; a new version appears only when the content changed."
    )
    retention: int = Field(10, ge=1, le=1000, description="How many versions to keep.")
    engine: Engine | None = engine_field()
    feedback: DatasetFeedback | None = Field(
        None, description="Opt-in: also ingest the labelled feedback these MonitorPolicies publish, e.g. "
                          "{from: [{monitorPolicy: churn-monitor}]}.")
    shared_with: list[SharedWith] | None = Field(
        None, max_length=64,
        description="Namespaces whose Datasets may read this Dataset's snapshots "
                    "(s3://<bucket>/datasets/<this namespace>/<name>/…): their store keys get read access to them. "
                    "Like Gateway API's ReferenceGrant, the grant lives with what it shares; without it another "
                    "namespace's reference is refused (InvalidSpec) and the store answers 403.")


class SharedWith(KadenceModel):
    """A namespace this Dataset's snapshots are shared with (read-only)."""

    namespace: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63, description="The namespace granted read access.")


DatasetSpec.model_rebuild()


class IncludedFeedback(KadenceModel):
    """One feedback export folded into a version (from the MonitorPolicy's status.feedback)."""

    monitor_policy: str
    uri: str
    rows: int = Field(ge=0)
    from_: str | None = Field(None, alias="from", description="Oldest prediction time in it.")
    to: str | None = Field(None, description="Newest prediction time in it.")
    sha256: str


class VersionErasure(KadenceModel):
    """Rows an ErasureRequest erased from this version's data ("erased N rows per request X")."""

    request: str = Field(description="The ErasureRequest.")
    erased_rows: int = Field(ge=0, description="Rows erased.")
    replaces: str | None = Field(None, description=(
        "The version they were erased from (its snapshot is deleted); unset when this version's ingest dropped "
        "them (the request's guard)."))


class DatasetVersion(KadenceModel):
    id: str = Field(description="Content-derived version id.")
    rows: int = Field(ge=0, description="Number of rows.")
    created_at: str = Field(description="When it was ingested.", json_schema_extra={"format": "date-time"})
    uri: str = Field(description="Where the snapshot lives.")
    sha256: str | None = Field(None, description="sha256 of the content.")
    feedback: list[IncludedFeedback] | None = Field(
        None, max_length=10,
        description="The MonitorPolicies' feedback exports whose rows this version includes after the source's.")
    erasures: list[VersionErasure] | None = Field(
        None, max_length=100, description="Rows erased from this version's data, per ErasureRequest.")


class RuleResult(KadenceModel):
    rule: str = Field(description="Rule name, e.g. minRows or maxMissingFraction[income].")
    passed: bool
    message: str = Field("", description="What was observed against what was required.")


class DatasetStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # Ingested: a validated version is current (True also while a newer ingest failed or runs).
        dependents=(SPEC_VALID, "Ingested"),
        # Validated: whether the last ingest passed the rules; Feedback: the spec.feedback.from exports read.
        informational=("Validated", "Feedback"),
    )

    latest_version: str | None = Field(None, description="The current (last validated) version id.")
    latest_rows: int | None = Field(None, ge=0, description="Rows in the current version.")
    versions: list[DatasetVersion] | None = Field(
        None, max_length=1000,
        description="Kept versions, newest first; `feedback` lists the feedback exports a version includes.")
    last_ingest: list[RuleResult] | None = Field(None, description="Rule results of the last ingest.")
    last_ingest_time: str | None = Field(None, json_schema_extra={"format": "date-time"})
    last_job: str | None = Field(None, description="The ingest Job whose result this status reflects.")

