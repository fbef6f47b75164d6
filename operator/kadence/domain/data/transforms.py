"""FeatureSet definitions compiled into one scikit-learn transformer.

`FeatureTransformer(features=[...], column_types={...})` takes the FeatureSet's feature
list in its wire form (camelCase dicts, as in the spec) and the raw column types of the
Dataset. `fit` learns what each transform needs (categories, means, bounds…) from the
training rows; `transform` turns raw rows into a float64 matrix whose columns are
`get_feature_names_out()`. The fitted object is saved inside every model
(`skops.io.dump`, trusted types in `TRUSTED_TYPES`), so serving applies exactly what
training did.

Output columns per feature (NAME is the feature's name):
- expression: NAME (booleans become 0/1);
- oneHot: NAME=VALUE for each kept category, plus NAME=<other> for rare, unseen and
  missing values when `otherBucket` is on (default); kept categories are the
  `maxCategories` most frequent (ties broken by value), at most 1000;
- bucketize: NAME = index of the bucket, i.e. the number of boundaries <= x
  (x < b0 -> 0, b0 <= x < b1 -> 1, …); missing stays missing (NaN);
- standardScale: (x - mean) / std (population std; 1 when the std is 0);
- minMaxScale: (x - min) / (max - min) (range 1 when max == min);
- impute: x with missing values replaced by the fitted mean, median, most frequent value
  or the constant `fillValue`;
- hash: NAME#0 … NAME#(buckets-1), an indicator of murmurhash3_32(str(value)) mod buckets
  (stable across processes and machines); missing values set no indicator;
- datePart: NAME = the part (year, month, day, dayOfWeek with Monday=0, dayOfYear, hour,
  minute, weekOfYear (ISO)).

Raw input may come as JSON (numbers, strings, ISO-8601 timestamps): `transform` coerces
each input column to the type recorded at fit time and refuses a value that does not fit
with the column's name.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import murmurhash3_32
from sklearn.utils.validation import check_is_fitted

from .expressions import CompiledExpression, ExpressionError, compile_expression

MAX_ONE_HOT_CATEGORIES = 1000
MAX_HASH_BUCKETS = 4096
OTHER = "<other>"
NUMERIC_TYPES = ("float", "int", "bool")
TEXT_TYPES = ("category", "string")
DATE_PART_ACCESSORS = {
    "year": lambda dt: dt.year,
    "month": lambda dt: dt.month,
    "day": lambda dt: dt.day,
    "dayOfWeek": lambda dt: dt.day_of_week,
    "dayOfYear": lambda dt: dt.day_of_year,
    "hour": lambda dt: dt.hour,
    "minute": lambda dt: dt.minute,
    "weekOfYear": lambda dt: dt.isocalendar().week,
}


class FeatureDefinitionError(ValueError):
    """A feature definition that cannot work: names the feature and the reason."""

    def __init__(self, feature: str, reason: str):
        super().__init__(f"feature {feature!r}: {reason}")
        self.feature = feature
        self.reason = reason


class InputError(ValueError):
    """Raw input rows that do not fit the columns the transformer was fitted on."""


def _wire(feature: Any) -> dict:
    if hasattr(feature, "wire"):
        return feature.wire()
    return dict(feature)


def resolve_features(features: list[Any], column_types: Mapping[str, str]) -> list[dict]:
    """Check the definitions against the raw columns without any data.

    Returns the catalog entries {name, type, source, inputs}; raises FeatureDefinitionError
    naming the first feature that references a missing column, does not parse, or applies
    a transform to a column type it cannot handle.
    """
    resolved = []
    for feature in map(_wire, features):
        name = feature["name"]
        if feature.get("expression") is not None:
            try:
                compiled = compile_expression(feature["expression"], column_types)
            except ExpressionError as error:
                raise FeatureDefinitionError(name, str(error)) from None
            resolved.append({"name": name, "type": "float", "source": feature["expression"],
                             "inputs": list(compiled.columns)})
            continue
        transform = feature.get("transform") or {}
        kind, column = transform.get("type"), transform.get("column")
        if column not in column_types:
            raise FeatureDefinitionError(
                name, f"unknown column {column!r} (known columns: {', '.join(sorted(column_types))})")
        column_type = column_types[column]
        _check_transform(name, kind, column_type, transform)
        output_type = {"oneHot": "category", "hash": "category", "bucketize": "int", "datePart": "int"}.get(kind, "float")
        resolved.append({"name": name, "type": output_type, "source": _describe(transform), "inputs": [column]})
    return resolved


def _check_transform(name: str, kind: str, column_type: str, transform: dict) -> None:
    column = transform["column"]
    numeric_only = {"bucketize", "standardScale", "minMaxScale", "impute"}
    if kind in numeric_only and column_type not in NUMERIC_TYPES:
        raise FeatureDefinitionError(name, f"{kind} needs a numeric column; {column!r} is {column_type}")
    if kind == "datePart" and column_type != "datetime":
        raise FeatureDefinitionError(name, f"datePart needs a datetime column; {column!r} is {column_type}")
    if kind == "bucketize":
        boundaries = transform.get("boundaries") or []
        if not boundaries or list(boundaries) != sorted(set(boundaries)):
            raise FeatureDefinitionError(name, "bucketize needs strictly ascending boundaries")
    if kind == "hash":
        buckets = transform.get("buckets")
        if buckets is None or not 2 <= buckets <= MAX_HASH_BUCKETS:
            raise FeatureDefinitionError(name, f"hash needs buckets between 2 and {MAX_HASH_BUCKETS}")
    if kind == "impute":
        strategy = transform.get("strategy")
        if strategy not in ("mean", "median", "constant", "mostFrequent"):
            raise FeatureDefinitionError(name, "impute needs strategy mean, median, constant or mostFrequent")
        if strategy == "constant":
            try:
                float(transform.get("fillValue"))
            except (TypeError, ValueError):
                raise FeatureDefinitionError(name, f"fillValue {transform.get('fillValue')!r} is not a number") from None
    if kind not in ("oneHot", "bucketize", "standardScale", "minMaxScale", "impute", "hash", "datePart"):
        raise FeatureDefinitionError(name, f"unknown transform type {kind!r}")


def _describe(transform: dict) -> str:
    """E.g. oneHot(plan, maxCategories=5, otherBucket=True) or bucketize(age, boundaries=[18, 65])."""
    parameters = {
        "oneHot": ("maxCategories", "otherBucket"),
        "bucketize": ("boundaries",),
        "impute": ("strategy", "fillValue"),
        "hash": ("buckets",),
        "datePart": ("part",),
    }.get(transform["type"], ())
    defaults = {"otherBucket": True}
    shown = [f"{key}={transform.get(key, defaults.get(key))}" for key in parameters
             if transform.get(key, defaults.get(key)) is not None]
    return f"{transform['type']}({', '.join([transform['column'], *shown])})"


def infer_column_types(frame: pd.DataFrame) -> dict[str, str]:
    """Column types of a frame in the Dataset schema's vocabulary."""
    types = {}
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            types[column] = "bool"
        elif pd.api.types.is_integer_dtype(dtype):
            types[column] = "int"
        elif pd.api.types.is_numeric_dtype(dtype):
            types[column] = "float"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            types[column] = "datetime"
        else:
            types[column] = "string"
    return types


