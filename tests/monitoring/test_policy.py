from datetime import datetime, timedelta, timezone

import pytest

from kadence.api.common import duration_delta, parse_duration

from kadence.domain.monitoring.policy import (
    CHALLENGER_NOT_BETTER,
    CHALLENGER_NOT_EVALUATED,
    CHALLENGER_WINS,
    DRIFT_AND_QUALITY,
    DRIFT_DETECTED,
    HEALTHY,
    METRIC_UNAVAILABLE,
    MISSING_REFERENCE,
    NO_CHAMPION,
    NO_DRIFT,
    NO_FEEDBACK,
    NO_PREDICTIONS,
    NOTHING_JUDGED,
    QUALITY_BELOW_THRESHOLD,
    QUALITY_OK,
    TOO_FEW_LABELS,
    TOO_FEW_LABELS_TO_COMPARE,
    TOO_FEW_SAMPLES,
    Decision,
    challenger_gate,
    judge_drift,
    judge_evaluation,
    judge_quality,
)
from kadence.domain.monitoring.retrain import BUDGET_EXHAUSTED, COOLDOWN, PastRetrain, retrain_gate

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def drift(**overrides):
    args = dict(samples=1000, min_samples=100, reference_available=True, judged_features=4,
                drifted_features=[], drift_share=0.5)
    return judge_drift(**(args | overrides))


@pytest.mark.parametrize("overrides, reason, breached", [
    pytest.param({"reference_available": False}, MISSING_REFERENCE, False, id="a missing reference is reported as such"),
    pytest.param({"samples": 0}, NO_PREDICTIONS, False, id="an empty window is no predictions, not no drift"),
    pytest.param({"samples": 99}, TOO_FEW_SAMPLES, False, id="too few samples are not judged"),
    pytest.param({"judged_features": 0}, NOTHING_JUDGED, False, id="no judged feature is reported"),
    pytest.param({"drifted_features": ["a"]}, NO_DRIFT, False, id="one of four is below half"),
    pytest.param({"drifted_features": ["a", "b"]}, DRIFT_DETECTED, True, id="two of four reach half"),
    pytest.param({"samples": 100, "drifted_features": ["a", "b", "c"]}, DRIFT_DETECTED, True,
                 id="exactly the minimum of samples is judged"),
])
def test_drift_verdicts(overrides, reason, breached):
    decision = drift(**overrides)
    assert (decision.reason, decision.breached) == (reason, breached)


def test_a_drift_breach_names_the_drifted_features_and_the_share():
    decision = drift(drifted_features=["tenure", "plan"])
    assert decision.message == "2/4 features drifted (50% >= 50%): tenure, plan"


def test_too_few_samples_says_how_many_are_needed():
    assert drift(samples=12).message == "12 predictions in the window, 100 needed to judge drift"


def quality(**overrides):
    args = dict(metric="f1", threshold=0.55, value=0.8, labelled=200, min_labelled=50)
    return judge_quality(**(args | overrides))


@pytest.mark.parametrize("overrides, reason, breached", [
    pytest.param({"labelled": 0, "value": None}, NO_FEEDBACK, False, id="no feedback yet is reported as such"),
    pytest.param({"labelled": 49, "value": 0.1}, TOO_FEW_LABELS, False, id="too few labels are not judged even if low"),
    pytest.param({"value": None, "unavailable_because": "no probabilities were logged"}, METRIC_UNAVAILABLE, False,
                 id="an uncomputable metric is reported"),
    pytest.param({"value": 0.54}, QUALITY_BELOW_THRESHOLD, True, id="f1 below the threshold breaches"),
    pytest.param({"value": 0.55}, QUALITY_OK, False, id="f1 at the threshold does not breach"),
    pytest.param({"metric": "rmse", "threshold": 3.0, "value": 3.2}, QUALITY_BELOW_THRESHOLD, True,
                 id="rmse above the threshold breaches"),
    pytest.param({"metric": "rmse", "threshold": 3.0, "value": 2.0}, QUALITY_OK, False, id="rmse below is fine"),
])
def test_quality_verdicts(overrides, reason, breached):
    decision = quality(**overrides)
    assert (decision.reason, decision.breached) == (reason, breached)


