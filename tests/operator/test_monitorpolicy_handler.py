"""The MonitorPolicy handler's pure resolution steps: which model is served, what the planner
learns about it, which candidate a policy's retrains produced, and which references fail."""

from __future__ import annotations

import pytest

from kadence.api.monitorpolicy import MonitorPolicySpec
from kadence.domain.monitoring.triggers import DatasetVersionInfo
from kadence.domain.data.feedback import feedback_digest
from kadence.domain.monitoring.retrain import Feedback, RetrainInputs, training_spec_hash
from kadence.handlers.monitorpolicy import (drift_reference_uri, feedback_ingest_failure, latest_dataset_version,
                                            model_info, model_inputs, policy_feedback, profile_uri, retrain_data,
                                            retrain_data_names, retrain_run, retrain_source, retrained_candidate,
                                            served_version, target_column)
from kadence.planners.monitorpolicy import RetrainData, RetrainRun

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


SHA_FB = "f" * 64
FOLDED = {"monitorPolicy": "p", "uri": "s3://kadence/monitoring/ns/p/x/feedback.parquet", "rows": 1200,
          "from": "2026-11-01T00:00:00Z", "to": "2026-11-23T11:00:00Z", "sha256": SHA_FB}


def with_feedback(dataset: dict, opted_in: bool, folded: dict[str, list[dict]]) -> dict:
    spec = {**dataset["spec"], **({"feedback": {"from": [{"monitorPolicy": "p"}]}} if opted_in else {})}
    versions = [{**v, **({"feedback": folded[v["id"]]} if v["id"] in folded else {})}
                for v in dataset["status"]["versions"]]
    return {**dataset, "spec": spec, "status": {**dataset["status"], "versions": versions}}


FOLDED_FEEDBACK = Feedback(1200, SHA_FB, uri=FOLDED["uri"], start=FOLDED["from"], end=FOLDED["to"])


@pytest.mark.parametrize("opted_in, folded, features, expected", [
    pytest.param(False, {}, None, RetrainData("churn", latest_version="v2", versions=("v2", "v1")),
                 id="a dataset that does not opt in"),
    pytest.param(True, {"v2": [FOLDED]}, None,
                 RetrainData("churn", opts_in=True, latest_version="v2", feedback_in={"v2": FOLDED_FEEDBACK},
                             versions=("v2", "v1")), id="the version holding the policy's feedback"),
    pytest.param(True, {"v2": [{**FOLDED, "monitorPolicy": "other"}]}, None,
                 RetrainData("churn", opts_in=True, latest_version="v2", versions=("v2", "v1")),
                 id="another policy's feedback is not this policy's"),
    pytest.param(True, {"v2": [FOLDED]}, [{"id": "f2", "datasetVersion": "v2"}, {"id": "f1", "datasetVersion": "v1"}],
                 RetrainData("churn", "churn-features", True, "v2", {"v2": FOLDED_FEEDBACK}, ("v2", "v1"),
                             {"v2": "f2", "v1": "f1"}), id="the feature set versions by dataset version"),
])
def test_retrain_data_tells_which_versions_hold_the_policys_feedback(opted_in, folded, features, expected):
    feature_set = {"status": {"versions": features}} if features is not None else None
    found = retrain_data("p", "churn-features" if features is not None else None, feature_set,
                         with_feedback(DATASET, opted_in, folded))
    assert found == expected
    assert found.version_with(SHA_FB) == ("v2" if expected.feedback_in else None)


def test_retrain_data_is_unknown_while_its_feature_set_or_dataset_is_missing():
    assert retrain_data("p", "churn-features", None, DATASET) is None
    assert retrain_data("p", None, None, None) is None


def test_the_feedback_in_the_serving_models_data_version_is_this_policys_entry():
    entry = {"id": "v2", "feedback": [{**FOLDED, "monitorPolicy": "other", "sha256": "0" * 64}, FOLDED]}
    assert policy_feedback(entry, "p") == FOLDED_FEEDBACK
    assert policy_feedback(entry, "nobody") is None and policy_feedback(None, "p") is None


@pytest.mark.parametrize("phase, last_job, failure", [
    pytest.param("Invalid", "churn-ingest-g1-f{digest}", "version v2 stays current; the last ingest failed: x",
                 id="the ingest that read the published feedback failed"),
    pytest.param("Invalid", "churn-ingest-g1-fother", None, id="an ingest of other feedback is not about this one"),
    pytest.param("Ready", "churn-ingest-g1-f{digest}", None, id="a valid ingest is no failure"),
])
def test_a_dataset_refusing_the_published_feedback_is_noticed(phase, last_job, failure):
    dataset = {"metadata": {"name": "churn"},
               "status": {"phase": phase, "lastJob": last_job.format(digest=feedback_digest([SHA_FB])),
                          "conditions": [{"type": "Ingested", "status": "True", "reason": "PreviousVersionCurrent",
                                          "message": "version v2 stays current; the last ingest failed: x"}]}}
    assert feedback_ingest_failure(dataset, {"sha256": SHA_FB}) == failure
    assert feedback_ingest_failure(dataset, None) is None


def test_registered_versions_say_what_they_were_trained_on_when_their_lineage_records_the_spec_hash():
    spec_hash = training_spec_hash({"model": "churn"})
    recorded = version(2, "Candidate")
    recorded["spec"]["lineage"].update(trainingSpecHash=spec_hash, featureSetVersion="f2")
    assert model_inputs([version(1, "Production"), recorded]) == [
        ("churn-v2", RetrainInputs(dataset="churn", dataset_version="v1", spec_hash=spec_hash,
                                   feature_set="churn-features", feature_set_version="f2"))]


def test_a_retrain_training_run_is_followed_by_its_phase_model_and_trigger():
    run = {"metadata": {"name": "p-retrain-1", "creationTimestamp": "2026-11-23T12:00:00Z",
                        "annotations": {"kadence.dev/retrain-trigger": "breach"}},
           "status": {"phase": "Succeeded", "identicalTo": "churn-v1",
                      "conditions": [{"type": "Ready", "status": "True", "message": "identical"}]}}
    found = retrain_run(run)
    assert (found.name, found.phase, found.identical_to, found.trigger, found.message) == (
        "p-retrain-1", "Succeeded", "churn-v1", "breach", "identical")
    assert found.created.isoformat() == "2026-11-23T12:00:00+00:00"
    assert isinstance(found, RetrainRun)
