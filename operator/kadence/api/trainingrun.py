"""TrainingRun: AutoML over scikit-learn families, registered as a ModelVersion."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from .conditions import SPEC_VALID, ConditionSet
from .segments import SegmentPolicy, SegmentResult
from .common import (
    DNS_LABEL_PATTERN,
    CommonStatus,
    Engine,
    KadenceModel,
    ResourceRequirements,
    VersionedReference,
    cel,
    duration_field,
    engine_field,
    exactly_one_of,
    require_exactly_one,
)

Task = Literal["classification", "regression"]
Metric = Literal["f1", "f1_macro", "accuracy", "roc_auc", "log_loss", "r2", "rmse", "mae"]
CLASSIFICATION_METRICS = ("f1", "f1_macro", "accuracy", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "rmse", "mae")
MINIMIZED_METRICS = ("log_loss", "rmse", "mae")
Direction = Literal["maximize", "minimize"]
Family = Literal[
    "logistic_regression",
    "linear_regression",
    "ridge",
    "random_forest",
    "extra_trees",
    "gradient_boosting",
    "hist_gradient_boosting",
    "knn",
    "svm",
    "lightgbm",
    "xgboost",
    "catboost",
]
Strategy = Literal["tpe", "random", "grid"]
Stage = Literal["Candidate", "Staging", "Production", "Archived"]


class Objective(KadenceModel):
    """The metric the search optimizes and the winner is judged by."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("!has(self.direction) || self.direction == "
            "(self.metric in ['log_loss', 'rmse', 'mae'] ? 'minimize' : 'maximize')",
            "direction contradicts the metric", "direction"),
    ]}}

    metric: Metric = Field(description="f1, f1_macro, accuracy, roc_auc, log_loss, r2, rmse or mae.")
    direction: Direction | None = Field(None, description="Derived from the metric when unset.")

    @model_validator(mode="after")
    def _direction(self) -> "Objective":
        natural = "minimize" if self.metric in MINIMIZED_METRICS else "maximize"
        if self.direction is not None and self.direction != natural:
            raise ValueError(f"direction {self.direction} contradicts the metric {self.metric} ({natural})")
        return self

    @property
    def effective_direction(self) -> str:
        return self.direction or ("minimize" if self.metric in MINIMIZED_METRICS else "maximize")


class ParameterRange(KadenceModel):
    """One hyperparameter's range: numeric bounds, or a list of choices."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("(has(self.low) && has(self.high)) != has(self.choices)",
            "set either low and high, or choices"),
        cel("!has(self.low) || !has(self.high) || self.low <= self.high", "low must not exceed high"),
        cel("!has(self.log) || !self.log || !has(self.low) || self.low > 0.0", "a log range needs low > 0"),
    ]}}

    low: float | None = Field(None, description="Lower bound (numeric ranges).")
    high: float | None = Field(None, description="Upper bound (numeric ranges).")
    integer: bool = Field(False, description="Sample integers between low and high.")
    log: bool = Field(False, description="Sample on a log scale.")
    choices: list[Any] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Categorical choices (strings, numbers, booleans or null).",
        json_schema_extra={"items": {"x-kubernetes-preserve-unknown-fields": True}},
    )

    @model_validator(mode="after")
    def _shape(self) -> "ParameterRange":
        numeric = self.low is not None and self.high is not None
        if numeric == (self.choices is not None):
            raise ValueError("set either low and high, or choices")
        if numeric and self.low > self.high:
            raise ValueError("low must not exceed high")
        if self.log and numeric and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class FamilySearch(KadenceModel):
    """A model family and, optionally, a narrower search space than its default."""

    name: Family = Field(description="The model family (scikit-learn's, or LightGBM, XGBoost, CatBoost with the boosting extra).")
    space: dict[str, ParameterRange] | None = Field(
        None, description="Overrides of the family's default ranges, by estimator parameter name."
    )


class Search(KadenceModel):
    """How to search: which families, which optimizer, what budget."""

    strategy: Strategy = Field("tpe", description="tpe (Optuna, with pruning), random or grid.")
    families: list[FamilySearch] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="Candidate families; every family fitting the task when unset.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    max_trials: int = Field(30, ge=1, le=10000, description="Trial budget.")
    timeout: str | None = duration_field(None, "The search's budget, e.g. 30m: at the deadline no trial starts and "
                                                "the running ones are stopped (recorded as timeout).")
    parallelism: int = Field(1, ge=1, le=64, description="Trials evaluated at once.")
    pruning: bool = Field(True, description="Stop clearly bad trials after their first folds (tpe, random).")
    ensemble: bool = Field(True, description=(
        "Greedy ensemble selection over the out-of-fold predictions of the best trials: the model is a weighted "
        "vote of several trials when that beats the best single trial on cross-validation (not with "
        "dataSelection RecencyWeighted, whose weighted scores it does not reproduce)."))


class Split(KadenceModel):
    test_fraction: float = Field(0.2, ge=0.05, le=0.5, description="Hold-out share, e.g. 0.2.")
    stratify: bool = Field(True, description="Keep class shares equal in both parts (classification).")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Seed for the split, the folds and the search.")
    refit: bool = Field(False, description=(
        "Once the chosen model is scored on the hold-out, fit it again on the training and hold-out rows "
        "together (same family and parameters, same sample weights rule: with RecencyWeighted the weights of "
        "every row) and register that model. The reported metrics, the segment and fairness gates and the "
        "estimation reference stay those of the model fitted without the hold-out; the metrics file and the "
        "model card say refit with the row count. Useful with a dataSelection time column, whose hold-out is "
        "the newest rows: without refit the registered model never sees them."))


class RecentData(KadenceModel):
    """The newest rows by the time column: those of a last period, or a row count."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("period", "rows"), "exactly one of period, rows must be set"),
    ]}}

    period: str | None = duration_field(None, "Rows whose time is within this of the newest row's, e.g. 90d.")
    rows: int | None = Field(None, ge=10, le=100_000_000, description="The newest N rows.")

    @model_validator(mode="after")
    def _one(self) -> "RecentData":
        require_exactly_one(self, "period", "rows")
        return self


