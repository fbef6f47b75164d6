"""What a MonitorPolicy watches: an InferenceService, or a BatchPrediction (issue 21).

Either way the monitor Job reads prediction records and feedback in the same layout, under
predictions/<namespace>/<stream>/ and feedback/<namespace>/<stream>/: a model server writes them under
its InferenceService's name, a batch run under `batch.<name>` (workloads.batch_task.prediction_stream),
keyed by the scored rows' entity ids. A BatchPrediction names its model and version or stage as an
InferenceService does, so the version judged is resolved the same way."""

from __future__ import annotations

from dataclasses import dataclass

from ..api.monitorpolicy import MonitorPolicySpec
from ..workloads.batch_task import prediction_stream


@dataclass(frozen=True)
class Watched:
    kind: str  # InferenceService or BatchPrediction
    name: str
    stream: str  # the folder of its predictions and feedback

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def watched(spec: MonitorPolicySpec) -> Watched:
    if spec.inference_service_ref is not None:
        return Watched("InferenceService", spec.inference_service_ref.name, spec.inference_service_ref.name)
    name = spec.batch_prediction_ref.name
    return Watched("BatchPrediction", name, prediction_stream(name))
