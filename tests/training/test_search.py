"""The search engine: strategies, pruning, metric directions, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from kadence.api.trainingrun import ParameterRange as R
from kadence.domain.training import families as fam
from kadence.domain.training.metrics import (
    best_of,
    direction,
    improvement,
    is_better,
    make_metric_scorer,
    natural_score,
)
from kadence.domain.training.search import (
    COMPLETE,
    PRUNED,
    Fold,
    SearchError,
    SearchSettings,
    promotable,
    rung_rows,
    run_search,
)


def _folds(task: str, rows: int = 240, k: int = 3, seed: int = 0) -> tuple[list[Fold], list]:
    from sklearn.datasets import make_classification, make_regression
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "classification":
        X, y = make_classification(n_samples=rows, n_features=8, n_informative=4, random_state=seed)
        splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    else:
        X, y = make_regression(n_samples=rows, n_features=8, noise=10.0, random_state=seed)
        splitter = KFold(k, shuffle=True, random_state=seed)
    folds = [Fold(X[a], y[a], X[b], y[b]) for a, b in splitter.split(X, y)]
    return folds, sorted(set(y.tolist())) if task == "classification" else None


CLASSIFICATION = _folds("classification")
REGRESSION = _folds("regression")


def _settings(strategy="tpe", metric="f1", task="classification", families=("logistic_regression", "knn"),
              trials=8, **extra) -> SearchSettings:
    spaces = {name: fam.resolve_space(name, task) for name in families}
    return SearchSettings(task=task, metric=metric, strategy=strategy, spaces=spaces, max_trials=trials, seed=7,
                          **extra)


def _run(settings, data=CLASSIFICATION):
    folds, classes = data
    return run_search(settings, folds, make_metric_scorer(settings.metric, classes))


# ---- metric directions


@pytest.mark.parametrize("metric, expected", [
    ("f1", "maximize"), ("f1_macro", "maximize"), ("accuracy", "maximize"), ("roc_auc", "maximize"),
    ("log_loss", "minimize"), ("r2", "maximize"), ("rmse", "minimize"), ("mae", "minimize"),
])
def test_every_objective_metric_has_its_direction(metric, expected):
    assert direction(metric) == expected


@pytest.mark.parametrize("metric, candidate, reference, margin, better", [
    ("f1", 0.81, 0.80, 0.0, True),
    ("f1", 0.80, 0.80, 0.0, False),
    ("f1", 0.805, 0.80, 0.01, False),
    ("rmse", 2.9, 3.0, 0.0, True),
    ("rmse", 3.1, 3.0, 0.0, False),
    ("rmse", 2.95, 3.0, 0.1, False),
    ("log_loss", 0.2, 0.3, 0.05, True),
    ("mae", float("nan"), 1.0, 0.0, False),
    ("r2", 0.1, float("nan"), 0.0, True),
])
def test_is_better_respects_the_metric_direction_and_margin(metric, candidate, reference, margin, better):
    assert is_better(metric, candidate, reference, margin) is better


def test_improvement_is_positive_when_better_in_either_direction():
    assert improvement("rmse", 2.0, 3.0) == 1.0
    assert improvement("accuracy", 0.9, 0.8) == pytest.approx(0.1)


def test_best_of_picks_the_minimum_for_minimized_metrics():
    assert best_of("mae", [3.0, 1.0, 2.0]) == 1.0
    assert best_of("r2", [0.3, 0.9, float("nan")]) == 0.9
    assert best_of("r2", []) is None


def test_scores_of_minimized_metrics_are_reported_in_natural_units():
    assert natural_score("rmse", -3.2) == 3.2
    folds, _ = REGRESSION
    from sklearn.linear_model import Ridge

    model = Ridge().fit(folds[0].X_train, folds[0].y_train)
    assert make_metric_scorer("rmse")(model, folds[0].X_valid, folds[0].y_valid) > 0
    assert make_metric_scorer("mae")(model, folds[0].X_valid, folds[0].y_valid) > 0


def test_f1_of_string_labels_scores_the_larger_label_as_positive():
    from sklearn.dummy import DummyClassifier

    X = np.zeros((4, 1))
    y = np.array(["no", "yes", "yes", "no"])
    always_yes = DummyClassifier(strategy="constant", constant="yes").fit(X, y)
    assert make_metric_scorer("f1", ["no", "yes"])(always_yes, X, y) == pytest.approx(2 / 3)


def test_a_classification_metric_needs_two_classes():
    with pytest.raises(ValueError, match="at least two classes"):
        make_metric_scorer("accuracy", ["only"])


# ---- strategies


def test_tpe_runs_the_whole_budget_and_picks_the_best_completed_trial():
    result = _run(_settings("tpe", trials=12))
    assert len(result.trials) == 12 and result.planned == 12
    completed = [t for t in result.trials if t.state == COMPLETE]
    assert result.best.score == max(t.score for t in completed)
    assert {t.family for t in result.trials} <= {"logistic_regression", "knn"}


def test_random_search_samples_within_the_narrowed_space():
    spaces = {"knn": fam.resolve_space("knn", "classification", {"n_neighbors": R(low=4, high=6, integer=True)})}
    settings = SearchSettings(task="classification", metric="accuracy", strategy="random", spaces=spaces,
                              max_trials=6, seed=1)
    result = _run(settings)
    assert all(4 <= t.params["n_neighbors"] <= 6 for t in result.trials)


def test_grid_search_evaluates_exactly_the_planned_grid_in_order_without_pruning():
    from kadence.domain.training.space import grid_plan

    settings = _settings("grid", trials=6)
    result = _run(settings)
    assert [(t.family, t.params) for t in result.trials] == grid_plan(settings.spaces, 6)
    assert all(t.state == COMPLETE and len(t.fold_scores) == 3 for t in result.trials)


def test_grid_search_may_plan_fewer_trials_than_the_budget_for_a_small_space():
    settings = SearchSettings(task="regression", metric="r2", strategy="grid", seed=0, max_trials=50,
                              spaces={"linear_regression": fam.resolve_space("linear_regression", "regression")})
    result = _run(settings, REGRESSION)
    assert result.planned == 2 and len(result.trials) == 2


def test_pruning_stops_clearly_bad_trials_after_their_first_folds():
    # A quarter of the space is hopeless: a huge ridge penalty predicts (nearly) the mean.
    spaces = {"ridge": {"alpha": R(choices=[0.01, 0.1, 1.0, 1e9])}}
    settings = SearchSettings(task="regression", metric="r2", strategy="random", spaces=spaces, max_trials=24,
                              seed=3)
    result = _run(settings, REGRESSION)
    pruned = [t for t in result.trials if t.state == PRUNED]
    assert pruned and all(t.params["alpha"] == 1e9 for t in pruned)
    assert all(len(t.fold_scores) < 3 for t in pruned)
    assert result.best.params["alpha"] < 1e9


def test_without_pruning_no_trial_is_pruned():
    spaces = {"ridge": {"alpha": R(choices=[0.01, 1e9])}}
    settings = SearchSettings(task="regression", metric="r2", strategy="random", spaces=spaces, max_trials=12,
                              seed=3, pruning=False)
    assert all(t.state == COMPLETE for t in _run(settings, REGRESSION).trials)


def test_a_minimized_metric_selects_the_lowest_score():
    result = _run(_settings("random", metric="rmse", task="regression", families=("ridge", "knn"), trials=8),
                  REGRESSION)
    completed = [t.score for t in result.trials if t.state == COMPLETE]
    assert result.best.score == min(completed) and result.direction == "minimize"


def test_a_failing_parameter_set_fails_its_trial_and_the_search_goes_on():
    spaces = {"knn": {"n_neighbors": R(choices=[5, 100000])}}
    settings = SearchSettings(task="classification", metric="accuracy", strategy="grid", spaces=spaces,
                              max_trials=2, seed=0)
    result = _run(settings)
    failed = [t for t in result.trials if t.state == "failed"]
    assert len(failed) == 1 and "n_neighbors" in failed[0].error.lower() or "Expected" in failed[0].error
    assert result.best.params == {"n_neighbors": 5}


def test_a_search_where_every_trial_fails_says_why():
    spaces = {"knn": {"n_neighbors": R(choices=[100000])}}
    settings = SearchSettings(task="classification", metric="accuracy", strategy="grid", spaces=spaces,
                              max_trials=1, seed=0)
    with pytest.raises(SearchError, match="no trial completed .*first error"):
        _run(settings)


def test_an_unknown_strategy_is_refused():
    with pytest.raises(SearchError, match="unknown strategy 'bayes'"):
        _settings("bayes")


def test_on_trial_is_called_once_per_trial_in_order():
    seen = []
    folds, classes = CLASSIFICATION
    run_search(_settings("random", trials=5), folds, make_metric_scorer("f1", classes),
               on_trial=lambda record, result: seen.append((record.number, len(result.trials))))
    assert seen == [(i, i + 1) for i in range(5)]


# ---- determinism


def _fingerprint(result):
    return [(t.family, t.params, t.state, t.fold_scores) for t in result.trials]


@pytest.mark.parametrize("strategy", ["tpe", "random", "grid"])
def test_a_fixed_seed_gives_the_same_trials_and_winner(strategy):
    first = _run(_settings(strategy, trials=10))
    second = _run(_settings(strategy, trials=10))
    assert _fingerprint(first) == _fingerprint(second)
    assert first.best.number == second.best.number


def test_parallel_trials_give_the_same_result_for_the_same_seed():
    first = _run(_settings("tpe", trials=8, parallelism=2))
    second = _run(_settings("tpe", trials=8, parallelism=2))
    assert _fingerprint(first) == _fingerprint(second)


def test_another_seed_explores_differently():
    a = _run(_settings("random", trials=6))
    settings = _settings("random", trials=6)
    b = _run(SearchSettings(**{**settings.__dict__, "seed": 99}))
    assert [t.params for t in a.trials] != [t.params for t in b.trials]


def test_tpe_starts_with_every_family_at_its_default_parameters():
    settings = _settings("tpe", trials=6)
    result = _run(settings)
    first = [(t.family, t.params) for t in result.trials[:2]]
    assert first == [(name, fam.default_point(name, "classification", settings.spaces[name]))
                     for name in ("logistic_regression", "knn")]


# ---- multi-fidelity: successive halving on row subsamples


@pytest.mark.parametrize("train_rows, rungs", [
    (240, [240]),
    (5_999, [5_999]),
    (6_000, [2_000, 6_000]),
    (26_666, [2_962, 8_888, 26_666]),
    (1_000_000, [111_111, 333_333, 1_000_000]),
])
def test_rungs_shrink_the_fold_by_three_down_to_two_thousand_rows_at_most_three_rungs(train_rows, rungs):
    assert rung_rows(train_rows) == rungs


@pytest.mark.parametrize("metric_direction, value, competing, goes_on", [
    ("maximize", 0.7, [], True),                       # alone: the best so far
    ("maximize", 0.7, [0.8], False),                   # fewer than three scores: only the best goes on
    ("maximize", 0.8, [0.7, 0.6], True),
    ("maximize", 0.75, [0.8, 0.7, 0.6, 0.5, 0.4], True),  # six scores: the best two go on
    ("maximize", 0.7, [0.8, 0.75, 0.6, 0.5, 0.4], False),
    ("minimize", 2.0, [3.0, 4.0], True),
    ("minimize", 3.5, [3.0, 4.0, 5.0, 6.0, 1.0], False),
    ("maximize", float("nan"), [], False),
])
def test_a_trial_climbs_to_the_next_rung_only_in_the_best_third_of_its_rung(metric_direction, value, competing,
                                                                          goes_on):
    assert promotable(metric_direction, value, competing) is goes_on


LARGE_REGRESSION = _folds("regression", rows=9_000)  # 6,000 training rows per fold: two rungs


def _ridge_settings(**extra) -> SearchSettings:
    # A quarter of the space is hopeless: a huge ridge penalty predicts (nearly) the mean.
    spaces = {"ridge": {"alpha": R(choices=[0.01, 0.1, 1.0, 1e9])}}
    return SearchSettings(task="regression", metric="r2", strategy="random", spaces=spaces, max_trials=12, seed=3,
                          **extra)


def test_on_large_folds_trials_start_on_a_subsample_and_only_trials_on_the_full_folds_complete():
    result = _run(_ridge_settings(), LARGE_REGRESSION)
    assert len(result.trials) == 12
    pruned = [t for t in result.trials if t.state == PRUNED]
    completed = [t for t in result.trials if t.state == COMPLETE]
    assert pruned and all(t.rows == 2_000 and t.fits == 3 and len(t.rung_scores) == 1 for t in pruned)
    assert all(t.rows == 6_000 and t.fits == 6 and len(t.rung_scores) == 2 for t in completed)
    assert all(t.score == pytest.approx(t.rung_scores[-1]) and len(t.fold_scores) == 3 for t in completed)
    assert all(t.params["alpha"] == 1e9 for t in result.trials if t.rung_scores[0] < 0.5)
    assert result.best.params["alpha"] < 1e9 and result.best.state == COMPLETE


def test_a_subsampled_rung_scores_the_same_parameters_differently_from_the_full_folds():
    completed = [t for t in _run(_ridge_settings(), LARGE_REGRESSION).trials if t.state == COMPLETE]
    assert any(t.rung_scores[0] != t.rung_scores[1] for t in completed)


def test_without_multi_fidelity_every_trial_fits_the_full_folds():
    result = _run(_ridge_settings(multi_fidelity=False, pruning=False), LARGE_REGRESSION)
    assert all(t.fits == 3 and t.rows is None and t.rung_scores == [] for t in result.trials)
    result = _run(_ridge_settings(multi_fidelity=False), LARGE_REGRESSION)
    assert all(t.rows is None for t in result.trials)


def test_multi_fidelity_with_parallel_trials_gives_the_same_result_for_the_same_seed():
    settings = SearchSettings(**{**_ridge_settings().__dict__, "strategy": "tpe", "parallelism": 2})
    first, second = _run(settings, LARGE_REGRESSION), _run(settings, LARGE_REGRESSION)
    assert [(t.params, t.state, t.rung_scores, t.fold_scores) for t in first.trials] == \
        [(t.params, t.state, t.rung_scores, t.fold_scores) for t in second.trials]
