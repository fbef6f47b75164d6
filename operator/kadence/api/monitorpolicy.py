"""MonitorPolicy: drift and quality checks on an InferenceService, and when to retrain."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from .conditions import SPEC_VALID, ConditionSet
from .common import (
    CommonStatus,
    Engine,
    KadenceModel,
    LocalObjectReference,
    SecretKeyReference,
    cel,
    duration_field,
    engine_field,
    exactly_one_of,
    require_exactly_one,
)
from .segments import SegmentPolicy
from .trainingrun import PromotionPolicy, TrainingRunSpec

DriftMethod = Literal["psi", "ks", "wasserstein", "jensenshannon", "chisquared"]
PerformanceMetric = Literal["f1", "f1_macro", "accuracy", "precision", "recall", "roc_auc", "log_loss", "rmse", "mae"]
LOWER_IS_BETTER = ("rmse", "mae", "log_loss")


class Window(KadenceModel):
    """The drift window: the predictions (labelled or not) whose inputs are compared with the
    reference at each evaluation, a time span or the last N. Quality has its own window
    (performance.window)."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("duration", "lastPredictions"), "exactly one of duration, lastPredictions must be set"),
    ]}}

    duration: str | None = duration_field(None, "Predictions of the last span, e.g. 24h.")
    last_predictions: int | None = Field(None, ge=1, le=10_000_000, description="The last N predictions.")

    @model_validator(mode="after")
    def _one(self) -> "Window":
        require_exactly_one(self, "duration", "last_predictions")
        return self


class FeatureDrift(KadenceModel):
    name: str = Field(min_length=1, max_length=128, description="Feature (raw input column) name.")
    method: DriftMethod | None = Field(None, description="Overrides the policy's method for this feature.")
    threshold: float | None = Field(None, ge=0, description="Overrides the policy's threshold for this feature.")


class DriftReference(KadenceModel):
    dataset: str | None = Field(None, description="Compare with this Dataset instead of the model's training data.")
    version: str | None = None


class DriftPolicy(KadenceModel):
    """How drift is measured per feature and when the whole input counts as drifted."""

    method: DriftMethod = Field("psi", description="psi, ks, wasserstein, jensenshannon or chisquared.")
    threshold: float | None = Field(
        None, ge=0,
        description="Score above which a feature drifted; for ks and chisquared the p-value below which it"
                    " drifted. Defaults per method: psi 0.2, ks 0.05, wasserstein 0.1, jensenshannon 0.1,"
                    " chisquared 0.05.",
    )
    features: list[FeatureDrift] | None = Field(
        None,
        max_length=1000,
        description="Per-feature overrides; every input column is checked either way.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted features that makes the input drifted.")
    multiple_testing: Literal["bonferroni", "none"] = Field(
        "bonferroni", description="Divide the p-value threshold of ks/chisquared by the number of features tested."
    )
    min_samples: int = Field(100, ge=1, description="Predictions needed in the window before judging drift.")
    reference: DriftReference | None = Field(
        None, description="Defaults to the profile of the serving model's training data."
    )


class QualityWindow(KadenceModel):
    """The predictions judged for quality: the newest `labelledPredictions` LABELLED predictions
    made within `maxAge` of the evaluation, labels joined to their predictions by request id
    however late they arrive (a relabelled prediction counts once, with its latest label).
    Separate from `spec.window`, the drift window."""

    labelled_predictions: int = Field(
        2000, ge=1, le=1_000_000, description="At most this many labelled predictions, the newest by prediction time.")
    max_age: str = duration_field(
        "30d", "Retention: predictions older than this at the evaluation are never judged, however late their "
               "label came; 'no labelled predictions' means none within it. Also bounds what each evaluation "
               "reads (only these days' log partitions are listed).")


