"""The operator's only door to the Kubernetes API (besides kopf itself)."""

from __future__ import annotations

import functools

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

FIELD_MANAGER = "kadence-operator"

# Kinds the operator creates, and where they live in the API.
PLURALS = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Secret"): "secrets",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Pod"): "pods",
    ("batch/v1", "Job"): "jobs",
    ("apps/v1", "Deployment"): "deployments",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
}


@functools.lru_cache(maxsize=1)
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def plural_of(api_version: str, kind: str) -> str:
    from ..api.kinds import BY_KIND

    if api_version.startswith("kadence.dev/") and kind in BY_KIND:
        return BY_KIND[kind].plural
    try:
        return PLURALS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"the operator does not manage {kind} ({api_version})") from None


def object_path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural_of(api_version, kind)}"
    return path + (f"/{name}" if name else "")
