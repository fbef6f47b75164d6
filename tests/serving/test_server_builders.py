"""What the operator builds for a model server: ports, the feedback-token Secret, the shutdown
budget inside the grace period, the paths the gateway publishes, and the spec's limits in the task."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from kadence.api.inferenceservice import InferenceServiceSpec
from kadence.builders import serving as build
from kadence.planners.inferenceservice import ModelVersionInfo, ServingContext, ServingObservation, plan_inferenceservice
from kadence.serving.task import ServeTask

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
OWNER = {"apiVersion": "kadence.dev/v1alpha1", "kind": "InferenceService",
         "metadata": {"name": "churn", "namespace": "shop", "uid": "u-1", "generation": 1},
         "spec": {"model": "churn", "version": 3}}
CONTEXT = ServingContext(versions={3: ModelVersionInfo(name="churn-v3", version=3, artifact_uri="s3://kadence/m.skops",
                                                       sha256="a" * 64, inputs=None, task="classification")},
                         stage_version=None)


def deployment(task: dict | None = None) -> dict:
    return build.serving_deployment(OWNER, "stable", 3, task or {}, 1)


def server_container(task: dict | None = None) -> dict:
    return deployment(task)["spec"]["template"]["spec"]["containers"][0]


def plan_for(spec: dict):
    body = {**OWNER, "spec": {"model": "churn", **spec}, "status": {}}
    return plan_inferenceservice(body, ServingObservation(), CONTEXT, T0)


def test_the_server_declares_the_serving_and_the_metrics_port_and_is_scraped_on_metrics():
    container = server_container()
    assert container["ports"] == [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}]
    env = {e["name"]: e for e in container["env"]}
    assert env["PORT"]["value"] == "8080" and env["PORT_METRICS"]["value"] == "9090"
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9090" and annotations["prometheus.io/path"] == "/metrics"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert container["livenessProbe"]["httpGet"]["port"] == "http"


def test_services_expose_the_serving_port_only():
    for service in (build.main_service(OWNER), build.role_service(OWNER, "canary")):
        assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_the_feedback_token_secret_is_named_after_the_inferenceservice_and_owned_by_it():
    secret = build.feedback_token_secret(OWNER, "s3cr3t-token")
    assert secret["kind"] == "Secret" and secret["type"] == "Opaque"
    assert secret["metadata"]["name"] == build.feedback_token_secret_name("churn") == "churn-feedback-token"
    assert secret["metadata"]["namespace"] == "shop"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert secret["metadata"]["labels"][build.ISVC_LABEL] == "churn"
    assert base64.b64decode(secret["data"]["token"]).decode() == "s3cr3t-token"


def test_the_server_reads_the_feedback_token_from_that_secret():
    env = {e["name"]: e for e in server_container()["env"]}
    assert env["KADENCE_FEEDBACK_TOKEN"] == {"name": "KADENCE_FEEDBACK_TOKEN", "valueFrom": {
        "secretKeyRef": {"name": "churn-feedback-token", "key": "token"}}}


@pytest.mark.parametrize("shutdown", [None, {"drainSeconds": 40, "mirrorSeconds": 10, "flushSeconds": 30}])
def test_the_prestop_sleep_and_the_shutdown_budget_fit_inside_the_grace_period(shutdown):
    task = {"shutdown": shutdown} if shutdown else {}
    pod = deployment(task)["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    budget = ServeTask.model_validate({"inferenceService": "x", "model": "m", "version": 1,
                                       "artifact": {"uri": "s3://b/k", "sha256": "a" * 64}, **task}).shutdown
    used = int(pre_stop[1]) + budget.drain_seconds + budget.mirror_seconds + budget.flush_seconds
    assert used < pod["terminationGracePeriodSeconds"]


def route_matches(route: dict, path: str) -> bool:
    """Gateway API path matching of the route's rules (Exact and PathPrefix)."""
    for rule in route["spec"]["rules"]:
        for match in rule["matches"]:
            kind, value = match["path"]["type"], match["path"]["value"]
            if kind == "Exact" and path == value:
                return True
            if kind == "PathPrefix" and (path == value or path.startswith(value.rstrip("/") + "/")):
                return True
    return False


@pytest.mark.parametrize("path, published", [
    ("/v1/models/churn:predict", True),
    ("/v2/models/churn/infer", True),
    ("/v2/health/live", True),
    ("/v2/health/ready", True),
    ("/v2/models/churn", True),
    ("/v1/models/churn", True),
    ("/v1/models/churn/feedback", False),
    ("/v2/models/churn/feedback", False),
    ("/v2/models/churn/versions/3/feedback", False),
    ("/v2/models/churn/versions/3/infer", False),
    ("/metrics", False),
    ("/", False),
    ("/v1/models/other:predict", False),
])
def test_the_httproute_publishes_prediction_metadata_and_health_but_never_feedback_or_metrics(path, published):
    route = build.http_route(OWNER, {"name": "web"}, 0, with_canary=False, with_shadow=False)
    assert route_matches(route, path) is published


