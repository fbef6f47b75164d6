"""`kadence batch`, as its Job runs it: against the session's S3 server, with a real model, compared row by
row with a real `kadence serve` process serving the same ModelVersion."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kadence.domain.monitoring.logformat import predictions_prefix
from kadence.workloads.batch_run import score
from kadence.workloads.batch_task import BatchTask, prediction_stream

from ..serving.conftest import churn_frame, s3_env
from .conftest import COLUMNS, NAMES

BIN = Path(sys.executable).parent
NAMESPACE = "tests"
ROWS = 2500


@pytest.fixture(scope="module")
def customers(store) -> pd.DataFrame:
    frame, _ = churn_frame(ROWS, seed=11)
    frame.insert(0, "customer_id", [f"c{i:05d}" for i in range(ROWS)])
    buffer = io.BytesIO()
    frame.assign(extra="ignored").to_parquet(buffer, index=False)
    store.ensure_bucket()
    store.put_bytes(f"raw/{NAMESPACE}/customers.parquet", buffer.getvalue())
    return frame


def batch_task(served_task: dict, run: str, **changes) -> dict:
    task = {"namespace": NAMESPACE, "name": "nightly", "run": run, "attempt": 1,
            "model": {"name": "churn-v3", "model": "churn", "version": 3, "task": "classification",
                      "artifact": served_task["artifact"], "compiled": served_task["compiled"],
                      "inputs": COLUMNS},
            "input": {"uri": f"s3://kadence/raw/{NAMESPACE}/customers.parquet", "format": "parquet"},
            "output": {"uri": f"s3://kadence/predictions/{NAMESPACE}/nightly/{run}/", "format": "parquet",
                       "entityColumn": "customer_id", "probabilities": True},
            "chunkRows": 1000, "stream": prediction_stream("nightly"),
            "resultKey": f"runs/{NAMESPACE}/batchpredictions/nightly/{run}/result.json"}
    task.update(changes)
    return task


@pytest.fixture(scope="module")
def cli_run(served, customers, store, s3_settings, tmp_path_factory):
    """`kadence batch --task FILE` as the Job runs it: (exit status, last output line, the task)."""
    task = batch_task(served[0], "nightly-run1")
    path = tmp_path_factory.mktemp("task") / "task.json"
    path.write_text(json.dumps(task))
    proc = subprocess.run([str(BIN / "kadence"), "batch", "--task", str(path)], capture_output=True, text=True,
                          env={**os.environ, **s3_env(s3_settings)}, timeout=600)
    return proc.returncode, proc.stdout.strip().splitlines()[-1], task, proc.stderr


def read_output(store, prefix: str) -> tuple[dict, pd.DataFrame]:
    manifest = json.loads(store.get_bytes(prefix + "_manifest.json"))
    parts = [pq.read_table(io.BytesIO(store.get_bytes(prefix + f["name"]))).to_pandas() for f in manifest["files"]]
    return manifest, pd.concat(parts, ignore_index=True)


def test_the_run_succeeds_and_reports_every_row(cli_run):
    code, line, _, stderr = cli_run
    result = json.loads(line)
    assert code == 0, stderr
    assert result["outcome"] == "Succeeded" and result["rows"] == ROWS
    assert result["files"] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]  # 1000-row chunks


def test_the_manifest_lists_every_part_with_its_rows_and_sha256(cli_run, store):
    prefix = f"predictions/{NAMESPACE}/nightly/nightly-run1/"
    manifest, table = read_output(store, prefix)
    assert manifest["kind"] == "kadence.dev/batch-output" and manifest["rows"] == ROWS == len(table)
    assert manifest["engine"] == "onnxruntime" and manifest["modelVersion"] == "churn-v3"
    for part in manifest["files"]:
        assert hashlib.sha256(store.get_bytes(prefix + part["name"])).hexdigest() == part["sha256"]
    assert sum(part["rows"] for part in manifest["files"]) == ROWS
    assert list(table.columns) == manifest["columns"] == ["customer_id", "prediction", "model_version",
                                                           "probability_0", "probability_1"]


def test_every_row_matches_the_online_server_row_by_row(cli_run, served, customers, store):
    _, server = served
    _, table = read_output(store, f"predictions/{NAMESPACE}/nightly/nightly-run1/")
    assert table["customer_id"].tolist() == customers["customer_id"].tolist()
    assert set(table["model_version"]) == {"churn-v3"}
    rows = customers[NAMES].astype(object).to_dict("records")
    labels, probabilities = [], []
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        response = httpx.post(f"{server.url}/v1/models/churn:predict", json={"instances": chunk}, timeout=60)
        assert response.status_code == 200, response.text
        labels += response.json()["predictions"]
        inputs = [{"name": c["name"], "shape": [len(chunk)], "datatype": {"int": "INT64", "float": "FP64",
                   "category": "BYTES", "bool": "BOOL"}[c["type"]], "data": [r[c["name"]] for r in chunk]}
                  for c in COLUMNS]
        infer = httpx.post(f"{server.url}/v2/models/churn/infer",
                           json={"inputs": inputs, "outputs": [{"name": "predict_proba"}]}, timeout=60)
        assert infer.status_code == 200, infer.text
        probabilities += np.array(infer.json()["outputs"][0]["data"]).reshape(len(chunk), 2).tolist()
    assert table["prediction"].tolist() == labels
    np.testing.assert_array_equal(table[["probability_0", "probability_1"]].to_numpy(), np.array(probabilities))


def test_every_scored_row_is_logged_for_monitoring_keyed_by_its_entity_id(cli_run, store):
    import gzip

    prefix = predictions_prefix(NAMESPACE, prediction_stream("nightly"))
    records = [json.loads(line) for key in store.list_keys(prefix)
               for line in gzip.decompress(store.get_bytes(key)).splitlines() if line]
    assert len(records) == ROWS
    assert sorted(r["requestId"] for r in records)[:2] == ["c00000", "c00001"]
    assert {r["modelVersion"] for r in records} == {"3"}
    assert set(records[0]["inputs"]) == set(NAMES)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_csv_and_jsonl_outputs_carry_the_same_predictions(fmt, cli_run, served, store):
    run = f"nightly-{fmt}"
    task = BatchTask.model_validate(batch_task(served[0], run, stream=None, output={
        "uri": f"s3://kadence/predictions/{NAMESPACE}/nightly/{run}/", "format": fmt, "entityColumn": "customer_id"}))
    result = score(task, store)
    prefix = f"predictions/{NAMESPACE}/nightly/{run}/"
    read = (lambda data: pd.read_csv(io.BytesIO(data))) if fmt == "csv" else (
        lambda data: pd.read_json(io.BytesIO(data), lines=True))
    table = pd.concat([read(store.get_bytes(prefix + name)) for name in result.files], ignore_index=True)  # a header each
    _, parquet = read_output(store, f"predictions/{NAMESPACE}/nightly/nightly-run1/")
    assert list(table.columns) == ["customer_id", "prediction", "model_version"]
    assert table["prediction"].tolist() == parquet["prediction"].tolist()


def test_a_retry_clears_what_the_failed_attempt_left_before_publishing(served, customers, store):
    run = "nightly-retry"
    prefix = f"predictions/{NAMESPACE}/nightly/{run}/"
    store.put_bytes(prefix + "part-00007.parquet", b"half-written by attempt 1")
    task = BatchTask.model_validate(batch_task(served[0], run, attempt=2, stream=None,
                                               output={"uri": f"s3://kadence/{prefix}", "format": "parquet",
                                                       "entityColumn": "customer_id"}))
    score(task, store)
    assert sorted(k.rsplit("/", 1)[1] for k in store.list_keys(prefix)) == [
        "_manifest.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]


def test_an_input_without_a_model_column_is_refused_with_exit_3_and_no_manifest(served, store, s3_settings, tmp_path):
    store.put_bytes(f"raw/{NAMESPACE}/no-plan.parquet", _parquet(pd.DataFrame({"customer_id": ["a"], "tenure": [3]})))
    task = batch_task(served[0], "nightly-bad", input={"uri": f"s3://kadence/raw/{NAMESPACE}/no-plan.parquet",
                                                        "format": "parquet"})
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))
    proc = subprocess.run([str(BIN / "kadence"), "batch", "--task", str(path)], capture_output=True, text=True,
                          env={**os.environ, **s3_env(s3_settings)}, timeout=300)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 3 and result["outcome"] == "Invalid"
    assert "the input has no column 'charges', 'plan', 'paperless'" in result["message"]
    assert not store.exists(f"predictions/{NAMESPACE}/nightly/nightly-bad/_manifest.json")


def test_a_null_the_model_does_not_take_is_refused_naming_the_row_and_column(served, store):
    frame, _ = churn_frame(5, seed=3)
    frame.insert(0, "customer_id", list("abcde"))
    frame["tenure"] = pd.array([1, 2, None, 4, 5], dtype="Int64")
    store.put_bytes(f"raw/{NAMESPACE}/null-tenure.parquet", _parquet(frame))
    task = BatchTask.model_validate(batch_task(served[0], "nightly-null", stream=None, input={
        "uri": f"s3://kadence/raw/{NAMESPACE}/null-tenure.parquet", "format": "parquet"}))
    from kadence.workloads.batch_run import InputRefused

    with pytest.raises(InputRefused, match="row 2, column 'tenure': missing value"):
        score(task, store)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