class DataSelection(KadenceModel):
    """Which rows train the model and how much each counts, by the rows' time.

    The time column holds each row's event time: a column of the Dataset (declared in its
    schema, never used as a feature); feedback rows folded in from a MonitorPolicy carry their
    prediction's time there. With a time column the model is scored on the regime it will serve:
    the hold-out is the newest `split.testFraction` of the rows, and cross-validation validates
    on the newest half of the remaining rows only (each fold training on every other row);
    without one, both are random. Rows whose time is missing count as the oldest."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.mode == 'All' || has(self.timeColumn)", "mode Recent and RecencyWeighted need timeColumn",
            "timeColumn"),
        cel("(self.mode == 'Recent') == has(self.recent)", "recent is set exactly when mode is Recent", "recent"),
        cel("(self.mode == 'RecencyWeighted') == has(self.halfLife)",
            "halfLife is set exactly when mode is RecencyWeighted", "halfLife"),
    ]}}

    time_column: str | None = Field(
        None, min_length=1, max_length=128,
        description="The rows' event-time column (date-times); excluded from the features. With it the hold-out is "
                    "the newest rows and cross-validation scores the newest half of the others.")
    mode: Literal["All", "Recent", "RecencyWeighted"] = Field(
        "All", description="All: every row. Recent: only the newest rows (see recent). RecencyWeighted: every row, "
                           "weighted 0.5**(age/halfLife) by its age behind the newest row, in every cross-validation "
                           "fit and score and in the final fit.")
    recent: RecentData | None = Field(None, description="mode Recent: a period or a row count.")
    half_life: str | None = duration_field(None, "mode RecencyWeighted: the age at which a row counts half, e.g. 30d.")

    @model_validator(mode="after")
    def _consistent(self) -> "DataSelection":
        if self.mode != "All" and self.time_column is None:
            raise ValueError(f"mode {self.mode} needs timeColumn")
        if (self.mode == "Recent") != (self.recent is not None):
            raise ValueError("recent is set exactly when mode is Recent")
        if (self.mode == "RecencyWeighted") != (self.half_life is not None):
            raise ValueError("halfLife is set exactly when mode is RecencyWeighted")
        return self


PromotionMode = Literal["Candidate", "Auto", "Manual"]


class PromotionPolicy(KadenceModel):
    """What happens to the winning model once registered."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("self.mode != 'Candidate' || !has(self.targetStage)",
            "targetStage is only used by the Auto and Manual modes", "targetStage"),
    ]}}

    mode: PromotionMode = Field(
        "Candidate",
        description="Candidate: stay Candidate. Auto: promote to targetStage when it beats the current "
        "Production by margin on the hold-out. Manual: wait for approval (set the ModelVersion's spec.stage).",
    )
    target_stage: Literal["Staging", "Production"] | None = Field(None, description="Stage for Auto/Manual.")
    margin: float = Field(0.0, ge=0, le=1, description="Required improvement of the objective, e.g. 0.01.")

    @model_validator(mode="after")
    def _stage_only_when_used(self) -> "PromotionPolicy":
        if self.mode == "Candidate" and self.target_stage is not None:
            raise ValueError("targetStage is only used by the Auto and Manual modes")
        return self


