"""`/openapi/v2` (JSON or protobuf) and `/openapi/v3` as kube-apiserver publishes them, for
the built-in kinds the sandbox serves and every CRD version, rebuilt when the CRD list
changes.

kubectl uses them for: `kubectl explain` (v3 `components.schemas`), deciding whether the
server does field validation (a `fieldValidation` query parameter on the PATCH operation of
the kind, found by its `x-kubernetes-group-version-kind`), and whether a kind takes
strategic merge patches (the PATCH request body's content types).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import pathlib
import threading
from typing import Any, Callable, Iterable

from aiohttp import web

from . import protobuf_v2

Schema = dict[str, Any]

_DEFINITIONS_FILE = pathlib.Path(__file__).with_name("builtin_definitions.json")
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_OBJECT_META = _META + "ObjectMeta"
_LIST_META = _META + "ListMeta"
_STATUS = _META + "Status"
_DELETE_OPTIONS = _META + "DeleteOptions"
_PATCH = _META + "Patch"

_API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#resources"
)
_KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#types-kinds"
)
_METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata"
)
_LIST_METADATA_DESCRIPTION = (
    "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds"
)
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/apply-patch+yaml")
_STRATEGIC_MERGE = "application/strategic-merge-patch+json"


@functools.lru_cache(maxsize=1)
def builtin_definitions() -> dict[str, Schema]:
    return json.loads(_DEFINITIONS_FILE.read_text())["definitions"]


@functools.lru_cache(maxsize=1)
def kubernetes_version() -> str:
    return json.loads(_DEFINITIONS_FILE.read_text())["kubernetesVersion"]


# ---- what is served -------------------------------------------------------------------

class Resource:
    """One served resource: enough to write its paths and find its definition."""

    def __init__(self, group: str, version: str, kind: str, plural: str, namespaced: bool,
                 verbs: Iterable[str], subresources: Iterable[str], definition: str,
                 strategic_merge: bool) -> None:
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.verbs = tuple(verbs)
        self.subresources = tuple(subresources)
        self.definition = definition
        self.strategic_merge = strategic_merge

    @property
    def gvk(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "version": self.version}

    @property
    def group_version_path(self) -> str:
        """`api/v1` or `apis/<group>/<version>`."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


def definition_name(group: str, version: str, kind: str) -> str:
    """How kube-apiserver names a custom kind's definition: `dev.kadence.v1alpha1.Dataset`."""
    reversed_group = ".".join(reversed(group.split(".")))
    return f"{reversed_group}.{version}.{kind}"


def _builtin_resources() -> list[Resource]:
    from ..resources import BUILTIN_TYPES

    by_gvk = {}
    for name, definition in builtin_definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name
    resources = []
    for rtype in BUILTIN_TYPES:
        name = by_gvk.get((rtype.group, rtype.version, rtype.kind))
        if name is None:
            continue
        resources.append(Resource(
            rtype.group, rtype.version, rtype.kind, rtype.plural, rtype.namespaced,
            rtype.verbs, [sub for sub in rtype.subresources if sub in ("status", "scale")],
            name, strategic_merge=True))
    return resources


# ---- CRD kinds as definitions ---------------------------------------------------------

def _crd_versions(crd: dict[str, Any]) -> list[dict[str, Any]]:
    return [version for version in (crd.get("spec") or {}).get("versions") or []
            if version.get("served")]


def _crd_resources(crds: list[dict[str, Any]]) -> list[Resource]:
    resources = []
    for crd in crds:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in _crd_versions(crd):
            subresources = [key for key in (version.get("subresources") or {})
                            if key in ("status", "scale")]
            resources.append(Resource(
                spec["group"], version["name"], names["kind"], names["plural"],
                spec.get("scope", "Namespaced") == "Namespaced",
                ("create", "delete", "deletecollection", "get", "list", "patch", "update",
                 "watch"),
                subresources, definition_name(spec["group"], version["name"], names["kind"]),
                strategic_merge=False))
    return resources


