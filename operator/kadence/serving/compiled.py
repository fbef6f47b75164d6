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

import numpy as np

DEFAULT_TOLERANCE = 1e-6
SCOPE_KEY = "kadence.scope"  # "pipeline" (raw columns in) or "estimator" (transformed features in)
INPUTS_KEY = "kadence.inputs"  # "columns" (one tensor per column) or "matrix" (one 2-D tensor)
COLUMNS_KEY = "kadence.columns"  # JSON list of raw column names, in order
# JSON list of the datetime columns, fed as int64 milliseconds since the Unix epoch (UTC), INT64_MIN if missing
DATETIMES_KEY = "kadence.datetimes"
ML_OPSET = 3
ONNX_OPSET = 17


class CompiledUnavailable(Exception):
    pass


def _final_estimator(pipeline):
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def _is_classifier(pipeline) -> bool:
    from sklearn.base import is_regressor

    # is_regressor too: CatBoost's regressor has a classes_ attribute
    final = _final_estimator(pipeline)
    return hasattr(final, "classes_") and not is_regressor(final)


def _leading_feature_transformer(pipeline):
    """The FeatureSet transformer a pipeline starts with, or None."""
    from ..domain.data.transforms import FeatureTransformer

    steps = getattr(pipeline, "steps", None)
    return steps[0][1] if steps and isinstance(steps[0][1], FeatureTransformer) else None


def _options(pipeline) -> dict:
    return {id(_final_estimator(pipeline)): {"zipmap": False}} if _is_classifier(pipeline) else {}


def _tensor_type_for(series, float_type):
    from skl2onnx.common.data_types import BooleanTensorType, Int64TensorType, StringTensorType

    kind = series.dtype.kind
    if kind == "M" or str(series.dtype).startswith("datetime64"):
        return Int64TensorType([None, 1])  # epoch milliseconds (DATETIMES_KEY)
    if kind == "f":
        return float_type([None, 1])
    if kind in "iu":
        return Int64TensorType([None, 1])
    if kind == "b":
        return BooleanTensorType([None, 1])
    if kind in "OSU" or str(series.dtype) in ("string", "str", "category"):
        return StringTensorType([None, 1])
    raise CompiledUnavailable(f"column {series.name!r} has dtype {series.dtype}, which has no ONNX input type")


def _convert(model, initial_types, options):
    from skl2onnx import convert_sklearn

    from ..domain.data.transforms_onnx import register_feature_converter
    from ..domain.training.boosting import register_onnx_converters

    register_onnx_converters()
    register_feature_converter()
    return convert_sklearn(model, initial_types=initial_types, options=options,
                           target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET})


def _with_metadata(onnx_model, scope: str, inputs: str, columns: list[str], datetimes: list[str] = ()) -> bytes:
    entries = [(SCOPE_KEY, scope), (INPUTS_KEY, inputs), (COLUMNS_KEY, json.dumps(columns))]
    if datetimes:
        entries.append((DATETIMES_KEY, json.dumps(list(datetimes))))
    for key, value in entries:
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    return onnx_model.SerializeToString()


def candidate_graphs(pipeline, X_sample):
    """(description, thunk making ONNX bytes) for each way to compile `pipeline`, most complete first:
    raw columns in, one numeric matrix in, or the estimator alone after the scikit-learn transformer.
    Each comes in float64 and float32 inputs: scikit-learn's trees compare in float32, so for them
    the float32 graph is the exact one, for linear models the float64 one."""
    import pandas as pd
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    options = _options(pipeline)
    is_frame = isinstance(X_sample, pd.DataFrame)
    columns = [str(c) for c in X_sample.columns] if is_frame else [f"x{i}" for i in range(np.asarray(X_sample).shape[1])]

    def per_column(float_type):
        transformer = _leading_feature_transformer(pipeline)
        column_options = options
        if transformer is not None:  # raw numbers stay float64; the features are rounded to float32 once
            column_options = {**options, id(transformer): {"float32": float_type is FloatTensorType}}
            float_type = DoubleTensorType
        types = [(name, _tensor_type_for(X_sample[name], float_type)) for name in columns]
        datetimes = [name for name in columns if X_sample[name].dtype.kind == "M"]
        return _with_metadata(_convert(pipeline, types, column_options), "pipeline", "columns", columns, datetimes)

    def one_matrix(float_type):
        if is_frame and not all(X_sample[c].dtype.kind in "fiub" for c in columns):
            raise CompiledUnavailable("not all columns are numeric")
        onx = _convert(pipeline, [("X", float_type([None, len(columns)]))], options)
        return _with_metadata(onx, "pipeline", "matrix", columns)

    def estimator_only(float_type):
        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) < 2:
            raise CompiledUnavailable("not a pipeline with a transformer")
        width = np.asarray(pipeline[:-1].transform(X_sample[:2])).shape[1]
        onx = _convert(steps[-1][1], [("X", float_type([None, width]))], options)
        return _with_metadata(onx, "estimator", "matrix", columns)

    shapes = [("one matrix input", one_matrix), ("estimator only", estimator_only)]
    if is_frame:
        shapes.insert(0, ("per-column inputs", per_column))
    for what, make in shapes:
        for label, float_type in (("float64", DoubleTensorType), ("float32", FloatTensorType)):
            yield f"{what}, {label}", lambda make=make, float_type=float_type: make(float_type)


