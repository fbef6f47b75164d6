"""The operator's only door to the Kubernetes API (besides kopf itself)."""

from __future__ import annotations

import copy
import functools
import logging
import time
from typing import Callable

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

log = logging.getLogger(__name__)

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


# How often credentials are read again from where they came from, as client-go re-reads a token file.
REREAD_SECONDS = 60.0


@functools.lru_cache(maxsize=1)
def api_client() -> client.ApiClient:
    return client.ApiClient(configuration())


def configuration(clock: Callable[[], float] = time.monotonic) -> client.Configuration:
    """The client's configuration, in the cluster or from the kubeconfig, whose bearer token
    follows a rotation without a restart.

    In a pod the client's own in-cluster loader re-reads the ServiceAccount token file every
    minute (projected tokens are rotated by the kubelet). From a kubeconfig, the file (and a
    `tokenFile` it names) is read again at most every REREAD_SECONDS; a file that cannot be read
    then keeps the last good token. Client certificates are read once.
    """
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
        return configuration
    except ConfigException:
        config.load_kube_config(client_configuration=configuration)
    # What the kubeconfig says now; its own hook (if any) refreshes exec/OIDC credentials on expiry.
    source = copy.deepcopy(configuration)
    loaded_at = clock()

    def reread(current: client.Configuration) -> None:
        nonlocal source, loaded_at
        if clock() - loaded_at >= REREAD_SECONDS:
            loaded_at = clock()
            fresh = client.Configuration()
            try:
                config.load_kube_config(client_configuration=fresh)
                source = fresh
            except (ConfigException, OSError, ValueError, yaml.YAMLError) as error:
                log.warning("kubeconfig not read again (%s); keeping the last credentials", error)
        if source.refresh_api_key_hook is not None:
            source.refresh_api_key_hook(source)
        current.api_key = dict(source.api_key)

    configuration.refresh_api_key_hook = reread
    return configuration


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
