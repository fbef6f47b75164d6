"""The training workload's work: resolve the data, search, refit, evaluate, write.

Imported by `kadence.workloads.train.run` only (it pulls in pandas, scikit-learn,
Optuna and skops). Reads and writes object storage only.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import __version__
from ..api.modelversion import Artifact, EnsembleMember, EstimationReference, Lineage, Signature, SignatureColumn
from ..api.segments import SegmentResult
from ..api.trainingrun import TrialsSummary
from ..domain.training import artifact as artifacts
from ..domain.training import ensemble as ensembles
from ..domain.training import families as fam
from ..domain.training.evaluation import classification_details, holdout_metrics, residual_summary
from ..domain.training.metrics import direction, make_metric_scorer
from ..domain.training.preprocessing import ColumnSpec, feature_preprocessor, raw_preprocessor
from ..domain.training.search import (
    COMPLETE,
    FAILED,
    PRUNED,
    TIMED_OUT,
    Fold,
    SearchResult,
    SearchSettings,
    TrialRecord,
    fit_weighted,
    run_search,
)
from ..storage import ObjectStore
from ..api.common import parse_duration
from ..engines import EngineError, resolve_engine
from ..engines.search import search_fits
from ..settings import Settings
from .compile_model import compile_winner
from .train_task import BestTrial, Progress, ResultFiles, TrainResult, TrainTask


class TrainingError(RuntimeError):
    """The run cannot succeed with this spec and data; the message says why."""


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def library_versions() -> dict[str, str]:
    import optuna
    import sklearn
    import skops

    return {
        "kadence": __version__,
        "scikit-learn": sklearn.__version__,
        "optuna": optuna.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------- data


def infer_column_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "category"


@dataclass
class TrainingData:
    X: pd.DataFrame  # what the search trains on (raw columns, or features)
    y: pd.Series
    signature_inputs: list[SignatureColumn]  # the raw columns the artifact expects
    raw_columns: list[ColumnSpec] | None  # Dataset route: how to preprocess
    transformer: Any | None  # FeatureSet route: the fitted FeatureSet transformer
    target: str
    dataset: str | None = None  # lineage of a FeatureSet input
    dataset_version: str | None = None
    dataset_uri: str | None = None  # a FeatureSet's dataset snapshot (its rows in the same order)
    times: pd.Series | None = None  # the rows' event times (dataSelection.timeColumn), UTC, NaT where missing
    weights: np.ndarray | None = None  # recency weights (mode RecencyWeighted), mean 1


def read_manifest(store: ObjectStore, prefix_uri: str) -> dict:
    key = store.key_of(prefix_uri) + "manifest.json"
    try:
        return json.loads(store.get_bytes(key))
    except FileNotFoundError:
        raise TrainingError(f"the snapshot {prefix_uri} is incomplete or missing: no manifest.json") from None


def read_verified(store: ObjectStore, key: str, sha256: str | None) -> bytes:
    try:
        data = store.get_bytes(key)
    except FileNotFoundError:
        raise TrainingError(f"{store.uri(key)} does not exist") from None
    if sha256 and artifacts.sha256_hex(data) != sha256:
        raise TrainingError(f"{store.uri(key)} does not match the sha256 recorded in its manifest")
    return data


def _target(frame: pd.DataFrame, target: str | None, task: TrainTask) -> pd.Series:
    if not target:
        raise TrainingError(f"no target column: the {task.input.kind} {task.input.name} names none")
    if target not in frame.columns:
        raise TrainingError(f"the target column {target!r} is not in {task.input.kind} {task.input.name} "
                            f"version {task.input.version} (columns: {', '.join(map(str, frame.columns))})")
    y = frame[target]
    if y.isna().any():
        raise TrainingError(f"the target column {target!r} has {int(y.isna().sum())} missing values")
    if task.spec.task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise TrainingError(f"regression needs a numeric target; {target!r} is {y.dtype}")
    return y


def load_training_data(store: ObjectStore, task: TrainTask) -> TrainingData:
    source = task.input
    manifest = read_manifest(store, source.uri)
    prefix = store.key_of(source.uri)
    data = read_verified(store, prefix + manifest.get("dataFile", "data.parquet"), manifest.get("dataFileSha256"))
    frame = pd.read_parquet(io.BytesIO(data))
    target = source.target or manifest.get("target")
    entity = source.entity_column or manifest.get("entityColumn")
    y = _target(frame, target, task)
    time_column = task.spec.data_selection.time_column if task.spec.data_selection else None
    excluded = {target, entity, time_column}
    if source.kind == "Dataset":
        declared = manifest.get("columns") or [{"name": str(c), "type": infer_column_type(frame[c])} for c in frame.columns]
        inputs = [SignatureColumn(name=c["name"], type=c["type"], pii=c.get("pii") or None)
                  for c in declared if c["name"] not in excluded]
        missing = [c.name for c in inputs if c.name not in frame.columns]
        if missing:
            raise TrainingError(f"columns of the manifest missing from the data: {', '.join(missing)}")
        raw = [ColumnSpec(c.name, c.type) for c in inputs]
        return TrainingData(frame[[c.name for c in inputs]], y, inputs, raw, None, target,
                            times=_event_times(frame, time_column, task))

    # FeatureSet: train on the materialized features; the artifact starts with the
    # FeatureSet's own fitted transformer, so serving computes the very same features.
    described = manifest.get("transformer") or {}
    if not described.get("file"):
        raise TrainingError(f"the FeatureSet snapshot {source.uri} names no transformer")
    transformer_bytes = read_verified(store, prefix + described["file"], described.get("sha256"))
    try:
        transformer = artifacts.loads(transformer_bytes)
    except artifacts.UntrustedArtifact as error:
        raise TrainingError(f"the FeatureSet transformer of {source.uri} was refused: {error}") from error
    feature_columns = manifest.get("featureColumns") or [c for c in frame.columns if c not in excluded]
    missing = [c for c in feature_columns if c not in frame.columns]
    if missing:
        raise TrainingError(f"feature columns missing from {source.uri}: {', '.join(missing)}")
    X = frame[feature_columns]
    non_numeric = [c for c in feature_columns
                   if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
    if non_numeric:
        raise TrainingError(f"FeatureSet features must be numeric; these are not: {', '.join(non_numeric)}")
    input_types = getattr(transformer, "input_types_", None)
    if input_types:
        inputs = [SignatureColumn(name=str(n), type=str(t)) for n, t in input_types.items()]
    else:
        names = getattr(transformer, "feature_names_in_", None)
        if names is None:
            raise TrainingError("the FeatureSet transformer does not name its input columns")
        inputs = [SignatureColumn(name=str(n), type="float") for n in names]
    personal = _personal_columns(store, manifest.get("datasetUri"))
    inputs = [c.model_copy(update={"pii": True}) if c.name in personal else c for c in inputs]
    data = TrainingData(X.astype(float), y, inputs, None, transformer, target,
                        dataset=manifest.get("dataset") or _dataset_name(manifest),
                        dataset_version=manifest.get("datasetVersion"), dataset_uri=manifest.get("datasetUri"))
    if time_column is not None:
        if time_column not in frame.columns and data.dataset_uri:
            # the FeatureSet's rows are its dataset snapshot's, in the same order
            dataset = read_manifest(store, data.dataset_uri)
            raw = pd.read_parquet(io.BytesIO(read_verified(
                store, store.key_of(data.dataset_uri.rstrip("/") + "/") + dataset.get("dataFile", "data.parquet"),
                dataset.get("dataFileSha256"))))
            if len(raw) != len(frame):
                raise TrainingError(f"the dataset snapshot behind {source.uri} has {len(raw)} rows, the FeatureSet "
                                    f"{len(frame)}: the time column {time_column!r} cannot be matched to the rows")
            frame = raw
        data.times = _event_times(frame, time_column, task)
    return data


def _personal_columns(store: ObjectStore, dataset_uri: str | None) -> set[str]:
    """The Dataset columns declared `pii: true` behind a FeatureSet snapshot: a model trained on
    features takes the raw columns as inputs, and the server must hash the personal ones too."""
    if not dataset_uri:
        return set()
    columns = read_manifest(store, dataset_uri.rstrip("/") + "/").get("columns") or []
    return {c["name"] for c in columns if c.get("pii")}


def _event_times(frame: pd.DataFrame, column: str | None, task: TrainTask) -> pd.Series | None:
    if column is None:
        return None
    from ..domain.training.selection import SelectionError, event_times

    if column not in frame.columns:
        raise TrainingError(f"the time column {column!r} (dataSelection.timeColumn) is not in {task.input.kind} "
                            f"{task.input.name} version {task.input.version} (columns: "
                            f"{', '.join(map(str, frame.columns))})")
    try:
        return event_times(frame[column].to_numpy(), column)
    except SelectionError as error:
        raise TrainingError(str(error)) from error


def _dataset_name(manifest: dict) -> str | None:
    """The dataset's name from its snapshot URI .../datasets/<ns>/<name>/<version>/."""
    parts = (manifest.get("datasetUri") or "").rstrip("/").split("/")
    return parts[-2] if len(parts) >= 4 and parts[-4] == "datasets" else None


