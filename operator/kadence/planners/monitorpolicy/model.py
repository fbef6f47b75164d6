"""What the MonitorPolicy planner reads and returns: the context the handler resolves, the
observed Jobs and results, the plan, and the names and annotations its children carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from ...domain.monitoring.retrain import Feedback, RetrainInputs, RunState, training_spec_hash
from ...domain.monitoring.triggers import DatasetVersionInfo
from ...api.monitorpolicy import MonitorPolicyStatus
from ..plan import Plan, StatusPatch
from ...api import keys

COMPONENT = "monitor"
COMPARE = "compare"
RETRAIN = "retrain"
HISTORY_LIMIT = 20
RETRAINS_LIMIT = 50
VERDICTS_LIMIT = 20
RUNNING_RECHECK_S = 15.0
RETRAIN_TRIGGER_ANNOTATION = keys.RETRAIN_TRIGGER_ANNOTATION
RETRAIN_CAUSE_ANNOTATION = keys.RETRAIN_CAUSE_ANNOTATION
CAUSED_BY_ANNOTATION = keys.CAUSED_BY_ANNOTATION
EVALUATION_ANNOTATION = keys.EVALUATION_ANNOTATION
RETRAINED_BY_LABEL = keys.RETRAINED_BY_LABEL
RESULT_KEY_ANNOTATION = keys.RESULT_KEY_ANNOTATION
DATA_VERSION_ANNOTATION = keys.DATA_VERSION_ANNOTATION
SLOT_ANNOTATION = keys.SLOT_ANNOTATION
CANDIDATE_ANNOTATION = keys.CANDIDATE_ANNOTATION


@dataclass(frozen=True)
class ModelInfo:
    model_version: str  # the ModelVersion object's name
    version: str  # the version label the model server writes into its logs
    uri: str
    sha256: str
    holdout_metrics: dict[str, float] = field(default_factory=dict)
    reference_uri: str | None = None  # profile.json of its training data
    target: str | None = None
    classes: list | None = None
    dataset: str | None = None
    dataset_version: str | None = None
    dataset_rows: int | None = None
    inputs: list[str] | None = None  # the signature's input columns: the features drift is judged on
    training_run: str | None = None  # lineage.trainingRun
    estimation_reference: dict | None = None  # spec.estimationReference (uri, sha256, rows): its hold-out
    model: str | None = None  # spec.model: the registry name (an alert's model label)
    personal: tuple[str, ...] = ()  # signature inputs with pii: logged as keyed hashes


@dataclass(frozen=True)
class RetrainData:
    """The data a retrain reads, as the handler found it: the Dataset behind the retrain spec
    (directly, or through its FeatureSet), whether it folds this policy's feedback in, and what
    has been built from it."""

    dataset: str
    feature_set: str | None = None
    opts_in: bool = False  # the Dataset lists this policy in spec.feedback.from
    latest_version: str | None = None
    feedback_in: dict[str, Feedback] = field(default_factory=dict)  # Dataset version -> this policy's feedback in it
    versions: tuple[str, ...] = ()  # kept Dataset versions, newest first
    feature_versions: dict[str, str] = field(default_factory=dict)  # Dataset version -> FeatureSet version
    ingest_failure: str | None = None  # why the ingest of the published feedback failed

    def version_with(self, sha256: str) -> str | None:
        """The newest Dataset version holding the feedback export `sha256`."""
        return next((v for v in self.versions if (f := self.feedback_in.get(v)) is not None and f.sha256 == sha256),
                    None)

    def inputs(self, dataset_version: str | None, spec: dict) -> RetrainInputs:
        """The inputs of a retrain on `dataset_version` (and the FeatureSet's materialization of it)."""
        return RetrainInputs(
            dataset=self.dataset, dataset_version=dataset_version, spec_hash=training_spec_hash(spec),
            feature_set=self.feature_set,
            feature_set_version=self.feature_versions.get(dataset_version) if self.feature_set and dataset_version
            else None,
            feedback=self.feedback_in.get(dataset_version) if dataset_version else None)


@dataclass(frozen=True)
class RetrainRun(RunState):
    created: datetime | None = None


@dataclass
class MonitorContext:
    inference_service_found: bool = True
    production: ModelInfo | None = None
    candidate: ModelInfo | None = None
    latest_dataset: DatasetVersionInfo | None = None
    reference_uri: str | None = None  # spec.drift.reference resolved; overrides the production profile
    retrain_spec: dict | None = None  # TrainingRun spec (wire form) to retrain with
    retrain_data: RetrainData | None = None  # None when the retrain's Dataset cannot be resolved
    production_feedback: Feedback | None = None  # this policy's feedback in the serving model's data version
    model_inputs: list[tuple[str, RetrainInputs]] = field(default_factory=list)  # registered versions' inputs
    retrain_runs: dict[str, RetrainRun] = field(default_factory=dict)  # this policy's retrain TrainingRuns
    spec_problems: dict[str, str] = field(default_factory=dict)  # spec field -> why it cannot be used


@dataclass
class MonitorObservation:
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)  # Job name -> result.json


@dataclass
class MonitorPlan(Plan):
    # a dict of wire names, each field checked against MonitorPolicyStatus as it is written
    status: StatusPatch = field(default_factory=lambda: StatusPatch(MonitorPolicyStatus))
    evaluated: dict | None = None  # the monitor result processed in this pass (for metrics)
    production_gap: dict | None = None
    retrain_trigger: str | None = None  # the primary trigger of a retrain started in this pass
    held_reason: str | None = None  # why a fired trigger did not retrain (NothingNewToLearn included)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
