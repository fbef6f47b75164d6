"""List+watch caches and a de-duplicating work queue, as client-go's informers provide."""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from typing import Awaitable, Callable

import aiohttp

from . import podspec
from .api import PODS, ApiClient, ApiError, Resource, WatchExpired

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Handler = Callable[[str, dict, dict | None], None]  # (event type, object, previous object)


def key_of(obj: dict) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


class Informer:
    """Keeps an up-to-date copy of every object of one resource and tells handlers of changes."""

    def __init__(self, client: ApiClient, resource: Resource):
        self.client = client
        self.resource = resource
        self.store: dict[Key, dict] = {}
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self._resource_version = ""

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def get(self, namespace: str, name: str) -> dict | None:
        return self.store.get((namespace, name))

    def objects(self, namespace: str | None = None) -> list[dict]:
        if namespace is None:
            return list(self.store.values())
        return [obj for (ns, _), obj in self.store.items() if ns == namespace]

    def _emit(self, kind: str, obj: dict, old: dict | None) -> None:
        for handler in self.handlers:
            try:
                handler(kind, obj, old)
            except Exception:  # noqa: BLE001 - one bad handler must not stop the cache
                log.exception("handler for %s failed", self.resource.plural)

    async def _relist(self) -> None:
        listing = await self.client.list(self.resource)
        fresh = {key_of(obj): obj for obj in listing.get("items") or []}
        for key, old in list(self.store.items()):
            if key not in fresh:
                del self.store[key]
                self._emit("DELETED", old, old)
        for key, obj in fresh.items():
            old = self.store.get(key)
            self.store[key] = obj
            if old is None:
                self._emit("ADDED", obj, None)
            elif old.get("metadata", {}).get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", obj, old)
        self._resource_version = (listing.get("metadata") or {}).get("resourceVersion") or ""
        self.synced.set()

    def _apply(self, kind: str, obj: dict) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            if rv:
                self._resource_version = rv
            return
        key = key_of(obj)
        old = self.store.get(key)
        if kind == "DELETED":
            self.store.pop(key, None)
        else:
            self.store[key] = obj
        if rv:
            self._resource_version = rv
        self._emit(kind, obj, old)

    async def run(self) -> None:
        relist = True
        while True:
            try:
                try:
                    if relist:
                        await self._relist()
                        relist = False
                    async for kind, obj in self.client.watch(self.resource, self._resource_version):
                        self._apply(kind, obj)
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    # The server does not serve this resource (yet): nothing to cache, look again later.
                    log.warning("%s not served by the API server; retrying in 10 s", self.resource.plural)
                    self.synced.set()
                    relist = True
                    await asyncio.sleep(10)
            except WatchExpired:
                relist = True
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, ApiError, asyncio.TimeoutError, ValueError, OSError) as exc:
                log.warning("watch of %s failed (%s); listing again", self.resource.plural, exc)
                relist = True
                await asyncio.sleep(0.5 + random.random())


class WorkQueue:
    """Keys to reconcile, each at most once in the queue, each handled by one worker at a time.

    A key added while it is being handled is handled again afterwards, so no
    change is lost; `add_after` schedules a key for later (deadlines, back-offs).
    """

    def __init__(self, name: str, reconcile: Callable[[Key], Awaitable[None]], workers: int = 1):
        self.name = name
        self.reconcile = reconcile
        self.workers = workers
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._again: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key) -> None:
        if key in self._active:
            self._again.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        when = loop.time() + max(0.0, delay)
        if existing is not None and existing.when() <= when:
            return  # an earlier wake-up is already planned and will reconcile everything
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status != 409:  # conflicts are normal: the next event brings fresh state
                    log.warning("%s %s: %s", self.name, key, exc)
                self.add_after(key, 1.0)
            except Exception:  # noqa: BLE001 - keep reconciling other keys
                log.exception("%s %s failed", self.name, key)
                self.add_after(key, 2.0)
            finally:
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)


class Expectations:
    """Names a controller just created or deleted and has not yet seen in its cache.

    Until the cache catches up, the controller must not act on its stale view
    (it would create the same pods twice); client-go's controllers do the same.
    """

    def __init__(self, patience: float = 30.0):
        self.patience = patience
        self._creates: dict[str, dict[str, float]] = {}
        self._deletes: dict[str, dict[str, float]] = {}

    def expect_create(self, owner: str, name: str) -> None:
        self._creates.setdefault(owner, {})[name] = _now()

    def expect_delete(self, owner: str, name: str) -> None:
        self._deletes.setdefault(owner, {})[name] = _now()

    def satisfied(self, owner: str, seen: dict[str, dict]) -> bool:
        """True when every expected create is in `seen` (name -> object) and every delete has begun."""
        now = _now()
        creates = {n: t for n, t in self._creates.get(owner, {}).items()
                   if n not in seen and now - t < self.patience}
        deletes = {n: t for n, t in self._deletes.get(owner, {}).items()
                   if n in seen and not seen[n]["metadata"].get("deletionTimestamp") and now - t < self.patience}
        for table, pending in ((self._creates, creates), (self._deletes, deletes)):
            if pending:
                table[owner] = pending
            else:
                table.pop(owner, None)
        return not creates and not deletes

    def forget(self, owner: str) -> None:
        self._creates.pop(owner, None)
        self._deletes.pop(owner, None)


class OwnerController(abc.ABC):
    """What the Job, ReplicaSet and Deployment controllers share: a work queue of owner keys
    running `reconcile`, the creates/deletes they await (`expectations`) and the status they
    last wrote per owner uid (so a server's differently normalized status is not rewritten)."""

    def __init__(self, client: ApiClient, name: str):
        self.client = client
        self.expectations = Expectations()
        self._written: dict[str, dict] = {}
        self.queue = WorkQueue(name, self.reconcile, workers=2)

    @abc.abstractmethod
    async def reconcile(self, key: Key) -> None:
        """Bring one owner's children and status in line with its spec."""

    async def run(self) -> None:
        await self.queue.run()

    def enqueue_controller_of(self, obj: dict, kind: str) -> None:
        key = podspec.controller_key(obj, kind)
        if key:
            self.queue.add(key)

    def forget(self, uid: str) -> None:
        """Drop what was kept about a deleted owner."""
        self.expectations.forget(uid)
        self._written.pop(uid, None)


def settled_children(children: Informer, expectations: Expectations, namespace: str, uid: str) -> list[dict] | None:
    """The objects in `namespace` that `uid` controls, or None while the cache has not yet
    seen a create or delete the controller made for it."""
    owned = [obj for obj in children.objects(namespace) if podspec.controller_uid(obj) == uid]
    if not expectations.satisfied(uid, {obj["metadata"]["name"]: obj for obj in owned}):
        return None
    return owned


async def create_and_delete_pods(client: ApiClient, expectations: Expectations, namespace: str, uid: str,
                                 create: int, new_pod: Callable[[], dict], delete: list[str]) -> None:
    """Create `create` pods from `new_pod()` and delete the named ones, expecting each in the cache."""
    for _ in range(create):
        created = await client.create(PODS, namespace, new_pod())
        expectations.expect_create(uid, created["metadata"]["name"])
    for pod_name in delete:
        expectations.expect_delete(uid, pod_name)
        await client.delete(PODS, namespace, pod_name)


def _now() -> float:
    import time
    return time.monotonic()
