"""The compiled inference path at training time: an ONNX graph checked against
scikit-learn on the hold-out, stored write-once and recorded in the result."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from .datagen import CHURN_COLUMNS, HOUSES_COLUMNS, churn_frame, houses_frame, put_dataset
from kadence.domain.training import artifact as artifacts
from kadence.serving.compiled import CompiledModel
from kadence.workloads.compile_model import (CLASSIFICATION_TOLERANCE, REGRESSION_RELATIVE_TOLERANCE,
                                             compile_tolerance, compile_winner)
from kadence.workloads.train_task import TrainTask
from kadence.workloads.trainer import train

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

def churn_task(store, run: str, families: list[dict], **task_extra) -> TrainTask:
    uri = put_dataset(store, "ml", "churn-c", "c1", churn_frame(rows=240, seed=5), CHURN_COLUMNS, "churned",
                      "customer_id")
    return TrainTask.model_validate({
        "namespace": "ml", "run": run,
        "spec": {"datasetRef": {"name": "churn-c"}, "task": "classification", "objective": {"metric": "f1"},
                 "search": {"strategy": "random", "maxTrials": 2, "families": families},
                 "cvFolds": 3, "model": "churn"},
        "input": {"kind": "Dataset", "name": "churn-c", "version": "c1", "uri": uri},
        **task_extra,
    })


@pytest.fixture(scope="module")
def verified_run(store):
    lines: list[str] = []
    result = train(churn_task(store, "churn-compiled", [{"name": "logistic_regression"}]), store, log=lines.append)
    return result, lines


@pytest.mark.parametrize("task, predictions, override, expected", [
    ("classification", [], None, CLASSIFICATION_TOLERANCE),
    ("regression", [0.5, -0.2], None, REGRESSION_RELATIVE_TOLERANCE),
    ("regression", [120_000.0, -350_000.0], None, REGRESSION_RELATIVE_TOLERANCE * 350_000.0),
    ("regression", [], None, REGRESSION_RELATIVE_TOLERANCE),
    ("classification", [], 0.25, 0.25),
])
def test_the_tolerance_is_absolute_on_probabilities_and_relative_to_the_prediction_scale_for_regression(
        task, predictions, override, expected):
    assert compile_tolerance(task, predictions, override) == pytest.approx(expected)


def test_a_run_records_a_verified_compiled_artifact_whose_predictions_match(store, verified_run):
    result, lines = verified_run
    compiled = result.compiled
    assert compiled is not None and compiled.verified
    assert compiled.format == "onnx" and compiled.tolerance == CLASSIFICATION_TOLERANCE
    assert compiled.max_abs_difference <= compiled.tolerance
    assert compiled.uri == store.uri(f"runs/ml/churn-compiled/artifacts/{compiled.sha256}/model.onnx")
    onnx_bytes = store.get_bytes(store.key_of(compiled.uri))
    assert artifacts.sha256_hex(onnx_bytes) == compiled.sha256
    assert any(line.startswith("compiled: verified") for line in lines)

    pipeline = artifacts.loads(store.get_bytes(store.key_of(result.artifact.uri)), result.artifact.sha256)
    fresh = churn_frame(rows=40, seed=99)[[c.name for c in result.signature.inputs]]
    model = CompiledModel(onnx_bytes, pipeline)
    labels, probabilities = model.run({c: fresh[c].to_numpy() for c in model.columns}, fresh)
    assert np.array_equal(np.asarray(labels).astype(str), np.asarray(pipeline.predict(fresh)).astype(str))
    assert np.max(np.abs(probabilities - pipeline.predict_proba(fresh))) <= compiled.tolerance
    # the result.json the operator reads carries it too
    assert result.wire()["compiled"]["verified"] is True


def test_a_retried_attempt_writes_the_same_graph_to_the_same_key(store, verified_run):
    result, _ = verified_run
    again = train(churn_task(store, "churn-compiled", [{"name": "logistic_regression"}]), store, log=lambda _: None)
    assert again.compiled == result.compiled


def test_a_tolerance_that_cannot_be_met_records_verified_false_with_the_difference(store):
    lines: list[str] = []
    task = churn_task(store, "churn-strict", [{"name": "random_forest",
                                                "space": {"n_estimators": {"low": 20, "high": 30, "integer": True}}}],
                      compiledTolerance=0.0)
    result = train(task, store, log=lines.append)
    compiled = result.compiled
    assert compiled is not None
    assert compiled.verified is False and compiled.tolerance == 0.0 and compiled.max_abs_difference > 0.0
    assert artifacts.sha256_hex(store.get_bytes(store.key_of(compiled.uri))) == compiled.sha256
    assert any("NOT verified" in line for line in lines)


def test_a_regression_run_is_checked_against_a_tolerance_relative_to_its_predictions(store):
    uri = put_dataset(store, "ml", "houses-c", "h1", houses_frame(rows=150, seed=4), HOUSES_COLUMNS, "price")
    task = TrainTask.model_validate({
        "namespace": "ml", "run": "houses-compiled",
        "spec": {"datasetRef": {"name": "houses-c"}, "task": "regression", "objective": {"metric": "rmse"},
                 "search": {"strategy": "random", "maxTrials": 2, "families": [{"name": "ridge"}]},
                 "cvFolds": 3, "model": "houses"},
        "input": {"kind": "Dataset", "name": "houses-c", "version": "h1", "uri": uri},
    })
    result = train(task, store, log=lambda _: None)
    assert result.compiled is not None and result.compiled.verified
    assert result.compiled.tolerance > REGRESSION_RELATIVE_TOLERANCE  # house prices are far above 1


def test_a_featureset_run_compiles_the_whole_pipeline_featureset_transformer_included(store):
    from kadence.workloads.data_tasks import MaterializeTask
    from kadence.workloads.materialize_run import materialize

    dataset_uri = put_dataset(store, "ml", "churn-raw-c", "d9", churn_frame(rows=200, seed=8), CHURN_COLUMNS,
                              "churned", "customer_id")
    features = materialize(MaterializeTask.model_validate({
        "namespace": "ml", "name": "churn-features-c", "datasetUri": dataset_uri,
        "spec": {"datasetRef": {"name": "churn-raw-c"}, "entityColumn": "customer_id", "features": [
            {"name": "log_tenure", "expression": "log1p(tenure)"},
            {"name": "plan", "transform": {"type": "oneHot", "column": "plan"}},
        ]},
    }), store)
    assert features.valid, features.message
    lines: list[str] = []
    result = train(TrainTask.model_validate({
        "namespace": "ml", "run": "churn-fs-compiled",
        "spec": {"featureSetRef": {"name": "churn-features-c"}, "task": "classification",
                 "objective": {"metric": "f1"}, "search": {"strategy": "random", "maxTrials": 2,
                                                           "families": [{"name": "logistic_regression"}]},
                 "cvFolds": 3, "model": "churn"},
        "input": {"kind": "FeatureSet", "name": "churn-features-c", "version": features.version,
                  "uri": features.uri},
    }), store, log=lines.append)
    assert result.compiled is not None and result.compiled.verified, lines
    pipeline = artifacts.loads(store.get_bytes(store.key_of(result.artifact.uri)), result.artifact.sha256)
    model = CompiledModel(store.get_bytes(store.key_of(result.compiled.uri)), pipeline)
    assert (model.scope, model.input_mode) == ("pipeline", "columns")  # the transformer's converter: raw columns in
    fresh = churn_frame(rows=30, seed=77)[[c.name for c in result.signature.inputs]]
    _, probabilities = model.run({c: fresh[c].to_numpy() for c in fresh.columns}, fresh)
    assert np.max(np.abs(probabilities - pipeline.predict_proba(fresh))) <= result.compiled.tolerance


def test_without_skl2onnx_nothing_is_recorded_and_the_log_says_why(store, verified_run, monkeypatch):
    result, _ = verified_run
    pipeline = artifacts.loads(store.get_bytes(store.key_of(result.artifact.uri)), result.artifact.sha256)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import skl2onnx now raises ImportError
    lines: list[str] = []
    raw = churn_frame(rows=10, seed=1)[[c.name for c in result.signature.inputs]]
    assert compile_winner(pipeline, raw, "classification", store, "runs/ml/x/",
                          lines.append) is None
    assert lines == ["compiled: not compiled: skl2onnx is not installed (it comes with the kadence[serve] extra)"]


def test_a_pipeline_skl2onnx_cannot_convert_records_nothing_and_logs_the_converter_error(store):
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    class MeanRegressor(RegressorMixin, BaseEstimator):  # no skl2onnx converter, not even alone
        def fit(self, X, y):
            self.mean_ = float(np.mean(y))
            return self

        def predict(self, X):
            return np.full(len(X), self.mean_)

    X = np.random.default_rng(0).normal(size=(60, 3))
    pipeline = Pipeline([("scale", StandardScaler()), ("model", MeanRegressor())]).fit(X, X[:, 0])
    lines: list[str] = []
    assert compile_winner(pipeline, X, "regression", store, "runs/ml/y/", lines.append) is None
    assert len(lines) == 1 and lines[0].startswith("compiled: not compiled: skl2onnx cannot convert this pipeline (")
    assert "MeanRegressor" in lines[0]
