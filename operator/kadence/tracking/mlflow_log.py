"""The training Job logs its finished search to MLflow: one run per TrainingRun attempt
(experiment = the model's name) with a child run per trial, the winner's hold-out metrics, the
model as an MLflow model (skops, signature, input example), the Dataset/FeatureSet versions as
dataset inputs and tags naming the Kubernetes objects.

MLflow being down never fails training: each attempt is bounded (few HTTP retries, a short
timeout), a failed attempt's partial run is marked FAILED, and after `ATTEMPTS` the outcome
says why (the TrainingRun's Tracked condition shows it; Ready does not depend on it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..domain.training.search import FAILED, PRUNED, TIMED_OUT
from .model import (
    TAG_ATTEMPT,
    TAG_TRIAL,
    MlflowTarget,
    TrackingOutcome,
    owner_tags,
    param_value,
    trial_metrics,
)

ATTEMPTS = 3
BACKOFF_S = (2.0, 5.0)
# Bounded per attempt: MLflow's own client retries 7 times with a doubling backoff by default.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@dataclass
class TrainingRecord:
    """What the training Job knows once the winner is refitted and stored."""

    target: MlflowTarget
    namespace: str
    run: str
    run_uid: str | None
    attempt: int
    task: str
    metric: str
    direction: str
    strategy: str
    trials: list[Any]  # domain.training.search.TrialRecord
    winner: Any  # workloads.train_task.BestTrial: the best trial, or the ensemble of trials chosen over it
    holdout: dict[str, float]
    pipeline: Any  # the served pipeline (raw columns in)
    input_example: Any | None  # a few raw hold-out rows (pandas), None when not available
    skops_types: list[str]  # the trusted non-default types the pipeline's skops file holds
    inputs: list[tuple[str, str, str, str]]  # (kind, name, version, uri) of each data input
    artifact_uri: str
    artifact_sha256: str


def log_training(record: TrainingRecord, log: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep) -> TrackingOutcome:
    for name, value in HTTP_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return TrackingOutcome(tracked=False, reason="MlflowUnavailable",
                               message="the mlflow client is not installed in the workload image "
                                       "(pip install 'kadence[mlflow]')")
    from mlflow.exceptions import MlflowException

    signature = model_signature(record, log)
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            run_id, experiment_id = _log_once(record, signature)
            log(f"mlflow: logged run {run_id} (experiment {record.target.experiment}, {len(record.trials)} trials)")
            return TrackingOutcome(tracked=True, reason="Logged", run_id=run_id, experiment_id=experiment_id,
                                   attempts=attempt)
        except MlflowException as error:
            last = f"{error.error_code}: {error.message}"
            if refused(error):  # e.g. the experiment was deleted: asking again cannot help
                log(f"mlflow: the server refused the run: {last}")
                return TrackingOutcome(tracked=False, reason="MlflowRejected", message=last[:1500],
                                       attempts=attempt)
        except Exception as error:  # connection refused, timeouts, the artifact store: all retried
            last = f"{type(error).__name__}: {error}"
        log(f"mlflow: attempt {attempt} of {ATTEMPTS} failed: {last}")
        if attempt < ATTEMPTS:
            sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
    return TrackingOutcome(tracked=False, reason="MlflowUnavailable", message=last[:1500], attempts=ATTEMPTS)


def refused(error) -> bool:
    """An MlflowException that another attempt cannot fix (a 4xx other than a timeout or throttling)."""
    status = error.get_http_status_code()
    return 400 <= status < 500 and status not in (408, 429)


def model_signature(record: TrainingRecord, log: Callable[[str], None]):
    """The MLflow signature from the input example and the pipeline's predictions on it (computed
    once, outside the retries: it does not depend on the server)."""
    if record.input_example is None:
        return None
    from mlflow.models import infer_signature

    try:
        return infer_signature(record.input_example, record.pipeline.predict(record.input_example))
    except Exception as error:  # noqa: BLE001 - the model is still logged, without a signature
        log(f"mlflow: no signature: {type(error).__name__}: {error}")
        return None


def pip_requirements() -> list[str]:
    """What loading the logged model needs (given, not inferred: MLflow's inference loads the model
    in a subprocess, seconds per run). kadence: the FeatureSet transformer's types are its own."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("kadence", "scikit-learn", "skops", "numpy", "pandas")]


def _log_once(record: TrainingRecord, signature) -> tuple[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=record.target.tracking_uri)
    experiment = client.get_experiment_by_name(record.target.experiment)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(
        record.target.experiment)
    tags = {**owner_tags(record.namespace, "TrainingRun", record.run, record.run_uid),
            TAG_ATTEMPT: str(record.attempt), "mlflow.runName": f"{record.run}-{record.attempt}"}
    parent = client.create_run(experiment_id, tags=tags)
    run_id = parent.info.run_id
    try:
        _log_parent(client, run_id, record)
        for trial in record.trials:
            _log_trial(client, experiment_id, run_id, record, trial, tags)
        _log_model(record, run_id, signature)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: BLE001 - the server is likely the reason we are here
            pass
        raise
    return run_id, experiment_id


