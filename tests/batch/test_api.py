"""The BatchPrediction API: every field documented for `kubectl explain`, the rules admission and the operator
both enforce, and the MonitorPolicy that watches a BatchPrediction."""

from __future__ import annotations

import pytest

from kadence.api.batchprediction import BatchPredictionSpec
from kadence.api.crdgen import crd_for
from kadence.api.kinds import BY_KIND
from kadence.api.monitorpolicy import MonitorPolicySpec
from kadence.api.references import problems
from kadence.workloads.batch_task import prediction_stream

SPEC = {"model": "churn", "stage": "Production", "input": {"dataset": {"name": "churn"}},
        "output": {"uri": "s3://kadence/predictions/team-a/churn/"}}


def undocumented(node: dict, path: str) -> list[str]:
    found = []
    for name, sub in (node.get("properties") or {}).items():
        if not sub.get("description"):
            found.append(f"{path}.{name}")
        found += undocumented(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += undocumented(node["items"], f"{path}[]")
    return found


@pytest.mark.parametrize("part", ["spec", "status"])
def test_kubectl_explain_finds_a_description_on_every_field(part):
    schema = crd_for(BY_KIND["BatchPrediction"])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undocumented(schema["properties"][part], part) == []


def test_the_kind_is_in_the_kadence_category_with_a_short_name():
    crd = crd_for(BY_KIND["BatchPrediction"])
    assert crd["spec"]["names"]["categories"] == ["kadence"] and crd["spec"]["names"]["shortNames"] == ["bp"]


@pytest.mark.parametrize("changes, message", [
    ({"version": 3}, "exactly one of version, stage"),
    ({"input": {"uri": "s3://kadence/raw/team-a/x.parquet"}}, "output.entityColumn is required for a uri input"),
    ({"input": {"dataset": {"name": "churn"}, "format": "csv"}}, "format applies to a uri input only"),
    ({"input": {"dataset": {"name": "churn", "follow": "EveryNewVersion"}}, "schedule": {"cron": "0 2 * * *"}},
     "a schedule scores the input as it is at each tick"),
    ({"schedule": {"cron": "0 2 * * *", "timeZone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
    ({"schedule": {"cron": "every night"}}, "cron"),
    ({"output": {"uri": "file:///tmp/out/"}}, "output.uri"),
], ids=["version and stage", "a uri input without an entity column", "a format on a dataset input",
        "a schedule with every new version", "an unknown time zone", "a cron that does not parse",
        "output outside object storage"])
def test_a_spec_that_cannot_work_is_refused_with_the_reason(changes, message):
    with pytest.raises(ValueError, match=message):
        BatchPredictionSpec.model_validate({**SPEC, **changes})


@pytest.mark.parametrize("uri, field", [
    ("s3://kadence/predictions/team-b/churn/", "spec.output.uri"),
    ("s3://elsewhere/predictions/team-a/churn/", "spec.output.uri"),
], ids=["another namespace's storage", "another bucket"])
def test_an_output_outside_the_namespaces_storage_is_refused_naming_the_field(uri, field):
    spec = BatchPredictionSpec.model_validate({**SPEC, "output": {"uri": uri}})
    found = problems("BatchPrediction", spec, {"namespace": "team-a"}, "kadence", sandbox=False)
    assert [f for f, _ in found] == [field]


def test_an_output_under_the_namespaces_predictions_is_accepted():
    spec = BatchPredictionSpec.model_validate(SPEC)
    assert problems("BatchPrediction", spec, {"namespace": "team-a"}, "kadence", sandbox=False) == []


def test_a_monitorpolicy_watches_exactly_one_of_a_service_or_a_batch_prediction():
    from kadence.planners.batch_monitoring import Watched, watched

    batch = MonitorPolicySpec.model_validate({"batchPredictionRef": {"name": "nightly"}, "drift": {}})
    assert watched(batch) == Watched("BatchPrediction", "nightly", prediction_stream("nightly"))
    served = MonitorPolicySpec.model_validate({"inferenceServiceRef": {"name": "churn"}, "drift": {}})
    assert watched(served) == Watched("InferenceService", "churn", "churn")
    for both_or_none in ({"drift": {}}, {"drift": {}, "inferenceServiceRef": {"name": "a"},
                                        "batchPredictionRef": {"name": "b"}}):
        with pytest.raises(ValueError, match="exactly one of inferenceServiceRef, batchPredictionRef"):
            MonitorPolicySpec.model_validate(both_or_none)
