"""`kadence data erase --entity`: an entity's predictions (logged as its value or as its keyed
hash) and their labels leave the logs, other rows stay, and the audit record holds no personal
data. Run as a user does, through the CLI, against a real S3."""

from __future__ import annotations

import json
from datetime import timedelta

from kadence.cli import main
from kadence.domain.data.pii import pseudonym
from kadence.domain.monitoring.logformat import (FeedbackRecord, PredictionRecord, decode_batch, encode_batch,
                                                 feedback_batch_key, predictions_prefix, prediction_batch_key,
                                                 feedback_prefix)

from ..monitoring.test_monitor_workload import HOUR, T

KEY = "erasure-key"
NS = "erase-ns"


def records(version: str, hashed: bool) -> list[PredictionRecord]:
    def customer(i: int) -> str:
        value = f"c-{i % 5}"
        return pseudonym(value, KEY.encode()) if hashed else value
    return [PredictionRecord(request_id=f"{version}-{i}", time=T - HOUR + timedelta(seconds=i), model_version=version,
                             inputs={"customer_id": customer(i), "x": float(i)}, outputs={"prediction": 1})
            for i in range(20)]


def stored(store, prefix: str) -> list[dict]:
    return [r for key in sorted(store.list_keys(prefix)) for r in decode_batch(key, store.get_bytes(key))]


def test_erase_removes_an_entitys_predictions_and_labels_and_audits_without_personal_data(store, s3_env, monkeypatch,
                                                                                           capsys):
    for version, hashed in (("1", False), ("2", True)):  # version 2 logs customer_id as a personal column
        batch = records(version, hashed)
        store.put_bytes(prediction_batch_key(NS, "churn", version, batch[0].time), encode_batch(batch))
        labels = [FeedbackRecord(request_id=r.request_id, time=r.time + timedelta(minutes=1), label=1) for r in batch]
        store.put_bytes(feedback_batch_key(NS, "churn", labels[0].time, f"fb{version}"), encode_batch(labels))
    monkeypatch.setenv("KADENCE_PII_KEY", KEY)

    code = main(["data", "erase", "-n", NS, "--inference-service", "churn", "--entity-column", "customer_id",
                 "--entity", "c-3", "--reason", "GDPR request 42"])
    assert code == 0
    audit = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    predictions = stored(store, predictions_prefix(NS, "churn"))
    assert len(predictions) == 32  # 4 of 20 rows per version were c-3
    assert all(r["inputs"]["customer_id"] not in ("c-3", pseudonym("c-3", KEY.encode())) for r in predictions)
    feedback = stored(store, feedback_prefix(NS, "churn"))
    assert {r["requestId"] for r in feedback} == {r["requestId"] for r in predictions}
    [log] = audit["erased"]["stores"]
    assert audit["erased"]["rows"] == 16 and log["erasedRows"] == 16 and log["message"] == \
        "8 predictions and 8 labels erased"
    assert len(audit["objectsRewritten"]) == 4
    assert audit["subjectHashes"] == [pseudonym("c-3", KEY.encode())] and audit["reason"] == "GDPR request 42"
    [trail] = [k for k in store.list_keys(f"monitoring/{NS}/_erasures/audit/")]
    text = store.get_bytes(trail).decode()
    assert json.loads(text) == audit and "c-3" not in text  # the audit trail holds no personal data

    assert main(["data", "erase", "-n", NS, "--inference-service", "churn", "--entity-column", "customer_id",
                 "--entity", "c-3"]) == 0  # again: nothing left to erase, still audited
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["erased"]["rows"] == 0
