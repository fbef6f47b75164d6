"""The model card's search picture: score against time by family, permutation importance on the
hold-out, the calibration curve; and the ModelVersion status that links to it."""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from kadence.domain.training.metrics import make_metric_scorer
from kadence.domain.training.search import SearchResult, TrialRecord
from kadence.workloads import model_card as card


def test_the_informative_column_has_the_largest_permutation_importance():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=600), "noise": rng.normal(size=600)})
    y = np.where(X["signal"] > 0, "yes", "no")
    model = LogisticRegression().fit(X, y)
    rows = card.permutation_importances(model, X, y, make_metric_scorer("accuracy", ["no", "yes"]), seed=0)
    assert [name for name, _, _ in rows] == ["signal", "noise"]
    assert rows[0][1] > 0.3 and abs(rows[1][1]) < 0.02


def test_the_importances_use_at_most_the_row_cap_and_the_same_seed_gives_the_same_figures():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=5_000), "b": rng.normal(size=5_000)})
    y = 3 * X["a"] + rng.normal(size=5_000)
    model = Ridge().fit(X, y)
    scorer = make_metric_scorer("rmse")
    first = card.permutation_importances(model, X, y, scorer, seed=4, max_rows=500)
    assert first == card.permutation_importances(model, X, y, scorer, seed=4, max_rows=500)
    assert first[0][0] == "a" and first[0][1] > 1.0  # rmse rises by more than 1 without a


def test_a_calibrated_binary_model_lies_near_the_diagonal_and_a_regressor_has_no_curve():
    class Known:
        classes_ = np.array([0, 1])

        def __init__(self, p):
            self.p = p

        def predict_proba(self, X):
            return np.column_stack([1 - self.p, self.p])

    rng = np.random.default_rng(2)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)  # outcomes drawn with exactly the stated probability
    curve = card.calibration(Known(p), None, y, [0, 1])
    assert curve["kind"] == "P(1)"
    assert np.max(np.abs(np.array(curve["observed"]) - np.array(curve["predicted"]))) < 0.03
    assert card.calibration(object(), None, y, None) is None


def test_a_multiclass_curve_is_the_predicted_class_confidence_against_its_accuracy():
    class Sure:
        classes_ = np.array(["a", "b", "c"])

        def predict_proba(self, X):
            return np.tile([0.9, 0.05, 0.05], (len(X), 1))

    y = np.array(["a"] * 50 + ["b"] * 50)  # right half the time at 0.9 confidence: overconfident
    curve = card.calibration(Sure(), np.zeros((100, 1)), y, ["a", "b", "c"])
    assert curve["kind"] == "probability of the predicted class"
    assert curve["observed"] == [0.5] and curve["predicted"] == pytest.approx([0.9])


def test_the_card_shows_score_against_time_importance_calibration_and_an_ensemble_winner():
    from kadence.workloads.train_task import BestTrial
    from kadence.api.modelversion import Lineage, Signature, SignatureColumn

    trials = [TrialRecord(0, "lightgbm", {"num_leaves": 31}, "complete", 0.8, [0.8], 1.0),
              TrialRecord(1, "xgboost", {"max_depth": 6}, "pruned", 0.6, [0.6], 0.5),
              TrialRecord(2, "catboost", {"depth": 6}, "complete", 0.85, [0.85], 2.0)]
    search = SearchResult(trials=trials, best=trials[2], metric="f1", direction="maximize", planned=3,
                          stopped_by="budget", counts={"complete": 2, "pruned": 1, "failed": 0})
    winner = BestTrial(number=2, family="ensemble", params={"members": [{"trial": 0}, {"trial": 2}]},
                       cv_score=0.87, fold_scores=[0.87])

    class Task:
        namespace, run, attempt = "ns", "run", 1

        class spec:
            model, task, cv_folds = "m", "classification", 3

            class search:
                strategy = "tpe"

    html = card.render_model_card(
        Task, search, {"f1": 0.86}, {}, Signature(inputs=[SignatureColumn(name="a", type="float")],
                                                  outputs=[SignatureColumn(name="prediction", type="category")]),
        Lineage(training_run="run"), "0" * 64, winner=winner, finished_s={0: 1.5, 1: 2.0, 2: 4.0},
        importances=[("a", 0.2, 0.01)],
        calibration_curve={"kind": "P(1)", "predicted": [0.2, 0.8], "observed": [0.25, 0.7], "brier": 0.1})
    assert "alt='score against time'" in html and "alt='permutation importance'" in html
    assert "alt='calibration curve'" in html
    assert "<td>ensemble</td>" in html and "0.870000" in html


def test_the_model_version_status_links_the_model_card_named_in_its_lineage():
    from tests.training.test_planners import ARTIFACT, NOW, mv_body, status

    from kadence.planners.modelversion import ModelVersionObservation, plan_modelversion

    body = mv_body()
    body["spec"]["lineage"] = {"trainingRun": "churn-train", "modelCard": "s3://bucket/runs/x/model_card.html"}
    plan = plan_modelversion(body, ModelVersionObservation(artifact=ARTIFACT), NOW)
    assert status(plan)["modelCard"] == "s3://bucket/runs/x/model_card.html"
