from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kadence.domain.monitoring.triggers import (
    BREACH,
    NEW_DATA,
    PRODUCTION_GAP,
    SCHEDULE,
    DatasetVersionInfo,
    TriggerCheck,
    TriggerSpecError,
    check_breach,
    check_new_data,
    check_production_gap,
    check_schedule,
    merge_firings,
    production_gap,
    validate_schedule,
)

PARIS = ZoneInfo("Europe/Paris")
UTC = timezone.utc
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def schedule(now, last_run=None, cron="0 3 * * 1", time_zone="Europe/Paris", since=CREATED):
    return check_schedule(cron=cron, time_zone=time_zone, now=now, last_run=last_run, since=since)


def test_a_monday_three_oclock_paris_schedule_is_due_at_two_utc_in_winter():
    # 2026-03-02 is a Monday; Paris is UTC+1 in winter
    assert not schedule(utc(2026, 3, 2, 1, 59), last_run=utc(2026, 2, 23, 2, 0)).fired
    due = schedule(utc(2026, 3, 2, 2, 0), last_run=utc(2026, 2, 23, 2, 0))
    assert due.fired and due.slot == utc(2026, 3, 2, 2, 0)
    assert due.next_time == utc(2026, 3, 9, 2, 0)


def test_the_same_schedule_is_due_at_one_utc_in_summer():
    # 2026-06-01 is a Monday; Paris is UTC+2 in summer
    due = schedule(utc(2026, 6, 1, 1, 0, 30), last_run=utc(2026, 5, 25, 1, 0))
    assert due.fired and due.slot == utc(2026, 6, 1, 1, 0)


def test_a_daily_schedule_across_the_spring_forward_keeps_local_time():
    # Paris moves from UTC+1 to UTC+2 on 2026-03-29
    before = schedule(utc(2026, 3, 28, 8, 0), cron="0 8 * * *", last_run=utc(2026, 3, 27, 7, 0))
    after = schedule(utc(2026, 3, 29, 6, 0), cron="0 8 * * *", last_run=utc(2026, 3, 28, 7, 0))
    assert before.slot == utc(2026, 3, 28, 7, 0)
    assert after.fired and after.slot == utc(2026, 3, 29, 6, 0)


def test_a_slot_already_run_is_not_due_again():
    check = schedule(utc(2026, 3, 2, 2, 30), last_run=utc(2026, 3, 2, 2, 0))
    assert not check.fired and check.reason == "NotDue"
    assert check.message == "next run at 2026-03-09T02:00:00+00:00"


def test_missed_runs_during_an_operator_restart_run_once_for_the_latest_slot():
    # last run four weeks ago; the operator was down for three more Mondays
    check = schedule(utc(2026, 3, 30, 9, 0), last_run=utc(2026, 3, 2, 2, 0))
    assert check.fired and check.slot == utc(2026, 3, 30, 1, 0)  # summer time by then
    assert "4 slots were due" in check.message and "run once" in check.message
    # having run it, the next reconciliation finds nothing due
    assert not schedule(utc(2026, 3, 30, 9, 5), last_run=check.slot).fired


def test_before_the_first_run_only_slots_after_the_policy_started_count():
    since = utc(2026, 3, 2, 5, 0)  # created after Monday's slot
    assert not schedule(utc(2026, 3, 3, 0, 0), since=since).fired
    assert schedule(utc(2026, 3, 9, 2, 0), since=since).fired


def test_cron_shorthands_are_accepted():
    assert schedule(utc(2026, 3, 3, 0, 0, 5), cron="@daily", time_zone="UTC", last_run=utc(2026, 3, 2)).fired


@pytest.mark.parametrize("cron, time_zone, field", [
    ("61 * * * *", "UTC", "spec.triggers.schedule.cron"),
    ("every monday", "UTC", "spec.triggers.schedule.cron"),
    ("0 3 * * 1", "Mars/Olympus", "spec.triggers.schedule.timeZone"),
])
def test_an_unusable_schedule_names_the_field(cron, time_zone, field):
    with pytest.raises(TriggerSpecError) as error:
        validate_schedule(cron, time_zone)
    assert error.value.field == field


V1 = DatasetVersionInfo("v1", 1000)


