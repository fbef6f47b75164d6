"""Task and result of the monitor workload (`kadence monitor`), built and read by the
MonitorPolicy planner.

Object layout of one evaluation (the stamp is the evaluation time, `20261123T001000Z`):

  monitoring/<namespace>/<policy>/<stamp>/report.json   everything computed
  monitoring/<namespace>/<policy>/<stamp>/report.html   histograms and the metric over time
  monitoring/<namespace>/<policy>/<stamp>/result.json   MonitorResult, for the operator

The result is also printed as the last line of the Job's log.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..api.common import Engine, KadenceModel, require_exactly_one
from ..api.modelversion import EstimationReference
from ..api.segments import SegmentPolicy, SegmentResult
from ..api.monitorpolicy import (ConceptDriftStatus, DriftPolicy, DriftWindowStatus, EstimateStatus, OutputDriftStatus,
                                 PerformancePolicy, QualityWindowStatus)

EXIT_EVALUATED = 0  # judged or reported why not; a breach is not a failure of the Job
EXIT_ERROR = 2  # the task could not run: bad task, storage failure, unreadable logs

RESULT_KIND = "kadence.dev/monitor-result"


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def monitoring_prefix(namespace: str, policy: str) -> str:
    return f"monitoring/{namespace}/{policy}/"


def evaluation_prefix(namespace: str, policy: str, moment: datetime) -> str:
    return f"{monitoring_prefix(namespace, policy)}{stamp(moment)}/"


class TaskWindow(KadenceModel):
    """The predictions judged: those of the last `durationSeconds` before the evaluation time,
    or the last N predictions up to it."""

    duration_seconds: float | None = Field(None, gt=0)
    last_predictions: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> "TaskWindow":
        require_exactly_one(self, "duration_seconds", "last_predictions")
        return self

    @property
    def duration(self) -> timedelta | None:
        return timedelta(seconds=self.duration_seconds) if self.duration_seconds is not None else None


class FeedbackExport(KadenceModel):
    """Write every labelled prediction made after `since` (up to the evaluation time) as one
    Parquet file for training: the logged inputs, the label under `target`, the prediction time
    under `timeColumn`; one row per request id, its latest label."""

    target: str = Field(min_length=1, description="The label's column name (the model's target).")
    since: datetime | None = Field(None, description="Only predictions made after it; every stored one when unset.")
    time_column: str | None = Field(None, min_length=1, description="Also write the prediction time in this column.")
    key: str | None = Field(None, min_length=1, description="Object key; <evaluation prefix>feedback.parquet when unset.")
    hold_out: int = Field(0, ge=0, description="Keep the newest this many labelled predictions (by prediction time) "
                                               "out of the file, for champion/challenger.")
    hold_out_max_fraction: float = Field(0.5, gt=0, le=0.9, description="At most this share of them.")
    policy_uid: str | None = Field(None, min_length=1, description=(
        "The policy's uid: the checkpoint the next export starts from is kept under it, so a policy re-created "
        "under the same name never starts from its predecessor's rows. Unset: kept under the policy's name."))
    policy_created: datetime | None = Field(None, description=(
        "When the policy was created: a checkpoint kept under its name (before uids keyed them) is taken over "
        "only when written after it, i.e. by this same policy."))

    @field_validator("since", "policy_created")
    @classmethod
    def _aware_since(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{'since' if info.field_name == 'since' else 'policyCreated'} must carry a time zone")
        return value.astimezone(timezone.utc) if value is not None else None

    @model_validator(mode="after")
    def _distinct_columns(self) -> "FeedbackExport":
        if self.time_column is not None and self.time_column == self.target:
            raise ValueError(f"timeColumn and target are both {self.target!r}")
        return self


class ModelRef(KadenceModel):
    """A registered model artifact (a skops pipeline taking the raw inputs)."""

    version: str = Field(min_length=1)
    uri: str = Field(pattern=r"^(s3|file)://.+")
    sha256: str = Field(pattern=r"^[a-f0-9]{64}$")


class Comparison(KadenceModel):
    """Champion/challenger: score both models on the window's labelled predictions (the same
    rows for both) with the policy metric; the challenger must win by more than `margin`."""

    champion: ModelRef | None = Field(None, description="The Production model; none means nothing to beat.")
    challenger: ModelRef
    margin: float = Field(0.0, ge=0)
    unseen_after: datetime | None = Field(
        None, description="Only labelled predictions made after it: the challenger's training data (its feedback) "
                          "ends there, so both models are scored on rows the challenger never saw.")
    held_out: int | None = Field(None, ge=0, description="How many labelled predictions after unseenAfter the "
                                                         "retrain kept out of its feedback for this comparison.")

    @field_validator("unseen_after")
    @classmethod
    def _aware_unseen(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("unseenAfter must carry a time zone")
        return value.astimezone(timezone.utc) if value is not None else None


class MonitorTask(KadenceModel):
    namespace: str = Field(min_length=1)
    policy: str = Field(min_length=1)
    inference_service: str = Field(min_length=1)
    time: datetime = Field(description="The evaluation time: the window's end, and the report's stamp.")
    window: TaskWindow = Field(description="The drift window.")
    model_versions: list[str] | None = Field(None, description="Only these model versions' predictions (all when unset).")
    drift: DriftPolicy | None = None
    performance: PerformancePolicy | None = None
    reference_uri: str | None = Field(
        None, description="s3:// URI of the drift reference: a profile.json, or a sample (.parquet, .csv).")
    features: list[str] | None = Field(
        None, min_length=1,
        description="The serving model's inputs (its signature): drift is judged on exactly these columns, and a "
                    "listed column missing from the window or the reference is reported as such. Unset: every "
                    "logged input and reference column except excludeColumns. The labelled export keeps every "
                    "logged input either way.")
    personal_columns: list[str] = Field(
        default_factory=list, description="Inputs the logs hold as keyed hashes (pii): the reference's categories are "
                                          "hashed with KADENCE_PII_KEY to compare; numeric ones are not judged.")
    exclude_columns: list[str] = Field(
        default_factory=list, description="Never judged for drift, e.g. the target (only used without features).")
    classes: list[Any] | None = Field(None, description="The model's classes, in the order of logged probabilities.")
    offline_metric: float | None = Field(None, description="The Production model's hold-out value of the policy metric.")
    estimation_reference: EstimationReference | None = Field(
        None, description="The Production model's hold-out predictions with labels: performance is estimated "
                          "without labels from them, and label and prediction drift are judged against them.")
    estimation_version: str | None = Field(
        None, description="The model version (as its predictions are logged) the reference belongs to: only its "
                          "predictions are estimated.")
    history: int = Field(50, ge=0, le=1000, description="Previous results shown in the report's metric over time.")
    engine: Engine | None = Field(None, description="The policy's spec.engine: local, ray (one Ray task), or unset "
                                                    "(the operator-wide default).")
    compare: Comparison | None = Field(None, description="Also judge a retrained candidate against Production.")
    segments: SegmentPolicy | None = Field(None, description="The metric per segment and fairness, with gates.")
    feedback_export: FeedbackExport | None = Field(
        None, description="Write the labelled predictions since a time as one Parquet file, for training.")
    result_key: str | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a time zone")
        return value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _something(self) -> "MonitorTask":
        if self.drift is None and self.performance is None:
            raise ValueError("set drift, performance or both")
        return self

    @field_validator("features")
    @classmethod
    def _distinct_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if any(not name for name in value):
            raise ValueError("features must not contain an empty name")
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"features lists {', '.join(map(repr, repeated))} more than once")
        return value

    @model_validator(mode="after")
    def _features_not_excluded(self) -> "MonitorTask":
        both = [name for name in self.features or [] if name in self.exclude_columns]
        if both:
            raise ValueError(f"features and excludeColumns both name {', '.join(map(repr, both))}: "
                             "a column is either judged for drift or never judged")
        return self

    @model_validator(mode="after")
    def _comparison_needs_a_metric(self) -> "MonitorTask":
        if self.compare is not None and self.performance is None:
            raise ValueError("compare needs performance (the metric both models are judged by)")
        return self

    @property
    def quality_window(self):
        """The quality window of `performance.window` (None without performance)."""
        from ..domain.monitoring.labelled import QualityWindowSpec
        from ..api.common import duration_delta

        if self.performance is None:
            return None
        window = self.performance.window
        return QualityWindowSpec(window.labelled_predictions, duration_delta(window.max_age))

    @property
    def prefix(self) -> str:
        return evaluation_prefix(self.namespace, self.policy, self.time)

    def resolved_result_key(self) -> str:
        return self.result_key or f"{self.prefix}result.json"


class FeatureDriftReport(KadenceModel):
    feature: str
    kind: str | None = None
    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool = False
    status: str
    reference_count: int = 0
    current_count: int = 0
    reference_missing_share: float | None = None
    current_missing_share: float | None = None
    message: str | None = Field(None, description="Why the feature was not judged (see status).")


class Verdict(KadenceModel):
    reason: str
    message: str
    breached: bool


class ComparisonResult(KadenceModel):
    metric: str
    labelled: int
    champion_version: str | None = None
    challenger_version: str
    champion: float | None = None
    challenger: float | None = None
    unseen_after: str | None = Field(None, description="Only predictions made after it were scored.")
    held_out: int | None = Field(None, ge=0, description="The retrain's hold-out among them (compare.heldOut).")
    start: str | None = Field(None, description="The oldest scored prediction's time.")
    end: str | None = Field(None, description="The newest scored prediction's time.")
    reason: str
    message: str
    allowed: bool
    segments: SegmentResult | None = Field(None, description="The challenger's segments on the same rows "
                                                             "(spec.segments): a failed gate disallows it.")


class FeedbackExportResult(KadenceModel):
    uri: str | None = Field(None, description="The Parquet file; none when no labelled prediction was found.")
    rows: int = Field(ge=0)
    target: str
    time_column: str | None = None
    since: str | None = Field(None, description="Predictions after this time (none: every stored one).")
    start: str | None = Field(None, description="The oldest exported prediction's time.")
    end: str | None = Field(None, description="The newest exported prediction's time.")
    labels_until: str = Field(description="Labels given up to this time (the evaluation time) are in.")
    sha256: str | None = Field(None, description="Of the file's bytes.")
    held_out: int = Field(0, ge=0, description="The newest labelled predictions kept out of the file (after `end`).")
    carried_until: str | None = Field(
        None, description="Rows of predictions made up to this time (the retention's start) were carried over from "
                          "the previous export; only the retention's logs were read.")


class MonitorResult(KadenceModel):
    kind: Literal["kadence.dev/monitor-result"] = RESULT_KIND
    outcome: Literal["Evaluated", "Error"]
    time: str
    window_start: str | None = None
    window_end: str | None = None
    samples: int = 0
    labelled_samples: int = 0
    model_versions: dict[str, int] = Field(default_factory=dict, description="Predictions per model version.")
    drift_scores: dict[str, float] = Field(default_factory=dict)
    drifted_features: list[str] = Field(default_factory=list)
    drifted_share: float | None = None
    features: list[FeatureDriftReport] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    unavailable_metrics: dict[str, str] = Field(default_factory=dict)
    drift: Verdict | None = None
    quality: Verdict | None = None
    production_gap: float | None = Field(None, description="Hold-out minus live policy metric, positive when worse.")
    estimate: EstimateStatus | None = None
    concept_drift: ConceptDriftStatus | None = None
    label_drift: OutputDriftStatus | None = None
    prediction_drift: OutputDriftStatus | None = None
    breached: bool = False
    reason: str
    message: str
    comparison: ComparisonResult | None = None
    segments: SegmentResult | None = Field(None, description="The quality window per segment (spec.segments).")
    drift_window: DriftWindowStatus | None = None
    quality_window: QualityWindowStatus | None = None
    feedback_export: FeedbackExportResult | None = None
    report_uri: str | None = None
    result_uri: str | None = None
