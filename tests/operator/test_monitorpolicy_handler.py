"""The MonitorPolicy handler's pure resolution steps: which model is served, what the planner
learns about it, which candidate a policy's retrains produced, and which references fail."""

from __future__ import annotations

import pytest

from kadence.api.monitorpolicy import MonitorPolicySpec
from kadence.domain.monitoring.triggers import DatasetVersionInfo
from kadence.handlers.monitorpolicy import (appended_ingest_failure, drift_reference_uri, latest_dataset_version, model_info, profile_uri,
                                            retrain_data, retrain_data_names, retrain_source, retrained_candidate,
                                            served_version, target_column)
from kadence.planners.monitorpolicy import RetrainData

SHA = "a" * 64


def version(number: int, stage: str | None, run: str = "base", status_stage: str | None = None,
            dataset_version: str = "v1") -> dict:
    obj = {"metadata": {"name": f"churn-v{number}", "labels": {"kadence.dev/training-run": run}},
           "spec": {"model": "churn", "version": number, "stage": stage or "Candidate",
                    "artifact": {"uri": f"s3://kadence/models/churn/{number}/model.skops", "sha256": SHA},
                    "metrics": {"f1": 0.8}, "signature": {"inputs": [{"name": "x", "type": "float"}],
                                                          "classes": ["0", "1"]},
                    "lineage": {"trainingRun": run, "dataset": "churn", "datasetVersion": dataset_version,
                                "featureSet": "churn-features"}}}
    if status_stage is not None:
        obj["status"] = {"stage": status_stage}
    return obj


DATASET = {"metadata": {"name": "churn"},
           "spec": {"schema": {"target": "churned", "columns": []}},
           "status": {"latestVersion": "v2", "latestRows": 600,
                      "versions": [{"id": "v2", "rows": 600, "uri": "s3://kadence/datasets/ns/churn/v2/"},
                                   {"id": "v1", "rows": 400, "uri": "s3://kadence/datasets/ns/churn/v1/"}]}}


def isvc(**spec) -> dict:
    return {"metadata": {"name": "churn"}, "spec": {"model": "churn", **spec}}


@pytest.mark.parametrize("spec, versions, expected", [
    ({"stage": "Production"}, [version(1, "Production", status_stage="Production"), version(2, "Candidate")],
     "churn-v1"),
    ({"stage": "Production"}, [version(1, "Production", status_stage="Archived"),
                               version(2, "Production", status_stage="Production")], "churn-v2"),
    ({"stage": "Staging"}, [version(1, "Production", status_stage="Production"),
                            version(3, "Staging", status_stage="Staging")], "churn-v3"),
    ({"version": 2}, [version(1, "Production", status_stage="Production"), version(2, "Candidate")], "churn-v2"),
    ({"stage": "Production"}, [version(1, "Candidate")], None),
    ({"version": 7}, [version(1, "Production")], None),
])
def test_the_served_version_is_the_pinned_one_or_the_newest_holding_the_stage_in_force(spec, versions, expected):
    found = served_version(isvc(**spec), versions)
    assert (found["metadata"]["name"] if found else None) == expected


def test_model_info_carries_the_artifact_hold_out_metrics_and_the_training_data_profile():
    info = model_info(version(1, "Production", dataset_version="v1"), DATASET, {"spec": {"target": "churned"}})
    assert (info.model_version, info.version) == ("churn-v1", "1")
    assert info.uri == "s3://kadence/models/churn/1/model.skops" and info.sha256 == SHA
    assert info.holdout_metrics == {"f1": 0.8}
    assert info.reference_uri == "s3://kadence/datasets/ns/churn/v1/profile.json"
    assert (info.dataset, info.dataset_version, info.dataset_rows) == ("churn", "v1", 400)
    assert info.target == "churned" and info.classes == ["0", "1"]


def test_a_training_data_version_no_longer_kept_gives_no_reference_rather_than_a_wrong_one():
    info = model_info(version(1, "Production", dataset_version="v0"), DATASET, None)
    assert info.reference_uri is None and info.dataset_rows is None
    assert info.dataset_version == "v0"


@pytest.mark.parametrize("dataset, feature_set, expected", [
    (DATASET, {"spec": {"target": "label"}}, "label"),
    (DATASET, None, "churned"),
    ({"spec": {"schema": {"columns": []}}}, None, None),
    (None, None, None),
])
def test_the_target_comes_from_the_featureset_first_then_the_dataset_schema(dataset, feature_set, expected):
    assert target_column(dataset, feature_set) == expected


def test_the_candidate_is_the_newest_candidate_from_the_policys_own_retrains():
    production = version(2, "Production", status_stage="Production")
    versions = [version(1, "Candidate", run="retrain-a"), production,
                version(3, "Candidate", run="someone-else"), version(4, "Candidate", run="retrain-b"),
                version(5, "Candidate", run="retrain-a", status_stage="Archived")]
    found = retrained_candidate(versions, {"retrain-a", "retrain-b"}, production)
    assert found["metadata"]["name"] == "churn-v4"


def test_no_candidate_when_the_policy_has_not_retrained():
    production = version(1, "Production", status_stage="Production")
    assert retrained_candidate([production, version(2, "Candidate", run="manual")], set(), production) is None


def test_the_latest_dataset_version_is_the_one_status_names_with_its_rows():
    assert latest_dataset_version(DATASET) == DatasetVersionInfo("v2", 600)
    assert latest_dataset_version({"status": {}}) is None
    assert latest_dataset_version(None) is None


