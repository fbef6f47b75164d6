"""Watches and lists over HTTP: resourceVersion semantics, bookmarks, initial events,
timeouts, selectors, pagination; and the `kubernetes` Python client against the server."""

from __future__ import annotations

import threading

import kubernetes
import pytest

from kadence.sandbox import tls

from .apiserver_helpers import MERGE, configmap, wait_for, watch


@pytest.fixture()
def configmaps(apiserver_namespace):
    return f"/api/v1/namespaces/{apiserver_namespace}/configmaps"


def _names(events):
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def test_a_watch_from_a_resource_version_replays_only_later_events(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("before"))
    listed = apiserver_http.get(configmaps).json()
    apiserver_http.post(configmaps, json=configmap("after"))
    apiserver_http.patch(f"{configmaps}/after", json={"data": {"k": "2"}}, headers=MERGE)
    apiserver_http.delete(f"{configmaps}/before")
    events = watch(apiserver_http, configmaps, count=3,
                   resourceVersion=listed["metadata"]["resourceVersion"])
    assert _names(events) == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "before")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)


@pytest.mark.parametrize("resource_version", [None, "0"])
def test_a_watch_without_a_version_starts_with_the_current_objects(apiserver_http, configmaps,
                                                                   resource_version):
    apiserver_http.post(configmaps, json=configmap("a"))
    apiserver_http.post(configmaps, json=configmap("b"))
    params = {"timeoutSeconds": 1}
    if resource_version is not None:
        params["resourceVersion"] = resource_version
    events = watch(apiserver_http, configmaps, **params)
    assert _names(events) == [("ADDED", "a"), ("ADDED", "b")]


def test_initial_events_end_with_an_annotated_bookmark(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("a"))
    events = watch(apiserver_http, configmaps, count=2, sendInitialEvents="true",
                   allowWatchBookmarks="true", resourceVersionMatch="NotOlderThan")
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) >= \
        int(events[0]["object"]["metadata"]["resourceVersion"])


def test_a_watch_ends_when_its_timeout_runs_out(apiserver_http, configmaps):
    listed = apiserver_http.get(configmaps).json()
    events = watch(apiserver_http, configmaps, timeout=20, timeoutSeconds=1,
                   resourceVersion=listed["metadata"]["resourceVersion"])
    assert events == []


def test_a_live_watch_delivers_changes_made_after_it_started(apiserver_http, configmaps):
    listed = apiserver_http.get(configmaps).json()
    received: list = []
    reader = threading.Thread(target=lambda: received.extend(watch(
        apiserver_http, configmaps, count=2, timeoutSeconds=10,
        resourceVersion=listed["metadata"]["resourceVersion"])))
    reader.start()
    apiserver_http.post(configmaps, json=configmap("live"))
    apiserver_http.patch(f"{configmaps}/live", json={"data": {"k": "x"}}, headers=MERGE)
    reader.join(timeout=15)
    assert _names(received) == [("ADDED", "live"), ("MODIFIED", "live")]


def test_a_label_selector_watch_sees_objects_enter_and_leave_the_selection(apiserver_http,
                                                                           configmaps):
    listed = apiserver_http.get(configmaps).json()
    apiserver_http.post(configmaps, json=configmap("c", labels={"tier": "x"}))
    apiserver_http.patch(f"{configmaps}/c", json={"metadata": {"labels": {"tier": "y"}}},
                         headers=MERGE)
    apiserver_http.post(configmaps, json=configmap("other", labels={"tier": "y"}))
    apiserver_http.patch(f"{configmaps}/c", json={"metadata": {"labels": {"tier": "x"}}},
                         headers=MERGE)
    events = watch(apiserver_http, configmaps, count=3, labelSelector="tier in (x)",
                   resourceVersion=listed["metadata"]["resourceVersion"])
    assert _names(events) == [("ADDED", "c"), ("DELETED", "c"), ("ADDED", "c")]


def test_a_field_selector_watch_sees_only_the_named_object(apiserver_http, configmaps):
    listed = apiserver_http.get(configmaps).json()
    for name in ("a", "b"):
        apiserver_http.post(configmaps, json=configmap(name))
    events = watch(apiserver_http, configmaps, count=1, fieldSelector="metadata.name=b",
                   resourceVersion=listed["metadata"]["resourceVersion"])
    assert _names(events) == [("ADDED", "b")]


def test_events_can_be_selected_by_their_involved_object(apiserver_http, apiserver_namespace):
    events_path = f"/api/v1/namespaces/{apiserver_namespace}/events"
    for name in ("w1", "w2"):
        apiserver_http.post(events_path, json={
            "metadata": {"generateName": "ev-"}, "reason": "Test", "message": name,
            "involvedObject": {"kind": "Gizmo", "name": name, "namespace": apiserver_namespace}})
    listed = apiserver_http.get(events_path, params={
        "fieldSelector": "involvedObject.kind=Gizmo,involvedObject.name=w2"}).json()
    assert [e["message"] for e in listed["items"]] == ["w2"]


def test_pods_can_be_selected_by_phase(apiserver_http, apiserver_namespace):
    pods = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    for name in ("a", "b"):
        apiserver_http.post(pods, json={"metadata": {"name": name}, "spec": {
            "nodeName": "elsewhere", "containers": [{"name": "c", "image": "i"}]}})
    apiserver_http.patch(f"{pods}/b/status", json={"status": {"phase": "Running"}},
                         headers=MERGE)
    running = apiserver_http.get(pods, params={"fieldSelector": "status.phase=Running"}).json()
    assert [p["metadata"]["name"] for p in running["items"]] == ["b"]


