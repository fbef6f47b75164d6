"""Datasets and FeatureSets in the sandbox, driven with kubectl as a user would (issue 5)."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from kadence.domain.synthetic import churn_frame
from kadence.sandbox import s3

from .conftest import wait_for
from .operator_process import condition, get_json, running_operator

NAMESPACE = "data-loop"
RAW_KEY = f"raw/{NAMESPACE}/churn.csv"

SCHEMA = {
    "target": "churned",
    "entityColumn": "customer_id",
    "columns": [
        {"name": "customer_id", "type": "string", "nullable": False},
        {"name": "signup_date", "type": "datetime"},
        {"name": "tenure_months", "type": "int", "min": 0, "max": 120},
        {"name": "monthly_charges", "type": "float", "min": 0},
        {"name": "support_calls", "type": "int", "min": 0},
        {"name": "contract", "type": "category", "allowedValues": ["month-to-month", "one-year", "two-year"]},
        {"name": "payment_method", "type": "category"},
        {"name": "senior", "type": "bool"},
        {"name": "churned", "type": "int", "nullable": False},
    ],
}


def dataset(name: str, uri: str, refresh: str | None = None) -> dict:
    spec = {"source": {"uri": uri}, "format": "csv", "schema": SCHEMA, "quality": {"minRows": 100}}
    if refresh:
        spec["refreshInterval"] = refresh
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset", "metadata": {"name": name}, "spec": spec}


def csv_bytes(rows: int, seed: int) -> bytes:
    return churn_frame(rows, seed=seed).to_csv(index=False).encode()


def upload(settings: s3.S3Settings, key: str, data: bytes) -> None:
    s3.client(settings).put_object(settings.bucket, key, io.BytesIO(data), len(data), content_type="text/csv")


@pytest.fixture(scope="module")
def operator(sandbox_apiserver, sandbox_node, sandbox_s3, sandbox_kubeconfig, kubectl):
    with running_operator(sandbox_apiserver, sandbox_kubeconfig, kubectl, sandbox_s3, NAMESPACE) as process:
        yield process


def apply(kubectl, body: dict) -> None:
    kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(body))


def ready(kubectl, kind: str, name: str) -> dict | None:
    obj = get_json(kubectl, NAMESPACE, kind, name)
    found = condition(obj, "Ready")
    return obj if found and found["status"] == "True" else None


def test_a_dataset_from_a_local_file_becomes_ready_with_its_snapshot_in_s3(operator, kubectl, sandbox_s3, tmp_path):
    path = tmp_path / "churn.csv"
    path.write_bytes(csv_bytes(400, seed=1))
    apply(kubectl, dataset("local-churn", f"file://{path}"))
    obj = wait_for(lambda: ready(kubectl, "dataset", "local-churn"), timeout=120, message="Dataset Ready")
    status = obj["status"]
    assert status["latestRows"] == 400
    assert condition(obj, "Validated")["status"] == "True"
    version = status["latestVersion"]
    keys = {o.object_name for o in s3.client(sandbox_s3).list_objects(
        sandbox_s3.bucket, prefix=f"datasets/{NAMESPACE}/local-churn/{version}/", recursive=True)}
    assert {f"datasets/{NAMESPACE}/local-churn/{version}/{name}"
            for name in ("data.parquet", "profile.json", "manifest.json")} <= keys
    assert "VALIDATED" in kubectl("get", "datasets", "-n", NAMESPACE).stdout


def test_an_s3_dataset_gets_a_version_per_content_and_keeps_the_good_one_when_a_rule_breaks(operator, kubectl,
                                                                                            sandbox_s3):
    upload(sandbox_s3, RAW_KEY, csv_bytes(300, seed=2))
    apply(kubectl, dataset("s3-churn", f"s3://{sandbox_s3.bucket}/{RAW_KEY}", refresh="3s"))
    first = wait_for(lambda: ready(kubectl, "dataset", "s3-churn"), timeout=120, message="first version")
    first_version = first["status"]["latestVersion"]

    # Refreshes of unchanged content make no new version.
    job_before = first["status"]["lastJob"]
    unchanged = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "dataset", "s3-churn"))
                         and o["status"].get("lastJob") != job_before and o, timeout=60, message="a refresh")
    assert unchanged["status"]["latestVersion"] == first_version
    assert [v["id"] for v in unchanged["status"]["versions"]] == [first_version]

    # New content makes a second version.
    upload(sandbox_s3, RAW_KEY, csv_bytes(350, seed=3))
    second = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "dataset", "s3-churn"))
                      and o["status"].get("latestVersion") != first_version and o, timeout=90,
                      message="second version")
    assert second["status"]["latestRows"] == 350
    assert [v["id"] for v in second["status"]["versions"]][:2] == [second["status"]["latestVersion"], first_version]

    # Content that breaks a rule (too few rows) is refused; the second version stays current.
    upload(sandbox_s3, RAW_KEY, csv_bytes(20, seed=4))
    refused = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "dataset", "s3-churn"))
                       and (c := condition(o, "Validated")) and c["status"] == "False" and o, timeout=90,
                       message="Validated=False")
    validated = condition(refused, "Validated")
    assert "minRows" in validated["message"] and "20" in validated["message"]
    assert refused["status"]["latestVersion"] == second["status"]["latestVersion"]
    assert condition(refused, "Ready")["status"] == "True"
    events = json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json",
                                "--field-selector", "involvedObject.name=s3-churn").stdout)["items"]
    assert any(e["type"] == "Warning" and e["reason"] == "ValidationFailed" for e in events)


def test_a_featureset_materializes_the_datasets_version_and_lists_its_catalog(operator, kubectl, tmp_path):
    path = tmp_path / "fs-churn.csv"
    path.write_bytes(csv_bytes(300, seed=5))
    apply(kubectl, dataset("fs-churn", f"file://{path}"))
    apply(kubectl, {
        "apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet", "metadata": {"name": "fs-features"},
        "spec": {"datasetRef": {"name": "fs-churn"}, "target": "churned", "features": [
            {"name": "log_tenure", "expression": "log1p(tenure_months)"},
            {"name": "contract", "transform": {"type": "oneHot", "column": "contract"}},
        ]}})
    obj = wait_for(lambda: ready(kubectl, "featureset", "fs-features"), timeout=180, message="FeatureSet Ready")
    dataset_obj = get_json(kubectl, NAMESPACE, "dataset", "fs-churn")
    assert obj["status"]["datasetVersion"] == dataset_obj["status"]["latestVersion"]
    assert {f["name"] for f in obj["status"]["features"]} == {"log_tenure", "contract"}


def test_a_feature_over_a_missing_column_is_refused_with_the_features_name(operator, kubectl, tmp_path):
    path = tmp_path / "bad-fs.csv"
    path.write_bytes(csv_bytes(200, seed=6))
    apply(kubectl, dataset("bad-fs-churn", f"file://{path}"))
    apply(kubectl, {
        "apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet", "metadata": {"name": "bad-features"},
        "spec": {"datasetRef": {"name": "bad-fs-churn"}, "features": [
            {"name": "ratio", "expression": "monthly_charges / tenure_years"}]}})
    obj = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "featureset", "bad-features"))
                   and (c := condition(o, "Ready")) and c["status"] == "False" and c["reason"] != "DatasetNotReady"
                   and o, timeout=120, message="the definition refused")
    message = condition(obj, "Ready")["message"]
    assert "ratio" in message and "tenure_years" in message


def test_feedback_a_monitor_policy_publishes_makes_exactly_one_new_version_of_a_dataset_that_opts_in(
        operator, kubectl, sandbox_s3):
    explained = kubectl("explain", "datasets.spec.feedback").stdout
    assert "monitorPolicy" in explained or "from" in explained, explained
    source_key, feedback_key = f"raw/{NAMESPACE}/appended.csv", f"monitoring/{NAMESPACE}/fb-policy/w1/feedback.parquet"
    upload(sandbox_s3, source_key, csv_bytes(300, seed=8))
    body = dataset("fb-churn", f"s3://{sandbox_s3.bucket}/{source_key}")
    body["spec"]["feedback"] = {"from": [{"monitorPolicy": "fb-policy"}]}
    apply(kubectl, body)
    first = wait_for(lambda: ready(kubectl, "dataset", "fb-churn"), timeout=120, message="first version")
    first_version = first["status"]["latestVersion"]
    waiting = condition(first, "Feedback")
    assert (waiting["status"], waiting["reason"]) == ("False", "NoFeedbackPublished")
    assert "MonitorPolicy fb-policy not found" in waiting["message"]

    # What a MonitorPolicy exports: the logged inputs (no signup_date), the label, and a column
    # the schema does not have; it publishes the file in its typed status.feedback (here the test
    # writes that status through the status subresource, as the operator does).
    feedback = churn_frame(40, seed=9).drop(columns=["signup_date"]).assign(request_id="r")
    buffer = io.BytesIO()
    feedback.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    s3.client(sandbox_s3).put_object(sandbox_s3.bucket, feedback_key, io.BytesIO(data), len(data))
    uri = f"s3://{sandbox_s3.bucket}/{feedback_key}"
    apply(kubectl, {"apiVersion": "kadence.dev/v1alpha1", "kind": "MonitorPolicy", "metadata": {"name": "fb-policy"},
                    "spec": {"inferenceServiceRef": {"name": "no-service-needed"}, "interval": "1h", "drift": {}}})
    published = {"uri": uri, "rows": 40, "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z",
                 "sha256": hashlib.sha256(data).hexdigest()}
    kubectl("patch", "-n", NAMESPACE, "monitorpolicy", "fb-policy", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"feedback": published}}))

    second = wait_for(lambda: (o := get_json(kubectl, NAMESPACE, "dataset", "fb-churn"))
                      and o["status"].get("latestVersion") != first_version and o, timeout=120,
                      message="a version with the feedback rows")
    status = second["status"]
    assert status["latestRows"] == 340
    newest, previous = status["versions"]
    assert newest["feedback"] == [{"monitorPolicy": "fb-policy", **published}]
    assert "feedback" not in previous and previous["id"] == first_version
    assert condition(second, "Feedback")["reason"] == "FeedbackRead"
    assert "kadence.dev/appended-data" not in (second["metadata"].get("annotations") or {})

    # One ingest for the source, exactly one more for the feedback (each leaves its result).
    runs = {o.object_name.split("/")[4] for o in s3.client(sandbox_s3).list_objects(
        sandbox_s3.bucket, prefix=f"datasets/{NAMESPACE}/fb-churn/runs/", recursive=True)}
    assert runs == {first["status"]["lastJob"], status["lastJob"]}
    jobs = json.loads(kubectl("get", "jobs", "-n", NAMESPACE, "-o", "json",
                              "-l", "kadence.dev/owner-name=fb-churn").stdout)["items"]
    assert [j["metadata"]["name"] for j in jobs] == [status["lastJob"]]
    events = json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json",
                                "--field-selector", "involvedObject.name=fb-churn").stdout)["items"]
    created = [e["message"] for e in events if e["reason"] == "VersionCreated"]
    assert len(created) == 2 and any("340 rows, including 40 labelled predictions of fb-policy" in m for m in created)
    kubectl("delete", "monitorpolicy", "fb-policy", "-n", NAMESPACE, "--wait=false")
