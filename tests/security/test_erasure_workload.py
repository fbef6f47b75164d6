"""The erasure workload (`kadence erase`, the ErasureRequest's Job) against a real S3: a subject's
rows leave the prediction logs and their labels, the feedback exports and checkpoints, and every
kept Dataset snapshot (each becomes a new version with its lineage); the guard and the audit
record hold keyed hashes, never the values."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from kadence.api.erasurerequest import SubjectMatch
from kadence.domain.data.pii import pseudonym
from kadence.domain.monitoring.logformat import (FeedbackRecord, PredictionRecord, decode_batch, encode_batch,
                                                 feedback_batch_key, feedback_prefix, prediction_batch_key,
                                                 predictions_prefix)
from kadence.workloads.erase_run import ErasureRefused, erase
from kadence.workloads.erase_task import DatasetVersionRef, EraseDataset, EraseTask

from ..training.datagen import put_dataset

KEY = b"erasure-workload-key"
NS = "erase-wl"
NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
COLUMNS = [{"name": "customer_id", "type": "string"}, {"name": "x", "type": "float"},
           {"name": "churned", "type": "int"}]


def people(n: int) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c-{i % 5}" for i in range(n)], "x": [float(i) for i in range(n)],
                         "churned": [i % 2 for i in range(n)]})


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def erased(store):
    # logs: customer_id is personal there (logged as its keyed hash)
    batch = [PredictionRecord(request_id=f"r{i}", time=NOW - timedelta(hours=1, seconds=-i), model_version="1",
                              inputs={"customer_id": pseudonym(f"c-{i % 5}", KEY), "x": float(i)},
                              outputs={"prediction": 1}) for i in range(10)]
    store.put_bytes(prediction_batch_key(NS, "churn", "1", batch[0].time), encode_batch(batch))
    labels = [FeedbackRecord(request_id=r.request_id, time=r.time + timedelta(minutes=1), label=1) for r in batch]
    store.put_bytes(feedback_batch_key(NS, "churn", labels[0].time, "fb"), encode_batch(labels))
    # a feedback export (hashed column) and a checkpoint (request ids only) of the policy
    export = pd.DataFrame({"customer_id": [pseudonym(f"c-{i % 5}", KEY) for i in range(10)], "churned": [1] * 10})
    store.put_bytes(f"monitoring/{NS}/churn-quality/20261201T110000Z/feedback.parquet", parquet(export))
    checkpoint = pd.DataFrame({"request_id": [f"r{i}" for i in range(10)], "label": [1] * 10})
    store.put_bytes(f"monitoring/{NS}/churn-quality/feedback-checkpoint/a.parquet", parquet(checkpoint))
    # two kept snapshots, one without the subject
    v1 = put_dataset(store, NS, "people", "v1", people(20), COLUMNS, "churned", "customer_id")
    v0 = put_dataset(store, NS, "people", "v0", people(4).iloc[[0, 1, 2]], COLUMNS, "churned", "customer_id")
    task = EraseTask(namespace=NS, request="forget-c3", reason="ticket 7",
                     match=SubjectMatch(column="customer_id", values=["c-3"]), inference_services=["churn"],
                     monitor_policies=["churn-quality"],
                     datasets=[EraseDataset(name="people", versions=[DatasetVersionRef(id="v1", uri=v1),
                                                                     DatasetVersionRef(id="v0", uri=v0)])])
    return erase(task, store, KEY, NOW)


def test_every_store_in_scope_reports_what_it_erased(erased):
    assert erased.outcome == "Succeeded"
    by_store = {(s.store, s.name): s for s in erased.stores}
    assert by_store[("PredictionLog", "churn")].erased_rows == 4  # 2 predictions and their 2 labels
    assert by_store[("FeedbackExport", "churn-quality")].erased_rows == 4  # 2 export rows, 2 checkpoint rows
    snapshots = by_store[("DatasetSnapshot", "people")]
    assert snapshots.erased_rows == 4 and [v.replaced for v in snapshots.versions] == ["v1"]
    assert erased.erased_rows == 12


def test_logs_and_exports_keep_every_other_row(store, erased):
    logged = [r for k in store.list_keys(predictions_prefix(NS, "churn")) for r in decode_batch(k, store.get_bytes(k))]
    assert sorted(r["requestId"] for r in logged) == ["r0", "r1", "r2", "r4", "r5", "r6", "r7", "r9"]
    labelled = [r for k in store.list_keys(feedback_prefix(NS, "churn")) for r in decode_batch(k, store.get_bytes(k))]
    assert {r["requestId"] for r in labelled} == {r["requestId"] for r in logged}
    export = pd.read_parquet(io.BytesIO(store.get_bytes(f"monitoring/{NS}/churn-quality/20261201T110000Z/feedback.parquet")))
    assert len(export) == 8 and pseudonym("c-3", KEY) not in set(export["customer_id"])
    checkpoint = pd.read_parquet(io.BytesIO(store.get_bytes(f"monitoring/{NS}/churn-quality/feedback-checkpoint/a.parquet")))
    assert sorted(checkpoint["request_id"]) == ["r0", "r1", "r2", "r4", "r5", "r6", "r7", "r9"]


def test_a_snapshot_holding_the_subject_becomes_a_new_version_with_its_lineage(store, erased):
    [replaced] = next(s for s in erased.stores if s.store == "DatasetSnapshot").versions
    assert not store.exists(f"datasets/{NS}/people/v1/manifest.json") and not store.exists(
        f"datasets/{NS}/people/v1/data.parquet")
    prefix = store.key_of(replaced.uri)
    manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
    data = pd.read_parquet(io.BytesIO(store.get_bytes(prefix + "data.parquet")))
    assert replaced.rows == manifest["rows"] == len(data) == 16 and "c-3" not in set(data["customer_id"])
    assert manifest["version"] == replaced.version != "v1"
    assert manifest["erasures"] == [{"request": "forget-c3", "erasedRows": 4, "replaces": "v1",
                                     "erasedAt": "2026-12-01T12:00:00Z"}]
    assert store.exists(f"datasets/{NS}/people/v0/manifest.json"), "a snapshot without the subject is left alone"


def test_the_guard_and_the_audit_record_hold_hashes_never_the_values(store, erased):
    guard_text = store.get_bytes(store.key_of(erased.guard_uri)).decode()
    guard = json.loads(guard_text)
    assert guard["hashes"] == [pseudonym("c-3", KEY)] and guard["datasets"] == ["people"]
    audit_text = store.get_bytes(store.key_of(erased.audit_uri)).decode()
    audit = json.loads(audit_text)
    assert audit["request"] == "forget-c3" and audit["erased"]["rows"] == 12 and audit["reason"] == "ticket 7"
    assert "c-3" not in guard_text and "c-3" not in audit_text


def test_without_the_hashing_key_a_dataset_erasure_is_refused_with_the_reason(store):
    task = EraseTask(namespace=NS, request="no-key", match=SubjectMatch(column="customer_id", values=["c-1"]),
                     datasets=[EraseDataset(name="people")])
    with pytest.raises(ErasureRefused, match="no hashing key"):
        erase(task, store, None, NOW)
