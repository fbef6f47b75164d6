"""Bodies for an InferenceService's children: the model server Deployments (stable, canary,
shadow) with their task ConfigMaps, the Services, a Gateway API HTTPRoute and an HPA.

Pods of the stable and canary Deployments carry `kadence.dev/traffic: serve`, which the
main Service selects, so without a gateway traffic splits by replica ratio. Each role also
has its own Service, the backends of the HTTPRoute (exact weights, and a RequestMirror
filter to the shadow). Readiness is the server's /v2/health/ready: it answers only after
the artifact's sha256 matched and the model loaded.
"""

from __future__ import annotations

import hashlib
import json

from .jobs import (
    TASK_ENV, TASK_KEY, WorkloadSettings, restricted_container_settings, restricted_pod_security_context,
    image_fields, pod_identity, storage_env, task_configmap, tmp_volume,
)
from .meta import child_metadata, child_name

COMPONENT = "model-server"
SERVER_PORT = 8080
SERVICE_PORT = 80
ISVC_LABEL = "kadence.dev/inferenceservice"
ROLE_LABEL = "kadence.dev/role"
VERSION_LABEL = "kadence.dev/model-version"
TRAFFIC_LABEL = "kadence.dev/traffic"
TASK_HASH_ANNOTATION = "kadence.dev/task-hash"
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
SERVING_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}


def deployment_name(isvc: str, role: str) -> str:
    return child_name(isvc, role)


def role_service_name(isvc: str, role: str) -> str:
    return child_name(isvc, role)


def pod_labels(isvc: str, role: str, version: int) -> dict[str, str]:
    labels = {ISVC_LABEL: isvc, ROLE_LABEL: role, VERSION_LABEL: str(version)}
    if role in ("stable", "canary"):
        labels[TRAFFIC_LABEL] = "serve"
    return labels


def task_hash(task: dict) -> str:
    return hashlib.sha256(json.dumps(task, sort_keys=True).encode()).hexdigest()[:16]


def serving_configmap(owner: dict, role: str, task: dict) -> dict:
    return task_configmap(owner, deployment_name(owner["metadata"]["name"], role), COMPONENT, task)


# One native thread per server process: a model server scales with processes (workers) and
# replicas, and OpenMP/BLAS pools spinning in every process made a busy node's p99 latency
# jump from milliseconds to seconds (histogram gradient boosting: p99 648 ms -> 4.8 ms).
SINGLE_THREADED_NATIVE_LIBS = [{"name": name, "value": "1"}
                               for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")]


def serving_deployment(owner: dict, role: str, version: int, task: dict, replicas: int | None,
                       settings: WorkloadSettings = WorkloadSettings(), resources: dict | None = None) -> dict:
    """The model server for one version in one role; `replicas` None leaves them to an HPA."""
    isvc = owner["metadata"]["name"]
    name = deployment_name(isvc, role)
    labels = pod_labels(isvc, role, version)
    metadata = child_metadata(owner, name, COMPONENT, labels)
    container = {
        "name": "server",
        **image_fields(settings),
        # The port comes from PORT (kadence serve's default), not a flag: the sandbox kubelet
        # gives each pod its own local port through PORT, which a --port flag would override.
        "command": ["kadence", "serve"],
        "ports": [{"name": "http", "containerPort": SERVER_PORT}],
        "env": [
            {"name": "PORT", "value": str(SERVER_PORT)},
            {"name": TASK_ENV, "valueFrom": {"configMapKeyRef": {"name": name, "key": TASK_KEY}}},
            *storage_env(settings),
            *SINGLE_THREADED_NATIVE_LIBS,
        ],
        "resources": resources or SERVING_RESOURCES,
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 5,
                           "failureThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 10,
                          "failureThreshold": 6},
        "startupProbe": {"httpGet": {"path": "/v2/health/live", "port": "http"}, "periodSeconds": 2,
                         "failureThreshold": 150},
        **restricted_container_settings(),
    }
    template_metadata = {
        "labels": {**metadata["labels"]},
        "annotations": {
            TASK_HASH_ANNOTATION: task_hash(task),
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(SERVER_PORT),
            "prometheus.io/path": "/metrics",
        },
    }
    spec = {
        "selector": {"matchLabels": {ISVC_LABEL: isvc, ROLE_LABEL: role}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": template_metadata,
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod_security_context(),
                "terminationGracePeriodSeconds": 45,  # the server flushes its prediction log on SIGTERM
                "containers": [container],
                "volumes": [tmp_volume()],
                **pod_identity(settings),
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def service(owner: dict, name: str, selector: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(owner, name, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def main_service(owner: dict) -> dict:
    """Stable and canary pods together: traffic follows the replica ratio."""
    isvc = owner["metadata"]["name"]
    return service(owner, isvc, {ISVC_LABEL: isvc, TRAFFIC_LABEL: "serve"})


def role_service(owner: dict, role: str) -> dict:
    isvc = owner["metadata"]["name"]
    return service(owner, role_service_name(isvc, role), {ISVC_LABEL: isvc, ROLE_LABEL: role})


def http_route(owner: dict, gateway: dict, canary_weight: int, with_canary: bool, with_shadow: bool) -> dict:
    """An HTTPRoute on the user's gateway: stable and canary with exact weights, and a copy of
    every request to the shadow (RequestMirror; its answers are dropped by the gateway)."""
    isvc = owner["metadata"]["name"]
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"]}
    if gateway.get("namespace"):
        parent["namespace"] = gateway["namespace"]
    backends = [{"name": role_service_name(isvc, "stable"), "port": SERVICE_PORT,
                 "weight": 100 - canary_weight if with_canary else 100}]
    if with_canary:
        backends.append({"name": role_service_name(isvc, "canary"), "port": SERVICE_PORT, "weight": canary_weight})
    rule: dict = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}
    if with_shadow:
        rule["filters"] = [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": role_service_name(isvc, "shadow"), "port": SERVICE_PORT}}}]
    spec: dict = {"parentRefs": [parent], "rules": [rule]}
    if gateway.get("hostname"):
        spec["hostnames"] = [gateway["hostname"]]
    return {"apiVersion": GATEWAY_API_VERSION, "kind": "HTTPRoute",
            "metadata": child_metadata(owner, isvc, COMPONENT), "spec": spec}


def autoscaler(owner: dict, autoscaling: dict) -> dict:
    """An HPA on the stable Deployment: CPU utilisation, or requests per second per pod (the
    `kadence_serving_requests_per_second` pods metric, served by a Prometheus adapter rule
    over kadence_serving_requests_total)."""
    isvc = owner["metadata"]["name"]
    if autoscaling.get("metric", "cpu") == "cpu":
        metric = {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": autoscaling.get("target", 70)}}}
    else:
        metric = {"type": "Pods", "pods": {"metric": {"name": "kadence_serving_requests_per_second"},
                                           "target": {"type": "AverageValue",
                                                      "averageValue": str(autoscaling.get("target", 70))}}}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(owner, deployment_name(isvc, "stable"), COMPONENT),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name(isvc, "stable")},
            "minReplicas": autoscaling.get("minReplicas", 1),
            "maxReplicas": autoscaling["maxReplicas"],
            "metrics": [metric],
        },
    }
