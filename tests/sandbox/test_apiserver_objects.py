"""Object semantics over HTTP: create, update, patch, conflicts, validation, generation,
the status subresource, dry runs and the scale subresource."""

from __future__ import annotations

import pytest

from .apiserver_helpers import (JSON_PATCH, MERGE, STRATEGIC, GIZMOS, configmap, wait_for,
                                ensure_gizmo_crd, gizmo)


@pytest.fixture()
def gizmos(apiserver_http, apiserver_namespace):
    ensure_gizmo_crd(apiserver_http)
    return f"{GIZMOS}/namespaces/{apiserver_namespace}/gizmos"


@pytest.fixture()
def configmaps(apiserver_namespace):
    return f"/api/v1/namespaces/{apiserver_namespace}/configmaps"


def test_a_created_object_gets_uid_resource_version_and_creation_timestamp(apiserver_http,
                                                                           configmaps):
    created = apiserver_http.post(configmaps, json=configmap("c"))
    assert created.status_code == 201
    metadata = created.json()["metadata"]
    assert metadata["uid"] and metadata["creationTimestamp"].endswith("Z")
    assert int(metadata["resourceVersion"]) > 0
    assert apiserver_http.get(f"{configmaps}/c").json() == created.json()


def test_generate_name_gives_each_object_a_unique_name(apiserver_http, configmaps):
    names = set()
    for _ in range(5):
        body = {"metadata": {"generateName": "kopf-event-"}, "data": {}}
        response = apiserver_http.post(configmaps, json=body)
        assert response.status_code == 201
        names.add(response.json()["metadata"]["name"])
    assert len(names) == 5 and all(n.startswith("kopf-event-") and len(n) == 16 for n in names)


def test_creating_an_existing_name_answers_409_already_exists(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("c"))
    response = apiserver_http.post(configmaps, json=configmap("c"))
    assert response.status_code == 409
    status = response.json()
    assert (status["kind"], status["reason"], status["details"]["name"]) == \
        ("Status", "AlreadyExists", "c")


def test_an_object_without_a_name_is_invalid(apiserver_http, configmaps):
    response = apiserver_http.post(configmaps, json={"metadata": {}})
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "metadata.name"


def test_creating_in_a_missing_namespace_is_not_found(apiserver_http):
    response = apiserver_http.post("/api/v1/namespaces/no-such-ns/configmaps", json=configmap("c"))
    assert response.status_code == 404
    assert response.json()["details"]["kind"] == "namespaces"


def test_a_put_with_a_stale_resource_version_is_refused_with_409(apiserver_http, configmaps):
    first = apiserver_http.post(configmaps, json=configmap("c")).json()
    fresh = apiserver_http.put(f"{configmaps}/c", json={**first, "data": {"k": "2"}})
    assert fresh.status_code == 200
    stale = apiserver_http.put(f"{configmaps}/c", json={**first, "data": {"k": "3"}})
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert "the object has been modified" in stale.json()["message"]
    assert apiserver_http.get(f"{configmaps}/c").json()["data"] == {"k": "2"}


def test_a_put_without_a_resource_version_updates_unconditionally(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("c"))
    response = apiserver_http.put(f"{configmaps}/c", json={"metadata": {"name": "c"},
                                                           "data": {"k": "new"}})
    assert response.status_code == 200 and response.json()["data"] == {"k": "new"}


def test_a_write_that_changes_nothing_keeps_the_resource_version(apiserver_http, configmaps):
    created = apiserver_http.post(configmaps, json=configmap("c")).json()
    patched = apiserver_http.patch(f"{configmaps}/c", json={"data": {"k": "v"}}, headers=MERGE)
    assert patched.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_resource_versions_increase_with_every_write(apiserver_http, configmaps):
    versions = [int(apiserver_http.post(configmaps, json=configmap("c")).json()["metadata"]
                    ["resourceVersion"])]
    for value in ("1", "2", "3"):
        response = apiserver_http.patch(f"{configmaps}/c", json={"data": {"k": value}},
                                        headers=MERGE)
        versions.append(int(response.json()["metadata"]["resourceVersion"]))
    assert versions == sorted(versions) and len(set(versions)) == 4


