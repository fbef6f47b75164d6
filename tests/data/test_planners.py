"""Dataset and FeatureSet planners: table tests of Jobs, status, conditions and Events."""

import json
from datetime import datetime, timezone

import pytest

from kadence.api.dataset import DatasetStatus
from kadence.api.featureset import FeatureSetStatus
from kadence.builders.jobs import job_state, workload_job
from kadence.planners.dataset import DatasetObservation, ingest_job_name, parse_duration, plan_dataset
from kadence.planners.dataset import results_to_fetch as dataset_results_to_fetch
from kadence.planners.featureset import FeatureSetObservation, materialize_job_name, plan_featureset
from kadence.planners.featureset import results_to_fetch as featureset_results_to_fetch

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
SCHEMA = {"columns": [{"name": "id", "type": "int"}, {"name": "age", "type": "float"},
                      {"name": "plan", "type": "category"}, {"name": "churn", "type": "int"}],
          "target": "churn", "entityColumn": "id"}


def dataset(status=None, generation=1, **spec):
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "Dataset",
            "metadata": {"name": "users", "namespace": "ml", "uid": "u-1", "generation": generation},
            "spec": {"source": {"uri": "s3://kadence/raw/users.csv"}, "schema": SCHEMA, **spec},
            "status": status or {}}


def job(name, state="Running"):
    conditions = {"Running": [], "Succeeded": [{"type": "Complete", "status": "True"}],
                  "Failed": [{"type": "Failed", "status": "True"}]}[state]
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


VALID = {"outcome": "Valid", "valid": True, "version": "v2", "rows": 10, "uri": "s3://kadence/datasets/ml/users/v2/",
         "sha256": "ab" * 32, "created": True, "createdAt": "2026-01-01T11:59:00Z",
         "ruleResults": [{"rule": "minRows", "passed": True, "message": "minRows: 10 rows, at least 1 required"}]}
INVALID = {"outcome": "Invalid", "valid": False, "version": "v3", "rows": 4,
           "ruleResults": [{"rule": "minRows", "passed": False, "message": "minRows: 4 rows, at least 10 required"}],
           "failedRules": ["minRows"], "message": "minRows: 4 rows, at least 10 required"}
GOOD_STATUS = {"latestVersion": "v1", "latestRows": 8,
               "versions": [{"id": "v1", "rows": 8, "createdAt": "2025-12-31T00:00:00Z",
                             "uri": "s3://kadence/datasets/ml/users/v1/"}]}
JOB = ingest_job_name("users", 1, 0)


def conditions(plan, before=None):
    """The conditions realize writes (Ready derived over `before`), SpecValid aside."""
    return {c.type: (c.status, c.reason) for c in plan.condition_updates(before) if c.type != "SpecValid"}


def ready_of(plan, before=None):
    return next(c for c in plan.condition_updates(before) if c.type == "Ready")


def status_of(plan):
    """The status fields the plan writes (wire names)."""
    return plan.status_patch()


def test_a_new_dataset_gets_a_task_configmap_and_an_ingest_job():
    plan = plan_dataset(dataset(), DatasetObservation(), NOW)
    configmap, ingest = plan.children
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", JOB)
    assert (ingest["kind"], ingest["metadata"]["name"]) == ("Job", JOB)
    assert ingest["spec"]["template"]["spec"]["containers"][0]["command"] == ["kadence", "ingest"]
    assert conditions(plan) == {"Ingested": ("Unknown", "Ingesting"), "Ready": ("Unknown", "Ingesting")}
    assert plan.phase == "Ingesting"


def test_a_running_ingest_is_waited_for():
    plan = plan_dataset(dataset(), DatasetObservation(jobs=[job(JOB)]), NOW)
    # no polling: the Job's completion wakes the Dataset (the engine watches its Jobs)
    assert plan.children == [] and plan.phase == "Ingesting" and plan.requeue_after is None