# ---------------------------------------------------------------- pipeline


def raw_holdout(store: ObjectStore, data: TrainingData, X_test: pd.DataFrame,
                log: Callable[[str], None]) -> pd.DataFrame | None:
    """The hold-out rows as the served pipeline takes them (raw columns). On a FeatureSet,
    read back from its dataset snapshot: `kadence materialize` keeps the snapshot's row order."""
    if data.transformer is None:
        return X_test
    if not data.dataset_uri:
        log("compiled: not compiled: the FeatureSet manifest names no datasetUri to read raw hold-out rows from")
        return None
    try:
        manifest = read_manifest(store, data.dataset_uri)
        prefix = store.key_of(data.dataset_uri.rstrip("/") + "/")
        raw_bytes = read_verified(store, prefix + manifest.get("dataFile", "data.parquet"),
                                  manifest.get("dataFileSha256"))
    except TrainingError as error:
        log(f"compiled: not compiled: the raw hold-out rows cannot be read: {error}")
        return None
    raw = pd.read_parquet(io.BytesIO(raw_bytes))
    if len(raw) != len(data.X):
        log(f"compiled: not compiled: the dataset snapshot has {len(raw)} rows, the FeatureSet {len(data.X)}")
        return None
    names = [c.name for c in data.signature_inputs]
    return raw.iloc[np.asarray(X_test.index)][names].reset_index(drop=True)


