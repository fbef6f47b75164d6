"""HTTP routing of the Kubernetes REST paths onto the Api, plus watches, tables and logs."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import logging
import pathlib
import random
from typing import Any

import orjson
import yaml
from aiohttp import web

from . import discovery, logs, patching, persistence, protobuf, security, selectors, tables
from .api import Api, manager_from_user_agent
from .errors import ApiError, bad_request, gone, status_object
from .requests import RequestCounter
from .resources import REVIEW_KEYS, ResourceType
from .store import Watcher

try:
    from . import schema
except ImportError:  # pragma: no cover - only while the schema package is being written
    schema = None
if schema is not None and not hasattr(schema, "openapi_routes"):  # pragma: no cover
    schema = None

log = logging.getLogger(__name__)

API_KEY = web.AppKey("kadence_api", Api)
STATE_DIR_KEY = web.AppKey("kadence_state_dir", pathlib.Path)

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
BOOKMARK_INTERVAL = 15.0
DISCONNECT_CHECK = 5.0  # how often an idle watch checks that its client is still there
SNAPSHOT_INTERVAL = 2.0
CONTROLLER_INTERVAL = 1.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type=JSON)


def _with_warnings(response: web.Response, warnings: list[str]) -> web.Response:
    for warning in warnings:
        response.headers.add("Warning", warning)
    return response


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), error.code)


@dataclasses.dataclass
class Target:
    """What a resource path names."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool


def parse_resource_path(path: str) -> Target | None:
    """Split `/api/v1/namespaces/ns/pods/name/log` and `/apis/g/v/...` paths; None if the
    path names no resource at all."""
    segments = [s for s in path.split("/") if s]
    if not segments:
        return None
    if segments[0] == "api" and len(segments) >= 3:
        group, version, rest = "", segments[1], segments[2:]
    elif segments[0] == "apis" and len(segments) >= 4:
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        return None
    legacy_watch = False
    if rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
        if not rest:
            return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    return Target(group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None,
                  rest[2] if len(rest) > 2 else None, legacy_watch)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return True
    return False


def _check_accept(request: web.Request) -> None:
    accept = request.headers.get("Accept", "")
    if not accept:
        return
    media = [p.split(";")[0].strip() for p in accept.split(",")]
    if any(m in (JSON, "*/*", "application/*", "application/yaml", "") for m in media):
        return
    if all(m == PROTOBUF or m.startswith("application/vnd.kubernetes.protobuf") or m == "application/cbor"
           for m in media):
        raise ApiError(406, f"only the following media types are accepted: {JSON}, "
                            "application/yaml, application/json;stream=watch")


async def _read_body(request: web.Request) -> Any:
    content_type = request.headers.get("Content-Type", JSON).split(";")[0].strip()
    raw = await request.read()
    if content_type in ("application/yaml", "application/x-yaml"):
        try:
            return yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise bad_request(f"error decoding YAML: {error}") from None
    if content_type == PROTOBUF:
        return protobuf.decode_object(raw)
    if content_type not in (JSON, ""):
        raise ApiError(415, f"the body of the request was in an unknown format - accepted media "
                            f"types include: {JSON}, application/yaml")
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"error decoding JSON body: {error}") from None


def _encode_continue(resource_version: int, after: tuple[str, str]) -> str:
    token = dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": list(after)})
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["rv"]), (data["start"][0], data["start"][1])
    except (ValueError, KeyError, TypeError, IndexError):
        raise bad_request("continue key is not valid: invalid continue token") from None


