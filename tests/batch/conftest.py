"""A real churn model (compiled and verified as training does) and a real `kadence serve` process serving it,
shared by the batch workload and export tests.

The model is one whose whole pipeline compiles within tolerance (one-hot, scaling, a logistic regression on four
raw columns: the graph takes one tensor per raw column), so the server scores with that ONNX graph, a batch run
does too, and it can be exported."""

from __future__ import annotations

import pytest

from ..serving.conftest import CHURN_COLUMNS, Server, _save, churn_frame, churn_task, s3_env

COLUMNS = [c for c in CHURN_COLUMNS if c["name"] != "age"]
NAMES = [c["name"] for c in COLUMNS]


def pipeline(frame, labels):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                                  ("numbers", StandardScaler(), ["tenure", "charges"]),
                                  ("flags", "passthrough", ["paperless"])])
    return Pipeline([("features", features), ("model", LogisticRegression(max_iter=500))]).fit(frame[NAMES], labels)


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    frame, labels = churn_frame(600, seed=1)
    holdout, _ = churn_frame(200, seed=2)
    return _save(pipeline(frame, labels), holdout[NAMES], tmp_path_factory.mktemp("models"), "churn", compile_it=True)


@pytest.fixture(scope="session")
def served(model, store, s3_settings, tmp_path_factory):
    """The model server's task (the same fields a BatchPrediction's task carries) and the running server."""
    task = {**churn_task(model, store, compiled=True, isvc="churn-batch-compare"), "inputs": COLUMNS}
    server = Server(task, tmp_path_factory.mktemp("server"), env=s3_env(s3_settings)).wait_ready()
    yield task, server
    server.stop()
