"""Pod logs from the files the sandbox kubelet writes:
`<state_dir>/logs/<namespace>/<pod>/<container>.log` (and `.previous.log`)."""

from __future__ import annotations

import datetime
import os
import pathlib


def log_path(state_dir: pathlib.Path, namespace: str, pod: str, container: str,
             previous: bool = False) -> pathlib.Path:
    suffix = ".previous.log" if previous else ".log"
    return state_dir / "logs" / namespace / pod / f"{container}{suffix}"


def tail(data: bytes, lines: int | None) -> bytes:
    """The last `lines` lines of data (a trailing partial line counts as a line)."""
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def limit(data: bytes, limit_bytes: int | None) -> bytes:
    return data if limit_bytes is None else data[:limit_bytes]


def with_timestamps(data: bytes, written_at: float) -> bytes:
    """Prefix each line with an RFC3339Nano time; the kubelet's files keep no per-line times,
    so the file's modification time stands in for every line."""
    stamp = datetime.datetime.fromtimestamp(written_at, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f000Z").encode()
    return b"".join(stamp + b" " + line for line in data.splitlines(keepends=True))


def modified_at(path: pathlib.Path) -> float:
    return os.stat(path).st_mtime
