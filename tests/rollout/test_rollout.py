"""The canary analysis and rollout state machine, table-tested."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from kadence.api.inferenceservice import Analysis, Canary, CanaryStep, QualityGate
from kadence.domain.rollout import (
    Observed,
    RolloutState,
    VersionStats,
    advance,
    judge,
    parse_duration,
    replica_split,
    starting,
    stats_from_metrics,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
ANALYSIS = Analysis(min_requests=50, max_error_rate=0.01, max_latency_p99_ratio=1.5, max_wait="10m")
CANARY = Canary(version=4, steps=[CanaryStep(weight=10, pause="1m"), CanaryStep(weight=50, pause="1m")],
                analysis=ANALYSIS)
HEALTHY = VersionStats(requests=500, errors=0, latency_p99=0.010)
GOOD = VersionStats(requests=100, errors=0, latency_p99=0.011)


def progressing(step=0, weight=10, started=T0, phase="Progressing", reason=""):
    return RolloutState(phase=phase, stable_version=3, canary_version=4, canary_weight=weight, current_step=step,
                        step_started_at=started, reason=reason)


def seen(canary=GOOD, stable=HEALTHY, **kwargs):
    return Observed(stable_ready=True, canary_ready=True, stable=stable, canary=canary, **kwargs)


# ---------------------------------------------------------------- judge


@pytest.mark.parametrize("canary, verdict, words", [
    (VersionStats(requests=10), "wait", "served 10 of the 50 requests"),
    (VersionStats(requests=100, errors=2, latency_p99=0.01), "fail", "error rate 0.0200 is above 0.01"),
    (VersionStats(requests=100, errors=1, latency_p99=0.01), "pass", "error rate 0.0100"),
    (VersionStats(requests=100, latency_p99=0.020), "fail", "p99 latency 20.0 ms is 2.00x stable's 10.0 ms (at most 1.5x)"),
    (VersionStats(requests=100, latency_p99=0.015), "pass", "p99 1.50x stable"),
])
def test_an_analysis_judges_errors_and_latency_with_numbers(canary, verdict, words):
    judgement = judge(ANALYSIS, HEALTHY, canary)
    assert judgement.verdict == verdict
    assert words in judgement.message


def test_quality_is_judged_only_with_enough_labels_on_both_sides():
    analysis = Analysis(min_requests=50, quality=QualityGate(metric="f1", max_drop=0.02, min_labelled=30))
    stable = VersionStats(requests=500, latency_p99=0.01, labelled=100, quality=0.80)
    too_few = judge(analysis, stable, VersionStats(requests=100, latency_p99=0.01, labelled=5, quality=0.10))
    assert too_few.verdict == "pass" and "f1 not judged yet (5 canary and 100 stable labels of 30 each)" in too_few.message
    worse = judge(analysis, stable, VersionStats(requests=100, latency_p99=0.01, labelled=40, quality=0.70))
    assert worse.verdict == "fail" and "f1 0.700 is 0.100 below stable's 0.800 (at most 0.02)" in worse.message
    assert worse.quality_delta == pytest.approx(-0.1)
    close = judge(analysis, stable, VersionStats(requests=100, latency_p99=0.01, labelled=40, quality=0.79))
    assert close.verdict == "pass"


# ---------------------------------------------------------------- state machine


def test_a_new_canary_starts_at_the_first_step():
    result = advance(RolloutState(stable_version=3), 3, CANARY, seen(), T0)
    assert (result.state.phase, result.state.canary_version, result.state.canary_weight, result.state.current_step) == \
        ("Progressing", 4, 10, 0)
    assert result.event[1] == "CanaryStarted"


def test_a_step_holds_until_its_pause_has_elapsed():
    result = advance(progressing(), 3, CANARY, seen(), T0 + timedelta(seconds=30))
    assert result.state.current_step == 0 and result.judgement is None
    assert result.requeue_after == pytest.approx(30)


def test_a_passed_step_moves_to_the_next_weight():
    result = advance(progressing(), 3, CANARY, seen(), T0 + timedelta(minutes=1))
    assert (result.state.current_step, result.state.canary_weight, result.state.step_started_at) == \
        (1, 50, T0 + timedelta(minutes=1))
    assert result.judgement.verdict == "pass" and result.event[1] == "CanaryStepPassed"


def test_a_failed_analysis_rolls_back_at_once_even_mid_step():
    bad = VersionStats(requests=100, errors=30, latency_p99=0.01)
    result = advance(progressing(), 3, CANARY, seen(canary=bad), T0 + timedelta(seconds=5))
    assert result.state.phase == "RolledBack" and result.state.canary_weight == 0
    assert result.state.reason == "AnalysisFailed: error rate 0.3000 is above 0.01"
    assert result.event == ("Warning", "RolledBack", "canary version 4 rolled back at 10%: error rate 0.3000 is above 0.01")


def test_a_rolled_back_canary_is_not_retried_until_the_spec_names_another_version():
    rolled = progressing(phase="RolledBack", weight=0)
    assert advance(rolled, 3, CANARY, seen(), T0 + timedelta(hours=1)).state == rolled
    other = Canary(version=5, steps=CANARY.steps, analysis=ANALYSIS)
    assert advance(rolled, 3, other, seen(), T0 + timedelta(hours=1)).state.canary_version == 5


def test_a_canary_without_enough_traffic_pauses_instead_of_promoting():
    few = VersionStats(requests=3, latency_p99=0.01)
    waiting = advance(progressing(), 3, CANARY, seen(canary=few), T0 + timedelta(minutes=5))
    assert waiting.state.phase == "Progressing"
    paused = advance(progressing(), 3, CANARY, seen(canary=few), T0 + timedelta(minutes=10))
    assert paused.state.phase == "Paused" and paused.state.reason.startswith("InsufficientTraffic: the canary served 3")
    assert paused.event[:2] == ("Warning", "InsufficientTraffic")
    resumed = advance(paused.state, 3, CANARY, seen(), T0 + timedelta(minutes=11))
    assert resumed.state.phase == "Progressing" and resumed.state.current_step == 1


def test_the_last_step_passing_promotes_the_canary():
    result = advance(progressing(step=1, weight=50), 3, CANARY, seen(), T0 + timedelta(minutes=1))
    assert result.state.phase == "Promoting" and result.state.stable_version == 4 and result.promoted == 4
    done = advance(result.state, 3, CANARY, seen(), T0 + timedelta(minutes=2))
    assert done.state.phase == "Stable" and done.state.stable_version == 4 and done.state.canary_version is None


def test_without_auto_promote_the_last_step_waits_for_a_person():
    manual = CANARY.model_copy(update={"auto_promote": False})
    waiting = advance(progressing(step=1, weight=50), 3, manual, seen(), T0 + timedelta(minutes=1))
    assert waiting.state.phase == "Paused" and waiting.state.reason.startswith("awaiting promotion")
    still = advance(waiting.state, 3, manual, seen(), T0 + timedelta(minutes=5))
    assert still.state.phase == "Paused"
    promoted = advance(waiting.state, 3, manual, seen(promote_requested=True), T0 + timedelta(minutes=5))
    assert promoted.state.phase == "Promoting" and promoted.promoted == 4


def test_a_canary_that_never_becomes_ready_is_rolled_back_after_max_wait():
    observed = Observed(stable_ready=True, canary_ready=False, stable=HEALTHY)
    assert advance(progressing(), 3, CANARY, observed, T0 + timedelta(minutes=5)).state.phase == "Progressing"
    result = advance(progressing(), 3, CANARY, observed, T0 + timedelta(minutes=10))
    assert result.state.phase == "RolledBack" and "did not become ready in 10m" in result.state.reason


def test_a_stable_version_that_served_and_lost_its_replicas_is_degraded():
    result = advance(RolloutState(phase="Stable", stable_version=3), 3, None, Observed(stable_ready=False), T0)
    assert result.state.phase == "Degraded" and "no ready replica" in result.state.reason
    back = advance(result.state, 3, None, Observed(stable_ready=True), T0)
    assert back.state.phase == "Stable"


def test_a_new_stable_version_is_starting_not_degraded_until_its_first_replica_is_ready():
    first = advance(RolloutState(), 3, None, Observed(stable_ready=False), T0)
    assert (first.state.phase, first.state.stable_version, first.state.canary_version) == ("Progressing", 3, None)
    assert first.state.reason == "StableStarting: version 3 has no ready replica yet" and first.event is None
    assert starting(first.state) and first.state.step_started_at == T0
    still = advance(first.state, 3, None, Observed(stable_ready=False), T0 + timedelta(minutes=5))
    assert starting(still.state) and still.state.step_started_at == T0
    ready = advance(still.state, 3, None, Observed(stable_ready=True), T0 + timedelta(minutes=6))
    assert (ready.state.phase, ready.state.step_started_at) == ("Stable", None)


def test_a_new_stable_version_that_never_becomes_ready_is_degraded_after_the_start_deadline():
    first = advance(RolloutState(), 3, None, Observed(stable_ready=False), T0)
    late = advance(first.state, 3, None, Observed(stable_ready=False), T0 + timedelta(minutes=10))
    assert late.state.phase == "Degraded"
    assert late.state.reason == "stable version 3 did not become ready within 10m"


def test_a_stage_change_starts_the_new_stable_version_and_a_canary_waits_for_it():
    # The replicas seen ready are the previous version's: the new one is starting.
    moved = advance(RolloutState(phase="Stable", stable_version=3), 5, CANARY, seen(), T0)
    assert starting(moved.state) and moved.state.stable_version == 5 and moved.event is None
    serving = advance(moved.state, 5, CANARY, seen(), T0 + timedelta(seconds=20))
    assert serving.state.phase == "Progressing" and serving.state.canary_version == 4
    assert serving.event[1] == "CanaryStarted"


@pytest.mark.parametrize("phase", ["Progressing", "Paused", "RolledBack", "Stable"])
def test_a_stable_whose_status_lags_a_replica_change_still_serves(phase):
    state = (progressing(phase=phase, reason="awaiting promotion") if phase != "Stable"
             else RolloutState(phase="Stable", stable_version=3))
    lagging = Observed(stable_ready=False, stable_serving=True, canary_ready=True, stable=HEALTHY, canary=GOOD)
    result = advance(state, 3, CANARY if phase != "Stable" else None, lagging, T0 + timedelta(seconds=5))
    assert result.state.phase == phase and result.judgement is None


def test_a_starting_stable_needs_its_own_rolled_out_replica_not_a_lagging_status():
    result = advance(RolloutState(), 3, None, Observed(stable_ready=False, stable_serving=True), T0)
    assert starting(result.state)


# ---------------------------------------------------------------- approved challengers


def test_a_challenger_canary_records_its_source_and_names_the_verdict_in_its_event():
    result = advance(RolloutState(phase="Stable", stable_version=3), 3, CANARY, seen(), T0, source="challenger",
                     origin="approved challenger: candidate f1=0.81 vs Production 0.74")
    assert (result.state.phase, result.state.canary_version, result.state.source) == ("Progressing", 4, "challenger")
    assert result.event == ("Normal", "CanaryStarted", "canary version 4 (approved challenger: candidate f1=0.81 vs "
                                                       "Production 0.74) started at 10% of traffic")


def test_a_rolled_back_challenger_keeps_its_rolled_back_status_once_it_is_no_longer_approved():
    rolled = replace(progressing(phase="RolledBack", weight=0, reason="AnalysisFailed: error rate 0.3000"),
                     source="challenger")
    assert advance(rolled, 3, None, seen(), T0 + timedelta(minutes=1)).state == rolled
    assert advance(rolled, 3, CANARY, seen(), T0 + timedelta(minutes=1), source="challenger").state == rolled


def test_a_newer_approved_challenger_after_a_rollback_starts_a_fresh_canary():
    rolled = replace(progressing(phase="RolledBack", weight=0), source="challenger")
    newer = CANARY.model_copy(update={"version": 5})
    result = advance(rolled, 3, newer, seen(), T0 + timedelta(hours=1), source="challenger")
    assert (result.state.phase, result.state.canary_version, result.state.current_step) == ("Progressing", 5, 0)


def test_a_pinned_canary_of_a_rolled_back_challenger_version_is_tried_because_a_person_named_it():
    rolled = replace(progressing(phase="RolledBack", weight=0), source="challenger")
    result = advance(rolled, 3, CANARY, seen(), T0 + timedelta(hours=1), source="spec")
    assert (result.state.phase, result.state.source) == ("Progressing", "spec")


def test_a_challenger_that_loses_its_approval_mid_canary_returns_traffic_to_stable():
    running = replace(progressing(), source="challenger")
    result = advance(running, 3, None, seen(), T0 + timedelta(seconds=10))
    assert (result.state.phase, result.state.canary_version, result.state.source) == ("Stable", None, None)
    assert result.event == ("Normal", "CanaryRemoved", "canary version 4 is no longer an approved challenger; all "
                                                       "traffic on version 3")


def test_a_promoted_challenger_ends_stable_without_a_canary_source():
    running = replace(progressing(step=1, weight=50), source="challenger")
    promoting = advance(running, 3, CANARY, seen(), T0 + timedelta(minutes=1), source="challenger")
    assert promoting.promoted == 4 and promoting.state.source == "challenger"
    done = advance(promoting.state, 4, None, seen(), T0 + timedelta(minutes=2))
    assert (done.state.phase, done.state.stable_version, done.state.source) == ("Stable", 4, None)


def test_removing_the_canary_from_the_spec_returns_all_traffic_to_stable():
    result = advance(progressing(), 3, None, seen(), T0 + timedelta(seconds=10))
    assert result.state.phase == "Stable" and result.state.canary_weight == 0 and result.event[1] == "CanaryRemoved"


def test_a_new_pinned_version_without_canary_rolls_stable_directly_and_is_stable_once_it_serves():
    result = advance(RolloutState(phase="Stable", stable_version=3), 5, None, seen(), T0)
    assert result.state.stable_version == 5 and starting(result.state)
    served = advance(result.state, 5, None, seen(), T0 + timedelta(seconds=10))
    assert (served.state.phase, served.state.stable_version) == ("Stable", 5)


# ---------------------------------------------------------------- replicas and metrics


@pytest.mark.parametrize("total, weight, exact, stable, canary, effective", [
    (10, 10, False, 9, 1, 10),
    (10, 50, False, 5, 5, 50),
    (1, 10, False, 1, 1, 50),
    (4, 10, False, 3, 1, 25),
    (4, 100, False, 0, 4, 100),
    (4, 10, True, 4, 1, 10),
    (4, 0, False, 4, 0, 0),
])
def test_replicas_follow_the_canary_weight(total, weight, exact, stable, canary, effective):
    split = replica_split(total, weight, exact)
    assert (split.stable_replicas, split.canary_replicas, split.effective_weight) == (stable, canary, effective)


METRICS = """
kadence_serving_requests_total{code="200",endpoint="predict",model="m",protocol="v1",version="4"} %d
kadence_serving_requests_total{code="500",endpoint="infer",model="m",protocol="v2",version="4"} %d
kadence_serving_requests_total{code="400",endpoint="predict",model="m",protocol="v1",version="4"} 7
kadence_serving_requests_total{code="200",endpoint="predict",model="m",protocol="v1",version="3"} 1000
kadence_serving_request_duration_seconds_bucket{le="0.01",model="m",protocol="v1",version="4"} %d
kadence_serving_request_duration_seconds_bucket{le="0.02",model="m",protocol="v1",version="4"} %d
kadence_serving_request_duration_seconds_bucket{le="+Inf",model="m",protocol="v1",version="4"} %d
"""


def test_stats_are_the_difference_between_two_scrapes_of_one_version():
    before = METRICS % (100, 1, 90, 100, 100)
    after = METRICS % (300, 3, 190, 300, 300)
    stats = stats_from_metrics(after, before, "4")
    assert (stats.requests, stats.errors) == (202, 2)
    assert stats.latency_p99 == pytest.approx(0.01 + 0.01 * (198 - 100) / 100)


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1m30s", 90), ("2ms", 0.002), ("1.5h", 5400)])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "1x", "s30"])
def test_a_bad_duration_is_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
