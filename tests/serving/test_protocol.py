"""Every endpoint and error case of the model server, over real HTTP, for both engines."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from .conftest import AUTH

ROW = {"tenure": 3, "charges": 40.5, "plan": "basic", "paperless": True, "age": 30.0}
ROW_AS_LIST = [3, 40.5, "basic", True, 30.0]
OTHER = {"tenure": 60, "charges": 99.0, "plan": "max", "paperless": False, "age": None}


@pytest.fixture(scope="module")
def http(churn_server):
    with httpx.Client(base_url=churn_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def feedback_http(churn_server):
    """A client that sends the server's feedback token."""
    with httpx.Client(base_url=churn_server.url, timeout=30, headers=AUTH) as client:
        yield client


def expected(churn_model, rows: list[dict]):
    frame = pd.DataFrame(rows).astype({"age": float})
    return churn_model.pipeline.predict(frame).tolist(), churn_model.pipeline.predict_proba(frame)


def v2_inputs(rows: list[dict]) -> list[dict]:
    types = {"tenure": "INT64", "charges": "FP64", "plan": "BYTES", "paperless": "BOOL", "age": "FP64"}
    return [{"name": name, "shape": [len(rows)], "datatype": datatype, "data": [r[name] for r in rows]}
            for name, datatype in types.items()]


# ---------------------------------------------------------------- KServe v1


def test_v1_lists_the_served_model(http):
    response = http.get("/v1/models")
    assert response.status_code == 200
    assert response.json() == {"models": ["churn"]}


def test_v1_model_status_says_ready(http):
    assert http.get("/v1/models/churn").json() == {"name": "churn", "ready": True}


def test_v1_predict_accepts_objects_and_lists_and_matches_scikit_learn(http, churn_model):
    labels, _ = expected(churn_model, [ROW, OTHER])
    by_object = http.post("/v1/models/churn:predict", json={"instances": [ROW, OTHER]})
    by_list = http.post("/v1/models/churn:predict", json={"instances": [ROW_AS_LIST, list(OTHER.values())]})
    assert by_object.status_code == 200, by_object.text
    assert by_object.json() == {"predictions": labels}
    assert by_list.json() == {"predictions": labels}


def test_v1_predict_accepts_columnar_inputs(http, churn_model):
    labels, _ = expected(churn_model, [ROW, OTHER])
    columnar = {name: [ROW[name], OTHER[name]] for name in ROW}
    response = http.post("/v1/models/churn:predict", json={"inputs": columnar})
    assert response.json() == {"predictions": labels}


def test_every_response_carries_the_callers_request_id(http):
    response = http.post("/v1/models/churn:predict", json={"instances": [ROW]}, headers={"X-Request-Id": "caller-42"})
    assert response.headers["x-request-id"] == "caller-42"
    error = http.post("/v1/models/churn:predict", content=b"{", headers={"X-Request-Id": "caller-43"})
    assert error.headers["x-request-id"] == "caller-43"


def test_a_request_without_an_id_gets_a_new_one(http):
    first = http.post("/v1/models/churn:predict", json={"instances": [ROW]}).headers["x-request-id"]
    second = http.post("/v1/models/churn:predict", json={"instances": [ROW]}).headers["x-request-id"]
    assert first and second and first != second