@pytest.mark.parametrize("status, result, ready, validated, latest, event", [
    ({}, VALID, ("True", "Ingested"), ("True", "RulesPassed"), "v2", ("Normal", "VersionCreated")),
    (GOOD_STATUS, VALID, ("True", "Ingested"), ("True", "RulesPassed"), "v2", ("Normal", "VersionCreated")),
    (GOOD_STATUS, INVALID, ("True", "PreviousVersionCurrent"), ("False", "ValidationFailed"), "v1",
     ("Warning", "ValidationFailed")),
    ({}, INVALID, ("False", "ValidationFailed"), ("False", "ValidationFailed"), None, ("Warning", "ValidationFailed")),
    (GOOD_STATUS, None, ("True", "PreviousVersionCurrent"), None, "v1", ("Warning", "IngestFailed")),
])
def test_a_finished_ingest_turns_into_status_conditions_and_one_event(status, result, ready, validated, latest, event):
    results = {JOB: result} if result is not None else {}
    state = "Failed" if result is None or result["outcome"] == "Invalid" else "Succeeded"
    plan = plan_dataset(dataset(status), DatasetObservation(jobs=[job(JOB, state)], results=results), NOW)
    assert conditions(plan).get("Ready") == ready
    assert conditions(plan).get("Validated") == validated
    assert status_of(plan).get("latestVersion", status.get("latestVersion")) == latest
    assert [(e.type, e.reason) for e in plan.events] == [event]
    assert status_of(plan)["lastJob"] == JOB
    DatasetStatus.model_validate({**status, **status_of(plan)})  # the status fits the API


def test_the_rule_and_its_numbers_appear_in_the_validated_condition():
    plan = plan_dataset(dataset(GOOD_STATUS), DatasetObservation([job(JOB, "Failed")], {JOB: INVALID}), NOW)
    validated = next(c for c in plan.conditions if c.type == "Validated")
    assert validated.message == "minRows: 4 rows, at least 10 required"


def test_the_same_content_again_lists_no_new_version_and_posts_no_event():
    status = {**GOOD_STATUS, "lastJob": "older"}
    again = {**VALID, "version": "v1", "rows": 8, "created": False}
    plan = plan_dataset(dataset(status), DatasetObservation([job(JOB, "Succeeded")], {JOB: again}), NOW)
    assert [v["id"] for v in status_of(plan)["versions"]] == ["v1"] and plan.events == []


def test_versions_are_newest_first_and_bounded_by_retention():
    status = {"latestVersion": "v1", "versions": [{"id": f"v{i}", "rows": 1, "createdAt": "x", "uri": "u"}
                                                  for i in (1, 0)]}
    plan = plan_dataset(dataset(status, retention=2), DatasetObservation([job(JOB, "Succeeded")], {JOB: VALID}), NOW)
    assert [v["id"] for v in status_of(plan)["versions"]] == ["v2", "v1"]


def test_a_result_already_in_status_is_not_handled_again():
    plan = plan_dataset(dataset({**GOOD_STATUS, "lastJob": JOB}), DatasetObservation([job(JOB, "Succeeded")]), NOW)
    assert (plan.children, plan.events, status_of(plan)) == ([], [], {})
    assert conditions(plan) == {"Ingested": ("True", "Ingested"), "Ready": ("True", "Ingested")}  # restated once
    settled = [{"type": "Ingested", "status": "True", "reason": "Ingested"}]
    again = plan_dataset(dataset({**GOOD_STATUS, "lastJob": JOB, "conditions": settled}),
                         DatasetObservation([job(JOB, "Succeeded")]), NOW)
    assert again.conditions == []
    assert dataset_results_to_fetch(dataset({"lastJob": JOB}), [job(JOB, "Succeeded")]) == {}
    assert dataset_results_to_fetch(dataset(), [job(JOB, "Succeeded"), job("running")]) == {
        JOB: f"datasets/ml/users/runs/{JOB}/result.json"}


def test_a_spec_change_supersedes_the_old_job():
    plan = plan_dataset(dataset(generation=2), DatasetObservation([job(JOB)]), NOW)
    assert [c["metadata"]["name"] for c in plan.children] == [ingest_job_name("users", 2, 0)] * 2
    assert {(d.kind, d.name) for d in plan.delete} == {("Job", JOB), ("ConfigMap", JOB)}


