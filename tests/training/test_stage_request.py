"""The kadence.dev/stage-request annotation as API: parsed strictly, reported when malformed,
mirrored into status.requestedStage (a `kubectl get modelversions` column)."""

import hashlib
import json
from datetime import datetime, timezone

import pytest

from kadence.api.kinds import BY_KIND
from kadence.domain import registry
from kadence.planners.modelversion import ModelVersionObservation, plan_modelversion

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
ARTIFACT = b"model bytes"
SHA = hashlib.sha256(ARTIFACT).hexdigest()


def body(annotation=None, spec_stage="Candidate", generation=1, status=None):
    annotations = {} if annotation is None else {"kadence.dev/stage-request": annotation}
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": "ModelVersion",
            "metadata": {"name": "churn-v2", "namespace": "ml", "generation": generation, "annotations": annotations},
            "spec": {"model": "churn", "version": 2, "stage": spec_stage,
                     "artifact": {"uri": "s3://kadence/models/churn/2/model.skops", "sha256": SHA}},
            "status": status or {"verified": True, "verifiedSha256": SHA, "stage": spec_stage}}


@pytest.mark.parametrize("raw, fragment", [
    pytest.param("Production", "is not JSON", id="a bare stage name is not JSON"),
    pytest.param('["Production"]', "is not a JSON object", id="a list is not an object"),
    pytest.param('{"stage": "Prod", "generation": 1}', "unknown stage 'Prod'", id="a misspelt stage is named"),
    pytest.param('{"stage": "Staging"}', "no valid generation (None)", id="a request without a generation"),
    pytest.param('{"stage": "Staging", "generation": "1"}', "no valid generation ('1')", id="a string generation"),
    pytest.param('{"stage": "Staging", "generation": true}', "no valid generation (True)", id="a boolean generation"),
    pytest.param('{"stage": "Staging", "generation": 1, "by": "me"}', "unknown keys by", id="an unknown key"),
])
def test_a_malformed_request_is_refused_with_what_is_wrong_and_the_expected_form(raw, fragment):
    with pytest.raises(registry.StageRequestError) as error:
        registry.parse_stage_request(raw)
    assert fragment in str(error.value)
    assert '{"stage": <Candidate|Staging|Production|Archived>, "generation": <metadata.generation>}' in str(error.value)


def test_a_well_formed_request_reads_and_the_operators_own_patch_is_one():
    assert registry.parse_stage_request(None) is None
    patch = registry.stage_request_patch(body(generation=4), "Archived", "kadence-operator", "replaced")
    written = patch["metadata"]["annotations"]["kadence.dev/stage-request"]
    assert registry.parse_stage_request(written) == registry.StageRequest("Archived", 4)


@pytest.mark.parametrize("annotation, generation, requested, condition", [
    pytest.param(None, 1, "Candidate", None, id="no request: the spec decides and nothing is reported"),
    pytest.param('{"stage": "Staging", "generation": 3}', 3, "Staging", ("True", "InForce"),
                 id="a request made at the current generation holds"),
    pytest.param('{"stage": "Staging", "generation": 2}', 3, "Candidate", ("True", "Superseded"),
                 id="a spec edit after the request supersedes it"),
    pytest.param('{"stage": "Staging"', 3, "Candidate", ("False", "InvalidStageRequest"),
                 id="a malformed request is ignored and reported"),
])
def test_the_requested_stage_is_mirrored_into_status_and_the_request_reported(annotation, generation, requested,
                                                                             condition):
    plan = plan_modelversion(body(annotation, generation=generation), ModelVersionObservation(), NOW)
    assert plan.status_patch()["requestedStage"] == requested
    reported = {c.type: (c.status, c.reason) for c in plan.conditions}.get("StageRequest")
    assert reported == condition
    ready = next(c for c in plan.condition_updates(None) if c.type == "Ready")
    assert ready.status == "True"  # an unreadable request does not make a verified model unready


def test_a_malformed_request_posts_one_warning_event_per_problem():
    first = plan_modelversion(body("oops"), ModelVersionObservation(), NOW)
    warning = [e for e in first.events if e.reason == "InvalidStageRequest"]
    assert len(warning) == 1 and "is not JSON" in warning[0].message and "spec.stage (Candidate)" in warning[0].message
    message = next(c.message for c in first.conditions if c.type == "StageRequest")
    reported = body("oops", status={"verified": True, "verifiedSha256": SHA, "stage": "Candidate", "conditions": [
        {"type": "StageRequest", "status": "False", "reason": "InvalidStageRequest", "message": message}]})
    assert [e for e in plan_modelversion(reported, ModelVersionObservation(), NOW).events
            if e.reason == "InvalidStageRequest"] == []


def test_kubectl_get_modelversions_shows_the_requested_stage():
    columns = {c["name"]: c["jsonPath"] for c in BY_KIND["ModelVersion"].columns}
    assert columns["Requested"] == ".status.requestedStage"
    description = BY_KIND["ModelVersion"].status.model_fields["requested_stage"].description
    assert "kadence.dev/stage-request" in description and "generation" in description