def _ref(name: str, v3: bool) -> str:
    return f"#/components/schemas/{name}" if v3 else f"#/definitions/{name}"


def _crd_kind_schema(crd: dict[str, Any], version: dict[str, Any], v3: bool) -> Schema:
    spec = crd["spec"]
    schema = copy.deepcopy((version.get("schema") or {}).get("openAPIV3Schema") or {})
    schema = _v3_published(schema) if v3 else _v2_published(schema)
    schema.setdefault("type", "object")
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"description": _API_VERSION_DESCRIPTION, "type": "string"}
    properties["kind"] = {"description": _KIND_DESCRIPTION, "type": "string"}
    metadata_ref = {"$ref": _ref(_OBJECT_META, v3)}
    properties["metadata"] = (
        {"allOf": [metadata_ref], "description": _METADATA_DESCRIPTION} if v3
        else {**metadata_ref, "description": _METADATA_DESCRIPTION})
    schema["x-kubernetes-group-version-kind"] = [
        {"group": spec["group"], "kind": spec["names"]["kind"], "version": version["name"]}]
    return schema


def _crd_list_schema(crd: dict[str, Any], version: dict[str, Any], v3: bool) -> Schema:
    spec = crd["spec"]
    names = spec["names"]
    list_kind = names.get("listKind") or names["kind"] + "List"
    item_ref = {"$ref": _ref(definition_name(spec["group"], version["name"], names["kind"]), v3)}
    list_meta = {"$ref": _ref(_LIST_META, v3)}
    return {
        "description": f"{list_kind} is a list of {names['kind']}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": _API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": "List of " + names["plural"] + ". More info: https://git.k8s.io/"
                "community/contributors/devel/sig-architecture/api-conventions.md",
                "type": "array", "items": item_ref,
            },
            "kind": {"description": _KIND_DESCRIPTION, "type": "string"},
            "metadata": ({"allOf": [list_meta], "description": _LIST_METADATA_DESCRIPTION}
                         if v3 else {**list_meta, "description": _LIST_METADATA_DESCRIPTION}),
        },
        "x-kubernetes-group-version-kind": [
            {"group": spec["group"], "kind": list_kind, "version": version["name"]}],
    }


