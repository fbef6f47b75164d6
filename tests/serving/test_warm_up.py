"""A fresh model server predicts placeholder rows before it reports ready."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from kadence.serving.predictor import Predictor
from kadence.serving.task import ServeColumn


class Counting(LogisticRegression):
    calls = 0

    def predict_proba(self, X):
        type(self).calls += 1
        return super().predict_proba(X)


def fitted(estimator) -> Pipeline:
    frame = pd.DataFrame({"tenure": [1, 5, 9, 20], "plan": ["a", "b", "a", "b"], "vip": [True, False, True, False]})
    encode = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough")
    return Pipeline([("encode", encode), ("model", estimator)]).fit(frame, [0, 1, 0, 1])


COLUMNS = [ServeColumn(name="tenure", type="int"), ServeColumn(name="plan", type="category"),
           ServeColumn(name="vip", type="bool")]


def test_the_warm_up_predicts_placeholder_rows_of_every_column_type():
    Counting.calls = 0
    predictor = Predictor(fitted(Counting()), COLUMNS)
    assert predictor.warm_up() is None
    assert Counting.calls == 1


def test_a_pipeline_refusing_placeholders_is_served_all_the_same_and_says_why():
    predictor = Predictor(fitted(LogisticRegression()), [*COLUMNS[:2], ServeColumn(name="missing", type="float")])
    reason = predictor.warm_up()
    assert reason is not None and ("missing" in reason or "vip" in reason)
    columns = {"tenure": np.array([3]), "plan": np.array(["a"], dtype=object), "vip": np.array([True])}
    assert Predictor(fitted(LogisticRegression()), COLUMNS).predict(columns).values.shape == (1,)