class PerformancePolicy(KadenceModel):
    """Quality over labelled feedback, and the threshold that counts as a breach."""

    metric: PerformanceMetric = Field(description="f1, f1_macro, accuracy, precision, recall, roc_auc, log_loss, rmse or "
                                                   "mae.")
    threshold: float = Field(
        ge=0, description="Breach when the metric falls below it (rises above it for log_loss, rmse and mae), e.g. 0.55."
    )
    min_labelled: int = Field(50, ge=1, description="Labelled predictions needed before judging (for the estimate: "
                                                    "predictions in the drift window).")
    judge_on: Literal["Realized", "Estimated", "Either"] = Field(
        "Realized",
        description="What a breach is judged on: Realized (the metric over labelled predictions), Estimated (the "
                    "metric estimated without labels over the drift window, from the served probabilities calibrated "
                    "on the model's hold-out; for rmse/mae a loss model trained on the hold-out) or Either. Both are "
                    "always reported side by side.")
    concept_drift_margin: float = Field(
        0.1, ge=0, le=1,
        description="Concept drift: the realized metric below the estimate on the same labelled predictions by more "
                    "than this (for rmse/mae above it by more than this fraction of it) and by more than chance "
                    "explains.")
    window: QualityWindow = Field(default_factory=QualityWindow,
                                  description="The quality window (default: the newest 2000 labelled predictions "
                                              "of the last 30d).")


class Webhook(KadenceModel):
    """Where alerts are POSTed: one JSON alert (kind kadence.dev/alert, state firing) when an episode of
    breached evaluations begins, and one (state resolved) when an evaluation is healthy again. A short
    Job delivers each, with a 5 s timeout per attempt and retries with backoff on errors, 5xx and 429."""

    url: str = Field(pattern=r"^https?://.+", description="The receiver, e.g. https://hooks.example.com/kadence.")
    secret_ref: SecretKeyReference | None = Field(None, description=(
        "The Secret key whose value is sent as a bearer token (Authorization: Bearer ...); the alert Job reads "
        "it through a secretKeyRef, the operator never reads Secrets."))


class AlertmanagerTarget(KadenceModel):
    """Alertmanager's v2 API (POST <url>/api/v2/alerts): one firing alert when an episode of breached
    evaluations begins (labels alertname, severity, namespace, policy, model, version; annotations with the
    numbers and the report), and the same alert with endsAt when an evaluation is healthy again."""

    url: str = Field(pattern=r"^https?://[^/]+(/.*)?$",
                     description="Alertmanager's base URL, e.g. http://alertmanager.monitoring:9093.")
    severity: Literal["critical", "warning", "info"] = Field("warning", description="The severity label.")
    ends_after: str = duration_field(
        "168h", "The firing alert's endsAt after its start. Kadence sends it once per episode and ends it with the "
                "resolved alert; Alertmanager would close an alert without endsAt after its resolve_timeout (5m).")


class AlertAction(KadenceModel):
    event: bool = Field(True, description="Post a Warning Event.")
    webhook: Webhook | None = None
    alertmanager: AlertmanagerTarget | None = None


class ComparisonHoldout(KadenceModel):
    """The newest labelled predictions (by prediction time) kept out of a retrain's feedback, so
    that champion/challenger scores both models on them as soon as the candidate is registered,
    instead of waiting for labels of predictions made after its training data."""

    rows: int | None = Field(
        None, ge=0, le=1_000_000,
        description="How many of the newest labelled predictions are held out (default: performance.minLabelled, "
                    "what the comparison needs to judge, else 50). 0 holds none back: the comparison then waits for "
                    "labels of predictions made after the training data. At most performance.window."
                    "labelledPredictions (the comparison scores the quality window).")
    max_fraction: float = Field(
        0.5, gt=0, le=0.9,
        description="Never more than this share of the exported labelled predictions, so a small feedback still "
                    "trains; the comparison then also counts labels that arrive later.")


