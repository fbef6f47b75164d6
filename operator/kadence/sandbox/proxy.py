"""The Service proxy: a local port per Service, forwarding connections round-robin to ready pods.

Like kube-proxy it balances connections, not requests, over the pods that the
Service's selector picks and that are Ready, so replica ratios split traffic.
A Service with no ready pod refuses the connection (reset), as kube-proxy's
REJECT rule does; a pod that refuses the connection is skipped for the next ready
one (nothing was sent to it yet), as a mesh's connect-failure retry does.  Each Service's port is kept in the annotation
`sandbox.kadence.dev/proxy-port`, which survives a restart of the sandbox, and
reused when still free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct

from .kubelet import podspec
from .kubelet.api import ENDPOINTS, SERVICES, ApiClient, ApiError
from .kubelet.informer import Informer, WorkQueue, key_of
from .supervisor import free_port

log = logging.getLogger(__name__)

Endpoint = tuple[str, int]  # (pod name, local port)


def ready_endpoints(service: dict, pods: list[dict]) -> list[Endpoint]:
    """The (pod, port) pairs a Service forwards to: selected, Ready, not being deleted, with a port."""
    selector = (service.get("spec") or {}).get("selector")
    endpoints = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        if not podspec.service_selector_matches(selector, meta.get("labels")):
            continue
        if not any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or []):
            continue
        port = (meta.get("annotations") or {}).get(podspec.PORT_ANNOTATION)
        if not port or not port.isdigit():
            continue
        endpoints.append((meta["name"], int(port)))
    return sorted(endpoints)


def endpoint_subsets(service: dict, pods: list[dict]) -> list[dict]:
    """core/v1 Endpoints subsets: one per pod, since every pod has its own port on 127.0.0.1."""
    selector = (service.get("spec") or {}).get("selector")
    service_ports = (service.get("spec") or {}).get("ports") or [{}]
    ready = {name for name, _ in ready_endpoints(service, pods)}
    subsets = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        meta = pod["metadata"]
        port = (meta.get("annotations") or {}).get(podspec.PORT_ANNOTATION)
        if meta.get("deletionTimestamp") or not port or not port.isdigit() or \
                (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or \
                not podspec.service_selector_matches(selector, meta.get("labels")):
            continue
        address = {"ip": podspec.POD_IP, "nodeName": podspec.NODE_NAME,
                   "targetRef": {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta["name"],
                                 "uid": meta.get("uid")}}
        ports = [{k: v for k, v in {"name": p.get("name"), "port": int(port),
                                    "protocol": p.get("protocol", "TCP")}.items() if v is not None}
                 for p in service_ports]
        key = "addresses" if meta["name"] in ready else "notReadyAddresses"
        subsets.append({key: [address], "ports": ports})
    return subsets


class RoundRobin:
    """Hands out endpoints in turn; the turn survives changes of the endpoint list."""

    def __init__(self) -> None:
        self._turn = 0

    def pick(self, endpoints: list[Endpoint]) -> Endpoint | None:
        if not endpoints:
            return None
        endpoint = endpoints[self._turn % len(endpoints)]
        self._turn += 1
        return endpoint


class _Listener:
    def __init__(self, server: asyncio.AbstractServer, port: int):
        self.server = server
        self.port = port
        self.balancer = RoundRobin()


class ServiceProxy:
    def __init__(self, client: ApiClient, services: Informer, pods: Informer, host: str = "127.0.0.1"):
        self.client = client
        self.services = services
        self.pods = pods
        self.host = host
        self.listeners: dict[tuple[str, str], _Listener] = {}
        self._pending: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task] = set()
        self._endpoints_written: dict[tuple[str, str], list[dict]] = {}
        self.endpoints_queue = WorkQueue("endpoints", self._sync_endpoints)
        services.add_handler(self._on_service)
        pods.add_handler(self._on_pod)

    def _on_pod(self, kind: str, pod: dict, old: dict | None) -> None:
        namespace = pod["metadata"].get("namespace") or "default"
        for service in self.services.objects(namespace):
            if (service.get("spec") or {}).get("selector"):
                self.endpoints_queue.add(key_of(service))

    async def run(self) -> None:
        await self.endpoints_queue.run()

    async def _sync_endpoints(self, key: tuple[str, str]) -> None:
        """Keep the Service's Endpoints object in step, as the endpoints controller does."""
        namespace, name = key
        service = self.services.get(namespace, name)
        if service is None:
            self._endpoints_written.pop(key, None)
            await self.client.delete(ENDPOINTS, namespace, name)
            return
        if not (service.get("spec") or {}).get("selector"):
            return  # Endpoints of a selector-less Service belong to whoever manages them
        subsets = endpoint_subsets(service, self.pods.objects(namespace))
        if self._endpoints_written.get(key) == subsets:
            return
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": dict(service["metadata"].get("labels") or {})},
                "subsets": subsets}
        try:
            await self.client.create(ENDPOINTS, namespace, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            await self.client.merge_patch(ENDPOINTS, namespace, name, {"subsets": subsets})
        self._endpoints_written[key] = subsets

    def _on_service(self, kind: str, service: dict, old: dict | None) -> None:
        meta = service["metadata"]
        key = (meta.get("namespace") or "default", meta["name"])
        self.endpoints_queue.add(key)
        if kind == "DELETED":
            listener = self.listeners.pop(key, None)
            if listener is not None:
                listener.server.close()
            return
        listener = self.listeners.get(key)
        annotated = (meta.get("annotations") or {}).get(podspec.PROXY_PORT_ANNOTATION)
        if listener is not None:
            if annotated != str(listener.port):
                self._spawn(self._annotate(key, listener.port))
            return
        if key not in self._pending:
            self._pending.add(key)
            self._spawn(self._open(key, int(annotated) if annotated and annotated.isdigit() else None))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, key: tuple[str, str], wanted: int | None) -> None:
        try:
            server = None
            if wanted:
                with contextlib.suppress(OSError):
                    server = await self._listen(key, wanted)
            if server is None:
                server = await self._listen(key, free_port(self.host))
            port = server.sockets[0].getsockname()[1]
            if self.services.get(*key) is None:  # deleted while we were opening its port
                server.close()
                return
            self.listeners[key] = _Listener(server, port)
            if port != wanted:
                await self._annotate(key, port)
        finally:
            self._pending.discard(key)

    async def _listen(self, key: tuple[str, str], port: int) -> asyncio.AbstractServer:
        async def handle(reader, writer):
            await self._forward(key, reader, writer)
        return await asyncio.start_server(handle, self.host, port, reuse_address=True)

    async def _annotate(self, key: tuple[str, str], port: int) -> None:
        namespace, name = key
        try:
            await self.client.merge_patch(SERVICES, namespace, name,
                                          {"metadata": {"annotations": {podspec.PROXY_PORT_ANNOTATION: str(port)}}})
        except ApiError as exc:
            if exc.status != 404:
                log.warning("annotating service %s/%s: %s", namespace, name, exc)

    async def _forward(self, key: tuple[str, str], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        listener = self.listeners.get(key)
        service = self.services.get(*key)
        endpoint = None
        if listener is not None and service is not None:
            endpoint = listener.balancer.pick(ready_endpoints(service, self.pods.objects(key[0])))
        if endpoint is None:
            _reset(writer)
            return
        upstream = await self._connect(key, listener, service, endpoint)
        if upstream is None:
            _reset(writer)
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()

    async def _connect(self, key: tuple[str, str], listener: _Listener, service: dict, endpoint: Endpoint):
        """Connect to `endpoint`, or, if it refuses (a pod just stopped), to the next ready one: no
        byte has been sent yet, so trying another pod is safe for any request."""
        tried: set[Endpoint] = set()
        while endpoint is not None and endpoint not in tried:
            tried.add(endpoint)
            try:
                return await asyncio.open_connection(podspec.POD_IP, endpoint[1])
            except OSError:
                candidates = [e for e in ready_endpoints(service, self.pods.objects(key[0])) if e not in tried]
                endpoint = listener.balancer.pick(candidates)
        return None

    async def close(self) -> None:
        for listener in self.listeners.values():
            listener.server.close()
        self.listeners.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        with contextlib.suppress(Exception):
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST so the client sees the connection refused/reset, not an empty answer."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