class Handlers:
    def __init__(self, api: Api, state_dir: pathlib.Path) -> None:
        self.api = api
        self.state_dir = state_dir
        self.closing = asyncio.Event()

    # ---- discovery and health --------------------------------------------------------------

    async def core_versions(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(core=True)
        host = request.host or "127.0.0.1"
        return json_response(discovery.core_versions(host))

    async def group_list(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return self._aggregated(core=False)
        return json_response(discovery.group_list(self.api.registry))

    def _aggregated(self, core: bool) -> web.Response:
        return web.Response(body=dumps(discovery.aggregated(self.api.registry, core)),
                            headers={"Content-Type": discovery.AGGREGATED_MEDIA_TYPE})

    async def group(self, request: web.Request) -> web.Response:
        document = discovery.group(self.api.registry, request.match_info["group"])
        if document is None:
            return error_response(ApiError(404, "the server could not find the requested "
                                                "resource", "NotFound", {}))
        return json_response(document)

    async def version(self, request: web.Request) -> web.Response:
        return json_response(discovery.version_info())

    async def health(self, request: web.Request) -> web.Response:
        if "verbose" in request.query:
            name = request.path.strip("/")
            return web.Response(text=f"[+]ping ok\n[+]etcd ok\n{name} check passed\n")
        return web.Response(text="ok")

    # ---- the resource paths ------------------------------------------------------------------

    async def resource(self, request: web.Request) -> web.StreamResponse:
        target = parse_resource_path(request.path)
        try:
            if target is None:
                raise ApiError(404, "the server could not find the requested resource",
                               "NotFound", {})
            return await self._dispatch(request, target)
        except ApiError as error:
            return error_response(error)

    async def resource_list_or_404(self, request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        version = request.match_info["version"]
        document = discovery.resource_list(self.api.registry, group, version)
        if document is None:
            return error_response(ApiError(404, "the server could not find the requested "
                                                "resource", "NotFound", {}))
        return json_response(document)

    async def _dispatch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rtype = self.api.resource(target.group, target.version, target.plural)
        if target.namespace is not None and not rtype.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        method = request.method
        if target.subresource is not None:
            return await self._subresource(request, rtype, target)
        watching = target.legacy_watch or _flag(request, "watch")
        if target.name is None:
            if method == "GET":
                if watching:
                    self._require_verb(rtype, "watch")
                    return await self._watch(request, rtype, target.namespace, None)
                self._require_verb(rtype, "list")
                return self._list(request, rtype, target.namespace)
            if method == "POST":
                self._require_verb(rtype, "create")
                if rtype.namespaced and target.namespace is None:
                    raise ApiError(405, f"the server does not allow this method on the requested "
                                        f"resource")
                return await self._create(request, rtype, target.namespace)
            if method == "DELETE":
                self._require_verb(rtype, "deletecollection")
                return await self._delete_collection(request, rtype, target.namespace)
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if rtype.namespaced and target.namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        if method == "GET":
            if watching:
                self._require_verb(rtype, "watch")
                return await self._watch(request, rtype, target.namespace, target.name)
            self._require_verb(rtype, "get")
            obj = self.api.get(rtype, target.namespace, target.name)
            if _wants_table(request):
                return json_response(tables.table(
                    rtype, [obj], include_object=request.query.get("includeObject", "Metadata"),
                    resource_version=obj["metadata"]["resourceVersion"]))
            return json_response(obj)
        if method == "PUT":
            self._require_verb(rtype, "update")
            validation = self._field_validation(request)
            body = await _read_body(request)
            warnings: list[str] = []
            obj = self.api.update(rtype, target.namespace, target.name, body,
                                  dry_run=self._dry_run(request),
                                  field_manager=self._manager(request),
                                  field_validation=validation, warnings=warnings)
            return _with_warnings(json_response(obj), warnings)
        if method == "PATCH":
            self._require_verb(rtype, "patch")
            return await self._patch(request, rtype, target, None)
        if method == "DELETE":
            self._require_verb(rtype, "delete")
            return await self._delete(request, rtype, target.namespace, target.name)
        raise ApiError(405, "the server does not allow this method on the requested resource")

    @staticmethod
    def _require_verb(rtype: ResourceType, verb: str) -> None:
        if verb not in rtype.verbs:
            raise ApiError(405, "the server does not allow this method on the requested resource")

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise bad_request(f"dryRun: Unsupported value: \"{value}\": supported values: "
                                  "\"All\"")
        return bool(values)

    @staticmethod
    def _manager(request: web.Request) -> str:
        return request.query.get("fieldManager") or manager_from_user_agent(
            request.headers.get("User-Agent"))

    @staticmethod
    def _field_validation(request: web.Request) -> str:
        value = request.query.get("fieldValidation") or "Warn"
        if value not in ("Ignore", "Warn", "Strict"):
            raise bad_request(f"fieldValidation: Unsupported value: \"{value}\": supported "
                              "values: \"Ignore\", \"Strict\", \"Warn\"")
        return value

    async def _create(self, request: web.Request, rtype: ResourceType,
                      namespace: str | None) -> web.Response:
        validation = self._field_validation(request)
        body = await _read_body(request)
        if rtype.key in REVIEW_KEYS:
            return json_response(review_answer(rtype, body), 201)
        warnings: list[str] = []
        obj = self.api.create(rtype, namespace, body, dry_run=self._dry_run(request),
                              field_manager=self._manager(request), field_validation=validation,
                              warnings=warnings)
        return _with_warnings(json_response(obj, 201), warnings)

    async def _patch(self, request: web.Request, rtype: ResourceType, target: Target,
                     subresource: str | None) -> web.Response:
        validation = self._field_validation(request)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        raw = await request.read()
        warnings: list[str] = []
        status, obj = self.api.patch(
            rtype, target.namespace, target.name or "", content_type, raw,
            subresource=subresource, dry_run=self._dry_run(request),
            field_manager=request.query.get("fieldManager"), force=_flag(request, "force"),
            user_agent=request.headers.get("User-Agent"), field_validation=validation,
            warnings=warnings)
        return _with_warnings(json_response(obj, status), warnings)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        body = None
        if request.can_read_body:
            body = await _read_body(request)
        if isinstance(body, dict):
            options.update(body)
        query = request.query
        if "propagationPolicy" in query:
            options["propagationPolicy"] = query["propagationPolicy"]
        if "gracePeriodSeconds" in query:
            try:
                options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
            except ValueError:
                raise bad_request("gracePeriodSeconds must be an integer") from None
        if "orphanDependents" in query:
            options["orphanDependents"] = _flag(request, "orphanDependents")
        if self._dry_run(request):
            options["dryRun"] = ["All"]
        return options

    async def _delete(self, request: web.Request, rtype: ResourceType, namespace: str | None,
                      name: str) -> web.Response:
        options = await self._delete_options(request)
        status, obj = self.api.delete(rtype, namespace, name, options)
        # Gone at once: custom resources and pods answer with the deleted object, other
        # built-ins with a Success Status (their stores do not return deleted objects).
        # Still waiting (finalizers, grace period): 202 with the object.
        if status == 200 and rtype.builtin and rtype.key != ("", "pods"):
            return json_response(status_object(200, "", details={
                "name": name, "group": rtype.group, "kind": rtype.plural,
                "uid": obj["metadata"].get("uid")}), 200)
        return json_response(obj, status)

    async def _delete_collection(self, request: web.Request, rtype: ResourceType,
                                 namespace: str | None) -> web.Response:
        options = await self._delete_options(request)
        matches = self._filter(request, rtype)
        deleted = []
        for obj in self.api.store.list(rtype.key, namespace):
            if not matches(obj):
                continue
            try:
                _, final = self.api.delete(rtype, obj["metadata"].get("namespace"),
                                           obj["metadata"]["name"], options)
                deleted.append(final)
            except ApiError as error:
                if error.code != 404:
                    raise
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.group_version,
                              "metadata": {"resourceVersion": str(self.api.store.resource_version)},
                              "items": [self.api.present(rtype, o) for o in deleted]})

    # ---- list and watch ------------------------------------------------------------------

    def _filter(self, request: web.Request, rtype: ResourceType):
        labels = selectors.parse_label_selector(request.query.get("labelSelector"))
        custom_fields = None
        if not rtype.builtin:
            crd = self.api.crd_for(rtype)
            version = next((v for v in (crd or {}).get("spec", {}).get("versions", [])
                            if v.get("name") == rtype.version), {})
            custom_fields = {f.get("jsonPath", "").lstrip(".")
                             for f in version.get("selectableFields") or []}
        fields = selectors.parse_field_selector(request.query.get("fieldSelector"), rtype.group,
                                                rtype.plural, custom_fields)
        return selectors.object_filter(labels, fields)

    def _list(self, request: web.Request, rtype: ResourceType,
              namespace: str | None) -> web.Response:
        _check_accept(request)
        matches = self._filter(request, rtype)
        store = self.api.store
        list_rv = store.resource_version
        start_after: tuple[str, str] | None = None
        token = request.query.get("continue")
        if token:
            list_rv, start_after = _decode_continue(token)
            if list_rv < store.oldest_watchable_version():
                raise gone("The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue "
                           "parameter, or use the continue token in this response to retrieve "
                           "the remainder of the results. Continuing with the provided token "
                           "results in an inconsistent list - objects that were created, "
                           "modified, or deleted between the time the first chunk was returned "
                           "and now may show up in the list.")
        try:
            limit = int(request.query.get("limit") or 0)
        except ValueError:
            raise bad_request("limit must be an integer") from None
        items = []
        remaining = 0
        next_token = ""
        for obj in store.list(rtype.key, namespace):
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if start_after is not None and key <= start_after:
                continue
            if not matches(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
        if remaining:
            last = items[-1]["metadata"]
            next_token = _encode_continue(list_rv, (last.get("namespace", ""), last["name"]))
        if _wants_table(request):
            return json_response(tables.table(
                rtype, items, include_object=request.query.get("includeObject", "Metadata"),
                resource_version=str(list_rv), continue_token=next_token))
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if next_token:
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = remaining
        return json_response({"kind": rtype.list_kind, "apiVersion": rtype.group_version,
                              "metadata": metadata,
                              "items": [self.api.present(rtype, o) for o in items]})

    async def _watch(self, request: web.Request, rtype: ResourceType, namespace: str | None,
                     name: str | None) -> web.StreamResponse:
        matches = self._filter(request, rtype)
        if name is not None:
            by_name = matches
            matches = lambda obj: obj["metadata"]["name"] == name and by_name(obj)  # noqa: E731
        rv_text = request.query.get("resourceVersion", "")
        send_initial = request.query.get("sendInitialEvents", "").lower() == "true"
        bookmarks = _flag(request, "allowWatchBookmarks")
        as_table = _wants_table(request)
        include = request.query.get("includeObject", "Metadata")
        try:
            timeout = float(request.query["timeoutSeconds"]) if "timeoutSeconds" in request.query \
                else random.uniform(1800, 3600)
        except ValueError:
            raise bad_request("timeoutSeconds must be a number") from None
        store = self.api.store
        watcher = Watcher(rtype.key, namespace, matches)
        initial: list[dict[str, Any]] = []
        error: ApiError | None = None
        if rv_text in ("", "0") or send_initial:
            initial = [o for o in store.list(rtype.key, namespace) if matches(o)]
            store.subscribe(watcher, None)
        else:
            try:
                since = int(rv_text)
            except ValueError:
                raise bad_request(f"invalid resource version: {rv_text}") from None
            try:
                store.subscribe(watcher, since)
            except ApiError as too_old:
                error = too_old
        initial_rv = store.resource_version

        response = web.StreamResponse(headers={"Content-Type": JSON,
                                               "Transfer-Encoding": "chunked"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        def frame(kind: str, obj: dict[str, Any]) -> bytes:
            if as_table and kind != "BOOKMARK" and kind != "ERROR":
                payload = tables.table(rtype, [self.api.present(rtype, obj)],
                                       include_object=include,
                                       resource_version=obj["metadata"]["resourceVersion"])
            else:
                payload = self.api.present(rtype, obj) if kind not in ("BOOKMARK", "ERROR") else obj
            return dumps({"type": kind, "object": payload}) + b"\n"

        def bookmark(rv: int, annotations: dict[str, str] | None = None) -> bytes:
            metadata: dict[str, Any] = {"resourceVersion": str(rv)}
            if annotations:
                metadata["annotations"] = annotations
            return frame("BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.group_version,
                                      "metadata": metadata})

        try:
            if error is not None:
                await response.write(frame("ERROR", status_object(410, error.message,
                                                                  "Expired")))
                return response
            for obj in initial:
                await response.write(frame("ADDED", obj))
            if send_initial and bookmarks:
                await response.write(bookmark(initial_rv, {INITIAL_EVENTS_END: "true"}))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            last_rv = initial_rv
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0 or self.closing.is_set():
                    break
                wait = min(remaining, BOOKMARK_INTERVAL if bookmarks else DISCONNECT_CHECK)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
                except asyncio.TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break  # the client went away: stop queueing events for it
                    if bookmarks and deadline - loop.time() > 0:
                        await response.write(bookmark(max(last_rv, store.resource_version)))
                    continue
                if item is None:
                    break
                kind, obj = item
                last_rv = int(obj["metadata"]["resourceVersion"])
                await response.write(frame(kind, obj))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            store.unsubscribe(watcher)
        return response

    def close_watches(self) -> None:
        self.closing.set()
        self.api.store.close_watchers()

    # ---- subresources --------------------------------------------------------------------

    async def _subresource(self, request: web.Request, rtype: ResourceType,
                           target: Target) -> web.StreamResponse:
        sub = target.subresource
        if sub not in rtype.subresources and not (
                sub == "finalize" and rtype.key == ("", "namespaces")):
            raise ApiError(404, "the server could not find the requested resource")
        if rtype.namespaced and target.namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        method = request.method
        if sub == "log":
            if method != "GET":
                raise ApiError(405, "the server does not allow this method on the requested "
                                    "resource")
            return await self._log(request, target)
        if sub == "scale":
            return await self._scale(request, rtype, target)
        if method == "GET" and sub == "status":
            return json_response(self.api.get(rtype, target.namespace, target.name))
        if method == "PUT":
            body = await _read_body(request)
            obj = self.api.update(rtype, target.namespace, target.name, body, subresource=sub,
                                  dry_run=self._dry_run(request),
                                  field_manager=self._manager(request))
            return json_response(obj)
        if method == "PATCH" and sub == "status":
            return await self._patch(request, rtype, target, "status")
        raise ApiError(405, "the server does not allow this method on the requested resource")

    async def _scale(self, request: web.Request, rtype: ResourceType,
                     target: Target) -> web.Response:
        obj = self.api.get(rtype, target.namespace, target.name)
        if request.method == "GET":
            return json_response(self._scale_of(rtype, obj))
        if request.method == "PUT":
            scale = await _read_body(request)
        elif request.method == "PATCH":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            document = orjson.loads(await request.read() or b"null")
            current = self._scale_of(rtype, obj)
            if content_type == "application/json-patch+json":
                scale = patching.json_patch(current, document)
            else:
                scale = patching.merge_patch(current, document)
        else:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        replicas = ((scale or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise bad_request("spec.replicas must be a non-negative integer")
        path = self._replicas_path(rtype)
        new = orjson.loads(dumps(obj))
        node = new
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = replicas
        updated = self.api.update(rtype, target.namespace, target.name, new,
                                  field_manager=self._manager(request))
        return json_response(self._scale_of(rtype, updated))

    def _replicas_path(self, rtype: ResourceType) -> list[str]:
        if rtype.builtin:
            return ["spec", "replicas"]
        crd = self.api.crd_for(rtype) or {}
        version = next((v for v in crd.get("spec", {}).get("versions", [])
                        if v.get("name") == rtype.version), {})
        path = ((version.get("subresources") or {}).get("scale") or {}).get(
            "specReplicasPath", ".spec.replicas")
        return path.lstrip(".").split(".")

    def _scale_of(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        spec_replicas: Any = obj
        for part in self._replicas_path(rtype):
            spec_replicas = (spec_replicas or {}).get(part) if isinstance(spec_replicas, dict) \
                else None
        selector = (obj.get("spec") or {}).get("selector")
        selector_text = tables._selector_text(selector) if isinstance(selector, dict) else ""
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: obj["metadata"].get(k) for k in
                             ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                             if obj["metadata"].get(k) is not None},
                "spec": {"replicas": spec_replicas or 0},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": selector_text}}

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        pod = self.api.get(self.api.resource("", "v1", "pods"), target.namespace, target.name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        init = [c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []]
        container = request.query.get("container")
        if not container:
            if len(containers) != 1:
                raise bad_request(f"a container name must be specified for pod {target.name}, "
                                  f"choose one of: [{' '.join(containers)}]"
                                  + (f" or one of the init containers: [{' '.join(init)}]"
                                     if init else ""))
            container = containers[0]
        elif container not in containers + init:
            raise bad_request(f"container {container} is not valid for pod {target.name}")
        previous = _flag(request, "previous")
        path = logs.log_path(self.state_dir, target.namespace or "", target.name or "",
                             container, previous)
        if not path.exists():
            if previous:
                raise bad_request(f'previous terminated container "{container}" in pod '
                                  f'"{target.name}" not found')
            raise bad_request(f'container "{container}" in pod "{target.name}" is waiting to '
                              f'start: ContainerCreating')
        try:
            tail_lines = int(request.query["tailLines"]) if "tailLines" in request.query else None
            limit_bytes = int(request.query["limitBytes"]) if "limitBytes" in request.query \
                else None
        except ValueError:
            raise bad_request("tailLines and limitBytes must be integers") from None
        timestamps = _flag(request, "timestamps")
        data = logs.tail(path.read_bytes(), tail_lines)
        if timestamps:
            data = logs.with_timestamps(data, logs.modified_at(path))
        if not _flag(request, "follow"):
            return web.Response(body=logs.limit(data, limit_bytes), content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(data)
        offset = path.stat().st_size
        pod_type = self.api.resource("", "v1", "pods")
        try:
            while not self.closing.is_set():
                await asyncio.sleep(0.2)
                size = path.stat().st_size if path.exists() else 0
                if size > offset:
                    with open(path, "rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read(size - offset)
                    offset = size
                    await response.write(logs.with_timestamps(chunk, logs.modified_at(path))
                                         if timestamps else chunk)
                    continue
                current = self.api.store.get(pod_type.key, target.namespace or "",
                                             target.name or "")
                if current is None or current["metadata"]["uid"] != pod["metadata"]["uid"]:
                    break
                if _container_finished(current, container):
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


def review_answer(rtype: ResourceType, body: Any) -> dict[str, Any]:
    """Every authenticated client (it holds the sandbox's token) may do everything: every
    review says allowed. A SelfSubjectReview names the token's one user, SANDBOX_USER."""
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON object")
    answer = {**body, "apiVersion": rtype.group_version, "kind": rtype.kind,
              "metadata": {**(body.get("metadata") or {}),
                           "creationTimestamp": None}}
    if rtype.plural == "selfsubjectreviews":
        answer["status"] = {"userInfo": dict(security.SANDBOX_USER)}
    elif rtype.plural == "selfsubjectaccessreviews":
        answer["status"] = {"allowed": True,
                            "reason": "the Kadence sandbox authorizes every request"}
    else:
        answer["status"] = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                               "resources": ["*"]}],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                            "incomplete": False}
    return answer


def _container_finished(pod: dict[str, Any], container: str) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses")
                                                          or []):
        if entry.get("name") == container and "terminated" in (entry.get("state") or {}):
            return status.get("phase") in ("Succeeded", "Failed")
    return False


EVENT_EXPIRY_INTERVAL = 60.0


async def _controller_loop(api: Api) -> None:
    """The in-process controllers: garbage collector, namespace and CRD cleanup, pod grace,
    default service accounts, event expiry."""
    assert api.work_pending is not None
    loop = asyncio.get_running_loop()
    next_expiry = loop.time()
    while True:
        try:
            await asyncio.wait_for(api.work_pending.wait(), timeout=CONTROLLER_INTERVAL)
        except asyncio.TimeoutError:
            pass
        api.work_pending.clear()
        await asyncio.sleep(0)  # let the request that caused the work answer first
        try:
            for _ in range(10):  # settle cascades without waiting a full interval each step
                before = api.store.resource_version
                api.collect_garbage()
                api.progress_deletions()
                api.create_default_service_accounts()
                if api.store.resource_version == before:
                    break
            if loop.time() >= next_expiry:
                next_expiry = loop.time() + EVENT_EXPIRY_INTERVAL
                api.expire_events(datetime.datetime.now(datetime.timezone.utc))
        except Exception:  # noqa: BLE001 - a controller bug must not stop the server
            log.exception("sandbox controllers failed; retrying")


async def _snapshot_loop(api: Api, state_dir: pathlib.Path, interval: float) -> None:
    """Every `interval` seconds, write what changed: a crash loses at most the writes of the
    last interval (plus the time one snapshot takes to write)."""
    while True:
        await asyncio.sleep(interval)
        if api.store.dirty:
            document = persistence.capture(api.store)
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, persistence.write, document, state_dir)
            except Exception:  # noqa: BLE001 - keep serving; the next snapshot retries
                api.store.dirty = True
                log.exception("could not write the API server snapshot")


def create_app(state_dir: pathlib.Path, watch_history: int | None = None, *, token: str,
               snapshot_interval: float = SNAPSHOT_INTERVAL) -> web.Application:
    """The API server as an aiohttp application; state is loaded from and saved to state_dir.

    Only requests with `Authorization: Bearer <token>` addressed to a loopback Host get in
    (see `security`). `watch_history` bounds how many past events a watch can resume from
    (older versions get 410 Gone); `snapshot_interval` is how often changes are written."""
    state_dir = pathlib.Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    api = Api(watch_history)
    if persistence.load(api.store, state_dir):
        api.rebuild_indexes()
    api.store.reserve = persistence.Reservation(state_dir).ensure
    api.bootstrap()
    handlers = Handlers(api, state_dir)
    counter = RequestCounter()
    app = web.Application(client_max_size=64 * 1024 * 1024,
                          middlewares=[security.middleware(token), counter.middleware()])
    app[API_KEY] = api
    app[STATE_DIR_KEY] = state_dir
    routes = [
        web.get("/api", handlers.core_versions),
        web.get("/api/", handlers.core_versions),
        web.get("/apis", handlers.group_list),
        web.get("/apis/", handlers.group_list),
        web.get("/version", handlers.version),
        web.get("/version/", handlers.version),
        web.get("/api/{version}", handlers.resource_list_or_404),
        web.get("/apis/{group}", handlers.group),
        web.get("/apis/{group}/{version}", handlers.resource_list_or_404),
    ]
    routes.append(web.get("/metrics", counter.handle))
    for probe in ("healthz", "livez", "readyz"):
        routes.append(web.get(f"/{probe}", handlers.health))
        routes.append(web.get(f"/{probe}/{{check:.*}}", handlers.health))
    if schema is not None:
        routes.extend(schema.openapi_routes(
            lambda: [c for c in api.store.list(("apiextensions.k8s.io",
                                                "customresourcedefinitions"))]))
    routes.append(web.route("*", "/api/{tail:.+}", handlers.resource))
    routes.append(web.route("*", "/apis/{tail:.+}", handlers.resource))
    app.add_routes(routes)

    async def start_background(app: web.Application) -> Any:
        api.work_pending = asyncio.Event()
        api.work_pending.set()
        tasks = [asyncio.create_task(_controller_loop(api)),
                 asyncio.create_task(_snapshot_loop(api, state_dir, snapshot_interval))]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        persistence.save(api.store, state_dir, clean=True)

    async def on_shutdown(app: web.Application) -> None:
        handlers.close_watches()

    app.cleanup_ctx.append(start_background)
    app.on_shutdown.append(on_shutdown)
    return app


def run(host: str, port: int, state_dir: pathlib.Path, token_file: pathlib.Path,
        watch_history: int | None = None, snapshot_interval: float = SNAPSHOT_INTERVAL) -> None:
    """Serve HTTPS until SIGTERM/SIGINT; the state is snapshotted on the way out. The bearer token
    is read from `token_file` (created, mode 0600, when missing); the certificate is the state
    directory's (`kadence.sandbox.tls`, created when missing)."""
    from .. import tls
    from ..kubeconfig import load_or_create_token_file

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if host not in security.LOOPBACK_HOSTS:
        raise SystemExit(f"the sandbox API server listens on loopback only (127.0.0.1, localhost, ::1), "
                         f"not {host!r}")
    token = load_or_create_token_file(pathlib.Path(token_file))
    pki = tls.load_or_create(pathlib.Path(state_dir))
    app = create_app(pathlib.Path(state_dir), watch_history, token=token, snapshot_interval=snapshot_interval)
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=5,
                ssl_context=tls.server_context(pki))