class RetrainAction(KadenceModel):
    """A new TrainingRun when a trigger fires, bounded by cooldown and a daily budget."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!self.enabled || " + exactly_one_of("template", "fromTrainingRun"),
            "an enabled retrain needs exactly one of template, fromTrainingRun"),
    ]}}

    enabled: bool = True
    template: TrainingRunSpec | None = Field(None, description="The spec of the TrainingRun to create.")
    from_training_run: str | None = Field(None, description="Clone this TrainingRun's spec.")
    include_feedback: bool = Field(
        True,
        description="Train on the Dataset plus every labelled prediction stored so far (one row per request id, "
                    "its latest label). The policy publishes them in status.feedback when a retrain needs them; a "
                    "Dataset that lists this policy in spec.feedback.from ingests them into a new version, and the "
                    "retrain is pinned to it. A Dataset that does not opt in is trained on as it is (a condition "
                    "says so).",
    )
    cooldown: str = duration_field(
        "6h", "No retrain sooner than this after a retrain whose candidate won champion/challenger. A candidate "
              "that lost (or was identical) does not start a cooldown: the next retrain starts once minNewLabels "
              "new labelled predictions arrived.")
    max_per_day: int = Field(3, ge=1, le=100, description="Budget of retrains per rolling 24h, counted from the "
                                                           "retrain TrainingRuns created.")
    without_new_labels: Literal["RetrainAnyway", "WaitForLabels", "AlertOnly"] = Field(
        "WaitForLabels",
        description="What a breach seen without labels (drift, or an estimated metric under performance.judgeOn "
                    "Estimated/Either) does when no labelled prediction arrived since the serving model's data: "
                    "RetrainAnyway (on the data as it is), WaitForLabels (the default; retrains once labels "
                    "arrive, and alerts after labelWait), AlertOnly (never retrains on drift or an estimate alone).")
    label_wait: str = duration_field(
        "24h", "How long the policy waits for new labels or data (WaitForLabels, or a retrain with nothing new to "
               "learn) before a Warning Event and condition say they are overdue.")
    min_new_labels: int | None = Field(
        None, ge=1, le=10_000_000,
        description="After a retrain whose candidate lost, the next one needs this many more labelled predictions "
                    "(default: performance.minLabelled, else 50).")
    comparison_holdout: ComparisonHoldout = Field(
        default_factory=ComparisonHoldout,
        description="includeFeedback: the newest labelled predictions are kept out of the training data and score "
                    "the candidate against Production right after it is registered, e.g. {rows: 200}.")
    promotion: PromotionPolicy | None = Field(
        None,
        description="What happens to the retrained model. It is always registered as a Candidate and scored "
                    "against the Production model on the recent labelled window (champion/challenger; `margin` is "
                    "the lead it needs). Auto (the default): a winner goes on as a canary on an InferenceService "
                    "tracking a stage, whose analysis promotes or rolls it back. Candidate or Manual: the verdict "
                    "is recorded and a person promotes (the ModelVersion's spec.stage).",
    )

    @model_validator(mode="after")
    def _source(self) -> "RetrainAction":
        if self.enabled:
            require_exactly_one(self, "template", "from_training_run")
        return self


class Actions(KadenceModel):
    alert: AlertAction = Field(default_factory=AlertAction)
    retrain: RetrainAction | None = None


class Schedule(KadenceModel):
    cron: str = Field(
        pattern=r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$",
        description="Cron syntax, e.g. '0 3 * * 1' (Mondays 03:00).",
    )
    time_zone: str = Field("UTC", max_length=64, description="IANA time zone, e.g. Europe/Paris.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value


class NewDataTrigger(KadenceModel):
    enabled: bool = True
    min_new_rows: int | None = Field(None, ge=1, description="Only when the new version adds this many rows.")
    min_growth_percent: float | None = Field(None, gt=0, le=10000, description="…or grows by this percentage.")


class ProductionGapTrigger(KadenceModel):
    margin: float = Field(
        gt=0, le=1,
        description="Live metric more than this below the offline hold-out metric (for rmse and mae: more than"
                    " this fraction above it, e.g. 0.2 for 20 % larger errors).",
    )
    retrain: bool = Field(False, description="Retrain on a gap; otherwise only report it.")


class ManualTrigger(KadenceModel):
    """A person's request for one retrain (`kadence console` writes it, as `kubectl patch` can): a
    requestedAt the policy has not handled yet (status.lastManualRequest) fires the manual trigger
    once. The retrain then passes the same gates as any other (one at a time, cooldown, budget, and
    nothing new to learn), and status.lastRetrainDecision says what came of it."""

    requested_at: str = Field(json_schema_extra={"format": "date-time"},
                              description="When the retrain was asked for; a new value asks again.")
    requested_by: str = Field(min_length=1, max_length=253,
                              description="Who asked (a user name), named in the decision and its Event.")
    reason: str | None = Field(None, max_length=1000, description="Why, in the asker's words.")


class Triggers(KadenceModel):
    on_breach: bool = Field(True, description="Retrain when drift or quality breaches the policy.")
    schedule: Schedule | None = None
    on_new_data: NewDataTrigger | None = None
    on_production_gap: ProductionGapTrigger | None = None
    manual: ManualTrigger | None = Field(None, description=(
        "Retrain once on request, e.g. {requestedAt: '2026-12-07T21:00:00Z', requestedBy: alice, reason: "
        "'labels of the new campaign are in'}."))


class MonitorPolicySpec(KadenceModel):
    """Watch an InferenceService or a BatchPrediction; alert and retrain when it degrades."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("has(self.drift) || has(self.performance)", "set drift, performance or both"),
        cel("has(self.inferenceServiceRef) != has(self.batchPredictionRef)",
            "exactly one of inferenceServiceRef, batchPredictionRef must be set"),
        cel("!has(self.segments) || has(self.performance)", "segments needs performance (the metric per segment)",
            "segments"),
        cel("!has(self.performance) || !has(self.actions) || !has(self.actions.retrain) || "
            "!has(self.actions.retrain.comparisonHoldout) || !has(self.actions.retrain.comparisonHoldout.rows) || "
            "self.actions.retrain.comparisonHoldout.rows <= (has(self.performance.window) && "
            "has(self.performance.window.labelledPredictions) ? self.performance.window.labelledPredictions : "
            f"{QualityWindow.model_fields['labelled_predictions'].default})",
            "actions.retrain.comparisonHoldout.rows exceeds performance.window.labelledPredictions: the comparison "
            "scores the quality window only", "actions.retrain.comparisonHoldout.rows"),
    ]}}

    inference_service_ref: LocalObjectReference | None = Field(None, description=(
        "The InferenceService whose logged predictions are judged."))
    batch_prediction_ref: LocalObjectReference | None = Field(None, description=(
        "The BatchPrediction whose scored rows are judged: drift on the scored inputs, quality once labels for "
        "their entity ids arrive (a later input carrying the Dataset's target)."))
    interval: str = duration_field("5m", "How often to evaluate, e.g. 5m.")
    window: Window = Field(default_factory=lambda: Window(duration="1h"))
    engine: Engine | None = engine_field()
    drift: DriftPolicy | None = None
    performance: PerformancePolicy | None = None
    segments: SegmentPolicy | None = Field(None, description=(
        "The performance metric per segment and fairness on a sensitive attribute, on the quality window (a failed "
        "gate breaches the policy) and on the champion/challenger comparison (a failed gate refuses the candidate)."))
    actions: Actions = Field(default_factory=Actions)
    triggers: Triggers = Field(default_factory=Triggers)

    @model_validator(mode="after")
    def _something_to_watch(self) -> "MonitorPolicySpec":
        if self.drift is None and self.performance is None:
            raise ValueError("set drift, performance or both")
        if (self.inference_service_ref is None) == (self.batch_prediction_ref is None):
            raise ValueError("exactly one of inferenceServiceRef, batchPredictionRef must be set")
        if self.segments is not None and self.performance is None:
            raise ValueError("segments needs performance (the metric per segment)")
        retrain = self.actions.retrain
        if (retrain is not None and self.performance is not None and retrain.comparison_holdout.rows is not None
                and retrain.comparison_holdout.rows > self.performance.window.labelled_predictions):
            raise ValueError(f"actions.retrain.comparisonHoldout.rows ({retrain.comparison_holdout.rows}) exceeds "
                             f"performance.window.labelledPredictions ({self.performance.window.labelled_predictions}): "
                             "the comparison scores the quality window only")
        return self


