"""A real churn model (compiled and verified as training does) and a real `kadence serve` process serving it,
shared by the batch workload and export tests."""

from __future__ import annotations

import pytest

from ..serving.conftest import Server, _save, churn_frame, churn_pipeline, churn_task, s3_env


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    frame, labels = churn_frame(600, seed=1)
    holdout, _ = churn_frame(200, seed=2)
    return _save(churn_pipeline(frame, labels), holdout, tmp_path_factory.mktemp("models"), "churn", compile_it=True)


@pytest.fixture(scope="session")
def served(model, store, s3_settings, tmp_path_factory):
    """The model server's task (the same fields a BatchPrediction's task carries) and the running server."""
    task = churn_task(model, store, compiled=True, isvc="churn-batch-compare")
    server = Server(task, tmp_path_factory.mktemp("server"), env=s3_env(s3_settings)).wait_ready()
    yield task, server
    server.stop()
