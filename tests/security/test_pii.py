"""Personal data (a Dataset column with pii: true): the model server logs a keyed hash of a
personal input (or nothing without the key), the operator provisions the key per namespace, and
the monitor still judges drift on a personal category (hashes against hashed reference
categories) while it skips a personal number with the reason."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import uuid
from datetime import timedelta

import numpy as np
import pandas as pd

from kadence.builders.jobs import pii_env
from kadence.domain.data.pii import pseudonym, pseudonymize_categories, pseudonymize_record
from kadence.domain.monitoring.drift import CategoricalReference
from kadence.domain.monitoring.logformat import (FeedbackRecord, PredictionRecord, encode_batch, feedback_batch_key,
                                                 prediction_batch_key)
from kadence.serving.app import ServingApp
from kadence.serving.predictor import Predictor
from kadence.serving.task import ServeColumn, ServeTask
from kadence.storage import StorageConfig
from kadence.tenancy import Tenancy, pii_key
from kadence.workloads.monitor_run import run_from_args

from ..monitoring.test_monitor_workload import HOUR, T
from ..serving.test_refusals import CountingSink, serve

KEY = b"k" * 64


# -- the hash ------------------------------------------------------------------------------

def test_a_personal_value_becomes_a_keyed_hash_the_same_for_the_same_value_and_key():
    hashed = pseudonym("alice@example.com", KEY)
    assert hashed.startswith("pii:") and len(hashed) == 36 and "alice" not in hashed
    assert hashed == pseudonym("alice@example.com", KEY) != pseudonym("alice@example.com", b"other-key")
    assert pseudonym(42, KEY) == pseudonym(42.0, KEY) == pseudonym("42", KEY)
    assert pseudonym(None, KEY) is None and pseudonym(float("nan"), KEY) is None


def test_a_record_keeps_other_inputs_hashes_personal_ones_and_drops_them_without_a_key():
    record = {"email": "bob@example.com", "tenure": 12}
    assert pseudonymize_record(record, ["email"], KEY) == {"email": pseudonym("bob@example.com", KEY), "tenure": 12}
    assert pseudonymize_record(record, ["email"], None) == {"tenure": 12}
    assert pseudonymize_record(record, [], None) == record


def test_reference_categories_are_hashed_as_the_logs_hold_them():
    reference = CategoricalReference(count=10, missing=0, category_counts={"north": 6, "south": 4})
    hashed = pseudonymize_categories(reference, KEY)
    assert hashed.category_counts == {pseudonym("north", KEY): 6, pseudonym("south", KEY): 4}
    assert hashed.count == 10


# -- the key, per namespace ----------------------------------------------------------------

def test_the_operator_creates_each_namespaces_key_secret_derived_from_its_admin_secret():
    applied, created = [], []
    admin = StorageConfig(endpoint="http://s3:8333", access_key="admin", secret_key="admin-secret", bucket="kadence")
    tenancy = Tenancy(mode="shared", admin=admin, provisioner=None, apply_secret=applied.append,
                      create_secret=created.append)
    tenancy.ensure("team-a")
    tenancy.ensure("team-b")
    assert [s["metadata"]["name"] for s in created] == ["kadence-pii-key", "kadence-pii-key"]
    keys = [created[i]["data"]["key"] for i in (0, 1)]
    assert keys[0] != keys[1]  # one key per namespace
    import base64
    assert base64.b64decode(keys[0]).decode() == pii_key(admin, "team-a")  # the same after a restart
    assert pii_env() == [{"name": "KADENCE_PII_KEY", "valueFrom": {"secretKeyRef": {
        "name": "kadence-pii-key", "key": "key", "optional": True}}}]


# -- the model server's log ----------------------------------------------------------------

class Echo:
    classes_ = np.array([0, 1])

    def predict(self, frame):
        return np.ones(len(frame), dtype=np.int64)


def logged(pii_key_value: str | None) -> list[dict]:
    columns = [{"name": "email", "type": "string", "pii": True}, {"name": "tenure", "type": "float"}]
    task = ServeTask.model_validate({"namespace": "t", "inferenceService": "isvc", "model": "m", "version": 1,
                                     "artifact": {"uri": "s3://b/k", "sha256": "a" * 64}, "inputs": columns,
                                     "logging": {"flushSeconds": 3600}})
    predictor = Predictor(Echo(), [ServeColumn.model_validate(c) for c in columns])
    sink = CountingSink()
    app = ServingApp(task, predictor=predictor, sink=sink, pii_key=pii_key_value)

    async def scenario(client):
        body = {"instances": [{"email": "carol@example.com", "tenure": 3.0}]}
        return await client.post("/v1/models/m:predict", json=body)

    assert serve(app, scenario).status_code == 200
    [data] = sink.stored.values()
    return [json.loads(line) for line in gzip.decompress(data).splitlines() if line.strip()]


def test_the_model_server_logs_a_keyed_hash_of_a_personal_input_never_the_value():
    [record] = logged("s3cret-key")
    assert record["inputs"] == {"email": pseudonym("carol@example.com", b"s3cret-key"), "tenure": 3.0}


def test_without_the_key_the_model_server_logs_no_personal_input_at_all():
    [record] = logged(None)
    assert record["inputs"] == {"tenure": 3.0}


# -- the monitor on hashed logs --------------------------------------------------------------

def test_drift_compares_a_personal_category_by_hash_and_skips_a_personal_number_with_the_reason(
        store, s3_env, tmp_path, monkeypatch):
    key = "monitor-key"
    monkeypatch.setenv("KADENCE_PII_KEY", key)
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"region": rng.choice(["north", "south"], 2000), "age": rng.integers(18, 90, 2000),
                              "x": rng.normal(0, 1, 2000)})
    buffer = io.BytesIO()
    reference.to_parquet(buffer)
    uri = store.put_bytes("datasets/pii-monitor/churn/v1/sample.parquet", buffer.getvalue())
    records = [PredictionRecord(request_id=f"r{i}", time=T - HOUR + timedelta(seconds=3 * i), model_version="1",
                                inputs={"region": pseudonym("south" if i % 10 else "north", key.encode()),
                                        "age": pseudonym(int(rng.integers(18, 90)), key.encode()),
                                        "x": float(rng.normal(0, 1))},
                                outputs={"prediction": 1, "probabilities": [0.3, 0.7]}) for i in range(600)]
    store.put_bytes(prediction_batch_key("pii-monitor", "churn", "1", records[0].time), encode_batch(records))
    feedback = [FeedbackRecord(request_id=r.request_id, time=r.time + timedelta(minutes=1), label=1) for r in records]
    store.put_bytes(feedback_batch_key("pii-monitor", "churn", feedback[0].time), encode_batch(feedback))
    task = {"namespace": "pii-monitor", "policy": "churn-monitor", "inferenceService": "churn", "time": T.isoformat(),
            "window": {"durationSeconds": 3600}, "drift": {"method": "psi", "minSamples": 100},
            "referenceUri": uri, "features": ["region", "age", "x"], "personalColumns": ["region", "age"]}
    path = tmp_path / f"task-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(task))
    out = io.StringIO()
    assert run_from_args(argparse.Namespace(task=str(path)), "KADENCE_TASK", out) == 0
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    features = {f["feature"]: f for f in result["features"]}
    assert features["region"]["status"] == "Judged" and "region" in result["driftedFeatures"]  # 90% south vs 50%
    assert features["x"]["status"] == "Judged" and "x" not in result["driftedFeatures"]
    assert features["age"]["status"] == "PersonalData"
    assert "logs hold keyed hashes of it" in features["age"]["message"]
    report = store.get_bytes(store.key_of(result["reportUri"])).decode()
    assert "north" not in report and "south" not in report  # the report shows hashes, not the values
