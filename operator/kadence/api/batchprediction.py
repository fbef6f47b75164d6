"""BatchPrediction: score a table with a registered model, once, per new Dataset version, or on a schedule.

Each run is a Job that loads exactly what the online server loads (`kadence.serving.predictor`:
the verified pipeline, and its verified ONNX graph when there is one), scores the input in
chunks, writes the output files under `<output.uri>/<run>/` and publishes them last with a
`_manifest.json`: a folder without its manifest is never a complete output.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    CommonStatus,
    KadenceModel,
    ResourceRequirements,
    cel,
    duration_field,
    exactly_one_of,
    require_exactly_one,
)
from .conditions import SPEC_VALID, ConditionSet
from .monitorpolicy import Schedule

TableFormat = Literal["parquet", "csv", "jsonl"]
Follow = Literal["Latest", "EveryNewVersion"]
Engine = Literal["local"]
RunPhase = Literal["Running", "Succeeded", "Failed", "Retrying"]
PINNED_AND_EVERY = "follow: EveryNewVersion scores each new version; it cannot be combined with a pinned version"
SCHEDULE_AND_EVERY = ("a schedule scores the input as it is at each tick; follow: EveryNewVersion scores each "
                      "new version as it appears: set one or the other")


class DatasetInput(KadenceModel):
    """A Dataset of this namespace: a pinned version, its latest, or each new version."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.version) || self.follow != 'EveryNewVersion'", PINNED_AND_EVERY, "follow"),
    ]}}

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253, description="The Dataset's name.")
    version: str | None = Field(None, pattern=r"^[a-z0-9]{1,64}$", description=(
        "Score this validated version (as listed in the Dataset's status.versions). Unset: see follow."))
    follow: Follow = Field("Latest", description=(
        "Without a version: Latest scores the version that is latest when a run starts (one run per model "
        "version and spec change, or one per schedule tick); EveryNewVersion runs once for every new "
        "validated version as it appears."))

    @model_validator(mode="after")
    def _pinned_or_following(self) -> "DatasetInput":
        if self.version is not None and self.follow == "EveryNewVersion":
            raise ValueError(PINNED_AND_EVERY)
        return self


class BatchInput(KadenceModel):
    """What to score: a Dataset, or a file (or a folder of files) given by URI."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("dataset", "uri"), "exactly one of dataset, uri must be set"),
        cel("has(self.uri) || !has(self.format)", "format applies to a uri input only", "format"),
    ]}}

    dataset: DatasetInput | None = None
    uri: str | None = Field(None, pattern=r"^(s3|file)://.+", max_length=2048, description=(
        "s3://bucket/key (one file, or a folder ending in /: every file in it with the format's extension), "
        "or file:// in sandbox mode."))
    format: TableFormat | None = Field(None, description="Format of the uri input: parquet (default), csv or jsonl.")

    @model_validator(mode="after")
    def _one_source(self) -> "BatchInput":
        require_exactly_one(self, "dataset", "uri")
        if self.format is not None and self.uri is None:
            raise ValueError("format applies to a uri input only")
        return self


class BatchOutput(KadenceModel):
    """Where each run writes: `<uri>/<run name>/part-NNNNN.<ext>` and then `<uri>/<run name>/_manifest.json`."""

    uri: str = Field(pattern=r"^s3://.+", max_length=2048, description=(
        "A folder in Kadence's bucket under the namespace's storage, e.g. s3://kadence/predictions/<namespace>/churn/; "
        "each run writes a folder of its own inside it."))
    format: TableFormat = Field("parquet", description="parquet, csv or jsonl.")
    entity_column: str | None = Field(None, min_length=1, max_length=128, description=(
        "The input column written beside every prediction to identify its row (and, for a MonitorPolicy, to join "
        "labels on). Defaults to the Dataset's schema.entityColumn; required for a uri input."))
    probabilities: bool = Field(False, description=(
        "Classifiers: also write one column per class, probability_<class>."))


class RetryPolicy(KadenceModel):
    """How a failed run is tried again: a run that could not read, score or write (not one whose input the
    model refuses, which fails at once)."""

    limit: int = Field(2, ge=0, le=10, description="Failed runs are retried this many times (0: never).")
    backoff: str = duration_field("1m", "Wait before the first retry; each further retry waits twice as long.")


class BatchPredictionSpec(KadenceModel):
    """Score a table with one model: a fixed version or whatever holds a stage."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("version", "stage"), "exactly one of version, stage must be set"),
        cel("!has(self.schedule) || !has(self.input.dataset) || self.input.dataset.follow != 'EveryNewVersion'",
            SCHEDULE_AND_EVERY, "schedule"),
        cel("has(self.output.entityColumn) || has(self.input.dataset)",
            "output.entityColumn is required for a uri input (a Dataset input defaults to its schema.entityColumn)",
            "output.entityColumn"),
    ]}}

    model: str = Field(pattern=DNS_LABEL_PATTERN, max_length=52, description="Registry name of the model.")
    version: int | None = Field(None, ge=1, description="Score with this ModelVersion.")
    stage: Literal["Staging", "Production"] | None = Field(None, description=(
        "Score with the version holding this stage when a run starts; a new holder starts a new run "
        "(without a schedule)."))
    input: BatchInput
    output: BatchOutput
    schedule: Schedule | None = Field(None, description=(
        "Run at each tick of this cron schedule (in its time zone); missed ticks run once. Without a schedule a "
        "run starts when what it would score changes: the model version, the spec, or (follow: "
        "EveryNewVersion) the Dataset version."))
    engine: Engine = Field("local", description="Where the scoring runs: local, one Job reading the input in chunks.")
    chunk_rows: int = Field(100_000, ge=1000, le=10_000_000, description=(
        "Rows read, scored and written at a time: the run's memory is bounded by this, not by the input's size."))
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    history_limit: int = Field(10, ge=1, le=100, description="Runs kept in status.runs (newest first).")
    resources: ResourceRequirements | None = Field(None, description="CPU and memory of the run's pod.")

    @model_validator(mode="after")
    def _rules(self) -> "BatchPredictionSpec":
        require_exactly_one(self, "version", "stage")
        if self.schedule is not None and self.input.dataset is not None and \
                self.input.dataset.follow == "EveryNewVersion":
            raise ValueError(SCHEDULE_AND_EVERY)
        if self.output.entity_column is None and self.input.dataset is None:
            raise ValueError("output.entityColumn is required for a uri input "
                             "(a Dataset input defaults to its schema.entityColumn)")
        return self


