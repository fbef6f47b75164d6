"""What `kadence serve` is told to serve: the task spec the operator's planner builds.

Given as a JSON file (`--task FILE`) or JSON in `KADENCE_TASK`; camelCase on the wire.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..api.common import DNS_LABEL_PATTERN, SHA256_PATTERN, KadenceModel
from ..api.modelversion import ColumnType

Role = Literal["stable", "canary", "shadow"]


class ServeColumn(KadenceModel):
    """One raw input column, as in the ModelVersion's signature."""

    name: str = Field(min_length=1, max_length=128)
    type: ColumnType
    nullable: bool = Field(False, description="Whether null/NaN is accepted (the pipeline imputes it).")
    pii: bool = Field(False, description="Personal data: logged as a keyed hash (KADENCE_PII_KEY), else not at all.")


class ServeArtifact(KadenceModel):
    uri: str = Field(description="s3://bucket/key, file:///path or a local path.")
    sha256: str = Field(pattern=SHA256_PATTERN)


class ServeCompiled(KadenceModel):
    """The ONNX graph made by `kadence.serving.compiled.verify_compiled` at training time."""

    uri: str
    sha256: str = Field(pattern=SHA256_PATTERN)
    verified: bool = Field(description="Used only when true: it matched scikit-learn within tolerance.")
    max_abs_difference: float | None = Field(None, ge=0)
    tolerance: float | None = Field(None, ge=0)


class LoggingSettings(KadenceModel):
    enabled: bool = True
    sample_rate: float = Field(1.0, ge=0, le=1)
    flush_records: int = Field(1000, ge=1, le=1_000_000, description="Write a batch at this many records.")
    flush_seconds: float = Field(10.0, gt=0, le=3600, description="...or when the oldest record is this old.")
    buffer_records: int = Field(100_000, ge=1, description="Records held while storage is slow; beyond, dropped and counted.")
    buffer_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024, le=4 * 1024 ** 3, description=(
        "Bytes of encoded records held while storage is slow; beyond, new records are dropped and counted."))
    directory: str | None = Field(None, description="Write batches under this local directory instead of S3 (tests, laptops).")


class ShutdownBudget(KadenceModel):
    """How the pod's termination grace period is spent after SIGTERM (the preStop hook runs
    before, outside these budgets): answer the requests in flight, send the queued shadow
    copies, write the buffered prediction log. Their sum plus the preStop sleep stays below
    terminationGracePeriodSeconds, so nothing is cut off by SIGKILL."""

    drain_seconds: float = Field(15.0, gt=0, le=600, description="Requests in flight may finish within this.")
    mirror_seconds: float = Field(3.0, ge=0, le=600, description="Queued shadow copies are sent within this.")
    flush_seconds: float = Field(15.0, gt=0, le=600, description="The prediction log is written within this; "
                                 "records still unwritten then are counted as dropped.")

    @property
    def total_seconds(self) -> float:
        return self.drain_seconds + self.mirror_seconds + self.flush_seconds


class ServeTask(KadenceModel):
    namespace: str = Field("default", pattern=DNS_LABEL_PATTERN, max_length=63)
    inference_service: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    name: str | None = Field(None, min_length=1, max_length=253, description="Model name in URLs; the registry name when unset.")
    model: str = Field(min_length=1, max_length=253, description="Registry model name.")
    version: int = Field(ge=1)
    role: Role = "stable"
    task: Literal["classification", "regression"] | None = None
    artifact: ServeArtifact
    compiled: ServeCompiled | None = None
    inputs: list[ServeColumn] | None = Field(None, min_length=1, description="Raw input columns; read from the pipeline when unset.")
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    workers: int = Field(1, ge=1, le=32)
    max_batch_size: int = Field(32, ge=1, le=4096, description="Largest micro-batch in rows.")
    max_batch_wait_ms: float = Field(2.0, ge=0, le=1000)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024,
                                description="Largest request body; larger ones are answered 413.")
    max_rows: int = Field(10_000, ge=1, le=1_000_000, description="Most rows in one request; more are answered 413.")
    max_concurrent_requests: int = Field(32, ge=1, le=10_000, description=(
        "Predict, infer and feedback requests one worker process handles at once; beyond, 429 with Retry-After. "
        "Health and metadata are never limited."))
    predict_timeout_seconds: float = Field(10.0, gt=0, le=3600, description=(
        "Longest wait for a prediction (queue and model); beyond, 504."))
    body_timeout_seconds: float = Field(10.0, gt=0, le=3600, description=(
        "Longest time to receive a request body; beyond, 408 (slow clients do not hold a slot forever)."))
    mirror_buffer_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=1024 ** 3, description=(
        "Bytes of shadow copies queued; beyond, copies are dropped and counted."))
    shutdown: ShutdownBudget = Field(default_factory=ShutdownBudget)
    mirror_to: str | None = Field(None, pattern=r"^https?://", description="Send a copy of every answered prediction "
                                  "request to this shadow server (when no gateway mirrors the traffic).")

    @model_validator(mode="after")
    def _unique_columns(self) -> "ServeTask":
        if self.inputs:
            names = [c.name for c in self.inputs]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate input columns: {', '.join(duplicates)}")
        return self

    @property
    def served_name(self) -> str:
        return self.name or self.model
