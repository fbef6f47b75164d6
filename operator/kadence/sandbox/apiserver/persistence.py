"""Snapshots of the whole store on disk, so state survives a restart and a crash.

Every file here holds Secrets, so each is written readable by its owner only (0600) and
atomically: a temporary file with a unique name in the same directory, written, fsynced,
renamed over the target, then the directory fsynced so the rename itself is durable.

- `apiserver-state.json` is the newest snapshot and `apiserver-state.json.prev` the one
  before it (a second name for the replaced file, kept by a hard link). If the newest is torn
  or corrupt, the server starts from the previous one and logs it.
- `apiserver-rv-reserved` is the resourceVersion counter's high-water mark. Versions are
  handed out in blocks reserved on disk ahead of use, so a server restarted after a crash
  (which loses the writes since its last snapshot) continues above every version it ever
  handed out: a client's old resourceVersion can never name a different write, and watches
  from before the crash get 410 Gone and relist, as after an etcd compaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import secrets
import tempfile
from typing import Any

import orjson

from .store import Store

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "apiserver-state.json"
PREVIOUS_SUFFIX = ".prev"
RESERVATION_NAME = "apiserver-rv-reserved"
RESERVATION_BLOCK = 10_000
FORMAT_VERSION = 1
_TEMP_SUFFIX = ".tmp"


class SnapshotError(ValueError):
    """Neither the newest nor the previous snapshot could be read."""


def snapshot_path(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / SNAPSHOT_NAME


def previous_path(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / (SNAPSHOT_NAME + PREVIOUS_SUFFIX)


def reservation_path(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / RESERVATION_NAME


def _fsync_directory(directory: pathlib.Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_write(path: pathlib.Path, data: bytes, keep_previous: pathlib.Path | None = None) -> None:
    """Replace `path` with `data` (mode 0600) so that a crash at any point leaves either the
    old or the new content, never a mix; with `keep_previous`, the replaced file stays there."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=directory)
    try:
        try:
            os.fchmod(descriptor, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view):]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if keep_previous is not None and path.exists():
            # A second name for the current file: after the rename below it is the only one.
            link = directory / f".{keep_previous.name}.{secrets.token_hex(8)}{_TEMP_SUFFIX}"
            try:
                os.link(path, link)
            except OSError:  # a filesystem without hard links: copy it (written the same safe way)
                atomic_write(keep_previous, path.read_bytes())
            else:
                os.replace(link, keep_previous)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def remove_stale_temporaries(state_dir: pathlib.Path) -> int:
    """Temporary files a crash left behind mid-write; returns how many were removed."""
    removed = 0
    for name in (SNAPSHOT_NAME, SNAPSHOT_NAME + PREVIOUS_SUFFIX, RESERVATION_NAME):
        for stale in state_dir.glob(f".{name}.*{_TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed += 1
    return removed


def capture(store: Store, clean: bool = False) -> dict[str, Any]:
    """The snapshot document, taken on the event loop's thread. Stored objects are never
    mutated, so the document can then be written from another thread. `clean` marks the
    final snapshot of an orderly shutdown: nothing was handed out after it."""
    document = {
        "format": FORMAT_VERSION,
        "resourceVersion": store.resource_version,
        "clean": clean,
        "objects": [{"group": key[0], "plural": key[1], "object": obj}
                    for key, obj in store.iter_all()],
    }
    store.dirty = False
    return document


def write(document: dict[str, Any], state_dir: pathlib.Path) -> pathlib.Path:
    """Write the snapshot atomically, keeping the one it replaces as the previous good copy."""
    path = snapshot_path(state_dir)
    atomic_write(path, orjson.dumps(document), keep_previous=previous_path(state_dir))
    return path


def save(store: Store, state_dir: pathlib.Path, clean: bool = False) -> pathlib.Path:
    return write(capture(store, clean), state_dir)


def read_document(path: pathlib.Path) -> dict[str, Any]:
    """Parse and check one snapshot file; ValueError says what is wrong with it."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{path} is not a complete snapshot ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{path}: unknown snapshot format {found!r}")
    try:
        resource_version = int(document["resourceVersion"])
        objects = [((item["group"], item["plural"]), item["object"]) for item in document["objects"]]
        for _, obj in objects:
            obj["metadata"]["name"]  # noqa: B018 - every object must be addressable
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a valid snapshot ({type(error).__name__}: {error})") from None
    document["resourceVersion"] = resource_version
    document["_objects"] = objects
    return document


def read_reservation(state_dir: pathlib.Path) -> int:
    """The highest resourceVersion reserved on disk (0 when none or unreadable)."""
    try:
        return int(reservation_path(state_dir).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


class Reservation:
    """Reserves resourceVersions on disk in blocks, ahead of handing them out."""

    def __init__(self, state_dir: pathlib.Path, block: int = RESERVATION_BLOCK) -> None:
        self.state_dir = state_dir
        self.block = block
        self.reserved = read_reservation(state_dir)

    def ensure(self, resource_version: int) -> None:
        """Called before `resource_version` is handed out: reserve the next block if needed."""
        if resource_version <= self.reserved:
            return
        wanted = resource_version + self.block
        atomic_write(reservation_path(self.state_dir), f"{wanted}\n".encode())
        self.reserved = wanted


def load(store: Store, state_dir: pathlib.Path) -> bool:
    """Restore the newest good snapshot; False for a fresh state directory.

    A torn or corrupt newest snapshot falls back to the previous one (logged). After an
    unclean stop the counter continues above everything reserved, so no resourceVersion
    handed out before the crash is handed out again."""
    remove_stale_temporaries(state_dir)
    newest, previous = snapshot_path(state_dir), previous_path(state_dir)
    document = None
    problems = []
    for candidate in (newest, previous):
        if not candidate.exists():
            continue
        try:
            document = read_document(candidate)
        except (ValueError, OSError) as error:
            problems.append(str(error))
            log.error("cannot restore the API server state from %s: %s", candidate, error)
            continue
        if candidate == previous:
            log.warning("restored the API server state from the previous snapshot %s "
                        "(resourceVersion %s): the newest was unusable", previous, document["resourceVersion"])
        break
    if document is None:
        if problems:
            raise SnapshotError("no usable API server snapshot in "
                                f"{state_dir}: " + "; ".join(problems))
        return False
    resource_version = document["resourceVersion"]
    if not document.get("clean"):
        reserved = read_reservation(state_dir)
        if reserved > resource_version:
            log.warning("the API server was not stopped cleanly: continuing at resourceVersion %d "
                        "(the snapshot has %d); watches from before resume with 410 Gone and a relist",
                        reserved, resource_version)
            resource_version = reserved
    store.load(resource_version, document["_objects"])
    store.dirty = False
    return True