def test_a_merge_patch_naming_a_stale_resource_version_is_refused_with_409(apiserver_http,
                                                                           configmaps):
    created = apiserver_http.post(configmaps, json=configmap("c")).json()
    apiserver_http.patch(f"{configmaps}/c", json={"data": {"k": "1"}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
             "data": {"k": "2"}}
    assert apiserver_http.patch(f"{configmaps}/c", json=stale, headers=MERGE).status_code == 409


def test_a_json_patch_guarded_by_a_resource_version_test_applies_only_to_that_version(
        apiserver_http, configmaps):
    created = apiserver_http.post(configmaps, json=configmap("c")).json()
    guard = {"op": "test", "path": "/metadata/resourceVersion",
             "value": created["metadata"]["resourceVersion"]}
    add = {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/KopfFinalizerMarker"]}
    first = apiserver_http.patch(f"{configmaps}/c", json=[guard, add], headers=JSON_PATCH)
    assert first.status_code == 200
    assert first.json()["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    again = apiserver_http.patch(f"{configmaps}/c", json=[guard, add], headers=JSON_PATCH)
    assert again.status_code == 422
    apiserver_http.patch(f"{configmaps}/c", json={"metadata": {"finalizers": None}}, headers=MERGE)


def test_a_strategic_merge_patch_of_a_deployment_merges_containers_and_drops_directives(
        apiserver_http, apiserver_namespace):
    path = f"/apis/apps/v1/namespaces/{apiserver_namespace}/deployments"
    apiserver_http.post(path, json={"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}})
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "a:2"}]}}}}
    response = apiserver_http.patch(f"{path}/d", json=patch, headers=STRATEGIC)
    assert response.status_code == 200
    containers = response.json()["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("b", "b:1"), ("a", "a:2")]
    assert "$setElementOrder/containers" not in response.json()["spec"]["template"]["spec"]


def test_a_strategic_merge_patch_of_a_custom_resource_is_an_unsupported_media_type(
        apiserver_http, gizmos):
    apiserver_http.post(gizmos, json=gizmo("w"))
    response = apiserver_http.patch(f"{gizmos}/w", json={"spec": {"size": 2}}, headers=STRATEGIC)
    assert response.status_code == 415


def test_an_invalid_custom_resource_is_refused_with_422_causes_naming_each_field(
        apiserver_http, gizmos):
    response = apiserver_http.post(gizmos, json=gizmo("bad", size=0,
                                                        spec={"size": 0, "color": "pink"}))
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Gizmo"
    fields = {cause["field"]: cause["reason"] for cause in status["details"]["causes"]}
    assert fields == {"spec.size": "FieldValueInvalid", "spec.color": "FieldValueNotSupported"}
    assert status["message"].startswith('Gizmo.conformance.kadence.dev "bad" is invalid: ')


def test_an_invalid_patch_of_a_custom_resource_is_refused_and_changes_nothing(apiserver_http,
                                                                              gizmos):
    created = apiserver_http.post(gizmos, json=gizmo("w")).json()
    response = apiserver_http.patch(f"{gizmos}/w", json={"spec": {"size": -1}}, headers=MERGE)
    assert response.status_code == 422
    assert apiserver_http.get(f"{gizmos}/w").json() == created


def test_schema_defaults_are_filled_in_on_create(apiserver_http, gizmos):
    created = apiserver_http.post(gizmos, json=gizmo("w")).json()
    assert created["spec"]["color"] == "blue"


@pytest.mark.parametrize("change, bumps", [
    ({"spec": {"size": 9}}, True),
    ({"metadata": {"labels": {"a": "b"}}}, False),
    ({"metadata": {"annotations": {"a": "b"}}}, False),
])
def test_generation_of_a_custom_resource_moves_on_non_metadata_changes_only(
        apiserver_http, gizmos, change, bumps):
    apiserver_http.post(gizmos, json=gizmo("w"))
    patched = apiserver_http.patch(f"{gizmos}/w", json=change, headers=MERGE).json()
    assert patched["metadata"]["generation"] == (2 if bumps else 1)


def test_a_status_write_does_not_move_generation(apiserver_http, gizmos):
    apiserver_http.post(gizmos, json=gizmo("w"))
    patched = apiserver_http.patch(f"{gizmos}/w/status", json={"status": {"replicas": 1}},
                                   headers=MERGE).json()
    assert patched["metadata"]["generation"] == 1 and patched["status"] == {"replicas": 1}


def test_generation_of_a_deployment_moves_on_spec_changes_only(apiserver_http,
                                                               apiserver_namespace):
    path = f"/apis/apps/v1/namespaces/{apiserver_namespace}/deployments"
    apiserver_http.post(path, json={"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}}, "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "a", "image": "a"}]}}}})
    labelled = apiserver_http.patch(f"{path}/d", json={"metadata": {"labels": {"x": "y"}}},
                                    headers=MERGE).json()
    assert labelled["metadata"]["generation"] == 1
    scaled = apiserver_http.patch(f"{path}/d", json={"spec": {"replicas": 3}},
                                  headers=MERGE).json()
    assert scaled["metadata"]["generation"] == 2