def _v2_published(schema: Any) -> Any:
    """The schema as /openapi/v2 shows it: OpenAPI v2 has no nullable, oneOf/anyOf/not, and
    kubectl's v2 validation cannot express int-or-string; the apiserver drops those."""
    if isinstance(schema, list):
        return [_v2_published(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key in ("oneOf", "anyOf", "allOf", "not", "nullable", "x-kubernetes-validations"):
            continue
        if key == "properties":
            result[key] = {name: _v2_published(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            result[key] = _v2_published(value)
        else:
            result[key] = value
    if schema.get("nullable"):
        result.pop("type", None)
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
    return result


def _v3_published(schema: Any) -> Any:
    """The schema as /openapi/v3 shows it: whole, with the Kubernetes shorthands unfolded as
    the apiserver unfolds them (int-or-string as `anyOf` integer/string, embedded resources
    with their apiVersion, kind and metadata)."""
    if isinstance(schema, list):
        return [_v3_published(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "properties":
            result[key] = {name: _v3_published(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            result[key] = _v3_published(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            result[key] = [_v3_published(item) for item in value]
        else:
            result[key] = value
    if result.get("x-kubernetes-int-or-string") and "anyOf" not in result:
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if result.get("x-kubernetes-embedded-resource"):
        properties = result.setdefault("properties", {})
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties.setdefault("metadata", {"type": "object"})
    return result


# Types that OpenAPI v3 can spell exactly where v2 had to say "string".
_V3_ONE_OF = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": [{"type": "integer"}, {"type": "string"}],
    "io.k8s.apimachinery.pkg.api.resource.Quantity": [{"type": "string"}, {"type": "number"}],
}


def _builtin_v3_schema(name: str, definition: Schema) -> Schema:
    """A v2 definition rewritten for v3: refs to components, refs with siblings in allOf,
    int-or-string and quantity as `oneOf` (so kubectl explain names them)."""
    if name in _V3_ONE_OF:
        spelled = {key: value for key, value in definition.items() if key != "type"}
        spelled["oneOf"] = _V3_ONE_OF[name]
        return spelled
    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        result = {}
        for key, value in node.items():
            if key == "properties":
                result[key] = {name: convert(sub) for name, sub in value.items()}
            elif key == "$ref" and isinstance(value, str):
                result[key] = value.replace("#/definitions/", "#/components/schemas/")
            else:
                result[key] = convert(value)
        if "$ref" in result and len(result) > 1:
            ref = result.pop("$ref")
            result = {"allOf": [{"$ref": ref}], **result}
        return result
    return convert(definition)


# ---- paths ----------------------------------------------------------------------------

def _query(name: str, description: str, kind: str = "string", v3: bool = False) -> Schema:
    if v3:
        return {"name": name, "in": "query", "description": description,
                "schema": {"type": kind, "uniqueItems": True}}
    return {"name": name, "in": "query", "description": description, "type": kind,
            "uniqueItems": True}


_FIELD_VALIDATION = (
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/"
    "PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will "
    "ignore any unknown fields that are silently dropped from the object, and will ignore all "
    "but the last duplicate field that the decoder encounters. - Warn: This will send a "
    "warning via the standard warning response header for each unknown field that is dropped "
    "from the object, and for each duplicate field that is encountered. - Strict: This will "
    "fail the request with a BadRequest error if any unknown fields would be dropped from the "
    "object, or if any duplicate fields are present. The error returned from the server will "
    "contain all unknown and duplicate fields encountered."
)


def _write_params(v3: bool, patch: bool = False) -> list[Schema]:
    params = [
        _query("dryRun", "When present, indicates that modifications should not be persisted.",
               v3=v3),
        _query("fieldManager", "fieldManager is a name associated with the actor or entity "
               "that is making these changes.", v3=v3),
        _query("fieldValidation", _FIELD_VALIDATION, v3=v3),
    ]
    if patch:
        params.append(_query("force", "Force is going to \"force\" Apply requests.", "boolean",
                             v3=v3))
    return params


def _operation(resource: Resource, action: str, verb_word: str, response: str, v3: bool,
               params: list[Schema], body: str | None = None,
               body_types: Iterable[str] = ("application/json",), suffix: str = "") -> Schema:
    kind = resource.kind
    scope = "Namespaced" if resource.namespaced else ""
    group_part = "".join(part.capitalize() for part in (resource.group or "core").split(".")[:1])
    op_id = f"{verb_word}{group_part}{resource.version.capitalize()}{scope}{kind}{suffix}"
    operation: Schema = {
        "description": f"{verb_word} {'the specified ' if action != 'list' else ''}{kind}",
        "operationId": op_id,
        "tags": [f"{resource.group or 'core'}_{resource.version}"],
        "parameters": list(params),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": resource.gvk,
    }
    ok_schema = {"$ref": _ref(response, v3)}
    if v3:
        operation["responses"] = {"200": {"description": "OK", "content": {
            "application/json": {"schema": ok_schema},
            "application/yaml": {"schema": ok_schema},
        }}, "401": {"description": "Unauthorized"}}
        if body:
            operation["requestBody"] = {"required": True, "content": {
                media: {"schema": {"$ref": _ref(body, v3)}} for media in body_types}}
    else:
        operation["consumes"] = list(body_types)
        operation["produces"] = ["application/json", "application/yaml"]
        operation["schemes"] = ["https"]
        operation["responses"] = {"200": {"description": "OK", "schema": ok_schema},
                                  "401": {"description": "Unauthorized"}}
        if body:
            operation["parameters"].insert(0, {"name": "body", "in": "body", "required": True,
                                               "schema": {"$ref": _ref(body, v3)}})
    return operation


def _path_param(name: str, description: str, v3: bool) -> Schema:
    if v3:
        return {"name": name, "in": "path", "description": description, "required": True,
                "schema": {"type": "string", "uniqueItems": True}}
    return {"name": name, "in": "path", "description": description, "required": True,
            "type": "string", "uniqueItems": True}


def _resource_paths(resource: Resource, list_definition: str | None, v3: bool) -> dict[str, Schema]:
    prefix = "/" + resource.group_version_path
    if resource.namespaced:
        prefix += "/namespaces/{namespace}"
    collection = f"{prefix}/{resource.plural}"
    item = collection + "/{name}"
    common = [_query("pretty", "If 'true', then the output is pretty printed.", v3=v3)]
    if resource.namespaced:
        common.insert(0, _path_param("namespace", "object name and auth scope, such as for "
                                     "teams and projects", v3))
    name_param = _path_param("name", f"name of the {resource.kind}", v3)
    patch_types = list(_PATCH_TYPES)
    if resource.strategic_merge:
        patch_types.insert(2, _STRATEGIC_MERGE)
    verbs = set(resource.verbs)
    definition = resource.definition
    paths: dict[str, Schema] = {}

    collection_ops: Schema = {}
    if "list" in verbs and list_definition:
        collection_ops["get"] = _operation(resource, "list", "list", list_definition, v3, [])
    if "create" in verbs:
        collection_ops["post"] = _operation(resource, "post", "create", definition, v3,
                                            _write_params(v3), body=definition)
    if "deletecollection" in verbs:
        collection_ops["delete"] = _operation(resource, "deletecollection", "deletecollection",
                                              _STATUS, v3, [], body=_DELETE_OPTIONS,
                                              suffix="Collection")
    if collection_ops:
        paths[collection] = {**collection_ops, "parameters": common}

    item_ops: Schema = {}
    if "get" in verbs:
        item_ops["get"] = _operation(resource, "get", "read", definition, v3, [])
    if "update" in verbs:
        item_ops["put"] = _operation(resource, "put", "replace", definition, v3,
                                     _write_params(v3), body=definition)
    if "patch" in verbs:
        item_ops["patch"] = _operation(resource, "patch", "patch", definition, v3,
                                       _write_params(v3, patch=True), body=_PATCH,
                                       body_types=patch_types)
    if "delete" in verbs:
        item_ops["delete"] = _operation(resource, "delete", "delete", _STATUS, v3, [],
                                        body=_DELETE_OPTIONS)
    if item_ops:
        paths[item] = {**item_ops, "parameters": [name_param, *common]}

    if "status" in resource.subresources:
        status_ops = {
            "get": _operation(resource, "get", "read", definition, v3, [], suffix="Status"),
            "put": _operation(resource, "put", "replace", definition, v3, _write_params(v3),
                              body=definition, suffix="Status"),
            "patch": _operation(resource, "patch", "patch", definition, v3,
                                _write_params(v3, patch=True), body=_PATCH,
                                body_types=patch_types, suffix="Status"),
        }
        paths[item + "/status"] = {**status_ops, "parameters": [name_param, *common]}
    return paths


# ---- documents ------------------------------------------------------------------------

def definitions_closure(names: Iterable[str], definitions: dict[str, Schema]) -> dict[str, Schema]:
    """The named definitions and everything they reference."""
    selected: dict[str, Schema] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in selected or name not in definitions:
            continue
        selected[name] = definitions[name]
        pending.extend(referenced_definitions(definitions[name]))
    return selected


def referenced_definitions(node: Any) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[-1])
            elif key != "properties":
                found.extend(referenced_definitions(value))
            else:
                for sub in value.values():
                    found.extend(referenced_definitions(sub))
    elif isinstance(node, list):
        for item in node:
            found.extend(referenced_definitions(item))
    return found


def _list_definition_name(resource: Resource, definitions: dict[str, Schema]) -> str | None:
    candidate = resource.definition + "List"
    return candidate if candidate in definitions else None


def _info() -> Schema:
    return {"title": "Kubernetes", "version": kubernetes_version()}


def build_v2(crds: list[dict[str, Any]]) -> Schema:
    """The Swagger 2.0 document of everything served."""
    definitions = dict(builtin_definitions())
    for crd in crds:
        spec = crd["spec"]
        for version in _crd_versions(crd):
            name = definition_name(spec["group"], version["name"], spec["names"]["kind"])
            definitions[name] = _crd_kind_schema(crd, version, v3=False)
            definitions[name + "List"] = _crd_list_schema(crd, version, v3=False)
    paths: dict[str, Schema] = {}
    for resource in _builtin_resources() + _crd_resources(crds):
        paths.update(_resource_paths(resource, _list_definition_name(resource, definitions),
                                     v3=False))
    return {"swagger": "2.0", "info": _info(), "paths": paths, "definitions": definitions,
            "securityDefinitions": {"BearerToken": {
                "description": "Bearer Token authentication", "type": "apiKey",
                "name": "authorization", "in": "header"}},
            "security": [{"BearerToken": []}]}


def build_v3(crds: list[dict[str, Any]]) -> dict[str, Schema]:
    """OpenAPI 3.0 documents by group-version path (`api/v1`, `apis/kadence.dev/v1alpha1`)."""
    v2_definitions = builtin_definitions()
    crd_schemas: dict[str, Schema] = {}
    for crd in crds:
        spec = crd["spec"]
        for version in _crd_versions(crd):
            name = definition_name(spec["group"], version["name"], spec["names"]["kind"])
            crd_schemas[name] = _crd_kind_schema(crd, version, v3=True)
            crd_schemas[name + "List"] = _crd_list_schema(crd, version, v3=True)
    by_group_version: dict[str, list[Resource]] = {}
    for resource in _builtin_resources() + _crd_resources(crds):
        by_group_version.setdefault(resource.group_version_path, []).append(resource)
    documents = {}
    everything = {**v2_definitions, **crd_schemas}
    for gv_path, resources in sorted(by_group_version.items()):
        paths: dict[str, Schema] = {}
        roots = [_STATUS, _DELETE_OPTIONS, _PATCH]
        for resource in resources:
            list_name = _list_definition_name(resource, everything)
            paths.update(_resource_paths(resource, list_name, v3=True))
            roots.append(resource.definition)
            if list_name:
                roots.append(list_name)
        schemas = {}
        for name, schema in sorted(definitions_closure(roots, everything).items()):
            schemas[name] = schema if name in crd_schemas else _builtin_v3_schema(name, schema)
        documents[gv_path] = {
            "openapi": "3.0.0", "info": _info(), "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {"BearerToken": {
                "type": "apiKey", "description": "Bearer Token authentication",
                "name": "authorization", "in": "header"}}},
            "security": [{"BearerToken": []}],
        }
    return documents


# ---- serving --------------------------------------------------------------------------

def crd_list_hash(crds: list[dict[str, Any]]) -> str:
    """Changes whenever a CRD's names or served schemas change (not its status)."""
    relevant = sorted(
        (json.dumps({"name": (crd.get("metadata") or {}).get("name"), "spec": crd.get("spec")},
                    sort_keys=True) for crd in crds))
    return hashlib.sha256("\n".join(relevant).encode()).hexdigest()


class _Documents:
    """Serialized documents, rebuilt only when the CRD list's hash changes."""

    def __init__(self, crds: list[dict[str, Any]]) -> None:
        self._v2_document = build_v2(crds)
        self.v2 = json.dumps(self._v2_document, separators=(",", ":")).encode()
        self.v2_etag = hashlib.sha512(self.v2).hexdigest()[:64].upper()
        self._v2_protobuf: bytes | None = None
        self.v3: dict[str, bytes] = {}
        self.v3_hashes: dict[str, str] = {}
        for gv_path, document in build_v3(crds).items():
            body = json.dumps(document, separators=(",", ":")).encode()
            self.v3[gv_path] = body
            self.v3_hashes[gv_path] = hashlib.sha512(body).hexdigest()[:128].upper()
        self.v3_index = json.dumps({"paths": {
            gv_path: {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={digest}"}
            for gv_path, digest in self.v3_hashes.items()
        }}).encode()


    @property
    def v2_protobuf(self) -> bytes:
        """The v2 document as gnostic protobuf, encoded on first use."""
        if self._v2_protobuf is None:
            self._v2_protobuf = protobuf_v2.document(self._v2_document)
        return self._v2_protobuf


class OpenAPICache:
    def __init__(self, get_crds: Callable[[], list[dict[str, Any]]]) -> None:
        self._get_crds = get_crds
        self._key: str | None = None
        self._documents: _Documents | None = None
        self._lock = threading.Lock()

    def documents(self) -> _Documents:
        crds = [crd for crd in self._get_crds() if _is_servable(crd)]
        key = crd_list_hash(crds)
        with self._lock:
            if key != self._key or self._documents is None:
                self._documents = _Documents(crds)
                self._key = key
            return self._documents


def _is_servable(crd: dict[str, Any]) -> bool:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    return bool(spec.get("group") and names.get("kind") and names.get("plural")
                and not (crd.get("metadata") or {}).get("deletionTimestamp"))


_PROTOBUF = "application/com.github.proto-openapi.spec"


def _negotiate(request: web.Request) -> str | None:
    """"json", "protobuf" (in the client's order of preference) or None (406)."""
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return "json"
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in protobuf_v2.ACCEPTED_MEDIA_TYPES:
            return "protobuf"
        if media in ("application/json", "*/*", "application/*") or media.endswith("+json"):
            return "json"
    return None


def _accepts_json(request: web.Request) -> bool:
    return _negotiate(request) == "json"


def _not_acceptable(request: web.Request) -> web.Response:
    body = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "only the following media types are accepted: application/json, "
                   + protobuf_v2.MEDIA_TYPE,
        "reason": "NotAcceptable", "code": 406,
    }
    return web.json_response(body, status=406)


def openapi_routes(get_crds: Callable[[], list[dict[str, Any]]]) -> list[web.RouteDef]:
    """Routes for `/openapi/v2`, `/openapi/v3` and `/openapi/v3/{api/v1|apis/g/v}`."""
    cache = OpenAPICache(get_crds)

    async def v2(request: web.Request) -> web.StreamResponse:
        form = _negotiate(request)
        if form is None:
            return _not_acceptable(request)
        documents = cache.documents()
        etag = f'"{documents.v2_etag}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        headers = {"ETag": etag, "Vary": "Accept"}
        if form == "protobuf":
            return web.Response(body=documents.v2_protobuf, headers={
                **headers, "Content-Type": protobuf_v2.MEDIA_TYPE})
        return web.Response(body=documents.v2, content_type="application/json", headers=headers)

    async def v3_index(request: web.Request) -> web.StreamResponse:
        return web.Response(body=cache.documents().v3_index, content_type="application/json")

    async def v3_group_version(request: web.Request) -> web.StreamResponse:
        if not _accepts_json(request):
            return _not_acceptable(request)
        documents = cache.documents()
        gv_path = request.match_info["path"].strip("/")
        body = documents.v3.get(gv_path)
        if body is None:
            return web.Response(status=404, text="404 page not found\n")
        digest = documents.v3_hashes[gv_path]
        asked = request.query.get("hash")
        if asked and asked != digest:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{gv_path}?hash={digest}")
        headers = {"ETag": f'"{digest}"', "Vary": "Accept"}
        if asked:
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = "Thu, 01 Jan 2099 00:00:00 GMT"
        else:
            headers["Cache-Control"] = "no-cache, private"
        return web.Response(body=body, content_type="application/json", headers=headers)

    return [
        web.get("/openapi/v2", v2),
        web.get("/openapi/v3", v3_index),
        web.get("/openapi/v3/{path:.+}", v3_group_version),
    ]
