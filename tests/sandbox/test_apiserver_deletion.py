"""Deletion semantics over HTTP: finalizers and deletionTimestamp, preconditions, owner
garbage collection (background, foreground, orphan), namespace and CRD cascades."""

from __future__ import annotations

import copy

import pytest

from .apiserver_helpers import (MERGE, GIZMOS, configmap, ensure_gizmo_crd, owner_ref, unique,
                                wait_for, gizmo)


@pytest.fixture()
def configmaps(apiserver_namespace):
    return f"/api/v1/namespaces/{apiserver_namespace}/configmaps"


def _gone(http, path):
    return lambda: http.get(path).status_code == 404


def test_an_object_with_finalizers_stays_until_they_are_removed(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("c", finalizers=["example.com/hold"]))
    response = apiserver_http.delete(f"{configmaps}/c")
    assert response.status_code == 202
    pending = apiserver_http.get(f"{configmaps}/c").json()
    assert pending["metadata"]["deletionTimestamp"]
    assert pending["metadata"]["finalizers"] == ["example.com/hold"]
    apiserver_http.patch(f"{configmaps}/c", json={"metadata": {"finalizers": None}},
                         headers=MERGE)
    assert apiserver_http.get(f"{configmaps}/c").status_code == 404


def test_setting_the_deletion_timestamp_bumps_the_generation(apiserver_http,
                                                             apiserver_namespace):
    ensure_gizmo_crd(apiserver_http)
    path = f"{GIZMOS}/namespaces/{apiserver_namespace}/gizmos"
    apiserver_http.post(path, json=gizmo("w", finalizers=["example.com/hold"]))
    deleting = apiserver_http.delete(f"{path}/w").json()
    assert deleting["metadata"]["generation"] == 2
    apiserver_http.patch(f"{path}/w", json={"metadata": {"finalizers": None}}, headers=MERGE)


def test_a_delete_answers_a_success_status_when_the_object_is_gone(apiserver_http, configmaps):
    created = apiserver_http.post(configmaps, json=configmap("c")).json()
    response = apiserver_http.delete(f"{configmaps}/c")
    assert response.status_code == 200
    assert response.json()["status"] == "Success"
    assert response.json()["details"]["uid"] == created["metadata"]["uid"]
    assert apiserver_http.delete(f"{configmaps}/c").status_code == 404


