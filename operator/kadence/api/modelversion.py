"""ModelVersion: one registered model with its artifact, metrics and lineage."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from .conditions import SPEC_VALID, ConditionSet
from .common import DNS_LABEL_PATTERN, SHA256_PATTERN, CommonStatus, KadenceModel, cel
from .trainingrun import Stage, Task

ArtifactFormat = Literal["skops"]
CompiledFormat = Literal["onnx"]
ColumnType = Literal["float", "int", "bool", "category", "string", "datetime"]


class Artifact(KadenceModel):
    """The stored model: a transformer + estimator pipeline in a safe format."""

    uri: str = Field(pattern=r"^(s3://|file:///).+", description="Where the artifact lives.")
    sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the artifact bytes.")
    format: ArtifactFormat = Field("skops", description="skops: loads without executing arbitrary pickles.")


class CompiledArtifact(KadenceModel):
    """A compiled inference path, used only when verified against scikit-learn."""

    uri: str = Field(pattern=r"^(s3://|file:///).+")
    sha256: str = Field(pattern=SHA256_PATTERN)
    format: CompiledFormat = "onnx"
    max_abs_difference: float = Field(ge=0, description="Largest difference from scikit-learn on the hold-out.")
    tolerance: float = Field(ge=0, description="The tolerance it was checked against.")
    verified: bool = Field(description="True when maxAbsDifference <= tolerance.")


class EstimationReference(KadenceModel):
    """The hold-out predictions with their labels (and, for regressors, their inputs), kept with the
    model: a MonitorPolicy estimates the model's performance on unlabelled traffic from them."""

    uri: str = Field(pattern=r"^(s3://|file:///).+", description="A Parquet file: label, prediction, "
                                                                   "probabilities (classifiers), input.<column>.")
    sha256: str = Field(pattern=SHA256_PATTERN)
    rows: int = Field(ge=0)


class SignatureColumn(KadenceModel):
    name: str = Field(min_length=1, max_length=128)
    type: ColumnType
    pii: bool | None = Field(None, description="Personal data (its Dataset column's pii): the model server logs a "
                                               "keyed hash of it, never the value.")


class Signature(KadenceModel):
    """The raw columns the model expects and what it returns."""

    inputs: list[SignatureColumn] = Field(min_length=1, max_length=10000)
    outputs: list[SignatureColumn] | None = None
    classes: list[str] | None = Field(None, description="Class labels, for classifiers.")


class EnsembleMember(KadenceModel):
    """A trial whose refitted model votes in an ensemble (greedy ensemble selection)."""

    trial: int = Field(ge=0, description="The trial's number in the run's trials.json (from 0; the log counts from 1).")
    family: str
    params: dict[str, Any] = Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    weight: float = Field(gt=0, le=1, description="Its share of the vote.")


class Lineage(KadenceModel):
    """Where the model came from: Dataset → FeatureSet → TrainingRun."""

    training_run: str | None = None
    dataset: str | None = None
    dataset_version: str | None = None
    feature_set: str | None = None
    feature_set_version: str | None = None
    seed: int | None = None
    image: str | None = None
    libraries: dict[str, str] | None = Field(None, description="Library versions, e.g. {scikit-learn: 1.9.1}.")
    model_card: str | None = Field(None, description="The training run's model card (HTML): the search's score "
                                                     "against time by family, hold-out metrics, permutation importance, "
                                                     "calibration.")
    ensemble: list[EnsembleMember] | None = Field(
        None, max_length=32, description="When the model is an ensemble of the run's trials: its members and weights.")
    mlflow_run_id: str | None = Field(None, max_length=64, description=(
        "The MLflow run the TrainingRun was logged as (its model is registered in MLflow's model registry from it, "
        "the stage mirrored as an alias)."))
    training_spec_hash: str | None = Field(
        None, description="sha256 of the TrainingRun's spec without its data version pins and promotion: with the "
                          "data versions, what a retrain compares to know whether it has anything new to learn.")


class ModelVersionSpec(KadenceModel):
    """A registered model version. The operator creates these; users may import their own.

    spec.stage is the stage a person (or Git) asks for. The operator asks through the
    kadence.dev/stage-request annotation instead ({"stage": ..., "generation": <metadata.generation>}),
    which holds until the spec changes; status.requestedStage shows which stage is asked for and
    the StageRequest condition says why a malformed request is ignored."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.model == oldSelf.model", "model is immutable", "model"),
        cel("self.version == oldSelf.version", "version is immutable", "version"),
        cel("self.artifact == oldSelf.artifact", "artifact is immutable", "artifact"),
    ]}}

    model: str = Field(pattern=DNS_LABEL_PATTERN, max_length=52, description="Registry name.")
    version: int = Field(ge=1, description="1, 2, 3 … per model.")
    task: Task | None = None
    artifact: Artifact
    compiled: CompiledArtifact | None = None
    estimation_reference: EstimationReference | None = Field(
        None, description="The hold-out predictions with labels a MonitorPolicy estimates performance from.")
    metrics: dict[str, float] | None = Field(None, description="Hold-out metrics, e.g. {f1: 0.83}.")
    primary_metric: str | None = Field(None, description="The metric the model was selected by.")
    params: dict[str, Any] | None = Field(
        None, description="Winning hyperparameters.", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    signature: Signature | None = None
    lineage: Lineage | None = None
    stage: Stage = Field(
        "Candidate",
        description="Candidate, Staging, Production or Archived. Set it (with the kadence.dev/changed-by "
        "and kadence.dev/reason annotations) to approve a promotion by hand.",
    )


class StageHistoryEntry(KadenceModel):
    """One stage change as recorded in status.history (the change itself is domain.registry.StageChange)."""

    stage: Stage
    previous: Stage | None = None
    at: str = Field(json_schema_extra={"format": "date-time"})
    by: str = Field(description="Who or which policy changed it.")
    reason: str = ""


class ModelVersionStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # ArtifactVerified: the stored artifact has the sha256 the spec records.
        dependents=(SPEC_VALID, "ArtifactVerified"),
        # StageChange: the requested stage is in force (or why not); StageRequest: the
        # kadence.dev/stage-request annotation, when present, can be read.
        # Tracked: the version is registered in MLflow with its stage as an alias (MLflow configured).
        informational=("StageChange", "StageRequest", "Tracked"),
    )

    stage: Stage | None = Field(None, description="The stage in force.")
    requested_stage: Stage | None = Field(None, description=(
        "The stage the version is asked to hold: spec.stage, or the operator's stage request (the "
        "kadence.dev/stage-request annotation, {\"stage\": ..., \"generation\": ...}) while metadata.generation "
        "is still the one it names. The operator asks through the annotation (a passed canary, a sibling "
        "archived by a promotion) so that a GitOps tool's self-heal does not undo it; an edit of the spec wins "
        "again. A malformed request is ignored and reported in the StageRequest condition and an Event."))
    verified: bool | None = Field(None, description="The artifact's sha256 was checked against the store.")
    verified_sha256: str | None = Field(None, pattern=SHA256_PATTERN,
                                        description="The sha256 the stored artifact was verified to have.")
    metric_summary: str | None = Field(None, description="e.g. f1=0.832, for kubectl get.")
    model_card: str | None = Field(None, description="Where the model card is (spec.lineage.modelCard).")
    history: list[StageHistoryEntry] | None = Field(None, max_length=100, description="Stage changes, oldest first.")
