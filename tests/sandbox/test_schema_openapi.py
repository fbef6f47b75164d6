"""The OpenAPI v2/v3 documents: what kubectl looks for in them, and how they are served."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kadence.sandbox.apiserver.schema import openapi_routes
from kadence.sandbox.apiserver.schema.openapi import (
    OpenAPICache, build_v2, build_v3, definition_name,
)

FIXTURE_CRD = Path(__file__).parent / "fixtures" / "schema" / "widgets-crd.yaml"
WIDGET = "dev.kadence.test.v1.Widget"
WIDGETS_ITEM_PATH = "/apis/test.kadence.dev/v1/namespaces/{namespace}/widgets/{name}"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return yaml.safe_load(FIXTURE_CRD.read_text())


@pytest.fixture(scope="module")
def v3(crd) -> dict[str, dict[str, Any]]:
    return build_v3([crd])


@pytest.fixture(scope="module")
def v2(crd) -> dict[str, Any]:
    return build_v2([crd])


def refs(node: Any) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value)
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


def test_a_custom_kind_is_named_by_its_reversed_group():
    assert definition_name("kadence.dev", "v1alpha1", "Dataset") == "dev.kadence.v1alpha1.Dataset"


def test_v2_has_the_custom_kind_and_its_list_with_their_group_version_kinds(v2):
    widget = v2["definitions"][WIDGET]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": "test.kadence.dev", "kind": "Widget", "version": "v1"}]
    assert widget["properties"]["metadata"]["$ref"] == (
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    assert v2["definitions"][WIDGET + "List"]["properties"]["items"]["items"] == {
        "$ref": "#/definitions/" + WIDGET}


def test_v2_drops_what_openapi_v2_cannot_say(v2):
    spec = v2["definitions"][WIDGET]["properties"]["spec"]
    assert "oneOf" not in spec["properties"]["choice"]
    assert "type" not in spec["properties"]["note"]  # nullable
    assert "x-kubernetes-validations" not in spec


def test_v2_has_the_built_in_kinds(v2):
    deployment = v2["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    containers = v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"


def test_every_v2_reference_resolves(v2):
    missing = {ref for ref in refs(v2) if ref.rsplit("/", 1)[-1] not in v2["definitions"]}
    assert missing == set()


def test_v3_has_one_document_per_served_group_version(v3):
    assert {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/apiextensions.k8s.io/v1",
            "apis/coordination.k8s.io/v1", "apis/autoscaling/v2",
            "apis/test.kadence.dev/v1"} <= set(v3)


@pytest.mark.parametrize("group_version", ["api/v1", "apis/apps/v1", "apis/test.kadence.dev/v1"])
def test_every_v3_document_is_self_contained(v3, group_version):
    document = v3[group_version]
    schemas = document["components"]["schemas"]
    missing = {ref for ref in refs(document)
               if ref.rsplit("/", 1)[-1] not in schemas or not ref.startswith("#/components/schemas/")}
    assert missing == set()


def test_v3_keeps_the_full_custom_schema_with_descriptions(v3):
    widget = v3["apis/test.kadence.dev/v1"]["components"]["schemas"][WIDGET]
    spec = widget["properties"]["spec"]
    assert spec["description"] == "What the user wants of the widget."
    assert spec["properties"]["size"]["enum"] == ["small", "medium", "large", "huge"]
    assert spec["properties"]["note"]["nullable"] is True
    assert widget["properties"]["metadata"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
        "description": "Standard object's metadata. More info: https://git.k8s.io/community/"
                       "contributors/devel/sig-architecture/api-conventions.md#metadata"}


def query_parameters(operation: dict[str, Any]) -> set[str]:
    return {param["name"] for param in operation["parameters"] if param["in"] == "query"}


def test_the_patch_of_a_custom_kind_advertises_field_validation_for_kubectl(v3):
    patch = v3["apis/test.kadence.dev/v1"]["paths"][WIDGETS_ITEM_PATH]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "test.kadence.dev", "kind": "Widget", "version": "v1"}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= query_parameters(patch)


def test_post_and_put_advertise_field_validation_too(v3):
    paths = v3["apis/test.kadence.dev/v1"]["paths"]
    assert "fieldValidation" in query_parameters(
        paths["/apis/test.kadence.dev/v1/namespaces/{namespace}/widgets"]["post"])
    assert "fieldValidation" in query_parameters(paths[WIDGETS_ITEM_PATH]["put"])


def test_custom_kinds_take_no_strategic_merge_patch_but_built_ins_do(v3):
    custom = v3["apis/test.kadence.dev/v1"]["paths"][WIDGETS_ITEM_PATH]["patch"]
    builtin = v3["apis/apps/v1"]["paths"][
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in custom["requestBody"]["content"]
    assert "application/strategic-merge-patch+json" in builtin["requestBody"]["content"]


def test_the_status_subresource_has_its_paths(v3):
    assert set(v3["apis/test.kadence.dev/v1"]["paths"][WIDGETS_ITEM_PATH + "/status"]) == {
        "get", "put", "patch", "parameters"}


def test_core_kinds_live_under_api_v1_with_the_empty_group(v3):
    patch = v3["api/v1"]["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "ConfigMap",
                                                        "version": "v1"}
    assert "/api/v1/namespaces/{name}" in v3["api/v1"]["paths"]  # cluster-scoped


def test_the_documents_follow_the_crds_and_are_rebuilt_only_when_they_change(crd):
    crds: list[dict[str, Any]] = []
    cache = OpenAPICache(lambda: crds)
    empty = cache.documents()
    assert "apis/test.kadence.dev/v1" not in empty.v3
    assert cache.documents() is empty
    crds.append(crd)
    with_crd = cache.documents()
    assert "apis/test.kadence.dev/v1" in with_crd.v3
    assert cache.documents() is with_crd
    status_only = copy.deepcopy(crd)
    status_only["status"] = {"acceptedNames": {}}
    crds[0] = status_only
    assert cache.documents() is with_crd
    crds.clear()
    assert "apis/test.kadence.dev/v1" not in cache.documents().v3


def test_a_crd_being_deleted_is_not_published(crd):
    deleting = copy.deepcopy(crd)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert "apis/test.kadence.dev/v1" not in OpenAPICache(lambda: [deleting]).documents().v3


# ---- over HTTP ----------------------------------------------------------------------------

async def _serve(crds: list[dict[str, Any]], calls) -> list[Any]:
    app = web.Application()
    app.add_routes(openapi_routes(lambda: crds))
    async with TestClient(TestServer(app)) as client:
        return [await call(client) for call in calls]


def serve(crds, *calls):
    return asyncio.run(_serve(crds, calls))


def test_the_v3_index_points_at_each_document_with_its_hash(crd):
    async def index(client):
        response = await client.get("/openapi/v3")
        return response.status, await response.json()

    async def follow(client):
        listed = (await (await client.get("/openapi/v3")).json())["paths"]
        url = listed["apis/test.kadence.dev/v1"]["serverRelativeURL"]
        response = await client.get(url)
        return response.status, response.headers.get("Cache-Control"), await response.json()

    (status, body), (doc_status, cache_control, document) = serve([crd], index, follow)
    assert status == 200
    assert body["paths"]["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    assert doc_status == 200 and cache_control == "public, immutable"
    assert WIDGET in document["components"]["schemas"]


def test_a_stale_hash_is_redirected_to_the_current_document(crd):
    async def stale(client):
        response = await client.get("/openapi/v3/apis/test.kadence.dev/v1?hash=OLD",
                                    allow_redirects=False)
        return response.status, response.headers["Location"]

    [(status, location)] = serve([crd], stale)
    assert status == 301 and location.startswith("/openapi/v3/apis/test.kadence.dev/v1?hash=")


def test_an_unknown_group_version_is_not_found(crd):
    async def unknown(client):
        return (await client.get("/openapi/v3/apis/nothing.example.com/v1")).status

    assert serve([crd], unknown) == [404]


def test_v2_is_json_by_default_and_refuses_other_media_types_with_406(crd):
    async def as_json(client):
        response = await client.get("/openapi/v2", headers={"Accept": "application/json"})
        return response.status, WIDGET in json.loads(await response.read())["definitions"]

    async def as_yaml(client):
        response = await client.get("/openapi/v2", headers={"Accept": "application/yaml"})
        return response.status, (await response.json())["reason"]

    assert serve([crd], as_json, as_yaml) == [(200, True), (406, "NotAcceptable")]


def test_v3_unfolds_int_or_string_and_embedded_resources_as_the_apiserver_does(v3):
    spec = v3["apis/test.kadence.dev/v1"]["components"]["schemas"][WIDGET]["properties"]["spec"]
    assert spec["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert set(spec["properties"]["template"]["properties"]) >= {"apiVersion", "kind", "metadata"}


def test_v3_spells_int_or_string_and_quantity_with_one_of(v3):
    schemas = v3["apis/apps/v1"]["components"]["schemas"]
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert int_or_string["format"] == "int-or-string" and "type" not in int_or_string
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [
        {"type": "string"}, {"type": "number"}]


def _fields(payload: bytes) -> list[tuple[int, bytes | int]]:
    """A protobuf message's (field number, value) pairs: a minimal wire-format reader."""
    found: list[tuple[int, bytes | int]] = []
    position = 0

    def varint() -> int:
        nonlocal position
        shift = result = 0
        while True:
            byte = payload[position]
            position += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while position < len(payload):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            found.append((number, varint()))
        elif wire_type == 1:
            found.append((number, payload[position:position + 8]))
            position += 8
        elif wire_type == 2:
            length = varint()
            found.append((number, payload[position:position + length]))
            position += length
        else:
            raise AssertionError(f"unexpected wire type {wire_type}")
    return found


def test_v2_in_protobuf_is_a_gnostic_document_with_the_definitions(crd):
    async def as_protobuf(client):
        response = await client.get("/openapi/v2", headers={
            "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
        return response.status, response.headers["Content-Type"], await response.read()

    [(status, content_type, body)] = serve([crd], as_protobuf)
    assert status == 200
    assert content_type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    document = dict(_fields(body)[:2])
    assert document[1] == b"2.0"
    definitions = next(value for number, value in _fields(body) if number == 9)
    names = {dict(_fields(named))[1].decode() for _, named in _fields(definitions)}
    assert {WIDGET, "io.k8s.api.apps.v1.Deployment"} <= names
    widget = next(dict(_fields(named))[2] for _, named in _fields(definitions)
                  if dict(_fields(named))[1] == WIDGET.encode())
    extensions = [dict(_fields(value)) for number, value in _fields(widget) if number == 31]
    gvk = next(extension for extension in extensions
               if extension[1] == b"x-kubernetes-group-version-kind")
    assert json.loads(dict(_fields(gvk[2]))[2]) == [
        {"group": "test.kadence.dev", "kind": "Widget", "version": "v1"}]
