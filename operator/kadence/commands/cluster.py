"""What the read-only commands share: the kadence.dev custom objects API, plain text tables and
one-line explanations of the Kubernetes client's errors."""

from __future__ import annotations

GROUP, VERSION = "kadence.dev", "v1alpha1"


def custom_objects_api(kubeconfig: str | None, context: str | None):
    """(CustomObjectsApi, the context's namespace) from a kubeconfig, else from inside a pod."""
    from kubernetes import client, config

    try:
        config.load_kube_config(config_file=kubeconfig, context=context)
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
        default_namespace = ((active or {}).get("context") or {}).get("namespace") or "default"
    except config.ConfigException:
        if kubeconfig or context:
            raise
        config.load_incluster_config()
        default_namespace = "default"
    return client.CustomObjectsApi(), default_namespace


def list_objects(api, plural: str, namespace: str | None) -> list[dict]:
    """The kadence.dev objects of `plural` in `namespace`, or in all namespaces when it is None."""
    if namespace is None:
        return api.list_cluster_custom_object(GROUP, VERSION, plural).get("items", [])
    return api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural).get("items", [])


def explain(error: Exception, kind: str, forbidden: str) -> str:
    """One line for a failed API call: a missing `kind`, `forbidden` (what was refused), or the error."""
    status = getattr(error, "status", None)
    if status == 404:
        return f"the {kind} kind is not installed in this cluster (kadence crds | kubectl apply -f -)"
    if status == 403:
        return f"not allowed to {forbidden}"
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def render_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Left-aligned columns three spaces apart, as kubectl prints them."""
    widths = [max(len(str(v)) for v in column) for column in zip(columns, *rows)]
    return "\n".join("   ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in [columns, *rows])
