"""Prediction logs and feedback land in a real SeaweedFS, in the monitoring format, joinable by request id."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd

from kadence.domain.monitoring import logformat

from .conftest import AUTH, Server, churn_task, s3_env

ROWS = [
    {"tenure": 3, "charges": 40.5, "plan": "basic", "paperless": True, "age": 30.0},
    {"tenure": 60, "charges": 99.0, "plan": "max", "paperless": False, "age": None},
    {"tenure": 12, "charges": 70.25, "plan": "pro", "paperless": True, "age": 51.5},
]


def read_predictions(store, namespace, isvc):
    records = []
    for key in store.list_keys(logformat.predictions_prefix(namespace, isvc)):
        records += logformat.parse_predictions(key, logformat.decode_batch(key, store.get_bytes(key)))
    return records


def read_feedback(store, namespace, isvc):
    records = []
    for key in store.list_keys(logformat.feedback_prefix(namespace, isvc)):
        records += logformat.parse_feedback(key, logformat.decode_batch(key, store.get_bytes(key)))
    return records


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_predictions_and_feedback_join_by_request_id(churn_server, store, churn_model):
    tag = uuid.uuid4().hex[:8]
    with httpx.Client(base_url=churn_server.url, timeout=30) as http:
        single_ids = []
        for i, row in enumerate(ROWS):
            request_id = f"{tag}-single-{i}"
            assert http.post("/v1/models/churn:predict", json={"instances": [row]},
                             headers={"X-Request-Id": request_id}).status_code == 200
            single_ids.append(request_id)
        inputs = [{"name": n, "shape": [3], "datatype": d, "data": [r[n] for r in ROWS]}
                  for n, d in (("tenure", "INT64"), ("charges", "FP64"), ("plan", "BYTES"), ("paperless", "BOOL"), ("age", "FP64"))]
        batch_id = f"{tag}-batch"
        assert http.post("/v2/models/churn/infer", json={"id": batch_id, "inputs": inputs}).status_code == 200
        row_ids = [f"{batch_id}-{i}" for i in range(3)]
        assert http.post("/v1/models/churn/feedback", json={"requestId": single_ids[0], "label": 1},
                         headers=AUTH).status_code == 200
        response = http.post("/v2/models/churn/feedback",
                             json={"feedback": [{"requestId": rid, "label": 0} for rid in row_ids]}, headers=AUTH)
        assert response.status_code == 200 and response.json()["stored"] == 3

    ours = set(single_ids + row_ids)
    predictions = wait_for(lambda: (found := [r for r in read_predictions(store, "tests", churn_server.isvc)
                                              if r.request_id in ours]) and len(found) == 6 and found)
    log = logformat.predictions_frame(predictions)
    assert set(log.meta.request_id) == ours
    assert set(log.meta.model_version) == {"3"}
    expected = churn_model.pipeline.predict(pd.DataFrame(ROWS).astype({"age": float}))
    by_id = dict(zip(log.meta.request_id, log.meta.prediction))
    assert [by_id[i] for i in single_ids] == expected.tolist()
    assert [by_id[i] for i in row_ids] == expected.tolist()
    assert all(len(p) == 2 for p in log.meta.probabilities)
    assert log.inputs.loc[log.meta.request_id == single_ids[1], "age"].isna().all()
    assert list(log.inputs.columns) == ["tenure", "charges", "plan", "paperless", "age"]

    feedback = logformat.feedback_frame([r for r in read_feedback(store, "tests", churn_server.isvc) if r.request_id in ours])
    joined = log.meta.merge(feedback, on="request_id", how="inner")
    assert sorted(joined.request_id) == sorted([single_ids[0], *row_ids])
    assert dict(zip(joined.request_id, joined.label)) == {single_ids[0]: 1, **{rid: 0 for rid in row_ids}}


def test_a_clean_stop_writes_every_accepted_prediction(churn_model, store, s3_settings, tmp_path):
    isvc = f"churn-stop-{uuid.uuid4().hex[:6]}"
    # Nothing would be written before the stop: big batches, long flush interval.
    task = churn_task(churn_model, store, compiled=True, isvc=isvc, flushSeconds=3600, flushRecords=100000)
    server = Server(task, tmp_path, env=s3_env(s3_settings)).wait_ready()
    try:
        def send(i):
            with httpx.Client(base_url=server.url, timeout=30) as http:
                return http.post("/v1/models/churn:predict", json={"instances": [ROWS[i % 3]]},
                                 headers={"X-Request-Id": f"stop-{i}"}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(send, range(120)))
        assert codes == [200] * 120
        assert read_predictions(store, "tests", isvc) == []
    finally:
        assert server.stop() == 0, server.log()
    records = read_predictions(store, "tests", isvc)
    assert sorted(r.request_id for r in records) == sorted(f"stop-{i}" for i in range(120))
    assert "120 records written, 0 dropped" in server.log()


def test_a_sample_rate_of_zero_logs_nothing(churn_model, store, s3_settings, tmp_path):
    isvc = f"churn-unsampled-{uuid.uuid4().hex[:6]}"
    task = churn_task(churn_model, store, compiled=True, isvc=isvc, sampleRate=0.0)
    server = Server(task, tmp_path, env=s3_env(s3_settings)).wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(10):
                assert http.post("/v1/models/churn:predict", json={"instances": [ROWS[0]]}).status_code == 200
    finally:
        assert server.stop() == 0
    assert read_predictions(store, "tests", isvc) == []
