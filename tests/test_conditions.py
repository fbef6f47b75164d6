"""The condition helper: lastTransitionTime moves only when the status flips."""

import pytest

from kadence.api.conditions import ConditionUpdate, apply_all, find, ready_transition, set_condition

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T01:00:00Z"


def ready(status, reason="R", message="", at=T0):
    return {"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": at}


CASES = [
    ("a new condition takes the current time", [], ConditionUpdate("Ready", "True", "Done"), T1),
    ("an unchanged status keeps its transition time", [ready("True")], ConditionUpdate("Ready", "True", "Done"), T0),
    ("a new reason alone keeps the transition time", [ready("False", "A")], ConditionUpdate("Ready", "False", "B"), T0),
    ("a new message alone keeps the transition time", [ready("False", message="x")],
     ConditionUpdate("Ready", "False", "R", "y"), T0),
    ("a flip from False to True moves the transition time", [ready("False")], ConditionUpdate("Ready", "True", "R"), T1),
    ("a flip to Unknown moves the transition time", [ready("True")], ConditionUpdate("Ready", "Unknown", "R"), T1),
]


@pytest.mark.parametrize("name,before,update,expected_time", CASES, ids=[c[0] for c in CASES])
def test_transition_time(name, before, update, expected_time):
    after = set_condition(before, update, observed_generation=3, now=T1)
    condition = find(after, update.type)
    assert condition["lastTransitionTime"] == expected_time
    assert (condition["status"], condition["reason"], condition["message"]) == (update.status, update.reason,
                                                                                 update.message)
    assert condition["observedGeneration"] == 3


def test_other_conditions_are_left_untouched_and_ready_comes_first():
    validated = {"type": "Validated", "status": "True", "reason": "Passed", "message": "", "lastTransitionTime": T0}
    after = set_condition([validated], ConditionUpdate("Ready", "True", "Done"), None, T1)
    assert [c["type"] for c in after] == ["Ready", "Validated"]
    assert after[1] == validated


def test_the_input_list_is_not_modified():
    before = [ready("False")]
    set_condition(before, ConditionUpdate("Ready", "True", "Done"), None, T1)
    assert before == [ready("False")]


def test_apply_all_applies_updates_in_order():
    after = apply_all([], [ConditionUpdate("Ready", "False", "A"), ConditionUpdate("Ready", "True", "B")], 1, T1)
    assert find(after, "Ready")["reason"] == "B"


READY_CASES = [
    ("no Ready before and none after is no change", [], [], None),
    ("Ready appearing is a change from Unknown", [], [ready("True")], ("Unknown", "True")),
    ("Ready flipping is a change", [ready("False")], [ready("True")], ("False", "True")),
    ("Ready keeping its status with a new reason is no change", [ready("False", "A")], [ready("False", "B")], None),
]


@pytest.mark.parametrize("name,before,after,expected", READY_CASES, ids=[c[0] for c in READY_CASES])
def test_ready_transition(name, before, after, expected):
    assert ready_transition(before, after) == expected
