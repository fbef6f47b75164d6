"""The reconcile engine: event-driven, one work queue, requeues from the planners.

kopf watches every kind the operator reads (the six Kadence kinds, and the Jobs,
Deployments, Services, ConfigMaps and model-server Pods it creates) and feeds them into the
in-memory cache (`k8s.cache.CACHE`); kopf runs no handler before each of them was listed
once. A reconcile is then queued (controller-runtime's work queue, in asyncio):

- when the object itself changes (not when the change is our own status write);
- when one of its children changes (found by ownerReferences or the kadence.dev/owner-*
  labels), whatever the change;
- when anything its last reconcile read changes: the reads go through `k8s.apply.get`,
  `list_objects` and `handlers.common.model_versions_of`, which record what they looked at
  (by name, label selector or indexed field), so a FeatureSet waiting on a Dataset is woken
  by that Dataset, an InferenceService by a new ModelVersion of its model;
- after `Plan.requeue_after` seconds, for waits on time (schedules, canary steps, a result
  not readable in S3 yet);
- once every `KADENCE_RESYNC_SECONDS` (600 s by default), as a safety net: such a reconcile
  also re-applies children it would otherwise skip as unchanged.

One key is never reconciled twice at once (a change during a reconcile queues one more
after it), several keys run in parallel on `KADENCE_RECONCILE_WORKERS` worker threads, so
no object waits for another's S3 or API call, and nothing blocks the event loop. At rest
(nothing changes) the operator sends no request at all.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import copy
import heapq
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable

from prometheus_client import Counter

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND, Kind
from ..settings import settings
from ..k8s.cache import CACHE, GVK, Reads, current_reads
from ..k8s.selectors import matches as selector_matches
from ..k8s.selectors import parse as parse_selector
from ..api import keys

log = logging.getLogger(__name__)

ObjKey = tuple[str, str, str]  # (kind, namespace, name)

MAX_BACKOFF_SECONDS = 60.0
RECONCILES = Counter("kadence_operator_reconciles_total", "Reconciles this operator process ran, by kind", ["kind"])


# ------------------------------------------------------------------ work queue


class WorkQueue:
    """Keys to reconcile, deduplicated; a key being processed is never handed out twice: adding
    it meanwhile marks it dirty, and it comes back once `done`. Delayed adds keep the earliest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: collections.deque[ObjKey] = collections.deque()
        self._queued: set[ObjKey] = set()
        self._processing: set[ObjKey] = set()
        self._dirty: set[ObjKey] = set()
        self._timers: list[tuple[float, int, ObjKey]] = []
        self._due: dict[ObjKey, float] = {}
        self._seq = 0
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._ready) + len(self._due)

    def add(self, key: ObjKey) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.append(key)
        self._wakeup.set()

    def add_after(self, key: ObjKey, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        due = self._clock() + delay
        if self._due.get(key, float("inf")) <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, key))
        self._wakeup.set()

    def forget(self, key: ObjKey) -> None:
        """Drop pending delayed adds of a key (an object deleted)."""
        self._due.pop(key, None)

    def _promote_due(self) -> float | None:
        now = self._clock()
        while self._timers:
            due, _, key = self._timers[0]
            if self._due.get(key) != due:
                heapq.heappop(self._timers)  # superseded or forgotten
                continue
            if due > now:
                return due - now
            heapq.heappop(self._timers)
            del self._due[key]
            self.add(key)
        return None

    def pop_ready(self) -> ObjKey | None:
        self._promote_due()
        if not self._ready:
            return None
        key = self._ready.popleft()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    async def get(self) -> ObjKey:
        while True:
            key = self.pop_ready()
            if key is not None:
                return key
            self._wakeup.clear()
            timeout = self._promote_due()
            if self._ready:
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def done(self, key: ObjKey) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)


# ------------------------------------------------------------------ dependencies


