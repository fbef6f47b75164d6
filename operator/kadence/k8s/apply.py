"""Server-side apply of desired children and deletion of unwanted ones."""

from __future__ import annotations

import json

from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException

from .client import FIELD_MANAGER, api_client, object_path


def _call(api: ApiClient, method: str, path: str, query_params=None, header_params=None, body=None) -> dict:
    serialized = api.param_serialize(
        method,
        path,
        query_params=query_params,
        header_params=header_params,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized)
    response.read()
    if not 200 <= response.status < 300:
        raise ApiException(http_resp=response)
    return json.loads(response.data or b"{}")


def apply(body: dict, api: ApiClient | None = None) -> dict:
    """Create or update `body` with server-side apply, owning every field it sets."""
    api = api or api_client()
    meta = body["metadata"]
    path = object_path(body["apiVersion"], body["kind"], meta.get("namespace"), meta["name"])
    return _call(
        api,
        "PATCH",
        path,
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=json.dumps(body),
    )


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
    api = api or api_client()
    try:
        return _call(api, "GET", object_path(api_version, kind, namespace, name),
                     header_params={"Accept": "application/json"})
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def list_children(api_version: str, kind: str, namespace: str, owner_kind: str, owner_name: str,
                  api: ApiClient | None = None) -> list[dict]:
    api = api or api_client()
    selector = f"kadence.dev/owner-kind={owner_kind.lower()},kadence.dev/owner-name={owner_name}"
    result = _call(api, "GET", object_path(api_version, kind, namespace),
                   query_params=[("labelSelector", selector)], header_params={"Accept": "application/json"})
    return result.get("items", [])
