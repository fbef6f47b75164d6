import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from kadence.domain.monitoring.drift import (
    EMPTY_REFERENCE,
    JUDGED,
    NO_REFERENCE,
    NO_VALUES_IN_WINDOW,
    NOT_IN_WINDOW,
    DriftConfigError,
    DriftSettings,
    ReferenceFormatError,
    evaluate_drift,
    psi,
    reference_from_profile,
    reference_from_sample,
)

RNG = np.random.default_rng(7)
NORMAL_REF = RNG.normal(0, 1, 20_000)
NORMAL_SAME = RNG.normal(0, 1, 20_000)
NORMAL_SHIFTED = RNG.normal(0.5, 1, 20_000)


def judge(reference_values, current_values, method, threshold=None, **settings):
    reference = reference_from_sample(pd.DataFrame({"x": reference_values}))
    result = evaluate_drift(reference, pd.DataFrame({"x": current_values}),
                            DriftSettings(method=method, threshold=threshold, **settings))
    return result.features[0]


def test_psi_of_two_share_vectors_matches_the_formula():
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)


def test_psi_clips_an_empty_bucket_to_one_in_ten_thousand():
    expected = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.0, 1.0])) == pytest.approx(expected)


def test_psi_of_a_sample_uses_quantile_cut_points_with_point_buckets():
    # bins=2 on [1, 2, 3, 4]: cut points 1, 2.5, 4; buckets <1, =1, (1,2.5), =2.5, (2.5,4), =4, >4
    reference = reference_from_sample(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), bins=2)
    np.testing.assert_allclose(reference.columns["x"].cut_points, [1.0, 2.5, 4.0])
    ref_shares = np.array([0, 1, 1, 0, 1, 1, 0]) / 4
    cur_shares = np.array([0, 0, 0, 0, 1, 1, 2]) / 4
    result = evaluate_drift(reference, pd.DataFrame({"x": [3.0, 4.0, 5.0, 6.0]}), DriftSettings(method="psi"))
    assert result.features[0].score == pytest.approx(psi(ref_shares, cur_shares))


def test_psi_is_near_zero_for_the_same_distribution_and_flags_a_half_sigma_shift():
    same = judge(NORMAL_REF, NORMAL_SAME, "psi")
    shifted = judge(NORMAL_REF, NORMAL_SHIFTED, "psi")
    assert same.score < 0.01 and not same.drifted
    assert shifted.score > 0.2 and shifted.drifted


def test_ks_p_value_of_small_samples_is_scipys_exact_test():
    reference, current = NORMAL_REF[:300], NORMAL_SHIFTED[:300] * 1.1
    expected = stats.ks_2samp(reference, current, method="exact").pvalue
    assert judge(reference, current, "ks").score == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.04])
def test_ks_p_value_of_large_samples_is_within_half_a_percent_of_scipy(shift):
    current = NORMAL_SAME + shift
    expected = stats.ks_2samp(NORMAL_REF, current, method="asymp").pvalue
    assert expected > 1e-4
    assert judge(NORMAL_REF, current, "ks").score == pytest.approx(expected, rel=5e-3)


@pytest.mark.parametrize("m, n, ties", [(5, 3, False), (100, 37, False), (12_345, 6_789, False),
                                         (1000, 700, True), (20_000, 20_000, True)])
