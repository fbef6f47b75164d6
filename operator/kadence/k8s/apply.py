"""Server-side apply of desired children and deletion of unwanted ones; reads.

Reads (`get`, `list_objects`, `list_children`) come from the watch-fed cache
(`k8s.cache.CACHE`) for the kinds it serves, and from the API server otherwise. Every
request has a timeout (`REQUEST_TIMEOUT_SECONDS`): a slow API server fails the reconcile,
which is retried, instead of hanging a worker.
"""

from __future__ import annotations

import json

from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException

from ..api import keys
from .cache import CACHE
from .client import FIELD_MANAGER, api_client, object_path

# (connect, read) seconds for one API request.
REQUEST_TIMEOUT_SECONDS = (5.0, 30.0)


def _request(api: ApiClient, method: str, path: str, query_params=None, header_params=None, body=None) -> bytes:
    """One API request; the response body, or ApiException for a non-2xx status."""
    serialized = api.param_serialize(
        method,
        path,
        query_params=query_params,
        header_params=header_params,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT_SECONDS)
    response.read()
    if not 200 <= response.status < 300:
        raise ApiException(http_resp=response)
    return response.data or b""


def _call(api: ApiClient, method: str, path: str, query_params=None, header_params=None, body=None) -> dict:
    return json.loads(_request(api, method, path, query_params, header_params, body) or b"{}")


def apply(body: dict, api: ApiClient | None = None) -> dict:
    """Create or update `body` with server-side apply, owning every field it sets."""
    api = api or api_client()
    meta = body["metadata"]
    path = object_path(body["apiVersion"], body["kind"], meta.get("namespace"), meta["name"])
    return _observed(_call(
        api,
        "PATCH",
        path,
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=json.dumps(body),
    ))


def _observed(written: dict) -> dict:
    """Put what a write returned into the cache at once: the next reconcile, maybe before the
    watch event arrives, must see it."""
    meta = written.get("metadata") or {}
    if meta.get("name") and CACHE.serves(written.get("apiVersion", ""), written.get("kind", ""),
                                         labels=meta.get("labels") or {}):
        CACHE.upsert(written)
    return written


def delete(api_version: str, kind: str, namespace: str, name: str, api: ApiClient | None = None) -> bool:
    """Delete with background propagation; False when it was already gone."""
    api = api or api_client()
    try:
        _call(
            api,
            "DELETE",
            object_path(api_version, kind, namespace, name),
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"},
        )
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def get(api_version: str, kind: str, namespace: str, name: str, api: ApiClient | None = None) -> dict | None:
    if api is None and CACHE.serves(api_version, kind):
        return CACHE.get(api_version, kind, namespace, name)
    api = api or api_client()
    try:
        return _call(api, "GET", object_path(api_version, kind, namespace, name),
                     header_params={"Accept": "application/json"})
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def create(body: dict, api: ApiClient | None = None) -> dict:
    """Create `body`; an existing name raises ApiException with status 409."""
    api = api or api_client()
    meta = body["metadata"]
    return _observed(_call(api, "POST", object_path(body["apiVersion"], body["kind"], meta.get("namespace")),
                           query_params=[("fieldManager", FIELD_MANAGER)],
                           header_params={"Content-Type": "application/json", "Accept": "application/json"},
                           body=body))


def merge_patch(api_version: str, kind: str, namespace: str, name: str, patch: dict,
                api: ApiClient | None = None) -> dict:
    api = api or api_client()
    return _observed(_call(api, "PATCH", object_path(api_version, kind, namespace, name),
                           query_params=[("fieldManager", FIELD_MANAGER)],
                           header_params={"Content-Type": "application/merge-patch+json",
                                          "Accept": "application/json"},
                           body=patch))


def list_objects(api_version: str, kind: str, namespace: str, selector: str | None = None,
                 api: ApiClient | None = None) -> list[dict]:
    if api is None and CACHE.serves(api_version, kind, selector):
        return CACHE.list(api_version, kind, namespace, selector)
    api = api or api_client()
    query = [("labelSelector", selector)] if selector else []
    result = _call(api, "GET", object_path(api_version, kind, namespace), query_params=query,
                   header_params={"Accept": "application/json"})
    return result.get("items", [])


def patch_status(api_version: str, kind: str, namespace: str, name: str, status: dict,
                 api: ApiClient | None = None) -> dict:
    """Merge `status` into the object's status subresource; returns the object written."""
    api = api or api_client()
    return _observed(_call(api, "PATCH", object_path(api_version, kind, namespace, name) + "/status",
                           query_params=[("fieldManager", FIELD_MANAGER)],
                           header_params={"Content-Type": "application/merge-patch+json",
                                          "Accept": "application/json"},
                           body={"status": status}))


def list_children(api_version: str, kind: str, namespace: str, owner_kind: str, owner_name: str,
                  api: ApiClient | None = None) -> list[dict]:
    selector = keys.owner_selector(owner_kind, owner_name)
    return list_objects(api_version, kind, namespace, selector, api)


def job_log_tail(namespace: str, job_name: str, lines: int = 20, api: ApiClient | None = None) -> str | None:
    """The last lines of the newest pod of a Job, or None when it has no pod left."""
    api = api or api_client()
    pods = list_objects("v1", "Pod", namespace, f"job-name={job_name}", api)
    if not pods:
        return None
    newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
    path = object_path("v1", "Pod", namespace, newest["metadata"]["name"]) + "/log"
    try:
        return _request(api, "GET", path, query_params=[("tailLines", str(lines))]).decode("utf-8", errors="replace")
    except ApiException:
        return None
