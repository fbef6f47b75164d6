"""Model families, their default search spaces, user overrides, and the grid derived from a space."""

from __future__ import annotations

import math

import pytest

from kadence.api.trainingrun import ParameterRange as R
from kadence.domain.training import families as fam
from kadence.domain.training.space import axis, grid, grid_plan, split_budget

ALL_FAMILIES = ["logistic_regression", "linear_regression", "ridge", "random_forest", "extra_trees",
                "gradient_boosting", "hist_gradient_boosting", "knn", "svm", "lightgbm", "xgboost", "catboost"]


def test_every_required_family_is_known():
    assert sorted(fam.FAMILIES) == sorted(ALL_FAMILIES)


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_every_default_space_names_real_estimator_parameters(name):
    for task in fam.family(name).tasks:
        space = fam.resolve_space(name, task)
        assert set(space) <= fam.accepted_parameters(name, task)
        for parameter, rng in space.items():
            assert (rng.choices is not None) or (rng.low <= rng.high), parameter


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_every_family_builds_an_estimator_at_the_centre_of_its_space(name):
    for task in fam.family(name).tasks:
        space = fam.resolve_space(name, task)
        (centre,) = grid(space, 1)
        estimator = fam.build_estimator(name, task, centre, metric="r2" if task == "regression" else "f1", seed=3)
        for parameter, value in centre.items():
            # .get: CatBoost's get_params leaves out the parameters that are None
            assert estimator.get_params().get(parameter) == value


def test_classification_and_regression_get_the_families_that_fit_them():
    assert "logistic_regression" in fam.families_for_task("classification")
    assert "linear_regression" not in fam.families_for_task("classification")
    assert "linear_regression" in fam.families_for_task("regression")
    assert "logistic_regression" not in fam.families_for_task("regression")


def test_a_user_override_narrows_a_default_range():
    space = fam.resolve_space("random_forest", "classification",
                              {"n_estimators": R(low=10, high=20, integer=True)})
    assert (space["n_estimators"].low, space["n_estimators"].high) == (10, 20)
    assert "max_depth" in space  # the other defaults stay


def test_a_user_may_search_an_extra_estimator_parameter():
    space = fam.resolve_space("random_forest", "classification", {"criterion": R(choices=["gini", "entropy"])})
    assert space["criterion"].choices == ["gini", "entropy"]


def test_an_override_of_an_unknown_parameter_is_refused_with_the_estimator_named():
    with pytest.raises(fam.FamilyError, match="'depth' is not a parameter of RandomForestClassifier"):
        fam.resolve_space("random_forest", "classification", {"depth": R(low=1, high=3)})


def test_a_parameter_kadence_sets_itself_cannot_be_searched():
    with pytest.raises(fam.FamilyError, match="random_state.*set by Kadence"):
        fam.resolve_space("random_forest", "classification", {"random_state": R(choices=[1, 2])})


def test_a_family_that_does_not_fit_the_task_is_refused():
    with pytest.raises(fam.FamilyError, match="linear_regression does not fit the task classification"):
        fam.check_family_fits("linear_regression", "classification", "f1", 2)


def test_ridge_cannot_be_chosen_for_log_loss_because_it_has_no_probabilities():
    with pytest.raises(fam.FamilyError, match="cannot compute the metric log_loss"):
        fam.check_family_fits("ridge", "classification", "log_loss", 2)


def test_default_families_leave_out_slow_ones_on_large_data_and_say_why():
    chosen, left_out = fam.default_families("classification", "f1", 2, training_rows=40_000)
    assert "svm" not in chosen and any(entry.startswith("svm (40000 rows") for entry in left_out)
    assert "knn" in chosen and "hist_gradient_boosting" in chosen
    small, _ = fam.default_families("classification", "f1", 2, training_rows=1_000)
    assert "svm" in small


def test_default_families_leave_out_those_that_cannot_compute_the_metric():
    chosen, left_out = fam.default_families("classification", "log_loss", 2, training_rows=100)
    assert "ridge" not in chosen and "ridge (cannot compute log_loss)" in left_out


def test_svm_gets_calibrated_probabilities_only_when_a_metric_needs_them():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    assert isinstance(fam.build_estimator("svm", "classification", {}, metric="f1", seed=0), SVC)
    assert isinstance(fam.build_estimator("svm", "classification", {}, metric="log_loss", seed=0),
                      CalibratedClassifierCV)
    assert isinstance(fam.build_estimator("svm", "classification", {}, metric="roc_auc", seed=0), SVC)
    assert isinstance(fam.build_estimator("svm", "classification", {}, metric="roc_auc", seed=0, n_classes=3),
                      CalibratedClassifierCV)


