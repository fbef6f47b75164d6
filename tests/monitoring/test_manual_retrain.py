"""A person's retrain request (spec.triggers.manual, what `kadence console` writes and `kubectl patch`
can): the planner honours it once, through the same gates and the same decision record as a breach."""

from __future__ import annotations

import pytest

from kadence.domain.monitoring.triggers import check_manual
from kadence.planners.monitorpolicy import RETRAIN_TRIGGER_ANNOTATION

from .test_planner import (BREACH, PENDING, OPTED_IN, TRAINED_ON_V1, condition, context, plan_with, retrain,
                           training_runs)

ASKED_AT = "2026-11-23T12:01:00Z"
REQUEST = {"requestedAt": ASKED_AT, "requestedBy": "alice", "reason": "the new labelling campaign is in"}


def manual_plan(status=None, ctx=None, result=None, **spec):
    triggers = {**spec.pop("triggers", {}), "manual": REQUEST}
    return plan_with(result, status=status, ctx=ctx, jobs=[] if result is None else None, triggers=triggers, **spec)


@pytest.mark.parametrize("requested_at, handled, fires", [
    pytest.param(None, None, False, id="no request does not fire"),
    pytest.param(ASKED_AT, None, True, id="a request never handled fires"),
    pytest.param(ASKED_AT, ASKED_AT, False, id="a handled request does not fire again"),
    pytest.param("2026-11-24T08:00:00Z", ASKED_AT, True, id="a new requestedAt asks again"),
])
def test_the_manual_trigger_fires_once_per_request(requested_at, handled, fires):
    check = check_manual(requested_at=requested_at, requested_by="alice", reason=None, handled=handled)
    assert check.fired is fires


def test_a_manual_request_starts_one_retrain_naming_who_asked_and_why():
    plan = manual_plan()
    [run] = training_runs(plan)
    assert run["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "manual"
    [record] = plan.status["retrains"]
    assert record["trigger"] == "manual"
    assert record["message"] == f"manual: requested by alice at {ASKED_AT}: the new labelling campaign is in"
    assert record["inputs"]["datasetVersion"] == "v1"  # the same inputs record as any retrain
    assert plan.status["lastManualRequest"] == ASKED_AT
    assert plan.status["lastRetrainDecision"]["reason"] == "RetrainAllowed"
    assert condition(plan, "Retraining").reason == "RetrainedOnManual"
    assert "requested by alice" in next(e.message for e in plan.events if e.reason == "RetrainStarted")


def test_a_handled_request_starts_nothing_on_the_next_reconcile():
    first = manual_plan()
    status = {k: first.status[k] for k in ("retrains", "lastManualRequest", "lastRetrainDecision")}
    again = manual_plan(status=status)
    assert training_runs(again) == []
    assert "lastManualRequest" not in again.status


def test_a_manual_request_with_nothing_new_to_learn_is_held_and_says_who_asked():
    plan = manual_plan(ctx=context(model_inputs=TRAINED_ON_V1))
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == "NothingNewToLearn"
    assert plan.status["lastRetrainDecision"]["message"].endswith(
        f"nothing new to learn; waiting for new labels or data (manual: requested by alice at {ASKED_AT}: "
        "the new labelling campaign is in)")
    assert "requested by alice" in plan.status["retrains"][0]["message"]
    assert plan.status["lastManualRequest"] == ASKED_AT  # handled: asking again needs a new requestedAt


@pytest.mark.parametrize("retrains, reason", [
    pytest.param([retrain(1, "Won")], "CooldownActive", id="the cooldown holds a manual request"),
    pytest.param([retrain(3, "Lost"), retrain(5, "Lost"), retrain(7, "Failed")], "DailyBudgetExhausted",
                 id="the daily budget holds a manual request"),
])
def test_a_manual_request_passes_the_same_gate_as_a_breach(retrains, reason):
    plan = manual_plan(status={"retrains": retrains})
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == reason
    assert plan.status["lastRetrainDecision"]["trigger"] == "manual"
    assert "(manual: requested by alice at" in plan.status["lastRetrainDecision"]["message"]
    assert plan.status["lastManualRequest"] == ASKED_AT


def test_a_manual_request_with_retraining_disabled_is_held_and_handled():
    plan = manual_plan(actions={"retrain": {"enabled": False}}, ctx=context(retrain_spec=None))
    assert training_runs(plan) == []
    assert plan.status["lastRetrainDecision"]["reason"] == "RetrainDisabled"
    assert plan.status["lastManualRequest"] == ASKED_AT


def test_a_held_breach_alone_names_no_asker():
    plan = plan_with(BREACH, status={"retrains": [retrain(1, "Won")]})
    assert "requested by" not in plan.status["lastRetrainDecision"]["message"]


def test_a_manual_request_and_a_breach_together_make_one_retrain_the_request_first():
    plan = manual_plan(result=BREACH)
    [run] = training_runs(plan)
    assert run["metadata"]["annotations"][RETRAIN_TRIGGER_ANNOTATION] == "manual,breach"
    assert plan.status["retrains"][0]["breachedAt"]  # the breach is still recorded as a cause


def test_a_manual_request_waits_while_a_decided_retrain_waits_for_its_data():
    plan = manual_plan(status={"pendingRetrain": PENDING}, ctx=context(retrain_data=OPTED_IN))
    assert "lastManualRequest" not in plan.status  # handled once the decided retrain has started
    assert training_runs(plan) == []

