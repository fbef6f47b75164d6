"""Files appended to a Dataset: the `kadence.dev/appended-data` annotation (pure).

A MonitorPolicy that retrains on a breach exports the window's labelled predictions as a
file and appends its URI to this annotation on the Dataset; users may set it by hand too:

    kubectl annotate dataset churn kadence.dev/appended-data='[{"uri": "s3://kadence/feedback/w1.parquet"}]'

The value is a JSON list of objects `{"uri": …, "addedBy": …, "time": …}` (only `uri` is
required), oldest first, at most MAX_APPENDED entries (the oldest fall off). Every ingest
reads the source and then each listed file in order; the files' rows become part of the
version, so a changed list makes a new ingest and, for new rows, a new version. A file's
format comes from its extension (.parquet, .csv, .jsonl), otherwise the Dataset's format.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

APPENDED_DATA_ANNOTATION = "kadence.dev/appended-data"
MAX_APPENDED = 100
# One file, not a prefix: an s3:// object key, an http(s) URL or (in the sandbox) a local file.
_URI = re.compile(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.*[^/]|https?://.+|file:///.*[^/])$")
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


class AppendedDataError(ValueError):
    """The annotation's value is not a list of appended files."""


@dataclass(frozen=True)
class AppendedData:
    uri: str
    added_by: str | None = None
    time: str | None = None

    def wire(self) -> dict[str, str]:
        entry = {"uri": self.uri, "addedBy": self.added_by, "time": self.time}
        return {key: value for key, value in entry.items() if value is not None}


def parse_appended_data(value: str | None) -> list[AppendedData]:
    """The entries of an annotation value, oldest first; an unset or empty value has none."""
    if value is None or not value.strip():
        return []
    try:
        raw = json.loads(value)
    except json.JSONDecodeError as error:
        raise AppendedDataError(f"{APPENDED_DATA_ANNOTATION} is not JSON: {error}") from None
    if not isinstance(raw, list):
        raise AppendedDataError(f"{APPENDED_DATA_ANNOTATION} must be a JSON list of {{\"uri\": …}} objects, "
                                f"not {type(raw).__name__}")
    entries = [_entry(index, item) for index, item in enumerate(raw)]
    if len(entries) > MAX_APPENDED:
        raise AppendedDataError(f"{APPENDED_DATA_ANNOTATION} lists {len(entries)} files; at most {MAX_APPENDED}")
    seen: set[str] = set()
    for entry in entries:
        if entry.uri in seen:
            raise AppendedDataError(f"{APPENDED_DATA_ANNOTATION} lists {entry.uri} twice")
        seen.add(entry.uri)
    return entries


def _entry(index: int, item: Any) -> AppendedData:
    where = f"{APPENDED_DATA_ANNOTATION}[{index}]"
    if not isinstance(item, dict):
        raise AppendedDataError(f"{where} must be an object with a uri, not {json.dumps(item)}")
    unknown = sorted(set(item) - {"uri", "addedBy", "time"})
    if unknown:
        raise AppendedDataError(f"{where} has unknown field(s) {', '.join(unknown)} (allowed: uri, addedBy, time)")
    uri = item.get("uri")
    if not isinstance(uri, str) or not _URI.match(uri):
        raise AppendedDataError(f"{where}.uri must be one file: s3://bucket/key, http(s)://… or file:///path, "
                                f"not {json.dumps(uri)}")
    for key in ("addedBy", "time"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise AppendedDataError(f"{where}.{key} must be a string, not {json.dumps(item[key])}")
    return AppendedData(uri, item.get("addedBy"), item.get("time"))


def appended_uris(value: str | None) -> list[str]:
    return [entry.uri for entry in parse_appended_data(value)]


def append_data_annotation(current_annotation_value: str | None, uri: str, added_by: str,
                           time: datetime | str) -> str:
    """The annotation value with `uri` appended (newest last, the oldest dropped beyond
    MAX_APPENDED); unchanged, apart from formatting, when `uri` is already listed.

    Raises AppendedDataError when the current value or `uri` is not valid: the list is not
    overwritten, so nothing a user put there is lost silently."""
    entries = parse_appended_data(current_annotation_value)
    if not any(entry.uri == uri for entry in entries):
        stamp = time if isinstance(time, str) else time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries.append(_entry(len(entries), {"uri": uri, "addedBy": added_by, "time": stamp}))
    return json.dumps([entry.wire() for entry in entries[-MAX_APPENDED:]], separators=(",", ":"))


def appended_format(uri: str, dataset_format: str) -> str:
    """parquet, csv or jsonl from the file's extension; the Dataset's format for any other."""
    path = uri.split("?", 1)[0].lower()
    return next((fmt for suffix, fmt in _FORMATS.items() if path.endswith(suffix)), dataset_format)


def appended_digest(uris: list[str]) -> str:
    """A short stable digest of the list (order counts), for naming the ingest that reads it."""
    return hashlib.sha256("\n".join(uris).encode()).hexdigest()[:8]
