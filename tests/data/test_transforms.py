"""The compiled FeatureTransformer: each transform against hand-computed values, the
catalog checks, skops persistence and the train/serve skew test."""

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from kadence.api.featureset import FeatureSetSpec
from kadence.domain.data.transforms import (
    TRUSTED_TYPES,
    FeatureDefinitionError,
    FeatureTransformer,
    InputError,
    resolve_features,
)

TYPES = {"age": "float", "city": "category", "signup": "datetime", "plan": "string", "active": "bool"}
TRAIN = pd.DataFrame({
    "age": [10.0, 20.0, 30.0, np.nan, 40.0],
    "city": ["a", "b", "a", "c", "a"],
    "signup": pd.to_datetime(["2024-01-01T05:00:00Z", "2024-02-29T12:00:00Z", "2024-03-03T00:00:00Z",
                              "2024-12-31T23:59:00Z", "2025-01-06T08:30:00Z"]),
    "plan": ["p1", "p2", "p3", "p4", "p1"],
    "active": [True, False, True, True, False],
})


def fit_one(transform=None, expression=None, frame=TRAIN):
    feature = {"name": "f"}
    if transform is not None:
        feature["transform"] = transform
    else:
        feature["expression"] = expression
    transformer = FeatureTransformer(features=[feature], column_types=TYPES).fit(frame)
    return transformer, transformer.transform(frame)


def test_one_hot_keeps_the_most_frequent_categories_and_sends_the_rest_to_other():
    transformer, out = fit_one({"type": "oneHot", "column": "city", "maxCategories": 1})
    assert list(transformer.get_feature_names_out()) == ["f=a", "f=<other>"]
    np.testing.assert_array_equal(out, [[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]])


def test_one_hot_sends_unseen_and_missing_values_to_other():
    transformer, _ = fit_one({"type": "oneHot", "column": "city"})
    assert list(transformer.get_feature_names_out()) == ["f=a", "f=b", "f=c", "f=<other>"]
    out = transformer.transform(pd.DataFrame({"city": ["zzz", None, "b"]}))
    np.testing.assert_array_equal(out, [[0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 0, 0]])


def test_one_hot_without_an_other_bucket_gives_all_zeros_for_unseen_values():
    transformer, _ = fit_one({"type": "oneHot", "column": "city", "otherBucket": False})
    np.testing.assert_array_equal(transformer.transform(pd.DataFrame({"city": ["zzz"]})), [[0, 0, 0]])


def test_bucketize_counts_the_boundaries_at_or_below_each_value():
    _, out = fit_one({"type": "bucketize", "column": "age", "boundaries": [15, 30]})
    np.testing.assert_array_equal(out.ravel(), [0, 1, 2, np.nan, 2])


def test_standard_scale_uses_the_population_mean_and_std():
    _, out = fit_one({"type": "standardScale", "column": "age"})
    mean, std = 25.0, np.sqrt(((10 - 25) ** 2 + 5**2 + 5**2 + 15**2) / 4)
    np.testing.assert_allclose(out.ravel(), [(10 - mean) / std, (20 - mean) / std, (30 - mean) / std, np.nan,
                                             (40 - mean) / std])


def test_min_max_scale_maps_the_training_range_onto_zero_to_one():
    _, out = fit_one({"type": "minMaxScale", "column": "age"})
    np.testing.assert_allclose(out.ravel(), [0, 1 / 3, 2 / 3, np.nan, 1])


@pytest.mark.parametrize("strategy, fill, expected", [
    ("mean", None, 25.0),
    ("median", None, 25.0),
    ("constant", "-1", -1.0),
    ("mostFrequent", None, 10.0),  # all values are equally frequent: the smallest wins
])
def test_impute_fills_missing_values_with_the_fitted_statistic(strategy, fill, expected):
    transform = {"type": "impute", "column": "age", "strategy": strategy}
    if fill is not None:
        transform["fillValue"] = fill
    _, out = fit_one(transform)
    np.testing.assert_allclose(out.ravel(), [10, 20, 30, expected, 40])


def test_impute_most_frequent_takes_the_commonest_value():
    frame = TRAIN.assign(age=[3.0, 3.0, 5.0, np.nan, 7.0])
    _, out = fit_one({"type": "impute", "column": "age", "strategy": "mostFrequent"}, frame=frame)
    assert out[3, 0] == 3.0


