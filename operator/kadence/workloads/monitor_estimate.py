"""The monitor's estimation part: the serving model's performance estimated without labels
over the drift window (`kadence.domain.monitoring.estimation`), concept drift on the quality
window's labelled predictions, and label and prediction drift against the model's hold-out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.monitorpolicy import ConceptDriftStatus, EstimateStatus, OutputDriftStatus
from ..domain.monitoring import policy as verdicts
from ..domain.monitoring.drift import DriftSettings, evaluate_drift, reference_from_sample
from ..domain.monitoring.estimation import (
    ConfidenceEstimator,
    EstimationError,
    LossEstimator,
    StoredReference,
    concept_drift,
    read_reference,
    realized_loss_spread,
)
from ..domain.monitoring.quality import task_of
from .monitor_task import MonitorTask


@dataclass
class EstimationOutcome:
    estimate: EstimateStatus | None = None
    verdict: verdicts.Decision | None = None
    concept_drift: ConceptDriftStatus | None = None
    label_drift: OutputDriftStatus | None = None
    prediction_drift: OutputDriftStatus | None = None


def load_estimation_reference(task: MonitorTask, store) -> StoredReference:
    from ..serving.artifact import ArtifactRefused, load_verified_bytes

    ref = task.estimation_reference
    try:
        return read_reference(load_verified_bytes(ref.uri, ref.sha256, store))
    except FileNotFoundError:
        raise EstimationError(f"the model's estimation reference {ref.uri} is missing") from None
    except ArtifactRefused as error:
        raise EstimationError(str(error)) from error


def _rows_of_model(task: MonitorTask, log) -> tuple[Any, Any]:
    """The drift window's predictions made by the model the reference belongs to."""
    if task.estimation_version is None:
        return log.meta, log.inputs
    keep = (log.meta["model_version"].astype(str) == task.estimation_version).to_numpy()
    return log.meta[keep].reset_index(drop=True), log.inputs[keep].reset_index(drop=True)


def _probabilities(meta) -> list | None:
    values = meta["probabilities"].tolist()
    return None if any(v is None for v in values) else values


def _fit(reference: StoredReference, regression: bool, classes: list | None):
    if regression:
        if reference.inputs is None:
            raise EstimationError("the model's hold-out inputs were not kept (a FeatureSet whose raw rows could not "
                                  "be read back): the loss model has nothing to learn from")
        return LossEstimator.fit(reference.inputs, reference.predictions, reference.labels)
    if reference.probabilities is None:
        raise EstimationError("the model gives no probabilities: confidence-based estimation needs them")
    if not classes:
        raise EstimationError("the model's classes are unknown (its signature lists none)")
    return ConfidenceEstimator.fit(reference.labels, reference.probabilities, classes)


def _estimate(estimator, regression: bool, meta, inputs):
    if regression:
        return estimator.estimate(inputs, meta["prediction"].tolist())
    probabilities = _probabilities(meta)
    if probabilities is None and len(meta):
        raise EstimationError("the served predictions were logged without probabilities")
    return estimator.estimate(meta["prediction"].tolist(), probabilities or [])


def output_drift(name: str, reference_values: list, current_values: list, settings: DriftSettings
                 ) -> OutputDriftStatus:
    """One column's drift (the target, or the prediction) with the policy's drift method."""
    import pandas as pd

    reference = reference_from_sample(pd.DataFrame({name: reference_values}))
    result = evaluate_drift(reference, pd.DataFrame({name: current_values}), settings, [name]).features[0]
    message = result.message or (f"{name} {'drifted' if result.drifted else 'did not drift'}: {result.method} "
                                 f"{result.score:.4g} (threshold {result.threshold:.4g}) over {result.current_count} "
                                 f"against {result.reference_count} of the hold-out")
    return OutputDriftStatus(method=result.method, score=result.score, threshold=result.threshold,
                             drifted=result.drifted, count=result.current_count, message=message)


def estimate_performance(task: MonitorTask, store, log, labelled, realized: float | None) -> EstimationOutcome:
    """The estimate over the drift window and its verdict; with labels, concept drift (realized
    against the estimate on the same labelled rows) and label drift; prediction drift."""
    performance = task.performance
    metric = performance.metric
    regression = task_of(metric) == "regression"
    method = "DLE" if regression else "CBPE"
    outcome = EstimationOutcome()
    meta, inputs = _rows_of_model(task, log)
    try:
        if task.estimation_reference is None:
            raise EstimationError("the serving model has no estimation reference (trained before it was kept)")
        reference = load_estimation_reference(task, store)
        estimator = _fit(reference, regression, task.classes)
        estimate = _estimate(estimator, regression, meta, inputs)
    except EstimationError as error:
        outcome.estimate = EstimateStatus(metrics={}, predictions=len(meta), method=method, unavailable=str(error))
        outcome.verdict = verdicts.judge_estimate(metric=metric, threshold=performance.threshold, value=None,
                                                  predictions=len(meta), min_predictions=performance.min_labelled,
                                                  unavailable_because=str(error))
        return outcome
    outcome.estimate = EstimateStatus(metrics=estimate.metrics, predictions=estimate.predictions, method=method,
                                      unavailable=estimate.unavailable.get(metric))
    outcome.verdict = verdicts.judge_estimate(
        metric=metric, threshold=performance.threshold, value=estimate.metrics.get(metric),
        predictions=estimate.predictions, min_predictions=performance.min_labelled,
        unavailable_because=estimate.unavailable.get(metric))
    settings = DriftSettings.from_policy(task.drift) if task.drift is not None else DriftSettings()
    if len(meta):
        outcome.prediction_drift = output_drift("prediction", reference.predictions, meta["prediction"].tolist(),
                                                settings)
    joined = labelled.joined if labelled is not None else None
    if joined is not None and len(joined):
        outcome.label_drift = output_drift("label", reference.labels, joined["label"].tolist(), settings)
        if realized is not None and len(joined) >= performance.min_labelled:
            outcome.concept_drift = _concept_drift(task, estimator, regression, labelled, realized)
    return outcome


def _concept_drift(task: MonitorTask, estimator, regression: bool, labelled, realized: float
                   ) -> ConceptDriftStatus | None:
    joined, metric = labelled.joined, task.performance.metric
    try:
        if regression:
            rows = joined[["request_id"]].merge(labelled.inputs, on="request_id", how="left")
            on_labelled = estimator.estimate(rows.drop(columns=["request_id"]), joined["prediction"].tolist())
            spread = realized_loss_spread(metric, joined["label"].tolist(), joined["prediction"].tolist())
        else:
            probabilities = _probabilities(joined)
            if probabilities is None:
                return None
            on_labelled = estimator.estimate(joined["prediction"].tolist(), probabilities)
            spread = estimator.realized_spread(metric, joined["prediction"].tolist(), probabilities)
    except EstimationError:
        return None
    estimated = on_labelled.metrics.get(metric)
    if estimated is None:
        return None
    verdict = concept_drift(metric=metric, estimated=estimated, realized=realized, spread=spread,
                            margin=task.performance.concept_drift_margin, labelled=len(joined))
    return ConceptDriftStatus(detected=verdict.detected, metric=metric, estimated=verdict.estimated,
                              realized=verdict.realized, gap=verdict.gap, noise=verdict.noise, margin=verdict.margin,
                              labelled=verdict.labelled, message=verdict.message)
