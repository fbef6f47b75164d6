"""Every quality rule, passing and failing, with the observed numbers in the message."""

import numpy as np
import pandas as pd
import pytest

from kadence.api.dataset import DataSchema, QualityRules
from kadence.domain.data.profile import profile_frame
from kadence.domain.data.quality import (
    QualityChecker,
    check_allowed_values,
    check_bound,
    check_class_balance,
    check_duplicate_fraction,
    check_min_rows,
    check_missing_fraction,
    check_nullable,
    check_regex,
)
from kadence.domain.data.versioning import row_hashes


@pytest.mark.parametrize("result, passed, message", [
    (check_min_rows(1000, 1000), True, "minRows: 1000 rows, at least 1000 required"),
    (check_min_rows(999, 1000), False, "minRows: 999 rows, at least 1000 required"),
    (check_missing_fraction("income", 5, 100, 0.05), True,
     "maxMissingFraction[income]: 0.05 of values missing (5 of 100), at most 0.05 allowed"),
    (check_missing_fraction("income", 12, 100, 0.05), False,
     "maxMissingFraction[income]: 0.12 of values missing (12 of 100), at most 0.05 allowed"),
    (check_duplicate_fraction(0, 50, 0.0), True,
     "maxDuplicateFraction: 0 of rows are duplicates (0 of 50), at most 0 allowed"),
    (check_duplicate_fraction(2, 50, 0.01), False,
     "maxDuplicateFraction: 0.04 of rows are duplicates (2 of 50), at most 0.01 allowed"),
    (check_nullable("id", 0), True, "nullable[id]: 0 missing values, none allowed (nullable: false)"),
    (check_nullable("id", 3), False, "nullable[id]: 3 missing values, none allowed (nullable: false)"),
    (check_bound("age", "min", 0, None, 0), True, "min[age]: 0 values below the minimum 0"),
    (check_bound("age", "min", 2, -4.0, 0), False, "min[age]: 2 values below the minimum 0 (the most extreme is -4)"),
    (check_bound("age", "max", 1, 140.0, 120), False,
     "max[age]: 1 values above the maximum 120 (the most extreme is 140)"),
    (check_allowed_values("plan", 0, ["a", "b"]), True, "allowedValues[plan]: 0 values outside [a, b]"),
    (check_allowed_values("plan", 4, ["a", "b"]), False, "allowedValues[plan]: 4 values outside [a, b]"),
    (check_regex("email", 0, ".+@.+"), True, "regex[email]: 0 values do not match '.+@.+'"),
    (check_regex("email", 1, ".+@.+"), False, "regex[email]: 1 values do not match '.+@.+'"),
])
def test_a_rule_reports_pass_or_fail_with_the_observed_numbers_and_threshold(result, passed, message):
    assert (result.passed, result.message) == (passed, message)


def test_class_balance_checks_the_rarest_and_the_commonest_class():
    results = check_class_balance({"0": 90, "1": 10}, minimum=0.2, maximum=0.8)
    assert [(r.rule, r.passed) for r in results] == [("classBalance[min]", False), ("classBalance[max]", False)]
    assert results[0].message == ("classBalance[min]: the rarest class is 0.1 of rows (10 of 100), "
                                  "at least 0.2 required")
    assert results[1].message == ("classBalance[max]: the most common class is 0.9 of rows (90 of 100), "
                                  "at most 0.8 allowed")
    assert all(r.passed for r in check_class_balance({"0": 55, "1": 45}, minimum=0.2, maximum=0.8))


SCHEMA = DataSchema.model_validate({"target": "label", "columns": [
    {"name": "id", "type": "int", "nullable": False},
    {"name": "age", "type": "float", "min": 0, "max": 120},
    {"name": "plan", "type": "category", "allowedValues": ["basic", "pro"]},
    {"name": "email", "type": "string", "regex": r"[^@]+@[^@]+"},
    {"name": "label", "type": "int"},
]})
TYPES = {c.name: c.type for c in SCHEMA.columns}
GOOD = pd.DataFrame({
    "id": pd.Series([1, 2, 3, 4], dtype="Int64"),
    "age": [20.0, 30.0, np.nan, 50.0],
    "plan": ["basic", "pro", "pro", None],
    "email": ["a@x", "b@y", "c@z", "d@w"],
    "label": pd.Series([0, 1, 0, 1], dtype="Int64"),
})


def run_rules(frame, rules):
    checker = QualityChecker(SCHEMA, QualityRules.model_validate(rules))
    for start in range(0, len(frame), 3):  # several batches
        batch = frame.iloc[start:start + 3]
        checker.update(batch, row_hashes(batch))
    return {r.rule: r for r in checker.results(profile_frame(frame, TYPES))}


RULES = {"minRows": 4, "maxMissingFraction": 0.3, "maxMissingFractionPerColumn": {"age": 0.25},
         "maxDuplicateFraction": 0.0, "classBalance": {"minFraction": 0.4, "maxFraction": 0.6}}


def test_good_data_passes_every_rule():
    results = run_rules(GOOD, RULES)
    assert set(results) == {"nullable[id]", "min[age]", "max[age]", "allowedValues[plan]", "regex[email]", "minRows",
                            "maxMissingFraction[id]", "maxMissingFraction[age]", "maxMissingFraction[plan]",
                            "maxMissingFraction[email]", "maxMissingFraction[label]", "maxDuplicateFraction",
                            "classBalance[min]", "classBalance[max]"}
    assert [r.message for r in results.values() if not r.passed] == []


def test_bad_data_fails_each_rule_it_breaks_with_the_numbers():
    bad = pd.DataFrame({
        "id": pd.Series([1, None, 3, 3, 3], dtype="Int64"),
        "age": [-1.0, 130.0, np.nan, np.nan, np.nan],
        "plan": ["basic", "gold", "pro", "pro", "pro"],
        "email": ["a@x", "nope", "c@z", "c@z", "c@z"],
        "label": pd.Series([0, 0, 0, 0, 1], dtype="Int64"),
    })
    results = run_rules(bad, {**RULES, "minRows": 10})
    failed = {rule: r.message for rule, r in results.items() if not r.passed}
    assert failed == {
        "nullable[id]": "nullable[id]: 1 missing values, none allowed (nullable: false)",
        "min[age]": "min[age]: 1 values below the minimum 0 (the most extreme is -1)",
        "max[age]": "max[age]: 1 values above the maximum 120 (the most extreme is 130)",
        "allowedValues[plan]": "allowedValues[plan]: 1 values outside [basic, pro]",
        "regex[email]": "regex[email]: 1 values do not match '[^@]+@[^@]+'",
        "minRows": "minRows: 5 rows, at least 10 required",
        "maxMissingFraction[age]": "maxMissingFraction[age]: 0.6 of values missing (3 of 5), at most 0.25 allowed",
        "maxDuplicateFraction": "maxDuplicateFraction: 0.2 of rows are duplicates (1 of 5), at most 0 allowed",
        "classBalance[min]": "classBalance[min]: the rarest class is 0.2 of rows (1 of 5), at least 0.4 required",
        "classBalance[max]": "classBalance[max]: the most common class is 0.8 of rows (4 of 5), at most 0.6 allowed",
    }


def test_a_missing_fraction_override_for_an_unknown_column_is_reported():
    results = run_rules(GOOD, {"maxMissingFractionPerColumn": {"income": 0.1}})
    assert results["maxMissingFraction[income]"].passed is False
    assert "no column named 'income'" in results["maxMissingFraction[income]"].message
