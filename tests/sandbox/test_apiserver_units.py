"""Table tests of the API server's pure pieces: selectors, patches, server-side apply,
JSONPath, ages, garbage-collection decisions, protobuf decoding and the watch history."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from kadence.sandbox.apiserver import gc, jsonpath, patching, podstatus, protobuf, selectors, tables
from kadence.sandbox.apiserver.errors import ApiError
from kadence.sandbox.apiserver.resources import Registry, served_types_of_crd
from kadence.sandbox.apiserver.server import parse_resource_path
from kadence.sandbox.apiserver.store import Store, Watcher

POD_STRATEGY = patching.builtin_list_strategy(("", "pods"))
DEPLOYMENT_STRATEGY = patching.builtin_list_strategy(("apps", "deployments"))


# ---- selectors (label selectors' matching: tests/operator/test_label_selectors.py) -------------

def test_an_unparseable_label_selector_is_a_bad_request():
    with pytest.raises(ApiError) as error:
        selectors.parse_label_selector("a b c")
    assert error.value.code == 400
    assert 'invalid label key "a b c"' in error.value.message


def test_a_structured_selector_with_an_unknown_operator_is_a_bad_request():
    with pytest.raises(ApiError) as error:
        selectors.label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "Near"}]})
    assert error.value.code == 400


@pytest.mark.parametrize("group, plural, text, obj, expected", [
    ("", "pods", "status.phase=Running", {"status": {"phase": "Running"}}, True),
    ("", "pods", "status.phase!=Running", {"status": {"phase": "Running"}}, False),
    ("", "pods", "spec.nodeName=", {"spec": {}}, True),
    ("", "events", "involvedObject.name=w1,involvedObject.kind=Widget",
     {"involvedObject": {"name": "w1", "kind": "Widget"}}, True),
    ("x.dev", "things", "metadata.name=a", {"metadata": {"name": "a"}}, True),
    ("x.dev", "things", "metadata.namespace=ns", {"metadata": {"name": "a", "namespace": "b"}},
     False),
])
def test_a_field_selector_compares_the_string_form_of_a_field(group, plural, text, obj, expected):
    obj.setdefault("metadata", {"name": "x"})
    requirements = selectors.parse_field_selector(text, group, plural)
    assert selectors.fields_match(requirements, obj) is expected


def test_a_field_the_kind_does_not_support_is_refused_with_400():
    with pytest.raises(ApiError) as error:
        selectors.parse_field_selector("spec.size=3", "x.dev", "things")
    assert error.value.code == 400
    assert "field label not supported: spec.size" in error.value.message


# ---- patches --------------------------------------------------------------------------------

@pytest.mark.parametrize("target, patch, expected", [
    ({"a": 1, "b": 2}, {"b": None}, {"a": 1}),
    ({"a": {"x": 1}}, {"a": {"y": 2}}, {"a": {"x": 1, "y": 2}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"a": {"b": 1}}, {"a": {"b": 1}}),
])
def test_a_json_merge_patch_follows_rfc_7386(target, patch, expected):
    assert patching.merge_patch(target, patch) == expected


def test_a_json_patch_whose_test_fails_is_refused_with_422():
    target = {"metadata": {"resourceVersion": "5"}}
    with pytest.raises(ApiError) as error:
        patching.json_patch(target, [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "4"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
        ])
    assert error.value.code == 422


def test_a_json_patch_whose_test_passes_is_applied():
    target = {"metadata": {"resourceVersion": "5"}}
    result = patching.json_patch(target, [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ])
    assert result["metadata"]["finalizers"] == ["x"]


def _pod(*containers):
    return {"spec": {"containers": [dict(c) for c in containers]}}


@pytest.mark.parametrize("patch, expected_containers", [
    # containers merge by name: the patched one changes, the other stays
    ({"spec": {"containers": [{"name": "b", "image": "new"}]}},
     [{"name": "a", "image": "x"}, {"name": "b", "image": "new"}]),
    # a new name is appended
    ({"spec": {"containers": [{"name": "c", "image": "z"}]}},
     [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}, {"name": "c", "image": "z"}]),
    # $patch: delete removes one element by its key
    ({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}},
     [{"name": "b", "image": "y"}]),
    # $setElementOrder reorders and is not stored
    ({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
               "containers": [{"name": "a", "image": "x2"}]}},
     [{"name": "b", "image": "y"}, {"name": "a", "image": "x2"}]),
    # $patch: replace on the list replaces it whole
    ({"spec": {"containers": [{"name": "q", "image": "q"}, {"$patch": "replace"}]}},
     [{"name": "q", "image": "q"}]),
])
def test_a_strategic_merge_patch_merges_containers_by_name(patch, expected_containers):
    target = _pod({"name": "a", "image": "x"}, {"name": "b", "image": "y"})
    assert patching.strategic_merge_patch(target, patch, POD_STRATEGY)["spec"]["containers"] \
        == expected_containers


def test_a_strategic_merge_patch_keeps_only_retained_keys():
    target = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                   "rollingUpdate": None}}}
    result = patching.strategic_merge_patch(target, patch, DEPLOYMENT_STRATEGY)
    assert result == {"spec": {"strategy": {"type": "Recreate"}}}


def test_a_strategic_merge_patch_merges_env_by_name_and_ports_by_container_port():
    target = {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}],
                                       "ports": [{"containerPort": 80, "name": "http"}]}]}}
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}],
                                      "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}
    container = patching.strategic_merge_patch(target, patch, POD_STRATEGY)["spec"]["containers"][0]
    assert container["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    assert container["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]


def test_a_strategic_merge_patch_adds_finalizers_as_a_set():
    target = {"metadata": {"finalizers": ["a"]}}
    patch = {"metadata": {"finalizers": ["b", "a"]}}
    assert patching.strategic_merge_patch(target, patch, POD_STRATEGY)["metadata"]["finalizers"] \
        == ["a", "b"]


def test_a_strategic_merge_patch_deletes_from_a_primitive_list():
    target = {"metadata": {"finalizers": ["a", "b"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    assert patching.strategic_merge_patch(target, patch, POD_STRATEGY)["metadata"]["finalizers"] \
        == ["b"]


def test_an_atomic_list_is_replaced_whole_by_a_strategic_merge_patch():
    target = {"spec": {"containers": [{"name": "a", "args": ["1", "2"]}]}}
    patch = {"spec": {"containers": [{"name": "a", "args": ["3"]}]}}
    result = patching.strategic_merge_patch(target, patch, POD_STRATEGY)
    assert result["spec"]["containers"][0]["args"] == ["3"]


# ---- server-side apply ----------------------------------------------------------------------

def _apply(live, applied, manager, managed, force=False):
    return patching.server_side_apply(live, applied, manager, managed, force,
                                      patching.custom_list_strategy, "x.dev/v1", "now")


def test_an_apply_removes_fields_the_manager_stopped_applying():
    live, managed, conflicts = _apply({"spec": {}}, {"spec": {"a": 1, "b": 2}}, "me", [])
    assert conflicts == []
    live, managed, conflicts = _apply(live, {"spec": {"a": 1}}, "me", managed)
    assert live == {"spec": {"a": 1}}


def test_an_apply_keeps_a_field_another_manager_also_owns():
    live, managed, _ = _apply({"spec": {}}, {"spec": {"a": 1, "b": 2}}, "me", [])
    live, managed, _ = _apply(live, {"spec": {"b": 2}}, "other", managed)
    live, managed, _ = _apply(live, {"spec": {"a": 1}}, "me", managed)
    assert live == {"spec": {"a": 1, "b": 2}}


def test_an_apply_that_changes_another_managers_field_conflicts_unless_forced():
    live, managed, _ = _apply({"spec": {}}, {"spec": {"a": 1}}, "other", [])
    _, _, conflicts = _apply(live, {"spec": {"a": 2}}, "me", managed)
    assert patching.conflict_message(conflicts) == 'Apply failed with 1 conflict: conflict with "other": .spec.a'
    forced, managed, conflicts = _apply(live, {"spec": {"a": 2}}, "me", managed, force=True)
    assert conflicts == [] and forced["spec"]["a"] == 2
    owners = {entry["manager"]: entry["fieldsV1"] for entry in managed}
    assert owners == {"me": {"f:spec": {"f:a": {}}}}


def test_an_apply_may_take_over_the_fields_it_is_allowed_to_without_a_conflict():
    live, managed, _ = _apply({"spec": {}}, {"spec": {"a": 1, "b": 1}}, "kubectl-client-side-apply", [])
    taken, managed, conflicts = patching.server_side_apply(
        live, {"spec": {"a": 2, "b": 2}}, "kubectl", managed, False,
        patching.custom_list_strategy, "x.dev/v1", "now", takeover={("f:spec", "f:a")})
    assert conflicts == [("kubectl-client-side-apply", ("f:spec", "f:b"))]


def test_a_conflict_on_an_associative_list_item_names_its_key():
    path = ("f:spec", "f:containers", 'k:{"name":"a"}', "f:image")
    assert patching.dotted(path) == '.spec.containers[name="a"].image'


def test_an_update_takes_ownership_of_the_fields_it_changed():
    old = {"spec": {"a": 1, "b": 1}}
    managed = patching.record_update(None, old, "creator", [], patching.custom_list_strategy,
                                     "v1", "t")
    new = {"spec": {"a": 2, "b": 1}}
    managed = patching.record_update(old, new, "editor", managed, patching.custom_list_strategy,
                                     "v1", "t")
    owners = {entry["manager"]: entry["fieldsV1"] for entry in managed}
    assert owners == {"creator": {"f:spec": {"f:b": {}}}, "editor": {"f:spec": {"f:a": {}}}}


# ---- JSONPath and ages ------------------------------------------------------------------------

OBJ = {"status": {"conditions": [{"type": "Synced", "status": "False"},
                                 {"type": "Ready", "status": "True"}]},
       "metadata": {"labels": {"app.kubernetes.io/name": "x"}},
       "spec": {"items": [{"n": 1}, {"n": 2}], "size": 3}}


@pytest.mark.parametrize("expression, expected", [
    (".spec.size", [3]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    (".status.conditions[?(@.type!='Ready')].type", ["Synced"]),
    (".spec.items[*].n", [1, 2]),
    (".spec.items[1].n", [2]),
    (".spec.items[-1].n", [2]),
    ("{.spec.size}", [3]),
    (".metadata.labels.app\\.kubernetes\\.io/name", ["x"]),
    (".metadata.labels['app.kubernetes.io/name']", ["x"]),
    (".spec.missing", []),
])
def test_a_printer_column_json_path_selects_the_values_kubectl_would_show(expression, expected):
    assert jsonpath.find(OBJ, expression) == expected


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (119, "119s"), (120, "2m"), (125, "2m5s"), (600, "10m"), (3 * 3600, "3h"),
    (3 * 3600 + 60 * 5, "3h5m"), (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"),
    (30 * 86400, "30d"), (3 * 365 * 86400, "3y"),
])
def test_ages_are_printed_as_kubectl_prints_them(seconds, text):
    assert tables.human_duration(seconds) == text


def test_a_crd_date_column_is_served_as_an_age_and_a_missing_value_as_none():
    crd = {"metadata": {"name": "things.x.dev"}, "spec": {
        "group": "x.dev", "names": {"plural": "things", "kind": "Thing"}, "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "additionalPrinterColumns": [
                          {"name": "Ready", "type": "string",
                           "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                          {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                          {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}}
    rtype = served_types_of_crd(crd)[0]
    now = datetime.datetime(2026, 1, 1, 0, 10, tzinfo=datetime.timezone.utc)
    obj = {"metadata": {"name": "t", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}
    table = tables.table(rtype, [obj], now=now)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Size", "Age"]
    assert table["rows"][0]["cells"] == ["t", None, None, "10m"]


@pytest.mark.parametrize("status, spec, expected", [
    ({"conditions": [{"type": "Complete", "status": "True"}]}, {}, "Complete"),
    ({"conditions": [{"type": "Failed", "status": "True"}]}, {}, "Failed"),
    ({}, {"suspend": True}, "Suspended"),
    ({"active": 1}, {}, "Running"),
])
def test_a_job_status_column_reads_its_conditions(status, spec, expected):
    assert tables._job_status({"status": status, "spec": spec}) == expected


# ---- pod status transitions -------------------------------------------------------------------

def pod_with(policy: str, state: dict) -> dict:
    return {"spec": {"restartPolicy": policy},
            "status": {"containerStatuses": [{"name": "main", "state": state}]}}


TERMINATED_0 = {"terminated": {"exitCode": 0}}
TERMINATED_3 = {"terminated": {"exitCode": 3}}
RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}


@pytest.mark.parametrize("policy, before, after, refused", [
    ("Never", TERMINATED_3, RUNNING, True),
    ("Never", TERMINATED_0, {"waiting": {"reason": "ContainerCreating"}}, True),
    ("OnFailure", TERMINATED_0, RUNNING, True),
    ("OnFailure", TERMINATED_3, RUNNING, False),  # restarted after a failure, as the policy says
    ("Always", TERMINATED_0, RUNNING, False),
    ("Never", RUNNING, TERMINATED_3, False),
    ("Never", TERMINATED_3, TERMINATED_3, False),
])
def test_a_container_that_terminated_for_good_may_not_run_again(policy, before, after, refused):
    causes = podstatus.illegal_container_transitions(pod_with(policy, before), pod_with(policy, after))
    assert causes == ([{"reason": "FieldValueForbidden", "field": "status.containerStatuses[0].state",
                        "message": "Forbidden: may not be transitioned to non-terminated state"}] if refused else [])


# ---- garbage collection decisions ------------------------------------------------------------

def _dependent(*owners):
    return {"metadata": {"name": "d", "ownerReferences": [
        {"uid": uid, "blockOwnerDeletion": block} for uid, block in owners]}}


@pytest.mark.parametrize("owners, live, expected", [
    ([("a", False)], set(), "delete"),
    ([("a", False), ("b", False)], {"b"}, "drop-reference"),
    ([("a", False), ("b", False)], set(), "delete"),
    ([("b", False)], {"b"}, "none"),
])
def test_a_dependent_is_deleted_only_when_no_owner_is_left(owners, live, expected):
    assert gc.dependent_action(_dependent(*owners), "a", live) == expected


def test_only_dependents_with_block_owner_deletion_hold_up_a_foreground_deletion():
    blocking = _dependent(("a", True))
    free = _dependent(("a", False))
    assert gc.blocking_dependents([blocking, free], "a") == [blocking]


# ---- paths, protobuf, registry ---------------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("/api/v1/pods", ("", "v1", "pods", None, None, None)),
    ("/api/v1/namespaces/ns/pods/p/log", ("", "v1", "pods", "ns", "p", "log")),
    ("/api/v1/namespaces/ns", ("", "v1", "namespaces", None, "ns", None)),
    ("/api/v1/namespaces/ns/status", ("", "v1", "namespaces", None, "ns", "status")),
    ("/api/v1/namespaces/ns/finalize", ("", "v1", "namespaces", None, "ns", "finalize")),
    ("/apis/apps/v1/namespaces/ns/deployments/d/scale",
     ("apps", "v1", "deployments", "ns", "d", "scale")),
    ("/apis/x.dev/v1/things", ("x.dev", "v1", "things", None, None, None)),
    ("/api/v1/watch/namespaces/ns/pods", ("", "v1", "pods", "ns", None, None)),
])
def test_a_resource_path_names_its_group_version_namespace_name_and_subresource(path, expected):
    target = parse_resource_path(path)
    assert (target.group, target.version, target.plural, target.namespace, target.name,
            target.subresource) == expected


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_a_protobuf_configmap_as_kubectl_create_sends_it_decodes_to_json():
    metadata = _field(1, b"cfg") + _field(2, b"") + _field(11, _field(1, b"app") + _field(2, b"x"))
    configmap = _field(1, metadata) + _field(2, _field(1, b"a") + _field(2, b"b"))
    envelope = _field(1, _field(1, b"v1") + _field(2, b"ConfigMap")) + _field(2, configmap)
    obj = protobuf.decode_object(protobuf.MAGIC + envelope)
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "cfg", "labels": {"app": "x"}}, "data": {"a": "b"}}


def test_a_protobuf_kind_the_sandbox_cannot_read_is_refused_with_415():
    envelope = _field(1, _field(1, b"apps/v1") + _field(2, b"StatefulSet")) + _field(2, b"")
    with pytest.raises(ApiError) as error:
        protobuf.decode_object(protobuf.MAGIC + envelope)
    assert error.value.code == 415


def test_a_crd_registers_its_served_versions_and_unregisters_them():
    registry = Registry()
    crd = {"metadata": {"name": "things.x.dev"}, "spec": {
        "group": "x.dev", "names": {"plural": "things", "kind": "Thing", "shortNames": ["th"]},
        "scope": "Cluster", "versions": [
            {"name": "v1", "served": True, "storage": True},
            {"name": "v1beta1", "served": True, "storage": False},
            {"name": "v1alpha1", "served": False, "storage": False}]}}
    registry.register_crd(crd)
    assert registry.get("x.dev", "v1", "things").short_names == ("th",)
    assert registry.get("x.dev", "v1", "things").namespaced is False
    assert registry.get("x.dev", "v1alpha1", "things") is None
    assert sorted(registry.group_versions()["x.dev"]) == ["v1", "v1beta1"]
    registry.unregister_crd("things.x.dev")
    assert "x.dev" not in registry.group_versions()


# ---- store: versions, history and watch fan-out -----------------------------------------------

def _obj(name, labels=None):
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels or {}}}


def test_every_write_takes_the_next_global_resource_version():
    store = Store()
    first = store.put(("", "a"), _obj("x"))
    second = store.put(("", "b"), _obj("y"))
    deleted = store.remove(("", "a"), "ns", "x")
    assert [first["metadata"]["resourceVersion"], second["metadata"]["resourceVersion"],
            deleted["metadata"]["resourceVersion"]] == ["1", "2", "3"]


def test_a_watch_from_a_version_the_history_has_dropped_is_gone():
    async def scenario():
        store = Store(history_size=3)
        for index in range(10):
            store.put(("", "a"), _obj(f"o{index}"))
        with pytest.raises(ApiError) as error:
            store.subscribe(Watcher(("", "a"), None, lambda o: True), since=2)
        assert error.value.code == 410
        watcher = Watcher(("", "a"), None, lambda o: True)
        store.subscribe(watcher, since=7)
        return [watcher.queue.get_nowait()[1]["metadata"]["name"] for _ in range(3)]

    assert asyncio.run(scenario()) == ["o7", "o8", "o9"]


def test_a_selector_watch_sees_an_object_leave_and_enter_its_selection():
    async def scenario():
        store = Store()
        watcher = Watcher(("", "a"), "ns", lambda o: o["metadata"]["labels"].get("on") == "1")
        store.subscribe(watcher, None)
        store.put(("", "a"), _obj("x", {"on": "1"}))
        store.put(("", "a"), _obj("x", {"on": "0"}))
        store.put(("", "a"), _obj("x", {"on": "0", "other": "1"}))
        store.put(("", "a"), _obj("x", {"on": "1"}))
        return [watcher.queue.get_nowait()[0] for _ in range(watcher.queue.qsize())]

    assert asyncio.run(scenario()) == ["ADDED", "DELETED", "ADDED"]


def test_events_not_written_within_the_ttl_expire_and_renewed_ones_stay():
    from kadence.sandbox.apiserver.api import Api

    api = Api()
    api.bootstrap()
    events = api.registry.get("", "v1", "events")
    stale = api.create(events, "default", {"metadata": {"name": "stale"},
                                           "involvedObject": {"kind": "Pod", "name": "p"}})
    created = datetime.datetime.strptime(stale["metadata"]["creationTimestamp"],
                                         "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    renewed_at = (created + datetime.timedelta(minutes=90)).isoformat()  # kopf's format
    api.create(events, "default", {"metadata": {"name": "renewed"}, "lastTimestamp": renewed_at,
                                   "involvedObject": {"kind": "Pod", "name": "p"}})
    assert api.expire_events(created + datetime.timedelta(hours=2), ttl_seconds=3600) == 1
    assert [e["metadata"]["name"] for e in api.store.list(events.key)] == ["renewed"]


def test_a_watch_whose_client_went_away_is_dropped(tmp_path):
    """An idle watch whose connection closed unsubscribes, so no queue grows for it."""
    import aiohttp
    from aiohttp.test_utils import TestClient, TestServer

    from kadence.sandbox.apiserver import server as server_module

    async def scenario():
        server_module.DISCONNECT_CHECK = 0.1
        app = server_module.create_app(tmp_path, token="unit-test-token")
        async with TestClient(TestServer(app), headers={"Authorization": "Bearer unit-test-token"}) as client:
            api = app[server_module.API_KEY]
            response = await client.get("/api/v1/namespaces/default/configmaps",
                                        params={"watch": "true", "resourceVersion": "1"})
            assert response.status == 200
            assert api.store.watcher_count == 1
            response.close()
            for _ in range(100):
                if api.store.watcher_count == 0:
                    break
                await asyncio.sleep(0.05)
            return api.store.watcher_count

    try:
        assert asyncio.run(scenario()) == 0
    finally:
        server_module.DISCONNECT_CHECK = 5.0


CONDITIONS_SCHEMA = {"type": "object", "properties": {
    "status": {"type": "object", "properties": {
        "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["type"],
                       "items": {"type": "object", "properties": {
                           "type": {"type": "string"}, "status": {"type": "string"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "log": {"type": "array", "items": {"type": "string"}}}}}}


@pytest.mark.parametrize("path, expected", [
    (("status", "conditions"), ("merge", "type")),
    (("status", "tags"), ("merge", None)),
    (("status", "log"), (None, None)),
    (("metadata", "finalizers"), ("merge", None)),
    (("spec", "unknown"), (None, None)),
])
def test_custom_resource_lists_follow_their_crd_list_markers(path, expected):
    assert patching.schema_list_strategy(CONDITIONS_SCHEMA)(path) == expected


def test_two_managers_apply_different_conditions_of_a_list_map_without_conflict():
    strategy = patching.schema_list_strategy(CONDITIONS_SCHEMA)

    def apply(live, applied, manager, managed):
        return patching.server_side_apply(live, applied, manager, managed, False, strategy,
                                          "x.dev/v1", "now")

    live, managed, _ = apply({}, {"status": {"conditions": [{"type": "A", "status": "True"}]}},
                             "one", [])
    live, managed, conflicts = apply(
        live, {"status": {"conditions": [{"type": "B", "status": "False"}]}}, "two", managed)
    assert conflicts == []
    assert sorted(live["status"]["conditions"], key=lambda c: c["type"]) == [
        {"type": "A", "status": "True"}, {"type": "B", "status": "False"}]
