"""The Service proxy: local ports per Service, round-robin over ready pods, readiness gating."""

from __future__ import annotations

import collections
import sys
import uuid

import httpx
import pytest

from kadence.sandbox.kubelet.podspec import PROXY_PORT_ANNOTATION
from kadence.sandbox.proxy import RoundRobin, endpoint_subsets, ready_endpoints

from .conftest import PROGRAMS, wait_for


def pod(name: str, labels: dict, ready: bool = True, port: str | None = "1000", deleting: bool = False) -> dict:
    meta = {"name": name, "labels": labels, "annotations": {"sandbox.kadence.dev/port": port} if port else {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


SERVICE = {"spec": {"selector": {"app": "m", "track": "stable"}}}


@pytest.mark.parametrize("pods, expected", [
    ([pod("a", {"app": "m", "track": "stable"})], [("a", 1000)]),
    ([pod("a", {"app": "m", "track": "canary"})], []),
    ([pod("a", {"app": "m", "track": "stable"}, ready=False)], []),
    ([pod("a", {"app": "m", "track": "stable"}, port=None)], []),
    ([pod("a", {"app": "m", "track": "stable"}, deleting=True)], []),
    ([pod("b", {"app": "m", "track": "stable", "x": "y"}, port="2"), pod("a", {"app": "m", "track": "stable"})],
     [("a", 1000), ("b", 2)]),
])
def test_a_service_forwards_only_to_selected_ready_pods_with_a_port(pods, expected):
    assert ready_endpoints(SERVICE, pods) == expected


def test_a_service_without_a_selector_has_no_endpoints():
    assert ready_endpoints({"spec": {}}, [pod("a", {"app": "m"})]) == []


def test_endpoints_list_ready_and_unready_pods_each_with_its_own_port():
    service = {"spec": {"selector": {"app": "m"}, "ports": [{"name": "http", "port": 80}]}}
    pods = [pod("b", {"app": "m"}, ready=False, port="2"), pod("a", {"app": "m"}, port="1"),
            pod("c", {"app": "other"}, port="3")]
    subsets = endpoint_subsets(service, pods)
    assert [(list(s)[0], s[list(s)[0]][0]["targetRef"]["name"], s["ports"]) for s in subsets] == [
        ("addresses", "a", [{"name": "http", "port": 1, "protocol": "TCP"}]),
        ("notReadyAddresses", "b", [{"name": "http", "port": 2, "protocol": "TCP"}]),
    ]


def test_round_robin_takes_each_endpoint_in_turn_and_none_when_empty():
    balancer = RoundRobin()
    endpoints = [("a", 1), ("b", 2), ("c", 3)]
    assert [balancer.pick(endpoints)[0] for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert balancer.pick([]) is None


def deployment(name: str, replicas: int, labels: dict, marker: str, flag: str = "") -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "server", "image": "kadence:test",
                     "command": [sys.executable, str(PROGRAMS / "pod_server.py"), f"--marker={marker}"],
                     "env": [{"name": "NOT_READY_FLAG", "value": flag}],
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}}]}}},
    }


def answers(port: int, requests: int) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for _ in range(requests):
        # A new connection per request: kube-proxy balances connections.
        counts[httpx.get(f"http://127.0.0.1:{port}/", timeout=5, headers={"Connection": "close"}).text] += 1
    return counts


def service_port(kube, ns: str, name: str) -> int:
    return int(wait_for(lambda: ((kube.get("v1", "services", ns, name) or {}).get("metadata", {}).get(
        "annotations") or {}).get(PROXY_PORT_ANNOTATION), message="the proxy port annotation"))


def ready_count(kube, ns: str, selector: str) -> int:
    return sum(1 for p in kube.pods_of(ns, selector)
               if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))


@pytest.mark.sandbox
def test_traffic_splits_across_deployments_by_replica_ratio(kube, sandbox_namespace):
    ns, marker = sandbox_namespace, f"split-{uuid.uuid4().hex[:8]}"
    kube.create("apps/v1", "deployments", ns, deployment("stable", 3, {"app": "m", "track": "stable"}, marker))
    kube.create("apps/v1", "deployments", ns, deployment("canary", 1, {"app": "m", "track": "canary"}, marker))
    kube.create("v1", "services", ns, {"metadata": {"name": "model"},
                                       "spec": {"selector": {"app": "m"}, "ports": [{"port": 80}]}})
    port = service_port(kube, ns, "model")
    wait_for(lambda: ready_count(kube, ns, "app=m") == 4, message="four ready pods")
    endpoints = wait_for(lambda: (e := kube.get("v1", "endpoints", ns, "model")) and len(
        [s for s in e.get("subsets") or [] if s.get("addresses")]) == 4 and e, message="four endpoints")
    assert {s["addresses"][0]["targetRef"]["name"].split("-")[0] for s in endpoints["subsets"]} == {
        "stable", "canary"}
    counts = answers(port, 80)
    assert len(counts) == 4, f"every ready pod gets traffic: {counts}"
    canary = sum(n for name, n in counts.items() if name.startswith("canary-"))
    # Round-robin over 4 pods sends exactly a quarter to the 1-replica canary; allow slack for
    # pods whose readiness changes while we count.
    assert 10 <= canary <= 30, counts


@pytest.mark.sandbox
def test_a_pod_that_is_not_ready_gets_no_traffic_and_no_ready_pod_refuses(kube, sandbox_namespace, tmp_path):
    ns, marker = sandbox_namespace, f"gate-{uuid.uuid4().hex[:8]}"
    flag = tmp_path / "not-ready"
    kube.create("apps/v1", "deployments", ns, deployment("gated", 1, {"app": "g"}, marker, str(flag)))
    kube.create("v1", "services", ns, {"metadata": {"name": "gated"},
                                       "spec": {"selector": {"app": "g"}, "ports": [{"port": 80}]}})
    port = service_port(kube, ns, "gated")
    wait_for(lambda: ready_count(kube, ns, "app=g") == 1, message="a ready pod")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text.startswith("gated-")
    flag.write_text("")
    wait_for(lambda: ready_count(kube, ns, "app=g") == 0, message="the pod to turn unready")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    flag.unlink()
    wait_for(lambda: ready_count(kube, ns, "app=g") == 1, message="ready again")
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text.startswith("gated-")


@pytest.mark.sandbox
def test_a_deleted_service_gives_its_local_port_back(kube, sandbox_namespace):
    from kadence.sandbox.supervisor import port_is_free
    ns = sandbox_namespace
    kube.create("v1", "services", ns, {"metadata": {"name": "brief"},
                                       "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}})
    port = service_port(kube, ns, "brief")
    assert not port_is_free(port)
    kube.delete("v1", "services", ns, "brief")
    wait_for(lambda: port_is_free(port), message="the proxy port to close")
