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
    ("id,age,plan,joined,churn\nx,3,pro,2024-01-01,0\n", "schema[types]", "In CSV column #0: CSV conversion error to int64: invalid value in inline"),
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
    assert missing.outcome == "Error" and "HTTP status 404" in missing.message


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


# -- appended files (the Dataset's kadence.dev/appended-data annotation) ---------------------

def appended_task(source, appended, name=None):
    spec = task(source, name=name)
    return spec.model_copy(update={"appended": appended})


def put_parquet(store, key, frame):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(key, buffer.getvalue(), "application/vnd.apache.parquet")
    return f"s3://kadence/{key}"


def test_appended_files_follow_the_source_rows_in_list_order_with_the_schemas_columns_only(store, tmp_path):
    name = f"fb-{uuid.uuid4().hex[:8]}"
    store.put_bytes(f"raw/{name}.csv", CSV.encode())
    # The monitor's export: logged inputs (no `joined`) plus the label, and a column the schema lacks.
    feedback = put_parquet(store, f"monitoring/{name}/w1/labelled.parquet", pd.DataFrame(
        {"age": [29.0, 62.0], "plan": ["basic", "pro"], "id": [4, 5], "churn": ["1", "0"], "score": [0.2, 0.9]}))
    by_hand = tmp_path / "more.jsonl"
    by_hand.write_text('{"id": 6, "age": 40, "plan": "pro", "joined": "2024-06-01", "churn": 1, "note": "x"}\n')
    source_only = ingest(task({"uri": f"s3://kadence/raw/{name}.csv"}, name=name), store)
    result = ingest(appended_task({"uri": f"s3://kadence/raw/{name}.csv"}, [feedback, by_hand.as_uri()], name), store)
    assert result.outcome == "Valid" and result.rows == 6 and result.created
    assert result.version != source_only.version and result.appended == [feedback, by_hand.as_uri()]
    table = pq.read_table(io.BytesIO(store.get_bytes(f"datasets/team-a/{name}/{result.version}/data.parquet")))
    frame = table.to_pandas()
    assert table.column_names == ["id", "age", "plan", "joined", "churn"]
    assert frame["id"].tolist() == [1, 2, 3, 4, 5, 6] and frame["churn"].tolist() == [0, 1, 0, 1, 0, 1]
    assert frame["joined"].isna().tolist() == [False, False, False, True, True, False]
    manifest = json.loads(store.get_bytes(f"datasets/team-a/{name}/{result.version}/manifest.json"))
    assert manifest["source"]["appended"] == [feedback, by_hand.as_uri()] and manifest["rows"] == 6
    again = ingest(appended_task({"uri": f"s3://kadence/raw/{name}.csv"}, [feedback, by_hand.as_uri()], name), store)
    assert (again.version, again.created) == (result.version, False)
    swapped = ingest(appended_task({"uri": f"s3://kadence/raw/{name}.csv"}, [by_hand.as_uri(), feedback], name),
                     store, write=False)
    assert swapped.version not in (result.version, source_only.version)  # row order is part of the content


def test_a_column_an_appended_file_lacks_is_null_and_the_usual_rules_judge_it(store):
    name = f"fb-{uuid.uuid4().hex[:8]}"
    no_ids = put_parquet(store, f"monitoring/{name}/labelled.parquet",
                         pd.DataFrame({"age": [29.0], "plan": ["basic"], "churn": [1]}))
    result = ingest(appended_task({"inline": CSV}, [no_ids], name), store)
    assert result.outcome == "Invalid" and result.failed_rules == ["nullable[id]"] and result.rows == 4
    assert result.appended == [no_ids]
    assert list(store.list_keys(f"datasets/team-a/{name}/")) == []


def test_an_appended_value_of_the_wrong_type_is_invalid_naming_the_file(store):
    name = f"fb-{uuid.uuid4().hex[:8]}"
    store.put_bytes(f"monitoring/{name}/bad.csv", b"id,age,plan,churn\n4,old,pro,1\n")
    uri = f"s3://kadence/monitoring/{name}/bad.csv"
    result = ingest(appended_task({"inline": CSV}, [uri], name), store)
    assert result.outcome == "Invalid" and result.failed_rules == ["schema[types]"]
    assert f"in appended file {uri}" in result.message


@pytest.mark.parametrize("key, content, cause", [
    ("gone.parquet", None, "no such object"),
    ("garbage.parquet", b"id,age\n1,2\n", "not a readable Parquet file"),
])
def test_an_unreadable_appended_file_fails_the_ingest_with_its_uri_and_cause(store, key, content, cause):
    name = f"fb-{uuid.uuid4().hex[:8]}"
    uri = f"s3://kadence/monitoring/{name}/{key}"
    if content is not None:
        store.put_bytes(f"monitoring/{name}/{key}", content)
    result = ingest(appended_task({"inline": CSV}, [uri], name), store)
    assert result.outcome == "Error" and not result.valid
    assert result.message.startswith(f"cannot read the appended file {uri}: {cause}")
    assert list(store.list_keys(f"datasets/team-a/{name}/")) == []


def test_an_appended_file_is_read_with_kadences_credentials_not_the_sources(store, monkeypatch):
    monkeypatch.setenv("KADENCE_SOURCE_S3_ENDPOINT", "http://127.0.0.1:9")  # the source's store: unreachable
    name = f"fb-{uuid.uuid4().hex[:8]}"
    feedback = put_parquet(store, f"monitoring/{name}/labelled.parquet",
                           pd.DataFrame({"id": [4], "age": [29.0], "plan": ["basic"], "churn": [1]}))
    result = ingest(appended_task({"inline": CSV}, [feedback], name), store)
    assert result.outcome == "Valid" and result.rows == 4