def test_scale_sensitive_families_get_a_scaler_only_when_asked():
    from sklearn.pipeline import Pipeline

    assert isinstance(fam.build_estimator("knn", "classification", {}, metric="f1", seed=0, scale=True), Pipeline)
    assert not isinstance(fam.build_estimator("knn", "classification", {}, metric="f1", seed=0), Pipeline)
    assert not isinstance(fam.build_estimator("random_forest", "classification", {}, metric="f1", seed=0,
                                              scale=True), Pipeline)


# ---- grid


def test_an_axis_of_a_log_range_is_spaced_geometrically_inside_the_bounds():
    values = axis(R(low=0.001, high=1000.0, log=True), 3)
    assert values == pytest.approx([0.01, 1.0, 100.0])


def test_an_axis_of_an_integer_range_is_rounded_and_has_no_duplicates():
    assert axis(R(low=1, high=3, integer=True), 6) == [1, 2, 3]


def test_an_axis_of_choices_takes_them_in_order():
    assert axis(R(choices=["a", "b", "c"]), 2) == ["a", "b"]


def test_a_grid_never_exceeds_its_budget_and_fills_it_as_far_as_the_axes_allow():
    space = fam.resolve_space("hist_gradient_boosting", "classification")
    for budget in (1, 2, 5, 17, 40, 243):
        points = grid(space, budget)
        assert 1 <= len(points) <= budget
        assert len(points) > budget / 2 or budget < 2 ** len(space)
        assert len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_a_grid_over_a_small_discrete_space_stops_at_the_whole_space():
    space = {"weights": R(choices=["uniform", "distance"]), "p": R(choices=[1, 2])}
    assert len(grid(space, 100)) == 4


def test_an_empty_space_is_one_point():
    assert grid({}, 10) == [{}]


def test_split_budget_shares_trials_evenly():
    assert split_budget(10, ["a", "b", "c"]) == {"a": 4, "b": 3, "c": 3}


def test_a_grid_plan_interleaves_families_and_gives_spare_budget_to_the_others():
    spaces = {
        "linear_regression": fam.resolve_space("linear_regression", "regression"),  # 2 points at most
        "ridge": fam.resolve_space("ridge", "regression"),
    }
    plan = grid_plan(spaces, 10)
    assert len(plan) == 10
    assert [f for f, _ in plan[:4]] == ["linear_regression", "ridge", "linear_regression", "ridge"]
    assert sum(1 for f, _ in plan if f == "ridge") == 8
    alphas = sorted(p["alpha"] for f, p in plan if f == "ridge")
    assert all(0.001 <= a <= 1000 for a in alphas) and len(set(alphas)) == 8


def test_a_grid_plan_with_a_budget_smaller_than_the_families_still_stays_within_it():
    spaces = {name: fam.resolve_space(name, "classification")
              for name in ("logistic_regression", "knn", "random_forest")}
    assert len(grid_plan(spaces, 2)) == 2


def test_log_ranges_in_a_grid_stay_positive():
    points = grid({"C": R(low=1e-3, high=1e2, log=True)}, 7)
    assert all(p["C"] > 0 for p in points) and not any(math.isnan(p["C"]) for p in points)


def test_the_default_point_is_the_estimator_default_moved_into_the_space():
    space = {"learning_rate": R(low=0.01, high=0.5, log=True), "max_iter": R(low=20, high=60, integer=True),
             "max_leaf_nodes": R(low=4, high=64, integer=True, log=True)}
    point = fam.default_point("hist_gradient_boosting", "classification", space)
    assert point == {"learning_rate": 0.1, "max_iter": 60, "max_leaf_nodes": 31}


def test_a_default_the_range_cannot_hold_becomes_the_centre_and_choices_keep_the_default():
    space = {"max_depth": R(low=2, high=14, integer=True), "max_features": R(low=0.1, high=0.6),
             "criterion": R(choices=["entropy", "gini"])}
    point = fam.default_point("random_forest", "classification", space)
    assert point == {"max_depth": 8, "max_features": pytest.approx(0.35), "criterion": "gini"}
