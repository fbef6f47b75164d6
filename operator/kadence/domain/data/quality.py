"""Quality rules of a Dataset: the checks a version must pass to become current.

Each rule gives a `RuleResult(rule, passed, message)`; the message carries the observed
numbers and the threshold, e.g. "maxMissingFraction[income]: 0.12 of values missing
(120 of 1000), at most 0.05 allowed". Rule names:

  schema[columns]             every declared column is present
  schema[types]               every value parses as its column's type
  nullable[COL]               no missing values in a column declared nullable: false
  min[COL] / max[COL]         no value below min / above max
  allowedValues[COL]          every value is one of allowedValues
  regex[COL]                  every value matches the regex as a whole
  minRows                     at least minRows rows
  maxMissingFraction[COL]     per column, the share of missing values (default threshold or
                              the per-column override)
  maxDuplicateFraction        the share of rows that repeat an earlier row exactly
  classBalance[min]/[max]     each target class's share within the bounds

`QualityChecker.update(batch, hashes)` gathers what the per-row rules need batch by batch
(counts of violations, the row hashes for duplicates, the target's class ; `results(profile)` evaluates every rule from that and the profile's counts.
Messages name declared columns, the schema's own values and counts, never a value read from
the data (they reach status and Events: a source must not be able to write text there).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd



@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    message: str

    def wire(self) -> dict:
        return {"rule": self.rule, "passed": self.passed, "message": self.message}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# -- pure rule functions (observed numbers and threshold in, result out) -----------------

def check_min_rows(rows: int, minimum: int) -> RuleResult:
    passed = rows >= minimum
    return RuleResult("minRows", passed, f"minRows: {rows} rows, at least {minimum} required")


def check_missing_fraction(column: str, missing: int, rows: int, maximum: float) -> RuleResult:
    fraction = missing / rows if rows else 0.0
    return RuleResult(
        f"maxMissingFraction[{column}]", fraction <= maximum,
        f"maxMissingFraction[{column}]: {_fmt(fraction)} of values missing ({missing} of {rows}), "
        f"at most {_fmt(maximum)} allowed")


def check_duplicate_fraction(duplicates: int, rows: int, maximum: float) -> RuleResult:
    fraction = duplicates / rows if rows else 0.0
    return RuleResult(
        "maxDuplicateFraction", fraction <= maximum,
        f"maxDuplicateFraction: {_fmt(fraction)} of rows are duplicates ({duplicates} of {rows}), "
        f"at most {_fmt(maximum)} allowed")


def check_nullable(column: str, missing: int) -> RuleResult:
    return RuleResult(f"nullable[{column}]", missing == 0,
                      f"nullable[{column}]: {missing} missing values, none allowed (nullable: false)")


def check_bound(column: str, side: str, violations: int, worst: float | None, bound: float) -> RuleResult:
    relation = "below the minimum" if side == "min" else "above the maximum"
    detail = f" (the most extreme is {_fmt(worst)})" if violations and worst is not None else ""
    return RuleResult(f"{side}[{column}]", violations == 0,
                      f"{side}[{column}]: {violations} values {relation} {_fmt(bound)}{detail}")


def check_allowed_values(column: str, violations: int, allowed: list[str]) -> RuleResult:
    listed = ", ".join(allowed[:10]) + (", …" if len(allowed) > 10 else "")
    return RuleResult(f"allowedValues[{column}]", violations == 0,
                      f"allowedValues[{column}]: {violations} values outside [{listed}]")


def check_regex(column: str, violations: int, pattern: str) -> RuleResult:
    return RuleResult(f"regex[{column}]", violations == 0,
                      f"regex[{column}]: {violations} values do not match {pattern!r}")


def check_class_balance(counts: dict[str, int], minimum: float | None, maximum: float | None) -> list[RuleResult]:
    total = sum(counts.values())
    results = []
    if total == 0:
        return [RuleResult("classBalance", False, "classBalance: the target has no values")]
    shares = {label: count / total for label, count in counts.items()}
    if minimum is not None:
        label, share = min(shares.items(), key=lambda item: (item[1], item[0]))
        results.append(RuleResult("classBalance[min]", share >= minimum,
                                  f"classBalance[min]: the rarest class is {_fmt(share)} of rows "
                                  f"({counts[label]} of {total}), at least {_fmt(minimum)} required"))
    if maximum is not None:
        label, share = max(shares.items(), key=lambda item: (item[1], item[0]))
        results.append(RuleResult("classBalance[max]", share <= maximum,
                                  f"classBalance[max]: the most common class is {_fmt(share)} of rows "
                                  f"({counts[label]} of {total}), at most {_fmt(maximum)} allowed"))
    return results


def schema_failure(rule: str, message: str) -> RuleResult:
    return RuleResult(rule, False, f"{rule}: {message}")


# -- the accumulator -------------------------------------------------------------------

@dataclass
class _ColumnViolations:
    below: int = 0
    lowest: float | None = None
    above: int = 0
    highest: float | None = None
    not_allowed: int = 0
    no_match: int = 0


def _spec_dict(model: Any) -> dict:
    if model is None:
        return {}
    return model.model_dump(by_alias=False) if hasattr(model, "model_dump") else dict(model)


class QualityChecker:
    """Collects rule inputs batch by batch. `schema` and `rules` are the Dataset spec's
    DataSchema and QualityRules (pydantic models or their snake_case dicts)."""

    def __init__(self, schema: Any, rules: Any = None):
        self.schema = _spec_dict(schema)
        self.rules = _spec_dict(rules)
        self.columns = {c["name"]: c for c in self.schema["columns"]}
        self.violations = {name: _ColumnViolations() for name in self.columns}
        self.patterns = {name: re.compile(c["regex"]) for name, c in self.columns.items() if c.get("regex")}
        self.hashes: list[np.ndarray] = []
        self.target_counts: Counter[str] = Counter()

    def update(self, frame: pd.DataFrame, hashes: np.ndarray) -> None:
        if self.rules.get("max_duplicate_fraction") is not None:
            self.hashes.append(hashes)
        for name, column in self.columns.items():
            self._check_column(frame[name], column, self.violations[name])
        target = self.schema.get("target")
        if target and self.rules.get("class_balance"):
            values = frame[target].dropna()
            self.target_counts.update(_as_text(values).value_counts().to_dict())

    def _check_column(self, series: pd.Series, column: dict, found: _ColumnViolations) -> None:
        kind = column["type"]
        if kind in ("float", "int") and (column.get("min") is not None or column.get("max") is not None):
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            if column.get("min") is not None:
                below = values < column["min"]
                if below.any():
                    found.below += int(below.sum())
                    lowest = float(values[below].min())
                    found.lowest = lowest if found.lowest is None else min(found.lowest, lowest)
            if column.get("max") is not None:
                above = values > column["max"]
                if above.any():
                    found.above += int(above.sum())
                    highest = float(values[above].max())
                    found.highest = highest if found.highest is None else max(found.highest, highest)
        present = series.dropna()
        if column.get("allowed_values") is not None and len(present):
            bad = present[~_as_text(present).isin(set(column["allowed_values"]))]
            found.not_allowed += len(bad)
        pattern = self.patterns.get(column["name"])
        if pattern is not None and len(present):
            fullmatch = pattern.fullmatch  # a plain loop: Series.map's per-value overhead doubled its cost
            found.no_match += sum(1 for value in present.astype(str).tolist() if fullmatch(value) is None)

    def merge(self, other: "QualityChecker") -> "QualityChecker":
        """Add another checker's findings (the same rules over later rows)."""
        self.hashes += other.hashes
        self.target_counts.update(other.target_counts)
        for name, found in self.violations.items():
            theirs = other.violations[name]
            found.below += theirs.below
            found.above += theirs.above
            found.not_allowed += theirs.not_allowed
            found.no_match += theirs.no_match
            if theirs.lowest is not None:
                found.lowest = theirs.lowest if found.lowest is None else min(found.lowest, theirs.lowest)
            if theirs.highest is not None:
                found.highest = theirs.highest if found.highest is None else max(found.highest, theirs.highest)
        return self

    def duplicates(self) -> int:
        if not self.hashes:
            return 0
        hashes = np.sort(np.concatenate(self.hashes))
        return int((hashes[1:] == hashes[:-1]).sum())

    def results(self, profile: dict) -> list[RuleResult]:
        rows = profile["rows"]
        results: list[RuleResult] = []
        for name, column in self.columns.items():
            stats = profile["columns"][name]
            found = self.violations[name]
            if not column.get("nullable", True):
                results.append(check_nullable(name, stats["missing"]))
            if column.get("min") is not None and column["type"] in ("float", "int"):
                results.append(check_bound(name, "min", found.below, found.lowest, column["min"]))
            if column.get("max") is not None and column["type"] in ("float", "int"):
                results.append(check_bound(name, "max", found.above, found.highest, column["max"]))
            if column.get("allowed_values") is not None:
                results.append(check_allowed_values(name, found.not_allowed, column["allowed_values"]))
            if column.get("regex"):
                results.append(check_regex(name, found.no_match, column["regex"]))
        if self.rules.get("min_rows") is not None:
            results.append(check_min_rows(rows, self.rules["min_rows"]))
        default_missing = self.rules.get("max_missing_fraction")
        overrides = self.rules.get("max_missing_fraction_per_column") or {}
        for column in overrides:
            if column not in self.columns:
                results.append(schema_failure(f"maxMissingFraction[{column}]", f"no column named {column!r}"))
        for name in self.columns:
            threshold = overrides.get(name, default_missing)
            if threshold is not None:
                results.append(check_missing_fraction(name, profile["columns"][name]["missing"], rows, threshold))
        if self.rules.get("max_duplicate_fraction") is not None:
            results.append(check_duplicate_fraction(self.duplicates(), rows, self.rules["max_duplicate_fraction"]))
        balance = self.rules.get("class_balance")
        if balance:
            if not self.schema.get("target"):
                results.append(schema_failure("classBalance", "classBalance needs schema.target"))
            else:
                results.extend(check_class_balance(dict(self.target_counts), balance.get("min_fraction"),
                                                   balance.get("max_fraction")))
        return results


def _as_text(values: pd.Series) -> pd.Series:
    """Values as category text; integral floats print without `.0` (an int column read as float)."""
    if pd.api.types.is_string_dtype(values.dtype):
        return values
    if pd.api.types.is_float_dtype(values.dtype):
        return values.map(lambda v: str(int(v)) if float(v).is_integer() else str(v))
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map({True: "true", False: "false"})
    return values.astype(str)
