"""The compiled path is verified against scikit-learn and used only when the task says so."""

from __future__ import annotations

import hashlib
import math

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from kadence.serving.compiled import CompiledModel, verify_compiled
from kadence.serving.predictor import load_predictor
from kadence.serving.task import ServeTask


def _forest():
    X, y = make_classification(600, 6, random_state=0)
    return RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0).fit(X[:400], y[:400]), X[400:]


def test_a_random_forest_on_a_matrix_matches_scikit_learn():
    model, holdout = _forest()
    ok, difference, onnx_bytes = verify_compiled(model, holdout, 1e-6)
    assert ok and difference <= 1e-6 and onnx_bytes


def test_a_pipeline_with_a_transformer_and_mixed_columns_matches(churn_model):
    ok, difference, onnx_bytes = verify_compiled(churn_model.pipeline, churn_model.holdout, 1e-6)
    assert ok and difference <= 1e-6
    compiled = CompiledModel(onnx_bytes, churn_model.pipeline)
    assert compiled.columns == ["tenure", "charges", "plan", "paperless", "age"]


def test_a_regressor_matches_within_tolerance():
    X, y = make_regression(300, 5, random_state=0)
    model = Pipeline([("scale", StandardScaler()), ("ridge", Ridge())]).fit(X, y)
    ok, difference, _ = verify_compiled(model, X, 1e-6)
    assert ok and difference <= 1e-6


def test_a_tolerance_below_the_difference_fails_the_check():
    X, y = make_regression(300, 5, random_state=0)
    model = Pipeline([("scale", StandardScaler()), ("ridge", Ridge())]).fit(X, y * 1e6)
    ok, difference, onnx_bytes = verify_compiled(model, X, 0.0)
    assert difference > 0 and not ok and onnx_bytes is not None


def _sign(X):
    return np.sign(X)


def test_a_pipeline_skl2onnx_cannot_convert_stays_on_scikit_learn():
    X, y = make_classification(200, 4, random_state=0)
    pipeline = Pipeline([("custom", FunctionTransformer(_sign)), ("model", RandomForestClassifier(n_estimators=3))])
    # The estimator alone converts, behind the scikit-learn transformer.
    ok, difference, _ = verify_compiled(pipeline.fit(X, y), X, 1e-6)
    assert ok
    assert verify_compiled(FunctionTransformer(_sign).fit(X), X, 1e-6) == (False, math.inf, None)


def _task(churn_model, onnx_path, onnx_sha, verified):
    return ServeTask.model_validate({
        "inferenceService": "churn", "model": "churn", "version": 1,
        "artifact": {"uri": str(churn_model.skops_path), "sha256": churn_model.sha256},
        "compiled": {"uri": str(onnx_path), "sha256": onnx_sha, "verified": verified},
        "inputs": [{"name": "tenure", "type": "int"}, {"name": "charges", "type": "float"},
                   {"name": "plan", "type": "category"}, {"name": "paperless", "type": "bool"},
                   {"name": "age", "type": "float", "nullable": True}],
    })


def test_the_server_uses_onnx_only_when_the_task_says_it_was_verified(churn_model):
    onnx_sha = hashlib.sha256(churn_model.onnx_path.read_bytes()).hexdigest()
    assert load_predictor(_task(churn_model, churn_model.onnx_path, onnx_sha, True)).engine == "onnxruntime"
    assert load_predictor(_task(churn_model, churn_model.onnx_path, onnx_sha, False)).engine == "scikit-learn"
