"""Objects by resource, one global resourceVersion counter, bounded history and watch fan-out.

Stored objects are never mutated in place: every write stores a new dict, so readers and
the history can share them without copying.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import Any, Callable, Iterator

from .errors import gone

StoreKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

DEFAULT_HISTORY = 5000
# A watcher whose queue grows past this has stopped reading: it is closed, as upstream does.
MAX_WATCHER_BACKLOG = 50_000


@dataclasses.dataclass(frozen=True)
class Event:
    resource_version: int
    store_key: StoreKey
    type: str  # ADDED, MODIFIED, DELETED
    object: dict[str, Any]
    old: dict[str, Any] | None


@dataclasses.dataclass(eq=False)
class Watcher:
    store_key: StoreKey
    namespace: str | None
    matches: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue = dataclasses.field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, event: Event) -> None:
        """Queue the event as this watcher sees it (objects entering/leaving its selector)."""
        if event.store_key != self.store_key or self.overflowed:
            return
        namespace = event.object["metadata"].get("namespace", "")
        if self.namespace is not None and namespace != self.namespace:
            return
        new_matches = self.matches(event.object)
        old_matches = event.old is not None and self.matches(event.old)
        if event.type == "MODIFIED":
            if new_matches and old_matches:
                kind = "MODIFIED"
            elif new_matches:
                kind = "ADDED"
            elif old_matches:
                kind = "DELETED"
            else:
                return
        elif event.type == "DELETED":
            if not (new_matches or old_matches):
                return
            kind = "DELETED"
        else:
            if not new_matches:
                return
            kind = event.type
        if self.queue.qsize() >= MAX_WATCHER_BACKLOG:
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait((kind, event.object))


def object_key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj["metadata"]
    return (metadata.get("namespace", ""), metadata["name"])


class Store:
    def __init__(self, history_size: int = DEFAULT_HISTORY) -> None:
        self.resource_version = 0
        self._objects: dict[StoreKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._history: collections.deque[Event] = collections.deque(maxlen=history_size)
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self.dirty = False
        # Called with a resourceVersion before it is handed out (the server reserves blocks on disk).
        self.reserve: Callable[[int], None] | None = None

    # ---- reading ------------------------------------------------------------------------

    def get(self, store_key: StoreKey, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(store_key, {}).get((namespace, name))

    def list(self, store_key: StoreKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects sorted by (namespace, name), as etcd's key order returns them."""
        bucket = self._objects.get(store_key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def iter_all(self) -> Iterator[tuple[StoreKey, dict[str, Any]]]:
        for store_key, bucket in self._objects.items():
            for obj in bucket.values():
                yield store_key, obj

    def count(self, store_key: StoreKey | None = None) -> int:
        if store_key is not None:
            return len(self._objects.get(store_key, {}))
        return sum(len(b) for b in self._objects.values())

    # ---- writing ------------------------------------------------------------------------

    def next_resource_version(self) -> int:
        if self.reserve is not None:
            self.reserve(self.resource_version + 1)
        self.resource_version += 1
        return self.resource_version

    def put(self, store_key: StoreKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new or changed object, stamping a fresh resourceVersion; emit its event."""
        rv = self.next_resource_version()
        obj["metadata"]["resourceVersion"] = str(rv)
        bucket = self._objects.setdefault(store_key, {})
        key = object_key(obj)
        old = bucket.get(key)
        bucket[key] = obj
        self._emit(Event(rv, store_key, "ADDED" if old is None else "MODIFIED", obj, old))
        return obj

    def remove(self, store_key: StoreKey, namespace: str, name: str) -> dict[str, Any] | None:
        """Remove an object; its DELETED event carries a fresh resourceVersion."""
        bucket = self._objects.get(store_key, {})
        old = bucket.pop((namespace, name), None)
        if old is None:
            return None
        rv = self.next_resource_version()
        final = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
        self._emit(Event(rv, store_key, "DELETED", final, old))
        return final

    def drop_bucket(self, store_key: StoreKey) -> None:
        self._objects.pop(store_key, None)

    def load(self, resource_version: int, objects: list[tuple[StoreKey, dict[str, Any]]]) -> None:
        """Restore a snapshot: no events, history starts empty at the restored version."""
        self.resource_version = resource_version
        for store_key, obj in objects:
            self._objects.setdefault(store_key, {})[object_key(obj)] = obj

    def _emit(self, event: Event) -> None:
        self.dirty = True
        self._history.append(event)
        for watcher in list(self._watchers):
            watcher.offer(event)
        for listener in self._listeners:
            listener(event)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    # ---- watching -----------------------------------------------------------------------

    def oldest_watchable_version(self) -> int:
        """The smallest resourceVersion a watch may start from without missing events."""
        if self._history:
            return self._history[0].resource_version - 1
        return self.resource_version

    def subscribe(self, watcher: Watcher, since: int | None) -> None:
        """Register a watcher; with `since`, first replay the history after that version.

        Raises 410 Gone when events after `since` have already left the history.
        """
        if since is not None:
            if since < self.oldest_watchable_version():
                raise gone(f"too old resource version: {since} ({self.oldest_watchable_version()})")
            for event in self._history:
                if event.resource_version > since:
                    watcher.offer(event)
        self._watchers.add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_watchers(self, store_key: StoreKey | None = None) -> None:
        """End the watches of one resource (its CRD is gone) or all of them (shutdown)."""
        for watcher in list(self._watchers):
            if store_key is None or watcher.store_key == store_key:
                watcher.queue.put_nowait(None)

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)
