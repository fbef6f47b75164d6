"""The demo's seeded traffic: churn-like customers and a covariate shift to a new segment.

Month 0 is the world the first model is trained on: monthly charges of 20-110, and churn a
noisy function of short tenure, support calls, a monthly contract and the charges, so a
model trained on it reaches an F1 of about 0.8. From month 1 on, *premium* customers (charges
130-180, a tier that did not exist when the model was trained) take a growing share of the
traffic: new sign-ups and long-standing customers who upgraded. Among them churn is a clean
function of the inputs - the long-standing ones leave (a competitor's offer) - which the first model gets backwards: it learned that long tenures
stay. Its F1 therefore falls month after month, under 0.55 at `crossing_month`, and keeps
falling. The segment never overlaps the month-0 data, so appending the labelled feedback of
the breach window to the original rows contradicts nothing, and a model retrained on both
finds the new rule (a split on charges, then on tenure) and scores close to 1 once the
segment dominates.

With `concept_drift` (what `kadence demo --label-delay N` runs) the relationship changes
too, gradually: while the premium segment grows, the tenure from which its customers churn
falls month by month from 60 (month 1: only the longest-standing leave) to 36 at the crossing
(every long-standing premium customer leaves) and stays there. The same inputs get different
labels in different months, so a retrain that weighs every month alike learns a blur of old
rules; the newest labelled months say what holds now.

Everything is a pure function of (seed, month): rerunning the demo sends the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGET = "churned"
CONTRACTS = ("month-to-month", "one-year", "two-year")
COLUMNS = ("tenure_months", "monthly_charges", "support_calls", "contract", TARGET)
INPUTS = COLUMNS[:-1]
PREMIUM_CHARGES = (130.0, 180.0)
PREMIUM_CHURN_TENURE = 24  # premium customers with at least this many months churn
# With concept drift: the churn tenure of premium customers in month 1, and from the crossing on.
DRIFT_FIRST_TENURE, DRIFT_FINAL_TENURE = 60, 36
# The segment's share just before and at the crossing month: wide enough apart that the
# first model's F1 is clearly above the threshold before and clearly under it at the crossing.
SHARE_BEFORE_CROSSING = 0.15
SHARE_AT_CROSSING = 0.65
MONTHS_TO_SATURATE = 2  # months after the crossing until the segment is all the traffic


def crossing_month(months: int) -> int:
    """The month whose traffic first takes the first model under the threshold (>= 2)."""
    if months < 4:
        raise ValueError(f"the scenario needs at least 4 months (a healthy start, a decline, the crossing "
                         f"and one month after it); got {months}")
    return max(2, round(0.35 * months))


def segment_share(month: int, months: int) -> float:
    """The premium segment's share of month `month`'s customers (0 in month 0, 1 at the end;
    months past `months` - the demo's extra months - stay at 1)."""
    if month < 0:
        raise ValueError(f"month must be >= 0, got {month}")
    crossing = crossing_month(months)
    if month < crossing:
        return SHARE_BEFORE_CROSSING * month / (crossing - 1)
    # All of the traffic two months after the crossing, or by the last month if that is sooner.
    saturate = max(1, min(MONTHS_TO_SATURATE, months - 1 - crossing))
    return min(1.0, SHARE_AT_CROSSING + (1.0 - SHARE_AT_CROSSING) * (month - crossing) / saturate)


def churn_tenure(month: int, months: int, concept_drift: bool) -> int:
    """The tenure (months) from which premium customers of month `month` churn."""
    if month < 0:
        raise ValueError(f"month must be >= 0, got {month}")
    if not concept_drift:
        return PREMIUM_CHURN_TENURE
    crossing = crossing_month(months)
    progress = min(1.0, max(0.0, (month - 1) / max(1, crossing - 1)))
    return round(DRIFT_FIRST_TENURE + (DRIFT_FINAL_TENURE - DRIFT_FIRST_TENURE) * progress)


def customers(rows: int, seed: int, premium_share: float,
              premium_churn_tenure: int = PREMIUM_CHURN_TENURE) -> pd.DataFrame:
    """`rows` customers with their churn label; a `premium_share` of them in the premium segment,
    who churn from `premium_churn_tenure` months on."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    if not 0.0 <= premium_share <= 1.0:
        raise ValueError(f"premium_share must be within [0, 1], got {premium_share}")
    rng = np.random.default_rng(seed)
    premium = rng.random(rows) < premium_share
    # Premium customers are new sign-ups (1-12 months) or long-standing upgrades (36-72 months).
    premium_tenure = np.where(rng.random(rows) < 0.5, rng.integers(1, 13, rows), rng.integers(36, 73, rows))
    tenure = np.where(premium, premium_tenure, np.clip(rng.gamma(2.0, 10.0, rows), 0, 72).round()).astype(int)
    charges = np.where(premium, rng.uniform(*PREMIUM_CHARGES, rows),
                       np.clip(rng.normal(65.0, 18.0, rows), 20.0, 110.0)).round(2)
    calls = np.where(premium, rng.poisson(0.6, rows), rng.poisson(1.5, rows))
    contract = rng.choice(CONTRACTS, rows, p=(0.55, 0.25, 0.20))
    monthly = (contract == "month-to-month").astype(float)
    # The month-0 world: short tenures, many calls, monthly contracts and high charges churn.
    logit = -0.12 * (tenure - 20) + 1.1 * (calls - 1.5) + 1.5 * (monthly - 0.55) + 0.02 * (charges - 65)
    noisy = rng.random(rows) < 1.0 / (1.0 + np.exp(-1.4 * logit))
    churned = np.where(premium, tenure >= premium_churn_tenure, noisy).astype(int)
    return pd.DataFrame({"tenure_months": tenure, "monthly_charges": charges, "support_calls": calls,
                         "contract": contract, TARGET: churned}, columns=list(COLUMNS))


@dataclass(frozen=True)
class Scenario:
    """The demo's months: `months` of traffic, `base_rows` month-0 rows for the first Dataset."""

    months: int = 10
    seed: int = 7
    base_rows: int = 1500
    concept_drift: bool = False  # the premium segment's churn rule moves until the crossing

    def __post_init__(self) -> None:
        crossing_month(self.months)  # validates months

    @property
    def crossing(self) -> int:
        return crossing_month(self.months)

    def share(self, month: int) -> float:
        return segment_share(month, self.months)

    def churn_tenure(self, month: int) -> int:
        return churn_tenure(month, self.months, self.concept_drift)

    def base(self) -> pd.DataFrame:
        """The first Dataset: month-0 customers."""
        return customers(self.base_rows, self.seed, 0.0)

    def month(self, month: int, rows: int, part: int = 0) -> pd.DataFrame:
        """Part `part` of month `month`'s traffic (parts are independent draws of the same month)."""
        seed = int(np.random.SeedSequence([self.seed, month, part]).generate_state(1)[0])
        return customers(rows, seed, self.share(month), self.churn_tenure(month))
