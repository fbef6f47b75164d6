"""Seeded synthetic customer-churn data: the examples' dataset and the demo's traffic.

`drift` moves the population (covariate shift: longer tenures, higher charges, more
support calls) and `concept_shift` changes how churn depends on the inputs, so a
model trained on drift=0 degrades as either grows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("card", "bank-transfer", "electronic-check", "mailed-check")
COLUMNS = (
    "customer_id",
    "signup_date",
    "tenure_months",
    "monthly_charges",
    "support_calls",
    "contract",
    "payment_method",
    "senior",
    "churned",
)


def churn_frame(rows: int, seed: int = 7, drift: float = 0.0, concept_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = np.clip(rng.gamma(2.0, 12.0 * (1 + drift), rows), 0, 120).round().astype(int)
    charges = np.clip(rng.normal(65 + 25 * drift, 20, rows), 15, 200).round(2)
    calls = rng.poisson(1.5 + 2.0 * drift, rows)
    contract = rng.choice(CONTRACTS, rows, p=(0.55, 0.25, 0.20))
    payment = rng.choice(PAYMENT_METHODS, rows, p=(0.35, 0.25, 0.30, 0.10))
    senior = rng.random(rows) < 0.16
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, rows), unit="D")

    month_to_month = (contract == "month-to-month").astype(float)
    electronic = (payment == "electronic-check").astype(float)
    # The concept: short tenures, high charges, many calls and monthly contracts churn.
    # concept_shift flips the sign of the charges effect and dampens the tenure effect.
    logit = (
        -1.3
        - (1.0 - concept_shift) * 0.08 * (tenure - 24) / 4
        + (1.0 - 2.0 * concept_shift) * 0.04 * (charges - 65)
        + 0.7 * (calls - 1.5)
        + 1.2 * month_to_month
        + 0.5 * electronic
        + 0.3 * senior
    )
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": [f"c{seed:03d}-{i:06d}" for i in range(rows)],
            "signup_date": signup.strftime("%Y-%m-%d"),
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": contract,
            "payment_method": payment,
            "senior": senior,
            "churned": churned.astype(int),
        },
        columns=list(COLUMNS),
    )
