"""The eight kinds: their names, models and how `kubectl get` shows them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from .batchprediction import BatchPredictionSpec, BatchPredictionStatus
from .common import GROUP
from .dataset import DatasetSpec, DatasetStatus
from .erasurerequest import ErasureRequestSpec, ErasureRequestStatus
from .featureset import FeatureSetSpec, FeatureSetStatus
from .inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from .modelversion import ModelVersionSpec, ModelVersionStatus
from .monitorpolicy import MonitorPolicySpec, MonitorPolicyStatus
from .trainingrun import TrainingRunSpec, TrainingRunStatus


def condition_column(name: str, condition: str) -> dict:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{condition}")].status',
    }


def column(name: str, json_path: str, type_: str = "string", priority: int = 0, description: str = "") -> dict:
    entry = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        entry["priority"] = priority
    if description:
        entry["description"] = description
    return entry


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
READY = condition_column("Ready", "Ready")
REASON = {
    "name": "Reason",
    "type": "string",
    "priority": 1,
    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
}


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[dict, ...]
    description: str
    categories: tuple[str, ...] = field(default=("kadence",))

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


KINDS: tuple[Kind, ...] = (
    Kind(
        kind="Dataset",
        plural="datasets",
        short_names=("dset",),
        spec=DatasetSpec,
        status=DatasetStatus,
        description="A versioned, validated source of tabular data.",
        columns=(
            column("Version", ".status.latestVersion"),
            column("Rows", ".status.latestRows", "integer"),
            condition_column("Validated", "Validated"),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="FeatureSet",
        plural="featuresets",
        short_names=("fs",),
        spec=FeatureSetSpec,
        status=FeatureSetStatus,
        description="Feature definitions compiled into one transformer for training and serving.",
        columns=(
            column("Dataset", ".spec.datasetRef.name"),
            column("Version", ".status.latestVersion"),
            column("Data-Version", ".status.datasetVersion", priority=1),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="TrainingRun",
        plural="trainingruns",
        short_names=("tr",),
        spec=TrainingRunSpec,
        status=TrainingRunStatus,
        description="An AutoML training run that registers its winner as a ModelVersion.",
        columns=(
            column("Phase", ".status.phase"),
            column("Trials", ".status.progress"),
            column("Metric", ".spec.objective.metric"),
            column("Best", ".status.bestScore", "number"),
            column("Model-Version", ".status.modelVersion"),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="ModelVersion",
        plural="modelversions",
        short_names=("mv",),
        spec=ModelVersionSpec,
        status=ModelVersionStatus,
        description="A registered model with its artifact, metrics and lineage.",
        columns=(
            column("Model", ".spec.model"),
            column("Version", ".spec.version", "integer"),
            column("Stage", ".status.stage"),
            column("Requested", ".status.requestedStage",
                   description="The stage asked for: spec.stage, or the operator's kadence.dev/stage-request"),
            column("Metric", ".status.metricSummary"),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="InferenceService",
        plural="inferenceservices",
        short_names=("kisvc",),
        spec=InferenceServiceSpec,
        status=InferenceServiceStatus,
        description="A served model with canary rollouts, shadow traffic and prediction logging.",
        columns=(
            column("URL", ".status.url"),
            column("Stable", ".status.stableVersion", "integer"),
            column("Canary", ".status.canaryVersion", "integer"),
            column("Weight", ".status.canaryWeight", "integer"),
            column("Phase", ".status.phase"),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="MonitorPolicy",
        plural="monitorpolicies",
        short_names=("mp",),
        spec=MonitorPolicySpec,
        status=MonitorPolicyStatus,
        description="Drift and quality monitoring of an InferenceService, with retraining on breach.",
        columns=(
            column("Service", ".spec.inferenceServiceRef.name"),
            column("Batch", ".spec.batchPredictionRef.name", priority=1),
            column("Metric", ".status.metricSummary"),
            column("Drift", ".status.driftSummary"),
            column("Phase", ".status.phase"),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="BatchPrediction",
        plural="batchpredictions",
        short_names=("bp",),
        spec=BatchPredictionSpec,
        status=BatchPredictionStatus,
        description="A table scored by a registered model: once, on each new Dataset version, or on a schedule.",
        columns=(
            column("Model-Version", ".status.modelVersion"),
            column("Data-Version", ".status.datasetVersion"),
            column("Last-Run", ".status.lastRun"),
            column("Rows", ".status.lastRows", "integer"),
            column("Next-Run", ".status.nextRunAt", priority=1),
            column("Phase", ".status.phase"),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        kind="ErasureRequest",
        plural="erasurerequests",
        short_names=("er",),
        spec=ErasureRequestSpec,
        status=ErasureRequestStatus,
        description="A subject's rows erased from prediction logs, feedback exports and Dataset snapshots, and "
                    "kept out of later versions (GDPR's right to erasure), with an audit record.",
        columns=(
            column("Column", ".spec.match.column"),
            column("Erased-Rows", ".status.erasedRows", "integer"),
            column("Audit", ".status.auditUri", priority=1),
            column("Phase", ".status.phase"),
            READY,
            REASON,
            AGE,
        ),
    ),
)

BY_KIND = {k.kind: k for k in KINDS}
