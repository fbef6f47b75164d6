"""Helpers shared by the API server conformance tests: raw HTTP calls, watch streams and a
test CRD (Gizmo, with status and scale subresources, printer columns and a schema)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import conftest

FIXTURES = Path(__file__).parent / "fixtures"
GIZMOS = "/apis/conformance.kadence.dev/v1alpha1"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


def gizmo_crd() -> dict[str, Any]:
    return yaml.safe_load((FIXTURES / "gizmos-crd.yaml").read_text())


def ensure_gizmo_crd(http: httpx.Client) -> None:
    response = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                         json=gizmo_crd())
    assert response.status_code in (201, 409), response.text
    wait_for(lambda: http.get(GIZMOS).status_code == 200, "the Gizmo CRD to be served")


def gizmo(name: str, size: int = 3, **extra: Any) -> dict[str, Any]:
    body = {"apiVersion": "conformance.kadence.dev/v1alpha1", "kind": "Gizmo",
            "metadata": {"name": name}, "spec": {"size": size}}
    for key, value in extra.items():
        if key in ("labels", "finalizers", "ownerReferences", "annotations"):
            body["metadata"][key] = value
        else:
            body[key] = value
    return body


def configmap(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata},
            "data": {"k": "v"}}


def owner_ref(owner: dict[str, Any], block: bool = False) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": block}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(condition, message: str, timeout: float = 20.0, interval: float = 0.05):
    """The sandbox tests' `wait_for` with the message first and the API server's short defaults."""
    return conftest.wait_for(condition, timeout=timeout, interval=interval, message=message)


def watch(http: httpx.Client, path: str, count: int | None = None, timeout: float = 10.0,
          **params: Any) -> list[dict[str, Any]]:
    """Read watch events from `path` until `count` arrived or the server ends the stream."""
    events = []
    query = {"watch": "true", **{k: str(v) for k, v in params.items()}}
    with http.stream("GET", path, params=query, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line:
                continue
            events.append(json.loads(line))
            if count is not None and len(events) >= count:
                break
    return events
