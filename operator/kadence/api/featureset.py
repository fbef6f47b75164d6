"""FeatureSet: features defined once, used by training and serving alike."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .conditions import SPEC_VALID, ConditionSet
from .dataset import VersionErasure
from .common import (
    CommonStatus,
    Engine,
    KadenceModel,
    VersionedReference,
    cel,
    engine_field,
    exactly_one_of,
    require_exactly_one,
)

TransformType = Literal["oneHot", "bucketize", "standardScale", "minMaxScale", "impute", "hash", "datePart"]
ImputeStrategy = Literal["mean", "median", "constant", "mostFrequent"]
DatePart = Literal["year", "month", "day", "dayOfWeek", "dayOfYear", "hour", "minute", "weekOfYear"]

_TRANSFORM_RULES = [
    cel("self.type != 'bucketize' || (has(self.boundaries) && size(self.boundaries) > 0)",
        "bucketize needs boundaries", "boundaries"),
    cel("self.type != 'datePart' || has(self.part)", "datePart needs part", "part"),
    cel("self.type != 'impute' || has(self.strategy)", "impute needs strategy", "strategy"),
    cel("self.type != 'hash' || has(self.buckets)", "hash needs buckets", "buckets"),
    cel("!has(self.strategy) || self.strategy != 'constant' || has(self.fillValue)",
        "the constant strategy needs fillValue", "fillValue"),
]


class Transform(KadenceModel):
    """A fitted transform of one source column."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": _TRANSFORM_RULES}}

    type: TransformType = Field(description="oneHot, bucketize, standardScale, minMaxScale, impute, hash or datePart.")
    column: str = Field(min_length=1, max_length=128, description="The source column.")
    max_categories: int | None = Field(
        None, ge=1, le=1000, description="oneHot: keep the most frequent categories, the rest go to `other`."
    )
    other_bucket: bool = Field(True, description="oneHot: add an `other` column for unseen or rare categories.")
    boundaries: list[float] | None = Field(
        None, max_length=1000, description="bucketize: ascending bucket edges, e.g. [18, 30, 45, 65]."
    )
    strategy: ImputeStrategy | None = Field(None, description="impute: mean, median, constant or mostFrequent.")
    fill_value: str | None = Field(None, description="impute with constant: the value (parsed to the column type).")
    buckets: int | None = Field(None, ge=2, le=4096, description="hash: number of hash buckets (one indicator "
                                "column each), e.g. 64.")
    part: DatePart | None = Field(None, description="datePart: which part of the timestamp.")

    @field_validator("boundaries")
    @classmethod
    def _ascending(cls, boundaries: list[float] | None) -> list[float] | None:
        if boundaries is not None and list(boundaries) != sorted(set(boundaries)):
            raise ValueError("boundaries must be strictly ascending")
        return boundaries

    @model_validator(mode="after")
    def _parameters(self) -> "Transform":
        if self.type == "bucketize" and not self.boundaries:
            raise ValueError("bucketize needs boundaries")
        if self.type == "datePart" and self.part is None:
            raise ValueError("datePart needs part")
        if self.type == "impute" and self.strategy is None:
            raise ValueError("impute needs strategy")
        if self.type == "hash" and self.buckets is None:
            raise ValueError("hash needs buckets")
        if self.strategy == "constant" and self.fill_value is None:
            raise ValueError("the constant strategy needs fillValue")
        return self


class Feature(KadenceModel):
    """A named feature: a safe expression over columns, or a transform of one column."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("expression", "transform"), "exactly one of expression, transform must be set"),
    ]}}

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", description="Feature name.")
    expression: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="A safe expression, e.g. log1p(tenure) or where(age > 65, 1, 0).",
    )
    transform: Transform | None = Field(None, description="A fitted transform of one column.")
    description: str | None = Field(None, max_length=1024)

    @model_validator(mode="after")
    def _one_definition(self) -> "Feature":
        require_exactly_one(self, "expression", "transform")
        return self


class FeatureSetSpec(KadenceModel):
    """Features over a Dataset, compiled into one transformer for training and serving."""

    dataset_ref: VersionedReference = Field(description="The Dataset, latest version unless pinned.")
    entity_column: str | None = Field(None, max_length=128, description="The entity key column.")
    target: str | None = Field(None, max_length=128, description="The label column; defaults to the Dataset's.")
    features: list[Feature] = Field(
        min_length=1,
        max_length=1000,
        description="The feature definitions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    engine: Engine | None = engine_field()

    @model_validator(mode="after")
    def _unique_names(self) -> "FeatureSetSpec":
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique: {', '.join(duplicates)}")
        return self


class ResolvedFeature(KadenceModel):
    name: str
    type: str = Field(description="float, int, bool or category.")
    source: str = Field(description="The expression or transform it comes from.")


class FeatureSetVersion(KadenceModel):
    id: str
    dataset_version: str
    rows: int | None = Field(None, ge=0)
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    uri: str = Field(description="The feature table's prefix (features.parquet, manifest.json, profile.json).")
    transformer_uri: str | None = Field(None, description="The fitted transformer (skops).")
    transformer_sha256: str | None = Field(None, description="sha256 of the transformer artifact.")
    erasures: list[VersionErasure] | None = Field(
        None, max_length=100, description="Rows an ErasureRequest erased from this version's feature table.")


class FeatureSetStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # DataAvailable: the Dataset (version) exists and is validated; DefinitionsValid: every feature
        # works on its columns; Materialized: the feature table of the current version is written.
        dependents=(SPEC_VALID, "DataAvailable", "DefinitionsValid", "Materialized"),
    )

    latest_version: str | None = Field(None, description="Hash of the definitions plus the dataset version.")
    dataset_version: str | None = Field(None, description="The dataset version behind latestVersion.")
    features: list[ResolvedFeature] | None = Field(None, description="The catalog: resolved features with types.")
    versions: list[FeatureSetVersion] | None = Field(None, max_length=1000)
    last_job: str | None = Field(None, description="The materialize Job whose result this status reflects.")
