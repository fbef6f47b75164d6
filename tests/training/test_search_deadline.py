"""The search's timeout is its budget, running trials included: at the deadline the fits in
flight are stopped, queued ones dropped, and every unfinished trial recorded as `timeout`."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold

from kadence.api.trainingrun import ParameterRange as R
from kadence.domain.training import families as fam
from kadence.domain.training.metrics import make_metric_scorer
from kadence.domain.training.search import (
    COMPLETE,
    TIMED_OUT,
    Fold,
    SearchError,
    SearchSettings,
    fit_and_score_fold,
    run_search,
)

TIMEOUT = 100.0


def folds(rows: int = 240) -> tuple[list[Fold], list]:
    X, y = make_classification(n_samples=rows, n_features=8, n_informative=4, random_state=0)
    return [Fold(X[a], y[a], X[b], y[b]) for a, b in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y)], [0, 1]


def settings(trials: int, timeout_s: float | None = TIMEOUT, spaces=None) -> SearchSettings:
    return SearchSettings(task="classification", metric="f1", strategy="random",
                          spaces=spaces or {"logistic_regression": fam.resolve_space("logistic_regression",
                                                                                     "classification")},
                          max_trials=trials, seed=7, timeout_s=timeout_s, pruning=False)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedFits:
    """Fold fits in this process, one a second on the clock; from fit number `hang_from`
    on, a fit never finishes and the clock runs past the deadline while it runs."""

    def __init__(self, clock: Clock, hang_from: int | None):
        self.clock, self.hang_from = clock, hang_from
        self.submitted = 0
        self.stopped = False
        self.unfinished: list[Future] = []

    def __call__(self, context):
        self.context = context
        return self

    def submit(self, family, params, index, rung=-1) -> Future:
        future: Future = Future()
        if self.hang_from is not None and self.submitted >= self.hang_from:
            self.clock.now += 2 * TIMEOUT
            self.unfinished.append(future)
        else:
            self.clock.now += 1
            future.set_result(fit_and_score_fold(self.context, family, params, index, rung))
        self.submitted += 1
        return future

    def stop(self) -> None:
        self.stopped = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.mark.parametrize("hang_from, trials, states, folds_of_the_stopped", [
    # no fit outlasts the budget: nothing is stopped, every planned trial completes
    (None, 3, [COMPLETE, COMPLETE, COMPLETE], None),
    # trial 1's first fold runs past the deadline: trial 0 stands, trial 1 is stopped, no trial 2
    (3, 5, [COMPLETE, TIMED_OUT], 0),
    # trial 1 has one fold scored when its second runs past the deadline: still timed out, its score kept out
    (4, 5, [COMPLETE, TIMED_OUT], 1),
])
def test_a_fit_running_at_the_deadline_is_stopped_and_its_trial_recorded_as_timed_out(
        hang_from, trials, states, folds_of_the_stopped):
    clock = Clock()
    fits = ScriptedFits(clock, hang_from)
    data, classes = folds()
    result = run_search(settings(trials), data, make_metric_scorer("f1", classes), clock=clock, fits=fits)
    assert [t.state for t in result.trials] == states
    assert fits.stopped is (hang_from is not None)
    assert result.stopped_by == ("timeout" if hang_from is not None else "budget")
    assert result.best.state == COMPLETE and (hang_from is None or result.best.number == 0)
    assert result.counts[TIMED_OUT] == states.count(TIMED_OUT)
    for trial in result.trials:
        if trial.state == TIMED_OUT:
            assert trial.score is None and len(trial.fold_scores) == folds_of_the_stopped
            assert trial.error == f"stopped at the search's timeout ({TIMEOUT:g}s)"
            assert trial.as_dict()["state"] == "timeout"


def test_a_search_whose_every_trial_outlasts_the_budget_fails_saying_so():
    clock = Clock()
    data, classes = folds()
    with pytest.raises(SearchError, match=r"no trial completed \(1 tried; 1 stopped at the 100s timeout: raise "
                                          r"search.timeout or lower maxTrials\)"):
        run_search(settings(4), data, make_metric_scorer("f1", classes), clock=clock, fits=ScriptedFits(clock, 0))


def test_a_real_fit_in_a_worker_process_is_terminated_at_the_deadline_instead_of_awaited():
    """Without the deadline on running trials this fit (a 4,000-tree forest on 20,000 rows,
    minutes on this machine) would finish and win; with it the search ends at 2 s."""
    data, classes = folds(rows=20_000)
    slow = {"random_forest": {"n_estimators": R(low=4000, high=4000, integer=True),
                              "max_depth": R(low=30, high=30, integer=True)}}
    with pytest.raises(SearchError, match="1 stopped at the 2s timeout"):
        run_search(settings(1, timeout_s=2.0, spaces=slow), data, make_metric_scorer("f1", classes))
