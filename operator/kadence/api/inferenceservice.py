"""InferenceService: a model served behind canary, shadow and autoscaling."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from .segments import SegmentPolicy
from .conditions import SPEC_VALID, ConditionSet
from .common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    CommonStatus,
    KadenceModel,
    ResourceRequirements,
    at_most_one_of,
    cel,
    duration_field,
    exactly_one_of,
    parse_duration,
    require_at_most_one,
    require_exactly_one,
)

QualityMetric = Literal["f1", "accuracy"]
ScalingMetric = Literal["cpu", "requestRate"]
CanarySource = Literal["spec", "challenger"]
PINNED_NEEDS_CANARY_VERSION = ("canary.version is required when spec.version pins the served version (only a "
                               "stage-tracking InferenceService rolls out approved challengers)")
RolloutPhase = Literal["Stable", "Progressing", "Paused", "Promoting", "RolledBack", "Degraded"]


class CanaryStep(KadenceModel):
    weight: int = Field(ge=1, le=100, description="Share of traffic for the canary, in percent.")
    pause: str = duration_field("1m", "How long to hold this weight and analyse before the next step.")


class QualityGate(KadenceModel):
    """Judged only when enough labelled feedback exists for both versions."""

    metric: QualityMetric = Field("f1", description="f1 or accuracy.")
    max_drop: float = Field(0.0, ge=0, le=1, description="The canary may be at most this much worse than stable.")
    min_labelled: int = Field(30, ge=1, description="Labelled requests each version needs before judging.")
    segments: SegmentPolicy | None = Field(None, description=(
        "The metric per segment and fairness on the canary's labelled requests of the step; a failed gate fails "
        "the step (the canary is rolled back) with the worst segment in the message."))


class Analysis(KadenceModel):
    """How a canary step is judged against stable."""

    interval: str = duration_field("30s", "How often to look at the metrics.")
    min_requests: int = Field(50, ge=1, description="Requests the canary must serve before a step is judged.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Largest share of 5xx answers, e.g. 0.01.")
    max_latency_p99_ratio: float = Field(
        1.5, ge=1, le=100, description="The canary's p99 latency may be at most this multiple of stable's."
    )
    quality: QualityGate | None = None
    max_wait: str = duration_field(
        "30m", "A step without minRequests after this long pauses the rollout instead of promoting."
    )


class Canary(KadenceModel):
    """A candidate version rolled out in steps, analysed at each.

    With a version: that ModelVersion is the canary (a pinned canary). Without one, on an
    InferenceService that tracks a stage: the steps, analysis and autoPromote apply to the
    approved challengers the operator rolls out by itself (see spec.stage)."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.steps.all(s, s.weight < 100) || self.steps[size(self.steps) - 1].weight == 100",
            "only the last step may send all traffic to the canary", "steps"),
    ]}}

    version: int | None = Field(None, ge=1, description=(
        "The candidate ModelVersion's version number: a pinned canary, which wins over any approved "
        "challenger. Leave it out to roll out approved challengers (the newest Candidate, newer than "
        "stable, that a MonitorPolicy approved) with these steps and analysis."))
    steps: list[CanaryStep] = Field(
        default_factory=lambda: [CanaryStep(weight=10), CanaryStep(weight=50)],
        min_length=1,
        max_length=20,
        description="Traffic steps, ascending, e.g. [{weight: 10}, {weight: 50}].",
    )
    analysis: Analysis = Field(default_factory=Analysis)
    auto_promote: bool = Field(True, description="Promote after the last step passes; otherwise pause there.")

    @model_validator(mode="after")
    def _ascending(self) -> "Canary":
        weights = [s.weight for s in self.steps]
        if weights != sorted(set(weights)):
            raise ValueError("step weights must be strictly ascending")
        return self


class Shadow(KadenceModel):
    version: int = Field(ge=1, description="Gets a copy of the traffic; its answers are logged, never returned.")


class Autoscaling(KadenceModel):
    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas", "minReplicas"),
    ]}}

    min_replicas: int = Field(1, ge=1, le=100)
    max_replicas: int = Field(ge=1, le=100)
    metric: ScalingMetric = Field("cpu", description="cpu (utilization %) or requestRate (per pod per second).")
    target: int = Field(70, ge=1, le=100000, description="Target per pod, e.g. 70 (% CPU) or 200 (req/s).")

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class PredictionLogging(KadenceModel):
    enabled: bool = True
    sample_rate: float = Field(1.0, ge=0, le=1, description="Share of requests logged, e.g. 0.1.")
    buffer_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024, le=4 * 1024 ** 3, description=(
        "Bytes of prediction records a server holds while storage is slow or down; beyond, new records are "
        "dropped and counted in kadence_serving_prediction_log_records_total{outcome=\"dropped\"}. Counts "
        "against the pod's memory limit."))