class BatchRun(KadenceModel):
    """One run of the history."""

    name: str = Field(description="The run's Job (and output folder) name.")
    phase: RunPhase = Field(description="Running, Succeeded, Failed, or Retrying (failed, tried again at retryAt).")
    attempt: int = Field(1, ge=1, description="1 for the first try, 2 for the first retry, ...")
    model_version: str = Field(description="The ModelVersion that scored it, e.g. churn-v3.")
    dataset_version: str | None = Field(None, description="The Dataset version scored (Dataset inputs).")
    input_uri: str | None = Field(None, description="What was read.")
    output_uri: str | None = Field(None, description="The run's output folder, complete once its manifest is there.")
    manifest_uri: str | None = Field(None, description="The run's _manifest.json: its files, rows and their sha256.")
    rows: int | None = Field(None, ge=0, description="Rows scored and written.")
    started_at: str | None = Field(None, json_schema_extra={"format": "date-time"}, description="When the run started.")
    finished_at: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                    description="When its latest attempt finished.")
    duration_seconds: float | None = Field(None, ge=0, description="From start to the latest attempt's end.")
    retry_at: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                 description="When a failed run is tried again.")
    message: str = Field("", max_length=4096, description="What happened, e.g. the error of a failed attempt.")


class BatchPredictionStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # ModelResolved: the version to score with exists and is verified; InputAvailable: the Dataset
        # version (or URI) exists; LastRunSucceeded: the newest finished run published its output.
        dependents=(SPEC_VALID, "ModelResolved", "InputAvailable", "LastRunSucceeded"),
    )

    model_version: str | None = Field(None, description="The ModelVersion the next run scores with.")
    dataset_version: str | None = Field(None, description="The Dataset version the next run scores.")
    last_run: str | None = Field(None, description="The newest run's name.")
    last_output: str | None = Field(None, description="The newest complete output folder.")
    last_rows: int | None = Field(None, ge=0, description="Rows of the newest complete output.")
    last_scheduled_at: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                          description="The schedule tick the newest scheduled run is for.")
    next_run_at: str | None = Field(None, json_schema_extra={"format": "date-time"},
                                    description="The next schedule tick.")
    runs: list[BatchRun] | None = Field(None, max_length=100, description="Newest first, at most spec.historyLimit.")