def test_the_ks_statistic_and_wasserstein_distance_of_sorted_samples_match_scipy(m, n, ties):
    from kadence.domain.monitoring.drift import ks_statistic, wasserstein_sorted

    rng = np.random.default_rng(m + n)
    if ties:
        a, b = rng.integers(0, 5, m).astype(float), rng.integers(0, 6, n).astype(float)
    else:
        a, b = rng.normal(0, 1, m), rng.normal(0.3, 1.2, n)
    a, b = np.sort(a), np.sort(b)
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert wasserstein_sorted(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_wasserstein_is_scipys_distance_over_the_reference_std():
    expected = stats.wasserstein_distance(NORMAL_REF, NORMAL_SHIFTED) / np.std(NORMAL_REF)
    result = judge(NORMAL_REF, NORMAL_SHIFTED, "wasserstein")
    assert result.score == pytest.approx(expected, rel=1e-9)
    assert result.drifted and result.threshold == 0.1


def test_jensen_shannon_matches_scipy_on_the_bucket_shares():
    reference = reference_from_sample(pd.DataFrame({"x": NORMAL_REF}))
    column = reference.columns["x"]
    current = np.sort(NORMAL_SHIFTED)
    left = np.searchsorted(current, column.cut_points, side="left")
    right = np.searchsorted(current, column.cut_points, side="right")
    bounds = np.concatenate([[0], np.column_stack([left, right]).ravel(), [len(current)]])
    expected = jensenshannon(column.bucket_shares, np.diff(bounds) / len(current), base=2)
    result = evaluate_drift(reference, pd.DataFrame({"x": NORMAL_SHIFTED}), DriftSettings(method="jensenshannon"))
    assert result.features[0].score == pytest.approx(expected)


def test_chi_squared_matches_scipys_test_of_homogeneity():
    reference = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    current = ["a"] * 30 + ["b"] * 30 + ["c"] * 40
    expected = stats.chi2_contingency([[50, 30, 20], [30, 30, 40]], correction=False).pvalue
    result = judge(reference, current, "chisquared")
    assert result.score == pytest.approx(expected)
    assert result.drifted and result.kind == "categorical"


def test_a_category_unseen_in_the_reference_counts_in_the_chi_squared_test():
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 40 + ["b"] * 40 + ["new"] * 20
    expected = stats.chi2_contingency([[50, 50, 0], [40, 40, 20]], correction=False).pvalue
    assert judge(reference, current, "chisquared").score == pytest.approx(expected)


def test_a_category_unseen_in_the_reference_raises_psi_through_the_clipped_share():
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 40 + ["b"] * 40 + ["new"] * 20
    expected = psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2]))
    result = judge(reference, current, "psi")
    assert result.score == pytest.approx(expected) and result.drifted


def test_a_constant_column_that_stays_constant_has_not_drifted():
    for method in ("psi", "ks", "wasserstein", "jensenshannon"):
        result = judge(np.full(500, 3.0), np.full(400, 3.0), method)
        assert result.status == JUDGED and not result.drifted, method


def test_a_constant_column_that_moves_has_drifted_with_every_numeric_method():
    for method in ("psi", "ks", "wasserstein", "jensenshannon"):
        result = judge(np.full(500, 3.0), np.full(400, 4.0), method)
        assert result.drifted, method
    # the distance 1.0 is divided by the 0.001 floor of the standard deviation
    assert judge(np.full(500, 3.0), np.full(400, 4.0), "wasserstein").score == pytest.approx(1000.0)


def test_an_empty_window_is_not_judged_and_not_reported_as_no_drift():
    result = judge(NORMAL_REF, np.array([], dtype=float), "psi")
    assert result.status == NO_VALUES_IN_WINDOW
    assert result.score is None and not result.drifted


def test_a_window_of_only_missing_values_is_not_judged():
    result = judge(NORMAL_REF, [np.nan, None, np.inf], "ks")
    assert result.status == NO_VALUES_IN_WINDOW
    assert result.current_missing_share == 1.0


def test_missing_values_are_left_out_and_reported_as_a_share():
    current = np.concatenate([NORMAL_SAME[:900], [np.nan] * 100])
    with_missing = judge(NORMAL_REF, current, "ks")
    without = judge(NORMAL_REF, NORMAL_SAME[:900], "ks")
    assert with_missing.score == pytest.approx(without.score)
    assert with_missing.current_missing_share == pytest.approx(0.1)
    assert with_missing.current_count == 900


def test_an_empty_reference_column_is_reported_as_such():
    result = judge([np.nan, np.nan], [1.0, 2.0], "psi")
    assert result.status == EMPTY_REFERENCE and result.score is None


def test_a_feature_absent_from_the_window_and_a_column_absent_from_the_reference_are_reported():
    reference = reference_from_sample(pd.DataFrame({"x": NORMAL_REF[:100]}))
    result = evaluate_drift(reference, pd.DataFrame({"y": [1.0]}), DriftSettings())
    assert {f.feature: f.status for f in result.features} == {"x": NOT_IN_WINDOW, "y": NO_REFERENCE}
    assert result.judged == [] and result.share_drifted is None and not result.dataset_drifted


def test_without_a_reference_every_column_is_reported_as_having_none():
    result = evaluate_drift(None, pd.DataFrame({"x": [1.0], "y": [2.0]}), DriftSettings())
    assert [f.status for f in result.features] == [NO_REFERENCE, NO_REFERENCE]
    assert not result.dataset_drifted


