"""A model trained on a FeatureSet (expressions, one-hot, buckets, a date part of a datetime column)
compiles whole through the FeatureSet transformer's ONNX converter, is served by `kadence serve`
with that graph, exports, and ONNX Runtime alone (no Kadence on the scoring side; times fed as
epoch milliseconds, as the manifest says) scores rows as the server does."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from kadence.commands.export import export
from kadence.domain.data.transforms import FeatureTransformer

from ..serving.conftest import Server, _save, s3_env, upload
from .test_export_browser import ORT_FILES, PAGE, browser, ort_web  # noqa: F401 - the browser test's fixtures

pytest.importorskip("skl2onnx")
onnxruntime = pytest.importorskip("onnxruntime")

TYPES = {"tenure": "int", "charges": "float", "plan": "category", "paperless": "bool", "signup": "datetime"}
FEATURES = [
    {"name": "log_tenure", "expression": "log1p(tenure)"},
    {"name": "charges_per_tenure", "expression": "charges / (tenure + 1)"},
    {"name": "many", "expression": "where(tenure >= 24, 1, 0)"},
    {"name": "plan", "transform": {"type": "oneHot", "column": "plan", "maxCategories": 2}},
    {"name": "band", "transform": {"type": "bucketize", "column": "tenure", "boundaries": [6, 12, 24, 48]}},
    {"name": "charges", "transform": {"type": "standardScale", "column": "charges"}},
    {"name": "month", "transform": {"type": "datePart", "column": "signup", "part": "month"}},
    {"name": "paperless", "expression": "where(paperless, 1, 0)"},
]
ROWS = 200


def frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({
        "tenure": rng.integers(0, 72, rows), "charges": rng.normal(60, 20, rows).round(2),
        "plan": rng.choice(["basic", "pro", "max", "gold"], rows), "paperless": rng.random(rows) < 0.5,
        "signup": pd.to_datetime(rng.integers(1_500_000_000, 1_750_000_000, rows), unit="s", utc=True),
    })
    signal = (data.tenure < 24) * 1.0 + (data.plan == "basic") * 0.8 + (data.signup.dt.month > 6) * 0.4
    return data, (signal + rng.normal(0, 0.3, rows) > 1.0).astype(int).to_numpy()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    data, labels = frame(600, seed=1)
    pipeline = Pipeline([("features", FeatureTransformer(FEATURES, TYPES)),
                         ("model", LogisticRegression(max_iter=500))]).fit(data, labels)
    columns = list(pipeline[0].feature_names_in_)
    holdout, _ = frame(200, seed=2)
    return _save(pipeline, holdout[columns], tmp_path_factory.mktemp("fs-model"), "churn", compile_it=True), columns


@pytest.fixture(scope="module")
def served(model, store, s3_settings, tmp_path_factory):
    files, columns = model
    isvc = "churn-featureset-export"
    task = {"namespace": "tests", "inferenceService": isvc, "model": "churn", "version": 3, "task": "classification",
            "artifact": {"uri": upload(store, files.skops_path, f"models/{isvc}/model.skops"), "sha256": files.sha256},
            "compiled": {"uri": upload(store, files.onnx_path, f"models/{isvc}/model.onnx"),
                         "sha256": files.onnx_sha256, "verified": True, "tolerance": 1e-6},
            "inputs": [{"name": c, "type": TYPES[c]} for c in columns], "maxBodyBytes": 1 << 20,
            "logging": {"flushSeconds": 0.5}}
    server = Server(task, tmp_path_factory.mktemp("fs-server"), env=s3_env(s3_settings)).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    files, columns = model
    version = {"metadata": {"name": "churn-v3"}, "status": {"verified": True}, "spec": {
        "model": "churn", "version": 3, "task": "classification",
        "artifact": {"uri": str(files.skops_path), "sha256": files.sha256},
        "signature": {"inputs": [{"name": c, "type": TYPES[c]} for c in columns], "classes": ["0", "1"]},
        "compiled": {"uri": f"file://{files.onnx_path}", "sha256": files.onnx_sha256, "maxAbsDifference": 0.0,
                     "tolerance": 1e-6, "verified": True}}}
    graph, manifest = export(version, lambda uri, sha: files.onnx_path.read_bytes(),
                             tmp_path_factory.mktemp("fs-export"), "9.9.9")
    return graph, json.loads(manifest.read_text())


def test_the_featureset_model_compiles_whole_raw_columns_in(exported):
    _, manifest = exported
    inputs = {i["name"]: i for i in manifest["signature"]["inputs"]}
    assert {name: i["type"] for name, i in inputs.items()} == {
        "charges": "float64", "paperless": "bool", "plan": "string", "signup": "int64", "tenure": "int64"}
    assert inputs["signup"]["encoding"].startswith("milliseconds since 1970-01-01T00:00:00Z")
    assert "encoding" not in inputs["tenure"]


def test_onnxruntime_alone_scores_the_exported_featureset_model_as_the_server_does(exported, served):
    graph, manifest = exported
    data, _ = frame(ROWS, seed=21)
    rows = [{"tenure": int(r.tenure), "charges": float(r.charges), "plan": r.plan, "paperless": bool(r.paperless),
             "signup": r.signup.strftime("%Y-%m-%dT%H:%M:%SZ")} for r in data.itertuples()]
    feeds = {}
    for tensor in manifest["signature"]["inputs"]:
        values = [r[tensor["name"]] for r in rows]
        if tensor.get("encoding"):  # what any client does: the time as epoch milliseconds
            array = np.array([np.datetime64(v.removesuffix("Z"), "ms").astype(np.int64) for v in values])
        else:
            array = np.array(values, dtype={"int64": np.int64, "float64": np.float64, "bool": np.bool_,
                                            "string": object}[tensor["type"]])
        feeds[tensor["name"]] = array.reshape(-1, 1)
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, feeds)

    served_labels = httpx.post(f"{served.url}/v1/models/churn:predict", json={"instances": rows},
                               timeout=60).json()["predictions"]
    inputs = [{"name": c, "shape": [ROWS], "data": [r[c] for r in rows],
               "datatype": {"int": "INT64", "float": "FP64", "category": "BYTES", "bool": "BOOL",
                            "datetime": "BYTES"}[TYPES[c]]} for c in TYPES]
    infer = httpx.post(f"{served.url}/v2/models/churn/infer", timeout=60,
                       json={"inputs": inputs, "outputs": [{"name": "predict_proba"}]}).json()
    served_probabilities = np.array(infer["outputs"][0]["data"]).reshape(ROWS, -1)
    assert labels.ravel().tolist() == served_labels
    np.testing.assert_allclose(np.clip(probabilities, 0, 1), served_probabilities, atol=1e-6)
    assert len(set(labels.ravel().tolist())) == 2  # both classes scored: the comparison is not vacuous
    platform = httpx.get(f"{served.url}/v2/models/churn", timeout=10).json()["platform"]
    assert platform == "onnxruntime_onnx"  # the server scored with the whole graph too


def test_the_example_page_scores_the_featureset_model_in_chromium_as_the_server_does(exported, served, ort_web,
                                                                                     browser, tmp_path):
    """examples/export/index.html with onnxruntime-web: times go in as ISO text, the page feeds epoch milliseconds."""
    import functools
    import http.server
    import shutil
    import threading

    graph, manifest = exported
    shutil.copy(PAGE, tmp_path / "index.html")
    (tmp_path / "ort").mkdir()
    for name in ORT_FILES:
        shutil.copy(ort_web / name, tmp_path / "ort" / name)
    shutil.copy(graph, tmp_path / graph.name)
    (tmp_path / "churn-v3.manifest.json").write_text(json.dumps(manifest))
    data, _ = frame(30, seed=33)
    rows = [{"tenure": int(r.tenure), "charges": float(r.charges), "plan": r.plan, "paperless": bool(r.paperless),
             "signup": r.signup.strftime("%Y-%m-%dT%H:%M:%SZ")} for r in data.itertuples()]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{site.server_address[1]}/index.html?model=churn-v3&rows=rows.json")
        page.wait_for_function("window.kadence && !['loading', 'ready'].includes(window.kadence.status)",
                               timeout=120_000)
        result = page.evaluate("window.kadence")
        assert result["status"] == "scored", result.get("error")
        served_labels = httpx.post(f"{served.url}/v1/models/churn:predict", json={"instances": rows},
                                   timeout=60).json()["predictions"]
        assert result["labels"] == served_labels
    finally:
        page.close()
        site.shutdown()
