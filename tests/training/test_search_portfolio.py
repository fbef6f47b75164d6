"""The tpe search's warm start (every family's default point, then a small portfolio of
known-good configurations) and the order in which queued fold fits reach the workers."""

from __future__ import annotations

import pytest

from kadence.api.trainingrun import ParameterRange as R
from kadence.domain.training import families as fam
from kadence.domain.training.search import (
    FitQueue,
    SearchSettings,
    fit_priority,
    portfolio_plan,
    start_fork_server,
    worker_modules,
)

from .test_search import CLASSIFICATION, _run

BENCHMARK_LIKE_HGB = {"learning_rate": R(low=0.01, high=0.5, log=True), "max_iter": R(low=20, high=200, integer=True),
                      "max_leaf_nodes": R(low=4, high=64, integer=True, log=True)}


# ---- default points and portfolio points


LARGE_FOLD, SMALL_FOLD = 26_666, 10_000  # training rows per fold; HistGradientBoosting stops early above 10,000


def test_the_default_point_puts_boosting_rounds_that_early_stopping_ends_at_the_top_of_their_range():
    space = fam.resolve_space("hist_gradient_boosting", "classification")
    point = fam.default_point("hist_gradient_boosting", "classification", space, LARGE_FOLD)
    assert point == {"l2_regularization": 1e-6, "learning_rate": 0.1, "max_iter": 500, "max_leaf_nodes": 31,
                     "min_samples_leaf": 20}


@pytest.mark.parametrize("train_rows", [SMALL_FOLD, 300, None])
def test_without_early_stopping_the_default_point_keeps_the_default_round_count(train_rows):
    space = fam.resolve_space("hist_gradient_boosting", "classification")
    assert fam.default_point("hist_gradient_boosting", "classification", space, train_rows)["max_iter"] == 100
    large = fam.portfolio_points("hist_gradient_boosting", "classification", space, train_rows)[1]
    assert large["max_iter"] == 100 and large["learning_rate"] == 0.03


def test_a_boosting_family_without_early_stopping_keeps_its_default_round_count():
    space = fam.resolve_space("gradient_boosting", "classification")
    assert fam.default_point("gradient_boosting", "classification", space, LARGE_FOLD)["n_estimators"] == 100


def test_portfolio_points_are_the_default_then_the_known_good_configurations_moved_into_the_space():
    points = fam.portfolio_points("hist_gradient_boosting", "classification", BENCHMARK_LIKE_HGB, LARGE_FOLD)
    assert points == [
        {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31},
        # LightGBMLarge: 128 leaves clipped to the range's 64, rounds at the top
        {"learning_rate": 0.03, "max_iter": 200, "max_leaf_nodes": 64},
    ]


def test_a_portfolio_parameter_the_space_does_not_search_stays_out_of_the_point():
    points = fam.portfolio_points("hist_gradient_boosting", "classification", BENCHMARK_LIKE_HGB)
    assert all("max_features" not in p and "min_samples_leaf" not in p for p in points)
    space = {**BENCHMARK_LIKE_HGB, "max_features": R(low=0.5, high=1.0)}
    default, large = fam.portfolio_points("hist_gradient_boosting", "classification", space, LARGE_FOLD)
    assert default["max_features"] == 1.0 and large["max_features"] == 0.9


def test_a_portfolio_configuration_that_lands_on_the_default_point_is_left_out():
    space = {"max_iter": R(low=20, high=60, integer=True)}
    assert fam.portfolio_points("hist_gradient_boosting", "classification", space, LARGE_FOLD) == [{"max_iter": 60}]


def test_a_family_without_a_portfolio_has_only_its_default_point():
    space = fam.resolve_space("random_forest", "classification")
    assert fam.portfolio_points("random_forest", "classification", space) == [
        fam.default_point("random_forest", "classification", space)]


def test_every_portfolio_point_builds_an_estimator_with_exactly_those_parameters():
    for name, f in fam.FAMILIES.items():
        for task in f.tasks:
            space = fam.resolve_space(name, task)
            for point in fam.portfolio_points(name, task, space, LARGE_FOLD):
                estimator = fam.build_estimator(name, task, point, metric="r2" if task == "regression" else "f1",
                                                seed=0)
                # .get: CatBoost's get_params leaves out the parameters that are None
                assert {k: estimator.get_params().get(k) for k in point} == point, name


# ---- the plan of first trials


def _tpe(families, trials) -> SearchSettings:
    spaces = {name: fam.resolve_space(name, "classification") for name in families}
    return SearchSettings(task="classification", metric="accuracy", strategy="tpe", spaces=spaces,
                          max_trials=trials, seed=0)


def test_the_plan_runs_every_family_at_its_default_point_before_any_further_portfolio_entry():
    settings = _tpe(("logistic_regression", "hist_gradient_boosting", "random_forest"), 12)
    plan = portfolio_plan(settings, LARGE_FOLD)
    spaces = settings.spaces
    assert plan == [
        *[(name, fam.default_point(name, "classification", spaces[name], LARGE_FOLD))
          for name in ("logistic_regression", "hist_gradient_boosting", "random_forest")],
        ("hist_gradient_boosting", fam.portfolio_points("hist_gradient_boosting", "classification",
                                                        spaces["hist_gradient_boosting"], LARGE_FOLD)[1]),
    ]


