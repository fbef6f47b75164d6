"""An ErasureRequest in the sandbox, driven with kubectl as a user would (issue 20.4): a customer's
rows leave the prediction logs and labels, the Dataset's snapshot (which becomes a new version
saying what was erased per which request), the feature table of the FeatureSet built on it (the
same, and the next materialization reads the erased Dataset version), and stay out of the next
version ingested from a source that still holds them; the audit record holds no personal data.
One scenario, small data."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from kadence.domain.monitoring.logformat import (FeedbackRecord, PredictionRecord, decode_batch, encode_batch,
                                                 feedback_batch_key, predictions_prefix, prediction_batch_key)
from kadence.domain.synthetic import churn_frame
from kadence.sandbox import s3

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator
from .test_data_loop import SCHEMA

NAMESPACE = "erasure-loop"
SUBJECT = "c004-000003"  # churn_frame(seed=4) names its customers c004-…
T = pd.Timestamp("2026-12-01T10:00:00Z").to_pydatetime()


def ready(kubectl, kind: str, name: str, generation: int | None = None) -> dict | None:
    obj = get_json(kubectl, NAMESPACE, kind, name)
    found = condition(obj, "Ready")
    if generation is not None and (obj.get("status") or {}).get("observedGeneration") != generation:
        return None
    return obj if found and found["status"] == "True" else None


def fresh(feature_set: dict, dataset_version: str) -> bool:
    """Its latest version is a materialization of `dataset_version` (not a table an erasure rewrote)."""
    status = feature_set["status"]
    latest = next((v for v in status.get("versions") or [] if v["id"] == status.get("latestVersion")), {})
    return latest.get("datasetVersion") == dataset_version and not latest.get("erasures")


def objects(settings, prefix: str) -> dict[str, bytes]:
    client = s3.client(settings)
    return {o.object_name: client.get_object(settings.bucket, o.object_name).read()
            for o in client.list_objects(settings.bucket, prefix=prefix, recursive=True)}


def put(settings, key: str, data: bytes) -> None:
    s3.client(settings).put_object(settings.bucket, key, io.BytesIO(data), len(data))


@pytest.fixture(scope="module")
def scenario(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl, tmp_path_factory):
    source = tmp_path_factory.mktemp("erasure") / "churn.csv"
    source.write_text(churn_frame(120, seed=4).to_csv(index=False))
    # a served model's log: the subject's two predictions, and three of others, each labelled
    batch = [PredictionRecord(request_id=f"r{i}", time=T, model_version="1",
                              inputs={"customer_id": SUBJECT if i < 2 else f"c001-00001{i}"}, outputs={"prediction": 1})
             for i in range(5)]
    put(sandbox_s3, prediction_batch_key(NAMESPACE, "churn", "1", T), encode_batch(batch))
    put(sandbox_s3, feedback_batch_key(NAMESPACE, "churn", T, "fb"),
        encode_batch([FeedbackRecord(request_id=r.request_id, time=T, label=1) for r in batch]))
    dataset = {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": "people"},
               "spec": {"source": {"uri": f"file://{source}"}, "format": "csv", "schema": SCHEMA,
                        "quality": {"minRows": 100}}}
    request = {"apiVersion": "kadence.dev/v1alpha1", "kind": "ErasureRequest", "metadata": {"name": "forget-3"},
               "spec": {"match": {"column": "customer_id", "values": [SUBJECT]},
                        "scope": {"inferenceServices": ["churn"], "datasets": ["people"]}, "reason": "ticket 9"}}
    features = {"apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet", "metadata": {"name": "people-features"},
                "spec": {"datasetRef": {"name": "people"},
                         "features": [{"name": "calls", "expression": "log1p(support_calls)"}]}}
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE):
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(dataset))
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(features))  # it waits for the Dataset
        before = wait_for(lambda: ready(kubectl, "dataset", "people"), timeout=120, message="Dataset Ready")
        features_before = wait_for(lambda: ready(kubectl, "featureset", "people-features"), timeout=120,
                                   message="FeatureSet Ready")
        kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(request))
        erased = wait_for(lambda: ready(kubectl, "erasurerequest", "forget-3"), timeout=120,
                          message="ErasureRequest Ready")
        repointed = wait_for(lambda: (lambda d: d if d["status"]["latestVersion"] != before["status"]["latestVersion"]
                                      else None)(get_json(kubectl, NAMESPACE, "dataset", "people")),
                             timeout=60, message="Dataset re-pointed to the erased version")
        # the source still holds the subject: a new generation ingests it again, through the guard
        kubectl("patch", "-n", NAMESPACE, "dataset", "people", "--type", "merge", "-p",
                json.dumps({"spec": {"quality": {"minRows": 101}}}))
        later = wait_for(lambda: (lambda d: d if d["status"].get("lastJob", "").find("-g2") > 0 else None)(
            get_json(kubectl, NAMESPACE, "dataset", "people")), timeout=120, message="second ingest recorded")
        erased_version = repointed["status"]["latestVersion"]  # the FeatureSet materialized it meanwhile
        rematerialized = wait_for(lambda: (lambda f: f if f and fresh(f, erased_version) else None)(
            ready(kubectl, "featureset", "people-features")), timeout=90,
                                  message="FeatureSet materialized from the erased Dataset version")
        explained = kubectl("explain", "-n", NAMESPACE, "erasurerequests.spec.scope").stdout
        yield {"before": before, "erased": erased, "repointed": repointed, "later": later, "explained": explained,
               "features_before": features_before, "rematerialized": rematerialized,
               "table": kubectl("get", "-n", NAMESPACE, "er").stdout}


def test_the_request_becomes_ready_with_what_each_store_erased(scenario):
    status = scenario["erased"]["status"]
    stores = {(s["store"], s["name"]): s for s in status["stores"]}
    assert stores[("PredictionLog", "churn")]["erasedRows"] == 4  # two predictions, their two labels
    [version] = stores[("DatasetSnapshot", "people")]["versions"]
    assert version["replaced"] == scenario["before"]["status"]["latestVersion"] and version["erasedRows"] == 1
    assert status["erasedRows"] == 6 and condition(scenario["erased"], "Erased")["reason"] == "Erased"  # + its table
    assert "forget-3" in scenario["table"] and "customer_id" in scenario["table"]


def test_the_dataset_now_points_at_the_erased_version_with_its_lineage(scenario, sandbox_s3):
    status = scenario["repointed"]["status"]
    old = scenario["before"]["status"]["latestVersion"]
    assert status["latestRows"] == 119
    assert status["versions"][0]["erasures"] == [{"request": "forget-3", "erasedRows": 1, "replaces": old}]
    stored = objects(sandbox_s3, f"datasets/{NAMESPACE}/people/")
    assert not any(f"/{old}/" in key for key in stored), "the snapshot that held the subject is gone"
    data = pd.read_parquet(io.BytesIO(stored[f"datasets/{NAMESPACE}/people/{status['latestVersion']}/data.parquet"]))
    assert len(data) == 119 and SUBJECT not in set(data["customer_id"])


def test_the_featureset_replaces_its_erased_table_and_materializes_the_erased_dataset_version(scenario, sandbox_s3):
    old = scenario["features_before"]["status"]["latestVersion"]
    [replaced] = next(s for s in scenario["erased"]["status"]["stores"]
                      if (s["store"], s["name"]) == ("FeatureSetSnapshot", "people-features"))["versions"]
    assert replaced["replaced"] == old and replaced["erasedRows"] == 1 and replaced["rows"] == 119
    assert replaced["datasetVersion"] == scenario["repointed"]["status"]["latestVersion"]
    status = scenario["rematerialized"]["status"]
    by_id = {v["id"]: v for v in status["versions"]}
    assert old not in by_id and by_id[replaced["version"]]["erasures"] == [
        {"request": "forget-3", "erasedRows": 1, "replaces": old}]
    assert status["latestVersion"] not in (old, replaced["version"]), "the erased Dataset version is materialized anew"
    stored = objects(sandbox_s3, f"features/{NAMESPACE}/people-features/")
    assert not any(f"/{old}/" in key for key in stored), "the feature table that held the subject is gone"
    for version in (replaced["version"], status["latestVersion"]):
        table = pd.read_parquet(io.BytesIO(stored[f"features/{NAMESPACE}/people-features/{version}/features.parquet"]))
        assert len(table) == 119 and SUBJECT not in set(table["customer_id"])


def test_the_logs_keep_only_the_others_and_the_audit_holds_no_personal_data(scenario, sandbox_s3):
    logged = [r for key, data in objects(sandbox_s3, predictions_prefix(NAMESPACE, "churn")).items()
              for r in decode_batch(key, data)]
    assert sorted(r["requestId"] for r in logged) == ["r2", "r3", "r4"]
    [audit] = objects(sandbox_s3, f"monitoring/{NAMESPACE}/_erasures/audit/").values()
    assert SUBJECT.encode() not in audit and json.loads(audit)["reason"] == "ticket 9"


def test_a_later_version_from_a_source_still_holding_the_subject_keeps_it_out(scenario):
    later, erased = scenario["later"]["status"], scenario["repointed"]["status"]
    # the guard drops the subject's row again: the same content, so the very version the erasure wrote
    assert later["latestRows"] == 119 and later["latestVersion"] == erased["latestVersion"], later
    assert later["versions"][0]["erasures"] == erased["versions"][0]["erasures"]


def test_kubectl_explain_describes_the_scope(scenario):
    assert "inferenceServices" in scenario["explained"] and "datasets" in scenario["explained"]
