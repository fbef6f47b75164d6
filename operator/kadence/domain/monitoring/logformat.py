"""The prediction log and feedback format shared by the model server (writer) and the monitor (reader).

Layout in the bucket (one object per batch, written once, never appended to)::

    predictions/<namespace>/<inferenceservice>/<modelVersion>/<yyyy>/<mm>/<dd>/<batch-id>.jsonl.gz
    feedback/<namespace>/<inferenceservice>/<yyyy>/<mm>/<dd>/<batch-id>.jsonl.gz

The date directories are the UTC date of the batch's first record; the batch id starts with
that record's UTC time (`20261123T000442123Z-<8 hex>`, see `new_batch_id`) so a plain
lexical sort of keys is a time sort. A batch is gzip-compressed JSON lines (`.jsonl.gz`);
`.jsonl` and Parquet (`.parquet`, the same fields as columns, `inputs`/`outputs` as
structs) are read as well.

One prediction record per request::

    {"requestId": "5b0c...", "time": "2026-11-23T00:04:42.123Z", "modelVersion": "3",
     "inputs": {"tenure": 12, "plan": "pro"},
     "outputs": {"prediction": 1, "probabilities": [0.2, 0.8]}}

`probabilities` is optional (classifiers that have `predict_proba`); for binary
classification its last entry is the probability of the positive class. A batch request
with many rows logs one record per row, each with its own requestId (the server returns
the ids so the caller can send feedback per row).

One feedback record per label::

    {"requestId": "5b0c...", "time": "2026-11-23T01:00:00Z", "label": 1}

Feedback is joined to predictions by requestId; when a request got several labels the
latest one wins.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.alias_generators import to_camel

PREDICTIONS_ROOT = "predictions"
FEEDBACK_ROOT = "feedback"
JSONL_GZ = ".jsonl.gz"
BATCH_SUFFIXES = (JSONL_GZ, ".jsonl", ".parquet")

_SEGMENT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")
_DATE_PATH = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/[^/]+$")


class LogFormatError(ValueError):
    """A log object or record that does not follow the format above."""


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        data = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        data["time"] = format_time(self.time)
        return data


class PredictionOutputs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prediction: Any = Field(description="The predicted class or value.")
    probabilities: list[float] | None = Field(None, description="Class probabilities, in class order.")


class PredictionRecord(_Record):
    request_id: str = Field(min_length=1, max_length=256)
    time: AwareDatetime  # checked in Rust: a per-record Python validator costs more than the rest
    model_version: str = Field(min_length=1, max_length=253)
    inputs: dict[str, Any]
    outputs: PredictionOutputs


class FeedbackRecord(_Record):
    request_id: str = Field(min_length=1, max_length=256)
    time: AwareDatetime
    label: Any

    @field_validator("label")
    @classmethod
    def _present(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("label must not be null")
        return value


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. 2026-11-23T00:04:42.123Z."""
    if moment.tzinfo is None:
        raise LogFormatError("a naive datetime has no time zone; pass an aware one")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _segment(value: str, what: str) -> str:
    if not _SEGMENT.match(value):
        raise LogFormatError(f"{what} {value!r} cannot be a key segment (letters, digits, . _ - only)")
    return value


def new_batch_id(first_record_time: datetime) -> str:
    """A time-sortable, unique batch id: `<UTC time>-<8 random hex>`."""
    utc = first_record_time.astimezone(timezone.utc)
    return utc.strftime("%Y%m%dT%H%M%S") + f"{utc.microsecond // 1000:03d}Z-" + uuid.uuid4().hex[:8]


def predictions_prefix(namespace: str, inference_service: str, model_version: str | None = None) -> str:
    prefix = f"{PREDICTIONS_ROOT}/{_segment(namespace, 'namespace')}/{_segment(inference_service, 'inference service')}/"
    if model_version is not None:
        prefix += f"{_segment(model_version, 'model version')}/"
    return prefix


def feedback_prefix(namespace: str, inference_service: str) -> str:
    return f"{FEEDBACK_ROOT}/{_segment(namespace, 'namespace')}/{_segment(inference_service, 'inference service')}/"


def _dated(prefix: str, first_record_time: datetime, batch_id: str | None) -> str:
    utc = first_record_time.astimezone(timezone.utc)
    batch_id = _segment(batch_id or new_batch_id(utc), "batch id")
    return f"{prefix}{utc:%Y/%m/%d}/{batch_id}{JSONL_GZ}"


def prediction_batch_key(namespace: str, inference_service: str, model_version: str,
                         first_record_time: datetime, batch_id: str | None = None) -> str:
    return _dated(predictions_prefix(namespace, inference_service, model_version), first_record_time, batch_id)


def feedback_batch_key(namespace: str, inference_service: str, first_record_time: datetime,
                       batch_id: str | None = None) -> str:
    return _dated(feedback_prefix(namespace, inference_service), first_record_time, batch_id)


