"""Shadow traffic without a gateway: the server sends a copy of each answered prediction
request to the shadow's URL, after answering, and drops the shadow's reply.

The copies go through a bounded queue and a few concurrent senders; when the shadow is
slow the queue fills and further copies are dropped and counted, never delaying or
failing the caller's request. The copy keeps the caller's request id (header
X-Request-Id; v2 bodies keep their `id`), so the shadow's prediction log joins the
stable one by request id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


_SERVICE_HOST = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.[a-z0-9-]+\.svc(\.cluster\.local)?$")


def service_link_url(url: str, env: Mapping[str, str] | None = None) -> str:
    """`http://<svc>.<ns>.svc.cluster.local/...` through the Service's link variables
    (<SVC>_SERVICE_HOST/_PORT) when the pod has them, else `url` unchanged.

    Kubernetes sets these for the Services of the pod's namespace that existed when it
    started (the cluster IP and port, where DNS would lead too); the sandbox, which has no
    cluster DNS, points them at its local proxy."""
    env = os.environ if env is None else env
    parts = urlsplit(url)
    match = _SERVICE_HOST.match(parts.hostname or "")
    if match is None:
        return url
    prefix = match.group(1).upper().replace("-", "_")
    host, port = env.get(f"{prefix}_SERVICE_HOST"), env.get(f"{prefix}_SERVICE_PORT")
    if not host or not port:
        return url
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, parts.fragment))


class Mirror:
    """Copies of answered requests to the shadow; the queue is bounded in copies and in bytes."""

    def __init__(self, base_url: str, on_outcome: Callable[[str], None], queue_size: int = 1000,
                 senders: int = 4, timeout: float = 5.0, buffer_bytes: int = 8 * 1024 * 1024):
        self.base_url = service_link_url(base_url.rstrip("/"))
        self._on_outcome = on_outcome
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self._senders = senders
        self._timeout = timeout
        self.buffer_bytes = buffer_bytes
        self.queued_bytes = 0
        self._tasks: list[asyncio.Task] = []
        self._session = None
        self._closed = False

    async def start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        self._tasks = [asyncio.get_running_loop().create_task(self._send_forever()) for _ in range(self._senders)]

    def offer(self, path: str, body: bytes, request_id: str, headers: dict[str, str] | None = None) -> None:
        if self._closed or self.queued_bytes + len(body) > self.buffer_bytes:
            self._on_outcome("dropped")
            return
        try:
            self._queue.put_nowait((path, body, {"content-type": "application/json", "x-request-id": request_id,
                                                 **(headers or {})}))
        except asyncio.QueueFull:
            self._on_outcome("dropped")
            return
        self.queued_bytes += len(body)

    async def _send_forever(self) -> None:
        while True:
            path, body, headers = await self._queue.get()
            self.queued_bytes -= len(body)
            try:
                async with self._session.post(self.base_url + path, data=body, headers=headers) as response:
                    await response.read()
                    self._on_outcome("sent" if response.status < 400 else f"answered_{response.status // 100}xx")
            except asyncio.CancelledError:
                self._on_outcome("dropped")  # still being sent when the shutdown budget ran out
                raise
            except Exception as error:  # noqa: BLE001 - a failing shadow must never affect serving
                log.debug("mirroring to the shadow failed: %s", error)
                self._on_outcome("failed")
            finally:
                self._queue.task_done()

    async def close(self, drain_seconds: float = 3.0) -> None:
        """Send what is queued (up to `drain_seconds`), then stop; copies still queued are
        counted as dropped."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        except TimeoutError:
            pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._queue.empty():
            _, body, _ = self._queue.get_nowait()
            self.queued_bytes -= len(body)
            self._on_outcome("dropped")
        if self._session is not None:
            await self._session.close()
