"""The `kadence train` contract: the task spec the operator hands the Job, and the
result the Job writes back (to `runs/<ns>/<run>/result.json` and as its last log line).

Both are pydantic models so the TrainingRun planner builds the task and parses the
result with the same definitions the workload uses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..api.common import KadenceModel
from ..api.segments import SegmentResult
from ..api.modelversion import Artifact, CompiledArtifact, EstimationReference, Lineage, Signature
from ..api.trainingrun import TrainingRunSpec, TrialsSummary
from ..tracking.model import MlflowTarget, TrackingOutcome

TASK_ENV = "KADENCE_TASK"
IMAGE_ENV = "KADENCE_IMAGE"
EXIT_SUCCEEDED = 0
EXIT_ERROR = 2  # bad task, storage trouble: worth another attempt only if the cause goes away
EXIT_INVALID = 3  # the spec and the data cannot give a model (retrying cannot help)
FAILURE_PREFIX = "kadence train: failed: "

class TrainInput(KadenceModel):
    """The resolved data: a Dataset snapshot or a materialized FeatureSet version.

    The snapshot's manifest.json (written last by `kadence ingest` / `kadence
    materialize`) names the data file and its sha256, the columns and their types,
    the target and the entity column; for a FeatureSet also the feature columns and
    the fitted transformer (file and sha256) and the dataset version behind it."""

    kind: Literal["Dataset", "FeatureSet"]
    name: str = Field(description="The Dataset's or FeatureSet's name.")
    version: str = Field(description="The resolved version id.")
    uri: str = Field(pattern=r"^s3://.+", description="The snapshot prefix (holding manifest.json).")
    target: str | None = Field(None, description="The label column; the manifest's when unset.")
    entity_column: str | None = Field(None, description="Id column, never a feature; the manifest's when unset.")

    @field_validator("uri")
    @classmethod
    def _prefix(cls, uri: str) -> str:
        return uri if uri.endswith("/") else uri + "/"


class TrainTask(KadenceModel):
    """Everything `kadence train` needs; no Kubernetes API access required."""

    namespace: str
    run: str = Field(description="The TrainingRun's name.")
    run_uid: str | None = None
    attempt: int = Field(1, ge=1)
    spec: TrainingRunSpec
    input: TrainInput
    output_prefix: str | None = Field(None, description="Where to write; runs/<namespace>/<run>/ when unset.")
    compiled_tolerance: float | None = Field(
        None, ge=0, description="Bound on |ONNX - scikit-learn| on the hold-out for the compiled path; the stated "
        "default when unset (kadence.workloads.compile_model).")
    mlflow: MlflowTarget | None = Field(None, description="Log the run to this MLflow server (tracking.mlflow and "
                                                          "the operator's KADENCE_MLFLOW_TRACKING_URI).")

    @property
    def prefix(self) -> str:
        prefix = self.output_prefix or run_prefix(self.namespace, self.run)
        return prefix if prefix.endswith("/") else prefix + "/"


def run_prefix(namespace: str, run: str) -> str:
    return f"runs/{namespace}/{run}/"


def result_key(namespace: str, run: str) -> str:
    return run_prefix(namespace, run) + "result.json"


def progress_key(namespace: str, run: str) -> str:
    return run_prefix(namespace, run) + "progress.json"


class BestTrial(KadenceModel):
    number: int
    family: str
    params: dict[str, Any]
    cv_score: float
    fold_scores: list[float]


class ResultFiles(KadenceModel):
    trials: str
    metrics: str
    model_card: str
    progress: str
    spec: str


class TrainResult(KadenceModel):
    """What the run produced: enough for the operator to register a ModelVersion."""

    namespace: str
    run: str
    attempt: int
    model: str
    task: str
    metric: str
    direction: str
    best: BestTrial
    metrics: dict[str, float] = Field(description="Hold-out metrics of the refitted winner.")
    trials: TrialsSummary
    stopped_by: str
    artifact: Artifact
    compiled: CompiledArtifact | None = Field(
        None, description="The ONNX graph and how closely it matched scikit-learn; absent when not convertible.")
    estimation_reference: EstimationReference | None = Field(
        None, description="The hold-out predictions with labels, for estimating performance without labels.")
    signature: Signature
    segments: SegmentResult | None = Field(None, description="The hold-out per segment and fairness (spec.segments).")
    lineage: Lineage
    tracking: TrackingOutcome | None = Field(None, description="How logging to MLflow went; absent when not asked.")
    files: ResultFiles
    started_at: str
    finished_at: str
    duration_seconds: float


class Progress(KadenceModel):
    """Written every few trials so the operator can show progress while the Job runs."""

    done: int
    total: int
    pruned: int = 0
    failed: int = 0
    timed_out: int = 0  # stopped at the search's timeout while running
    best_score: float | None = None
    best_family: str | None = None
    phase: str = "Searching"  # Loading, Searching, Refitting, Writing, Succeeded
    updated_at: str