def test_a_refresh_interval_makes_one_job_per_slot_and_wakes_up_at_the_next_slot():
    body = dataset({**GOOD_STATUS}, refreshInterval="1h")
    slot = int(NOW.timestamp() // 3600)
    plan = plan_dataset(body, DatasetObservation(), NOW)
    assert plan.children[1]["metadata"]["name"] == ingest_job_name("users", 1, slot)
    done = plan_dataset(dataset({**GOOD_STATUS, "lastJob": ingest_job_name("users", 1, slot)}, refreshInterval="1h"),
                        DatasetObservation(), NOW.replace(minute=20))
    assert done.children == [] and done.requeue_after == 40 * 60


def test_a_configmap_source_reaches_the_job_through_its_environment():
    body = dataset(source={"configMapRef": {"name": "tiny", "key": "data.csv"}})
    env = plan_dataset(body, DatasetObservation(), NOW).children[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "KADENCE_INLINE_DATA", "valueFrom": {"configMapKeyRef": {"name": "tiny", "key": "data.csv"}}} in env


@pytest.mark.parametrize("text, seconds", [("45s", 45), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_the_workload_job_runs_without_api_rights_and_fails_at_once_on_invalid_input():
    body = workload_job(dataset(), "users-ingest-g1", "ingest", ["kadence", "ingest"])
    pod = body["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert body["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [3]
    names = {e["name"] for e in pod["containers"][0]["env"]}
    assert {"KADENCE_TASK", "KADENCE_S3_ENDPOINT", "KADENCE_S3_ACCESS_KEY", "KADENCE_S3_SECRET_KEY"} <= names
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert job_state(job("x", "Succeeded")) == "Succeeded" and job_state({"status": {"succeeded": 1}}) == "Succeeded"


# -- feedback folded in (spec.feedback.from, the MonitorPolicies' status.feedback) ---------

from kadence.domain.data.feedback import FeedbackFile  # noqa: E402

FEEDBACK = FeedbackFile("churn-monitor", "s3://kadence/monitoring/ml/churn-monitor/w1/feedback.parquet", 40,
                        "a" * 64, "2026-01-01T00:00:00Z", "2026-01-01T11:00:00Z")
MORE_FEEDBACK = FeedbackFile("churn-monitor", "s3://kadence/monitoring/ml/churn-monitor/w2/feedback.parquet", 90,
                             "b" * 64, "2026-01-01T00:00:00Z", "2026-01-01T11:30:00Z")
OPT_IN = {"feedback": {"from": [{"monitorPolicy": "churn-monitor"}]}}


def opted_in(status=None):
    return dataset(status, **OPT_IN)


def started(plan):
    return {c["kind"]: c for c in plan.children}


def test_newly_published_feedback_starts_exactly_one_ingest_reading_it_after_the_source():
    body = opted_in({**GOOD_STATUS, "lastJob": JOB})
    plan = plan_dataset(body, DatasetObservation([job(JOB, "Succeeded")], feedback=[FEEDBACK]), NOW)
    name = ingest_job_name("users", 1, 0, [FEEDBACK])
    assert name != JOB and [c["metadata"]["name"] for c in plan.children] == [name, name]
    assert json.loads(started(plan)["ConfigMap"]["data"]["task.json"])["appended"] == [FEEDBACK.uri]
    assert {(d.kind, d.name) for d in plan.delete} == {("Job", JOB), ("ConfigMap", JOB)}
    assert conditions(plan)["Feedback"] == ("True", "FeedbackRead")
    # The same export, looked at again (or by a restarted operator), makes no second Job.
    again = plan_dataset(body, DatasetObservation([job(name)], feedback=[FEEDBACK]), NOW)
    assert again.children == [] and again.phase == "Ingesting"
    done = plan_dataset(opted_in({**GOOD_STATUS, "lastJob": name}),
                        DatasetObservation([job(name, "Succeeded")], feedback=[FEEDBACK]), NOW)
    assert done.children == [] and done.delete == []


def test_a_new_export_makes_another_ingest_named_after_its_digest():
    first = ingest_job_name("users", 1, 0, [FEEDBACK])
    plan = plan_dataset(opted_in({**GOOD_STATUS, "lastJob": first}),
                        DatasetObservation([job(first, "Succeeded")], feedback=[MORE_FEEDBACK]), NOW)
    name = ingest_job_name("users", 1, 0, [MORE_FEEDBACK])
    assert [c["metadata"]["name"] for c in plan.children] == [name, name] and name != first


def test_feedback_is_read_only_by_a_dataset_that_opts_in():
    plan = plan_dataset(dataset({**GOOD_STATUS, "lastJob": JOB}),
                        DatasetObservation([job(JOB, "Succeeded")], feedback=[FEEDBACK]), NOW)
    assert plan.children == [] and "Feedback" not in conditions(plan)


@pytest.mark.parametrize("missing, expected", [
    pytest.param({"churn-monitor": "MonitorPolicy churn-monitor not found"}, "MonitorPolicy churn-monitor not found",
                 id="a policy that does not exist is named"),
    pytest.param({}, "MonitorPolicy churn-monitor has published no feedback yet", id="a policy with no export yet"),
])
def test_a_listed_policy_without_feedback_is_reported_and_the_source_is_ingested_alone(missing, expected):
    plan = plan_dataset(opted_in(), DatasetObservation(feedback_missing=missing), NOW)
    assert conditions(plan)["Feedback"] == ("False", "NoFeedbackPublished")
    assert next(c.message for c in plan.conditions if c.type == "Feedback") == expected
    task = json.loads(started(plan)["ConfigMap"]["data"]["task.json"])
    assert task["appended"] == [] and started(plan)["Job"]["metadata"]["name"] == JOB


def test_a_version_entry_lists_the_feedback_it_includes():
    name = ingest_job_name("users", 1, 0, [FEEDBACK])
    started_job = started(plan_dataset(opted_in(dict(GOOD_STATUS)), DatasetObservation(feedback=[FEEDBACK]), NOW))["Job"]
    finished = {**started_job, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    result = {**VALID, "appended": [FEEDBACK.uri], "rows": 14}
    # The policy published a newer export meanwhile: the version records what its Job read.
    plan = plan_dataset(opted_in(dict(GOOD_STATUS)),
                        DatasetObservation([finished], {name: result}, feedback=[MORE_FEEDBACK]), NOW)
    newest, previous = status_of(plan)["versions"]
    assert newest["feedback"] == [{"monitorPolicy": "churn-monitor", "uri": FEEDBACK.uri, "rows": 40,
                                   "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T11:00:00Z",
                                   "sha256": "a" * 64}]
    assert "feedback" not in previous
    assert [e.message for e in plan.events] == [
        "version v2 with 14 rows, including 40 labelled predictions of churn-monitor at "
        "s3://kadence/datasets/ml/users/v2/"]
    DatasetStatus.model_validate({**GOOD_STATUS, **status_of(plan)})


def test_an_unreadable_feedback_file_fails_the_ingest_naming_it_and_keeps_the_current_version():
    name = ingest_job_name("users", 1, 0, [FEEDBACK])
    failed = {"outcome": "Error", "valid": False, "appended": [FEEDBACK.uri],
              "message": f"cannot read the appended file {FEEDBACK.uri}: no such object"}
    plan = plan_dataset(opted_in(dict(GOOD_STATUS)),
                        DatasetObservation([job(name, "Failed")], {name: failed}, feedback=[FEEDBACK]), NOW)
    ready = ready_of(plan)
    assert (ready.status, ready.reason) == ("True", "PreviousVersionCurrent")
    assert FEEDBACK.uri in ready.message and "no such object" in ready.message
    assert "latestVersion" not in status_of(plan) and status_of(plan)["lastJob"] == name
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "IngestFailed")]


# -- FeatureSet --------------------------------------------------------------------------

FEATURES = [{"name": "logage", "expression": "log1p(age)"},
            {"name": "plan", "transform": {"type": "oneHot", "column": "plan"}}]
READY_DATASET = dataset({**GOOD_STATUS, "conditions": [{"type": "Ready", "status": "True", "reason": "Ingested"}]})


def featureset(status=None, features=FEATURES, version=None):
    ref = {"name": "users", **({"version": version} if version else {})}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "FeatureSet",
            "metadata": {"name": "user-features", "namespace": "ml", "uid": "f-1", "generation": 1},
            "spec": {"datasetRef": ref, "features": features}, "status": status or {}}


def fs_version(features=FEATURES, dataset_version="v1"):
    from kadence.api.featureset import FeatureSetSpec
    from kadence.domain.data.versioning import featureset_version

    spec = FeatureSetSpec.model_validate({"datasetRef": {"name": "users"}, "features": features})
    return featureset_version(spec.features, dataset_version)


@pytest.mark.parametrize("body, dataset_body, reason, fragment", [
    (featureset(), None, "DatasetNotFound", "Dataset 'users' does not exist"),
    (featureset(), dataset({"conditions": [{"type": "Ready", "status": "False", "reason": "ValidationFailed",
                                            "message": "minRows: 4 rows, at least 10 required"}]}),
     "DatasetNotReady", "no validated version yet: minRows: 4 rows"),
    (featureset(version="v9"), READY_DATASET, "DatasetVersionNotFound", "version v9 is not a validated version"),
    (featureset(features=[{"name": "bad", "expression": "log1p(salary)"}]), READY_DATASET, "InvalidDefinition",
     "feature 'bad': unknown column 'salary'"),
    (featureset(features=[{"name": "leak", "expression": "churn * 2"}]), READY_DATASET, "InvalidDefinition",
     "feature 'leak': reads the target column 'churn'"),
    (featureset(features=[{"name": "s", "transform": {"type": "standardScale", "column": "plan"}}]), READY_DATASET,
     "InvalidDefinition", "standardScale needs a numeric column"),
])
def test_a_featureset_that_cannot_materialize_is_not_ready_with_the_reason(body, dataset_body, reason, fragment):
    plan = plan_featureset(body, FeatureSetObservation(dataset=dataset_body), NOW)
    assert plan.children == []
    ready = ready_of(plan)
    assert (ready.status, ready.reason) == ("False", reason) and fragment in ready.message
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", reason)]


def test_a_reported_block_posts_no_second_event():
    first = plan_featureset(featureset(), FeatureSetObservation(dataset=None), NOW)
    blocked = first.conditions[0]
    assert blocked.type == "DataAvailable"
    status = {"conditions": [{"type": "DataAvailable", "status": "False", "reason": blocked.reason,
                              "message": blocked.message}]}
    assert plan_featureset(featureset(status), FeatureSetObservation(dataset=None), NOW).events == []


def test_a_valid_featureset_gets_a_materialize_job_named_after_its_version_and_the_catalog():
    plan = plan_featureset(featureset(), FeatureSetObservation(dataset=READY_DATASET), NOW)
    name = materialize_job_name("user-features", fs_version())
    assert [(c["kind"], c["metadata"]["name"]) for c in plan.children] == [("ConfigMap", name), ("Job", name)]
    assert status_of(plan)["features"] == [
        {"name": "logage", "type": "float", "source": "log1p(age)"},
        {"name": "plan", "type": "category", "source": "oneHot(plan, otherBucket=True)"}]
    task = plan.children[0]["data"]["task.json"]
    assert '"datasetUri":"s3://kadence/datasets/ml/users/v1/"' in task


def test_a_finished_materialize_records_the_version_and_a_new_definition_makes_another():
    version = fs_version()
    name = materialize_job_name("user-features", version)
    result = {"outcome": "Valid", "valid": True, "version": version, "datasetVersion": "v1", "rows": 8,
              "uri": f"s3://kadence/features/ml/user-features/{version}/", "created": True,
              "createdAt": "2026-01-01T11:00:00Z", "features": [{"name": "logage", "type": "float", "source": "x"}],
              "featureColumns": ["logage"], "transformerUri": "s3://kadence/t.skops", "transformerSha256": "cd" * 32}
    plan = plan_featureset(featureset(), FeatureSetObservation(READY_DATASET, [job(name, "Succeeded")], {name: result}),
                           NOW)
    assert status_of(plan)["latestVersion"] == version and status_of(plan)["datasetVersion"] == "v1"
    assert status_of(plan)["versions"][0]["transformerSha256"] == "cd" * 32
    assert conditions(plan)["Ready"] == ("True", "Materialized") and plan.events[0].reason == "VersionCreated"
    status = {**status_of(plan), "lastJob": name}
    FeatureSetStatus.model_validate(status)
    steady = plan_featureset(featureset(status), FeatureSetObservation(READY_DATASET, [job(name, "Succeeded")]), NOW)
    assert steady.children == [] and steady.events == [] and conditions(steady)["Ready"] == ("True", "Materialized")
    changed = plan_featureset(featureset(status, features=FEATURES[:1]), FeatureSetObservation(READY_DATASET), NOW)
    assert changed.children[1]["metadata"]["name"] == materialize_job_name("user-features", fs_version(FEATURES[:1]))
    assert featureset_results_to_fetch(featureset(status), [job(name, "Succeeded")]) == {}


def test_a_new_dataset_version_makes_a_new_featureset_version():
    newer = dataset({**GOOD_STATUS, "latestVersion": "v2",
                     "versions": [{"id": "v2", "rows": 9, "createdAt": "x", "uri": "s3://kadence/datasets/ml/users/v2/"},
                                  *GOOD_STATUS["versions"]]})
    plan = plan_featureset(featureset(), FeatureSetObservation(dataset=newer), NOW)
    assert plan.children[1]["metadata"]["name"] == materialize_job_name("user-features", fs_version(dataset_version="v2"))