def test_hash_sets_one_stable_indicator_per_value():
    from sklearn.utils import murmurhash3_32

    transformer, out = fit_one({"type": "hash", "column": "plan", "buckets": 8})
    assert list(transformer.get_feature_names_out()) == [f"f#{i}" for i in range(8)]
    assert out.sum(axis=1).tolist() == [1, 1, 1, 1, 1]
    for row, value in enumerate(TRAIN["plan"]):
        assert out[row, murmurhash3_32(value, seed=0, positive=True) % 8] == 1
    np.testing.assert_array_equal(out[0], out[4])  # same value, same bucket


@pytest.mark.parametrize("part, expected", [
    ("year", [2024, 2024, 2024, 2024, 2025]),
    ("month", [1, 2, 3, 12, 1]),
    ("day", [1, 29, 3, 31, 6]),
    ("dayOfWeek", [0, 3, 6, 1, 0]),
    ("dayOfYear", [1, 60, 63, 366, 6]),
    ("hour", [5, 12, 0, 23, 8]),
    ("minute", [0, 0, 0, 59, 30]),
    ("weekOfYear", [1, 9, 9, 1, 2]),
])
def test_date_parts_match_the_calendar(part, expected):
    _, out = fit_one({"type": "datePart", "column": "signup", "part": part})
    np.testing.assert_array_equal(out.ravel(), expected)


def test_an_expression_feature_turns_booleans_into_zero_and_one():
    _, out = fit_one(expression="active and age > 15")
    np.testing.assert_array_equal(out.ravel(), [0, 0, 1, 0, 0])


def test_an_expression_giving_text_is_refused_with_the_feature_name():
    with pytest.raises(FeatureDefinitionError, match="feature 'f': the expression gives"):
        fit_one(expression="fillna(city, 'x')")


@pytest.mark.parametrize("feature, reason", [
    ({"name": "x", "expression": "log1p(agee)"}, "feature 'x': unknown column 'agee'"),
    ({"name": "x", "expression": "age.mean()"}, "feature 'x': not allowed in an expression: attribute access"),
    ({"name": "x", "transform": {"type": "oneHot", "column": "town"}}, "feature 'x': unknown column 'town'"),
    ({"name": "x", "transform": {"type": "standardScale", "column": "city"}}, "standardScale needs a numeric column"),
    ({"name": "x", "transform": {"type": "datePart", "column": "age", "part": "year"}}, "datePart needs a datetime"),
    ({"name": "x", "transform": {"type": "hash", "column": "plan", "buckets": 100000}}, "hash needs buckets between"),
    ({"name": "x", "transform": {"type": "impute", "column": "age", "strategy": "constant", "fillValue": "abc"}},
     "fillValue 'abc' is not a number"),
])
def test_a_bad_definition_is_refused_with_the_feature_name_and_reason(feature, reason):
    with pytest.raises(FeatureDefinitionError, match=reason.replace("(", r"\(")):
        resolve_features([feature], TYPES)


def test_the_catalog_lists_each_feature_with_its_type_and_source():
    spec = FeatureSetSpec.model_validate({"datasetRef": {"name": "d"}, "features": [
        {"name": "logage", "expression": "log1p(age)"},
        {"name": "city", "transform": {"type": "oneHot", "column": "city", "maxCategories": 5}},
        {"name": "agebucket", "transform": {"type": "bucketize", "column": "age", "boundaries": [18, 65]}},
    ]})
    catalog = resolve_features(spec.features, TYPES)
    assert [(c["name"], c["type"], c["inputs"]) for c in catalog] == [
        ("logage", "float", ["age"]), ("city", "category", ["city"]), ("agebucket", "int", ["age"])]
    assert catalog[1]["source"] == "oneHot(city, maxCategories=5, otherBucket=True)"


def test_serving_input_with_a_value_of_the_wrong_type_is_refused_with_the_column_name():
    transformer, _ = fit_one({"type": "standardScale", "column": "age"})
    with pytest.raises(InputError, match="column 'age' must be numeric"):
        transformer.transform([{"age": "old"}])
    with pytest.raises(InputError, match="missing input column 'age'"):
        transformer.transform([{"agee": 3}])


