"""Discovery, version and health endpoints of the sandbox API server, and Table responses."""

from __future__ import annotations

import pytest

from .apiserver_helpers import TABLE_ACCEPT, GIZMOS, ensure_gizmo_crd, gizmo


def test_the_core_group_is_advertised_as_v1(apiserver_http):
    body = apiserver_http.get("/api").json()
    assert body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    core = apiserver_http.get("/api/v1").json()
    assert core["groupVersion"] == "v1"


def test_the_group_list_names_every_served_group_with_a_preferred_version(apiserver_http):
    groups = {g["name"]: g for g in apiserver_http.get("/apis").json()["groups"]}
    for name in ("apps", "batch", "autoscaling", "coordination.k8s.io", "events.k8s.io",
                 "rbac.authorization.k8s.io", "apiextensions.k8s.io"):
        assert groups[name]["preferredVersion"]["groupVersion"].startswith(name + "/")
    assert apiserver_http.get("/apis/apps").json()["preferredVersion"]["version"] == "v1"


@pytest.mark.parametrize("path, name, namespaced, short_names, verbs", [
    ("/api/v1", "pods", True, ["po"], {"create", "get", "list", "watch", "patch", "delete"}),
    ("/api/v1", "namespaces", False, ["ns"], {"create", "get", "list", "watch"}),
    ("/apis/apps/v1", "deployments", True, ["deploy"], {"create", "update", "deletecollection"}),
    ("/apis/batch/v1", "jobs", True, None, {"watch", "list"}),
    ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False, ["crd", "crds"],
     {"create", "watch"}),
])
def test_a_resource_list_gives_verbs_scope_and_short_names(apiserver_http, path, name,
                                                           namespaced, short_names, verbs):
    resources = {r["name"]: r for r in apiserver_http.get(path).json()["resources"]}
    entry = resources[name]
    assert entry["namespaced"] is namespaced
    assert entry.get("shortNames") == short_names
    assert verbs <= set(entry["verbs"])
    assert entry["singularName"] and entry["kind"]


def test_subresources_are_listed_with_their_own_verbs(apiserver_http):
    resources = {r["name"]: r for r in apiserver_http.get("/api/v1").json()["resources"]}
    assert resources["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert resources["pods/log"]["verbs"] == ["get"]


def test_a_crd_appears_in_discovery_with_its_names_and_categories(apiserver_http):
    ensure_gizmo_crd(apiserver_http)
    groups = {g["name"] for g in apiserver_http.get("/apis").json()["groups"]}
    assert "conformance.kadence.dev" in groups
    resources = {r["name"]: r for r in apiserver_http.get(GIZMOS).json()["resources"]}
    assert resources["gizmos"]["shortNames"] == ["gz"]
    assert resources["gizmos"]["categories"] == ["kadence-conformance"]
    assert resources["gizmos"]["kind"] == "Gizmo"
    assert {"gizmos/status", "gizmos/scale"} <= set(resources)


def test_version_and_health_endpoints_answer(apiserver_http):
    version = apiserver_http.get("/version").json()
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    for path in ("/healthz", "/livez", "/readyz"):
        response = apiserver_http.get(path)
        assert response.status_code == 200 and response.text == "ok"


def test_an_unknown_resource_answers_a_404_status(apiserver_http):
    response = apiserver_http.get("/apis/nothing.dev/v1/things")
    assert response.status_code == 404
    assert response.json()["kind"] == "Status" and response.json()["reason"] == "NotFound"


def test_a_table_list_of_custom_resources_uses_the_printer_columns(apiserver_http,
                                                                   apiserver_namespace):
    ensure_gizmo_crd(apiserver_http)
    path = f"{GIZMOS}/namespaces/{apiserver_namespace}/gizmos"
    apiserver_http.post(path, json=gizmo("w1", size=4))
    apiserver_http.patch(f"{path}/w1/status", json={"status": {"conditions": [
        {"type": "Ready", "status": "True"}]}},
        headers={"Content-Type": "application/merge-patch+json"})
    table = apiserver_http.get(path, headers={"Accept": TABLE_ACCEPT}).json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["w1", 4, "True"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_a_table_can_embed_the_whole_object_or_none(apiserver_http, apiserver_namespace):
    path = f"/api/v1/namespaces/{apiserver_namespace}/configmaps"
    apiserver_http.post(path, json={"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    whole = apiserver_http.get(path, params={"includeObject": "Object"},
                               headers={"Accept": TABLE_ACCEPT}).json()
    assert whole["rows"][0]["object"]["data"] == {"a": "1", "b": "2"}
    assert whole["rows"][0]["cells"][:2] == ["c", 2]
    bare = apiserver_http.get(path, params={"includeObject": "None"},
                              headers={"Accept": TABLE_ACCEPT}).json()
    assert "object" not in bare["rows"][0]


def test_a_pod_table_shows_ready_status_and_restarts(apiserver_http, apiserver_namespace):
    path = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    apiserver_http.post(path, json={"metadata": {"name": "p"}, "spec": {
        "nodeName": "elsewhere", "containers": [{"name": "a", "image": "x"},
                                                {"name": "b", "image": "y"}]}})
    apiserver_http.patch(f"{path}/p/status", headers={"Content-Type": "application/merge-patch+json"},
                         json={"status": {"phase": "Running", "containerStatuses": [
                             {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}},
                             {"name": "b", "ready": False, "restartCount": 1,
                              "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    table = apiserver_http.get(f"{path}/p", headers={"Accept": TABLE_ACCEPT}).json()
    names = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert names == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:4] == ["p", "1/2", "CrashLoopBackOff", 3]


AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def test_aggregated_discovery_is_served_when_asked_for(apiserver_http):
    ensure_gizmo_crd(apiserver_http)
    accept = f"{AGGREGATED},application/json"
    groups = apiserver_http.get("/apis", headers={"Accept": accept})
    assert groups.headers["Content-Type"] == AGGREGATED
    by_name = {item["metadata"].get("name"): item for item in groups.json()["items"]}
    gizmos = {r["resource"]: r for r in by_name["conformance.kadence.dev"]["versions"][0][
        "resources"]}["gizmos"]
    assert gizmos["scope"] == "Namespaced" and gizmos["shortNames"] == ["gz"]
    assert gizmos["responseKind"] == {"group": "conformance.kadence.dev", "version": "v1alpha1",
                                      "kind": "Gizmo"}
    assert {s["subresource"] for s in gizmos["subresources"]} == {"status", "scale"}
    core = apiserver_http.get("/api", headers={"Accept": accept}).json()
    resources = {r["resource"] for r in core["items"][0]["versions"][0]["resources"]}
    assert {"pods", "namespaces", "configmaps"} <= resources


def test_plain_discovery_is_served_to_clients_that_do_not_ask_for_aggregation(apiserver_http):
    response = apiserver_http.get("/apis", headers={"Accept": "application/json"})
    assert response.json()["kind"] == "APIGroupList"
