"""Defaults kube-apiserver fills into built-in objects, for the fields clients read back."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any, Callable

JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def _pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        image = container.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        container.setdefault(
            "imagePullPolicy", "Always" if ":" not in tag or tag.endswith(":latest") else "IfNotPresent"
        )
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports", []) or []:
            port.setdefault("protocol", "TCP")


def _pod_template(template: dict[str, Any]) -> None:
    _pod_spec(template.setdefault("spec", {}))


def default_pod(obj: dict[str, Any], _uid: str) -> None:
    _pod_spec(obj.setdefault("spec", {}))
    obj.setdefault("spec", {}).setdefault("enableServiceLinks", True)


def default_deployment(obj: dict[str, Any], _uid: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy["type"] = "RollingUpdate"
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    _pod_template(spec.setdefault("template", {}))


def default_replicaset(obj: dict[str, Any], _uid: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _pod_template(spec.setdefault("template", {}))


def default_job(obj: dict[str, Any], uid: str) -> None:
    """Jobs get a generated selector on their uid and the matching template labels."""
    spec = obj.setdefault("spec", {})
    if "parallelism" not in spec and "completions" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    template = spec.setdefault("template", {})
    if not spec.get("manualSelector"):
        name = obj["metadata"]["name"]
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.setdefault(JOB_UID_LABEL, uid)
        labels.setdefault(JOB_NAME_LABEL, name)
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", name)
        spec.setdefault("selector", {"matchLabels": {JOB_UID_LABEL: uid}})
    template.setdefault("spec", {}).setdefault("restartPolicy", "Never")
    _pod_template(template)


class ClusterIPAllocator:
    """Hands out service cluster IPs from 10.96.0.0/12, skipping the ones in use."""

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self._network = ipaddress.ip_network(cidr)

    def allocate(self, used: set[str]) -> str:
        for index, address in enumerate(self._network.hosts()):
            if index == 0:
                continue  # 10.96.0.1 is the `kubernetes` service's
            if str(address) not in used:
                return str(address)
        raise RuntimeError("service cluster IP range exhausted")


def default_service(obj: dict[str, Any], _uid: str) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports", []) or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def default_namespace(obj: dict[str, Any], _uid: str) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def default_secret(obj: dict[str, Any], _uid: str) -> None:
    obj.setdefault("type", "Opaque")


def default_crd(obj: dict[str, Any], _uid: str) -> None:
    spec = obj.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if "kind" in names:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("scope", "Namespaced")
    spec.setdefault("conversion", {"strategy": "None"})


DEFAULTERS: dict[tuple[str, str], Callable[[dict[str, Any], str], None]] = {
    ("", "pods"): default_pod,
    ("", "services"): default_service,
    ("", "namespaces"): default_namespace,
    ("", "secrets"): default_secret,
    ("apps", "deployments"): default_deployment,
    ("apps", "replicasets"): default_replicaset,
    ("batch", "jobs"): default_job,
    ("apiextensions.k8s.io", "customresourcedefinitions"): default_crd,
}


def apply_defaults(store_key: tuple[str, str], obj: dict[str, Any], uid: str) -> dict[str, Any]:
    defaulter = DEFAULTERS.get(store_key)
    if defaulter is None:
        return obj
    result = copy.deepcopy(obj)
    defaulter(result, uid)
    return result


def initial_status(store_key: tuple[str, str], obj: dict[str, Any]) -> dict[str, Any] | None:
    """The status a new object starts with (None: no status field)."""
    if store_key == ("", "pods"):
        return {"phase": "Pending", "qosClass": _qos_class(obj.get("spec", {}))}
    if store_key == ("", "namespaces"):
        return {"phase": "Active"}
    if store_key == ("", "services"):
        return {"loadBalancer": {}}
    if store_key[1] in ("deployments", "replicasets", "statefulsets", "daemonsets", "jobs",
                        "cronjobs", "horizontalpodautoscalers", "poddisruptionbudgets",
                        "ingresses", "persistentvolumeclaims", "resourcequotas"):
        return {}
    return None


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers", [])
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get("cpu") and (r.get("limits") or {}).get("memory")
        and all((r.get("requests") or {}).get(k, (r.get("limits") or {})[k])
                == (r.get("limits") or {})[k] for k in ("cpu", "memory"))
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"
