"""What a retrain learns from, as pure functions: the training spec's hash, nothing-new
detection, new labels, the decision-derived name."""

import pytest

from kadence.domain.monitoring.retrain import (Feedback, RetrainInputs, learnt_before, lineage_inputs, new_labels,
                                              retrain_run_name_suffix, training_spec_hash, without_new_labels,
                                              label_free_breach)

SPEC = {"datasetRef": {"name": "churn"}, "task": "classification", "objective": {"metric": "f1"}, "model": "churn"}


@pytest.mark.parametrize("other, same", [
    pytest.param({**SPEC, "datasetRef": {"name": "churn", "version": "v7"}}, True, id="a data version pin is no change"),
    pytest.param({**SPEC, "promotion": {"mode": "Candidate"}}, True, id="the promotion policy is no change"),
    pytest.param(dict(reversed(list(SPEC.items()))), True, id="key order is no change"),
    pytest.param({**SPEC, "objective": {"metric": "roc_auc"}}, False, id="another objective is a change"),
    pytest.param({**SPEC, "datasetRef": {"name": "loans"}}, False, id="another dataset is a change"),
])
def test_the_training_spec_hash_covers_what_changes_what_is_learnt(other, same):
    assert (training_spec_hash(other) == training_spec_hash(SPEC)) is same


INPUTS = RetrainInputs(dataset="churn", dataset_version="v2", spec_hash="h")


@pytest.mark.parametrize("known, found", [
    pytest.param([("churn-v1", RetrainInputs(dataset="churn", dataset_version="v2", spec_hash="h"))], "churn-v1",
                 id="a version trained on the same data version and spec"),
    pytest.param([("churn-v1", RetrainInputs(dataset="churn", dataset_version="v1", spec_hash="h"))], None,
                 id="another data version"),
    pytest.param([("churn-v1", RetrainInputs(dataset="churn", dataset_version="v2", spec_hash="g"))], None,
                 id="another spec"),
    pytest.param([("r-1", RetrainInputs(dataset="churn", dataset_version="v2", spec_hash="h",
                                        feedback=Feedback(10, "x")))], "r-1",
                 id="the feedback is inside the data version, so it is not compared twice"),
    pytest.param([("churn-v0", None)], None, id="a version that does not record its inputs matches nothing"),
])
def test_nothing_new_is_learnt_from_inputs_something_was_trained_on(known, found):
    assert learnt_before(INPUTS, known) == found


def test_a_lineage_records_inputs_only_with_the_spec_hash():
    assert lineage_inputs({"dataset": "churn", "datasetVersion": "v2"}) is None
    assert lineage_inputs({"dataset": "churn", "datasetVersion": "v2", "trainingSpecHash": "h"}) == INPUTS


def test_inputs_round_trip_through_status():
    inputs = RetrainInputs(dataset="churn", dataset_version="v2", spec_hash="h", feature_set="fs",
                           feature_set_version="f3", feedback=Feedback(12, "s", start="a", end="b"))
    assert RetrainInputs.from_wire(inputs.wire()) == inputs
    assert inputs.data_version == "f3" and INPUTS.data_version == "v2"


@pytest.mark.parametrize("export, trained_on, new", [
    pytest.param(None, None, 0, id="no export: no labels"),
    pytest.param(Feedback(0, "e"), None, 0, id="an empty export"),
    pytest.param(Feedback(300, "e"), None, 300, id="every label is new to a model trained without feedback"),
    pytest.param(Feedback(300, "e"), Feedback(300, "e"), 0, id="the export the model was trained on"),
    pytest.param(Feedback(450, "f"), Feedback(300, "e"), 150, id="the labels that arrived since"),
    pytest.param(Feedback(300, "f"), Feedback(300, "e"), 1, id="relabels alone are something new"),
])
def test_new_labels_count_from_the_feedback_the_serving_model_was_trained_on(export, trained_on, new):
    assert new_labels(export, trained_on) == new


@pytest.mark.parametrize("choice, breach, new, reason", [
    ("WaitForLabels", "drift", 0, "WaitingForLabels"),
    ("AlertOnly", "drift", 0, "AlertOnly"),
    ("RetrainAnyway", "drift", 0, None),
    ("WaitForLabels", "drift", 5, None),
    ("WaitForLabels", "estimated quality", 0, "WaitingForLabels"),
    ("AlertOnly", "estimated quality", 0, "AlertOnly"),
    ("RetrainAnyway", "estimated quality", 0, None),
    ("AlertOnly", "estimated quality", 5, None),
    ("AlertOnly", None, 0, None),
])
def test_the_policys_choice_for_a_breach_seen_without_new_labels(choice, breach, new, reason):
    hold = without_new_labels(choice=choice, breach=breach, new=new)
    assert (hold.reason if hold else None) == reason
    if hold is not None:
        assert breach in hold.message


@pytest.mark.parametrize("choice", ["WaitForLabels", "AlertOnly"])
@pytest.mark.parametrize("breach", ["drift", "estimated quality"])
def test_a_breach_seen_without_labels_retrains_on_a_dataset_version_the_serving_model_never_saw(choice, breach):
    assert without_new_labels(choice=choice, breach=breach, new=0, new_data=True) is None


@pytest.mark.parametrize("breach_only, reason, quality_reason, breach", [
    pytest.param(True, "DriftDetected", None, "drift", id="drift alone"),
    pytest.param(True, "EstimatedQualityBelowThreshold", "EstimatedQualityBelowThreshold", "estimated quality",
                 id="an estimated metric below its threshold"),
    pytest.param(True, "DriftAndQualityBreached", "EstimatedQualityBelowThreshold", "drift and estimated quality",
                 id="drift and an estimated metric"),
    pytest.param(True, "DriftAndQualityBreached", "QualityBelowThreshold", None,
                 id="drift and a realized metric: measured on labels"),
    pytest.param(True, "QualityBelowThreshold", "QualityBelowThreshold", None, id="a realized metric"),
    pytest.param(False, "EstimatedQualityBelowThreshold", "EstimatedQualityBelowThreshold", None,
                 id="a schedule or new data fired too: asked for, not inferred"),
])
def test_a_breach_is_label_free_when_only_drift_or_an_estimate_breached(breach_only, reason, quality_reason, breach):
    assert label_free_breach(breach_only=breach_only, reason=reason, quality_reason=quality_reason) == breach


def test_the_retrain_name_derives_from_the_decision_not_the_clock():
    one = retrain_run_name_suffix("2026-11-23T11:55:00Z", "breach", INPUTS)
    assert one == retrain_run_name_suffix("2026-11-23T11:55:00Z", "breach", INPUTS) and len(one) == 10
    assert one != retrain_run_name_suffix("2026-11-23T12:00:00Z", "breach", INPUTS)
    assert one != retrain_run_name_suffix("2026-11-23T11:55:00Z", "breach,schedule", INPUTS)