def test_the_spec_limits_reach_the_server_task():
    spec = {"version": 3, "server": {"maxRequestBytes": 65536, "maxRows": 500, "maxConcurrentRequests": 8,
                                     "predictTimeout": "2s", "bodyTimeout": "1500ms"},
            "logging": {"bufferBytes": 1048576}}
    InferenceServiceSpec.model_validate(spec | {"model": "churn"})
    configmap = next(c for c in plan_for(spec).children if c["kind"] == "ConfigMap")
    task = ServeTask.model_validate_json(configmap["data"]["task.json"])
    assert (task.max_body_bytes, task.max_rows, task.max_concurrent_requests) == (65536, 500, 8)
    assert (task.predict_timeout_seconds, task.body_timeout_seconds) == (2.0, 1.5)
    assert task.logging.buffer_bytes == 1048576


def test_the_default_limits_are_the_servers_defaults():
    configmap = next(c for c in plan_for({"version": 3}).children if c["kind"] == "ConfigMap")
    task = ServeTask.model_validate_json(configmap["data"]["task.json"])
    assert (task.max_body_bytes, task.max_rows, task.max_concurrent_requests) == (4 * 1024 * 1024, 10_000, 32)
    assert (task.predict_timeout_seconds, task.body_timeout_seconds) == (10.0, 10.0)


@pytest.mark.parametrize("server, message", [
    ({"predictTimeout": "0s"}, "predictTimeout must be more than 0s and at most 1h, got 0s"),
    ({"bodyTimeout": "2h"}, "bodyTimeout must be more than 0s and at most 1h, got 2h"),
])
def test_a_timeout_outside_its_range_is_refused_with_its_name(server, message):
    with pytest.raises(ValueError, match=message):
        InferenceServiceSpec.model_validate({"model": "churn", "version": 3, "server": server})


def test_the_sandbox_gives_the_metrics_port_its_own_local_port_under_the_names_the_operator_reads():
    from kadence.sandbox.kubelet import podspec

    pod = {"metadata": {}, "spec": deployment()["spec"]["template"]["spec"]}
    assert podspec.extra_port_names(pod) == ["metrics"]
    assert podspec.named_port_env("metrics") == "PORT_METRICS"  # what the server reads (--metrics-port default)
    assert podspec.NAMED_PORT_ANNOTATION_PREFIX + "metrics" == build.SANDBOX_METRICS_PORT_ANNOTATION


@pytest.mark.parametrize("ports, names", [
    ([], []),
    ([{"name": "http", "containerPort": 8080}], []),
    ([{"containerPort": 8080}, {"containerPort": 9000}], []),  # unnamed ports share the pod's one port
    ([{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090},
      {"name": "metrics", "containerPort": 9090}, {"name": "admin-ui", "containerPort": 7000}], ["metrics", "admin-ui"]),
])
def test_named_ports_after_the_first_are_the_ones_the_sandbox_gives_their_own_port(ports, names):
    from kadence.sandbox.kubelet import podspec

    assert podspec.extra_port_names({"spec": {"containers": [{"name": "c", "ports": ports}]}}) == names


def test_the_server_carries_its_owner_so_what_it_writes_is_stamped_with_the_inferenceservice():
    env = {e["name"]: e.get("value") for e in server_container()["env"]}
    assert (env["KADENCE_OWNER_KIND"], env["KADENCE_OWNER_NAME"], env["KADENCE_OWNER_NAMESPACE"],
            env["KADENCE_OWNER_UID"]) == ("InferenceService", "churn", "shop", "u-1")


def test_the_handler_creates_the_token_secret_once_with_a_fresh_random_token_and_keeps_an_existing_one(monkeypatch):
    from kubernetes.client.rest import ApiException

    from kadence.handlers import inferenceservice as handler

    created: list[dict] = []

    def create(body):
        created.append(body)
        if len(created) > 1:
            raise ApiException(status=409, reason="AlreadyExists")
        return body

    monkeypatch.setattr(handler, "create", create)
    monkeypatch.setattr(handler, "_token_checked", {})
    owner = {**OWNER, "metadata": {**OWNER["metadata"], "uid": "u-token"}}
    handler.ensure_feedback_token(owner)
    handler.ensure_feedback_token(owner)  # known to exist: no second request
    assert len(created) == 1
    token = base64.b64decode(created[0]["data"]["token"]).decode()
    assert len(token) >= 43 and created[0]["metadata"]["name"] == "churn-feedback-token"
    monkeypatch.setattr(handler, "FEEDBACK_TOKEN_CHECK_SECONDS", 0.0)  # later: checked again, 409 keeps it
    handler.ensure_feedback_token(owner)
    assert len(created) == 2 and created[1]["data"]["token"] != created[0]["data"]["token"]


def test_a_refused_token_secret_fails_the_reconcile(monkeypatch):
    from kubernetes.client.rest import ApiException

    from kadence.handlers import inferenceservice as handler

    def forbidden(body):
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(handler, "create", forbidden)
    monkeypatch.setattr(handler, "_token_checked", {})
    with pytest.raises(ApiException):
        handler.ensure_feedback_token(OWNER)
    assert handler._token_checked == {}, "not remembered as existing: the next reconcile tries again"
