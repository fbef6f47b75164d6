"""The ONNX converter of the FeatureSet transformer: every feature kind it converts gives what
`FeatureTransformer.transform` gives, missing values and edge dates included; what it cannot
convert is refused by name, and the model then compiles the estimator alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kadence.domain.data.transforms import FeatureTransformer
from kadence.domain.data.transforms_onnx import register_feature_converter

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

TYPES = {"n": "float", "k": "int", "flag": "bool", "plan": "category", "code": "int", "t": "datetime"}


def frame() -> pd.DataFrame:
    times = ["1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "2000-02-29T13:45:10Z", "2024-12-31T23:59:59Z",
             "1900-03-01T06:07:00Z", "2100-01-01T00:30:00Z", None, "2023-06-15T12:00:00Z"]
    return pd.DataFrame({
        "n": [1.5, -2.25, np.nan, 0.0, 10.0, 3.0, 7.5, -0.5],
        "k": np.array([0, 3, 5, 12, 1, 7, 2, 30], dtype=np.int64),
        "flag": [True, False, True, False, False, True, True, False],
        "plan": ["basic", "pro", "max", "basic", "basic", "gold", "pro", "basic"],
        "code": np.array([1, 2, 2, 3, 1, 9, 2, 1], dtype=np.int64),
        "t": pd.to_datetime(times, utc=True, format="ISO8601"),
    })


def graph_output(transformer: FeatureTransformer, X: pd.DataFrame) -> np.ndarray:
    import onnxruntime
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    from kadence.serving.compiled import ML_OPSET, ONNX_OPSET, _tensor_type_for, epoch_milliseconds

    register_feature_converter()
    columns = list(transformer.feature_names_in_)
    graph = convert_sklearn(transformer, initial_types=[(c, _tensor_type_for(X[c], DoubleTensorType)) for c in columns],
                            target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET})
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for tensor in session.get_inputs():
        values = X[tensor.name]
        if values.dtype.kind == "M":
            array = epoch_milliseconds(values)
        else:
            array = values.to_numpy(dtype={"tensor(double)": np.float64, "tensor(int64)": np.int64,
                                           "tensor(bool)": bool}.get(tensor.type, object))
        feeds[tensor.name] = array.reshape(-1, 1)
    return session.run(None, feeds)[0]


def assert_same(features: list[dict]) -> None:
    X = frame()
    transformer = FeatureTransformer(features, TYPES).fit(X)
    expected = transformer.transform(X)
    got = graph_output(transformer, X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("expression", [
    "log1p(k)", "n / (k + 1)", "where(k >= 3, 1, 0)", "where(flag, 1, 0)", "n * 2 - k ** 2", "-n", "k // 4",
    "k % 4", "n % -4", "abs(n) + sqrt(k) + exp(-k) + log(k + 1)", "floor(n) + ceil(n)", "round(n * 3.3, 1)",
    "clip(n, -1, 5)", "min(n, k) + max(n, 1)", "where(isnull(n), 1, 0)", "fillna(n, 99)", "not flag",
    "flag and k > 2", "flag or n < 0", "1 < k <= 7", "n != 2", "n == 0", "year(t) + month(t) + day(t)",
    "dayofweek(t) * 100 + hour(t)", "where(isnull(t), 1, 0)",
])
def test_an_expression_feature_gives_what_the_transformer_gives(expression):
    assert_same([{"name": "f", "expression": expression}])


@pytest.mark.parametrize("transform", [
    {"type": "oneHot", "column": "plan"},
    {"type": "oneHot", "column": "plan", "maxCategories": 2},
    {"type": "oneHot", "column": "plan", "maxCategories": 2, "otherBucket": False},
    {"type": "oneHot", "column": "code", "maxCategories": 2},
    {"type": "oneHot", "column": "flag"},
    {"type": "bucketize", "column": "n", "boundaries": [-1, 0, 2.5, 10]},
    {"type": "bucketize", "column": "k", "boundaries": [3]},
    {"type": "standardScale", "column": "n"},
    {"type": "minMaxScale", "column": "k"},
    {"type": "impute", "column": "n", "strategy": "median"},
    {"type": "impute", "column": "n", "strategy": "constant", "fillValue": -1},
], ids=lambda t: "-".join(f"{v}" for v in t.values()))
def test_a_fitted_transform_gives_what_the_transformer_gives(transform):
    assert_same([{"name": "f", "transform": transform}])


@pytest.mark.parametrize("part", ["year", "month", "day", "dayOfWeek", "dayOfYear", "hour", "minute"])
def test_a_date_part_is_computed_in_utc_across_the_epoch_leap_days_and_centuries(part):
    assert_same([{"name": "f", "transform": {"type": "datePart", "column": "t", "part": part}}])


def test_the_churn_features_together_give_one_matrix_in_the_transformers_column_order():
    assert_same([{"name": "log_k", "expression": "log1p(k)"}, {"name": "plan", "transform": {"type": "oneHot",
                                                                                          "column": "plan"}},
                 {"name": "band", "transform": {"type": "bucketize", "column": "k", "boundaries": [6, 12]}},
                 {"name": "month", "transform": {"type": "datePart", "column": "t", "part": "month"}},
                 {"name": "senior", "expression": "where(flag, 1, 0)"}])


@pytest.mark.parametrize("feature, why", [
    ({"name": "h", "transform": {"type": "hash", "column": "plan", "buckets": 8}}, "murmurhash3"),
    ({"name": "w", "transform": {"type": "datePart", "column": "t", "part": "weekOfYear"}}, "weekOfYear"),
    ({"name": "s", "expression": "where(plan == 'basic', 1, 0)"}, "text column 'plan' in an expression"),
])
def test_a_feature_without_an_onnx_form_is_refused_naming_it(feature, why):
    X = frame()
    transformer = FeatureTransformer([feature], TYPES).fit(X)
    with pytest.raises(Exception, match=f"feature '{feature['name']}'.*{why}"):
        graph_output(transformer, X)


def test_a_pipeline_with_such_a_feature_compiles_its_estimator_alone():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from kadence.serving.compiled import CompiledModel, verify_compiled

    X = frame()
    y = [0, 1, 0, 1, 0, 1, 1, 0]
    features = [{"name": "h", "transform": {"type": "hash", "column": "plan", "buckets": 8}},
                {"name": "k", "expression": "k"}]
    pipeline = Pipeline([("features", FeatureTransformer(features, TYPES)), ("model", LogisticRegression())]).fit(X, y)
    ok, _, graph = verify_compiled(pipeline, X[list(pipeline[0].feature_names_in_)], 1e-6)
    assert ok and CompiledModel(graph, pipeline).scope == "estimator"


def test_a_pipeline_of_a_featureset_compiles_whole_and_takes_times_as_iso_text():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from kadence.serving.compiled import CompiledModel, verify_compiled

    X = frame().dropna(subset=["n", "t"])  # a logistic regression takes no missing feature
    y = [0, 1, 0, 1, 0, 1]
    features = [{"name": "m", "transform": {"type": "datePart", "column": "t", "part": "month"}},
                {"name": "plan", "transform": {"type": "oneHot", "column": "plan"}}, {"name": "n", "expression": "n"}]
    pipeline = Pipeline([("features", FeatureTransformer(features, TYPES)), ("model", LogisticRegression())]).fit(X, y)
    raw = X[list(pipeline[0].feature_names_in_)]
    ok, difference, graph = verify_compiled(pipeline, raw, 1e-6)
    model = CompiledModel(graph, pipeline)
    assert ok and model.scope == "pipeline" and model.input_mode == "columns" and model.datetimes == {"t"}
    as_text = {c: raw[c].to_numpy() for c in raw.columns}
    as_text["t"] = np.array([None if pd.isna(v) else v.isoformat() for v in raw["t"]], dtype=object)
    _, probabilities = model.run(as_text)
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(raw), atol=1e-6)
