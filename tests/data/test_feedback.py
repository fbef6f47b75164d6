"""Feedback folded into a Dataset: the typed contract (spec.feedback.from, the policy's
status.feedback, the version's feedback entries), read as the Dataset controller reads it."""

import pytest
from pydantic import ValidationError

from kadence.api.dataset import DatasetSpec
from kadence.domain.data.feedback import FeedbackFile, feedback_digest, file_format, published_feedback

SPEC = {"source": {"uri": "s3://kadence/raw/users.csv"}, "schema": {"columns": [{"name": "age", "type": "int"}]}}
PUBLISHED = {"uri": "s3://kadence/monitoring/ml/p/20261123T115500Z/feedback.parquet", "rows": 1200,
             "from": "2026-11-01T00:00:00Z", "to": "2026-11-23T11:00:00Z", "sha256": "f" * 64,
             "time": "2026-11-23T11:55:00Z", "job": "p-monitor-1"}


@pytest.mark.parametrize("policy, expected", [
    pytest.param({"status": {"feedback": PUBLISHED}},
                 (FeedbackFile("p", PUBLISHED["uri"], 1200, "f" * 64, "2026-11-01T00:00:00Z", "2026-11-23T11:00:00Z"),
                  None), id="a published export is read with its rows, period and digest"),
    pytest.param(None, (None, "MonitorPolicy p not found"), id="a policy that does not exist is named"),
    pytest.param({"status": {}}, (None, "MonitorPolicy p has published no feedback yet"), id="nothing published yet"),
    pytest.param({"status": {"feedback": {**PUBLISHED, "sha256": None}}},
                 (None, "MonitorPolicy p has published no feedback yet"), id="an export without digest is not read"),
])
def test_a_policys_published_feedback(policy, expected):
    assert published_feedback("p", policy) == expected


def test_a_feedback_file_is_recorded_on_the_version_with_wire_names():
    found, _ = published_feedback("p", {"status": {"feedback": PUBLISHED}})
    assert found.wire() == {"monitorPolicy": "p", "uri": PUBLISHED["uri"], "rows": 1200,
                            "from": "2026-11-01T00:00:00Z", "to": "2026-11-23T11:00:00Z", "sha256": "f" * 64}


def test_the_digest_names_the_exports_read_in_their_order():
    a, b = FeedbackFile("p", "s3://k/a.parquet", 1, "a" * 64), FeedbackFile("q", "s3://k/b.parquet", 1, "b" * 64)
    assert feedback_digest([a, b]) == feedback_digest(["a" * 64, "b" * 64])
    assert feedback_digest([a, b]) != feedback_digest([b, a]) and len(feedback_digest([a])) == 8


@pytest.mark.parametrize("uri, fmt", [
    ("s3://k/x/feedback.parquet", "parquet"), ("s3://k/x/f.CSV", "csv"), ("https://h/f.jsonl?sig=1", "jsonl"),
    ("s3://k/x/f.data", "csv"),
])
def test_a_files_format_comes_from_its_extension_else_the_datasets(uri, fmt):
    assert file_format(uri, "csv") == fmt


def test_the_dataset_opts_in_by_naming_monitor_policies():
    spec = DatasetSpec.model_validate({**SPEC, "feedback": {"from": [{"monitorPolicy": "churn-monitor"}]}})
    assert [s.monitor_policy for s in spec.feedback.from_] == ["churn-monitor"]
    assert spec.wire()["feedback"] == {"from": [{"monitorPolicy": "churn-monitor"}]}
    assert DatasetSpec.model_validate(SPEC).feedback is None


@pytest.mark.parametrize("feedback, fragment", [
    pytest.param({"from": []}, "at least 1 item", id="an empty list"),
    pytest.param({"from": [{"monitorPolicy": "p"}, {"monitorPolicy": "p"}]}, "lists monitorPolicy p more than once",
                 id="a policy listed twice"),
    pytest.param({"from": [{"monitorPolicy": "Not_A_Name"}]}, "should match pattern", id="not an object name"),
    pytest.param({"from": [{"monitorPolicy": "p", "uri": "s3://x"}]}, "Extra inputs", id="no URI of one's own"),
])
def test_a_malformed_feedback_declaration_is_refused_naming_the_problem(feedback, fragment):
    with pytest.raises(ValidationError, match=fragment):
        DatasetSpec.model_validate({**SPEC, "feedback": feedback})


def test_the_crd_lists_each_policy_once_as_a_map():
    from kadence.api.crdgen import crd_for
    from kadence.api.kinds import BY_KIND

    schema = crd_for(BY_KIND["Dataset"])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    listed = schema["properties"]["spec"]["properties"]["feedback"]["properties"]["from"]
    assert listed["x-kubernetes-list-type"] == "map" and listed["x-kubernetes-list-map-keys"] == ["monitorPolicy"]
