"""The loaded model: a verified pipeline, optionally with its verified ONNX graph."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .task import ServeColumn, ServeTask

log = logging.getLogger(__name__)

# Classifiers whose predict() is exactly classes_[argmax(predict_proba())], so one pass gives both.
_ARGMAX_CLASSIFIERS = (
    "RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier", "ExtraTreeClassifier",
    "GradientBoostingClassifier", "HistGradientBoostingClassifier", "LogisticRegression",
    "KNeighborsClassifier", "GaussianNB", "MultinomialNB", "BernoulliNB", "MLPClassifier",
)


@dataclass
class Prediction:
    values: np.ndarray  # labels (classifiers) or values (regressors), one per row
    probabilities: np.ndarray | None  # [rows, classes], classifiers only


def final_estimator(pipeline):
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def columns_from_pipeline(pipeline) -> list[ServeColumn]:
    """Raw columns when the task does not list them: the names the pipeline was fit with."""
    names = getattr(pipeline, "feature_names_in_", None)
    if names is None:
        count = getattr(pipeline, "n_features_in_", None)
        if count is None:
            raise ValueError("the task lists no input columns and the pipeline does not record them")
        names = [f"x{i}" for i in range(count)]
    return [ServeColumn(name=str(n), type="float") for n in names]


class Predictor:
    def __init__(self, pipeline, columns: Sequence[ServeColumn], compiled=None):
        self.pipeline = pipeline
        self.columns = list(columns)
        self.column_names = [c.name for c in self.columns]
        estimator = final_estimator(pipeline)
        self.classes: np.ndarray | None = getattr(estimator, "classes_", None)
        self.is_classifier = self.classes is not None
        self.has_proba = self.is_classifier and hasattr(pipeline, "predict_proba")
        self.argmax_consistent = type(estimator).__name__ in _ARGMAX_CLASSIFIERS
        self.compiled = compiled
        self.engine = "onnxruntime" if compiled is not None else "scikit-learn"
        self._takes_frame = hasattr(pipeline, "feature_names_in_")
        if self.has_proba and compiled is not None and compiled.proba_output is None:
            self.compiled, self.engine = None, "scikit-learn"

    def warm_up(self, rows: int = 8) -> str | None:
        """Predict a few placeholder rows so that the first real requests do not pay for lazy
        imports, caches and first-call allocations (a fresh server's first answers took seconds
        on a busy node, which a canary's p99 then held against it). Returns why it could not,
        or None; a pipeline that refuses placeholders is served all the same."""
        placeholders = {"float": 0.0, "int": 0, "bool": False}
        columns = {c.name: (np.full(rows, placeholders[c.type]) if c.type in placeholders
                            else np.full(rows, "", dtype=object)) for c in self.columns}
        try:
            self.predict(columns)
        except Exception as error:  # noqa: BLE001 - any failure only means no warm-up
            return f"{type(error).__name__}: {error}"
        return None

    @property
    def output_names(self) -> list[str]:
        return ["predict", "predict_proba"] if self.has_proba else ["predict"]

    def _frame(self, columns):
        if self._takes_frame:
            import pandas as pd

            return pd.DataFrame({name: columns[name] for name in self.column_names}, copy=False)
        matrix = getattr(columns, "matrix", None)
        if matrix is not None:
            return matrix
        return np.column_stack([columns[name] for name in self.column_names])

    def predict(self, columns: dict[str, np.ndarray], want_probabilities: bool = True) -> Prediction:
        if self.compiled is not None:
            values, probabilities = self.compiled.run(columns, lambda: self._frame(columns))
            if self.is_classifier:
                values = np.asarray(values)
                if values.dtype != self.classes.dtype:
                    values = values.astype(self.classes.dtype)
            return Prediction(values, probabilities if self.has_proba else None)
        frame = self._frame(columns)
        if self.has_proba and (want_probabilities or self.argmax_consistent):
            probabilities = self.pipeline.predict_proba(frame)
            if self.argmax_consistent:
                values = self.classes[np.argmax(probabilities, axis=1)]
            else:
                values = self.pipeline.predict(frame)
            return Prediction(np.asarray(values), probabilities if want_probabilities else None)
        return Prediction(np.asarray(self.pipeline.predict(frame)), None)


def load_predictor(task: ServeTask, store=None) -> Predictor:
    """Fetch and verify the artifact (and the compiled graph when the task says it was verified)."""
    from .artifact import load_verified_bytes, load_verified_pipeline

    pipeline = load_verified_pipeline(task.artifact.uri, task.artifact.sha256, store)
    columns = task.inputs or columns_from_pipeline(pipeline)
    compiled = None
    if task.compiled is not None:
        if task.compiled.verified:
            from .compiled import CompiledModel

            compiled = CompiledModel(load_verified_bytes(task.compiled.uri, task.compiled.sha256, store), pipeline)
            names = [c.name for c in columns]
            if not hasattr(pipeline, "feature_names_in_") and len(compiled.columns) == len(names):
                compiled.columns = names  # fit on a plain matrix: columns are positional
            if compiled.columns != names and compiled.scope == "pipeline":
                raise ValueError(f"the compiled graph takes columns {compiled.columns}, the task lists "
                                 f"{[c.name for c in columns]}")
        else:
            log.info("compiled graph not verified against scikit-learn; serving with scikit-learn")
    return Predictor(pipeline, columns, compiled)