class Dependencies:
    """Who read what, in reverse: from a changed object to the reconciles that read it."""

    def __init__(self) -> None:
        self._reads: dict[ObjKey, Reads] = {}
        self._names: dict[tuple[GVK, str, str], set[ObjKey]] = {}
        # selectors by their first equality requirement, (gvk, ns, label, value); others under (gvk, ns, "", "")
        self._selectors: dict[tuple[GVK, str, str, str], dict[ObjKey, set[str]]] = {}
        self._fields: dict[tuple[GVK, str, str, str], set[ObjKey]] = {}

    def replace(self, owner: ObjKey, reads: Reads) -> None:
        self.forget(owner)
        self._reads[owner] = reads
        for item in reads.names:
            self._names.setdefault(item, set()).add(owner)
        for gvk, namespace, selector in reads.selectors:
            self._selectors.setdefault(self._selector_slot(gvk, namespace, selector), {}).setdefault(
                owner, set()).add(selector)
        for item in reads.fields:
            self._fields.setdefault(item, set()).add(owner)

    def forget(self, owner: ObjKey) -> None:
        reads = self._reads.pop(owner, None)
        if reads is None:
            return
        for item in reads.names:
            self._drop(self._names, item, owner)
        for gvk, namespace, selector in reads.selectors:
            slot = self._selector_slot(gvk, namespace, selector)
            owners = self._selectors.get(slot, {})
            owners.pop(owner, None)
            if not owners:
                self._selectors.pop(slot, None)
        for item in reads.fields:
            self._drop(self._fields, item, owner)

    @staticmethod
    def _drop(index: dict, item, owner: ObjKey) -> None:
        owners = index.get(item)
        if owners is not None:
            owners.discard(owner)
            if not owners:
                del index[item]

    @staticmethod
    def _selector_slot(gvk: GVK, namespace: str, selector: str) -> tuple[GVK, str, str, str]:
        for requirement in parse_selector(selector):
            if requirement.operator in ("=", "in") and len(requirement.values) == 1:
                return (gvk, namespace, requirement.key, next(iter(requirement.values)))
        return (gvk, namespace, "", "")

    def readers_of(self, bodies: list[dict]) -> set[ObjKey]:
        """The reconciles whose last reads cover any of these versions of one object (before and
        after a change: a label moving out of a selector matters as much as one moving in)."""
        found: set[ObjKey] = set()
        for body in bodies:
            meta = body.get("metadata") or {}
            gvk: GVK = (body.get("apiVersion", ""), body.get("kind", ""))
            namespace, name = meta.get("namespace") or "", meta.get("name", "")
            labels = meta.get("labels") or {}
            found |= self._names.get((gvk, namespace, name), set())
            slots = [(gvk, namespace, "", "")] + [(gvk, namespace, k, v) for k, v in labels.items()]
            for slot in slots:
                for owner, selectors in self._selectors.get(slot, {}).items():
                    if owner not in found and any(selector_matches(parse_selector(s), labels) for s in selectors):
                        found.add(owner)
            for index in CACHE.field_indexes_of(*gvk):
                value = CACHE.field_values(body, index)
                if value is not None:
                    found |= self._fields.get((gvk, namespace, index, value), set())
        return found


# ------------------------------------------------------------------ the engine


@dataclass
class Outcome:
    """What one reconcile asks of the engine; filled by `handlers.common`."""

    requeue_after: float | None = None
    force_apply: bool = False  # a resync: apply children even when they look unchanged
    written_resource_version: str | None = None

    def requeue(self, seconds: float | None) -> None:
        if seconds is None:
            return
        seconds = max(float(seconds), 0.0)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


current_outcome: contextvars.ContextVar[Outcome | None] = contextvars.ContextVar("kadence_outcome", default=None)

# handlers.common.run_reconcile(kind, reconcile, body, outcome)
RunOne = Callable[[Kind, Callable[..., None], dict, Outcome], None]


