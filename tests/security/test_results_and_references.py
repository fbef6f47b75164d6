"""A result counts only when its own workload wrote it; a spec may point only at what its
namespace may reach (pure; the sandbox test drives both through the operator)."""

from __future__ import annotations

import json

import pytest

from kadence.api.dataset import DatasetSpec
from kadence.api.modelversion import ModelVersionSpec
from kadence.api.references import FILE_REFUSED, check_uri, problems, sandbox_mode
from kadence.builders.jobs import controlled_by, owner_env, workload_job
from kadence.builders.meta import owner_reference
from kadence.handlers import tenancy as glue
from kadence.storage import StoredObject

OWNER = {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset",
         "metadata": {"name": "churn", "namespace": "team-a", "uid": "uid-now"}}
KEY = "datasets/team-a/churn/runs/r1/result.json"


def stored(key=KEY, uid="uid-now", data=b'{"ok": true}', **more):
    meta = {"kadence-owner-uid": uid, **more} if uid else {}
    return StoredObject(key=key, data=data, metadata=meta)


@pytest.mark.parametrize("obj, fragment", [
    (stored(), None),
    (stored(uid=None), "carries no owner"),
    (stored(uid="uid-before", **{"kadence-owner-kind": "Dataset", "kadence-owner-namespace": "team-a",
                                 "kadence-owner-name": "churn"}), "Dataset/team-a/churn (uid uid-before)"),
    (stored(key="datasets/team-b/churn/runs/r1/result.json"), "outside namespace team-a"),
], ids=["its own workload's result is accepted", "a result without an owner is refused",
        "a result of an earlier object of the same name is refused", "a key in another namespace is refused"])
def test_a_result_is_accepted_only_from_the_objects_own_workload(obj, fragment):
    reason = glue.foreign_reason(obj, OWNER)
    assert (reason is None) if fragment is None else (fragment in reason)


class FakeStore:
    def __init__(self, objects):
        self.objects = objects

    def get_object(self, key):
        if key not in self.objects:
            raise FileNotFoundError(key)
        return self.objects[key]


def test_a_forged_result_is_ignored_with_one_warning_event_however_often_it_is_read(monkeypatch):
    events = []
    monkeypatch.setattr(glue.kopf, "event", lambda body, **kw: events.append(kw))
    forged = "datasets/team-a/churn/runs/r2/result.json"
    store = FakeStore({KEY: stored(), forged: stored(key=forged, uid="uid-attacker")})
    for _ in range(3):
        found = glue.owned_results(store, {"r1": KEY, "r2": forged, "r3": "datasets/team-a/churn/none"}, OWNER)
        assert found == {"r1": {"ok": True}}
    assert len(events) == 1 and events[0]["type"] == "Warning" and events[0]["reason"] == "ForeignResult"
    assert forged in events[0]["message"]


def test_a_job_names_its_owner_reads_its_namespaces_tenant_secret_and_bounds_its_scratch_space():
    job = workload_job(OWNER, "churn-ingest-1", "ingest", ["kadence", "ingest"])
    pod = job["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["KADENCE_OWNER_UID"]["value"] == "uid-now" and env["KADENCE_OWNER_NAMESPACE"]["value"] == "team-a"
    assert env["KADENCE_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "kadence-tenant-storage"
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}]
    assert controlled_by(job, OWNER)
    assert not controlled_by(job, {"metadata": {**OWNER["metadata"], "uid": "uid-other"}})
    labelled_alike = {"metadata": {"ownerReferences": [{**owner_reference(OWNER), "controller": False}]}}
    assert not controlled_by(labelled_alike, OWNER)
    assert [e["name"] for e in owner_env(OWNER)] == ["KADENCE_OWNER_KIND", "KADENCE_OWNER_NAME",
                                                     "KADENCE_OWNER_NAMESPACE", "KADENCE_OWNER_UID"]


def dataset(uri=None, credentials=None, **source):
    src = {"uri": uri, "credentialsSecret": credentials} if uri else source
    return DatasetSpec.model_validate({"source": {k: v for k, v in src.items() if v is not None},
                                       "schema": {"columns": [{"name": "x", "type": "float"}]}})


META = {"namespace": "team-a", "name": "churn"}


@pytest.mark.parametrize("uri, credentials, sandbox, expected", [
    ("file:///etc/passwd", None, False, FILE_REFUSED),
    ("file:///tmp/data.csv", None, True, None),
    ("s3://kadence/datasets/team-a/raw/", None, False, None),
    ("s3://kadence/datasets/team-a", None, False, None),
    ("s3://kadence/datasets/team-b/raw/x.csv", None, False, "outside namespace team-a's storage"),
    ("s3://kadence/datasets/team-a/../team-b/x.csv", None, False, "climbs out of its prefix"),
    ("s3://kadence/runs/team-b/x.csv", "my-creds", False, "outside namespace team-a's storage"),
    ("s3://partner-data/x.csv", "partner-creds", False, None),
    ("s3://partner-data/x.csv", None, False, "is not Kadence's bucket"),
    ("https://example.com/x.csv", None, False, None),
], ids=["file:// outside the sandbox", "file:// in the sandbox", "its own prefix", "its own root without a slash",
        "another namespace's prefix", "a climb out of its prefix", "another namespace even with credentials",
        "another bucket with its own credentials", "another bucket without credentials", "https"])