def test_create_drops_the_status_of_a_kind_with_a_status_subresource(apiserver_http, gizmos):
    created = apiserver_http.post(gizmos, json=gizmo("w", status={"replicas": 5})).json()
    assert "status" not in created


def test_a_main_resource_write_cannot_change_status(apiserver_http, gizmos):
    apiserver_http.post(gizmos, json=gizmo("w"))
    apiserver_http.patch(f"{gizmos}/w/status", json={"status": {"replicas": 1}}, headers=MERGE)
    response = apiserver_http.patch(f"{gizmos}/w", headers=MERGE,
                                    json={"spec": {"size": 4}, "status": {"replicas": 7}})
    assert response.json()["status"] == {"replicas": 1}
    assert response.json()["spec"]["size"] == 4


def test_a_status_write_cannot_change_anything_but_status(apiserver_http, gizmos):
    apiserver_http.post(gizmos, json=gizmo("w"))
    current = apiserver_http.get(f"{gizmos}/w").json()
    body = {**current, "spec": {"size": 99}, "status": {"replicas": 2}}
    body["metadata"] = {**current["metadata"], "labels": {"sneaky": "yes"}}
    updated = apiserver_http.put(f"{gizmos}/w/status", json=body).json()
    assert updated["spec"]["size"] == 3
    assert "labels" not in updated["metadata"]
    assert updated["status"] == {"replicas": 2}


def test_a_finished_pod_cannot_be_reported_running_again(apiserver_http, apiserver_namespace):
    pods = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    apiserver_http.post(pods, json={"metadata": {"name": "done"}, "spec": {
        "nodeName": "elsewhere", "restartPolicy": "Never", "containers": [{"name": "main", "image": "i"}]}})

    def report(phase: str, state: dict):
        return apiserver_http.patch(f"{pods}/done/status", headers=MERGE, json={"status": {
            "phase": phase, "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": False,
                                                   "restartCount": 0, "state": state}]}})
    assert report("Failed", {"terminated": {"exitCode": 3}}).status_code == 200
    late = report("Running", {"running": {"startedAt": "2026-01-01T00:00:00Z"}})
    assert late.status_code == 422, late.text
    assert late.json()["message"] == ('Pod "done" is invalid: status.containerStatuses[0].state: '
                                      "Forbidden: may not be transitioned to non-terminated state")
    assert apiserver_http.get(f"{pods}/done").json()["status"]["phase"] == "Failed"


def test_a_dry_run_create_validates_but_stores_nothing(apiserver_http, configmaps):
    response = apiserver_http.post(configmaps, params={"dryRun": "All"}, json=configmap("c"))
    assert response.status_code == 201 and response.json()["metadata"]["name"] == "c"
    assert apiserver_http.get(f"{configmaps}/c").status_code == 404


def test_a_dry_run_delete_keeps_the_object(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("c"))
    assert apiserver_http.delete(f"{configmaps}/c", params={"dryRun": "All"}).status_code == 200
    assert apiserver_http.get(f"{configmaps}/c").status_code == 200


