"""Erasing a subject (a person, a customer) from logs, tables and later versions, purely.

`erase_predictions` drops the records of a batch whose logged input `column` (or, for
`requestId`, the prediction's id) is the subject: its value as logged, or its keyed hash when the
column is personal (domain.data.pii); it returns the records kept and the request ids removed;
`erase_feedback` drops the labels of those request ids. `matching_rows` does the same on a
table (feedback exports, Dataset snapshots). A guard (`guard_hashes`) keeps the subject as keyed
hashes only, so that later ingests drop the rows it matches (`guarded_rows`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from .pii import pseudonym

REQUEST_ID = "requestId"  # a match on this column erases predictions by their id in the logs


def entity_forms(entity: str | Iterable[str], key: bytes | None) -> set[str]:
    """What a logged input equal to the entity (or any of several) can look like: the value, and its keyed hash."""
    values = [entity] if isinstance(entity, str) else list(entity)
    forms = {str(v) for v in values}
    if key is not None:
        forms.update(pseudonym(v, key) for v in values)
    return forms


def erase_predictions(records: Iterable[dict[str, Any]], column: str, forms: set[str]
                      ) -> tuple[list[dict[str, Any]], list[str]]:
    kept, removed = [], []
    for record in records:
        value = record.get("requestId") if column == REQUEST_ID else (record.get("inputs") or {}).get(column)
        if value is not None and _text(value) in forms:
            removed.append(str(record.get("requestId")))
        else:
            kept.append(record)
    return kept, removed


def matching_rows(frame, column: str, forms: set[str], request_ids: set[str] = frozenset()):
    """A boolean mask of a table's rows that belong to the subject: `column` (requestId: the
    `request_id` column) holds one of `forms`, or the row's `request_id` is one of the erased
    predictions' ids. All False when the table has neither column."""
    mask = np.zeros(len(frame), dtype=bool)
    name = "request_id" if column == REQUEST_ID else column
    if name in frame.columns:
        mask |= _in(frame[name], forms)
    if request_ids and "request_id" in frame.columns:
        mask |= _in(frame["request_id"], request_ids)
    return mask


def _in(series, wanted: set[str]):
    """Each value's text form in `wanted`, computed once per distinct value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    hit = np.asarray([_text(u) in wanted for u in uniques], dtype=bool)
    return np.where(codes >= 0, hit[np.maximum(codes, 0)] if len(hit) else False, False)


def guard_hashes(values: Iterable[str], key: bytes) -> list[str]:
    """The guard's record of the subject: keyed hashes only, sorted (no value, no order leaks)."""
    return sorted({pseudonym(v, key) for v in values})


def guarded_rows(series, hashes: set[str], key: bytes):
    """A mask of the rows whose value's keyed hash is in a guard (a later ingest drops them)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    hit = np.asarray([pseudonym(_text(u), key) in hashes for u in uniques], dtype=bool)
    return np.where(codes >= 0, hit[np.maximum(codes, 0)] if len(hit) else False, False)


def erase_feedback(records: list[dict[str, Any]], request_ids: set[str]) -> tuple[list[dict[str, Any]], int]:
    """(the labels kept, how many were removed): those of the erased predictions go."""
    kept = [r for r in records if str(r.get("requestId")) not in request_ids]
    return kept, len(records) - len(kept)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