def key_date(key: str) -> date | None:
    """The UTC date directory of a batch key, or None for a key outside the layout."""
    match = _DATE_PATH.search(key)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def is_batch_key(key: str) -> bool:
    return key.endswith(BATCH_SUFFIXES) and key_date(key) is not None


def encode_batch(records: Iterable[PredictionRecord | FeedbackRecord | dict[str, Any]]) -> bytes:
    """gzip JSON lines, one record a line (what the server writes)."""
    lines = []
    for record in records:
        wire = record.wire() if isinstance(record, _Record) else record
        lines.append(json.dumps(wire, separators=(",", ":"), default=str))
    return gzip.compress(("\n".join(lines) + "\n").encode() if lines else b"", mtime=0)


def decode_batch(key: str, data: bytes) -> list[dict[str, Any]]:
    """The raw records of one batch object, chosen by the key's suffix."""
    if key.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(io.BytesIO(data)).to_pylist()
        except Exception as error:  # pyarrow raises several types for a corrupt file
            raise LogFormatError(f"{key}: not a readable Parquet file: {error}") from error
    if key.endswith(JSONL_GZ):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise LogFormatError(f"{key}: not gzip data: {error}") from error
    elif not key.endswith(".jsonl"):
        raise LogFormatError(f"{key}: unknown batch format (expected one of {', '.join(BATCH_SUFFIXES)})")
    lines = [line for line in data.decode("utf-8").splitlines() if line.strip()]
    try:  # one parse for the whole batch; line by line only to name a bad line
        records = json.loads("[" + ",".join(lines) + "]")
    except json.JSONDecodeError:
        records = None
    if records is None or not all(isinstance(r, dict) for r in records):
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise LogFormatError(f"{key}:{number}: not JSON: {error.msg}") from error
            if not isinstance(record, dict):
                raise LogFormatError(f"{key}:{number}: a record must be a JSON object")
        raise LogFormatError(f"{key}: not JSON lines")  # e.g. two objects on one line
    return records


def _parse(adapter: TypeAdapter, key: str, raw_records: list[dict[str, Any]]) -> list:
    """Validate a whole batch in one call; the first error names the record (from 1) and field."""
    try:
        return adapter.validate_python(raw_records)
    except ValidationError as error:
        first = error.errors()[0]
        index, *path = first["loc"] or (0,)
        field = ".".join(str(part) for part in path) or "record"
        raise LogFormatError(f"{key} record {int(index) + 1}: {field}: {first['msg']}") from error


_PREDICTIONS = TypeAdapter(list[PredictionRecord])
_FEEDBACK = TypeAdapter(list[FeedbackRecord])


def parse_predictions(key: str, raw_records: list[dict[str, Any]]) -> list[PredictionRecord]:
    return _parse(_PREDICTIONS, key, raw_records)


def parse_feedback(key: str, raw_records: list[dict[str, Any]]) -> list[FeedbackRecord]:
    return _parse(_FEEDBACK, key, raw_records)


@dataclass(frozen=True)
class PredictionLog:
    """Predictions as two aligned frames (same index), so an input column may be called
    `time` or `prediction` without clashing with the log's own fields.

    `meta`: `request_id`, `time` (UTC), `model_version`, `prediction`, `probabilities`
    (list or None). `inputs`: one column per input, named as in the records' `inputs`.
    """

    meta: Any
    inputs: Any

    def __len__(self) -> int:
        return len(self.meta)


def predictions_frame(records: list[PredictionRecord]) -> PredictionLog:
    """Oldest first; a request id logged more than once (a retried write) counts once, as
    its latest record."""
    import pandas as pd

    latest = {r.request_id: r for r in sorted(records, key=lambda r: r.time)}
    ordered = sorted(latest.values(), key=lambda r: (r.time, r.request_id))
    meta = pd.DataFrame({
        "request_id": pd.Series([r.request_id for r in ordered], dtype=object),
        "time": pd.to_datetime(pd.Series([r.time for r in ordered], dtype=object), utc=True),
        "model_version": pd.Series([r.model_version for r in ordered], dtype=object),
        "prediction": pd.Series([r.outputs.prediction for r in ordered], dtype=object),
        "probabilities": pd.Series([r.outputs.probabilities for r in ordered], dtype=object),
    })
    inputs = pd.DataFrame.from_records([r.inputs for r in ordered], index=meta.index)
    return PredictionLog(meta=meta, inputs=inputs)


def feedback_frame(records: list[FeedbackRecord]):
    """One row per request id: `request_id`, `label`, `label_time` (the latest label wins)."""
    import pandas as pd

    frame = pd.DataFrame({
        "request_id": pd.Series([r.request_id for r in records], dtype=object),
        "label": pd.Series([r.label for r in records], dtype=object),
        "label_time": pd.to_datetime(pd.Series([r.time for r in records], dtype=object), utc=True),
    })
    frame = frame.sort_values("label_time", kind="stable").drop_duplicates("request_id", keep="last")
    return frame.reset_index(drop=True)
