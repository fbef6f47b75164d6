"""ErasureRequest: erase a person's rows everywhere Kadence keeps them (GDPR's right to erasure).

A request names the subject (the values of one column: a customer id, a request id) and the
scope (InferenceServices, Datasets). The operator runs one erasure Job per generation (the
operator process reads no data); the Job, the same code as `kadence data erase`, removes the
matching rows from the prediction logs and their feedback, from the feedback exports the
services' MonitorPolicies published, and from every Dataset snapshot still kept and every kept
feature table of the FeatureSets built on those Datasets (each becomes a new version whose
manifest says "erased N rows per request X"); it leaves a guard (the values'
keyed hashes) that every later ingest of the Datasets applies, so neither a re-read source nor
folded feedback brings the rows back; and it writes an audit record without personal data.

The values live in this object only: once it is Ready it may be deleted; the audit record and the
guard (hashes, not values) stay.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from .common import DNS_SUBDOMAIN_PATTERN, CommonStatus, KadenceModel, cel
from .conditions import SPEC_VALID, ConditionSet

NO_SCOPE = "scope must name at least one InferenceService or Dataset"
StoreKind = Literal["PredictionLog", "FeedbackExport", "DatasetSnapshot", "FeatureSetSnapshot"]
SubjectKey = Annotated[str, Field(min_length=1, max_length=256)]
ObjectName = Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)]


class SubjectMatch(KadenceModel):
    """The rows to erase: those whose `column` holds one of `values` (as logged, or as its keyed hash
    when the column is personal)."""

    column: str = Field(min_length=1, max_length=128, description=(
        "The identifying column, e.g. customer_id (a Dataset column and a logged model input), or requestId "
        "(a prediction's id in the logs)."))
    values: list[SubjectKey] = Field(min_length=1, max_length=1000, description=(
        "The subject's keys in that column, e.g. [c-1042]. They are never written anywhere else."))


class ErasureScope(KadenceModel):
    """Where to erase; at least one list."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("(has(self.inferenceServices) && size(self.inferenceServices) > 0) || "
            "(has(self.datasets) && size(self.datasets) > 0)", NO_SCOPE),
    ]}}

    inference_services: list[ObjectName] | None = Field(None, max_length=64, description=(
        "Their prediction logs and feedback (every model version), and the feedback exports of the "
        "MonitorPolicies watching them."))
    datasets: list[ObjectName] | None = Field(None, max_length=64, description=(
        "Their snapshots still kept (each rewritten as a new version), every later version (a guard "
        "every ingest applies), and the kept snapshots of the FeatureSets built on them."))

    @model_validator(mode="after")
    def _something(self) -> "ErasureScope":
        if not (self.inference_services or self.datasets):
            raise ValueError(NO_SCOPE)
        return self


class ErasureRequestSpec(KadenceModel):
    match: SubjectMatch
    scope: ErasureScope
    reason: str | None = Field(None, max_length=1024, description=(
        "Why (a ticket number, the legal basis): kept in the audit record, so it must not hold personal data."))


class ReplacedVersion(KadenceModel):
    """A Dataset or FeatureSet snapshot that held the subject, and the version that replaces it."""

    replaced: str = Field(description="The version id that held the rows (its snapshot is deleted).")
    version: str = Field(description="The new version id, without them.")
    uri: str = Field(description="The new snapshot.")
    rows: int = Field(ge=0, description="Rows of the new version.")
    erased_rows: int = Field(ge=0, description="Rows erased from the replaced version.")
    sha256: str | None = Field(None, description="sha256 of the new snapshot's data.")
    dataset_version: str | None = Field(None, description=(
        "FeatureSetSnapshot: the Dataset version the new feature table derives from (the erased one when the "
        "same request replaced it)."))


class StoreErasure(KadenceModel):
    """What was erased in one store."""

    store: StoreKind = Field(description=(
        "PredictionLog (logs and their feedback), FeedbackExport, DatasetSnapshot, FeatureSetSnapshot."))
    name: str = Field(description="The InferenceService, MonitorPolicy, Dataset or FeatureSet.")
    erased_rows: int = Field(0, ge=0, description="Rows removed (predictions plus their labels for a log).")
    objects: int = Field(0, ge=0, description="Objects rewritten or replaced.")
    versions: list[ReplacedVersion] | None = Field(None, max_length=1000,
                                                   description="Snapshots: each replaced version.")
    message: str = Field("", max_length=1024, description="What was done, or why it could not be.")


class ErasureRequestStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # Erased: the Job of this generation erased every store in scope and wrote the audit record.
        dependents=(SPEC_VALID, "Erased"),
    )

    job: str | None = Field(None, description="The erasure Job of this generation.")
    stores: list[StoreErasure] | None = Field(None, max_length=256, description="Per store, what was erased.")
    erased_rows: int | None = Field(None, ge=0, description="Rows erased in all stores.")
    audit_uri: str | None = Field(None, description="The audit record (no personal data: the subject as keyed hashes).")
    guard_uri: str | None = Field(None, description="The guard every later ingest of the scoped Datasets applies.")
    completed_at: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                     description="When the erasure finished.")