def test_bonferroni_divides_the_p_value_threshold_by_the_number_of_tested_features():
    frame = pd.DataFrame({f"f{i}": NORMAL_REF[:1000] for i in range(4)})
    reference = reference_from_sample(frame)
    corrected = evaluate_drift(reference, frame, DriftSettings(method="ks", threshold=0.05))
    plain = evaluate_drift(reference, frame, DriftSettings(method="ks", threshold=0.05, multiple_testing="none"))
    assert {f.threshold for f in corrected.features} == {0.0125}
    assert {f.threshold for f in plain.features} == {0.05}


def test_a_p_value_just_under_the_raw_threshold_is_not_drift_after_bonferroni():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 2000)
    current = rng.normal(0.08, 1, 2000)
    p = stats.ks_2samp(reference, current).pvalue
    assert 0.0025 < p < 0.05  # this seed's p-value lies between the corrected and raw thresholds
    frame_ref = pd.DataFrame({f"f{i}": reference if i == 0 else NORMAL_REF[:2000] for i in range(20)})
    frame_cur = pd.DataFrame({f"f{i}": current if i == 0 else NORMAL_REF[:2000] for i in range(20)})
    ref = reference_from_sample(frame_ref)
    assert not evaluate_drift(ref, frame_cur, DriftSettings(method="ks")).features[0].drifted
    assert evaluate_drift(ref, frame_cur, DriftSettings(method="ks", multiple_testing="none")).features[0].drifted


def test_a_categorical_feature_under_a_policy_wide_ks_is_judged_with_chi_squared():
    reference = reference_from_sample(pd.DataFrame({"plan": ["a", "b"] * 50, "x": NORMAL_REF[:100]}))
    result = evaluate_drift(reference, pd.DataFrame({"plan": ["a"] * 100, "x": NORMAL_SAME[:100]}),
                            DriftSettings(method="ks"))
    methods = {f.feature: f.method for f in result.features}
    assert methods == {"plan": "chisquared", "x": "ks"}


def test_a_numeric_feature_under_a_policy_wide_chi_squared_is_judged_with_psi_and_its_default_threshold():
    settings = DriftSettings(method="chisquared", threshold=0.01)
    assert settings.method_for("x", "numeric") == ("psi", 0.2)
    assert settings.method_for("plan", "categorical") == ("chisquared", 0.01)


def test_naming_ks_for_a_categorical_feature_is_an_error_naming_the_feature():
    reference = reference_from_sample(pd.DataFrame({"plan": ["a", "b"]}))
    settings = DriftSettings(per_feature={"plan": ("ks", None)})
    with pytest.raises(DriftConfigError, match="'plan' is categorical; ks does not apply"):
        evaluate_drift(reference, pd.DataFrame({"plan": ["a"]}), settings)


def test_a_per_feature_threshold_overrides_the_policy_threshold():
    settings = DriftSettings(method="psi", threshold=0.3, per_feature={"x": (None, 0.05), "y": ("ks", None)})
    assert settings.method_for("x", "numeric") == ("psi", 0.05)
    assert settings.method_for("y", "numeric") == ("ks", 0.05)
    assert settings.method_for("z", "numeric") == ("psi", 0.3)


def test_an_unknown_method_is_refused():
    with pytest.raises(DriftConfigError, match="unknown drift method 'kl'"):
        DriftSettings(method="kl")


@pytest.mark.parametrize("drifted_columns, share, expected", [
    (2, 0.5, True),
    (1, 0.5, False),
    (1, 0.25, True),
    (0, 0.25, False),
])
def test_the_input_drifted_when_the_share_of_drifted_features_reaches_the_policy_share(drifted_columns, share, expected):
    reference = reference_from_sample(pd.DataFrame({f"f{i}": NORMAL_REF[:5000] for i in range(4)}))
    current = pd.DataFrame({f"f{i}": (NORMAL_SHIFTED if i < drifted_columns else NORMAL_SAME)[:5000] for i in range(4)})
    result = evaluate_drift(reference, current, DriftSettings(method="psi", drift_share=share))
    assert len(result.drifted_features) == drifted_columns
    assert result.dataset_drifted is expected


def test_five_shifted_features_of_twenty_are_the_five_flagged_by_every_numeric_method():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(0, 1, (20_000, 20)), columns=[f"f{i}" for i in range(20)])
    current = pd.DataFrame(rng.normal(0, 1, (20_000, 20)), columns=reference.columns)
    current.iloc[:, :5] += 0.5
    ref = reference_from_sample(reference)
    for method in ("psi", "ks", "wasserstein", "jensenshannon"):
        result = evaluate_drift(ref, current, DriftSettings(method=method))
        assert result.drifted_features == [f"f{i}" for i in range(5)], method