def segment_metric(spec) -> str:
    """The metric judged per segment: the objective when the monitoring metrics have it (so a
    TrainingRun and a MonitorPolicy gate the same figure), else accuracy or rmse."""
    from ..domain.monitoring.quality import CLASSIFICATION_METRICS, REGRESSION_METRICS

    if spec.objective.metric in CLASSIFICATION_METRICS + REGRESSION_METRICS:
        return spec.objective.metric
    return "accuracy" if spec.task == "classification" else "rmse"


def holdout_segments(spec, raw: pd.DataFrame, X_test: pd.DataFrame, y_test, y_pred, estimator, X_test_model,
                     classes) -> SegmentResult:
    """spec.segments on the hold-out: each column from the raw hold-out rows (the served inputs),
    else the training columns; a column in neither is reported as skipped."""
    from ..domain.monitoring.fairness import evaluate_segments

    policy = spec.segments

    def values(column: str):
        for frame in (raw, X_test):
            if column in frame.columns:
                return frame[column].tolist()
        return None

    probabilities = estimator.predict_proba(X_test_model).tolist() if hasattr(estimator, "predict_proba") else None
    _, _, wire = evaluate_segments(
        segment_metric(spec), list(y_test), list(y_pred), columns={c: values(c) for c in policy.all_columns},
        sensitive=policy.sensitive_attribute, min_segment_metric=policy.min_segment_metric,
        max_disparity=policy.max_disparity, min_rows=policy.min_rows, probabilities=probabilities,
        classes=list(classes) if classes is not None else None)
    return SegmentResult.model_validate(wire)


def write_estimation_reference(store: ObjectStore, prefix: str, estimator, X_test_model, y_test, y_pred,
                               raw_inputs: pd.DataFrame | None) -> EstimationReference:
    """The hold-out predictions with their labels (probabilities for classifiers, the raw inputs
    for regressors), the reference a MonitorPolicy estimates performance from without labels."""
    from ..domain.monitoring.estimation import reference_frame

    probabilities = estimator.predict_proba(X_test_model) if hasattr(estimator, "predict_proba") else None
    data = reference_frame(y_test, y_pred, probabilities, raw_inputs)
    uri = store.put_bytes(f"{prefix}estimation-reference.parquet", data, "application/vnd.apache.parquet")
    return EstimationReference(uri=uri, sha256=artifacts.sha256_hex(data), rows=len(y_test))


def make_preprocessor(data: TrainingData):
    if data.raw_columns is not None:
        return raw_preprocessor(data.raw_columns)
    return feature_preprocessor(bool(data.X.isna().any().any()))


def fit_transform(preprocessor, X_train, X_other):
    if preprocessor is None:
        return np.asarray(X_train, dtype=float), np.asarray(X_other, dtype=float)
    from sklearn.base import clone

    fitted = clone(preprocessor).fit(X_train)
    return fitted.transform(X_train), fitted.transform(X_other)


