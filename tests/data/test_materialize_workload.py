"""`kadence materialize` against a real S3: feature table, transformer, versions, refusals."""

import hashlib
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import skops.io as sio

from kadence.domain.data.transforms import TRUSTED_TYPES
from kadence.workloads.data_tasks import IngestTask, MaterializeTask
from kadence.workloads.ingest_run import ingest
from kadence.workloads.materialize_run import materialize

ROWS = "\n".join(f"{i},{20 + (i * 7) % 50},{['basic', 'pro', 'team'][i % 3]},2024-0{1 + i % 9}-1{i % 10},{i % 2}"
                 for i in range(60))
CSV = "id,age,plan,joined,churn\n" + ROWS + "\n"
SCHEMA = {"columns": [{"name": "id", "type": "int"}, {"name": "age", "type": "float"},
                      {"name": "plan", "type": "category"}, {"name": "joined", "type": "datetime"},
                      {"name": "churn", "type": "int"}], "target": "churn", "entityColumn": "id"}
FEATURES = [
    {"name": "logage", "expression": "log1p(age)"},
    {"name": "plan", "transform": {"type": "oneHot", "column": "plan", "maxCategories": 2}},
    {"name": "month", "transform": {"type": "datePart", "column": "joined", "part": "month"}},
]


@pytest.fixture(scope="module")
def dataset(store):
    result = ingest(IngestTask.model_validate({"namespace": "ml", "name": "users", "spec": {
        "source": {"inline": CSV}, "schema": SCHEMA}}), store)
    assert result.outcome == "Valid", result.message
    return result


def task(dataset, features=FEATURES, name="user-features"):
    return MaterializeTask.model_validate({"namespace": "ml", "name": name, "datasetUri": dataset.uri, "spec": {
        "datasetRef": {"name": "users"}, "features": features}})


def test_materialize_writes_the_feature_table_transformer_and_profile(store, dataset):
    result = materialize(task(dataset), store)
    assert result.outcome == "Valid" and result.created and result.rows == 60
    assert result.dataset_version == dataset.version
    assert result.feature_columns == ["logage", "plan=basic", "plan=pro", "plan=<other>", "month"]
    assert [(f.name, f.type) for f in result.features] == [("logage", "float"), ("plan", "category"), ("month", "int")]
    prefix = store.key_of(result.uri)
    table = pq.read_table(io.BytesIO(store.get_bytes(prefix + "features.parquet"))).to_pandas()
    assert list(table.columns) == ["id", *result.feature_columns, "churn"]
    np.testing.assert_allclose(table["logage"], np.log1p([20 + (i * 7) % 50 for i in range(60)]))
    transformer_bytes = store.get_bytes(store.key_of(result.transformer_uri))
    assert hashlib.sha256(transformer_bytes).hexdigest() == result.transformer_sha256
    transformer = sio.loads(transformer_bytes, trusted=TRUSTED_TYPES)
    raw = [{"age": 27, "plan": "team", "joined": "2024-02-11T00:00:00Z"}]
    np.testing.assert_allclose(transformer.transform(raw), [[np.log1p(27), 0, 0, 1, 2]])
    profile = json.loads(store.get_bytes(prefix + "profile.json"))
    assert profile["rows"] == 60 and set(profile["columns"]) == set(result.feature_columns)
    manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
    assert manifest["datasetVersion"] == dataset.version and manifest["transformer"]["sha256"] == result.transformer_sha256


def test_the_same_definitions_and_data_reuse_the_version_and_new_definitions_make_another(store, dataset):
    first = materialize(task(dataset, name="reuse"), store)
    again = materialize(task(dataset, name="reuse"), store)
    assert (again.version, again.created, again.transformer_sha256) == (first.version, False, first.transformer_sha256)
    changed = materialize(task(dataset, features=FEATURES[:2], name="reuse"), store)
    assert changed.created and changed.version != first.version


def test_a_definition_referencing_a_missing_column_is_refused_with_the_feature_name(store, dataset):
    result = materialize(task(dataset, features=[{"name": "bad", "expression": "log1p(salary)"}]), store)
    assert result.outcome == "Invalid" and result.failed_feature == "bad"
    assert "feature 'bad': unknown column 'salary'" in result.message