def test_the_scale_subresource_reads_and_writes_replicas(apiserver_http, gizmos):
    apiserver_http.post(gizmos, json=gizmo("w", spec={"size": 1, "replicas": 2}))
    scale = apiserver_http.get(f"{gizmos}/w/scale").json()
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 2)
    response = apiserver_http.patch(f"{gizmos}/w/scale", json={"spec": {"replicas": 5}},
                                    headers=MERGE)
    assert response.json()["spec"]["replicas"] == 5
    assert apiserver_http.get(f"{gizmos}/w").json()["spec"]["replicas"] == 5


def test_a_server_side_apply_creates_then_updates_and_reports_conflicts(apiserver_http,
                                                                        configmaps):
    apply = {"Content-Type": "application/apply-patch+yaml"}
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n  b: '2'\n"
    created = apiserver_http.patch(f"{configmaps}/c", content=manifest, headers=apply,
                                   params={"fieldManager": "tool"})
    assert created.status_code == 201 and created.json()["data"] == {"a": "1", "b": "2"}
    smaller = manifest.replace("  b: '2'\n", "")
    updated = apiserver_http.patch(f"{configmaps}/c", content=smaller, headers=apply,
                                   params={"fieldManager": "tool"})
    assert updated.json()["data"] == {"a": "1"}
    apiserver_http.patch(f"{configmaps}/c", json={"data": {"a": "changed"}},
                         headers=MERGE, params={"fieldManager": "editor"})
    conflict = apiserver_http.patch(f"{configmaps}/c", content=smaller, headers=apply,
                                    params={"fieldManager": "tool"})
    assert conflict.status_code == 409
    assert conflict.json()["details"]["causes"][0]["field"] == ".data.a"
    forced = apiserver_http.patch(f"{configmaps}/c", content=smaller, headers=apply,
                                  params={"fieldManager": "tool", "force": "true"})
    assert forced.json()["data"] == {"a": "1"}


def test_an_apply_without_a_field_manager_is_invalid(apiserver_http, configmaps):
    response = apiserver_http.patch(f"{configmaps}/c", content="{}",
                                    headers={"Content-Type": "application/apply-patch+yaml"})
    assert response.status_code == 422


def test_a_service_gets_a_cluster_ip_and_defaulted_ports(apiserver_http, apiserver_namespace):
    path = f"/api/v1/namespaces/{apiserver_namespace}/services"
    created = apiserver_http.post(path, json={"metadata": {"name": "s"}, "spec": {
        "selector": {"app": "s"}, "ports": [{"port": 80}]}}).json()
    assert created["spec"]["clusterIP"].startswith("10.")
    assert created["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert created["spec"]["type"] == "ClusterIP"


def test_a_job_gets_a_selector_on_its_uid_and_matching_template_labels(apiserver_http,
                                                                       apiserver_namespace):
    path = f"/apis/batch/v1/namespaces/{apiserver_namespace}/jobs"
    job = apiserver_http.post(path, json={"metadata": {"name": "j"}, "spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "a"}]}}}}).json()
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"
    assert job["spec"]["backoffLimit"] == 6 and job["spec"]["completions"] == 1


def test_strict_field_validation_refuses_unknown_fields_and_warn_reports_them(apiserver_http,
                                                                             gizmos):
    body = gizmo("w", spec={"size": 1, "colour": "red"})
    strict = apiserver_http.post(gizmos, json=body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert 'strict decoding error: unknown field "spec.colour"' in strict.json()["message"]
    warned = apiserver_http.post(gizmos, json=body, params={"fieldValidation": "Warn"})
    assert warned.status_code == 201
    assert 'unknown field \\"spec.colour\\"' in warned.headers["Warning"]
    assert "colour" not in warned.json()["spec"]


def test_strict_field_validation_applies_to_built_in_kinds(apiserver_http, configmaps):
    response = apiserver_http.post(configmaps, params={"fieldValidation": "Strict"},
                                   json={**configmap("c"), "extra": 1})
    assert response.status_code == 400
    assert 'unknown field "extra"' in response.json()["message"]


def test_every_new_namespace_gets_a_default_service_account(apiserver_http, apiserver_namespace):
    wait_for(lambda: apiserver_http.get(f"/api/v1/namespaces/{apiserver_namespace}/"
                                        "serviceaccounts/default").status_code == 200,
             "the default service account")