@pytest.mark.parametrize("trials, expected_families", [
    (1, ["hist_gradient_boosting"]),                        # the budget caps even the defaults
    (2, ["hist_gradient_boosting", "logistic_regression"]),
    (3, ["hist_gradient_boosting", "logistic_regression"]),  # the rest only within half the budget
    (4, ["hist_gradient_boosting", "logistic_regression"]),
    (6, ["hist_gradient_boosting", "logistic_regression", "hist_gradient_boosting"]),
])
def test_the_portfolio_beyond_the_defaults_takes_at_most_half_of_the_budget(trials, expected_families):
    plan = portfolio_plan(_tpe(("hist_gradient_boosting", "logistic_regression"), trials))
    assert [name for name, _ in plan] == expected_families


SMALL_HGB = {**BENCHMARK_LIKE_HGB, "max_iter": R(low=5, high=20, integer=True)}  # fits in milliseconds


def test_a_tpe_search_starts_with_the_portfolio_plan_and_then_samples():
    settings = SearchSettings(**{**_tpe(("logistic_regression", "hist_gradient_boosting"), 6).__dict__,
                                 "spaces": {"logistic_regression": fam.resolve_space("logistic_regression",
                                                                                     "classification"),
                                            "hist_gradient_boosting": SMALL_HGB}})
    result = _run(settings, CLASSIFICATION)
    plan = portfolio_plan(settings, len(CLASSIFICATION[0][0].y_train))
    assert len(plan) == 3
    assert [(t.family, t.params) for t in result.trials[:3]] == plan
    assert all((t.family, t.params) not in plan for t in result.trials[3:])


def test_a_random_search_has_no_portfolio():
    settings = SearchSettings(**{**_tpe(("logistic_regression", "hist_gradient_boosting"), 6).__dict__,
                                 "spaces": {"hist_gradient_boosting": SMALL_HGB}})
    random = SearchSettings(**{**settings.__dict__, "strategy": "random"})
    first = _run(random, CLASSIFICATION).trials[:2]
    assert [(t.family, t.params) for t in first] != portfolio_plan(settings)[:2]


# ---- the order in which queued fits reach the workers


@pytest.mark.parametrize("queued, first", [
    ([(0, 5, 0), (1, 7, 2), (0, 3, 1)], (1, 7, 2)),   # a higher rung goes first, whoever queued it
    ([(1, 7, 2), (1, 4, 0), (2, 9, 0)], (2, 9, 0)),
    ([(0, 5, 2), (0, 5, 1), (0, 6, 0)], (0, 5, 1)),   # same rung: the earlier trial, then the lower fold
    ([(0, 6, 0), (0, 5, 2)], (0, 5, 2)),
])
def test_the_most_urgent_fit_is_the_one_on_the_highest_rung_of_the_earliest_trial(queued, first):
    assert min(queued, key=lambda fit: fit_priority(*fit)) == first


class _Trial:
    def __init__(self, number: int, rung: int = 0):
        self.trial = type("OptunaTrial", (), {"number": number})()
        self.rung, self.state = rung, None


def _drain(queue: FitQueue) -> list[tuple[int, int, int]]:
    out = []
    while (fit := queue.pop()) is not None:
        running, index = fit
        out.append((running.trial.number, running.rung, index))
    return out


def test_a_promoted_trial_gets_the_workers_before_fits_queued_earlier_on_a_lower_rung():
    queue = FitQueue()
    later = _Trial(5)
    for index in range(3):
        queue.push(later, index)
    promoted = _Trial(3, rung=1)
    for index in range(3):
        queue.push(promoted, index)
    assert _drain(queue) == [(3, 1, 0), (3, 1, 1), (3, 1, 2), (5, 0, 0), (5, 0, 1), (5, 0, 2)]


def test_the_fits_of_a_trial_that_already_failed_are_dropped_from_the_queue():
    queue = FitQueue()
    failed, healthy = _Trial(1), _Trial(2)
    for index in range(2):
        queue.push(failed, index)
        queue.push(healthy, index)
    assert queue.trials() == {id(failed), id(healthy)}
    failed.state = "failed"
    assert _drain(queue) == [(2, 0, 0), (2, 0, 1)]
    assert queue.pop() is None and queue.trials() == set()


# ---- worker start


def test_the_fork_server_imports_only_the_searched_families_estimators():
    settings = SearchSettings(task="classification", metric="accuracy", strategy="tpe", max_trials=4, seed=0,
                              spaces={"logistic_regression": {}, "hist_gradient_boosting": {}})
    modules = worker_modules(settings)
    assert modules[0] == "kadence.domain.training.search"
    assert set(modules[1:]) == {"sklearn.linear_model._logistic",
                                "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"}
    scaled = worker_modules(SearchSettings(**{**settings.__dict__, "scale": True}))
    assert set(scaled) - set(modules) == {"sklearn.pipeline", "sklearn.preprocessing"}


def test_the_fork_server_is_started_once_and_reused_by_later_searches():
    import os
    from multiprocessing import forkserver

    settings = SearchSettings(task="classification", metric="accuracy", strategy="tpe", max_trials=4, seed=0,
                              spaces={"logistic_regression": {}}, parallelism=2)
    context = start_fork_server(settings)
    assert context.get_start_method() == "forkserver"
    pid = forkserver._forkserver._forkserver_pid
    os.kill(pid, 0)  # running
    start_fork_server(settings)
    assert forkserver._forkserver._forkserver_pid == pid