def apply_selection(data: TrainingData, task: TrainTask, log: Callable[[str], None]) -> TrainingData:
    """dataSelection: keep the newest rows (Recent) or weight every row by recency
    (RecencyWeighted); nothing to do without a time column. Row labels (the index) are kept:
    they are positions in the snapshot, which the FeatureSet's raw hold-out relies on."""
    from ..domain.training.selection import SelectionError, recency_weights, recent_rows

    selection = task.spec.data_selection
    if selection is None or data.times is None:
        return data
    data.times.index = data.X.index
    try:
        if selection.mode == "Recent":
            recent = selection.recent
            positions = recent_rows(data.times, parse_duration(recent.period) if recent.period else None,
                                    recent.rows)
            if len(positions) == 0:
                raise TrainingError(f"no row has a time in the column {selection.time_column!r}: mode Recent "
                                    "selects none")
            log(f"data selection: the newest {len(positions)} of {len(data.X)} rows "
                f"({'period ' + recent.period if recent.period else f'rows {recent.rows}'})")
            data.X, data.y = data.X.iloc[positions], data.y.iloc[positions]
            data.times = data.times.iloc[positions]
        elif selection.mode == "RecencyWeighted":
            data.weights = pd.Series(recency_weights(data.times, parse_duration(selection.half_life)),
                                     index=data.X.index)
            log(f"data selection: every row weighted by recency, half-life {selection.half_life}")
    except SelectionError as error:
        raise TrainingError(str(error)) from error
    return data


def split(data: TrainingData, task: TrainTask):
    from sklearn.model_selection import train_test_split

    spec = task.spec
    stratify = None
    if spec.task == "classification":
        counts = data.y.value_counts()
        if len(counts) < 2:
            raise TrainingError(f"classification needs at least two classes; the target has only {list(counts.index)}")
        if spec.split.stratify:
            stratify = data.y
        smallest = int(counts.min())
        needed = spec.cv_folds + 1
        if smallest < needed:
            raise TrainingError(
                f"the class {counts.idxmin()!r} has {smallest} rows; {spec.cv_folds}-fold cross-validation "
                f"plus a hold-out needs at least {needed} rows of every class")
    if len(data.y) < 2 * spec.cv_folds:
        raise TrainingError(f"{len(data.y)} rows are too few for {spec.cv_folds}-fold cross-validation")
    if data.times is not None:
        return time_split(data, task)
    return train_test_split(data.X, data.y, test_size=spec.split.test_fraction, stratify=stratify,
                            random_state=spec.split.seed)


def time_split(data: TrainingData, task: TrainTask):
    """The hold-out is the newest rows (the regime the model will serve); the rest train."""
    from ..domain.training.selection import time_holdout

    spec = task.spec
    parts = time_holdout(data.times.reset_index(drop=True), spec.split.test_fraction)
    X_train, X_test = data.X.iloc[parts.train], data.X.iloc[parts.holdout]
    y_train, y_test = data.y.iloc[parts.train], data.y.iloc[parts.holdout]
    if spec.task == "classification":
        counts = y_train.value_counts()
        if len(counts) < 2 or int(counts.min()) < spec.cv_folds:
            raise TrainingError(
                f"the rows before the newest {len(X_test)} (the hold-out, by {spec.data_selection.time_column!r}) "
                f"hold {dict(counts)} per class; {spec.cv_folds}-fold cross-validation needs at least "
                f"{spec.cv_folds} rows of two classes or more")
    return X_train, X_test, y_train, y_test


def _period(times: pd.Series | None) -> dict[str, str | None]:
    known = times.dropna() if times is not None else None
    if known is None or known.empty:
        return {"from": None, "to": None}
    return {"from": known.min().strftime("%Y-%m-%dT%H:%M:%SZ"), "to": known.max().strftime("%Y-%m-%dT%H:%M:%SZ")}


def selection_summary(data: TrainingData, task: TrainTask, X_train, X_test) -> dict[str, Any] | None:
    """What trained and what scored the model, by time (metrics.json, the log)."""
    from ..domain.training.selection import effective_rows

    selection = task.spec.data_selection
    if selection is None:
        return None
    weights = data.weights.loc[X_train.index].to_numpy() if data.weights is not None else None
    summary: dict[str, Any] = {"mode": selection.mode, "timeColumn": selection.time_column,
                               "rows": int(len(data.X)), "effectiveTrainingRows": round(effective_rows(
                                   weights, len(X_train)), 1)}
    if data.times is not None:
        from ..domain.training.selection import RECENT_VALIDATION_SHARE, time_order

        train_times = data.times.loc[X_train.index].reset_index(drop=True)
        newest = time_order(train_times)[len(train_times) - max(task.spec.cv_folds, math.ceil(
            RECENT_VALIDATION_SHARE * len(train_times))):]
        summary["train"] = _period(train_times)
        summary["validation"] = _period(train_times.iloc[newest])  # what the CV folds score on
        summary["holdout"] = _period(data.times.loc[X_test.index])
    return summary


