"""The six kinds kept current by watches: one thread per kind lists, then watches from the list's
resourceVersion (relisting after a 410 Gone or a dropped stream); every change is applied to the
Snapshot on the event loop and announced to the subscribers (the pages' event streams).
Watched namespace by namespace (a thread per kind and namespace) when given a list, which needs
only namespaced list/watch rights; cluster-wide otherwise."""

from __future__ import annotations

import asyncio
import logging
import threading

from ..api.common import GROUP, VERSION
from ..api.kinds import BY_KIND
from .views import KINDS, Snapshot

log = logging.getLogger("kadence.console")
WATCH_SECONDS = 300  # the server ends a watch after this long; the thread watches again from there
RETRY_SECONDS = 1.0


class Watcher:
    def __init__(self, api, namespaces: list[str] | None, loop: asyncio.AbstractEventLoop):
        """`api`: a kubernetes CustomObjectsApi; `namespaces`: those, or None for all."""
        self.api = api
        self.namespaces = sorted(set(namespaces)) if namespaces is not None else None
        self.loop = loop
        self.snapshot = Snapshot()
        self.subscribers: set[asyncio.Queue] = set()
        scopes = self.namespaces if self.namespaces is not None else [None]
        self.synced = {(kind, ns): asyncio.Event() for kind in KINDS for ns in scopes}
        self.errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._watches: list = []
        self._threads = [threading.Thread(target=self._run, args=(kind, ns), name=f"watch-{kind}-{ns}", daemon=True)
                         for kind, ns in self.synced]

    def watches(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for watch in list(self._watches):
            watch.stop()

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    # -- on the event loop ----------------------------------------------------------------------

    def _replace(self, kind: str, namespace: str | None, items: list[dict]) -> None:
        keep = {k: v for k, v in self.snapshot.objects[kind].items() if namespace is not None and k[0] != namespace}
        self.snapshot.objects[kind] = keep
        for item in items:
            self.snapshot.put(item)
        self.synced[(kind, namespace)].set()
        self.errors.pop(_scope(kind, namespace), None)
        self._announce({"kind": kind, "type": "RELIST"})

    def _apply(self, kind: str, event_type: str, obj: dict) -> None:
        if event_type == "DELETED":
            self.snapshot.remove(obj)
        else:
            self.snapshot.put(obj)
        meta = obj["metadata"]
        self._announce({"kind": kind, "type": event_type, "namespace": meta.get("namespace"), "name": meta["name"]})

    def _failed(self, kind: str, namespace: str | None, message: str) -> None:
        self.errors[_scope(kind, namespace)] = message
        self._announce({"kind": kind, "type": "ERROR", "message": message})

    def _announce(self, change: dict) -> None:
        for queue in list(self.subscribers):
            if queue.full():  # a stalled page: it refetches everything on its next change anyway
                continue
            queue.put_nowait(change)

    # -- in the watch threads -------------------------------------------------------------------

    def _call(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def _run(self, kind: str, namespace: str | None) -> None:
        from kubernetes import watch

        plural = BY_KIND[kind].plural

        def list_objects(**kwargs) -> dict:
            if namespace is None:
                return self.api.list_cluster_custom_object(GROUP, VERSION, plural, **kwargs)
            return self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **kwargs)

        while not self._stop.is_set():
            try:
                listed = list_objects()
                items = [{**item, "kind": kind} for item in listed.get("items", [])]
                self._call(self._replace, kind, namespace, items)
                version = listed["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    stream = watch.Watch()
                    self._watches.append(stream)
                    try:
                        for event in stream.stream(list_objects, resource_version=version,
                                                   timeout_seconds=WATCH_SECONDS, allow_watch_bookmarks=True):
                            obj = event["object"]
                            version = obj["metadata"]["resourceVersion"]
                            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                                self._call(self._apply, kind, event["type"], {**obj, "kind": kind})
                    finally:
                        self._watches.remove(stream)
            except Exception as error:  # noqa: BLE001 - 410 Gone, a dropped stream, a 403: relist after a pause
                if self._stop.is_set():
                    return
                status = getattr(error, "status", None)
                if status != 410:
                    log.warning("watching %s failed (%s); relisting", kind, error)
                    self._call(self._failed, kind, namespace, f"{type(error).__name__}: {str(error).splitlines()[0]}"
                               if str(error) else type(error).__name__)
                self._stop.wait(RETRY_SECONDS)


def _scope(kind: str, namespace: str | None) -> str:
    return f"{kind} in {namespace}" if namespace else kind
