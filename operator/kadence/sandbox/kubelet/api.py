"""A small asynchronous Kubernetes API client: the kubelet's only way to the API server.

It speaks plain JSON over HTTP exactly as a real component would (list, watch,
get, create, merge-patch, status patch, delete), so the sandbox's API server is
exercised by the node side the same way a cluster's would be.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
EVENTS = Resource("", "v1", "events", "Event")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints")
JOBS = Resource("batch", "v1", "jobs", "Job")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")


class ApiError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str):
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{method} {path} -> {status}: {message}")

    @property
    def reason(self) -> str | None:
        return self.body.get("reason") if isinstance(self.body, dict) else None


class WatchExpired(Exception):
    """The server answered a watch with 410 Gone: the caller must list again."""


class ApiClient:
    def __init__(self, server: str, token: str, ca_file: str | None = None):
        """`token`: the API server's bearer token; `ca_file`: the CA its HTTPS certificate is verified with."""
        self.server = server.rstrip("/")
        self.token = token
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "ApiClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl) if self._ssl else None,
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=None),
                headers={"User-Agent": "kadence-sandbox-kubelet", "Authorization": f"Bearer {self.token}"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, *, params=None, body=None,
                      content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        async with self.session.request(
            method, self.server + path, params=params, data=data, headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as resp:
            text = await resp.text()
            try:
                payload = json.loads(text) if text else None
            except ValueError:
                payload = text
            if resp.status >= 400:
                raise ApiError(resp.status, payload, method, path)
            return payload

    async def list(self, resource: Resource, namespace: str | None = None, **params) -> dict:
        return await self.request("GET", resource.path(namespace), params=_params(params))

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict | None:
        try:
            return await self.request("GET", resource.path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, resource: Resource, namespace: str | None, body: dict) -> dict:
        return await self.request("POST", resource.path(namespace), body=body)

    async def merge_patch(self, resource: Resource, namespace: str | None, name: str, patch: dict,
                          subresource: str | None = None) -> dict:
        return await self.request("PATCH", resource.path(namespace, name, subresource), body=patch,
                                  content_type="application/merge-patch+json")

    async def patch_status(self, resource: Resource, namespace: str | None, name: str, status: dict) -> dict:
        return await self.merge_patch(resource, namespace, name, {"status": status}, subresource="status")

    async def replace_status(self, resource: Resource, obj: dict) -> dict:
        meta = obj["metadata"]
        return await self.request("PUT", resource.path(meta.get("namespace"), meta["name"], "status"), body=obj)

    async def delete(self, resource: Resource, namespace: str | None, name: str, *,
                     grace_period_seconds: int | None = None, propagation: str | None = None,
                     uid: str | None = None) -> dict | None:
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation is not None:
            options["propagationPolicy"] = propagation
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            return await self.request("DELETE", resource.path(namespace, name), body=options)
        except ApiError as exc:
            if exc.status in (404, 409):  # already gone, or a newer object with the same name
                return None
            raise

    async def watch(self, resource: Resource, resource_version: str, namespace: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[tuple[str, dict]]:
        """Yield (type, object) from a watch; raise WatchExpired on 410 Gone."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        async with self.session.get(self.server + resource.path(namespace), params=params,
                                    headers={"Accept": "application/json"}) as resp:
            if resp.status == 410:
                raise WatchExpired()
            if resp.status >= 400:
                text = await resp.text()
                raise ApiError(resp.status, text, "WATCH", resource.path(namespace))
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise WatchExpired()
                        raise ApiError(obj.get("code") or 500, obj, "WATCH", resource.path(namespace))
                    yield kind, obj


def _params(params: dict) -> dict:
    return {key: str(value) for key, value in params.items() if value is not None}
