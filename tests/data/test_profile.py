"""The profile against numpy, and its mergeability across batches."""

import numpy as np
import pandas as pd
import pytest

from kadence.domain.data import profile as profile_module
from kadence.domain.data.profile import QUANTILES, Profiler, profile_batches, profile_frame

RNG = np.random.default_rng(11)
N = 5000
VALUES = RNG.normal(50, 12, N)
VALUES[RNG.random(N) < 0.07] = np.nan
FRAME = pd.DataFrame({
    "x": VALUES,
    "k": pd.Series(RNG.integers(0, 100, N), dtype="Int64"),
    "c": RNG.choice(["red", "green", "blue", "pink"], N, p=[0.4, 0.3, 0.2, 0.1]),
    "b": pd.Series(RNG.random(N) < 0.3, dtype="boolean"),
    "t": pd.to_datetime("2024-01-01", utc=True) + pd.to_timedelta(RNG.integers(0, 10**8, N), unit="s"),
})
TYPES = {"x": "float", "k": "int", "c": "category", "b": "bool", "t": "datetime"}


@pytest.fixture(scope="module")
def profile():
    return profile_frame(FRAME, TYPES)


def test_numeric_statistics_match_numpy(profile):
    column = profile["columns"]["x"]
    present = VALUES[~np.isnan(VALUES)]
    assert column["count"] == len(present)
    assert column["missing"] == N - len(present)
    assert column["min"] == present.min() and column["max"] == present.max()
    assert column["mean"] == pytest.approx(present.mean(), rel=1e-12)
    assert column["std"] == pytest.approx(present.std(ddof=1), rel=1e-12)


def test_quantiles_are_exact_below_the_sample_size(profile):
    column = profile["columns"]["x"]
    present = VALUES[~np.isnan(VALUES)]
    assert column["quantilesExact"] is True
    for q in QUANTILES:
        assert column["quantiles"][str(q)] == pytest.approx(np.quantile(present, q), rel=1e-12)


def test_histogram_matches_numpy_over_min_to_max(profile):
    column = profile["columns"]["x"]
    present = VALUES[~np.isnan(VALUES)]
    counts, edges = np.histogram(present, bins=20, range=(present.min(), present.max()))
    np.testing.assert_allclose(column["histogram"]["edges"], edges)
    assert column["histogram"]["counts"] == counts.tolist()
    assert sum(column["histogram"]["counts"]) == column["count"]


def test_categorical_counts_match_value_counts(profile):
    column = profile["columns"]["c"]
    expected = FRAME["c"].value_counts()
    assert column["distinct"] == 4
    assert [(e["value"], e["count"]) for e in column["topCategories"]] == list(expected.items())
    assert column["otherCount"] == 0 and column["topCategoriesExact"] is True


def test_bool_columns_get_share_of_true_and_category_counts(profile):
    column = profile["columns"]["b"]
    assert column["mean"] == pytest.approx(FRAME["b"].astype(float).mean())
    assert {e["value"]: e["count"] for e in column["topCategories"]} == {
        "true": int(FRAME["b"].sum()), "false": int((~FRAME["b"]).sum())}


def test_datetime_columns_report_their_range(profile):
    column = profile["columns"]["t"]
    assert column["min"] == FRAME["t"].min().isoformat() and column["max"] == FRAME["t"].max().isoformat()


def test_integer_columns_match_numpy(profile):
    column = profile["columns"]["k"]
    values = FRAME["k"].to_numpy(dtype=float)
    assert column["mean"] == pytest.approx(values.mean()) and column["max"] == values.max()


def test_a_profile_built_batch_by_batch_equals_the_one_built_at_once(profile):
    batches = [FRAME.iloc[i:i + 700] for i in range(0, N, 700)]
    chunked = profile_batches(batches, TYPES)
    for name in TYPES:
        for key, value in profile["columns"][name].items():
            if isinstance(value, float):
                assert chunked["columns"][name][key] == pytest.approx(value, rel=1e-9), (name, key)
            else:
                assert chunked["columns"][name][key] == value, (name, key)


def test_profilers_of_separate_files_merge_into_the_profile_of_all_rows(profile):
    first, second = Profiler(TYPES), Profiler(TYPES)
    first.update(FRAME.iloc[:1234])
    second.update(FRAME.iloc[1234:])
    merged = first.merge(second)
    merged.start_histograms()
    merged.update_histograms(FRAME)
    result = merged.result()
    assert result["rows"] == N
    assert result["columns"]["x"]["std"] == pytest.approx(profile["columns"]["x"]["std"], rel=1e-9)
    assert result["columns"]["x"]["quantiles"] == profile["columns"]["x"]["quantiles"]
    assert result["columns"]["c"]["topCategories"] == profile["columns"]["c"]["topCategories"]


def test_above_the_sample_size_quantiles_come_from_a_sample_that_does_not_depend_on_batching(monkeypatch):
    monkeypatch.setattr(profile_module, "SAMPLE_SIZE", 500)
    frame = FRAME[["x"]]
    whole = profile_batches([frame], {"x": "float"})["columns"]["x"]
    split = profile_batches([frame.iloc[:2000], frame.iloc[2000:]], {"x": "float"})["columns"]["x"]
    assert whole["quantilesExact"] is False
    assert whole["quantiles"] == split["quantiles"]
    present = VALUES[~np.isnan(VALUES)]
    assert whole["quantiles"]["0.5"] == pytest.approx(np.median(present), abs=2.0)  # 12 std, 500 samples


def test_many_distinct_categories_are_pruned_to_the_most_frequent(monkeypatch):
    monkeypatch.setattr(profile_module, "MAX_TRACKED", 50)
    monkeypatch.setattr(profile_module, "PRUNE_TO", 10)
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(200)] + ["hot"] * 30})
    column = profile_frame(frame, {"id": "string"})["columns"]["id"]
    assert column["topCategories"][0] == {"value": "hot", "count": 30}
    assert column["topCategoriesExact"] is False
    assert column["count"] == 230


def test_an_all_missing_column_has_null_statistics():
    column = profile_frame(pd.DataFrame({"x": [np.nan, np.nan]}), {"x": "float"})["columns"]["x"]
    assert column["count"] == 0 and column["missing"] == 2 and column["mean"] is None and column["histogram"] is None


def test_a_constant_column_gets_a_histogram_around_its_value():
    column = profile_frame(pd.DataFrame({"x": [3.0] * 4}), {"x": "float"})["columns"]["x"]
    assert sum(column["histogram"]["counts"]) == 4 and column["std"] == 0.0
