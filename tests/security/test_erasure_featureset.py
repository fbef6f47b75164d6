"""An ErasureRequest and the FeatureSets built on the Datasets in its scope (issue 20.4): the
erasure Job rewrites each kept feature table holding the subject (by the matched column, or by
the entity key the table carries) as a new version with its lineage and deletes the old one, or
says why it could not; the FeatureSet re-points its versions with an Event and materializes the
erased Dataset version next, so the rows do not come back."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from kadence.planners.erasurerequest import ErasureObservation, feature_sets_on, plan_erasurerequest
from kadence.planners.featureset import FeatureSetObservation, follow, materialize_job_name, plan_featureset
from kadence.workloads.data_tasks import MaterializeTask
from kadence.workloads.erase_run import erase
from kadence.workloads.erase_task import DatasetVersionRef, EraseDataset, EraseFeatureSet, EraseTask
from kadence.workloads.materialize_run import materialize

from ..data.test_planners import READY_DATASET, featureset, fs_version
from ..training.datagen import put_dataset

KEY = b"erasure-featureset-key"
NS = "erase-fs"
NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


# -- the Job ------------------------------------------------------------------------------

def people(n: int) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c-{i % 5}" for i in range(n)], "account": [f"a-{i}" for i in range(n)],
                         "x": [float(i) for i in range(n)], "churned": [i % 2 for i in range(n)]})


COLUMNS = [{"name": "customer_id", "type": "string"}, {"name": "account", "type": "string"},
           {"name": "x", "type": "float"}, {"name": "churned", "type": "int"}]


def materialized(store, name: str, dataset_uri: str, entity: str | None):
    spec = {"datasetRef": {"name": "people"}, "features": [{"name": "logx", "expression": "log1p(x)"}],
            **({"entityColumn": entity} if entity else {})}
    result = materialize(MaterializeTask.model_validate({"namespace": NS, "name": name, "datasetUri": dataset_uri,
                                                         "spec": spec}), store)
    assert result.outcome == "Valid", result.message
    return result


@pytest.fixture(scope="module")
def erased(store):
    snapshot = put_dataset(store, NS, "people", "v1", people(20), COLUMNS, "churned")
    tables = {"by-id": materialized(store, "by-id", snapshot, "customer_id"),  # the matched column is in the table
              "by-account": materialized(store, "by-account", snapshot, "account"),  # only the entity key is
              "no-key": materialized(store, "no-key", snapshot, None)}  # neither
    task = EraseTask(namespace=NS, request="forget-c3", match={"column": "customer_id", "values": ["c-3"]},
                     datasets=[EraseDataset(name="people", versions=[DatasetVersionRef(id="v1", uri=snapshot)])],
                     feature_sets=[EraseFeatureSet(name=name, versions=[DatasetVersionRef(id=r.version, uri=r.uri)])
                                   for name, r in tables.items()])
    return tables, erase(task, store, KEY, NOW)


def stores_of(result) -> dict:
    return {s.name: s for s in result.stores if s.store == "FeatureSetSnapshot"}


def features(store, uri: str) -> tuple[dict, pd.DataFrame]:
    prefix = store.key_of(uri)
    manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
    return manifest, pd.read_parquet(io.BytesIO(store.get_bytes(prefix + manifest["dataFile"])))


@pytest.mark.parametrize("name", ["by-id", "by-account"])
def test_a_feature_table_holding_the_subject_becomes_a_new_version_with_its_lineage(store, erased, name):
    tables, result = erased
    old = tables[name]
    [replaced] = stores_of(result)[name].versions
    assert replaced.replaced == old.version != replaced.version and replaced.erased_rows == 4 and replaced.rows == 16
    manifest, table = features(store, replaced.uri)
    assert manifest["version"] == replaced.version and manifest["rows"] == len(table) == 16
    assert manifest["erasures"] == [{"request": "forget-c3", "erasedRows": 4, "replaces": old.version,
                                     "erasedAt": "2026-12-01T12:00:00Z"}]
    kept = set(table[manifest["entityColumn"]])
    assert kept == {f"c-{i}" for i in (0, 1, 2, 4)} if name == "by-id" else kept == {
        f"a-{i}" for i in range(20) if i % 5 != 3}
    assert not store.exists(store.key_of(old.uri) + "manifest.json") and not store.exists(
        store.key_of(old.uri) + "features.parquet"), "the snapshot that held the subject is gone"


def test_the_new_feature_table_points_at_the_erased_dataset_version_and_keeps_its_transformer(store, erased):
    tables, result = erased
    [dataset_version] = next(s for s in result.stores if s.store == "DatasetSnapshot").versions
    [replaced] = stores_of(result)["by-id"].versions
    manifest, _ = features(store, replaced.uri)
    assert replaced.dataset_version == manifest["datasetVersion"] == dataset_version.version
    assert manifest["datasetUri"] == dataset_version.uri and store.exists(store.key_of(dataset_version.uri)
                                                                          + "manifest.json")
    transformer = store.get_bytes(store.key_of(replaced.uri) + manifest["transformer"]["file"])
    assert hashlib.sha256(transformer).hexdigest() == tables["by-id"].transformer_sha256


def test_a_table_without_the_column_or_an_entity_key_is_left_with_the_reason_said(store, erased):
    tables, result = erased
    entry = stores_of(result)["no-key"]
    assert entry.erased_rows == 0 and entry.versions is None
    assert entry.message == (f"not erased: version {tables['no-key'].version}: no column 'customer_id' and its "
                             "table has no entity column")
    assert store.exists(store.key_of(tables["no-key"].uri) + "manifest.json")
    assert "FeatureSetSnapshot no-key: not erased" in result.message


def test_materializing_the_erased_dataset_version_brings_no_row_back_and_refits(store, erased):
    tables, result = erased
    [dataset_version] = next(s for s in result.stores if s.store == "DatasetSnapshot").versions
    [replaced] = stores_of(result)["by-id"].versions
    again = materialized(store, "by-id", dataset_version.uri, "customer_id")
    _, table = features(store, again.uri)
    assert again.created and again.version not in (replaced.version, tables["by-id"].version)
    assert len(table) == 16 and "c-3" not in set(table["customer_id"])


# -- the ErasureRequest planner: the FeatureSets in scope -----------------------------------

def feature_set(name, dataset, *versions):
    return {"metadata": {"name": name}, "spec": {"datasetRef": {"name": dataset}},
            "status": {"versions": [{"id": v, "uri": f"s3://k/features/ml/{name}/{v}/"} for v in versions]}}


@pytest.mark.parametrize("sets, datasets, expected", [
    pytest.param([feature_set("f", "people", "a", "b")], ["people"], {"f": ["a", "b"]},
                 id="a featureset on a dataset in scope is erased with every kept version"),
    pytest.param([feature_set("f", "other", "a")], ["people"], {}, id="a featureset on another dataset is not"),
    pytest.param([feature_set("g", "people"), feature_set("f", "people", "a")], ["people"], {"f": ["a"], "g": []},
                 id="one not materialized yet is listed without versions"),
])
def test_the_featuresets_in_scope_are_those_built_on_the_datasets_in_scope(sets, datasets, expected):
    assert {f.name: [v.id for v in f.versions] for f in feature_sets_on(sets, datasets)} == expected


def test_the_erasure_task_lists_the_featuresets_of_the_scoped_datasets():
    body = {"apiVersion": "kadence.dev/v1alpha1", "kind": "ErasureRequest",
            "metadata": {"name": "forget", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {"match": {"column": "customer_id", "values": ["c-3"]}, "scope": {"datasets": ["people"]}}}
    observed = ErasureObservation({"people": {"status": {}}}, [], [], {},
                                  [feature_set("f", "people", "a"), feature_set("g", "other", "b")])
    configmap, _ = plan_erasurerequest(body, observed, NOW).children
    task = json.loads(next(iter(configmap["data"].values())))
    assert task["featureSets"] == [{"name": "f", "versions": [{"id": "a", "uri": "s3://k/features/ml/f/a/"}]}]


# -- the FeatureSet planner: re-pointing, and the next materialization ---------------------

V1 = fs_version(dataset_version="v1")
FS_V1 = {"id": V1, "datasetVersion": "v1", "rows": 10, "createdAt": "2026-01-01T11:00:00Z",
         "uri": f"s3://kadence/features/ml/user-features/{V1}/",
         "transformerUri": f"s3://kadence/features/ml/user-features/{V1}/transformer-abc.skops",
         "transformerSha256": "c" * 64}
FS_OLD = {"id": "f0", "datasetVersion": "v0", "rows": 6, "createdAt": "2026-01-01T10:00:00Z",
          "uri": "s3://kadence/features/ml/user-features/f0/"}


def erasure(name, *stores):
    return {"metadata": {"name": name}, "status": {"stores": [
        {"store": kind, "name": owner, "erasedRows": 1, "versions": [
            {"replaced": old, "version": new, "uri": f"s3://kadence/{kind}/{new}/", "rows": 9, "erasedRows": 1,
             **({"datasetVersion": ds} if ds else {})} for old, new, ds in replaced]}
        for kind, owner, replaced in stores]}}


def fs_erased(name, *replaced):
    return erasure(name, ("FeatureSetSnapshot", "user-features", replaced))


@pytest.mark.parametrize("requests, ids, lineage, dataset_versions", [
    pytest.param([fs_erased("forget-a", (V1, "f2", "v3"))], ["f2", "f0"],
                 [[{"request": "forget-a", "erasedRows": 1, "replaces": V1}], None], ["v3", "v0"],
                 id="an erased version is replaced with its lineage and the erased dataset version"),
    pytest.param([fs_erased("forget-a", (V1, "f2", "v3")), fs_erased("forget-b", ("f2", "f3", None))],
                 ["f3", "f0"], [[{"request": "forget-a", "erasedRows": 1, "replaces": V1},
                                 {"request": "forget-b", "erasedRows": 1, "replaces": "f2"}], None], ["v3", "v0"],
                 id="a version erased twice follows both requests"),
    pytest.param([erasure("forget-a", ("FeatureSetSnapshot", "other", [(V1, "f2", "v3")]))], [V1, "f0"],
                 [None, None], ["v1", "v0"], id="another featureset's erasure changes nothing here"),
    pytest.param([erasure("forget-a", ("DatasetSnapshot", "user-features", [(V1, "f2", None)]))], [V1, "f0"],
                 [None, None], ["v1", "v0"], id="a dataset of the same name is not this featureset"),
])
def test_the_featureset_follows_the_versions_its_erasures_rewrote(requests, ids, lineage, dataset_versions):
    status = {"latestVersion": "f0", "versions": [FS_V1, FS_OLD]}
    plan = plan_featureset(featureset(status), FeatureSetObservation(dataset=None, erasures=requests), NOW)
    versions = [v.model_dump(by_alias=True, mode="json", exclude_none=True) for v in plan.status.versions or []] or [
        FS_V1, FS_OLD]
    assert [v["id"] for v in versions] == ids and [v.get("erasures") for v in versions] == lineage
    assert [v["datasetVersion"] for v in versions] == dataset_versions
    if ids[0] != V1:
        assert versions[0]["createdAt"] == FS_V1["createdAt"]
        assert versions[0]["transformerUri"] == f"s3://kadence/FeatureSetSnapshot/{ids[0]}/transformer-abc.skops"


def test_the_current_version_erased_moves_latest_with_an_event_and_materializes_the_erased_dataset_version():
    status = {"latestVersion": V1, "datasetVersion": "v1", "versions": [FS_V1]}
    request = erasure("forget-a", ("DatasetSnapshot", "users", [("v1", "v3", None)]),
                      ("FeatureSetSnapshot", "user-features", [(V1, "f2", "v3")]))
    # the Dataset has not re-pointed yet: its status still names v1
    plan = plan_featureset(featureset(status), FeatureSetObservation(dataset=READY_DATASET, erasures=[request]), NOW)
    assert plan.status.latest_version == "f2" and plan.status.dataset_version == "v3"
    assert [(e.reason, e.message) for e in plan.events] == [
        ("VersionErased", f"version {V1} -> f2: erased 1 rows per request forget-a")]
    name = materialize_job_name("user-features", fs_version(dataset_version="v3"))
    configmap, job = plan.children
    assert job["metadata"]["name"] == name
    assert '"datasetUri":"s3://kadence/DatasetSnapshot/v3/"' in configmap["data"]["task.json"]


def test_a_pinned_dataset_version_that_was_erased_is_followed_to_its_replacement():
    repointed = {**READY_DATASET, "status": {**READY_DATASET["status"], "latestVersion": "v3", "versions": [
        {**READY_DATASET["status"]["versions"][0], "id": "v3", "uri": "s3://kadence/DatasetSnapshot/v3/"}]}}
    request = erasure("forget-a", ("DatasetSnapshot", "users", [("v1", "v3", None)]))
    plan = plan_featureset(featureset(version="v1"), FeatureSetObservation(dataset=repointed, erasures=[request]), NOW)
    available = next(c for c in plan.conditions if c.type == "DataAvailable")
    assert available.status == "True" and "version v3" in available.message
    assert [c["metadata"]["name"] for c in plan.children][1] == materialize_job_name(
        "user-features", fs_version(dataset_version="v3"))


@pytest.mark.parametrize("version, chain, expected", [
    pytest.param("v1", {}, "v1", id="a version no erasure replaced is itself"),
    pytest.param("v1", {"v1": ({"version": "v2"}, "a"), "v2": ({"version": "v3"}, "b")}, "v3",
                 id="a version erased twice is followed to the last replacement"),
    pytest.param(None, {"v1": ({"version": "v2"}, "a")}, None, id="no version stays none"),
])
def test_following_a_version_through_its_erasures(version, chain, expected):
    assert follow(version, chain) == expected