@pytest.mark.parametrize("body, message", [
    ({"instances": [{**ROW, "tenur": 3}]}, "instances[0]: unknown column 'tenur'"),
    ({"instances": [{k: v for k, v in ROW.items() if k != "plan"}]}, "instances[0]: missing column 'plan'"),
    ({"instances": [ROW_AS_LIST[:4]]}, "instances[0] has 4 values; the model takes 5"),
    ({"instances": [[3, "forty", "basic", True, 30.0]]}, "instances[0][1] (column 'charges'): expected a number, got string 'forty'"),
    ({"instances": [[3.5, 40.5, "basic", True, 30.0]]}, "instances[0][0] (column 'tenure'): expected an integer, got 3.5"),
    ({"instances": [[3, 40.5, 7, True, 30.0]]}, "instances[0][2] (column 'plan'): expected a string, got 7"),
    ({"instances": [[3, 40.5, "basic", "yes", 30.0]]}, "instances[0][3] (column 'paperless'): expected true or false"),
    ({"instances": [[3, None, "basic", True, 30.0]]}, "missing value (null) is not allowed in column 'charges'"),
    ({"instances": []}, '"instances" is empty'),
    ({"rows": [ROW]}, 'the request body has no "instances"'),
    ([ROW], "the request body must be a JSON object"),
    ({"instances": [ROW, ROW_AS_LIST]}, "use one form for all rows"),
])
def test_v1_bad_input_is_a_400_that_says_what_is_wrong(http, body, message):
    response = http.post("/v1/models/churn:predict", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_nan_where_not_allowed_is_a_400(http):
    body = b'{"instances": [[3, NaN, "basic", true, 30.0]]}'
    response = http.post("/v1/models/churn:predict", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == "instances[0][1] (column 'charges'): missing value (NaN) is not allowed in column 'charges'"


def test_a_nullable_column_takes_null(http):
    response = http.post("/v1/models/churn:predict", json={"instances": [OTHER]})
    assert response.status_code == 200


@pytest.mark.parametrize("body", [b"{", b"", b"instances", b'{"instances": [1,]}', b"\xff\xfe"])
def test_malformed_json_is_a_400(http, body):
    response = http.post("/v1/models/churn:predict", content=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(("malformed JSON", "the request body is empty"))


def test_an_oversized_body_is_a_413(http):
    rows = [ROW] * 2000  # about 150 kB; the test server allows 64 KiB
    response = http.post("/v1/models/churn:predict", json={"instances": rows})
    assert response.status_code == 413
    assert "limit of 65536 bytes" in response.json()["error"] or "the limit is 65536" in response.json()["error"]


def test_an_oversized_chunked_body_is_a_413(http):
    def chunks():
        yield b'{"instances": ['
        for _ in range(2000):
            yield json.dumps(ROW).encode() + b","
        yield json.dumps(ROW).encode() + b"]}"

    response = http.post("/v1/models/churn:predict", content=chunks())
    assert response.status_code == 413
    assert "larger than the limit of 65536 bytes" in response.json()["error"]


def test_an_unknown_model_is_a_404(http):
    response = http.post("/v1/models/other:predict", json={"instances": [ROW]})
    assert response.status_code == 404
    assert response.json()["error"] == "model 'other' is not served here; this server serves 'churn'"


def test_a_wrong_method_is_a_405(http):
    response = http.get("/v1/models/churn:predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_an_unknown_path_is_a_404(http):
    assert http.get("/v3/anything").status_code == 404


# ---------------------------------------------------------------- Open Inference Protocol v2


def test_v2_health(http):
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200


def test_v2_server_metadata(http):
    body = http.get("/v2").json()
    assert body["name"] == "kadence" and isinstance(body["version"], str) and body["extensions"] == []


@pytest.mark.parametrize("path", ["/v2/models/churn", "/v2/models/churn/versions/3"])
def test_v2_model_metadata_describes_typed_inputs_and_outputs(http, path, churn_server):
    body = http.get(path).json()
    assert body["name"] == "churn" and body["versions"] == ["3"]
    assert body["platform"] == ("onnxruntime_onnx" if churn_server.engine == "onnxruntime" else "sklearn")
    assert body["inputs"] == [
        {"name": "tenure", "datatype": "INT64", "shape": [-1]},
        {"name": "charges", "datatype": "FP64", "shape": [-1]},
        {"name": "plan", "datatype": "BYTES", "shape": [-1]},
        {"name": "paperless", "datatype": "BOOL", "shape": [-1]},
        {"name": "age", "datatype": "FP64", "shape": [-1]},
    ]
    assert body["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]


@pytest.mark.parametrize("path", ["/v2/models/churn/ready", "/v2/models/churn/versions/3/ready"])
def test_v2_model_ready(http, path):
    response = http.get(path)
    assert response.status_code == 200 and response.json() == {"name": "churn", "ready": True}


def test_v2_another_version_is_a_404(http):
    response = http.get("/v2/models/churn/versions/4/ready")
    assert response.status_code == 404
    assert "version '4' is not served here" in response.json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/churn/infer", "/v2/models/churn/versions/3/infer"])
def test_v2_infer_with_one_tensor_per_column(http, churn_model, path):
    labels, probabilities = expected(churn_model, [ROW, OTHER])
    response = http.post(path, json={"id": "req-1", "inputs": v2_inputs([ROW, OTHER])})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "req-1" and body["model_name"] == "churn" and body["model_version"] == "3"
    assert response.headers["x-request-id"] == "req-1"
    predict, proba = body["outputs"]
    assert predict == {"name": "predict", "datatype": "INT64", "shape": [2], "data": labels}
    assert proba["name"] == "predict_proba" and proba["datatype"] == "FP64" and proba["shape"] == [2, 2]
    np.testing.assert_allclose(np.array(proba["data"]).reshape(2, 2), probabilities, atol=1e-6)


def test_v2_infer_returns_only_the_requested_outputs(http):
    body = http.post("/v2/models/churn/infer", json={"inputs": v2_inputs([ROW]), "outputs": [{"name": "predict_proba"}],
                                                     "parameters": {"content_type": "pd"}}).json()
    assert [o["name"] for o in body["outputs"]] == ["predict_proba"]
    assert body["id"]


def test_v2_infer_accepts_nested_data_of_shape_rows_by_one(http, churn_model):
    inputs = v2_inputs([ROW, OTHER])
    for tensor in inputs:
        tensor["shape"] = [2, 1]
        tensor["data"] = [[v] for v in tensor["data"]]
    labels, _ = expected(churn_model, [ROW, OTHER])
    assert http.post("/v2/models/churn/infer", json={"inputs": inputs}).json()["outputs"][0]["data"] == labels


def _with(tensors, index, **changes):
    tensors = [dict(t) for t in tensors]
    tensors[index].update(changes)
    return tensors


@pytest.mark.parametrize("inputs, message", [
    (_with(v2_inputs([ROW]), 0, name="tenur"), "inputs[0] 'tenur': unknown input"),
    (v2_inputs([ROW])[:4], "missing input for column 'age'"),
    (_with(v2_inputs([ROW]), 1, datatype="BYTES", data=["40.5"]), "datatype BYTES does not fit column type float"),
    (_with(v2_inputs([ROW]), 0, datatype="FP64", data=[3.0]), "datatype FP64 does not fit column type int"),
    (_with(v2_inputs([ROW]), 1, data=["x"]), "inputs[1] 'charges' data[0]: expected a number (FP64), got string 'x'"),
    (_with(v2_inputs([ROW]), 1, shape=[2]), "inputs[1] 'charges': shape [2] needs 2 values, \"data\" has 1"),
    (_with(v2_inputs([ROW, OTHER]), 1, shape=[1], data=[1.0]), "inputs[1] 'charges': 1 rows, but 'tenure' has 2"),
    (_with(v2_inputs([ROW]), 1, shape=[1, 2], data=[1.0, 2.0]), "shape must be [rows] or [rows, 1]"),
    (_with(v2_inputs([ROW]), 1, datatype="FP128"), "unknown datatype 'FP128'"),
    (_with(v2_inputs([ROW]), 1, data=[None]), "missing value (null) is not allowed in column 'charges'"),
    (v2_inputs([ROW]) + [v2_inputs([ROW])[0]], "column 'tenure' is given twice"),
    ([], '"inputs" must be a non-empty list'),
])
def test_v2_bad_input_is_a_400_that_says_what_is_wrong(http, inputs, message):
    response = http.post("/v2/models/churn/infer", json={"inputs": inputs})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_v2_an_unknown_requested_output_is_a_400(http):
    response = http.post("/v2/models/churn/infer", json={"inputs": v2_inputs([ROW]), "outputs": [{"name": "explain"}]})
    assert response.status_code == 400
    assert response.json()["error"] == "outputs[0]: unknown output 'explain' (available: predict, predict_proba)"


def test_v2_a_single_two_dimensional_tensor_needs_numeric_columns(http):
    body = {"inputs": [{"name": "input-0", "shape": [1, 5], "datatype": "FP64", "data": [3, 40.5, 1, 1, 30]}]}
    response = http.post("/v2/models/churn/infer", json=body)
    assert response.status_code == 400
    assert "a single 2-D tensor only carries numeric columns, but 'plan' is category" in response.json()["error"]


def binary_request(rows: list[dict]) -> tuple[bytes, int]:
    """A request in the binary tensor data extension, built by hand as tritonclient does."""
    tensors, chunks = [], []
    for name, datatype, dtype in (("tenure", "INT64", "<i8"), ("charges", "FP64", "<f8"), ("plan", "BYTES", None),
                                  ("paperless", "BOOL", "<u1"), ("age", "FP32", "<f4")):
        values = [r[name] if r[name] is not None else 40.0 for r in rows]
        if dtype is None:
            raw = b"".join(len(v.encode()).to_bytes(4, "little") + v.encode() for v in values)
        else:
            raw = np.array(values, dtype=dtype).tobytes()
        tensors.append({"name": name, "shape": [len(rows)], "datatype": datatype,
                        "parameters": {"binary_data_size": len(raw)}})
        chunks.append(raw)
    head = json.dumps({"id": "bin-1", "inputs": tensors}).encode()
    return head + b"".join(chunks), len(head)


def test_v2_the_binary_tensor_extension_is_decoded(http, churn_model):
    body, head_length = binary_request([ROW, OTHER])
    response = http.post("/v2/models/churn/infer", content=body,
                         headers={"Inference-Header-Content-Length": str(head_length)})
    assert response.status_code == 200, response.text
    labels, _ = expected(churn_model, [ROW, {**OTHER, "age": 40.0}])
    assert response.json()["outputs"][0]["data"] == labels and response.json()["id"] == "bin-1"


@pytest.mark.parametrize("cut, header, message", [
    (2, None, "inputs[4] 'age': binary_data_size 4 does not fit the 2 bytes left"),
    (0, "99999", "Inference-Header-Content-Length is 99999"),
    (0, "x", "the Inference-Header-Content-Length header is not a number"),
])
def test_v2_a_broken_binary_request_is_a_400(http, cut, header, message):
    body, head_length = binary_request([ROW])
    if cut:
        body = body[:-cut]  # the last tensor comes up short
    response = http.post("/v2/models/churn/infer", content=body,
                         headers={"Inference-Header-Content-Length": header or str(head_length)})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_an_unseen_category_is_ignored_by_the_one_hot_encoder(http):
    response = http.post("/v1/models/churn:predict", json={"instances": [{**ROW, "plan": "enterprise"}]})
    assert response.status_code == 200


# ---------------------------------------------------------------- feedback and metrics


def test_feedback_is_refused_for_a_label_outside_the_classes(feedback_http):
    response = feedback_http.post("/v1/models/churn/feedback", json={"requestId": "r", "label": 7})
    assert response.status_code == 400
    assert response.json()["error"] == "feedback: label 7 is not one of the model's classes (0, 1)"


@pytest.mark.parametrize("body, message", [
    ({"label": 1}, '"requestId" must be 1 to 256 printable ASCII characters'),
    ({"requestId": "a\r\nX-Injected: 1", "label": 1}, '"requestId" must be 1 to 256 printable ASCII characters'),
    ({"requestId": "r"}, '"label" is missing or null'),
    ({"feedback": []}, '"feedback" must be a non-empty list'),
    ({"feedback": [{"requestId": "a", "label": 1}, {"requestId": "b", "label": "1"}]}, 'feedback[1]: label "1" is not one of'),
])
def test_bad_feedback_is_a_400(feedback_http, body, message):
    response = feedback_http.post("/v2/models/churn/feedback", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_metrics_are_exposed_per_model_version_on_the_metrics_port_only(http, churn_server):
    http.post("/v1/models/churn:predict", json={"instances": [ROW, OTHER]})
    assert http.get("/metrics").status_code == 404
    text = churn_server.metrics()
    for family in ("kadence_serving_requests_total", "kadence_serving_errors_total",
                   "kadence_serving_request_duration_seconds_bucket", "kadence_serving_batch_rows_bucket",
                   "kadence_serving_in_flight", "kadence_serving_predicted_class_total",
                   "kadence_serving_feature_sum", "kadence_serving_feature_values_total",
                   "kadence_serving_feature_category_total", "kadence_serving_model_info"):
        assert family in text, family
    assert 'kadence_serving_requests_total{code="200",endpoint="predict",model="churn",protocol="v1",version="3"}' in text
    assert 'kadence_serving_feature_category_total{feature="plan",model="churn",value="basic",version="3"}' in text
    assert 'kadence_serving_feature_missing_total{feature="age",model="churn",version="3"}' in text
