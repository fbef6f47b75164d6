"""Task and result of the batch scoring workload (`kadence batch`), built and read by the
BatchPrediction planner.

Object layout of one run (`<output>` is spec.output.uri, `<run>` the run's name):

  <output>/<run>/part-00000.<ext> ...   the scored rows, in input order
  <output>/<run>/_manifest.json         written last: the run is complete once it exists
  runs/<namespace>/batchpredictions/<name>/<job>/result.json   BatchResult, for the operator

With a stream, every scored row is also logged as a prediction record (requestId = the entity
id) under predictions/<namespace>/<stream>/, the layout the model servers write, so that a
MonitorPolicy watching the BatchPrediction judges drift on the scored inputs and quality once
labels for those entity ids arrive: an input that carries the Dataset's target column logs its
non-null values as feedback (feedback/<namespace>/<stream>/, requestId = the entity id).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..api.batchprediction import TableFormat
from ..api.common import KadenceModel
from ..serving.task import ServeArtifact, ServeColumn, ServeCompiled

RESULT_KIND = "kadence.dev/batch-result"
MANIFEST_NAME = "_manifest.json"
MANIFEST_KIND = "kadence.dev/batch-output"
EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}


def result_key(namespace: str, name: str, job: str) -> str:
    return f"runs/{namespace}/batchpredictions/{name}/{job}/result.json"


def prediction_stream(name: str) -> str:
    """The prediction-log stream of a BatchPrediction: `batch.<name>`. InferenceService names are DNS
    labels (no dots), so a batch stream never shares a folder with a served model's log."""
    return f"batch.{name}"


class BatchModel(KadenceModel):
    """Exactly what `kadence serve` is given for the same ModelVersion (planners.inferenceservice.serve_task)."""

    name: str = Field(description="The ModelVersion's name, e.g. churn-v3.")
    model: str
    version: int = Field(ge=1)
    task: Literal["classification", "regression"] | None = None
    artifact: ServeArtifact
    compiled: ServeCompiled | None = None
    inputs: list[ServeColumn] | None = None


class BatchTaskInput(KadenceModel):
    uri: str = Field(description="A Dataset snapshot folder (with manifest.json), a file, or a folder of files.")
    format: TableFormat = "parquet"
    snapshot: bool = Field(False, description="uri is a Dataset snapshot: read its manifest's data file.")
    dataset: str | None = None
    dataset_version: str | None = None


class BatchTaskOutput(KadenceModel):
    uri: str = Field(description="The run's folder (ends with /).")
    format: TableFormat = "parquet"
    entity_column: str
    probabilities: bool = False


class BatchTask(KadenceModel):
    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1, description="The BatchPrediction.")
    run: str = Field(min_length=1)
    attempt: int = Field(1, ge=1)
    engine: Literal["local"] = "local"
    model: BatchModel
    input: BatchTaskInput
    output: BatchTaskOutput
    chunk_rows: int = Field(100_000, ge=1)
    stream: str | None = Field(None, description="Also log every scored row under predictions/<namespace>/<stream>/.")
    label_column: str | None = Field(None, description=(
        "With a stream: when the input carries this column (the Dataset's target), its non-null values are logged as "
        "feedback for their entity ids, so that earlier predictions of those entities get their labels."))
    result_key: str | None = None


class BatchResult(KadenceModel):
    kind: Literal["kadence.dev/batch-result"] = RESULT_KIND
    outcome: Literal["Succeeded", "Invalid", "Error"]
    run: str
    rows: int = Field(0, ge=0)
    files: list[str] = Field(default_factory=list)
    output_uri: str | None = None
    manifest_uri: str | None = None
    model_version: str | None = None
    dataset_version: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    message: str = ""