# --- a profile as the reference ---------------------------------------------------------


def profile_of(values, levels=np.linspace(0, 1, 101)):
    return {
        "count": len(values), "missing": 0, "min": float(np.min(values)), "max": float(np.max(values)),
        "mean": float(np.mean(values)), "std": float(np.std(values)),
        "quantiles": {f"{q:.2f}": float(np.quantile(values, q)) for q in levels},
    }


def test_a_profile_reference_scores_close_to_the_raw_sample_it_summarises():
    profile = reference_from_profile({"columns": {"x": profile_of(NORMAL_REF)}})
    sample = reference_from_sample(pd.DataFrame({"x": NORMAL_REF}))
    current = pd.DataFrame({"x": NORMAL_SHIFTED})
    for method, tolerance in (("psi", 0.05), ("wasserstein", 0.02), ("jensenshannon", 0.02)):
        from_profile = evaluate_drift(profile, current, DriftSettings(method=method)).features[0]
        from_sample = evaluate_drift(sample, current, DriftSettings(method=method)).features[0]
        assert from_profile.score == pytest.approx(from_sample.score, abs=tolerance), method
        assert from_profile.drifted and from_sample.drifted


def test_ks_against_a_profile_uses_its_quantile_cdf_and_count():
    profile = reference_from_profile({"columns": {"x": profile_of(NORMAL_REF)}})
    same = evaluate_drift(profile, pd.DataFrame({"x": NORMAL_SAME}), DriftSettings(method="ks")).features[0]
    shifted = evaluate_drift(profile, pd.DataFrame({"x": NORMAL_SHIFTED}), DriftSettings(method="ks")).features[0]
    assert not same.drifted and same.score > 0.01
    assert shifted.drifted and shifted.score < 1e-10
    statistic = stats.ks_2samp(NORMAL_REF, NORMAL_SHIFTED).statistic
    from scipy.stats import kstwo
    expected = kstwo.sf(statistic, round(len(NORMAL_REF) * len(NORMAL_SHIFTED) / (2 * len(NORMAL_REF))))
    assert shifted.score == pytest.approx(expected, rel=0.5, abs=1e-30)


def test_a_histogram_only_profile_is_a_usable_reference():
    counts, edges = np.histogram(NORMAL_REF, bins=20)
    column = {"count": len(NORMAL_REF), "missing": 0, "mean": 0.0, "std": float(np.std(NORMAL_REF)),
              "histogram": {"bins": edges.tolist(), "counts": counts.tolist()}}
    reference = reference_from_profile({"columns": [{"name": "x", **column}]})
    assert not evaluate_drift(reference, pd.DataFrame({"x": NORMAL_SAME}), DriftSettings()).features[0].drifted
    assert evaluate_drift(reference, pd.DataFrame({"x": NORMAL_SHIFTED}), DriftSettings()).features[0].drifted


def test_a_constant_column_in_a_profile_is_a_point_mass():
    column = {"count": 100, "missing": 0, "min": 3.0, "max": 3.0, "mean": 3.0, "std": 0.0,
              "quantiles": {"0.5": 3.0}}
    reference = reference_from_profile({"columns": {"x": column}})
    assert reference.columns["x"].bucket_shares.tolist() == [0.0, 1.0, 0.0]
    assert not evaluate_drift(reference, pd.DataFrame({"x": [3.0] * 50}), DriftSettings()).dataset_drifted
    assert evaluate_drift(reference, pd.DataFrame({"x": [4.0] * 50}), DriftSettings()).dataset_drifted


def test_a_categorical_profile_lumps_values_beyond_its_top_categories_into_other():
    column = {"count": 100, "missing": 5, "topCategories": [{"value": "a", "count": 60}, {"value": "b", "count": 30}]}
    reference = reference_from_profile({"columns": {"plan": column}})
    assert reference.columns["plan"].other == 10
    current = pd.DataFrame({"plan": ["a"] * 60 + ["b"] * 30 + ["rare1"] * 5 + ["rare2"] * 5})
    result = evaluate_drift(reference, current, DriftSettings(method="chisquared")).features[0]
    assert result.score == pytest.approx(1.0)
    assert result.reference_missing_share == pytest.approx(5 / 105)


