"""`kadence ingest` against a real S3 (SeaweedFS): sources, snapshots, idempotency, rule failures."""

import io
import json
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kadence.workloads.data_tasks import IngestTask
from kadence.workloads.ingest_run import ingest

CSV = "id,age,plan,joined,churn\n1,34,basic,2024-01-02T10:00:00Z,0\n2,,pro,2024-01-03,1\n3,51,pro,2024-02-01,0\n"
MORE = "id,age,plan,joined,churn\n4,29,basic,2024-03-01,1\n5,62,pro,2024-03-02,0\n"
SCHEMA = {"columns": [{"name": "id", "type": "int", "nullable": False}, {"name": "age", "type": "float", "min": 0},
                      {"name": "plan", "type": "category", "allowedValues": ["basic", "pro"]},
                      {"name": "joined", "type": "datetime"}, {"name": "churn", "type": "int"}],
          "target": "churn", "entityColumn": "id"}


def task(source, name=None, quality=None, data_format="csv"):
    return IngestTask.model_validate({
        "namespace": "team-a", "name": name or f"ds-{uuid.uuid4().hex[:8]}",
        "spec": {"source": source, "format": data_format, "schema": SCHEMA, "quality": quality or {"minRows": 1}}})


def test_an_s3_object_becomes_a_snapshot_with_data_profile_and_manifest(store):
    store.put_bytes("raw/one.csv", CSV.encode())
    result = ingest(task({"uri": "s3://kadence/raw/one.csv"}, name="churn"), store)
    assert result.outcome == "Valid" and result.created and result.rows == 3
    prefix = f"datasets/team-a/churn/{result.version}/"
    assert result.uri == f"s3://kadence/{prefix}"
    frame = pq.read_table(io.BytesIO(store.get_bytes(prefix + "data.parquet"))).to_pandas()
    assert frame["id"].tolist() == [1, 2, 3] and frame["plan"].tolist() == ["basic", "pro", "pro"]
    assert str(frame["joined"].dtype) == "datetime64[us, UTC]"
    profile = json.loads(store.get_bytes(prefix + "profile.json"))
    assert profile["rows"] == 3 and profile["columns"]["age"]["missing"] == 1
    manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
    assert manifest["version"] == result.version and manifest["sha256"] == result.sha256
    assert manifest["rows"] == 3 and manifest["source"]["files"] == ["s3://kadence/raw/one.csv"]
    assert {r["rule"] for r in manifest["ruleResults"]} >= {"minRows", "nullable[id]", "allowedValues[plan]"}


def test_an_s3_prefix_is_read_file_by_file_in_key_order(store):
    store.put_bytes("raw/multi/part-1.csv", CSV.encode())
    store.put_bytes("raw/multi/part-2.csv", MORE.encode())
    store.put_bytes("raw/multi/_SUCCESS", b"")
    result = ingest(task({"uri": "s3://kadence/raw/multi/"}), store)
    assert result.outcome == "Valid" and result.rows == 5
    assert result.source_files == ["s3://kadence/raw/multi/part-1.csv", "s3://kadence/raw/multi/part-2.csv"]
    single = ingest(task({"inline": CSV + MORE.split("\n", 1)[1]}), store)
    assert single.version == result.version  # the same rows in one file give the same version


def test_a_local_file_and_the_same_rows_in_jsonl_and_parquet_give_one_version(store, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(CSV)
    from_csv = ingest(task({"uri": path.as_uri()}), store)
    rows = pd.read_csv(io.StringIO(CSV))
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(rows.to_json(orient="records", lines=True))
    from_jsonl = ingest(task({"uri": jsonl.as_uri()}, data_format="jsonl"), store)
    parquet = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pandas(rows), parquet)
    from_parquet = ingest(task({"uri": parquet.as_uri()}, data_format="parquet"), store)
    assert from_csv.outcome == from_jsonl.outcome == from_parquet.outcome == "Valid"
    assert from_csv.version == from_jsonl.version == from_parquet.version


def test_re_ingesting_the_same_content_makes_no_new_version_and_rewrites_nothing(store):
    store.put_bytes("raw/again.csv", CSV.encode())
    spec = task({"uri": "s3://kadence/raw/again.csv"}, name="again")
    first = ingest(spec, store)
    manifest_key = f"datasets/team-a/again/{first.version}/manifest.json"
    before = store.client.stat_object(store.bucket, manifest_key).last_modified
    second = ingest(spec, store)
    assert (second.version, second.created, second.created_at) == (first.version, False, first.created_at)
    assert store.client.stat_object(store.bucket, manifest_key).last_modified == before
    store.put_bytes("raw/again.csv", (CSV + "9,40,basic,2024-05-01,1\n").encode())
    third = ingest(spec, store)
    assert third.created and third.version != first.version and third.rows == 4
    assert sorted(k.split("/")[3] for k in store.list_keys("datasets/team-a/again/") if k.endswith("manifest.json")) \
        == sorted([first.version, third.version])