class FeedbackExport(KadenceModel):
    """Labelled predictions exported by a monitor Job: one row per request id with its latest label.
    Published in status.feedback for the Datasets that list this policy in spec.feedback.from."""

    uri: str
    rows: int = Field(ge=0)
    since: str | None = Field(None, description="Only predictions after this time (none: all stored).")
    from_: str | None = Field(None, alias="from", description="Oldest prediction time exported.")
    to: str | None = Field(None, description="Newest prediction time exported.")
    sha256: str = Field(description="sha256 of the exported file: equal digests are equal feedback.")
    held_out: int | None = Field(None, ge=0, description="Labelled predictions newer than `to` kept out of the file "
                                                         "for champion/challenger (comparisonHoldout).")
    time: str | None = Field(None, description="The evaluation that exported it.",
                             json_schema_extra={"format": "date-time"})
    job: str | None = None


class QualityWindowStatus(KadenceModel):
    """What the quality metrics cover: the labelled predictions judged, the period of their
    predictions, the retention they were chosen in, and how late their labels came."""

    labelled: int = Field(ge=0, description="Labelled predictions judged (the newest within the retention).")
    limit: int = Field(description="At most this many (the policy's labelledPredictions).")
    max_age_seconds: float
    retention_start: str = Field(description="Predictions older than this are never judged (evaluation - maxAge).",
                                 json_schema_extra={"format": "date-time"})
    start: str | None = Field(None, description="The oldest judged prediction's time.",
                              json_schema_extra={"format": "date-time"})
    end: str | None = Field(None, description="The newest judged prediction's time.",
                            json_schema_extra={"format": "date-time"})
    label_delay_p50_seconds: float | None = Field(None, ge=0, description="Median of label time - prediction time.")
    label_delay_p95_seconds: float | None = Field(None, ge=0, description="95th percentile of the label delay.")