@pytest.mark.parametrize("profile, message", [
    ({}, "non-empty `columns`"),
    ({"columns": {"x": {"count": 10, "quantiles": {"0.5": "high"}}}}, "bad quantile"),
    ({"columns": {"x": {"count": 10, "mean": 1.0}}}, "neither quantiles, a histogram nor min/max"),
    ({"columns": {"x": {"count": 10, "histogram": {"bins": [0, 1], "counts": [1, 2]}}}}, "n\\+1 bin edges"),
    ({"columns": {"c": {"count": 10, "topCategories": [{"value": "a", "count": 11}]}}}, "> column count"),
    ({"columns": {"x": {"count": 10, "min": float("nan"), "max": 1.0, "mean": 0.5}}}, "min must be a finite"),
])
def test_a_malformed_profile_is_refused_with_a_specific_message(profile, message):
    with pytest.raises(ReferenceFormatError, match=message):
        reference_from_profile(profile)


def test_a_profile_written_by_the_ingest_profiler_is_a_usable_reference():
    from kadence.domain.data.profile import profile_frame

    rng = np.random.default_rng(5)

    def frame(shift, share_b, flag_rate, size=5000):
        return pd.DataFrame({
            "x": rng.normal(shift, 1, size),
            "plan": rng.choice(["a", "b"], size, p=[1 - share_b, share_b]),
            "flag": rng.random(size) < flag_rate,
            "n": rng.integers(0, 5, size),
            "when": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 100, size), "D"),
        })

    reference = reference_from_profile(profile_frame(frame(0, 0.5, 0.3)))
    assert {n: c.kind for n, c in reference.columns.items()} == {
        "x": "numeric", "plan": "categorical", "flag": "categorical", "n": "numeric"}
    same = evaluate_drift(reference, frame(0, 0.5, 0.3), DriftSettings(method="psi"))
    assert same.drifted_features == []
    assert {f.feature: f.status for f in same.features}["when"] == NO_REFERENCE
    moved = evaluate_drift(reference, frame(0.5, 0.8, 0.6), DriftSettings(method="psi"))
    assert moved.drifted_features == ["x", "plan", "flag"]
    for method in ("ks", "wasserstein", "jensenshannon", "chisquared"):
        result = evaluate_drift(reference, frame(0.5, 0.8, 0.6), DriftSettings(method=method))
        assert {"x", "plan", "flag"} <= set(result.drifted_features) or method == "chisquared", method
        assert "n" not in result.drifted_features, method


@pytest.mark.parametrize("presorted", [False, True], ids=["counted unsorted", "searched after a sort"])
def test_bucket_shares_count_values_on_a_cut_point_in_its_own_bucket(presorted):
    from kadence.domain.monitoring.drift import CurrentWindow

    values = [-2.0, -1.0, -1.0, -0.5, 0.0, 0.0, 0.0, 0.2, 0.5, 1.0, 2.0, 3.0]
    window = CurrentWindow(pd.DataFrame({"x": values[::-1]}))
    if presorted:
        window.numeric_sorted("x")
    # buckets: <-1, =-1, (-1,0), =0, (0,0.5), =0.5, (0.5,2), =2, >2
    expected = np.array([1, 2, 1, 3, 1, 1, 1, 1, 1]) / len(values)
    np.testing.assert_array_equal(window.bucket_shares("x", np.array([-1.0, 0.0, 0.5, 2.0])), expected)


@pytest.mark.parametrize("cuts", [4, 40], ids=["few cut points: comparisons", "many cut points: a sort"])
def test_bucket_counts_of_unsorted_values_equal_those_of_the_sorted_values(cuts):
    from kadence.domain.monitoring.drift import bucket_counts, sorted_bucket_counts

    rng = np.random.default_rng(cuts)
    values = np.round(rng.normal(0, 1, 5000), 1)  # many values on the cut points
    cut_points = np.unique(np.round(rng.normal(0, 1, cuts), 1))
    counts = bucket_counts(values, cut_points)
    np.testing.assert_array_equal(counts, sorted_bucket_counts(np.sort(values), cut_points))
    assert counts.sum() == len(values) and counts[1::2].sum() == np.isin(values, cut_points).sum()


