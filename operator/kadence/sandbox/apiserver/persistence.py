"""Snapshots of the whole store on disk, written atomically, so state survives a restart."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import orjson

from .store import Store

SNAPSHOT_NAME = "apiserver-state.json"
FORMAT_VERSION = 1


def snapshot_path(state_dir: pathlib.Path) -> pathlib.Path:
    return state_dir / SNAPSHOT_NAME


def capture(store: Store) -> dict[str, Any]:
    """The snapshot document, taken on the event loop's thread. Stored objects are never
    mutated, so the document can then be written from another thread."""
    document = {
        "format": FORMAT_VERSION,
        "resourceVersion": store.resource_version,
        "objects": [{"group": key[0], "plural": key[1], "object": obj}
                    for key, obj in store.iter_all()],
    }
    store.dirty = False
    return document


def write(document: dict[str, Any], state_dir: pathlib.Path) -> pathlib.Path:
    """Replace the snapshot file atomically (write a temporary file, fsync, rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(state_dir)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as handle:
        handle.write(orjson.dumps(document))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def save(store: Store, state_dir: pathlib.Path) -> pathlib.Path:
    return write(capture(store), state_dir)


def load(store: Store, state_dir: pathlib.Path) -> bool:
    """Restore the snapshot if there is one; False for a fresh state directory."""
    path = snapshot_path(state_dir)
    if not path.exists():
        return False
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    if document.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unknown snapshot format {document.get('format')!r}")
    store.load(int(document["resourceVersion"]),
               [((item["group"], item["plural"]), item["object"]) for item in document["objects"]])
    store.dirty = False
    return True
