"""Feedback folded into a Dataset (pure): the typed contract between the MonitorPolicy and
the Dataset controllers.

A Dataset opts in with `spec.feedback.from: [{monitorPolicy: <name>}]`. Each listed policy
(same namespace) publishes its labelled predictions in `status.feedback` ({uri, rows, from,
to, sha256}: one row per request id with its latest label). Every ingest reads the source and
then each published file, in the order listed; the version's `status.versions[].feedback`
records what it includes. A policy that does not exist or has published nothing yet is
reported (condition `Feedback`) and the ingest goes on with the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class FeedbackFile:
    """One policy's published export, as a Dataset version records it."""

    monitor_policy: str
    uri: str
    rows: int
    sha256: str
    start: str | None = None  # oldest prediction time ("from")
    end: str | None = None  # newest prediction time ("to")

    def wire(self) -> dict:
        entry = {"monitorPolicy": self.monitor_policy, "uri": self.uri, "rows": self.rows, "from": self.start,
                 "to": self.end, "sha256": self.sha256}
        return {k: v for k, v in entry.items() if v is not None}


def published_feedback(policy_name: str, policy: dict | None) -> tuple[FeedbackFile | None, str | None]:
    """A policy's status.feedback as a FeedbackFile, or (None, why there is none)."""
    if policy is None:
        return None, f"MonitorPolicy {policy_name} not found"
    published = (policy.get("status") or {}).get("feedback") or {}
    if not published.get("uri") or not published.get("sha256"):
        return None, f"MonitorPolicy {policy_name} has published no feedback yet"
    return FeedbackFile(monitor_policy=policy_name, uri=published["uri"], rows=int(published.get("rows") or 0),
                        sha256=published["sha256"], start=published.get("from"), end=published.get("to")), None


def feedback_digest(files: list[FeedbackFile] | list[str]) -> str:
    """A short stable digest of the feedback read (order counts), for naming the ingest that reads
    it: a new export makes a new ingest. Takes the files or their sha256s."""
    shas = [f.sha256 if isinstance(f, FeedbackFile) else f for f in files]
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()[:8]


def file_format(uri: str, dataset_format: str) -> str:
    """parquet, csv or jsonl from the file's extension; the Dataset's format for any other."""
    path = uri.split("?", 1)[0].lower()
    return next((fmt for suffix, fmt in _FORMATS.items() if path.endswith(suffix)), dataset_format)
