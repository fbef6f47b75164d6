"""LightGBM, XGBoost and CatBoost as search families: early stopping inside the fit, class
weights, seeds and threads, the skops artifact without pickles, and the verified ONNX path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kadence.domain.training import artifact as artifacts
from kadence.domain.training import boosting
from kadence.domain.training import families as fam
from kadence.domain.training.preprocessing import ColumnSpec, raw_preprocessor
from kadence.domain.training.search import fit_weighted
from kadence.serving.compiled import verify_compiled
from kadence.workloads.compile_model import compile_tolerance

BOOSTING = ["lightgbm", "xgboost", "catboost"]
FAST = {"lightgbm": {"learning_rate": 0.3}, "xgboost": {"learning_rate": 0.3}, "catboost": {"learning_rate": 0.3}}


def rounds_parameter(name: str) -> str:
    return fam.family(name).rounds


def make(name: str, task: str, rounds: int, **params):
    metric = "log_loss" if task == "classification" else "rmse"
    return fam.build_estimator(name, task, {rounds_parameter(name): rounds, **FAST[name], **params},
                               metric=metric, seed=7, threads=1, n_classes=3)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    n = 1_500
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.uniform(-1, 1, size=n),
                      "colour": rng.choice(["red", "green", "blue"], size=n)})
    signal = X["a"] + 0.5 * X["b"] * X["c"] + (X["colour"] == "red") * 0.8
    y_class = np.where(signal > 0.6, "high", np.where(signal < -0.4, "low", "mid"))
    y_reg = 3.0 * signal + rng.normal(scale=0.1, size=n)
    columns = [ColumnSpec("a", "float"), ColumnSpec("b", "float"), ColumnSpec("c", "float"),
               ColumnSpec("colour", "category")]
    return X, {"classification": y_class, "regression": y_reg}, columns


@pytest.mark.parametrize("name", BOOSTING)
def test_above_the_threshold_the_library_early_stopping_ends_the_rounds(name):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(boosting.EARLY_STOPPING_ROWS + 200, 4))
    y = (X[:, 0] + rng.normal(scale=1.0, size=len(X)) > 0).astype(int)  # noisy: overfits fast
    estimator = make(name, "classification", 1_000)
    fit_weighted(estimator, X, y, seed=0)
    assert boosting.rounds_used(estimator) < 1_000


@pytest.mark.parametrize("name", BOOSTING)
def test_below_the_threshold_the_searched_round_count_is_used(name):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(scale=1.0, size=len(X)) > 0).astype(int)
    estimator = make(name, "classification", 40)
    fit_weighted(estimator, X, y, seed=0)
    assert boosting.rounds_used(estimator) == 40


def test_the_early_stopping_rows_are_a_seeded_stratified_tenth_of_the_fit_rows():
    y = np.array([0] * 900 + [1] * 100)
    fit_rows, stop_rows = boosting.early_stopping_split(y, seed=3, stratify=True)
    again, _ = boosting.early_stopping_split(y, seed=3, stratify=True)
    assert len(stop_rows) == 100 and np.array_equal(fit_rows, again)
    assert (y[stop_rows] == 1).sum() == 10  # the class shares kept
    assert not set(fit_rows) & set(stop_rows)


@pytest.mark.parametrize("name", BOOSTING)
def test_the_same_seed_fits_the_same_model(name, frames):
    X, ys, columns = frames
    features = raw_preprocessor(columns).fit_transform(X)
    first = fit_weighted(make(name, "regression", 300), features, ys["regression"], seed=0)
    second = fit_weighted(make(name, "regression", 300), features, ys["regression"], seed=0)
    assert np.array_equal(first.predict(features), second.predict(features))


@pytest.mark.parametrize("name,weighting", [("lightgbm", {"class_weight": "balanced"}),
                                            ("xgboost", {"class_weight": "balanced"}),
                                            ("catboost", {"auto_class_weights": "Balanced"})])
def test_balanced_class_weights_raise_the_rare_class_recall(name, weighting):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1_600, 3))
    y = ((X[:, 0] + rng.normal(scale=0.8, size=len(X))) > 2.0).astype(int)  # about 1 in 20
    fit, new = slice(0, 800), slice(800, None)
    plain = fit_weighted(make(name, "classification", 60), X[fit], y[fit], seed=0)
    weighted = fit_weighted(make(name, "classification", 60, **weighting), X[fit], y[fit], seed=0)
    rare = y[new] == 1
    assert weighted.predict(X[new])[rare].mean() > plain.predict(X[new])[rare].mean()


def test_xgboost_class_weight_is_applied_by_kadence_and_never_reaches_xgboost():
    import warnings

    estimator = make("xgboost", "classification", 20, class_weight="balanced")
    X = np.random.default_rng(5).normal(size=(200, 2))
    y = (X[:, 0] > 1).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # XGBoost warns about a parameter it does not use
        fit_weighted(estimator, X, y, seed=0)
    assert "class_weight" not in estimator.get_params()


@pytest.mark.parametrize("name", BOOSTING)
def test_one_thread_per_trial_worker_is_what_the_library_is_given(name):
    estimator = fam.build_estimator(name, "classification", {}, metric="f1", seed=0, threads=1)
    threads = {k: v for k, v in estimator.get_params().items() if k in ("n_jobs", "thread_count")}
    assert threads and set(threads.values()) == {1}


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", BOOSTING)
def test_the_fitted_pipeline_is_a_skops_artifact_and_its_onnx_graph_is_verified(name, task, frames):
    from sklearn.pipeline import Pipeline

    X, ys, columns = frames
    y = ys[task]
    preprocess = raw_preprocessor(columns).fit(X)
    estimator = fit_weighted(make(name, task, 200), preprocess.transform(X), y, seed=0)
    pipeline = Pipeline([("preprocess", preprocess), ("model", estimator)])

    data = artifacts.dumps(pipeline)
    assert artifacts.untrusted_types(data) == []
    reloaded = artifacts.loads(data, expected_sha256=artifacts.sha256_hex(data))
    assert np.array_equal(np.asarray(reloaded.predict(X)), np.asarray(pipeline.predict(X)))
    assert np.asarray(pipeline.predict(X)).ndim == 1  # one label per row, as scikit-learn's

    holdout = X.iloc[:300]
    bound = compile_tolerance(task, pipeline.predict(holdout) if task == "regression" else ())
    ok, difference, graph = verify_compiled(pipeline, holdout, bound)
    assert graph is not None and ok, f"{name} {task}: max difference {difference}"


def test_a_pickle_smuggled_into_a_boosting_artifact_is_refused():
    import io
    import json
    import zipfile

    estimator = fit_weighted(make("lightgbm", "regression", 10), np.eye(20), np.arange(20.0), seed=0)
    data = artifacts.dumps(estimator)
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    schema["__module__"], schema["__class__"] = "builtins", "eval"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for member in source.namelist():
            target.writestr(member, json.dumps(schema) if member == "schema.json" else source.read(member))
    with pytest.raises(artifacts.UntrustedArtifact, match="builtins.eval"):
        artifacts.loads(out.getvalue())


def test_a_family_whose_library_is_missing_is_left_out_with_the_extra_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "catboost" else real(name, *a))
    chosen, left_out = fam.default_families("classification", "f1", 2, 1_000)
    assert "catboost" not in chosen and "lightgbm" in chosen
    assert "catboost (catboost is not installed (it comes with the kadence[boosting] extra))" in left_out
    with pytest.raises(fam.FamilyError, match="catboost cannot run here: catboost is not installed"):
        fam.check_family_fits("catboost", "classification", "f1", 2)


def test_a_user_may_narrow_an_xgboost_parameter_that_its_constructor_takes_as_kwargs():
    space = fam.resolve_space("xgboost", "regression", {"max_depth": fam.R(low=2, high=4, integer=True)})
    assert (space["max_depth"].low, space["max_depth"].high) == (2, 4)
    with pytest.raises(fam.FamilyError, match="'depth' is not a parameter of XGBRegressor"):
        fam.resolve_space("xgboost", "regression", {"depth": fam.R(low=2, high=4, integer=True)})


def test_the_default_point_of_a_boosting_family_starts_from_the_library_defaults():
    space = fam.resolve_space("xgboost", "classification")
    point = fam.default_point("xgboost", "classification", space, train_rows=5_000)
    assert point["learning_rate"] == 0.3 and point["max_depth"] == 6
    assert point["n_estimators"] == space["n_estimators"].high  # early stopping ends it
    small = fam.default_point("xgboost", "classification", space, train_rows=500)
    assert small["n_estimators"] < space["n_estimators"].high