# --- the sorted-array kernels against numpy and scipy -------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 1000, 99_999])
def test_quantiles_of_a_sorted_sample_are_numpys_to_the_last_bit(size):
    from kadence.domain.monitoring.drift import sorted_quantiles

    rng = np.random.default_rng(size)
    values = np.sort(np.concatenate([rng.normal(0, 1, size - size // 3), rng.integers(0, 3, size // 3)]))
    levels = np.concatenate([np.linspace(0, 1, 11), [0.123456, 0.5, 0.999]])
    np.testing.assert_array_equal(sorted_quantiles(values, levels), np.quantile(values, levels))


@pytest.mark.parametrize("a, b", [
    pytest.param([1.0], [1.0], id="one equal value each"),
    pytest.param([1.0], [3.0], id="one value each, apart"),
    pytest.param([0.0, 0.0, 0.0], [0.0, 1.0], id="ties across the samples"),
    pytest.param([2.0, 2.0], [2.0, 2.0, 2.0], id="both constant and equal"),
    pytest.param([5.0] * 4, [7.0] * 9, id="both constant, apart"),
    pytest.param([-1.0, 0.0, 0.0, 4.0, 4.0, 9.0], [0.0, 0.0, 4.0, 10.0], id="shared ties of unequal samples"),
    pytest.param([-0.0, 0.0, 1.0], [0.0, -0.0], id="signed zeros are one value"),
])
def test_ks_and_wasserstein_of_small_and_tied_samples_match_scipy(a, b):
    from kadence.domain.monitoring.drift import ks_and_wasserstein

    a, b = np.sort(np.array(a)), np.sort(np.array(b))
    statistic, distance = ks_and_wasserstein(a, b)
    assert statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert distance == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12, abs=1e-12)
    assert ks_and_wasserstein(b, a) == pytest.approx((statistic, distance), rel=1e-12, abs=1e-12)


def test_judging_columns_on_threads_gives_the_same_result_as_one_by_one(monkeypatch):
    from kadence.domain.monitoring import drift

    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.normal(0, 1, (3000, 6)), columns=list("abcdef")).assign(
        plan=rng.choice(["x", "y"], 3000))
    current = pd.DataFrame(rng.normal(0.3, 1.1, (2500, 6)), columns=list("abcdef")).assign(
        plan=rng.choice(["x", "y", "z"], 2500))
    current.loc[::7, "b"] = np.nan

    def everything():
        ref = drift.reference_from_sample(reference)
        window = drift.CurrentWindow(current)
        return [drift.evaluate_drift(ref, window, DriftSettings(method=m))
                for m in ("psi", "ks", "wasserstein", "jensenshannon", "chisquared")]

    monkeypatch.setattr(drift, "PARALLEL_MIN_VALUES", 10**12)
    one_by_one = everything()
    monkeypatch.setattr(drift, "PARALLEL_MIN_VALUES", 0)
    monkeypatch.setattr(drift, "_available_cpus", lambda: 4)
    threaded = everything()
    assert threaded == one_by_one
    assert all(len(result.judged) == 7 for result in threaded)


# --- edge cases of the window --------------------------------------------------------------


@pytest.mark.parametrize("method", ["psi", "ks", "wasserstein", "jensenshannon"])
def test_a_window_of_no_rows_is_not_judged_by_any_method(method):
    result = judge(NORMAL_REF, np.array([], dtype=float), method)
    assert result.status == NO_VALUES_IN_WINDOW and result.score is None and not result.drifted
    assert result.current_missing_share is None and "no values of 'x'" in result.message


@pytest.mark.parametrize("method", ["psi", "ks", "wasserstein", "jensenshannon"])
def test_nan_and_infinities_on_both_sides_are_left_out_by_every_method(method):
    dirty_ref = np.concatenate([NORMAL_REF[:5000], [np.nan, np.inf, -np.inf] * 10])
    dirty_cur = np.concatenate([NORMAL_SHIFTED[:4000], [np.nan] * 40, [np.inf]])
    dirty = judge(dirty_ref, dirty_cur, method)
    clean = judge(NORMAL_REF[:5000], NORMAL_SHIFTED[:4000], method)
    assert dirty.score == pytest.approx(clean.score, rel=1e-12) and dirty.drifted
    assert dirty.reference_missing_share == pytest.approx(30 / 5030)
    assert dirty.current_missing_share == pytest.approx(41 / 4041)


def test_a_nullable_integer_column_counts_its_missing_values():
    reference = reference_from_sample(pd.DataFrame({"n": pd.array([1, 2, 3, 4] * 50, dtype="Int64")}))
    current = pd.DataFrame({"n": pd.array([1, None, 3, 4] * 50, dtype="Int64")})
    result = evaluate_drift(reference, current, DriftSettings(method="wasserstein")).features[0]
    assert result.kind == "numeric" and result.current_count == 150
    assert result.current_missing_share == pytest.approx(0.25)
    assert result.score == pytest.approx(
        stats.wasserstein_distance([1, 2, 3, 4] * 50, [1, 3, 4] * 50) / np.std([1, 2, 3, 4] * 50))


def test_a_category_unseen_in_the_reference_raises_jensen_shannon():
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 40 + ["b"] * 40 + ["new"] * 20
    expected = jensenshannon([0.5, 0.5, 0.0], [0.4, 0.4, 0.2], base=2)
    result = judge(reference, current, "jensenshannon")
    assert result.score == pytest.approx(expected) and result.drifted


def test_booleans_among_strings_are_spelled_as_json_like_the_profile():
    reference = reference_from_sample(pd.DataFrame({"flag": pd.Series([True, False] * 20, dtype=object)}))
    assert reference.columns["flag"].category_counts == {"false": 20, "true": 20}
    current = pd.DataFrame({"flag": pd.Series(["true", True, False, "false"] * 10, dtype=object)})
    result = evaluate_drift(reference, current, DriftSettings(method="chisquared")).features[0]
    assert result.score == pytest.approx(1.0)


# --- judging exactly the listed features ---------------------------------------------------


def test_listed_features_are_judged_and_nothing_else():
    reference = reference_from_sample(pd.DataFrame({"x": NORMAL_REF[:2000], "customer_id": np.arange(2000.0)}))
    current = pd.DataFrame({"x": NORMAL_SAME[:2000], "customer_id": np.arange(5000.0, 7000.0), "y": 1.0})
    every = evaluate_drift(reference, current, DriftSettings())
    assert every.drifted_features == ["customer_id"]  # what an id column does when it is judged
    listed = evaluate_drift(reference, current, DriftSettings(), features=["x"])
    assert [f.feature for f in listed.features] == ["x"]
    assert listed.drifted_features == [] and listed.share_drifted == 0.0


def test_a_listed_feature_missing_from_the_window_or_the_reference_is_reported_with_its_reason():
    reference = reference_from_sample(pd.DataFrame({"x": NORMAL_REF[:500], "unlogged": NORMAL_REF[:500]}))
    current = pd.DataFrame({"x": NORMAL_SAME[:500], "new_input": NORMAL_SAME[:500]})
    result = evaluate_drift(reference, current, DriftSettings(), features=["x", "unlogged", "new_input", "ghost"])
    by_name = {f.feature: f for f in result.features}
    assert {n: f.status for n, f in by_name.items()} == {
        "x": JUDGED, "unlogged": NOT_IN_WINDOW, "new_input": NO_REFERENCE, "ghost": NO_REFERENCE}
    assert by_name["x"].message is None
    assert by_name["unlogged"].message == "no prediction in the window logged the input 'unlogged'"
    assert by_name["new_input"].message == "'new_input' is not a column of the drift reference"
    assert by_name["ghost"].message == ("'ghost' is not a column of the drift reference, nor an input logged "
                                        "with any prediction in the window")
    assert not any(f.drifted for f in result.features) and len(result.judged) == 1


def test_a_feature_listed_twice_is_judged_once():
    reference = reference_from_sample(pd.DataFrame({"x": NORMAL_REF[:500]}))
    result = evaluate_drift(reference, pd.DataFrame({"x": NORMAL_SAME[:500]}), DriftSettings(), features=["x", "x"])
    assert [f.feature for f in result.features] == ["x"]


def test_bonferroni_counts_only_the_listed_features():
    frame = pd.DataFrame({f"f{i}": NORMAL_REF[:1000] for i in range(4)})
    reference = reference_from_sample(frame)
    result = evaluate_drift(reference, frame, DriftSettings(method="ks", threshold=0.05), features=["f0", "f1"])
    assert {f.threshold for f in result.features} == {0.025}


def test_without_a_reference_listed_features_say_so():
    result = evaluate_drift(None, pd.DataFrame({"x": [1.0]}), DriftSettings(), features=["x", "y"])
    assert [(f.status, f.message) for f in result.features] == [(NO_REFERENCE, "there is no drift reference")] * 2