@pytest.mark.parametrize("dataset, version_id, expected", [
    (DATASET, None, ("s3://kadence/datasets/ns/churn/v2/profile.json", None)),
    (DATASET, "v1", ("s3://kadence/datasets/ns/churn/v1/profile.json", None)),
    (DATASET, "v9", (None, "Dataset churn has no version v9 (kept versions are listed in its status)")),
    ({"status": {}}, None, (None, "Dataset churn has no validated version yet")),
    (None, None, (None, "Dataset churn not found")),
])
def test_the_drift_reference_resolves_to_a_kept_versions_profile_or_says_why_not(dataset, version_id, expected):
    assert drift_reference_uri(dataset, "churn", version_id) == expected


def test_profile_uri_joins_with_or_without_a_trailing_slash():
    assert profile_uri("s3://b/datasets/x/v1") == profile_uri("s3://b/datasets/x/v1/") == "s3://b/datasets/x/v1/profile.json"


TEMPLATE = {"featureSetRef": {"name": "churn-features"}, "task": "classification", "objective": {"metric": "f1"},
            "model": "churn"}


def policy(**retrain) -> MonitorPolicySpec:
    return MonitorPolicySpec.model_validate({"inferenceServiceRef": {"name": "churn"},
                                             "performance": {"metric": "f1", "threshold": 0.5},
                                             "actions": {"retrain": retrain}})


def test_a_retrain_template_is_used_as_is_in_wire_form():
    run_spec, problems = retrain_source(policy(template=TEMPLATE), None)
    assert problems == {}
    assert run_spec["featureSetRef"] == {"name": "churn-features"} and run_spec["model"] == "churn"


def test_a_retrain_cloned_from_a_run_takes_that_runs_spec():
    run_spec, problems = retrain_source(policy(fromTrainingRun="base"), {"spec": TEMPLATE})
    assert (run_spec, problems) == (TEMPLATE, {})


def test_a_missing_run_to_clone_is_reported_against_its_field():
    run_spec, problems = retrain_source(policy(fromTrainingRun="gone"), None)
    assert run_spec is None
    assert problems == {"actions.retrain.fromTrainingRun": "TrainingRun gone not found"}


def test_a_disabled_retrain_needs_no_source():
    assert retrain_source(policy(enabled=False), None) == (None, {})


def test_model_info_names_the_signature_inputs_drift_is_judged_on():
    assert model_info(version(1, "Production"), DATASET, None).inputs == ["x"]


@pytest.mark.parametrize("spec, names", [
    ({"featureSetRef": {"name": "churn-features"}}, ("churn-features", None)),
    ({"datasetRef": {"name": "churn", "version": "v1"}}, (None, "churn")),
    (None, (None, None)),
])
def test_the_retrain_reads_its_feature_set_or_its_dataset(spec, names):
    assert retrain_data_names(spec) == names


FEEDBACK = "s3://kadence/monitoring/ns/p/20261123T115500Z/labelled.parquet"


def with_appended(dataset: dict, annotation: str | None, appended: dict[str, list[str]]) -> dict:
    body = {**dataset, "metadata": {**dataset["metadata"], "annotations": {}}}
    if annotation is not None:
        body["metadata"]["annotations"]["kadence.dev/appended-data"] = annotation
    body["status"] = {**dataset["status"], "versions": [{**v, "appended": appended.get(v["id"])}
                                                        for v in dataset["status"]["versions"]]}
    return body


@pytest.mark.parametrize("annotation, appended, features, expected", [
    pytest.param(None, {}, None, RetrainData("churn"), id="nothing appended yet"),
    pytest.param(f'[{{"uri": "{FEEDBACK}"}}]', {"v2": [FEEDBACK], "v1": []}, None,
                 RetrainData("churn", None, (FEEDBACK,), {FEEDBACK: "v2"}), id="the version holding the feedback"),
    pytest.param("not json", {}, None, RetrainData("churn"), id="a broken annotation counts as nothing requested"),
    pytest.param(f'[{{"uri": "{FEEDBACK}"}}]', {"v2": [FEEDBACK]},
                 [{"id": "f2", "datasetVersion": "v2"}, {"id": "f1", "datasetVersion": "v1"}],
                 RetrainData("churn", "churn-features", (FEEDBACK,), {FEEDBACK: "v2"}, {"v2": "f2", "v1": "f1"}),
                 id="the feature set versions by dataset version"),
])
def test_retrain_data_tells_which_versions_hold_appended_feedback(annotation, appended, features, expected):
    feature_set = {"status": {"versions": features}} if features is not None else None
    found = retrain_data("churn-features" if features is not None else None, feature_set,
                         with_appended(DATASET, annotation, appended))
    assert found == expected


def test_retrain_data_is_unknown_while_its_feature_set_or_dataset_is_missing():
    assert retrain_data("churn-features", None, DATASET) is None
    assert retrain_data(None, None, None) is None


@pytest.mark.parametrize("phase, last_job, failure", [
    pytest.param("Invalid", "churn-ingest-g1-a{digest}", "version v2 stays current; the last ingest failed: x",
                 id="the ingest that read the list failed"),
    pytest.param("Invalid", "churn-ingest-g1-aother", None, id="an ingest of another list is not about this feedback"),
    pytest.param("Ready", "churn-ingest-g1-a{digest}", None, id="a valid ingest is no failure"),
])
def test_a_dataset_refusing_the_appended_feedback_is_noticed(phase, last_job, failure):
    from kadence.domain.data.appended import appended_digest

    dataset = {"metadata": {"name": "churn"},
               "status": {"phase": phase, "lastJob": last_job.format(digest=appended_digest([FEEDBACK])),
                          "conditions": [{"type": "Ready", "status": "True", "reason": "PreviousVersionCurrent",
                                          "message": "version v2 stays current; the last ingest failed: x"}]}}
    assert appended_ingest_failure(dataset, (FEEDBACK,)) == failure
