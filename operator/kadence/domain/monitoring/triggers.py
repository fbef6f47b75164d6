"""Retrain triggers (issue 10), pure: a cron schedule in a time zone, a new validated Dataset
version, a production-versus-offline gap, and a breach. Triggers that fire in the same
reconciliation are merged into one retrain request that records every cause; that request
then passes the same gate (cooldown, budget) whatever started it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .quality import LOWER_IS_BETTER

BREACH = "breach"
PRODUCTION_GAP = "productionGap"
NEW_DATA = "newData"
SCHEDULE = "schedule"
MANUAL = "manual"
# The order in which causes are listed; the first is the retrain's primary trigger (a person's
# request first: the decision then names who asked).
TRIGGER_ORDER = (MANUAL, BREACH, PRODUCTION_GAP, NEW_DATA, SCHEDULE)

MAX_MISSED_COUNTED = 1000


class TriggerSpecError(ValueError):
    """A trigger setting that cannot be used; `field` is the spec path to report."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Firing:
    trigger: str
    message: str


@dataclass(frozen=True)
class TriggerCheck:
    """One trigger's verdict: fired or not, why, and what else the caller should record."""

    trigger: str
    fired: bool
    reason: str
    message: str
    slot: datetime | None = None  # schedule: the slot this firing consumes
    next_time: datetime | None = None  # schedule: the next slot after now
    gap: float | None = None  # production gap: offline minus live, in the worse direction


# --- schedule ---------------------------------------------------------------------------


