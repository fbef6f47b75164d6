"""Ready, derived from each kind's condition set (api.conditions.derive_ready) — table tests per kind,
and the contract that planners never set Ready themselves."""

from __future__ import annotations

import pytest

from kadence.api.conditions import ConditionSet, ConditionUpdate, derive_ready, with_ready
from kadence.api.kinds import BY_KIND, KINDS


def c(type_: str, status: str, reason: str = "R", message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def ready(kind: str, *conditions: dict) -> tuple[str, str]:
    update = derive_ready(BY_KIND[kind].status.CONDITIONS, list(conditions))
    return update.status, update.reason


OK = c("SpecValid", "True", "SpecAccepted")

CASES = [
    # Dataset
    ("Dataset", "a current version makes it ready", [OK, c("Ingested", "True", "Ingested")], ("True", "Ingested")),
    ("Dataset", "a failed re-ingest keeps the previous version ready",
     [OK, c("Ingested", "True", "PreviousVersionCurrent"), c("Validated", "False", "ValidationFailed")],
     ("True", "PreviousVersionCurrent")),
    ("Dataset", "the first ingest running is unknown", [OK, c("Ingested", "Unknown", "Ingesting")],
     ("Unknown", "Ingesting")),
    ("Dataset", "an invalid spec wins over everything",
     [c("SpecValid", "False", "InvalidSpec"), c("Ingested", "True", "Ingested")], ("False", "InvalidSpec")),
    ("Dataset", "nothing reported yet awaits the spec check", [], ("Unknown", "AwaitingSpecValid")),
    # FeatureSet
    ("FeatureSet", "a missing dataset is the reason", [OK, c("DataAvailable", "False", "DatasetNotFound"),
                                                      c("Materialized", "True", "Materialized")],
     ("False", "DatasetNotFound")),
    ("FeatureSet", "a bad definition is the reason when the data is there",
     [OK, c("DataAvailable", "True"), c("DefinitionsValid", "False", "InvalidDefinition")],
     ("False", "InvalidDefinition")),
    ("FeatureSet", "everything true takes the last dependent's reason",
     [OK, c("DataAvailable", "True"), c("DefinitionsValid", "True"), c("Materialized", "True", "Materialized")],
     ("True", "Materialized")),
    ("FeatureSet", "a False after an Unknown still wins",
     [OK, c("DataAvailable", "Unknown", "Checking"), c("DefinitionsValid", "False", "InvalidDefinition")],
     ("False", "InvalidDefinition")),
    # TrainingRun
    ("TrainingRun", "waiting for its input", [OK, c("InputReady", "False", "FeatureSetNotReady")],
     ("False", "FeatureSetNotReady")),
    ("TrainingRun", "training is unknown", [OK, c("InputReady", "True"), c("Trained", "Unknown", "Training")],
     ("Unknown", "Training")),
    ("TrainingRun", "a model not yet registered awaits registration",
     [OK, c("InputReady", "True"), c("Trained", "True")], ("Unknown", "AwaitingRegistered")),
    ("TrainingRun", "registered succeeds", [OK, c("InputReady", "True"), c("Trained", "True"),
                                            c("Registered", "True", "Succeeded")], ("True", "Succeeded")),
    ("TrainingRun", "failed training fails", [OK, c("InputReady", "True"), c("Trained", "False", "TrainingFailed")],
     ("False", "TrainingFailed")),
    # ModelVersion
    ("ModelVersion", "a verified artifact is ready whatever the stage change says",
     [OK, c("ArtifactVerified", "True", "Verified"), c("StageChange", "False", "InvalidTransition"),
      c("StageRequest", "False", "InvalidStageRequest")], ("True", "Verified")),
    # InferenceService
    ("InferenceService", "no version in the stage is the reason", [OK, c("ModelResolved", "False", "NoModelVersion"),
                                                                   c("StableReady", "True", "Serving")],
     ("False", "NoModelVersion")),
    ("InferenceService", "a first replica coming up is unknown, not a failure",
     [OK, c("ModelResolved", "True"), c("StableReady", "Unknown", "StableStarting")], ("Unknown", "StableStarting")),
    ("InferenceService", "a rolled back canary leaves the stable serving",
     [OK, c("ModelResolved", "True"), c("StableReady", "True", "Serving"), c("CanaryHealthy", "False", "RolledBack")],
     ("True", "Serving")),
    # MonitorPolicy
    ("MonitorPolicy", "a breach does not make the policy unready",
     [OK, c("InferenceServiceFound", "True"), c("Monitoring", "True", "Monitoring"), c("Breached", "True", "DriftDetected")],
     ("True", "Monitoring")),
    ("MonitorPolicy", "a missing service is the reason", [OK, c("InferenceServiceFound", "False", "InferenceServiceNotFound")],
     ("False", "InferenceServiceNotFound")),
    ("MonitorPolicy", "a failed monitor Job is the reason", [OK, c("InferenceServiceFound", "True"),
                                                            c("Monitoring", "False", "MonitorJobFailed")],
     ("False", "MonitorJobFailed")),
    ("ModelVersion", "a checksum mismatch is never ready",
     [OK, c("ArtifactVerified", "False", "ArtifactChecksumMismatch")], ("False", "ArtifactChecksumMismatch")),
]


@pytest.mark.parametrize("kind, name, conditions, expected", CASES, ids=[f"{k}: {n}" for k, n, *_ in CASES])
def test_ready_is_derived_from_the_kinds_dependents(kind, name, conditions, expected):
    assert ready(kind, *conditions) == expected


def test_ready_carries_the_deciding_conditions_message():
    update = derive_ready(BY_KIND["FeatureSet"].status.CONDITIONS,
                          [OK, c("DataAvailable", "False", "DatasetNotFound", "Dataset 'users' does not exist")])
    assert update.message == "Dataset 'users' does not exist"


def test_a_stale_ready_in_the_list_is_ignored():
    assert ready("TrainingRun", c("Ready", "True", "Old"), OK, c("InputReady", "False", "DatasetNotFound")) == (
        "False", "DatasetNotFound")


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_kind_declares_its_conditions_starting_with_spec_valid_and_never_ready(kind):
    conditions = kind.status.CONDITIONS
    assert conditions.dependents[0] == "SpecValid" and "Ready" not in conditions.types[1:]


def test_a_planner_setting_ready_or_an_undeclared_condition_is_refused():
    conditions = BY_KIND["Dataset"].status.CONDITIONS
    with pytest.raises(ValueError, match="Ready is derived"):
        with_ready(conditions, [], [ConditionUpdate("Ready", "True", "ByHand")])
    with pytest.raises(ValueError, match="not one this kind declares"):
        with_ready(conditions, [], [ConditionUpdate("Typo", "True", "X")])
    updates = with_ready(conditions, [], [ConditionUpdate("SpecValid", "True", "SpecAccepted"),
                                          ConditionUpdate("Ingested", "True", "Ingested", "v1")])
    assert updates[-1] == ConditionUpdate("Ready", "True", "Ingested", "v1")


@pytest.mark.parametrize("dependents, informational", [
    (("Ingested",), ()),  # SpecValid must come first
    (("SpecValid", "Ready"), ()),
    (("SpecValid", "A"), ("A",)),
])
def test_a_malformed_condition_set_is_refused(dependents, informational):
    with pytest.raises(ValueError):
        ConditionSet(dependents=dependents, informational=informational)