def test_data_that_breaks_a_rule_is_invalid_with_the_rule_and_numbers_and_writes_no_snapshot(store):
    bad = CSV + "7,-3,gold,2024-04-01,1\n"
    result = ingest(task({"inline": bad}, name="broken", quality={"minRows": 10}), store)
    assert result.outcome == "Invalid" and not result.valid
    assert result.failed_rules == ["min[age]", "allowedValues[plan]", "minRows"]
    assert "minRows: 4 rows, at least 10 required" in result.message
    assert "min[age]: 1 values below the minimum 0 (the most extreme is -3)" in result.message
    assert list(store.list_keys("datasets/team-a/broken/")) == []


@pytest.mark.parametrize("text, rule, fragment", [
    ("id,age,plan,churn\n1,3,pro,0\n", "schema[columns]", "missing column(s) joined"),
    ("id,age,plan,joined,churn\nx,3,pro,2024-01-01,0\n", "schema[types]", "invalid value 'x'"),
    ("id,age,plan,joined,churn\n1,3,pro,yesterday,0\n", "schema[types]", "column 'joined' does not hold ISO-8601"),
])
def test_data_that_does_not_fit_the_schema_is_invalid_with_the_column_named(store, text, rule, fragment):
    result = ingest(task({"inline": text}), store)
    assert result.outcome == "Invalid" and result.failed_rules == [rule]
    assert fragment in result.message


def test_a_missing_source_is_an_error_not_a_crash(store):
    result = ingest(task({"uri": "s3://kadence/raw/does-not-exist.csv"}), store)
    assert result.outcome == "Error" and "no object or files under s3://kadence/raw/does-not-exist.csv" in result.message


def test_an_http_source_is_downloaded_and_ingested(store, tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "data.csv").write_text(CSV)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.csv"
        result = ingest(task({"uri": url}), store)
        missing = ingest(task({"uri": url.replace("data.csv", "nope.csv")}), store)
    finally:
        server.shutdown()
    assert result.outcome == "Valid" and result.rows == 3 and result.source_files == [url]
    assert missing.outcome == "Error" and "HTTP Error 404" in missing.message


def test_an_object_in_another_bucket_of_the_same_endpoint_is_read(store):
    if not store.client.bucket_exists("landing"):
        store.client.make_bucket("landing")
    store.client.put_object("landing", "users.csv", io.BytesIO(CSV.encode()), len(CSV))
    result = ingest(task({"uri": "s3://landing/users.csv"}), store)
    assert result.outcome == "Valid" and result.source_files == ["s3://landing/users.csv"]
    assert result.uri.startswith("s3://kadence/datasets/team-a/")


def test_a_configmap_source_is_read_from_the_job_environment(store, monkeypatch):
    monkeypatch.setenv("KADENCE_INLINE_DATA", CSV)
    result = ingest(task({"configMapRef": {"name": "tiny", "key": "data.csv"}}), store)
    assert result.outcome == "Valid" and result.rows == 3 and result.source_files == ["inline"]
    monkeypatch.delenv("KADENCE_INLINE_DATA")
    missing = ingest(task({"configMapRef": {"name": "tiny", "key": "data.csv"}}), store)
    assert missing.outcome == "Error" and "ConfigMap 'tiny' key 'data.csv' did not reach the Job" in missing.message


def test_the_histogram_pass_re_reads_the_snapshot_when_the_data_is_too_big_to_keep(tmp_path, monkeypatch):
    from kadence.workloads import ingest_run

    rows = "".join(f"{i},{i % 90},{'basic' if i % 3 else 'pro'},2024-01-01,{i % 2}\n" for i in range(1000))
    spec = task({"inline": "id,age,plan,joined,churn\n" + rows})
    ingest(spec, None, write=False, output_dir=tmp_path / "kept")
    monkeypatch.setattr(ingest_run, "KEEP_FOR_HISTOGRAMS_BYTES", 0)
    ingest(spec, None, write=False, output_dir=tmp_path / "reread")
    kept = json.loads((tmp_path / "kept" / "profile.json").read_text())
    assert kept == json.loads((tmp_path / "reread" / "profile.json").read_text())
    assert sum(kept["columns"]["age"]["histogram"]["counts"]) == 1000


def test_snapshots_beyond_retention_are_pruned_oldest_first(store):
    spec = task({"inline": CSV}, name="kept")
    spec.spec.retention = 2
    versions = []
    for extra in range(3):
        spec.spec.source.inline = CSV + f"{10 + extra},40,pro,2024-05-01,1\n"
        result = ingest(spec, store)
        versions.append(result.version)
    assert result.pruned_versions == [versions[0]]
    stored = {k.split("/")[3] for k in store.list_keys("datasets/team-a/kept/") if not k.split("/")[3] == "runs"}
    assert stored == set(versions[1:])