class DriftWindowStatus(KadenceModel):
    """What drift covers: the drift window's predictions, labelled or not."""

    predictions: int = Field(ge=0)
    start: str | None = Field(None, json_schema_extra={"format": "date-time"})
    end: str | None = Field(None, json_schema_extra={"format": "date-time"})


class EstimateStatus(KadenceModel):
    """The policy metric estimated without labels over the drift window."""

    metrics: dict[str, float] = Field(description="Estimated metrics, e.g. {f1: 0.61}.")
    predictions: int = Field(ge=0, description="Unlabelled predictions they are estimated on.")
    method: Literal["CBPE", "DLE"] = Field(description="CBPE (classifiers: calibrated confidence) or DLE (regressors: "
                                                       "a loss model).")
    unavailable: str | None = Field(None, description="Why no estimate could be made.")


class ConceptDriftStatus(KadenceModel):
    """Realized against estimated on the same labelled predictions."""

    detected: bool
    metric: str
    estimated: float
    realized: float
    gap: float = Field(description="How much worse realized is than estimated.")
    noise: float = Field(description="The gap chance alone explains (3 standard deviations).")
    margin: float
    labelled: int = Field(ge=0)
    message: str


class OutputDriftStatus(KadenceModel):
    """Drift of the target in feedback (labelDrift) or of the served outputs (predictionDrift) against the
    model's hold-out."""

    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool = False
    count: int = Field(0, ge=0, description="Labels or predictions compared.")
    message: str | None = None


class Evaluation(KadenceModel):
    time: str = Field(json_schema_extra={"format": "date-time"})
    samples: int = Field(ge=0)
    labelled_samples: int = Field(ge=0, description="Labelled predictions judged for quality (the quality window).")
    drift_window: DriftWindowStatus | None = Field(None, description="What drift was judged on.")
    quality_window: QualityWindowStatus | None = Field(None, description="What the quality metrics cover.")
    drift_scores: dict[str, float] | None = None
    drifted_features: list[str] | None = None
    metrics: dict[str, float] | None = None
    estimate: EstimateStatus | None = Field(None, description="The metrics estimated without labels, beside the "
                                                              "realized metrics over labelledSamples.")
    concept_drift: ConceptDriftStatus | None = None
    label_drift: OutputDriftStatus | None = None
    prediction_drift: OutputDriftStatus | None = None
    breached: bool
    reason: str = Field(description="Why it breached, or why it could not judge.")
    message: str | None = Field(None, description="The verdict in words, e.g. f1=0.51 < 0.55 over 120 labelled.")
    report_uri: str | None = None
    job: str | None = Field(None, description="The monitor Job that evaluated it.")
    feedback: FeedbackExport | None = Field(
        None, description="The labelled predictions the evaluation exported (every stored one, a row per request "
                          "id with its latest label); published in status.feedback when a retrain needs them.")


