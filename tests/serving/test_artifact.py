"""The server loads only the artifact the registry promised, and only trusted types."""

from __future__ import annotations

import hashlib

import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from kadence.serving.artifact import ArtifactRefused, is_trusted_type, load_skops, load_verified_pipeline

from .conftest import Server, churn_task, s3_env


class Shady(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def test_a_matching_sha256_loads_the_pipeline(churn_model):
    pipeline = load_verified_pipeline(f"file://{churn_model.skops_path}", churn_model.sha256)
    assert type(pipeline).__name__ == "Pipeline"


def test_a_sha256_mismatch_is_refused(churn_model):
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ArtifactRefused, match=f"sha256 is {churn_model.sha256}, expected {wrong}; refusing"):
        load_verified_pipeline(str(churn_model.skops_path), wrong)


def test_a_type_outside_the_trust_list_is_refused_before_loading():
    pipeline = Pipeline([("shady", Shady()), ("model", LogisticRegression())]).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ArtifactRefused, match=r"refusing untrusted types tests\.serving\.test_artifact\.Shady"):
        load_skops(sio.dumps(pipeline))


def test_garbage_is_not_a_skops_file():
    with pytest.raises(ArtifactRefused, match="not a readable skops file"):
        load_skops(b"not a zip file")


@pytest.mark.parametrize("name, trusted", [
    ("sklearn.tree._tree.Tree", True), ("kadence.domain.data.transforms.FeatureTransformer", True),
    ("builtins.eval", False), ("os.system", False), ("numpy.load", False), ("sklearn.tree._tree.TreeX", False),
    ("kadence.domain.data.transforms.Other", False),
])
def test_the_trust_list_names_exact_types_not_whole_modules(name, trusted):
    assert is_trusted_type(name) is trusted


def test_the_server_refuses_to_start_on_a_sha256_mismatch(churn_model, store, s3_settings, tmp_path):
    task = churn_task(churn_model, store, compiled=False, isvc="churn-mismatch")
    task["artifact"]["sha256"] = "0" * 64
    server = Server(task, tmp_path, env=s3_env(s3_settings))
    assert server.wait_exit(60) != 0
    assert f"sha256 is {churn_model.sha256}, expected {'0' * 64}; refusing to load it" in server.log()


def test_the_server_refuses_a_compiled_graph_with_another_sha256(churn_model, store, s3_settings, tmp_path):
    task = churn_task(churn_model, store, compiled=True, isvc="churn-onnx-mismatch")
    task["compiled"]["sha256"] = "1" * 64
    server = Server(task, tmp_path, env=s3_env(s3_settings))
    assert server.wait_exit(60) != 0
    assert "refusing to load it" in server.log()