@pytest.mark.parametrize("field", ["uid", "resourceVersion"])
def test_a_delete_with_a_failed_precondition_answers_409(apiserver_http, configmaps, field):
    apiserver_http.post(configmaps, json=configmap("c"))
    response = apiserver_http.request("DELETE", f"{configmaps}/c", json={
        "kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {field: "nope"}})
    assert response.status_code == 409
    assert "Precondition failed" in response.json()["message"]
    assert apiserver_http.get(f"{configmaps}/c").status_code == 200


def test_background_deletion_collects_the_dependents(apiserver_http, configmaps):
    owner = apiserver_http.post(configmaps, json=configmap("owner")).json()
    for index in range(3):
        apiserver_http.post(configmaps, json=configmap(f"dep{index}",
                                                       ownerReferences=[owner_ref(owner)]))
    apiserver_http.delete(f"{configmaps}/owner", params={"propagationPolicy": "Background"})
    for index in range(3):
        wait_for(_gone(apiserver_http, f"{configmaps}/dep{index}"), f"dep{index} to be collected")


def test_a_dependent_created_after_its_owner_is_gone_is_collected(apiserver_http, configmaps):
    owner = apiserver_http.post(configmaps, json=configmap("owner")).json()
    apiserver_http.delete(f"{configmaps}/owner")
    apiserver_http.post(configmaps, json=configmap("late", ownerReferences=[owner_ref(owner)]))
    wait_for(_gone(apiserver_http, f"{configmaps}/late"), "the late dependent to be collected")


def test_foreground_deletion_waits_for_blocking_dependents(apiserver_http, configmaps):
    owner = apiserver_http.post(configmaps, json=configmap("owner")).json()
    apiserver_http.post(configmaps, json=configmap(
        "dep", ownerReferences=[owner_ref(owner, block=True)], finalizers=["example.com/hold"]))
    response = apiserver_http.delete(f"{configmaps}/owner",
                                     params={"propagationPolicy": "Foreground"})
    assert response.status_code == 202
    assert response.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    wait_for(lambda: apiserver_http.get(f"{configmaps}/dep").json()["metadata"].get(
        "deletionTimestamp"), "the dependent to be deleting")
    assert apiserver_http.get(f"{configmaps}/owner").status_code == 200  # still waiting
    apiserver_http.patch(f"{configmaps}/dep", json={"metadata": {"finalizers": None}},
                         headers=MERGE)
    wait_for(_gone(apiserver_http, f"{configmaps}/owner"), "the owner to go once its dependent did")


def test_orphan_deletion_releases_the_dependents(apiserver_http, configmaps):
    owner = apiserver_http.post(configmaps, json=configmap("owner")).json()
    apiserver_http.post(configmaps, json=configmap("dep", ownerReferences=[owner_ref(owner)]))
    apiserver_http.delete(f"{configmaps}/owner", params={"propagationPolicy": "Orphan"})
    dependent = apiserver_http.get(f"{configmaps}/dep").json()
    assert "ownerReferences" not in dependent["metadata"]


def test_jobs_orphan_their_pods_unless_told_otherwise(apiserver_http, apiserver_namespace):
    jobs = f"/apis/batch/v1/namespaces/{apiserver_namespace}/jobs"
    pods = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    job = apiserver_http.post(jobs, json={"metadata": {"name": "j"}, "spec": {"template": {
        "spec": {"containers": [{"name": "a", "image": "a"}]}}}}).json()
    apiserver_http.post(pods, json={"metadata": {"name": "p", "ownerReferences": [owner_ref(job)]},
                                    "spec": {"containers": [{"name": "a", "image": "a"}]}})
    apiserver_http.delete(f"{jobs}/j")
    assert "ownerReferences" not in apiserver_http.get(f"{pods}/p").json()["metadata"]


def test_a_dependent_with_a_surviving_owner_only_loses_the_reference(apiserver_http, configmaps):
    first = apiserver_http.post(configmaps, json=configmap("first")).json()
    second = apiserver_http.post(configmaps, json=configmap("second")).json()
    apiserver_http.post(configmaps, json=configmap(
        "dep", ownerReferences=[owner_ref(first), owner_ref(second)]))
    apiserver_http.delete(f"{configmaps}/first")
    wait_for(lambda: len(apiserver_http.get(f"{configmaps}/dep").json()["metadata"]
                         ["ownerReferences"]) == 1, "the reference to the first owner to go")
    assert apiserver_http.get(f"{configmaps}/dep").json()["metadata"]["ownerReferences"][0][
        "uid"] == second["metadata"]["uid"]


def test_deleting_a_namespace_terminates_it_and_then_removes_it_with_its_contents(
        apiserver_http):
    name = unique("doomed")
    apiserver_http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    apiserver_http.post(f"/api/v1/namespaces/{name}/configmaps",
                        json=configmap("held", finalizers=["example.com/hold"]))
    apiserver_http.post(f"/api/v1/namespaces/{name}/secrets",
                        json={"metadata": {"name": "s"}, "stringData": {"a": "b"}})
    response = apiserver_http.delete(f"/api/v1/namespaces/{name}")
    assert response.status_code == 202
    wait_for(lambda: apiserver_http.get(f"/api/v1/namespaces/{name}/secrets/s").status_code == 404,
             "the namespace's secret to be deleted")
    namespace = apiserver_http.get(f"/api/v1/namespaces/{name}").json()
    assert namespace["status"]["phase"] == "Terminating"
    refused = apiserver_http.post(f"/api/v1/namespaces/{name}/configmaps", json=configmap("new"))
    assert refused.status_code == 403
    assert "is being terminated" in refused.json()["message"]
    apiserver_http.patch(f"/api/v1/namespaces/{name}/configmaps/held",
                         json={"metadata": {"finalizers": None}}, headers=MERGE)
    wait_for(_gone(apiserver_http, f"/api/v1/namespaces/{name}"), "the namespace to be removed")


def test_deletecollection_deletes_only_the_selected_objects(apiserver_http, configmaps):
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        apiserver_http.post(configmaps, json=configmap(name, labels={"tier": tier}))
    response = apiserver_http.delete(configmaps, params={"labelSelector": "tier=x"})
    assert response.status_code == 200
    remaining = [i["metadata"]["name"] for i in apiserver_http.get(configmaps).json()["items"]]
    assert remaining == ["c"]


def test_a_crd_is_established_serves_its_kind_and_takes_its_objects_when_deleted(
        apiserver_http, apiserver_namespace):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.conformance.kadence.dev"},
        "spec": {"group": "conformance.kadence.dev", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]}}
    created = apiserver_http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                  json=crd)
    assert created.status_code == 201, created.text
    conditions = {c["type"]: c["status"] for c in created.json()["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert created.json()["status"]["acceptedNames"]["kind"] == "Gadget"
    gadgets = f"/apis/conformance.kadence.dev/v1/namespaces/{apiserver_namespace}/gadgets"
    assert apiserver_http.post(gadgets, json={"apiVersion": "conformance.kadence.dev/v1",
                                              "kind": "Gadget", "metadata": {"name": "g"},
                                              "anything": 1}).status_code == 201
    apiserver_http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                          "gadgets.conformance.kadence.dev")
    wait_for(lambda: apiserver_http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                        "gadgets.conformance.kadence.dev").status_code == 404,
             "the CRD to be removed")
    assert apiserver_http.get("/apis/conformance.kadence.dev/v1").status_code == 404  # no other v1 kind
    assert apiserver_http.get(gadgets).status_code == 404
    recreated = apiserver_http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                    json=copy.deepcopy(crd))
    assert recreated.status_code == 201
    assert apiserver_http.get(gadgets).json()["items"] == []
    apiserver_http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                          "gadgets.conformance.kadence.dev")