class RetrainInputs(KadenceModel):
    """What a retrain learns from. Two retrains with equal inputs learn the same thing: the second
    is not started (NothingNewToLearn)."""

    dataset: str | None = None
    dataset_version: str | None = Field(None, description="Content-derived: it covers the feedback folded in.")
    feature_set: str | None = None
    feature_set_version: str | None = None
    spec_hash: str = Field(description="sha256 of the training spec (data version pins and promotion left out).")
    feedback_rows: int | None = Field(None, ge=0, description="Labelled predictions in the training data.")
    feedback_from: str | None = Field(None, description="Oldest prediction time among them.")
    feedback_to: str | None = Field(None, description="Newest prediction time among them.")
    feedback_sha256: str | None = None
    comparison_holdout: int | None = Field(
        None, ge=0, description="Labelled predictions newer than feedbackTo kept out of the training data; "
                                "champion/challenger scores the candidate on them (and on later labels).")


class RetrainRecord(KadenceModel):
    time: str = Field(json_schema_extra={"format": "date-time"})
    trigger: str = Field(description="The triggers that fired together, primary first: manual, breach, "
                                     "productionGap, newData, schedule (comma-separated).")
    training_run: str | None = Field(None, description="The TrainingRun started (none when nothing was new).")
    message: str | None = Field(None, description="Why each trigger fired.")
    inputs: RetrainInputs | None = None
    outcome: Literal["Pending", "Won", "Lost", "NothingNew", "Failed"] = Field(
        "Pending", description="Pending (training or awaiting champion/challenger), Won (the candidate beat "
                               "Production), Lost (it did not, or was identical to a registered version), NothingNew "
                               "(the inputs equal those of a registered version: not started), Failed.")
    outcome_message: str | None = None
    model_version: str | None = Field(None, description="The candidate ModelVersion it registered.")
    breached_at: str | None = Field(None, description="Start of the breach that caused it.",
                                    json_schema_extra={"format": "date-time"})
    promoted_at: str | None = Field(None, description="When its candidate became the served version.",
                                    json_schema_extra={"format": "date-time"})
    breach_to_promotion_seconds: float | None = Field(None, ge=0)


class RetrainDecision(KadenceModel):
    time: str = Field(json_schema_extra={"format": "date-time"})
    reason: str = Field(description="RetrainAllowed, NothingNewToLearn, WaitingForLabels, RetrainInProgress, "
                                    "CooldownActive, DailyBudgetExhausted, RetrainDisabled, AlertOnly.")
    message: str
    trigger: str | None = None
    waiting_since: str | None = Field(None, description="Since when the policy waits for labels or data.",
                                      json_schema_extra={"format": "date-time"})
    overdue: bool | None = Field(None, description="The wait passed labelWait (a Warning was posted).")


class Comparison(KadenceModel):
    """Champion/challenger: a retrained candidate against the Production model on the same
    recent labelled predictions."""

    time: str = Field(json_schema_extra={"format": "date-time"})
    candidate: str = Field(description="The candidate ModelVersion.")
    champion: str | None = Field(None, description="The Production ModelVersion, if any.")
    metric: str
    candidate_score: float | None = None
    champion_score: float | None = None
    labelled: int = Field(0, ge=0)
    held_out: int | None = Field(None, ge=0, description="Of which held out of the candidate's training data for "
                                                         "this comparison (comparisonHoldout).")
    allowed: bool = Field(description="True when the candidate may go on to canary.")
    rollout: Literal["Canary", "Manual"] | None = Field(
        None, description="What follows an allowed verdict: Canary (the InferenceService rolls it out by itself) or "
                          "Manual (a person promotes it).")
    reason: str
    message: str
    job: str | None = None