@dataclass
class Engine:
    run_one: RunOne | None = None
    kinds: dict[str, Kind] = field(default_factory=dict)
    reconcilers: dict[str, Callable[..., None]] = field(default_factory=dict)
    # kind -> called with (namespace, name) when an object of that kind is deleted (no finalizer:
    # a kopf deletion handler would make kopf annotate every object of the kind once).
    on_deleted: dict[str, Callable[[str, str], None]] = field(default_factory=dict)
    resync_seconds: float = field(default_factory=lambda: settings().resync_seconds)
    workers: int = field(default_factory=lambda: settings().reconcile_workers)

    def __post_init__(self) -> None:
        self.deps = Dependencies()
        self.queue: WorkQueue | None = None
        self._tasks: list[asyncio.Task] = []
        self._own_writes: dict[ObjKey, str] = {}
        self._failures: dict[ObjKey, int] = {}
        self._resync_due: set[ObjKey] = set()
        self.reconciles = 0  # for tests and the benchmark: how many reconciles ran

    # -- lifecycle (on kopf's event loop)

    def ensure_started(self) -> None:
        """Start the workers, from a kopf handler's context (kopf.event needs it)."""
        if self._tasks:
            return
        self.queue = WorkQueue()
        self._tasks = [asyncio.get_running_loop().create_task(self._worker(), name=f"kadence-worker-{n}")
                       for n in range(max(self.workers, 1))]
        self._tasks.append(asyncio.get_running_loop().create_task(self._resync(), name="kadence-resync"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- events (on kopf's event loop)

    def observed(self, event_type: str | None, body: dict, previous: dict | None) -> None:
        """A watched object was listed, added, changed or deleted: queue whoever cares."""
        self.ensure_started()
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace") or "", meta.get("name", "")
        kind = body.get("kind", "")
        own = (kind, namespace, name)
        if kind in self.kinds and (body.get("apiVersion", "").startswith("kadence.dev/")):
            if event_type == "DELETED":
                self.deps.forget(own)
                self.queue.forget(own)
                self._own_writes.pop(own, None)
                self._failures.pop(own, None)
                if kind in self.on_deleted:
                    self.on_deleted[kind](namespace, name)
            elif self._own_writes.get(own) != meta.get("resourceVersion"):
                self.queue.add(own)
        for owner in owners_of(body):
            if owner[0] in self.kinds:
                self.queue.add(owner)
        for reader in self.deps.readers_of([b for b in (previous, body) if b is not None]):
            if reader != own:
                self.queue.add(reader)

    # -- work

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                delay = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in the engine itself: log it, look again later
                log.exception("reconciling %s/%s/%s failed", *key)
                delay = self._backoff(key)
            finally:
                self.queue.done(key)
            if delay is not None:
                self.queue.add_after(key, delay)

    async def _reconcile(self, key: ObjKey) -> float | None:
        kind = self.kinds[key[0]]
        stored = CACHE.peek(API_VERSION, kind.kind, key[1], key[2])
        if stored is None or (stored.get("metadata") or {}).get("deletionTimestamp"):
            self.deps.forget(key)
            return None
        body = copy.deepcopy(stored)
        outcome = Outcome(force_apply=key in self._resync_due)
        self._resync_due.discard(key)
        reads = Reads()

        def run() -> None:
            current_reads.set(reads)
            current_outcome.set(outcome)
            self.run_one(kind, self.reconcilers[kind.kind], body, outcome)

        # A fresh context per run: the reads and the outcome are this reconcile's own.
        context = contextvars.copy_context()
        failed = None
        try:
            await asyncio.to_thread(context.run, run)
        except Exception as error:  # run_one reports and counts it; the engine retries
            failed = error
        finally:
            self.deps.replace(key, reads)
            self.reconciles += 1
            RECONCILES.labels(kind=key[0]).inc()
        if outcome.written_resource_version is not None:
            self._own_writes[key] = outcome.written_resource_version
        if failed is not None:
            log.warning("reconciling %s %s/%s failed: %s: %s", key[0], key[1], key[2], type(failed).__name__, failed)
            return self._backoff(key)
        self._failures.pop(key, None)
        return outcome.requeue_after

    def _backoff(self, key: ObjKey) -> float:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        return min(2.0 ** (failures - 1), MAX_BACKOFF_SECONDS)

    async def _resync(self) -> None:
        """The safety net: every object once per period, spread over the period."""
        while True:
            await asyncio.sleep(self.resync_seconds)
            for kind in self.kinds.values():
                for key in CACHE.keys(API_VERSION, kind.kind):
                    own = (kind.kind, *key)
                    self._resync_due.add(own)
                    self.queue.add_after(own, random.uniform(0, self.resync_seconds / 2))


def owners_of(body: dict) -> list[ObjKey]:
    """The Kadence objects that own this one: its controller ownerReferences, else its
    kadence.dev/owner-kind and owner-name labels."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    found = [(ref["kind"], namespace, ref["name"]) for ref in meta.get("ownerReferences") or []
             if str(ref.get("apiVersion", "")).startswith("kadence.dev/") and ref.get("kind") in BY_KIND]
    if found:
        return found
    labels = meta.get("labels") or {}
    lowered = {kind.lower(): kind for kind in BY_KIND}
    owner_kind = lowered.get(labels.get(keys.OWNER_KIND_LABEL, ""))
    if owner_kind and labels.get(keys.OWNER_NAME_LABEL):
        return [(owner_kind, namespace, labels[keys.OWNER_NAME_LABEL])]
    return []


ENGINE = Engine()