def _log_parent(client, run_id: str, record: TrainingRecord) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    winner = record.winner
    params = [Param("task", record.task), Param("metric", record.metric), Param("direction", record.direction),
              Param("strategy", record.strategy), Param("best_trial", str(winner.number)),
              Param("family", winner.family),
              *(Param(f"best.{key}", param_value(value)) for key, value in sorted(winner.params.items()))]
    metrics = [Metric(f"holdout_{name}", float(value), now, 0) for name, value in sorted(record.holdout.items())]
    metrics += [Metric(name, value, now, 0) for name, value in trial_metrics(winner.fold_scores, winner.cv_score,
                                                                           record.metric).items()]
    tags = [RunTag("kadence.artifactUri", record.artifact_uri), RunTag("kadence.artifactSha256",
                                                                        record.artifact_sha256)]
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    _log_inputs(client, run_id, record)


def _log_inputs(client, run_id: str, record: TrainingRecord) -> None:
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    inputs = []
    for kind, name, version, uri in record.inputs:
        dataset = MetaDataset(source=resolve_dataset_source(uri), name=f"{kind}/{name}", digest=version[:36])
        inputs.append(DatasetInput(dataset._to_mlflow_entity(),
                                   tags=[InputTag("mlflow.data.context", "training"),
                                         InputTag("kadence.kind", kind), InputTag("kadence.version", version)]))
    client.log_inputs(run_id, datasets=inputs)


def _log_trial(client, experiment_id: str, parent_id: str, record: TrainingRecord, trial, tags: dict) -> None:
    from mlflow.entities import Metric, Param

    child_tags = {**{k: v for k, v in tags.items() if k != "mlflow.runName"},
                  "mlflow.parentRunId": parent_id, TAG_TRIAL: str(trial.number),
                  "mlflow.runName": f"trial-{trial.number}-{trial.family}",
                  "kadence.trialState": trial.state, "kadence.pruned": str(trial.state == PRUNED).lower()}
    if trial.error:
        child_tags["kadence.error"] = param_value(trial.error)[:5000]
    child = client.create_run(experiment_id, tags=child_tags)
    now = int(time.time() * 1000)
    params = [Param("family", trial.family),
              *(Param(key, param_value(value)) for key, value in sorted(trial.params.items()))]
    metrics = [Metric(name, value, now, 0) for name, value in trial_metrics(trial.fold_scores, trial.score,
                                                                          record.metric).items()]
    metrics.append(Metric("duration_seconds", float(trial.duration_s), now, 0))
    client.log_batch(child.info.run_id, metrics=metrics, params=params)
    # MLflow's statuses: a trial stopped at the search's deadline is KILLED, a failed one FAILED
    client.set_terminated(child.info.run_id, {FAILED: "FAILED", TIMED_OUT: "KILLED"}.get(trial.state, "FINISHED"))


def _log_model(record: TrainingRecord, run_id: str, signature) -> None:
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(record.target.tracking_uri)
    # Under the parent run (the fluent API's active run); its status is set by the caller.
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):
        mlflow.sklearn.log_model(record.pipeline, name="model", serialization_format="skops",
                                 skops_trusted_types=record.skops_types or None, signature=signature,
                                 input_example=record.input_example, pip_requirements=pip_requirements())


EXAMPLE_ROWS = 5


def tracked_result(task, search, result, pipeline, holdout_raw, model_bytes: bytes, log: Callable[[str], None]):
    """`result` (a workloads.train_task.TrainResult) logged to `task.mlflow`: with the outcome, and the
    MLflow run in its lineage (the ModelVersion registered from it carries it)."""
    outcome = log_training(training_record(task, search, result, pipeline, holdout_raw, model_bytes), log)
    lineage = result.lineage.model_copy(update={"mlflow_run_id": outcome.run_id}) if outcome.run_id else result.lineage
    return result.model_copy(update={"tracking": outcome, "lineage": lineage})


def training_record(task, search, result, pipeline, holdout_raw, model_bytes: bytes) -> TrainingRecord:
    """The record of a finished `kadence train` (workloads.trainer) for `log_training`."""
    from skops import io as sio

    inputs = [(task.input.kind, task.input.name, task.input.version, task.input.uri)]
    return TrainingRecord(
        target=task.mlflow, namespace=task.namespace, run=task.run, run_uid=task.run_uid, attempt=task.attempt,
        task=task.spec.task, metric=task.spec.objective.metric, direction=search.direction,
        strategy=task.spec.search.strategy, trials=list(search.trials), winner=result.best,
        holdout=result.metrics, pipeline=pipeline,
        input_example=None if holdout_raw is None else holdout_raw.iloc[:EXAMPLE_ROWS].reset_index(drop=True),
        skops_types=sorted(sio.get_untrusted_types(data=model_bytes)), inputs=inputs,
        artifact_uri=result.artifact.uri, artifact_sha256=result.artifact.sha256)