def test_a_quality_breach_message_gives_the_value_the_threshold_and_the_sample():
    assert quality(value=0.512).message == "f1=0.512 < 0.55 over 200 labelled predictions"
    assert quality(metric="mae", threshold=1.0, value=1.5).message == "mae=1.5 > 1 over 200 labelled predictions"


OK_DRIFT = Decision(NO_DRIFT, "0/4 features drifted", False)
BAD_DRIFT = Decision(DRIFT_DETECTED, "3/4 features drifted", True)
OK_QUALITY = Decision(QUALITY_OK, "f1=0.8", False)
BAD_QUALITY = Decision(QUALITY_BELOW_THRESHOLD, "f1=0.5", True)
NO_LABELS = Decision(NO_FEEDBACK, "no labelled predictions", False)


@pytest.mark.parametrize("drift_decision, quality_decision, reason, breached", [
    pytest.param(OK_DRIFT, OK_QUALITY, HEALTHY, False, id="both fine is healthy"),
    pytest.param(BAD_DRIFT, OK_QUALITY, DRIFT_DETECTED, True, id="drift alone breaches"),
    pytest.param(OK_DRIFT, BAD_QUALITY, QUALITY_BELOW_THRESHOLD, True, id="quality alone breaches"),
    pytest.param(BAD_DRIFT, BAD_QUALITY, DRIFT_AND_QUALITY, True, id="both breach together"),
    pytest.param(OK_DRIFT, NO_LABELS, NO_FEEDBACK, False, id="no feedback is not reported as healthy"),
    pytest.param(BAD_DRIFT, NO_LABELS, DRIFT_DETECTED, True, id="drift breaches while feedback is missing"),
    pytest.param(None, OK_QUALITY, HEALTHY, False, id="quality only policy"),
    pytest.param(OK_DRIFT, None, HEALTHY, False, id="drift only policy"),
])
def test_evaluation_verdicts(drift_decision, quality_decision, reason, breached):
    decision = judge_evaluation(drift_decision, quality_decision)
    assert (decision.reason, decision.breached) == (reason, breached)


def test_the_evaluation_message_carries_both_parts():
    assert judge_evaluation(BAD_DRIFT, BAD_QUALITY).message == "f1=0.5; 3/4 features drifted"


def gate(**overrides):
    args = dict(now=NOW, triggers=["breach"], past=[], cooldown=timedelta(hours=6), max_per_day=3,
                labelled_rows=None, min_new_labels=50)
    return retrain_gate(**(args | overrides))


def won(hours: float) -> PastRetrain:
    return PastRetrain(f"r{hours}", NOW - timedelta(hours=hours), "Won")


def lost(hours: float, rows: int | None = None) -> PastRetrain:
    return PastRetrain(f"r{hours}", NOW - timedelta(hours=hours), "Lost", rows)


@pytest.mark.parametrize("overrides, reason", [
    pytest.param({}, None, id="a first breach retrains"),
    pytest.param({"past": [won(5.99)]}, COOLDOWN, id="a retrain inside the cooldown of a win is held"),
    pytest.param({"past": [won(6)]}, None, id="the cooldown ends exactly after its duration"),
    pytest.param({"past": [lost(1)]}, None, id="a loss starts no cooldown"),
    pytest.param({"past": [lost(1, rows=100)], "labelled_rows": 120}, "WaitingForLabels",
                 id="after a loss the next retrain waits for enough new labels"),
    pytest.param({"past": [lost(1, rows=100)], "labelled_rows": 150}, None, id="enough new labels after a loss"),
    pytest.param({"past": [won(3), lost(1, rows=100)], "labelled_rows": 100}, COOLDOWN,
                 id="a loss after a win keeps the win's cooldown"),
    pytest.param({"cooldown": timedelta(hours=1), "past": [lost(2), lost(10), lost(20)]}, BUDGET_EXHAUSTED,
                 id="three retrains in the last day exhaust a budget of three"),
    pytest.param({"cooldown": timedelta(hours=1), "past": [lost(2), lost(10), lost(25)]}, None,
                 id="a retrain older than a day no longer counts"),
    pytest.param({"max_per_day": 1, "past": [lost(23)]}, BUDGET_EXHAUSTED,
                 id="the budget is a rolling day across midnight"),
    pytest.param({"past": [PastRetrain("r", NOW - timedelta(hours=2), "Pending")]}, "RetrainInProgress",
                 id="one retrain at a time"),
    pytest.param({"max_per_day": 1, "past": [PastRetrain(None, NOW - timedelta(hours=1), "NothingNew")]}, None,
                 id="a decision with nothing new spends no budget"),
])
def test_retrain_gate(overrides, reason):
    hold = gate(**overrides)
    assert (hold.reason if hold else None) == reason