class Tracking(KadenceModel):
    """Experiment tracking of the run."""

    mlflow: bool = Field(True, description="Log the run (a child run per trial, the model, the data versions) to "
                                           "the operator's MLflow tracking server, when the operator has one "
                                           "(chart value mlflow.trackingUri). false: this run is not logged.")


class TrainingRunSpec(KadenceModel):
    """One AutoML training run."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel(exactly_one_of("featureSetRef", "datasetRef"), "exactly one of featureSetRef, datasetRef must be set"),
        cel("self.task == 'classification' ? self.objective.metric in ['f1', 'f1_macro', 'accuracy', 'roc_auc', "
            "'log_loss'] : self.objective.metric in ['r2', 'rmse', 'mae']",
            "the objective metric does not fit the task", "objective.metric"),
    ]}}

    feature_set_ref: VersionedReference | None = Field(None, description="Train on a FeatureSet.")
    dataset_ref: VersionedReference | None = Field(None, description="Train on a Dataset's raw columns.")
    task: Task = Field(description="classification or regression.")
    objective: Objective
    search: Search = Field(default_factory=Search)
    cv_folds: int = Field(5, ge=2, le=20, description="Cross-validation folds.")
    split: Split = Field(default_factory=Split)
    data_selection: DataSelection | None = Field(
        None, description="Train on every row (the default), the newest, or all weighted by recency; with a time "
                          "column the hold-out is the newest rows.")
    resources: ResourceRequirements | None = None
    model: str = Field(pattern=DNS_LABEL_PATTERN, max_length=52, description="Registry name to register into.")
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)
    segments: SegmentPolicy | None = Field(None, description=(
        "The objective per segment and fairness on a sensitive attribute, on the hold-out: reported in "
        "status.segments; a failed gate keeps the model Candidate whatever the promotion policy says."))
    max_attempts: int = Field(2, ge=1, le=10, description="Training Jobs to try before the run fails.")
    tracking: Tracking = Field(default_factory=Tracking)
    engine: Engine | None = engine_field()

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingRunSpec":
        require_exactly_one(self, "feature_set_ref", "dataset_ref")
        fitting = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        if self.objective.metric not in fitting:
            raise ValueError(f"the objective metric {self.objective.metric} does not fit the task {self.task}")
        return self


class TrialsSummary(KadenceModel):
    done: int = Field(0, ge=0)
    total: int = Field(0, ge=0)
    pruned: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    timed_out: int = Field(0, ge=0, description="Trials stopped while running when search.timeout ran out.")


class TrainingRunStatus(CommonStatus):
    CONDITIONS: ClassVar[ConditionSet] = ConditionSet(
        # InputReady: the Dataset/FeatureSet version to train on is validated; Trained: the search
        # produced a model; Registered: the winner is a ModelVersion.
        dependents=(SPEC_VALID, "InputReady", "Trained", "Registered"),
        # Tracked: the run was logged to MLflow (False: why not; training never fails for it).
        informational=("Tracked",),
    )

    attempt: int | None = Field(None, ge=0, description="Current Job attempt, from 1.")
    job_name: str | None = None
    trials: TrialsSummary | None = None
    progress: str | None = Field(None, description="done/total trials, for kubectl get.")
    best_score: float | None = None
    best_family: str | None = None
    metrics: dict[str, float] | None = Field(None, description="Hold-out metrics of the winner.")
    segments: SegmentResult | None = Field(None, description="The winner's hold-out per segment (spec.segments).")
    model_version: str | None = Field(None, description="The registered ModelVersion's name.")
    identical_to: str | None = Field(
        None, description="The ModelVersion whose artifact has the same sha256 as this run's: the model is not "
                          "registered twice.")
    artifact_uri: str | None = None
    start_time: str | None = Field(None, json_schema_extra={"format": "date-time"})
    completion_time: str | None = Field(None, json_schema_extra={"format": "date-time"})
