"""`kadence demo --label-delay N`: which ground truth the demo sends when (pure)."""

from __future__ import annotations

import pytest

from kadence.demo.loop import due_feedback, rollout_in_flight

PENDING = [(0, {"requestId": "a"}), (1, {"requestId": "b"}), (2, {"requestId": "c"}), (2, {"requestId": "d"})]


@pytest.mark.parametrize(("month", "delay", "due", "held"), [
    (2, 0, ["a", "b", "c", "d"], []),
    (2, 1, ["a", "b"], ["c", "d"]),
    (3, 1, ["a", "b", "c", "d"], []),
    (2, 2, ["a"], ["b", "c", "d"]),
    (1, 3, [], ["a", "b", "c", "d"]),
])
def test_the_labels_of_month_m_are_sent_from_month_m_plus_the_delay_on_and_the_rest_is_held(month, delay, due, held):
    sent, kept = due_feedback(PENDING, month, delay)
    assert [item["requestId"] for item in sent] == due
    assert [item["requestId"] for _, item in kept] == held
    assert all(predicted > month - delay for predicted, _ in kept)


@pytest.mark.parametrize(("stable", "recent", "busy"), [
    (2, ["2", "2"], None),
    (2, ["1", "2", "2"], "the stable Deployment rolls out version 2 (version 1 still answers)"),
    (None, ["1"], None),
    (1, [], None),
])
def test_a_promotion_rolls_out_while_the_latest_answers_still_come_from_another_version(stable, recent, busy):
    assert rollout_in_flight(stable, recent) == busy