def coerce_column(series: pd.Series, column_type: str) -> pd.Series:
    """Bring one raw input column to its declared type, refusing values that do not fit."""
    name = series.name
    if column_type in ("float", "int"):
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
            return pd.Series(series.to_numpy(dtype="float64", na_value=np.nan), index=series.index, name=name)
        try:
            return pd.to_numeric(series, errors="raise").astype("float64")
        except (ValueError, TypeError) as error:
            raise InputError(f"column {name!r} must be numeric: {error}") from None
    if column_type == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            return pd.Series(series.to_numpy(dtype="float64", na_value=np.nan), index=series.index, name=name)
        mapping = {True: 1.0, False: 0.0, "true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0, 1: 1.0, 0: 0.0,
                   "1": 1.0, "0": 0.0}
        values = []
        for value in series.tolist():
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
                values.append(np.nan)
            elif value in mapping:
                values.append(mapping[value])
            else:
                raise InputError(f"column {name!r} must be true/false, got {value!r}")
        return pd.Series(values, index=series.index, name=name, dtype="float64")
    if column_type == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        try:
            return pd.to_datetime(series, utc=True, format="ISO8601")
        except (ValueError, TypeError) as error:
            raise InputError(f"column {name!r} must hold ISO-8601 timestamps: {error}") from None
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in ("string", "empty"):
        # mixed values, e.g. numbers sent as JSON for a category column: compare them as their text
        return pd.Series([category_text(v) for v in series.tolist()], index=series.index, name=name, dtype=object)
    return series


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def category_text(value: Any) -> str | None:
    """The text of a category value; integral numbers print without `.0` so an int column
    read as float (JSON, CSV with gaps) names the same categories."""
    if _missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def category_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(code of every value, text of every code): one hash pass over the column, then
    `category_text` only of the distinct values. Missing values get code -1."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [category_text(u) for u in np.asarray(uniques, dtype=object).tolist()]


