"""Data selection by time (TrainingRun spec.dataSelection): recent rows, recency weights, the
hold-out of the newest rows, and a weighted search that prefers the recent regime."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from kadence.api.trainingrun import DataSelection, TrainingRunSpec
from kadence.domain.training import families as fam
from kadence.domain.training import selection as sel
from kadence.domain.training.metrics import make_metric_scorer
from kadence.domain.training.search import Fold, SearchSettings, fit_weighted, run_search, score_weighted

DAY = 86400.0


def times(*values) -> pd.Series:
    return sel.event_times(list(values), "t")


def test_event_times_read_strings_and_keep_missing_values_missing():
    parsed = times("2026-01-02T00:00:00Z", None, "2026-01-01")
    assert parsed.isna().tolist() == [False, True, False]
    assert str(parsed[0].tz) == "UTC"


@pytest.mark.parametrize("values, message", [
    ([1, 2, 3], "holds numbers, not date-times"),
    (["2026-01-01", "next tuesday"], "not date-times"),
])
def test_a_time_column_that_holds_no_date_times_is_refused_by_name(values, message):
    with pytest.raises(sel.SelectionError, match=f"'t' {message}" if "numbers" in message else message):
        sel.event_times(values, "t")


def test_recent_by_period_keeps_the_rows_within_it_of_the_newest_in_their_order():
    t = times("2026-01-10", "2026-01-01", "2026-01-08", None, "2026-01-09")
    assert sel.recent_rows(t, period_seconds=2 * DAY).tolist() == [0, 2, 4]


def test_recent_by_rows_keeps_the_newest_n_and_a_missing_time_counts_oldest():
    t = times("2026-01-10", None, "2026-01-08", "2026-01-01")
    assert sel.recent_rows(t, rows=2).tolist() == [0, 2]
    assert sel.recent_rows(t, rows=10).tolist() == [0, 1, 2, 3]


def test_recency_weights_halve_every_half_life_and_average_one():
    t = times("2026-01-31", "2026-01-01", "2026-01-16", None)
    w = sel.recency_weights(t, half_life_seconds=15 * DAY)
    assert w.mean() == pytest.approx(1.0)
    assert w[2] / w[0] == pytest.approx(0.5) and w[1] / w[0] == pytest.approx(0.25)
    assert w[3] == pytest.approx(w[1])  # missing: as old as the oldest


def test_a_half_life_far_shorter_than_the_span_leaves_only_the_newest_rows_weight():
    w = sel.recency_weights(times("2026-01-01", "2026-12-31"), half_life_seconds=1e-3)
    assert w.tolist() == [0.0, 2.0]


def test_the_hold_out_is_the_newest_rows():
    t = times("2026-01-05", "2026-01-01", None, "2026-01-04", "2026-01-02")
    parts = sel.time_holdout(t, 0.4)
    assert parts.holdout.tolist() == [3, 0]
    assert parts.train.tolist() == [2, 1, 4]


def test_cross_validation_with_times_validates_on_the_newest_half_only_each_row_once():
    rng = np.random.default_rng(0)
    t = sel.event_times(pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(40), unit="D"), "t")
    y = np.array([0, 1] * 20)
    folds = sel.recent_validation_folds(t, y, k=4, seed=1, stratify=True)
    newest_half = set(sel.time_order(t)[20:].tolist())
    validated = [int(i) for _, valid in folds for i in valid]
    assert sorted(validated) == sorted(newest_half)  # every newest-half row once, no older one
    for train, valid in folds:
        assert sorted([*train.tolist(), *valid.tolist()]) == list(range(40))  # the rest trains, older rows too
        assert set(y[valid]) == {0, 1}


def test_too_few_rows_for_the_folds_are_refused():
    with pytest.raises(sel.SelectionError, match="too few"):
        sel.recent_validation_folds(times("2026-01-01", "2026-01-02", "2026-01-03"), [0, 1, 0], k=2, seed=0,
                                    stratify=False)


def test_effective_rows_of_equal_weights_is_the_row_count():
    assert sel.effective_rows(np.ones(10), 10) == pytest.approx(10)
    assert sel.effective_rows(np.array([1.0, 0.0, 0.0]), 3) == pytest.approx(1)
    assert sel.effective_rows(None, 7) == 7


@pytest.mark.parametrize("spec, message", [
    ({"mode": "Recent", "recent": {"rows": 100}}, "mode Recent needs timeColumn"),
    ({"mode": "Recent", "timeColumn": "t"}, "recent is set exactly when mode is Recent"),
    ({"mode": "RecencyWeighted", "timeColumn": "t"}, "halfLife is set exactly when mode is RecencyWeighted"),
    ({"mode": "All", "timeColumn": "t", "halfLife": "30d"}, "halfLife is set exactly"),
    ({"mode": "Recent", "timeColumn": "t", "recent": {"rows": 100, "period": "30d"}}, "exactly one of period, rows"),
    ({"mode": "RecencyWeighted", "timeColumn": "t", "halfLife": "a month"}, "pattern"),
])
def test_an_inconsistent_data_selection_is_refused(spec, message):
    with pytest.raises(ValidationError, match=message):
        DataSelection.model_validate(spec)


def test_the_data_selection_is_declared_api_with_cel_rules():
    schema = TrainingRunSpec.model_json_schema(by_alias=True)
    selection = schema["$defs"]["DataSelection"]
    assert set(selection["properties"]) == {"timeColumn", "mode", "recent", "halfLife"}
    rules = [r["rule"] for r in selection["x-kubernetes-validations"]]
    assert "self.mode == 'All' || has(self.timeColumn)" in rules


# ---- weights through the search


def shifted(rows: int, seed: int):
    """Old regime (the first 80 %): y = x0 > 0; the recent 20 %: y = x1 > 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    recent = np.arange(rows) >= int(0.8 * rows)
    y = np.where(recent, X[:, 1] > 0, X[:, 0] > 0).astype(int)
    return X, y, recent


