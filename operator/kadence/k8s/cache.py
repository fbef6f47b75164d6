"""An in-memory copy of the objects the operator reads, fed by its watches.

The reconcilers read Jobs, Deployments, model-server Pods and Kadence objects from here
instead of listing them from the API server on every reconcile: at rest, with thousands of
objects, the operator then sends no request at all. The watches (kopf indexes, see
`handlers.runtime`) keep it current; kopf runs no handler before every watched kind has been
listed once, so a reconcile never mistakes "not listed yet" for "absent".

Reads record what they looked at (`Reads`), so that a change of any of those objects wakes the
reconcile that read it (`handlers.runtime`). Thread-safe: watches write on the event loop,
reconciles read from worker threads.
"""

from __future__ import annotations

import contextvars
import copy
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .selectors import matches as selector_matches
from .selectors import parse as parse_selector

GVK = tuple[str, str]  # (apiVersion, kind)
Key = tuple[str, str]  # (namespace, name)


# ------------------------------------------------------------------ what a reconcile read


@dataclass
class Reads:
    """The objects one reconcile looked at: by name, by label selector, by indexed field."""

    names: set[tuple[GVK, str, str]] = field(default_factory=set)
    selectors: set[tuple[GVK, str, str]] = field(default_factory=set)  # (gvk, namespace, selector)
    fields: set[tuple[GVK, str, str, str]] = field(default_factory=set)  # (gvk, namespace, index, value)


current_reads: contextvars.ContextVar[Reads | None] = contextvars.ContextVar("kadence_current_reads", default=None)


def _record(kind: str, item: tuple) -> None:
    reads = current_reads.get()
    if reads is not None:
        getattr(reads, kind).add(item)


# ------------------------------------------------------------------ the cache


FieldIndex = Callable[[dict], str | None]


class ObjectCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[GVK, dict[Key, dict]] = {}
        self._by_namespace: dict[tuple[GVK, str], set[str]] = {}
        self._field_indexes: dict[GVK, dict[str, FieldIndex]] = {}
        self._by_field: dict[tuple[GVK, str, str, str], set[str]] = {}
        self._served: dict[GVK, str | None] = {}  # gvk -> the label every watched object has

    # -- configuration

    def serve(self, api_version: str, kind: str, field_indexes: dict[str, FieldIndex] | None = None,
              label: str | None = None) -> None:
        """Declare that watches feed this kind (only its objects carrying `label`, when given):
        reads of it come from here from now on."""
        gvk = (api_version, kind)
        with self._lock:
            self._served[gvk] = label
            self._objects.setdefault(gvk, {})
            self._field_indexes[gvk] = dict(field_indexes or {})

    def serves(self, api_version: str, kind: str, selector: str | None = None,
               labels: dict[str, str] | None = None) -> bool:
        """Whether the cache holds the answer: the kind is watched, and when only objects with
        a label are, the selector requires that label (or the object named carries it)."""
        gvk = (api_version, kind)
        if gvk not in self._served:
            return False
        label = self._served[gvk]
        if label is None:
            return True
        if labels is not None:
            return label in labels
        return any(r.key == label and r.operator in ("=", "in", "exists") for r in parse_selector(selector))

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()
            self._by_namespace.clear()
            self._by_field.clear()
            self._served.clear()
            self._field_indexes.clear()

    # -- writes (from the watches)

    def upsert(self, body: dict) -> dict | None:
        """Store the object; returns the copy it replaced (None when new). An older version of
        the same object than the one stored (a watch event behind a write we observed from its
        response) is ignored, and then the stored one is returned."""
        gvk = (body.get("apiVersion", ""), body.get("kind", ""))
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta["name"]
        stored = copy.deepcopy(dict(body))
        with self._lock:
            objects = self._objects.setdefault(gvk, {})
            previous = objects.get((namespace, name))
            if previous is not None and _older(meta, previous.get("metadata") or {}):
                return previous
            if previous is not None:
                self._unindex(gvk, namespace, name, previous)
            objects[(namespace, name)] = stored
            self._index(gvk, namespace, name, stored)
        return previous

    def remove(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        gvk = (api_version, kind)
        with self._lock:
            previous = self._objects.get(gvk, {}).pop((namespace or "", name), None)
            if previous is not None:
                self._unindex(gvk, namespace or "", name, previous)
        return previous

    def _index(self, gvk: GVK, namespace: str, name: str, body: dict) -> None:
        self._by_namespace.setdefault((gvk, namespace), set()).add(name)
        for index, extract in self._field_indexes.get(gvk, {}).items():
            value = _safe(extract, body)
            if value is not None:
                self._by_field.setdefault((gvk, index, namespace, value), set()).add(name)

    def _unindex(self, gvk: GVK, namespace: str, name: str, body: dict) -> None:
        self._by_namespace.get((gvk, namespace), set()).discard(name)
        for index, extract in self._field_indexes.get(gvk, {}).items():
            value = _safe(extract, body)
            if value is not None:
                self._by_field.get((gvk, index, namespace, value), set()).discard(name)

    # -- reads (from the reconciles)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        _record("names", ((api_version, kind), namespace or "", name))
        with self._lock:
            found = self._objects.get((api_version, kind), {}).get((namespace or "", name))
            return copy.deepcopy(found) if found is not None else None

    def peek(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        """The stored object itself (not a copy, not recorded): for the runtime's own checks."""
        with self._lock:
            return self._objects.get((api_version, kind), {}).get((namespace or "", name))

    def list(self, api_version: str, kind: str, namespace: str, selector: str | None = None) -> list[dict]:
        gvk = (api_version, kind)
        _record("selectors", (gvk, namespace or "", selector or ""))
        requirements = parse_selector(selector)
        with self._lock:
            objects = self._objects.get(gvk, {})
            names = sorted(self._by_namespace.get((gvk, namespace or ""), ()))
            found = [objects[(namespace or "", n)] for n in names]
            return [copy.deepcopy(o) for o in found
                    if selector_matches(requirements, (o.get("metadata") or {}).get("labels"))]

    def by_field(self, api_version: str, kind: str, namespace: str, index: str, value: str) -> list[dict]:
        gvk = (api_version, kind)
        _record("fields", (gvk, namespace or "", index, value))
        with self._lock:
            objects = self._objects.get(gvk, {})
            names = sorted(self._by_field.get((gvk, index, namespace or "", value), ()))
            return [copy.deepcopy(objects[(namespace or "", n)]) for n in names]

    def field_values(self, body: dict, index: str) -> str | None:
        gvk = (body.get("apiVersion", ""), body.get("kind", ""))
        extract = self._field_indexes.get(gvk, {}).get(index)
        return _safe(extract, body) if extract else None

    def field_indexes_of(self, api_version: str, kind: str) -> Iterable[str]:
        return tuple(self._field_indexes.get((api_version, kind), {}))

    def keys(self, api_version: str, kind: str) -> list[Key]:
        with self._lock:
            return list(self._objects.get((api_version, kind), {}))

    def size(self) -> int:
        with self._lock:
            return sum(len(objects) for objects in self._objects.values())


def _older(meta: dict, than: dict) -> bool:
    """Whether `meta` is an older version of the same object than `than`. resourceVersions are
    opaque strings in the API; both the API server and etcd hand out increasing integers, and
    anything else is treated as newer."""
    if meta.get("uid") != than.get("uid"):
        return False
    try:
        return int(meta.get("resourceVersion")) < int(than.get("resourceVersion"))
    except (TypeError, ValueError):
        return False


def _safe(extract: FieldIndex, body: dict) -> str | None:
    try:
        value = extract(body)
    except (KeyError, TypeError, AttributeError):
        return None
    return None if value is None else str(value)


CACHE = ObjectCache()


def contains(desired, actual) -> bool:
    """Whether `actual` already holds every field `desired` sets (what a server-side apply of
    `desired` would not change). Lists must have the same length, item by item."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(k in actual and contains(v, actual[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(contains(d, a) for d, a in zip(desired, actual))
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual or desired == actual and type(desired) is type(actual)
    if isinstance(desired, (int, float)) and isinstance(actual, (int, float)):
        return float(desired) == float(actual)
    return desired == actual