class PendingRetrain(KadenceModel):
    """A retrain decided but not started: the published feedback (status.feedback) is being ingested
    into a new Dataset version (and its features materialized) so that the retrain trains on it."""

    time: str = Field(json_schema_extra={"format": "date-time"}, description="When the retrain was decided.")
    trigger: str
    slot: str = Field(description="The evaluation that decided it (part of the TrainingRun's name).")
    dataset: str = Field(description="The retrain's Dataset.")
    feedback_sha256: str | None = Field(None, description="The feedback export the Dataset version must include "
                                                           "(none: waiting for the FeatureSet to materialize).")
    message: str | None = None
    report_uri: str | None = None
    breached_at: str | None = Field(None, json_schema_extra={"format": "date-time"})


class ProductionGap(KadenceModel):
    time: str = Field(json_schema_extra={"format": "date-time"})
    metric: str
    offline: float = Field(description="The Production model's hold-out metric at training time.")
    live: float
    gap: float = Field(description="Hold-out minus live (relative for rmse/mae), positive when production is worse.")
    margin: float
    exceeded: bool


class Alerting(KadenceModel):
    """The breach episode the webhook was last told about."""

    episode: str = Field(description="Time of the episode's first breached evaluation.",
                         json_schema_extra={"format": "date-time"})
    state: Literal["firing", "resolved"] = Field(description="firing while breached; resolved once healthy again.")
    time: str = Field(description="The evaluation that sent the last alert.", json_schema_extra={"format": "date-time"})
    job: str | None = Field(None, description="The Job delivering the last alert.")
    labels: dict[str, str] | None = Field(
        None, description="The Alertmanager labels of the episode's firing alert; the resolved alert repeats them, "
                          "so Alertmanager ends that same alert even when another model version serves by then.")
    delivery: Literal["Delivered", "Failed"] | None = Field(None, description="How that Job ended; unset while it runs.")


class MonitorPolicyStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # InferenceServiceFound: the watched service exists; Monitoring: its evaluations run
        # (Unknown before the first result, False when a monitor Job failed).
        dependents=(SPEC_VALID, "InferenceServiceFound", "Monitoring"),
        # What the evaluations found and what the policy did about it.
        informational=("Breached", "ProductionGap", "Retraining", "CandidateApproved", "FeedbackFolded"),
    )

    last_evaluation: Evaluation | None = None
    history: list[Evaluation] | None = Field(None, max_length=100, description="Bounded, newest last.")
    retrains: list[RetrainRecord] | None = Field(None, max_length=100)
    metric_summary: str | None = Field(None, description="e.g. f1=0.61, for kubectl get.")
    drift_summary: str | None = Field(None, description="e.g. 2/20 drifted, for kubectl get.")
    last_job: str | None = Field(None, description="The last monitor Job whose result is in status.")
    last_scheduled_run: str | None = Field(None, description="The schedule slot last consumed (run or held).",
                                           json_schema_extra={"format": "date-time"})
    last_manual_request: str | None = Field(None, description="The spec.triggers.manual.requestedAt last handled "
                                                             "(run or held).")
    data_version_baseline: str | None = Field(None, description="Dataset version the new-data trigger compares with.")
    last_retrain_decision: RetrainDecision | None = None
    last_comparison: Comparison | None = None
    verdicts: list[Comparison] | None = Field(
        None, max_length=20,
        description="The champion/challenger verdict of each recent candidate, newest last. An InferenceService "
                    "tracking a stage canaries a Candidate whose verdict here (a policy watching it, same "
                    "namespace) is allowed with rollout Canary.")
    feedback: FeedbackExport | None = Field(
        None, description="The labelled predictions this policy publishes for the Datasets that list it in "
                          "spec.feedback.from (updated when a retrain needs them).")
    pending_retrain: PendingRetrain | None = None
    production_gap: ProductionGap | None = None
    alerting: Alerting | None = Field(None, description="The alerts sent (spec.actions.alert webhook and alertmanager).")
