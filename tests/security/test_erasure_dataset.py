"""An ErasureRequest in a Dataset's life: the Dataset re-points its versions to the snapshots the
erasure rewrote (lineage "erased N rows per request X"), and every later ingest applies the
request's guard, so neither a re-read source nor folded feedback brings the rows back."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timezone

import pandas as pd
import pytest

from kadence.domain.data.erasure import guard_hashes
from kadence.planners.dataset import (DatasetObservation, apply_erasures, erased_versions, ingest_job_name,
                                      plan_dataset)
from kadence.workloads.data_tasks import IngestTask
from kadence.workloads.erase_task import guard_key
from kadence.workloads.ingest_run import ingest

from ..data.test_planners import dataset, job

KEY = "guard-key"
NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
V2 = {"id": "v2", "rows": 10, "uri": "s3://kadence/datasets/ml/users/v2/", "createdAt": "2026-01-01T11:00:00Z",
      "sha256": "a" * 64}
V1 = {"id": "v1", "rows": 8, "uri": "s3://kadence/datasets/ml/users/v1/", "createdAt": "2026-01-01T10:00:00Z"}


def erasure(name, dataset_name, *replaced):
    return {"metadata": {"name": name}, "status": {"stores": [
        {"store": "PredictionLog", "name": "churn", "erasedRows": 2},
        {"store": "DatasetSnapshot", "name": dataset_name, "erasedRows": 2, "versions": [
            {"replaced": old, "version": new, "uri": f"s3://kadence/datasets/ml/users/{new}/", "rows": rows,
             "erasedRows": erased, "sha256": "b" * 64} for old, new, rows, erased in replaced]}]}}


@pytest.mark.parametrize("requests, ids, lineage", [
    pytest.param([erasure("forget-a", "users", ("v2", "v3", 9, 1))], ["v3", "v1"],
                 [[{"request": "forget-a", "erasedRows": 1, "replaces": "v2"}], None],
                 id="an erased version is replaced by its successor with the erasure in its lineage"),
    pytest.param([erasure("forget-a", "users", ("v2", "v3", 9, 1)), erasure("forget-b", "users", ("v3", "v4", 8, 1))],
                 ["v4", "v1"], [[{"request": "forget-a", "erasedRows": 1, "replaces": "v2"},
                                 {"request": "forget-b", "erasedRows": 1, "replaces": "v3"}], None],
                 id="a version erased twice follows both requests"),
    pytest.param([erasure("forget-a", "other", ("v2", "v3", 9, 1))], ["v2", "v1"], [None, None],
                 id="another Dataset's erasure changes nothing here"),
])
def test_the_dataset_follows_the_versions_its_erasures_rewrote(requests, ids, lineage):
    versions, _ = apply_erasures([V2, V1], erased_versions(requests, "users"))
    assert [v["id"] for v in versions] == ids and [v.get("erasures") for v in versions] == lineage
    assert versions[1] == V1 and versions[0]["createdAt"] == V2["createdAt"]


def test_the_current_version_erased_moves_latest_with_an_event_and_keeps_the_last_ingest():
    status = {"latestVersion": "v2", "latestRows": 10, "versions": [V2, V1], "lastJob": "users-ingest-g1"}
    plan = plan_dataset(dataset(status), DatasetObservation(erasures=[erasure("forget-a", "users", ("v2", "v3", 9, 1))]),
                        NOW)
    assert plan.status.latest_version == "v3" and plan.status.latest_rows == 9
    assert [v.id for v in plan.status.versions] == ["v3", "v1"]
    assert plan.status.versions[0].erasures[0].request == "forget-a"
    assert [(e.reason, e.message) for e in plan.events] == [
        ("VersionErased", "version v2 -> v3: erased 1 rows per request forget-a")]
    assert plan.children == [], "the rewritten snapshot is the version: nothing is ingested again"


def test_an_ingest_dropping_guarded_rows_says_so_in_the_version():
    status = {"latestVersion": "v1", "versions": [V1]}
    result = {"outcome": "Valid", "valid": True, "version": "v5", "rows": 7, "uri": "s3://kadence/datasets/ml/users/v5/",
              "created": True, "createdAt": "2026-01-01T11:59:00Z", "erased": {"forget-a": 1}}
    name = ingest_job_name("users", 1, 0)
    plan = plan_dataset(dataset(status), DatasetObservation(jobs=[job(name, "Succeeded")], results={name: result}), NOW)
    assert plan.status.versions[0].erasures[0].model_dump(by_alias=True, exclude_none=True) == {
        "request": "forget-a", "erasedRows": 1}


def test_the_guarded_ingest_of_an_erased_version_keeps_the_lineage_it_had():
    erased = {**V2, "id": "v3", "erasures": [{"request": "forget-a", "erasedRows": 1, "replaces": "v2"}]}
    status = {"latestVersion": "v3", "versions": [erased, V1]}
    result = {"outcome": "Valid", "valid": True, "version": "v3", "rows": 9, "uri": erased["uri"], "created": False,
              "createdAt": V2["createdAt"], "erased": {"forget-a": 1}}
    name = ingest_job_name("users", 1, 0)
    plan = plan_dataset(dataset(status), DatasetObservation(jobs=[job(name, "Succeeded")], results={name: result}), NOW)
    assert [v.id for v in plan.status.versions] == ["v3", "v1"]
    assert [e.model_dump(by_alias=True, exclude_none=True) for e in plan.status.versions[0].erasures] == [
        {"request": "forget-a", "erasedRows": 1, "replaces": "v2"}]


CSV = "id,age,churn\n1,34,0\n2,40,1\n3,51,0\n2,41,1\n"
SCHEMA = {"columns": [{"name": "id", "type": "int", "nullable": False}, {"name": "age", "type": "float"},
                      {"name": "churn", "type": "int"}], "target": "churn", "entityColumn": "id"}


def ingest_task(name, csv=CSV):
    return IngestTask.model_validate({"namespace": "guarded", "name": name,
                                      "spec": {"source": {"inline": csv}, "format": "csv", "schema": SCHEMA,
                                               "quality": {"minRows": 1}}})


def test_a_later_ingest_keeps_an_erased_subjects_rows_out_and_counts_them(store, monkeypatch):
    name = f"users-{uuid.uuid4().hex[:6]}"
    guard = {"kind": "kadence.dev/erasure-guard", "request": "forget-2", "column": "id", "datasets": [name],
             "hashes": guard_hashes(["2"], KEY.encode())}
    store.put_bytes(guard_key("guarded", "forget-2"), json.dumps(guard).encode())
    monkeypatch.setenv("KADENCE_PII_KEY", KEY)
    result = ingest(ingest_task(name), store)
    assert result.outcome == "Valid" and result.rows == 2 and result.erased == {"forget-2": 2}
    data = pd.read_parquet(io.BytesIO(store.get_bytes(store.key_of(result.uri) + "data.parquet")))
    assert sorted(data["id"]) == [1, 3]
    other = ingest(ingest_task(f"other-{uuid.uuid4().hex[:6]}"), store)
    assert other.rows == 4 and other.erased == {}, "a guard applies only to the Datasets its request named"

    monkeypatch.delenv("KADENCE_PII_KEY")
    refused = ingest(ingest_task(name), store)
    assert refused.outcome == "Error" and "no hashing key" in refused.message and "forget-2" in refused.message