def test_a_list_names_its_kind_api_version_and_resource_version(apiserver_http, configmaps):
    apiserver_http.post(configmaps, json=configmap("a"))
    listed = apiserver_http.get(configmaps).json()
    assert (listed["kind"], listed["apiVersion"]) == ("ConfigMapList", "v1")
    assert int(listed["metadata"]["resourceVersion"]) >= \
        int(listed["items"][0]["metadata"]["resourceVersion"])


def test_a_list_is_paged_with_limit_and_continue(apiserver_http, configmaps):
    for index in range(7):
        apiserver_http.post(configmaps, json=configmap(f"c{index}"))
    names, token, pages = [], None, 0
    while True:
        params = {"limit": 3}
        if token:
            params["continue"] = token
        page = apiserver_http.get(configmaps, params=params).json()
        pages += 1
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 7 - len(names)
    assert names == [f"c{i}" for i in range(7)] and pages == 3


def test_a_list_across_namespaces_includes_every_namespace(apiserver_http, apiserver_namespace):
    apiserver_http.post(f"/api/v1/namespaces/{apiserver_namespace}/configmaps",
                        json=configmap("here"))
    everywhere = apiserver_http.get("/api/v1/configmaps").json()["items"]
    assert ("here", apiserver_namespace) in [
        (i["metadata"]["name"], i["metadata"]["namespace"]) for i in everywhere]


def test_the_kubernetes_python_client_creates_lists_and_watches(sandbox_apiserver,
                                                                apiserver_namespace):
    configuration = kubernetes.client.Configuration()
    configuration.host = sandbox_apiserver.url
    configuration.api_key = {"authorization": sandbox_apiserver.token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.ssl_ca_cert = str(tls.ca_file(sandbox_apiserver.state_dir))
    with kubernetes.client.ApiClient(configuration) as client:
        core = kubernetes.client.CoreV1Api(client)
        core.create_namespaced_config_map(apiserver_namespace, kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name="py", labels={"by": "client"}),
            data={"a": "1"}))
        listed = core.list_namespaced_config_map(apiserver_namespace, label_selector="by=client")
        assert [c.metadata.name for c in listed.items] == ["py"]
        stream = kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, apiserver_namespace, timeout_seconds=2,
            resource_version=listed.metadata.resource_version)
        core.patch_namespaced_config_map("py", apiserver_namespace, {"data": {"a": "2"}})
        event = next(stream)
        assert (event["type"], event["object"].data) == ("MODIFIED", {"a": "2"})
        with pytest.raises(kubernetes.client.ApiException) as error:
            core.read_namespaced_config_map("missing", apiserver_namespace)
        assert error.value.status == 404


def test_pod_logs_are_served_from_the_kubelet_log_files(apiserver_http, apiserver_namespace,
                                                        sandbox_apiserver):
    pods = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    apiserver_http.post(pods, json={"metadata": {"name": "p"}, "spec": {
        "nodeName": "elsewhere", "containers": [{"name": "main", "image": "i"}]}})
    missing = apiserver_http.get(f"{pods}/p/log")
    assert missing.status_code == 400 and "waiting to start" in missing.json()["message"]
    directory = sandbox_apiserver.state_dir / "logs" / apiserver_namespace / "p"
    directory.mkdir(parents=True)
    (directory / "main.log").write_text("one\ntwo\nthree\n")
    (directory / "main.previous.log").write_text("crashed\n")
    assert apiserver_http.get(f"{pods}/p/log").text == "one\ntwo\nthree\n"
    assert apiserver_http.get(f"{pods}/p/log", params={"tailLines": 2}).text == "two\nthree\n"
    assert apiserver_http.get(f"{pods}/p/log", params={"previous": "true"}).text == "crashed\n"
    stamped = apiserver_http.get(f"{pods}/p/log", params={"timestamps": "true"}).text
    assert stamped.splitlines()[0].endswith("Z one")
    wrong = apiserver_http.get(f"{pods}/p/log", params={"container": "nope"})
    assert wrong.status_code == 400


def test_following_pod_logs_streams_new_lines_until_the_pod_finishes(
        apiserver_http, apiserver_namespace, sandbox_apiserver):
    pods = f"/api/v1/namespaces/{apiserver_namespace}/pods"
    apiserver_http.post(pods, json={"metadata": {"name": "p"}, "spec": {
        "nodeName": "elsewhere", "containers": [{"name": "main", "image": "i"}]}})
    directory = sandbox_apiserver.state_dir / "logs" / apiserver_namespace / "p"
    directory.mkdir(parents=True)
    log_file = directory / "main.log"
    log_file.write_text("first\n")
    chunks: list[str] = []

    def follow():
        with apiserver_http.stream("GET", f"{pods}/p/log", params={"follow": "true"},
                                   timeout=20) as response:
            for text in response.iter_text():
                chunks.append(text)

    reader = threading.Thread(target=follow)
    reader.start()
    wait_for(lambda: "".join(chunks) == "first\n", "the first line")
    with open(log_file, "a") as handle:
        handle.write("second\n")
    wait_for(lambda: "".join(chunks) == "first\nsecond\n", "the appended line")
    apiserver_http.patch(f"{pods}/p/status", json={"status": {"phase": "Succeeded"}},
                         headers=MERGE)
    reader.join(timeout=10)
    assert not reader.is_alive()
