"""A real third-party Open Inference Protocol v2 client (NVIDIA's tritonclient) against the server."""

from __future__ import annotations

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")


@pytest.fixture(scope="module")
def client(churn_server):
    triton = httpclient.InferenceServerClient(url=churn_server.url.removeprefix("http://"))
    yield triton
    triton.close()


def test_tritonclient_sees_a_live_and_ready_server_and_model(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    assert client.is_model_ready("churn", model_version="3")
    assert not client.is_model_ready("churn", model_version="9")


def test_tritonclient_reads_the_metadata(client):
    server = client.get_server_metadata()
    assert server["name"] == "kadence"
    model = client.get_model_metadata("churn")
    assert [i["name"] for i in model["inputs"]] == ["tenure", "charges", "plan", "paperless", "age"]


def test_tritonclient_infers_with_typed_tensors_including_bytes(client, churn_model):
    frame = churn_model.holdout.head(7).copy()
    tensors = []
    for name, datatype, values in (
        ("tenure", "INT64", frame.tenure.to_numpy(np.int64)),
        ("charges", "FP64", frame.charges.to_numpy(np.float64)),
        ("plan", "BYTES", frame.plan.to_numpy(object)),
        ("paperless", "BOOL", frame.paperless.to_numpy(bool)),
        ("age", "FP64", frame.age.fillna(40.0).to_numpy(np.float64)),
    ):
        tensor = httpclient.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(values, binary_data=False)
        tensors.append(tensor)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=False),
               httpclient.InferRequestedOutput("predict_proba", binary_data=False)]
    result = client.infer("churn", tensors, outputs=outputs, request_id="triton-1")
    frame["age"] = frame.age.fillna(40.0)
    np.testing.assert_array_equal(result.as_numpy("predict"), churn_model.pipeline.predict(frame))
    np.testing.assert_allclose(result.as_numpy("predict_proba").reshape(-1, 2), churn_model.pipeline.predict_proba(frame), atol=1e-6)
    assert result.get_response()["id"] == "triton-1"


def test_tritonclient_gets_the_servers_error_message(client):
    tensor = httpclient.InferInput("tenur", [1], "INT64")
    tensor.set_data_from_numpy(np.array([1], dtype=np.int64), binary_data=False)
    with pytest.raises(Exception, match="unknown input"):
        client.infer("churn", [tensor])


def test_tritonclient_with_its_default_binary_tensors_works_unchanged(client, churn_model):
    frame = churn_model.holdout.head(5).copy()
    frame["age"] = frame.age.fillna(40.0)
    tensors = []
    for name, datatype, values in (
        ("tenure", "INT64", frame.tenure.to_numpy(np.int64)),
        ("charges", "FP32", frame.charges.to_numpy(np.float32)),
        ("plan", "BYTES", frame.plan.to_numpy(object)),
        ("paperless", "BOOL", frame.paperless.to_numpy(bool)),
        ("age", "FP64", frame.age.to_numpy(np.float64)),
    ):
        tensor = httpclient.InferInput(name, [len(frame)], datatype)
        tensor.set_data_from_numpy(values)  # binary_data=True is the client's default
        tensors.append(tensor)
    result = client.infer("churn", tensors, outputs=[httpclient.InferRequestedOutput("predict")])
    frame["charges"] = frame.charges.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(result.as_numpy("predict"), churn_model.pipeline.predict(frame))