def make_folds(preprocessor, X_train, y_train, task: TrainTask, weights: np.ndarray | None = None,
               times: pd.Series | None = None) -> list[Fold]:
    """Random (stratified) folds; with the rows' times, folds that validate on the newest half
    of the training rows only (`selection.recent_validation_folds`), training on the rest."""
    from sklearn.model_selection import KFold, StratifiedKFold

    spec = task.spec
    y_values = np.asarray(y_train)
    if times is not None:
        from ..domain.training.selection import recent_validation_folds

        splits = recent_validation_folds(times.reset_index(drop=True), y_values, spec.cv_folds, spec.split.seed,
                                         stratify=spec.task == "classification")
    else:
        if spec.task == "classification":
            splitter = StratifiedKFold(n_splits=spec.cv_folds, shuffle=True, random_state=spec.split.seed)
        else:
            splitter = KFold(n_splits=spec.cv_folds, shuffle=True, random_state=spec.split.seed)
        splits = list(splitter.split(X_train, y_values))
    folds = []
    for train_index, valid_index in splits:
        Xt, Xv = fit_transform(preprocessor, X_train.iloc[train_index], X_train.iloc[valid_index])
        folds.append(Fold(Xt, y_values[train_index], Xv, y_values[valid_index],
                          None if weights is None else weights[train_index],
                          None if weights is None else weights[valid_index]))
    return folds


def resolve_spaces(task: TrainTask, n_classes: int, training_rows: int) -> tuple[dict, list[str]]:
    spec = task.spec
    metric = spec.objective.metric
    if spec.search.families:
        spaces = {}
        for entry in spec.search.families:
            try:
                fam.check_family_fits(entry.name, spec.task, metric, n_classes)
                spaces[entry.name] = fam.resolve_space(entry.name, spec.task, entry.space)
            except fam.FamilyError as error:
                raise TrainingError(str(error)) from error
        return spaces, []
    chosen, left_out = fam.default_families(spec.task, metric, n_classes, training_rows)
    return {name: fam.resolve_space(name, spec.task) for name in chosen}, left_out


def assemble_pipeline(data: TrainingData, fitted_preprocessor, fitted_estimator):
    from sklearn.pipeline import Pipeline

    steps = []
    if data.transformer is not None:
        steps.append(("features", data.transformer))
    if fitted_preprocessor is not None:
        steps.append(("preprocess", fitted_preprocessor))
    steps.append(("model", fitted_estimator))
    return Pipeline(steps)


def model_input(fitted_preprocessor, X) -> np.ndarray:
    return np.asarray(X, dtype=float) if fitted_preprocessor is None else fitted_preprocessor.transform(X)