def test_a_crd_whose_kind_another_crd_of_its_group_uses_is_not_established(apiserver_http):
    ensure_gizmo_crd(apiserver_http)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gizmettes.conformance.kadence.dev"},
           "spec": {"group": "conformance.kadence.dev", "scope": "Namespaced",
                    "names": {"plural": "gizmettes", "kind": "Gizmo"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object"}}}]}}
    response = apiserver_http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                   json=crd)
    assert response.status_code == 201
    conditions = {c["type"]: c for c in response.json()["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "False"
    assert conditions["NamesAccepted"]["reason"] == "NameConflict"
    assert conditions["Established"]["status"] == "False"
    assert apiserver_http.get("/apis/conformance.kadence.dev/v1/gizmettes").status_code == 404
    apiserver_http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                          "gizmettes.conformance.kadence.dev")


def test_a_terminating_pod_on_a_node_waits_for_the_kubelet_to_confirm(apiserver_http,
                                                                      apiserver_namespace):
    pods = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    apiserver_http.post(pods, json={"metadata": {"name": "p"}, "spec": {
        "nodeName": "elsewhere", "containers": [{"name": "a", "image": "a"}]}})
    response = apiserver_http.delete(f"{pods}/p", params={"gracePeriodSeconds": "30"})
    assert response.status_code == 202
    assert response.json()["metadata"]["deletionGracePeriodSeconds"] == 30
    confirmed = apiserver_http.delete(f"{pods}/p", params={"gracePeriodSeconds": "0"})
    assert confirmed.status_code == 200
    assert apiserver_http.get(f"{pods}/p").status_code == 404


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_the_system_namespaces_may_not_be_deleted(apiserver_http, name):
    response = apiserver_http.delete(f"/api/v1/namespaces/{name}")
    assert response.status_code == 403 and response.json()["reason"] == "Forbidden"
    assert apiserver_http.get(f"/api/v1/namespaces/{name}").json()["status"]["phase"] == "Active"
