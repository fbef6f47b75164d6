"""`kadence models export`: what may be exported, the manifest, and the exported file run by onnxruntime alone
(no Kadence import on the scoring side) against the model server's answers."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from kadence.commands.export import ExportRefused, export, export_problem

from ..serving.conftest import churn_frame
from .conftest import COLUMNS, NAMES

ROWS = 300


def model_version(model, compiled: dict | None = None, verified: bool | None = True) -> dict:
    spec = {"model": "churn", "version": 3, "task": "classification",
            "artifact": {"uri": str(model.skops_path), "sha256": model.sha256},
            "signature": {"inputs": [{"name": c["name"], "type": c["type"]} for c in COLUMNS],
                          "classes": ["0", "1"]}}
    if compiled is not False:
        spec["compiled"] = compiled or {"uri": f"file://{model.onnx_path}", "sha256": model.onnx_sha256,
                                        "maxAbsDifference": 0.0, "tolerance": 1e-6, "verified": True}
    return {"metadata": {"name": "churn-v3"}, "spec": spec, "status": {"verified": verified}}


@pytest.mark.parametrize("compiled, verified, why", [
    (False, True, "churn-v3 has no compiled graph"),
    ({"uri": "s3://kadence/x.onnx", "sha256": "a" * 64, "maxAbsDifference": 0.02, "tolerance": 1e-6,
      "verified": False}, True, "churn-v3's compiled graph was not verified: it differs from scikit-learn by 0.02"),
    (None, False, "churn-v3's artifact does not match its sha256"),
], ids=["no compiled graph", "a graph that did not match scikit-learn", "an artifact that failed its sha256"])
def test_a_model_without_a_verified_graph_refuses_to_export_and_says_why(model, compiled, verified, why, tmp_path):
    version = model_version(model, compiled, verified)
    assert why in export_problem(version)
    with pytest.raises(ExportRefused, match=why.replace("(", r"\(")):
        export(version, lambda uri, sha: b"", tmp_path, "0.0.0")
    assert list(tmp_path.iterdir()) == []


def _read(uri: str, sha256: str) -> bytes:
    from kadence.serving.artifact import load_verified_bytes

    return load_verified_bytes(uri, sha256)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("export")
    graph, manifest = export(model_version(model), _read, directory, "9.9.9")
    return graph, json.loads(manifest.read_text())


def test_the_manifest_states_signature_sha256_and_versions(exported, model):
    graph, manifest = exported
    assert manifest["kind"] == "kadence.dev/model-export" and manifest["modelVersion"] == "churn-v3"
    assert manifest["sha256"] == model.onnx_sha256 == __import__("hashlib").sha256(graph.read_bytes()).hexdigest()
    assert manifest["kadenceVersion"] == "9.9.9"
    from kadence.serving.compiled import ML_OPSET, ONNX_OPSET

    assert 1 <= manifest["opsets"]["ai.onnx"] <= ONNX_OPSET and 1 <= manifest["opsets"]["ai.onnx.ml"] <= ML_OPSET
    assert [i["name"] for i in manifest["signature"]["inputs"]] == NAMES
    assert {i["type"] for i in manifest["signature"]["inputs"]} <= {"int64", "float32", "float64", "string", "bool"}
    assert [o["name"] for o in manifest["signature"]["outputs"]] == ["label", "probabilities"]


def test_a_graph_that_covers_only_the_estimator_is_not_exported(model, tmp_path):
    from kadence.serving.compiled import verify_compiled  # noqa: F401 - the module that writes the scope key
    import onnx

    graph = onnx.load(str(model.onnx_path))
    for prop in graph.metadata_props:
        if prop.key == "kadence.scope":
            prop.value = "estimator"
    data = graph.SerializeToString()
    with pytest.raises(ExportRefused, match="takes the transformed features"):
        export(model_version(model), lambda uri, sha: data, tmp_path, "0.0.0")


def rows_for(frame) -> list[dict]:
    return frame[NAMES].astype(object).to_dict("records")


def served_answers(server, rows: list[dict]) -> tuple[list, np.ndarray]:
    labels = httpx.post(f"{server.url}/v1/models/churn:predict", json={"instances": rows}, timeout=60).json()["predictions"]
    inputs = [{"name": c["name"], "shape": [len(rows)], "data": [r[c["name"]] for r in rows],
               "datatype": {"int": "INT64", "float": "FP64", "category": "BYTES", "bool": "BOOL"}[c["type"]]}
              for c in COLUMNS]
    infer = httpx.post(f"{server.url}/v2/models/churn/infer", json={"inputs": inputs,
                                                                   "outputs": [{"name": "predict_proba"}]}, timeout=60)
    return labels, np.array(infer.json()["outputs"][0]["data"]).reshape(len(rows), -1)


def test_onnxruntime_alone_scores_the_exported_file_as_the_server_does(exported, served):
    import onnxruntime

    graph, manifest = exported
    frame, _ = churn_frame(ROWS, seed=21)
    rows = rows_for(frame)
    dtypes = {"int64": np.int64, "float32": np.float32, "float64": np.float64, "bool": np.bool_, "string": object}
    feeds = {}
    for tensor in manifest["signature"]["inputs"]:
        values = [r[tensor["name"]] for r in rows]
        feeds[tensor["name"]] = np.array(values, dtype=dtypes[tensor["type"]]).reshape(-1, 1)
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, feeds)
    served_labels, served_probabilities = served_answers(served[1], rows)
    assert labels.ravel().tolist() == served_labels
    np.testing.assert_allclose(np.clip(probabilities, 0, 1), served_probabilities, atol=1e-6)