FEATURES = [
    {"name": "logage", "expression": "log1p(fillna(age, 0))"},
    {"name": "senior", "expression": "where(age > 65, 1, 0)"},
    {"name": "city", "transform": {"type": "oneHot", "column": "city", "maxCategories": 2}},
    {"name": "agebucket", "transform": {"type": "bucketize", "column": "age", "boundaries": [18, 30, 65]}},
    {"name": "agez", "transform": {"type": "standardScale", "column": "age"}},
    {"name": "age01", "transform": {"type": "minMaxScale", "column": "age"}},
    {"name": "agefilled", "transform": {"type": "impute", "column": "age", "strategy": "median"}},
    {"name": "planhash", "transform": {"type": "hash", "column": "plan", "buckets": 16}},
    {"name": "month", "transform": {"type": "datePart", "column": "signup", "part": "month"}},
    {"name": "weekday", "expression": "dayofweek(signup)"},
    {"name": "isactive", "expression": "where(active, 1, 0)"},
]


@pytest.fixture(scope="module")
def training_rows():
    rng = np.random.default_rng(7)
    n = 400
    age = rng.uniform(10, 90, n)
    age[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "age": age,
        "city": rng.choice(["paris", "lyon", "nice", "brest"], n, p=[0.5, 0.3, 0.15, 0.05]),
        "signup": pd.to_datetime("2024-01-01", utc=True) + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        "plan": [f"plan-{i}" for i in rng.integers(0, 1000, n)],
        "active": rng.random(n) < 0.5,
    })


def test_the_transformer_round_trips_through_skops_with_only_its_own_type_trusted(training_rows):
    transformer = FeatureTransformer(features=FEATURES, column_types=TYPES).fit(training_rows)
    data = sio.dumps(transformer)
    assert sio.get_untrusted_types(data=data) == TRUSTED_TYPES
    loaded = sio.loads(data, trusted=TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.transform(training_rows), transformer.transform(training_rows))
    assert list(loaded.get_feature_names_out()) == list(transformer.get_feature_names_out())


def test_serving_rows_as_json_give_the_training_feature_vectors_row_by_row(training_rows, tmp_path):
    """The skew test: features computed at training time (fit_transform over the frame) equal
    the ones a server computes from raw JSON rows through the saved pipeline's transformer."""
    pipeline = make_pipeline(FeatureTransformer(features=FEATURES, column_types=TYPES),
                             LogisticRegression(max_iter=500))
    labels = (training_rows["city"] == "paris").astype(int)
    imputed = training_rows.assign(age=training_rows["age"].fillna(50.0))
    training_matrix = pipeline[0].fit_transform(imputed)
    pipeline[1].fit(training_matrix, labels)
    path = tmp_path / "model.skops"
    sio.dump(pipeline, path)
    served = sio.load(path, trusted=sio.get_untrusted_types(file=path))

    records = imputed.assign(signup=imputed["signup"].map(lambda t: t.isoformat())).to_dict("records")
    raw_rows = json.loads(json.dumps(records))  # what a client sends: JSON numbers, ISO-8601 text
    for row, expected in zip(raw_rows, training_matrix):
        np.testing.assert_array_equal(served[0].transform([row])[0], expected)
    np.testing.assert_array_equal(served.predict(raw_rows), pipeline.predict(imputed))


def test_an_integer_column_read_as_float_names_the_same_categories():
    frame = pd.DataFrame({"level": pd.Series([1, 2, 2], dtype="Int64")})
    transformer = FeatureTransformer(features=[{"name": "lvl", "transform": {"type": "oneHot", "column": "level"}}],
                                     column_types={"level": "int"}).fit(frame)
    assert list(transformer.get_feature_names_out()) == ["lvl=2", "lvl=1", "lvl=<other>"]
    np.testing.assert_array_equal(transformer.transform([{"level": 1.0}, {"level": "2"}]), [[0, 1, 0], [1, 0, 0]])


def test_a_category_sent_as_a_json_number_matches_the_category_read_as_text():
    frame = pd.DataFrame({"zone": pd.Series(["1", "2", "2", None], dtype="str")})
    features = [{"name": "z", "transform": {"type": "oneHot", "column": "zone"}},
                {"name": "h", "transform": {"type": "hash", "column": "zone", "buckets": 4}}]
    transformer = FeatureTransformer(features=features, column_types={"zone": "category"}).fit(frame)
    training = transformer.transform(frame)
    served = transformer.transform([{"zone": 1}, {"zone": 2.0}, {"zone": "2"}, {"zone": None}])
    np.testing.assert_array_equal(served, training)
    assert training[3].tolist()[:3] == [0, 0, 1] and training[3, 3:].sum() == 0  # missing: other, no hash bucket