def test_a_dataset_source_may_name_only_what_its_namespace_may_reach(uri, credentials, sandbox, expected):
    found = problems("Dataset", dataset(uri, credentials), META, bucket="kadence", sandbox=sandbox)
    if expected is None:
        assert found == []
    else:
        assert found[0][0] == "spec.source.uri" and expected in found[0][1]


def test_model_artifacts_are_checked_too():
    version = ModelVersionSpec.model_validate({"model": "churn", "version": 1, "artifact": {
        "uri": "s3://kadence/runs/team-b/train-1/model.skops", "sha256": "0" * 64}})
    found = problems("ModelVersion", version, META, bucket="kadence", sandbox=False)
    assert found[0][0] == "spec.artifact.uri" and "outside namespace team-a" in found[0][1]
    assert check_uri("s3://other/model.skops", "team-a", "kadence", False, may_leave_bucket=False).startswith(
        "s3://other/ is not Kadence's bucket")


def test_sandbox_mode_is_an_explicit_switch():
    assert sandbox_mode({"KADENCE_SANDBOX": "1"}) and sandbox_mode({"KADENCE_SANDBOX": "true"})
    assert not sandbox_mode({}) and not sandbox_mode({"KADENCE_SANDBOX": "0"})


def test_a_monitor_jobs_annotation_cannot_point_the_policy_at_another_key():
    from kadence.planners.monitorpolicy.evaluation import result_key_of

    policy = {"metadata": {"name": "watch", "namespace": "team-a", "uid": "p-1"}}

    def job(name, key=None, candidate=None):
        annotations = {k: v for k, v in (("kadence.dev/result-key", key), ("kadence.dev/candidate", candidate)) if v}
        return {"metadata": {"name": name, "annotations": annotations}}

    own = "monitoring/team-a/watch/20260102T030000Z/result.json"
    assert result_key_of(policy, job("watch-monitor-1", own)) == own
    for forged in ("monitoring/team-a/other-policy/20260102T030000Z/result.json",
                   "monitoring/team-b/watch/20260102T030000Z/result.json",
                   "runs/team-a/train-1/result.json",
                   "monitoring/team-a/watch/../other/20260102T030000Z/result.json"):
        assert result_key_of(policy, job("watch-monitor-1", forged)) is None, forged
    # a comparison's key follows from its name, whatever its annotation says
    assert result_key_of(policy, job("watch-compare-v7", "runs/team-b/x.json", candidate="7")) == \
        "monitoring/team-a/watch/comparisons/p-1/watch-compare-v7/result.json"  # keyed by the policy's uid


def shared(namespace, name, *with_namespaces):
    return {"metadata": {"namespace": namespace, "name": name},
            "spec": {"sharedWith": [{"namespace": n} for n in with_namespaces]}}


def test_a_dataset_shared_with_a_namespace_opens_only_its_own_snapshots_to_that_namespaces_datasets():
    from kadence.api.references import shared_prefixes

    everything = [shared("team-b", "churn", "team-a", "team-c"), shared("team-b", "private"),
                  shared("team-c", "leads", "team-x"), shared("team-a", "own", "team-a")]
    granted = shared_prefixes("team-a", everything)
    assert granted == ("datasets/team-b/churn/",)
    ok = dataset("s3://kadence/datasets/team-b/churn/v1/data.parquet")
    assert problems("Dataset", ok, META, bucket="kadence", sandbox=False, granted=granted) == []
    for uri in ("s3://kadence/datasets/team-b/private/v1/data.parquet", "s3://kadence/datasets/team-b/churnx/x",
                "s3://kadence/runs/team-b/churn/model.skops", "s3://kadence/datasets/team-b/churn/../private/x"):
        assert problems("Dataset", dataset(uri), META, bucket="kadence", sandbox=False, granted=granted), uri
    # a grant opens Dataset sources only, never model artifacts
    version = ModelVersionSpec.model_validate({"model": "churn", "version": 1, "artifact": {
        "uri": "s3://kadence/datasets/team-b/churn/v1/data.parquet", "sha256": "0" * 64}})
    assert problems("ModelVersion", version, META, bucket="kadence", sandbox=False, granted=granted)
    refused = problems("Dataset", dataset("s3://kadence/datasets/team-b/private/x"), META, bucket="kadence",
                       sandbox=False, granted=granted)
    assert "unless a Dataset there shares it (spec.sharedWith: [{namespace: team-a}])" in refused[0][1]