def _stable_hash(value: str, buckets: int) -> int:
    return murmurhash3_32(value, seed=0, positive=True) % buckets


class FeatureTransformer(TransformerMixin, BaseEstimator):
    """The compiled FeatureSet: raw rows in, a float64 feature matrix out."""

    def __init__(self, features: list | None = None, column_types: dict | None = None):
        self.features = features
        self.column_types = column_types

    # -- fitting -----------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "FeatureTransformer":
        frame = self._as_frame(X)
        features = [_wire(f) for f in (self.features or [])]
        if not features:
            raise FeatureDefinitionError("-", "a FeatureSet needs at least one feature")
        column_types = dict(self.column_types or infer_column_types(frame))
        catalog = resolve_features(features, column_types)
        inputs = sorted({c for entry in catalog for c in entry["inputs"]})
        missing = [c for c in inputs if c not in frame.columns]
        if missing:
            raise InputError(f"missing input column {missing[0]!r}")
        self.input_types_ = {c: column_types[c] for c in inputs}
        frame = self._coerce(frame)
        self.steps_ = [self._fit_one(feature, frame) for feature in features]
        self.catalog_ = catalog
        self.feature_names_out_ = [name for step in self.steps_ for name in step["outputs"]]
        self.feature_names_in_ = np.asarray(inputs, dtype=object)
        self.n_features_in_ = len(inputs)
        return self

    def _fit_one(self, feature: dict, frame: pd.DataFrame) -> dict:
        name = feature["name"]
        if feature.get("expression") is not None:
            values = compile_expression(feature["expression"]).evaluate(frame)
            if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)):
                raise FeatureDefinitionError(
                    name, f"the expression gives {values.dtype} values; features must be numbers or true/false")
            return {"name": name, "kind": "expression", "expression": feature["expression"], "outputs": [name]}
        transform = feature["transform"]
        kind, column = transform["type"], transform["column"]
        series = frame[column]
        step: dict[str, Any] = {"name": name, "kind": kind, "column": column, "outputs": [name]}
        if kind == "oneHot":
            codes, texts = category_codes(series)
            per_code = np.bincount(codes[codes >= 0], minlength=len(texts))
            counts: dict[str, int] = {}
            for text, count in zip(texts, per_code.tolist()):  # 1 and 1.0 (JSON) share the text "1"
                counts[text] = counts.get(text, 0) + count
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            limit = min(transform.get("maxCategories") or MAX_ONE_HOT_CATEGORIES, MAX_ONE_HOT_CATEGORIES)
            step["categories"] = [value for value, _ in ranked[:limit]]
            step["other"] = bool(transform.get("otherBucket", True))
            step["outputs"] = [f"{name}={c}" for c in step["categories"]] + ([f"{name}={OTHER}"] if step["other"] else [])
        elif kind == "bucketize":
            step["boundaries"] = [float(b) for b in transform["boundaries"]]
        elif kind == "standardScale":
            values = series.dropna()
            if values.empty:
                raise FeatureDefinitionError(name, f"column {column!r} has no values to fit a scaler on")
            std = float(values.std(ddof=0))
            step["mean"], step["scale"] = float(values.mean()), (std if std > 0 else 1.0)
        elif kind == "minMaxScale":
            values = series.dropna()
            if values.empty:
                raise FeatureDefinitionError(name, f"column {column!r} has no values to fit a scaler on")
            low, high = float(values.min()), float(values.max())
            step["min"], step["range"] = low, (high - low if high > low else 1.0)
        elif kind == "impute":
            step["value"] = self._fill_value(name, transform, series)
        elif kind == "hash":
            step["buckets"] = int(transform["buckets"])
            step["outputs"] = [f"{name}#{i}" for i in range(step["buckets"])]
        elif kind == "datePart":
            step["part"] = transform["part"]
        return step

    @staticmethod
    def _fill_value(name: str, transform: dict, series: pd.Series) -> float:
        strategy = transform["strategy"]
        if strategy == "constant":
            return float(transform["fillValue"])
        values = series.dropna()
        if values.empty:
            raise FeatureDefinitionError(name, f"column {transform['column']!r} has no values to compute the {strategy} from")
        if strategy == "mean":
            return float(values.mean())
        if strategy == "median":
            return float(values.median())
        counts = values.value_counts()
        top = counts[counts == counts.max()].index
        return float(min(top))  # ties: the smallest value, so the result does not depend on row order

    # -- transforming --------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "steps_")
        frame = self._coerce(self._as_frame(X))
        # column-major: every feature fills its own contiguous columns in place
        out = np.zeros((len(frame), len(self.feature_names_out_)), dtype="float64", order="F")
        start = 0
        for step in self.steps_:
            width = len(step["outputs"])
            self._transform_one(step, frame, out[:, start:start + width])
            start += width
        return out

    def _transform_one(self, step: dict, frame: pd.DataFrame, out: np.ndarray) -> None:
        """Write one feature's columns into `out` (zeros on entry)."""
        kind = step["kind"]
        if kind == "expression":
            values = compile_expression(step["expression"]).evaluate(frame)
            out[:, 0] = values.to_numpy(dtype="float64", na_value=np.nan)
            return
        series = frame[step["column"]]
        if kind in ("oneHot", "hash"):
            codes, texts = category_codes(series)
            if kind == "oneHot":
                index = {c: i for i, c in enumerate(step["categories"])}
                column_of = np.array([index.get(t, -1) for t in texts] + [-1], dtype=np.int64)
                if step["other"]:
                    column_of[column_of < 0] = out.shape[1] - 1  # unseen, rare and missing values
            else:
                column_of = np.array([_stable_hash(t, step["buckets"]) for t in texts] + [-1], dtype=np.int64)
            columns = column_of[codes]  # code -1 (missing) picks the trailing entry
            rows = np.flatnonzero(columns >= 0)
            out[rows, columns[rows]] = 1.0
            return
        if kind == "datePart":
            part = DATE_PART_ACCESSORS[step["part"]](series.dt)
            out[:, 0] = pd.Series(part).to_numpy(dtype="float64", na_value=np.nan)
            return
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        if kind == "bucketize":
            buckets = np.searchsorted(np.asarray(step["boundaries"]), values, side="right").astype("float64")
            buckets[np.isnan(values)] = np.nan
            out[:, 0] = buckets
        elif kind == "standardScale":
            out[:, 0] = (values - step["mean"]) / step["scale"]
        elif kind == "minMaxScale":
            out[:, 0] = (values - step["min"]) / step["range"]
        elif kind == "impute":
            out[:, 0] = np.where(np.isnan(values), step["value"], values)
        else:
            raise FeatureDefinitionError(step["name"], f"unknown transform type {kind!r}")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "steps_")
        return np.asarray(self.feature_names_out_, dtype=object)

    # -- input handling -------------------------------------------------------------
    @staticmethod
    def _as_frame(X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, dict):
            return pd.DataFrame(X)
        if isinstance(X, list) and all(isinstance(row, dict) for row in X):
            return pd.DataFrame.from_records(X)
        raise InputError("input rows must be a DataFrame, a list of {column: value} objects or a dict of columns")

    def _coerce(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.input_types_ if c not in frame.columns]
        if missing:
            raise InputError(f"missing input column {missing[0]!r}")
        return pd.DataFrame({c: coerce_column(frame[c].rename(c), t) for c, t in self.input_types_.items()},
                            index=frame.index)


TRUSTED_TYPES = [f"{FeatureTransformer.__module__}.{FeatureTransformer.__qualname__}"]

__all__ = [
    "CompiledExpression",
    "FeatureDefinitionError",
    "FeatureTransformer",
    "InputError",
    "TRUSTED_TYPES",
    "coerce_column",
    "infer_column_types",
    "resolve_features",
]