def _difference(pipeline, model: "CompiledModel", X) -> float:
    """Largest absolute difference from scikit-learn (inf when a classifier's label differs)."""
    labels, probabilities = model.run(_columns_of(X, model.columns), X)
    if _is_classifier(pipeline):
        expected_labels = np.asarray(pipeline.predict(X))
        if not np.array_equal(np.asarray(labels).astype(str), expected_labels.astype(str)):
            return math.inf
        if probabilities is None:
            return 0.0
        return float(np.max(np.abs(probabilities - pipeline.predict_proba(X)))) if len(X) else 0.0
    expected = np.asarray(pipeline.predict(X), dtype=np.float64).ravel()
    got = np.asarray(labels, dtype=np.float64).ravel()
    return float(np.max(np.abs(got - expected))) if len(expected) else 0.0


def verify_compiled(pipeline, X_holdout, tolerance: float = DEFAULT_TOLERANCE) -> tuple[bool, float, bytes | None]:
    """(ok, max_abs_diff, onnx_bytes): ok when ONNX Runtime's outputs are within `tolerance` of
    scikit-learn's on `X_holdout` and, for classifiers, every predicted label agrees (a label
    disagreement counts as an infinite difference). The first graph within tolerance wins;
    otherwise the closest one is returned with ok False. (False, inf, None) when nothing converts."""
    best: tuple[float, bytes | None] = (math.inf, None)
    for _what, make in candidate_graphs(pipeline, X_holdout):
        try:
            onnx_bytes = make()
            difference = _difference(pipeline, CompiledModel(onnx_bytes, pipeline), X_holdout)
        except Exception:  # noqa: BLE001 - skl2onnx/onnxruntime raise many types for unsupported parts
            continue
        if difference <= tolerance:
            return True, difference, onnx_bytes
        if best[1] is None or difference < best[0]:
            best = (difference, onnx_bytes)
    return False, best[0], best[1]


def _columns_of(X, names: list[str]) -> dict[str, np.ndarray]:
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return {name: X[name].to_numpy() for name in names}
    array = np.asarray(X)
    return {name: array[:, j] for j, name in enumerate(names)}


def epoch_milliseconds(values) -> np.ndarray:
    """Times (datetime64 or ISO-8601 text, as requests send them) as int64 milliseconds since the
    Unix epoch in UTC, INT64_MIN where missing: what a graph's datetime inputs take."""
    import pandas as pd

    times = pd.DatetimeIndex(pd.to_datetime(pd.Series(np.asarray(values).ravel()), utc=True, format="ISO8601"))
    return times.tz_convert(None).as_unit("ms").asi8.astype(np.int64)


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
        self.datetimes = set(json.loads(meta.get(DATETIMES_KEY, "[]")))
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
        self._matrix_dtype = np.float32 if self.input_types.get("X") == "tensor(float)" else np.float64
        outputs = [o.name for o in self.session.get_outputs()]
        self.label_output = outputs[0]
        self.proba_output = outputs[1] if len(outputs) > 1 else None

    def _feeds(self, columns: dict[str, np.ndarray], frame_factory) -> dict[str, np.ndarray]:
        if self.scope == "estimator":
            frame = frame_factory() if callable(frame_factory) else frame_factory
            return {"X": np.asarray(self.prefix.transform(frame), dtype=self._matrix_dtype)}
        if self.input_mode == "matrix":
            matrix = getattr(columns, "matrix", None)
            if matrix is not None and matrix.shape[1] == len(self.columns):
                return {"X": matrix.astype(self._matrix_dtype, copy=False)}
            return {"X": np.column_stack([np.asarray(columns[c], dtype=self._matrix_dtype) for c in self.columns])}
        feeds = {}
        for name in self.columns:
            kind = self.input_types[name]
            values = columns[name]
            if kind == "tensor(double)":
                values = np.asarray(values, dtype=np.float64)
            elif kind == "tensor(float)":
                values = np.asarray(values, dtype=np.float32)
            elif name in self.datetimes:
                values = epoch_milliseconds(values)
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