def test_a_held_retrain_says_when_the_cooldown_ends():
    assert "the cooldown ends at 2026-11-23T17:00:00+00:00" in gate(past=[won(1)]).message


@pytest.mark.parametrize("outcome, most", [("Won", 6), ("Lost", 6)])
def test_a_metric_that_stays_low_causes_no_retrain_storm(outcome, most):
    """Every 5 minutes for two days a breach fires; retrains that win are bounded by the
    cooldown (6h), retrains that lose by the new labels they wait for and the budget (3/day)."""
    retrains: list[PastRetrain] = []
    moment, labelled = NOW, 0
    while moment < NOW + timedelta(days=2):
        labelled += 1  # a label every five minutes
        if gate(now=moment, past=retrains, labelled_rows=labelled) is None:
            retrains.append(PastRetrain(f"r{len(retrains)}", moment, outcome, labelled))
        moment += timedelta(minutes=5)
    times = [r.time for r in retrains]
    assert len(retrains) <= most
    for start in times:
        assert sum(1 for t in times if start <= t < start + timedelta(days=1)) <= 3
    if outcome == "Won":
        assert all(b - a >= timedelta(hours=6) for a, b in zip(times, times[1:]))
    else:
        assert all(b.feedback_rows - a.feedback_rows >= 50 for a, b in zip(retrains, retrains[1:]))


def challenge(**overrides):
    args = dict(metric="f1", champion=0.52, challenger=0.9, labelled=300, min_labelled=50)
    return challenger_gate(**(args | overrides))


@pytest.mark.parametrize("overrides, reason, allowed", [
    pytest.param({}, CHALLENGER_WINS, True, id="a better candidate goes on to canary"),
    pytest.param({"challenger": 0.5}, CHALLENGER_NOT_BETTER, False, id="a worse candidate is not promoted"),
    pytest.param({"challenger": 0.52}, CHALLENGER_NOT_BETTER, False, id="a tie is not better"),
    pytest.param({"challenger": 0.53, "margin": 0.02}, CHALLENGER_NOT_BETTER, False,
                 id="a candidate must beat the margin"),
    pytest.param({"challenger": None}, CHALLENGER_NOT_EVALUATED, False, id="an unscored candidate waits"),
    pytest.param({"champion": None}, NO_CHAMPION, True, id="with no production model there is nothing to beat"),
    pytest.param({"labelled": 10}, TOO_FEW_LABELS_TO_COMPARE, False, id="too few labels cannot decide"),
    pytest.param({"labelled": 2, "champion": 0.0, "challenger": None}, TOO_FEW_LABELS_TO_COMPARE, False,
                 id="a candidate unscored on a handful of rows waits for labels, not for a score"),
    pytest.param({"labelled": 2, "champion": None, "challenger": 0.9}, NO_CHAMPION, True,
                 id="with no production model the label count does not matter"),
    pytest.param({"metric": "rmse", "champion": 3.0, "challenger": 2.0}, CHALLENGER_WINS, True,
                 id="a lower rmse wins"),
])
def test_champion_challenger_gate(overrides, reason, allowed):
    decision = challenge(**overrides)
    assert (decision.reason, decision.allowed) == (reason, allowed)


def test_a_candidate_that_is_not_better_reports_both_scores():
    assert challenge(challenger=0.5).message == "candidate f1=0.5 vs Production 0.52 on 300 labelled predictions"


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("1h30m", 5400), ("1.5d", 129600), ("250ms", 0.25)])
def test_durations_parse_like_the_api_pattern(text, seconds):
    assert parse_duration(text) == seconds and duration_delta(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "5m junk", "-5m"])
def test_a_bad_duration_is_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