class GatewayRef(KadenceModel):
    """Route through a Gateway API gateway with exact weights and mirroring."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    namespace: str | None = Field(None, pattern=DNS_LABEL_PATTERN, max_length=63)
    hostname: str | None = Field(None, max_length=253)


class ServerSettings(KadenceModel):
    """The model server's process and its request limits (each refusal names its limit)."""

    workers: int = Field(1, ge=1, le=32, description="Worker processes per pod.")
    max_batch_size: int = Field(32, ge=1, le=4096, description="Largest micro-batch of concurrent requests.")
    max_batch_wait: str = duration_field("2ms", "Longest wait to fill a micro-batch.")
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description=(
        "Largest request body in bytes; larger ones are answered 413."))
    max_rows: int = Field(10_000, ge=1, le=1_000_000, description="Most rows in one request; more are answered 413.")
    max_concurrent_requests: int = Field(32, ge=1, le=10_000, description=(
        "Predict, infer and feedback requests each worker process handles at once; beyond, 429 with "
        "Retry-After. Health and metadata requests are never limited."))
    predict_timeout: str = duration_field("10s", "Longest wait for a prediction (queue and model); beyond, 504.")
    body_timeout: str = duration_field("10s", "Longest time to receive a request body; beyond, 408.")

    @model_validator(mode="after")
    def _timeouts(self) -> "ServerSettings":
        for name, text in (("predictTimeout", self.predict_timeout), ("bodyTimeout", self.body_timeout)):
            if not 0 < parse_duration(text) <= 3600:
                raise ValueError(f"{name} must be more than 0s and at most 1h, got {text}")
        return self


class InferenceServiceSpec(KadenceModel):
    """Serve one model: a fixed version or whatever holds a stage."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("version", "stage"), "exactly one of version, stage must be set"),
        cel(at_most_one_of("replicas", "autoscaling"), "set replicas or autoscaling, not both"),
        cel("!has(self.version) || !has(self.canary) || has(self.canary.version)", PINNED_NEEDS_CANARY_VERSION,
            "canary.version"),
    ]}}

    model: str = Field(pattern=DNS_LABEL_PATTERN, max_length=52, description="Registry name.")
    version: int | None = Field(None, ge=1, description=(
        "Serve this version. A pinned InferenceService takes no automatic canaries; a canary needs "
        "canary.version."))
    stage: Literal["Staging", "Production"] | None = Field(None, description=(
        "Track the version holding this stage; promotions roll out by themselves. Approved challengers "
        "are canaried automatically: the newest ModelVersion of the model in stage Candidate, with a "
        "higher version than stable and an allowed verdict in the status.verdicts of a MonitorPolicy "
        "watching this InferenceService, "
        "rolls out as a canary (with spec.canary's steps and analysis, or the defaults when spec.canary "
        "is absent); passing every step moves it to this stage, a failed analysis archives it."))
    canary: Canary | None = Field(None, description=(
        "Canary rollouts: a pinned version, or (without a version) the steps and analysis for "
        "approved challengers."))
    shadow: Shadow | None = None
    replicas: int | None = Field(None, ge=0, le=100, description="Stable replicas (1 when neither is set).")
    autoscaling: Autoscaling | None = None
    resources: ResourceRequirements | None = None
    logging: PredictionLogging = Field(default_factory=PredictionLogging)
    gateway: GatewayRef | None = None
    server: ServerSettings = Field(default_factory=ServerSettings)

    @model_validator(mode="after")
    def _what_to_serve(self) -> "InferenceServiceSpec":
        require_exactly_one(self, "version", "stage")
        require_at_most_one(self, "replicas", "autoscaling")
        if self.version is not None and self.canary is not None and self.canary.version is None:
            raise ValueError(PINNED_NEEDS_CANARY_VERSION)
        return self


class AnalysisResult(KadenceModel):
    at: str = Field(json_schema_extra={"format": "date-time"})
    step: int = Field(ge=0)
    requests: int = Field(ge=0)
    error_rate: float | None = None
    latency_p99_ratio: float | None = None
    quality_delta: float | None = None
    passed: bool
    message: str = ""


class InferenceServiceStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # ModelResolved: the version to serve exists; StableReady: the stable servers answer.
        dependents=(SPEC_VALID, "ModelResolved", "StableReady"),
        # CanaryHealthy: the canary's rollout (a rollback is False); ShadowHealthy: the mirrored version.
        informational=("CanaryHealthy", "ShadowHealthy"),
    )

    url: str | None = None
    stable_version: int | None = None
    canary_version: int | None = None
    canary_source: CanarySource | None = Field(None, description=(
        "Where the canary came from: spec (spec.canary.version) or challenger (a Candidate approved by a "
        "MonitorPolicy's champion/challenger comparison)."))
    canary_approval: str | None = Field(None, max_length=4096, description=(
        "For a challenger canary: the MonitorPolicy verdict that approved it, e.g. ChallengerBeatsChampion: "
        "candidate f1=0.81 vs Production 0.74 on 120 labelled predictions (compare Job churn-quality-compare-...)."))
    canary_weight: int | None = Field(None, ge=0, le=100)
    current_step: int | None = Field(None, ge=0)
    step_started_at: str | None = Field(None, json_schema_extra={"format": "date-time"}, description=(
        "When the current canary step began, or when a new stable version started (phase Progressing "
        "without a canary)."))
    rollout_reason: str | None = Field(None, max_length=4096, description="Why the rollout is in its phase, e.g. "
                                       "AnalysisFailed: error rate 0.0300 is above 0.01.")
    analysis: list[AnalysisResult] | None = Field(None, max_length=50, description="Latest analyses, newest last.")