@pytest.mark.parametrize("latest, min_rows, min_growth, fired, reason", [
    pytest.param(None, None, None, False, "NoDatasetVersion", id="no version yet"),
    pytest.param(V1, None, None, False, "NoNewVersion", id="the version already used does not fire"),
    pytest.param(DatasetVersionInfo("v2", 1100, validated=False), None, None, False, "NewVersionNotValidated",
                 id="an invalid new version does not fire"),
    pytest.param(DatasetVersionInfo("v2", 1001), None, None, True, "NewDataVersion",
                 id="any validated new version fires without thresholds"),
    pytest.param(DatasetVersionInfo("v2", 1050), 100, None, False, "NotEnoughNewData", id="too few new rows"),
    pytest.param(DatasetVersionInfo("v2", 1100), 100, None, True, "NewDataVersion", id="exactly enough new rows"),
    pytest.param(DatasetVersionInfo("v2", 1050), None, 10, False, "NotEnoughNewData", id="too little growth"),
    pytest.param(DatasetVersionInfo("v2", 1050), 500, 5, True, "NewDataVersion",
                 id="either threshold suffices"),
])
def test_new_data_trigger(latest, min_rows, min_growth, fired, reason):
    check = check_new_data(baseline=V1, latest=latest, min_new_rows=min_rows, min_growth_percent=min_growth)
    assert (check.fired, check.reason) == (fired, reason)


def test_not_enough_new_data_says_what_is_missing():
    check = check_new_data(baseline=V1, latest=DatasetVersionInfo("v2", 1050), min_new_rows=100,
                           min_growth_percent=10)
    assert check.message == "v2 has +50 rows (+5.0%) over v1; needs 100 new rows or 10% growth"


def test_without_a_baseline_the_first_validated_version_fires():
    assert check_new_data(baseline=None, latest=V1).fired


@pytest.mark.parametrize("metric, offline, live, gap", [
    ("f1", 0.85, 0.70, 0.15),
    ("f1", 0.80, 0.90, -0.10),
    ("rmse", 2.0, 2.6, 0.30),
    ("mae", 2.0, 1.0, -0.5),
])
def test_production_gap_is_absolute_for_scores_and_relative_for_errors(metric, offline, live, gap):
    assert production_gap(metric, offline, live) == pytest.approx(gap)


def gap_check(**overrides):
    args = dict(metric="f1", offline=0.85, live=0.70, margin=0.1, labelled=200, min_labelled=50, retrain=True)
    return check_production_gap(**(args | overrides))


@pytest.mark.parametrize("overrides, fired, reason", [
    pytest.param({}, True, "ProductionGap", id="a gap beyond the margin fires"),
    pytest.param({"retrain": False}, False, "ProductionGapReported", id="a gap without retrain is only reported"),
    pytest.param({"live": 0.80}, False, "WithinMargin", id="a gap within the margin does not fire"),
    pytest.param({"offline": None}, False, "NoOfflineMetric", id="no hold-out metric cannot compare"),
    pytest.param({"labelled": 10}, False, "TooFewLabels", id="too few labels cannot compare"),
])
def test_production_gap_trigger(overrides, fired, reason):
    check = gap_check(**overrides)
    assert (check.fired, check.reason) == (fired, reason)


def test_a_reported_gap_still_carries_its_size():
    check = gap_check(retrain=False)
    assert check.gap == pytest.approx(0.15)
    assert "gap 0.15" in check.message and "reported only" in check.message


def test_a_margin_outside_its_range_names_the_field():
    with pytest.raises(TriggerSpecError) as error:
        gap_check(margin=1.5)
    assert error.value.field == "spec.triggers.onProductionGap.margin"


def test_a_breach_fires_only_when_on_breach_is_enabled():
    assert check_breach(enabled=True, breached=True, message="f1 low").fired
    assert check_breach(enabled=False, breached=True, message="f1 low").reason == "BreachTriggerDisabled"
    assert not check_breach(enabled=True, breached=False, message="ok").fired


def test_triggers_that_fire_together_make_one_request_with_every_cause():
    checks = [
        TriggerCheck(SCHEDULE, True, "ScheduleDue", "weekly"),
        TriggerCheck(NEW_DATA, False, "NoNewVersion", "same"),
        TriggerCheck(BREACH, True, "Breached", "f1=0.5 < 0.55"),
        TriggerCheck(PRODUCTION_GAP, True, "ProductionGap", "gap 0.2"),
    ]
    request = merge_firings(checks)
    assert request.triggers == [BREACH, PRODUCTION_GAP, SCHEDULE]
    assert request.primary == BREACH
    assert request.annotation == "breach,productionGap,schedule"
    assert request.message == "breach: f1=0.5 < 0.55; productionGap: gap 0.2; schedule: weekly"


def test_a_trigger_reported_twice_counts_once_and_nothing_fired_is_no_request():
    twice = [TriggerCheck(SCHEDULE, True, "ScheduleDue", "a"), TriggerCheck(SCHEDULE, True, "ScheduleDue", "b")]
    assert merge_firings(twice).triggers == [SCHEDULE]
    assert merge_firings([TriggerCheck(NEW_DATA, False, "NoNewVersion", "")]) is None
