"""The compiled inference path: ONNX Runtime, used only when it matches scikit-learn.

`verify_compiled` is called at training time on the hold-out set. It converts the
whole pipeline when skl2onnx can (raw columns in), else only the final estimator
(the transformer then still runs in scikit-learn), runs both, and reports the
largest absolute difference of the probabilities (classifiers; predicted labels
must also agree) or of the predictions (regressors). The graph records which of
the two shapes it has in its metadata, so the server knows what to feed it.
Inputs are float64 end to end, so differences are rounding-level (about 1e-8).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

DEFAULT_TOLERANCE = 1e-6
SCOPE_KEY = "kadence.scope"  # "pipeline" (raw columns in) or "estimator" (transformed features in)
INPUTS_KEY = "kadence.inputs"  # "columns" (one tensor per column) or "matrix" (one 2-D tensor)
COLUMNS_KEY = "kadence.columns"  # JSON list of raw column names, in order
ML_OPSET = 3
ONNX_OPSET = 17


class CompiledUnavailable(Exception):
    pass


def _final_estimator(pipeline):
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def _is_classifier(pipeline) -> bool:
    return hasattr(_final_estimator(pipeline), "classes_")


def _options(pipeline) -> dict:
    return {id(_final_estimator(pipeline)): {"zipmap": False}} if _is_classifier(pipeline) else {}


def _tensor_type_for(series):
    from skl2onnx.common.data_types import BooleanTensorType, DoubleTensorType, Int64TensorType, StringTensorType

    kind = series.dtype.kind
    if kind == "f":
        return DoubleTensorType([None, 1])
    if kind in "iu":
        return Int64TensorType([None, 1])
    if kind == "b":
        return BooleanTensorType([None, 1])
    if kind in "OSU" or str(series.dtype) in ("string", "str", "category"):
        return StringTensorType([None, 1])
    raise CompiledUnavailable(f"column {series.name!r} has dtype {series.dtype}, which has no ONNX input type")


def _convert(model, initial_types, options):
    from skl2onnx import convert_sklearn

    return convert_sklearn(model, initial_types=initial_types, options=options,
                           target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET})


def _with_metadata(onnx_model, scope: str, inputs: str, columns: list[str]) -> bytes:
    for key, value in ((SCOPE_KEY, scope), (INPUTS_KEY, inputs), (COLUMNS_KEY, json.dumps(columns))):
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    return onnx_model.SerializeToString()


def _runs(onnx_bytes: bytes, pipeline, X_sample) -> bytes:
    """The bytes, once ONNX Runtime has loaded them and run a few rows (conversion alone can
    succeed with a graph the runtime refuses, e.g. mixed float/double concatenation)."""
    model = CompiledModel(onnx_bytes, pipeline)
    sample = X_sample[:3]
    model.run(_columns_of(sample, model.columns), sample)
    return onnx_bytes


def compile_pipeline(pipeline, X_sample) -> bytes:
    """ONNX bytes for `pipeline`, trying raw-column inputs, then one matrix, then the estimator only."""
    import pandas as pd
    from skl2onnx.common.data_types import DoubleTensorType

    options = _options(pipeline)
    if isinstance(X_sample, pd.DataFrame):
        columns = [str(c) for c in X_sample.columns]
    else:
        columns = [f"x{i}" for i in range(np.asarray(X_sample).shape[1])]

    def per_column():
        types = [(name, _tensor_type_for(X_sample[name])) for name in columns]
        return _with_metadata(_convert(pipeline, types, options), "pipeline", "columns", columns)

    def one_matrix():
        if isinstance(X_sample, pd.DataFrame) and not all(X_sample[c].dtype.kind in "fiub" for c in columns):
            raise CompiledUnavailable("not all columns are numeric")
        onx = _convert(pipeline, [("X", DoubleTensorType([None, len(columns)]))], options)
        return _with_metadata(onx, "pipeline", "matrix", columns)

    def estimator_only():
        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) < 2:
            raise CompiledUnavailable("not a pipeline with a transformer")
        features = np.asarray(pipeline[:-1].transform(X_sample[:2]), dtype=np.float64)
        onx = _convert(steps[-1][1], [("X", DoubleTensorType([None, features.shape[1]]))], options)
        return _with_metadata(onx, "estimator", "matrix", columns)

    attempts = [("one matrix input", one_matrix), ("estimator only", estimator_only)]
    if isinstance(X_sample, pd.DataFrame):
        attempts.insert(0, ("per-column inputs", per_column))
    errors = []
    for what, attempt in attempts:
        try:
            return _runs(attempt(), pipeline, X_sample)
        except Exception as error:  # noqa: BLE001 - skl2onnx/onnxruntime raise many types
            errors.append(f"{what}: {error}")
    raise CompiledUnavailable("; ".join(errors))


def verify_compiled(pipeline, X_holdout, tolerance: float = DEFAULT_TOLERANCE) -> tuple[bool, float, bytes | None]:
    """(ok, max_abs_diff, onnx_bytes): ok when ONNX Runtime's outputs are within `tolerance`
    of scikit-learn's on `X_holdout` (and, for classifiers, every label agrees).
    max_abs_diff is inf and onnx_bytes None when the pipeline cannot be converted."""
    try:
        onnx_bytes = compile_pipeline(pipeline, X_holdout)
        model = CompiledModel(onnx_bytes, pipeline)
    except Exception:  # noqa: BLE001 - anything unconvertible simply stays on scikit-learn
        return False, math.inf, None
    columns = _columns_of(X_holdout, model.columns)
    labels, probabilities = model.run(columns, X_holdout)
    if _is_classifier(pipeline):
        expected_proba = pipeline.predict_proba(X_holdout)
        expected_labels = pipeline.predict(X_holdout)
        diff = float(np.max(np.abs(probabilities - expected_proba))) if len(expected_proba) else 0.0
        labels_agree = bool(np.array_equal(np.asarray(labels).astype(str), np.asarray(expected_labels).astype(str)))
        return (diff <= tolerance and labels_agree), diff, onnx_bytes
    expected = np.asarray(pipeline.predict(X_holdout), dtype=np.float64).ravel()
    diff = float(np.max(np.abs(np.asarray(labels, dtype=np.float64).ravel() - expected))) if len(expected) else 0.0
    return diff <= tolerance, diff, onnx_bytes


def _columns_of(X, names: list[str]) -> dict[str, np.ndarray]:
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return {name: X[name].to_numpy() for name in names}
    array = np.asarray(X)
    return {name: array[:, j] for j, name in enumerate(names)}


class CompiledModel:
    """An ONNX Runtime session fed from typed columns."""

    def __init__(self, onnx_bytes: bytes, pipeline=None):
        import onnx
        import onnxruntime as ort

        meta = {p.key: p.value for p in onnx.load_from_string(onnx_bytes).metadata_props}
        if SCOPE_KEY not in meta:
            raise CompiledUnavailable("the ONNX graph was not made by kadence.serving.compiled (no kadence.scope)")
        self.scope = meta[SCOPE_KEY]
        self.input_mode = meta[INPUTS_KEY]
        self.columns: list[str] = json.loads(meta[COLUMNS_KEY])
        if self.scope == "estimator":
            if pipeline is None:
                raise CompiledUnavailable("this graph covers only the estimator; the pipeline is needed for the transformer")
            self.prefix = pipeline[:-1]
        options = ort.SessionOptions()
        # One thread: the server runs one predict at a time per process and batches instead.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.label_output = outputs[0]
        self.proba_output = outputs[1] if len(outputs) > 1 else None

    def _feeds(self, columns: dict[str, np.ndarray], frame_factory) -> dict[str, np.ndarray]:
        if self.scope == "estimator":
            frame = frame_factory() if callable(frame_factory) else frame_factory
            return {"X": np.asarray(self.prefix.transform(frame), dtype=np.float64)}
        if self.input_mode == "matrix":
            return {"X": np.column_stack([np.asarray(columns[c], dtype=np.float64) for c in self.columns])}
        feeds = {}
        for name in self.columns:
            kind = self.input_types[name]
            values = columns[name]
            if kind == "tensor(double)":
                values = np.asarray(values, dtype=np.float64)
            elif kind == "tensor(int64)":
                values = np.asarray(values, dtype=np.int64)
            elif kind == "tensor(bool)":
                values = np.asarray(values, dtype=bool)
            else:
                values = np.asarray(values, dtype=object).astype(str).astype(object)
            feeds[name] = values.reshape(-1, 1)
        return feeds

    def run(self, columns: dict[str, np.ndarray], frame_factory=None) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels or values, probabilities or None)."""
        results = self.session.run(None, self._feeds(columns, frame_factory))
        labels = results[0].ravel() if results[0].ndim > 1 and results[0].shape[1] == 1 else results[0]
        probabilities = results[1] if self.proba_output is not None else None
        if probabilities is not None:
            # Tree ensembles sum in float32 inside ONNX Runtime: keep rounding noise inside [0, 1].
            probabilities = np.clip(probabilities.astype(np.float64, copy=False), 0.0, 1.0)
        return labels, probabilities