def _zone(time_zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise TriggerSpecError("spec.triggers.schedule.timeZone",
                               f"unknown time zone {time_zone!r} (use an IANA name such as Europe/Paris)") from error


def validate_schedule(cron: str, time_zone: str) -> None:
    from croniter import croniter

    _zone(time_zone)
    if not croniter.is_valid(cron):
        raise TriggerSpecError("spec.triggers.schedule.cron", f"not a valid cron expression: {cron!r}")


def check_schedule(*, cron: str, time_zone: str, now: datetime, last_run: datetime | None,
                   since: datetime) -> TriggerCheck:
    """Due when a slot of the schedule lies in (last run, now] — or (since, now] before the first
    run, `since` being when the policy started watching. However many slots were missed (an
    operator restart, a long outage), it fires once, for the latest slot."""
    from croniter import croniter

    validate_schedule(cron, time_zone)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = _zone(time_zone)
    local_now = now.astimezone(zone)
    # get_prev excludes its start; start a second later so a slot exactly at `now` counts
    latest_slot = croniter(cron, local_now + timedelta(seconds=1)).get_prev(datetime)
    next_time = croniter(cron, local_now).get_next(datetime).astimezone(timezone.utc)
    latest_slot_utc = latest_slot.astimezone(timezone.utc)
    baseline = last_run if last_run is not None else since
    if latest_slot_utc <= baseline:
        return TriggerCheck(SCHEDULE, False, "NotDue", f"next run at {next_time.isoformat()}",
                            next_time=next_time)
    missed = _count_slots(cron, zone, baseline, latest_slot_utc)
    message = f"scheduled run of {latest_slot.isoformat()} ({time_zone})"
    if missed > 1:
        shown = f"{missed}" if missed < MAX_MISSED_COUNTED else f"at least {MAX_MISSED_COUNTED}"
        message += f"; {shown} slots were due since {baseline.isoformat()}, run once"
    return TriggerCheck(SCHEDULE, True, "ScheduleDue", message, slot=latest_slot_utc, next_time=next_time)


def _count_slots(cron: str, zone: ZoneInfo, after: datetime, until: datetime) -> int:
    from croniter import croniter

    iterator = croniter(cron, after.astimezone(zone))
    count = 0
    while count < MAX_MISSED_COUNTED:
        slot = iterator.get_next(datetime)
        if slot > until:
            break
        count += 1
    return count


# --- new data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetVersionInfo:
    name: str
    rows: int
    validated: bool = True


def check_new_data(*, baseline: DatasetVersionInfo | None, latest: DatasetVersionInfo | None,
                   min_new_rows: int | None = None, min_growth_percent: float | None = None) -> TriggerCheck:
    """Fires for a validated Dataset version newer than the baseline (the version the serving
    model was trained on, or the last one that triggered). With `minNewRows` and/or
    `minGrowthPercent`, only when the version adds that many rows or grows by that much
    (either suffices)."""
    if latest is None:
        return TriggerCheck(NEW_DATA, False, "NoDatasetVersion", "the Dataset has no version yet")
    if baseline is not None and latest.name == baseline.name:
        return TriggerCheck(NEW_DATA, False, "NoNewVersion", f"latest Dataset version {latest.name} is already used")
    if not latest.validated:
        return TriggerCheck(NEW_DATA, False, "NewVersionNotValidated",
                            f"Dataset version {latest.name} did not pass validation")
    if baseline is None:
        return TriggerCheck(NEW_DATA, True, "NewDataVersion",
                            f"new validated Dataset version {latest.name} ({latest.rows} rows)")
    added = latest.rows - baseline.rows
    growth = 100.0 * added / baseline.rows if baseline.rows > 0 else float("inf")
    change = f"{latest.name} has {added:+d} rows ({growth:+.1f}%) over {baseline.name}"
    conditions = []
    if min_new_rows is not None:
        conditions.append(added >= min_new_rows)
    if min_growth_percent is not None:
        conditions.append(growth >= min_growth_percent)
    if conditions and not any(conditions):
        wanted = " or ".join(
            part for part in (f"{min_new_rows} new rows" if min_new_rows is not None else "",
                              f"{min_growth_percent:g}% growth" if min_growth_percent is not None else "") if part)
        return TriggerCheck(NEW_DATA, False, "NotEnoughNewData", f"{change}; needs {wanted}")
    return TriggerCheck(NEW_DATA, True, "NewDataVersion", f"new validated Dataset version: {change}")


# --- production gap ---------------------------------------------------------------------


def production_gap(metric: str, offline: float, live: float) -> float:
    """How much worse production is than the hold-out, positive when worse: in the metric's
    units for scores (f1 0.85 offline, 0.70 live: 0.15); relative to the offline value for
    rmse and mae (0.30 means 30 % larger errors live)."""
    if metric in LOWER_IS_BETTER:
        if offline <= 0:
            return float("inf") if live > offline else 0.0
        return (live - offline) / offline
    return offline - live


def check_production_gap(*, metric: str, offline: float | None, live: float | None, margin: float,
                         labelled: int, min_labelled: int, retrain: bool) -> TriggerCheck:
    """Reported whenever it can be computed; fires (asks for a retrain) only when the policy
    says `retrain: true`."""
    if not 0 < margin <= 1:
        raise TriggerSpecError("spec.triggers.onProductionGap.margin", f"must be in (0, 1], got {margin}")
    if offline is None:
        return TriggerCheck(PRODUCTION_GAP, False, "NoOfflineMetric",
                            f"the Production model has no hold-out {metric} recorded")
    if live is None or labelled < min_labelled:
        return TriggerCheck(PRODUCTION_GAP, False, "TooFewLabels",
                            f"{labelled} labelled predictions, {min_labelled} needed to compare with the hold-out")
    gap = production_gap(metric, offline, live)
    unit = " (relative)" if metric in LOWER_IS_BETTER else ""
    text = f"live {metric}={live:.4g} vs hold-out {offline:.4g}: gap {gap:.4g}{unit}, margin {margin:g}"
    if gap <= margin:
        return TriggerCheck(PRODUCTION_GAP, False, "WithinMargin", text, gap=gap)
    if not retrain:
        return TriggerCheck(PRODUCTION_GAP, False, "ProductionGapReported", text + " (reported only)", gap=gap)
    return TriggerCheck(PRODUCTION_GAP, True, "ProductionGap", text, gap=gap)


# --- manual -----------------------------------------------------------------------------


def check_manual(*, requested_at: str | None, requested_by: str | None, reason: str | None,
                 handled: str | None) -> TriggerCheck:
    """Fires once per request: a requestedAt other than the one last handled (run or held)."""
    if requested_at is None:
        return TriggerCheck(MANUAL, False, "NotRequested", "no retrain was requested")
    if requested_at == handled:
        return TriggerCheck(MANUAL, False, "RequestHandled", f"the request of {requested_at} was handled")
    why = f": {reason}" if reason else ""
    return TriggerCheck(MANUAL, True, "ManualRequest", f"requested by {requested_by} at {requested_at}{why}")


# --- breach and merging -----------------------------------------------------------------


def check_breach(*, enabled: bool, breached: bool, message: str) -> TriggerCheck:
    if not breached:
        return TriggerCheck(BREACH, False, "NotBreached", message)
    if not enabled:
        return TriggerCheck(BREACH, False, "BreachTriggerDisabled", message + " (onBreach is off)")
    return TriggerCheck(BREACH, True, "Breached", message)


@dataclass(frozen=True)
class RetrainRequest:
    """One retrain for every trigger that fired together."""

    causes: tuple[Firing, ...] = field(default_factory=tuple)

    @property
    def primary(self) -> str:
        return self.causes[0].trigger

    @property
    def triggers(self) -> list[str]:
        return [c.trigger for c in self.causes]

    @property
    def annotation(self) -> str:
        """The value of `kadence.dev/retrain-trigger`, e.g. `breach,schedule`."""
        return ",".join(self.triggers)

    @property
    def message(self) -> str:
        return "; ".join(f"{c.trigger}: {c.message}" for c in self.causes)


def merge_firings(checks: Sequence[TriggerCheck]) -> RetrainRequest | None:
    """None when nothing fired; else one request listing each fired trigger once, in
    TRIGGER_ORDER (the first is the primary cause)."""
    fired: dict[str, Firing] = {}
    for check in checks:
        if check.fired and check.trigger not in fired:
            fired[check.trigger] = Firing(check.trigger, check.message)
    if not fired:
        return None
    order = {name: i for i, name in enumerate(TRIGGER_ORDER)}
    return RetrainRequest(tuple(sorted(fired.values(), key=lambda f: order.get(f.trigger, len(order)))))
