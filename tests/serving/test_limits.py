"""A real `kadence serve` process under hostile requests: every limit answers with its status
and names itself, health and the metrics port keep answering while the concurrency gate is
full, and feedback needs the bearer token."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from .conftest import AUTH, Server, churn_task, s3_env
from .test_protocol import ROW, v2_inputs

LIMITS = {"maxBodyBytes": 65536, "maxRows": 50, "maxConcurrentRequests": 2, "bodyTimeoutSeconds": 2}


@pytest.fixture(scope="module")
def limited(churn_model, store, s3_settings, tmp_path_factory):
    task = {**churn_task(churn_model, store, compiled=False, isvc="churn-limits"), **LIMITS}
    server = Server(task, tmp_path_factory.mktemp("limits"), env=s3_env(s3_settings)).wait_ready()
    yield server
    server.stop()


@pytest.fixture
def http(limited):
    with httpx.Client(base_url=limited.url, timeout=30) as client:
        yield client


def raw_request(port: int, head: str, body: bytes = b"") -> socket.socket:
    """A request written by hand: `head` is the request line and headers (the body may be partial)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def slow_predict(port: int) -> socket.socket:
    """A predict whose body never finishes arriving: it holds a slot until the body timeout."""
    return raw_request(port, "POST /v1/models/churn:predict HTTP/1.1\nHost: localhost\n"
                             "Content-Type: application/json\nContent-Length: 2000\n", b'{"instances": [')


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(limited):
    sock = raw_request(limited.port, "POST /v1/models/churn:predict HTTP/1.1\nHost: localhost\n"
                                     "Content-Type: application/json\nContent-Length: 8388608\n")
    status, _, body = read_response(sock)
    sock.close()
    assert status == 413
    assert httpx.Response(413, content=body).json() == {
        "error": "the request body has 8388608 bytes; the limit is 65536 bytes (maxBodyBytes)"}


@pytest.mark.parametrize("path, body", [
    ("/v1/models/churn:predict", {"instances": [ROW] * 51}),
    ("/v1/models/churn:predict", {"inputs": {name: [value] * 51 for name, value in ROW.items()}}),
    ("/v2/models/churn/infer", {"inputs": v2_inputs([ROW] * 51)}),
    # a shape that understates its data is judged by the data
    ("/v2/models/churn/infer", {"inputs": [{**tensor, "shape": [1]} for tensor in v2_inputs([ROW] * 51)]}),
])
def test_more_rows_than_the_limit_is_a_413_naming_the_limit(http, path, body):
    response = http.post(path, json=body)
    assert response.status_code == 413
    assert response.json() == {"error": "the request has 51 rows; the limit is 50 rows per request (maxRows)"}


def test_exactly_the_row_limit_is_answered(http):
    response = http.post("/v1/models/churn:predict", json={"instances": [ROW] * 50})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 50


def test_a_full_concurrency_gate_answers_429_while_health_and_metrics_keep_answering(limited, http):
    held = [slow_predict(limited.port) for _ in range(LIMITS["maxConcurrentRequests"])]
    try:
        refused = None
        for _ in range(200):  # until the server has admitted both slow requests
            response = http.post("/v1/models/churn:predict", json={"instances": [ROW]})
            if response.status_code == 429:
                refused = response
                break
            assert response.status_code == 200
        assert refused is not None, "the gate never filled"
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {"error": "the server is handling 2 requests, its limit (maxConcurrentRequests); "
                                           "retry after 1 s"}
        feedback = http.post("/v1/models/churn/feedback", json={"requestId": "r", "label": 1}, headers=AUTH)
        assert feedback.status_code == 429
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        assert http.get("/v2/models/churn").status_code == 200
        assert re.search(r'kadence_serving_in_flight\{model="churn",version="3"\} 2\.0', limited.metrics())
        # The slow bodies run out of time: 408, and their slots are free again.
        for sock in held:
            status, headers, body = read_response(sock)
            assert status == 408
            assert httpx.Response(408, content=body).json() == {
                "error": "the request body did not arrive within 2 s (bodyTimeoutSeconds)"}
    finally:
        for sock in held:
            sock.close()
    assert http.post("/v1/models/churn:predict", json={"instances": [ROW]}).status_code == 200
    metrics = limited.metrics()
    for reason in ("overloaded", "body_timeout"):
        assert re.search(rf'kadence_serving_errors_total\{{model="churn",protocol="v1",reason="{reason}",'
                         rf'version="3"\}} [1-9]', metrics), reason


@pytest.mark.parametrize("headers, reason", [
    ({}, "no bearer token"),
    ({"Authorization": "Bearer not-the-token"}, "the bearer token is not this server's"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "the bearer token is not this server's"),
])
def test_feedback_without_the_token_is_a_401(http, headers, reason):
    response = http.post("/v2/models/churn/feedback", json={"requestId": "r1", "label": 1}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="kadence"'
    assert response.json() == {"error": 'feedback needs the InferenceService\'s feedback token as "Authorization: '
                                        f'Bearer <token>": {reason}'}


def test_feedback_with_the_token_is_stored(http):
    response = http.post("/v2/models/churn/feedback", json={"requestId": "r1", "label": 1}, headers=AUTH)
    assert response.status_code == 200 and response.json()["stored"] == 1


def test_the_serving_port_has_no_metrics_and_the_metrics_port_nothing_else(limited, http):
    assert http.get("/metrics").status_code == 404
    assert httpx.get(limited.metrics_url.replace("/metrics", "/v2/health/live")).status_code == 404
    assert httpx.post(limited.metrics_url).status_code == 405
