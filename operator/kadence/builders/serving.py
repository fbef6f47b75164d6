"""Bodies for an InferenceService's children: the model server Deployments (stable, canary,
shadow) with their task ConfigMaps, the Services, a Gateway API HTTPRoute and an HPA.

Pods of the stable and canary Deployments carry `kadence.dev/traffic: serve`, which the
main Service selects, so without a gateway traffic splits by replica ratio. Each role also
has its own Service, the backends of the HTTPRoute (exact weights, and a RequestMirror
filter to the shadow). Readiness is the server's /v2/health/ready: it answers only after
the artifact's sha256 matched and the model loaded.

What is exposed where: the `http` port (8080; Services' port 80) serves the protocol and
feedback; the `metrics` port (9090) serves Prometheus /metrics and is in no Service or
route. The HTTPRoute publishes exact predict/infer, metadata and health paths only, never
feedback or /metrics. Feedback needs the bearer token of the `<isvc>-feedback-token`
Secret (created once by the InferenceService handler; its body is `feedback_token_secret`).

Shutdown fits the grace period: the preStop hook sleeps while the endpoints drop the pod,
then the server spends at most its task's shutdown budget (drain, mirror, flush) after
SIGTERM; terminationGracePeriodSeconds covers both with a margin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math

from .jobs import (
    TASK_ENV, TASK_KEY, WorkloadSettings, restricted_container_settings, restricted_pod_security_context,
    image_fields, owner_env, pii_env, pod_identity, storage_env, task_configmap, tmp_volume,
)
from ..serving.task import ShutdownBudget
from .meta import child_metadata, child_name
from ..api import keys

COMPONENT = "model-server"
SERVER_PORT = 8080
SERVICE_PORT = 80
METRICS_PORT = 9090
METRICS_PORT_NAME = "metrics"
# In the sandbox each named port after the first gets its own local port, in this annotation.
SANDBOX_METRICS_PORT_ANNOTATION = keys.sandbox_port_annotation(METRICS_PORT_NAME)
FEEDBACK_TOKEN_ENV = "KADENCE_FEEDBACK_TOKEN"
FEEDBACK_TOKEN_KEY = "token"
PRESTOP_SLEEP_SECONDS = 5
SHUTDOWN_MARGIN_SECONDS = 5
ISVC_LABEL = keys.INFERENCE_SERVICE_LABEL
ROLE_LABEL = keys.ROLE_LABEL
VERSION_LABEL = keys.MODEL_VERSION_LABEL
TRAFFIC_LABEL = keys.TRAFFIC_LABEL
TASK_HASH_ANNOTATION = keys.TASK_HASH_ANNOTATION
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


def feedback_token_secret_name(isvc: str) -> str:
    return child_name(isvc, "feedback-token")


def feedback_token_secret(owner: dict, token: str) -> dict:
    """The Secret holding the InferenceService's feedback token (owned by it, so deleted with it).
    The handler generates `token` once and creates this only when the Secret is absent."""
    isvc = owner["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": child_metadata(owner, feedback_token_secret_name(isvc), COMPONENT, {ISVC_LABEL: isvc}),
        "type": "Opaque",
        "data": {FEEDBACK_TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def termination_grace_seconds(task: dict) -> int:
    """preStop sleep + the server's shutdown budget + a margin, so SIGKILL never cuts a flush."""
    budget = ShutdownBudget.model_validate(task.get("shutdown") or {})
    return math.ceil(PRESTOP_SLEEP_SECONDS + budget.total_seconds + SHUTDOWN_MARGIN_SECONDS)


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
        # PORT_METRICS likewise: the sandbox gives the second named port its own local port there.
        "ports": [{"name": "http", "containerPort": SERVER_PORT},
                  {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT}],
        "env": [
            {"name": "PORT", "value": str(SERVER_PORT)},
            {"name": "PORT_METRICS", "value": str(METRICS_PORT)},
            {"name": TASK_ENV, "valueFrom": {"configMapKeyRef": {"name": name, "key": TASK_KEY}}},
            {"name": FEEDBACK_TOKEN_ENV, "valueFrom": {"secretKeyRef": {
                "name": feedback_token_secret_name(isvc), "key": FEEDBACK_TOKEN_KEY}}},
            *storage_env(settings),
            *pii_env(),  # personal inputs are logged as keyed hashes (domain.data.pii)
            *owner_env(owner),  # stamped on the prediction logs and feedback the server writes
            *SINGLE_THREADED_NATIVE_LIBS,
        ],
        # Endpoints drop the pod while it sleeps, so no new request arrives after SIGTERM.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SLEEP_SECONDS)]}}},
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
            "prometheus.io/port": str(METRICS_PORT),
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
                "terminationGracePeriodSeconds": termination_grace_seconds(task),
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


def published_paths(model: str) -> list[str]:
    """What the gateway publishes: prediction, metadata and health, each path exactly. Not
    feedback (it writes training labels: in-cluster only, with the token), not /metrics, not
    version-pinned paths (a canary split would send them to a server of another version)."""
    return [
        "/v1/models", f"/v1/models/{model}", f"/v1/models/{model}:predict",
        "/v2", "/v2/health/live", "/v2/health/ready",
        f"/v2/models/{model}", f"/v2/models/{model}/ready", f"/v2/models/{model}/infer",
    ]


def http_route(owner: dict, gateway: dict, canary_weight: int, with_canary: bool, with_shadow: bool) -> dict:
    """An HTTPRoute on the user's gateway: stable and canary with exact weights, and a copy of
    every request to the shadow (RequestMirror; its answers are dropped by the gateway).
    Only `published_paths` match; anything else gets the gateway's 404."""
    isvc = owner["metadata"]["name"]
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"]}
    if gateway.get("namespace"):
        parent["namespace"] = gateway["namespace"]
    backends = [{"name": role_service_name(isvc, "stable"), "port": SERVICE_PORT,
                 "weight": 100 - canary_weight if with_canary else 100}]
    if with_canary:
        backends.append({"name": role_service_name(isvc, "canary"), "port": SERVICE_PORT, "weight": canary_weight})
    rule: dict = {"matches": [{"path": {"type": "Exact", "value": path}} for path in published_paths(owner["spec"]["model"])],
                  "backendRefs": backends}
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
