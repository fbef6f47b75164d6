"""The sandbox API server counts requests by verb, resource, code and client (/metrics)."""

from __future__ import annotations

import re

import pytest

from kadence.sandbox.apiserver.requests import describe


@pytest.mark.parametrize("method, path, watch, expected", [
    ("GET", "/api/v1/namespaces/ns/pods", False, ("LIST", "pods")),
    ("GET", "/api/v1/namespaces/ns/pods", True, ("WATCH", "pods")),
    ("GET", "/api/v1/namespaces/ns/pods/p1", False, ("GET", "pods")),
    ("GET", "/apis/batch/v1/jobs", False, ("LIST", "jobs")),
    ("PATCH", "/apis/kadence.dev/v1alpha1/namespaces/ns/datasets/d/status", False, ("PATCH", "datasets")),
    ("POST", "/apis/coordination.k8s.io/v1/namespaces/ns/leases", False, ("CREATE", "leases")),
    ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", False, ("UPDATE", "leases")),
    ("GET", "/api/v1/namespaces/ns", False, ("GET", "namespaces")),
    ("GET", "/apis", False, ("GET", "")),
])
def test_a_request_is_described_by_its_kubernetes_verb_and_resource(method, path, watch, expected):
    assert describe(method, path, watch) == expected


def counted(text: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(r'^apiserver_request_total\{(.*)\} ([0-9.]+)$', line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
    return total


def test_metrics_count_each_request_once_by_client(apiserver_http):
    before = counted(apiserver_http.get("/metrics").text, verb="LIST", resource="configmaps", client="probe")
    for _ in range(3):
        response = apiserver_http.get("/api/v1/namespaces/default/configmaps", headers={"User-Agent": "probe/1.0"})
        assert response.status_code == 200
    after = apiserver_http.get("/metrics").text
    assert counted(after, verb="LIST", resource="configmaps", client="probe", code="200") == before + 3