def fit_chosen(preprocessor, search: SearchResult, ensemble, X, y, weights: np.ndarray | None, task: str, metric: str,
               settings: SearchSettings, classes):
    """Fit the chosen model (the best trial, or the ensemble's members) and its preprocessor on
    the rows X, y with the sample weights given: (fitted preprocessor, estimator)."""
    import warnings

    from sklearn.base import clone

    fitted_preprocessor = None if preprocessor is None else clone(preprocessor).fit(X)
    X_model = model_input(fitted_preprocessor, X)

    def fit(family: str, params: dict):
        estimator = fam.build_estimator(family, task, params, metric=metric, seed=settings.seed,
                                        threads=available_cpus(), scale=settings.scale, n_classes=settings.n_classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_weighted(estimator, X_model, np.asarray(y), weights, seed=settings.seed)

    best = search.best
    if ensemble is None:
        return fitted_preprocessor, fit(best.family, best.params)
    by_number = {t.number: t for t in search.trials}
    members = [(f"trial{n + 1}_{by_number[n].family}", fit(by_number[n].family, by_number[n].params))
               for n in sorted(ensemble.weights)]
    return fitted_preprocessor, ensembles.build_voting(task, members, [ensemble.weights[n] for n in
                                                                       sorted(ensemble.weights)], classes)


def refit_on_all(data: TrainingData, X_train, X_test, y_train, y_test, fit_winner, log: Callable[[str], None]):
    """split.refit: the chosen model fitted again on the training and hold-out rows together,
    each row weighted as dataSelection weights it over all the rows (recency weights are computed
    over every row before the split). Returns the pipeline to register and the metrics file's
    `refit` entry."""
    X_all = pd.concat([X_train, X_test])
    y_all = pd.concat([y_train, y_test])
    weights = data.weights.loc[X_all.index].to_numpy() if data.weights is not None else None
    fitted_preprocessor, estimator = fit_winner(X_all, y_all, weights)
    log(f"refit: the chosen model fitted again on {len(X_all)} rows (training {len(X_train)} + hold-out "
        f"{len(X_test)}); the metrics above are those of the model that did not see the hold-out")
    return assemble_pipeline(data, fitted_preprocessor, estimator), {
        "rows": int(len(X_all)), "holdoutRows": int(len(X_test)), "weighted": weights is not None}


# ---------------------------------------------------------------- the run


def _trial_line(record: TrialRecord, result: SearchResult, metric: str) -> str:
    params = json.dumps(record.params, sort_keys=True, default=str)
    score = "-" if record.score is None else f"{record.score:.6f}"
    best = "-" if result.best is None else f"{result.best.score:.6f}"
    line = (f"trial {record.number + 1}/{result.planned} family={record.family} params={params} "
            f"cv_{metric}={score} folds={len(record.fold_scores)} duration={record.duration_s:.2f}s "
            f"state={record.state} best={best}")
    if record.error:
        line += f" error={record.error!r}"
    return line


class ProgressWriter:
    """Writes progress.json every `every` trials and at least every `seconds`."""

    def __init__(self, store: ObjectStore, key: str, every: int, seconds: float = 5.0):
        self.store, self.key, self.every, self.seconds = store, key, max(1, every), seconds
        self.last_write = 0.0

    def write(self, progress: Progress) -> None:
        self.store.put_bytes(self.key, json.dumps(progress.wire()).encode(), "application/json")
        self.last_write = time.monotonic()

    def maybe_write(self, result: SearchResult) -> None:
        done = len(result.trials)
        if done % self.every == 0 or time.monotonic() - self.last_write >= self.seconds:
            self.write(progress_of(result, "Searching"))


def progress_of(result: SearchResult, phase: str) -> Progress:
    states = [t.state for t in result.trials]
    return Progress(
        done=len(result.trials), total=result.planned, pruned=states.count(PRUNED), failed=states.count(FAILED),
        timed_out=states.count(TIMED_OUT),
        best_score=None if result.best is None else result.best.score,
        best_family=None if result.best is None else result.best.family,
        phase=phase, updated_at=now_rfc3339(),
    )


def train(task: TrainTask, store: ObjectStore, log: Callable[[str], None] = print) -> TrainResult:
    started_at, began = now_rfc3339(), time.monotonic()
    spec = task.spec
    metric = spec.objective.metric
    prefix = task.prefix
    keys = {name: prefix + name for name in ("trials.json", "metrics.json", "model_card.html", "progress.json",
                                              "spec.json", "result.json")}
    store.put_bytes(keys["spec.json"], json.dumps(task.wire(), indent=2, sort_keys=True).encode(), "application/json")
    progress = ProgressWriter(store, keys["progress.json"], every=max(1, min(5, spec.search.max_trials // 20)))
    progress.write(Progress(done=0, total=spec.search.max_trials, phase="Loading", updated_at=now_rfc3339()))

    data = load_training_data(store, task)
    log(f"loaded {task.input.kind} {task.input.name} version {task.input.version}: "
        f"{len(data.X)} rows, {data.X.shape[1]} {'features' if data.transformer is not None else 'columns'}")
    data = apply_selection(data, task, log)
    X_train, X_test, y_train, y_test = split(data, task)
    train_weights = data.weights.loc[X_train.index].to_numpy() if data.weights is not None else None
    selection = selection_summary(data, task, X_train, X_test)
    if selection is not None and "holdout" in selection:
        log(f"time split by {selection['timeColumn']!r}: train {selection['train']['from']} .. "
            f"{selection['train']['to']} (cross-validation scores {selection['validation']['from']} .. "
            f"{selection['validation']['to']}), hold-out (the newest rows) {selection['holdout']['from']} .. "
            f"{selection['holdout']['to']}; effective training rows {selection['effectiveTrainingRows']}")
    classes = sorted(pd.unique(data.y).tolist()) if spec.task == "classification" else None
    n_classes = len(classes) if classes else 0
    spaces, left_out = resolve_spaces(task, n_classes, len(X_train))
    if left_out:
        log(f"families left out of the default list: {'; '.join(left_out)}")
    if not spaces:
        raise TrainingError(f"no model family fits the task {spec.task} with the metric {metric}")
    preprocessor = make_preprocessor(data)
    folds = make_folds(preprocessor, X_train, y_train, task, train_weights,
                       data.times.loc[X_train.index] if data.times is not None else None)
    parallelism = spec.search.parallelism
    settings = SearchSettings(
        task=spec.task, metric=metric, strategy=spec.search.strategy, spaces=spaces,
        max_trials=spec.search.max_trials, seed=spec.split.seed,
        timeout_s=parse_duration(spec.search.timeout) if spec.search.timeout else None,
        parallelism=parallelism, pruning=spec.search.pruning,
        threads_per_trial=max(1, available_cpus() // parallelism),
        scale=data.transformer is not None, n_classes=max(n_classes, 2),
        keep_predictions=ensembles.CANDIDATES if spec.search.ensemble and train_weights is None else 0,
        classes=tuple(classes or ()),
    )
    log(f"search: strategy={settings.strategy} families={','.join(spaces)} maxTrials={settings.max_trials} "
        f"cvFolds={spec.cv_folds} metric={metric} ({direction(metric)}) seed={settings.seed} "
        f"parallelism={parallelism} train={len(X_train)} holdout={len(X_test)}")
    scorer = make_metric_scorer(metric, classes)

    search_began, finished_s = time.monotonic(), {}

    def on_trial(record: TrialRecord, result: SearchResult) -> None:
        finished_s[record.number] = round(time.monotonic() - search_began, 3)  # the card's score against time
        log(_trial_line(record, result, metric))
        progress.maybe_write(result)

    from ..domain.training.search import SearchError

    engine = resolve_engine(spec.engine, Settings.from_env())
    try:
        with search_fits(engine, Settings.from_env()) as fits:
            search = run_search(settings, folds, scorer, on_trial=on_trial, fits=fits)
    except EngineError as error:
        raise TrainingError(str(error)) from error
    except SearchError as error:
        raise TrainingError(str(error)) from error
    best = search.best
    log(f"best: trial {best.number + 1} family={best.family} cv_{metric}={best.score:.6f} "
        f"({search.counts.get(COMPLETE, 0)} complete, {search.counts.get(PRUNED, 0)} pruned, "
        f"{search.counts.get(FAILED, 0)} failed, {search.counts.get(TIMED_OUT, 0)} timed out, "
        f"stopped by {search.stopped_by})")
    progress.write(progress_of(search, "Refitting"))

    # Refit the winner on the whole training split, evaluate on the hold-out.
    ensemble = None
    if settings.keep_predictions:
        ensemble, why = ensembles.choose(search.trials, best.score, [f.y_valid for f in folds], scorer, classes)
        log(why)
    if ensemble is None:
        winner = BestTrial(number=best.number, family=best.family, params=best.params, cv_score=best.score,
                           fold_scores=best.fold_scores)
    else:
        winner = BestTrial(number=best.number, family=ensembles.ENSEMBLE_FAMILY,
                           params={"members": ensembles.member_list(ensemble, {t.number: t for t in search.trials})},
                           cv_score=ensemble.score, fold_scores=ensemble.fold_scores)

    def fit_winner(X, y, weights):
        return fit_chosen(preprocessor, search, ensemble, X, y, weights, spec.task, metric, settings, classes)

    fitted_preprocessor, estimator = fit_winner(X_train, y_train, train_weights)
    X_test_model = model_input(fitted_preprocessor, X_test)
    metrics = holdout_metrics(estimator, X_test_model, np.asarray(y_test), spec.task, classes)
    y_pred = estimator.predict(X_test_model)
    details = (classification_details(np.asarray(y_test), y_pred, classes) if spec.task == "classification"
               else {"residuals": residual_summary(np.asarray(y_test), y_pred)})
    log("holdout: " + " ".join(f"{k}={v:.6f}" for k, v in sorted(metrics.items())))
    # What the hold-out scored: the metrics, gates, estimation reference and card figures are its.
    scored = assemble_pipeline(data, fitted_preprocessor, estimator)

    pipeline, refit_doc = scored, None
    if spec.split.refit:
        pipeline, refit_doc = refit_on_all(data, X_train, X_test, y_train, y_test, fit_winner, log)
    progress.write(progress_of(search, "Writing"))
    model_bytes = artifacts.dumps(pipeline)
    sha = artifacts.sha256_hex(model_bytes)
    # Write-once and content-addressed: a retried attempt never replaces a model.
    model_uri = store.put_once(f"{prefix}artifacts/{sha}/{artifacts.ARTIFACT_FILENAME}", model_bytes)
    # A model that will not load again is no model: check the round trip now.
    reloaded = artifacts.loads(store.get_bytes(store.key_of(model_uri)), expected_sha256=sha)
    sample = X_test.iloc[:50]
    # On a FeatureSet the sample already holds features: skip the transformer step.
    skip = 1 if data.transformer is not None else 0
    if skip:
        sample = np.asarray(sample, dtype=float)
    if not np.array_equal(np.asarray(reloaded[skip:].predict(sample)), np.asarray(pipeline[skip:].predict(sample))):
        raise TrainingError("the stored artifact predicts differently from the trained pipeline")

    compiled = None
    holdout_raw = raw_holdout(store, data, X_test, log)
    if holdout_raw is not None:
        compiled = compile_winner(pipeline, holdout_raw, spec.task, store, prefix, log, task.compiled_tolerance)
    reference = write_estimation_reference(store, prefix, estimator, X_test_model, np.asarray(y_test), y_pred,
                                           holdout_raw if spec.task == "regression" else None)
    segments = None
    if spec.segments is not None:
        segments = holdout_segments(spec, X_test if holdout_raw is None else holdout_raw, X_test, np.asarray(y_test),
                                    y_pred, estimator, X_test_model, classes)
        log(f"segments: {segments.reason}: {segments.message}")

    trials_doc = {"metric": metric, "direction": search.direction, "strategy": settings.strategy,
                  "planned": search.planned, "stoppedBy": search.stopped_by,
                  "trials": [t.as_dict() for t in search.trials]}
    if ensemble is not None:
        trials_doc["ensemble"] = {"cvScore": ensemble.score, "foldScores": ensemble.fold_scores,
                                  "members": winner.params["members"], "roundScores": ensemble.rounds}
    store.put_bytes(keys["trials.json"], json.dumps(trials_doc, indent=2, default=str).encode(), "application/json")
    metrics_doc = {"metric": metric, "direction": search.direction, "cvScore": winner.cv_score, "holdout": metrics, **details,
                   "rows": {"train": int(len(X_train)), "holdout": int(len(X_test))}}
    if refit_doc is not None:
        metrics_doc["refit"] = refit_doc
    if selection is not None:
        metrics_doc["dataSelection"] = selection
    store.put_bytes(keys["metrics.json"], json.dumps(metrics_doc, indent=2).encode(), "application/json")

    signature = Signature(
        inputs=data.signature_inputs,
        outputs=[SignatureColumn(name="prediction", type="category" if classes else "float")],
        classes=[str(c) for c in classes] if classes else None,
    )
    lineage = Lineage(
        training_run=task.run,
        dataset=task.input.name if task.input.kind == "Dataset" else data.dataset,
        dataset_version=task.input.version if task.input.kind == "Dataset" else data.dataset_version,
        feature_set=task.input.name if task.input.kind == "FeatureSet" else None,
        feature_set_version=task.input.version if task.input.kind == "FeatureSet" else None,
        seed=settings.seed,
        image=Settings.from_env().image,
        libraries=library_versions(),
        model_card=store.uri(keys["model_card.html"]),
        ensemble=None if ensemble is None else [EnsembleMember.model_validate(m) for m in winner.params["members"]],
    )
    from .model_card import calibration, permutation_importances, render_model_card

    # On a FeatureSet the hold-out rows are already features: the transformer step is skipped.
    explained = scored[1:] if data.transformer is not None else scored
    card = render_model_card(
        task, search, metrics, details, signature, lineage, sha, winner=winner, finished_s=finished_s, refit=refit_doc,
        importances=permutation_importances(explained, X_test, np.asarray(y_test), scorer, settings.seed),
        calibration_curve=calibration(explained, X_test, np.asarray(y_test), classes))
    store.put_bytes(keys["model_card.html"], card.encode(), "text/html; charset=utf-8")

    result = TrainResult(
        namespace=task.namespace, run=task.run, attempt=task.attempt, model=spec.model, task=spec.task,
        metric=metric, direction=search.direction,
        best=winner,
        metrics=metrics,
        trials=TrialsSummary(done=len(search.trials), total=search.planned,
                             pruned=search.counts.get(PRUNED, 0), failed=search.counts.get(FAILED, 0),
                             timed_out=search.counts.get(TIMED_OUT, 0)),
        stopped_by=search.stopped_by,
        artifact=Artifact(uri=model_uri, sha256=sha, format=artifacts.ARTIFACT_FORMAT),
        compiled=compiled, estimation_reference=reference, signature=signature, segments=segments, lineage=lineage,
        files=ResultFiles(trials=store.uri(keys["trials.json"]), metrics=store.uri(keys["metrics.json"]),
                          model_card=store.uri(keys["model_card.html"]), progress=store.uri(keys["progress.json"]),
                          spec=store.uri(keys["spec.json"])),
        started_at=started_at, finished_at=now_rfc3339(), duration_seconds=round(time.monotonic() - began, 3),
    )
    if task.mlflow is not None:
        from ..tracking.mlflow_log import tracked_result

        result = tracked_result(task, search, result, pipeline, holdout_raw, model_bytes, log)
    final = progress_of(search, "Succeeded")
    progress.write(final)
    store.put_bytes(keys["result.json"], json.dumps(result.wire(), indent=2).encode(), "application/json")
    return result