def _folds(X, y, w, k=3):
    from sklearn.model_selection import StratifiedKFold

    folds = []
    for a, b in StratifiedKFold(k, shuffle=True, random_state=0).split(X, y):
        folds.append(Fold(X[a], y[a], X[b], y[b], None if w is None else w[a], None if w is None else w[b]))
    return folds


@pytest.mark.parametrize("family", ["logistic_regression", "knn"])
def test_a_weighted_search_prefers_the_recent_regime(family):
    X, y, recent = shifted(1500, 1)
    weights = np.where(recent, 1.0, 0.02)  # a short half-life: the old regime barely counts
    X_new, y_new, _ = shifted(1500, 2)
    X_new, y_new = X_new[1200:], y_new[1200:]  # fresh rows of the recent regime
    scorer = make_metric_scorer("accuracy", [0, 1])
    settings = SearchSettings(task="classification", metric="accuracy", strategy="random",
                              spaces={family: fam.resolve_space(family, "classification")}, max_trials=4, seed=3,
                              pruning=False)
    served = {}
    for name, w in (("unweighted", None), ("weighted", weights)):
        best = run_search(settings, _folds(X, y, w), scorer).best
        model = fam.build_estimator(best.family, "classification", best.params, metric="accuracy", seed=3)
        fit_weighted(model, X, y, w, seed=3)
        served[name] = scorer(model, X_new, y_new)
    assert served["weighted"] > 0.8 > 0.65 > served["unweighted"]


def test_a_weighted_score_counts_each_row_by_its_weight():
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant=1).fit([[0], [1]], [0, 1])
    scorer = make_metric_scorer("accuracy", [0, 1])
    X, y = [[0], [0], [0], [0]], [1, 1, 0, 0]
    assert score_weighted(scorer, model, X, y) == 0.5
    assert score_weighted(scorer, model, X, y, np.array([3.0, 3.0, 1.0, 1.0])) == pytest.approx(0.75)
    assert math.isclose(score_weighted(scorer, model, X, y, np.ones(4)), 0.5)
