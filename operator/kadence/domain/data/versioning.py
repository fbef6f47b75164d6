"""Content-derived version ids for Datasets and FeatureSets.

Dataset content hash (canonical): sha256 over
  1. a header line: the JSON of [[column, type], …] in schema order, then
  2. for every row in order, the 8-byte little-endian SipHash-2-4 of the row's typed
     values (`pandas.util.hash_pandas_object(frame, index=False)`).
The hash therefore depends on the typed values, the column names/types and the row
order — not on the file format, quoting, whitespace, compression or how the rows were
split into files or batches: the same data read from CSV, JSONL or Parquet gets the same
id. The version id is the first VERSION_LENGTH hex digits.

FeatureSet version: sha256 of the canonical JSON of the feature definitions (sorted
keys, no whitespace), a newline and the dataset version id; first VERSION_LENGTH digits.
So only a change of the definitions or of the data makes a new FeatureSet version.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

import numpy as np
import pandas as pd

VERSION_LENGTH = 16


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One uint64 per row, from the values only (not the index)."""
    if len(frame) == 0:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


class ContentHash:
    """Incremental canonical hash of a typed table, fed batch by batch."""

    def __init__(self, columns: Iterable[tuple[str, str]]):
        self._sha = hashlib.sha256()
        self._sha.update(canonical_json([[name, kind] for name, kind in columns]).encode() + b"\n")
        self.rows = 0

    def update_hashes(self, hashes: np.ndarray) -> None:
        self._sha.update(np.ascontiguousarray(hashes, dtype="<u8").tobytes())
        self.rows += len(hashes)

    def update(self, frame: pd.DataFrame) -> None:
        self.update_hashes(row_hashes(frame))

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def version(self) -> str:
        return self.hexdigest()[:VERSION_LENGTH]


def dataset_version(frame: pd.DataFrame, column_types: dict[str, str]) -> tuple[str, str]:
    """(version id, full sha256) of an in-memory table."""
    content = ContentHash(column_types.items())
    content.update(frame[list(column_types)])
    return content.version(), content.hexdigest()


def featureset_version(features: list[Any], dataset_version_id: str) -> str:
    """Hash of the canonical feature definitions plus the dataset version."""
    definitions = [f.wire() if hasattr(f, "wire") else f for f in features]
    payload = canonical_json(definitions) + "\n" + dataset_version_id
    return hashlib.sha256(payload.encode()).hexdigest()[:VERSION_LENGTH]
