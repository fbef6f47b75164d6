"""The API semantics: create/update/patch/delete with metadata rules, subresources,
finalizers, validation of custom resources, and CRDs that register new resource types.

Everything here runs on the event loop's thread; no method awaits, so each call is atomic.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import random
import string
import uuid
from typing import Any

import yaml

from . import gc, patching, podstatus
from .defaults import ClusterIPAllocator, apply_defaults, initial_status
from .errors import ApiError, already_exists, bad_request, conflict, invalid, not_found
from .resources import CRD_TYPE, NAMESPACE_TYPE, POD_TYPE, Registry, ResourceType
from .store import Event, Store

try:  # S2's schema package: structural validation, defaulting, pruning, CEL.
    from . import schema
except ImportError:  # pragma: no cover - only while the schema package is being written
    schema = None
if schema is not None and not hasattr(schema, "validate_custom_resource"):  # pragma: no cover
    schema = None

log = logging.getLogger(__name__)

CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
NAMESPACE_FINALIZER = "kubernetes"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
EVENT_STORES = (("", "events"), ("events.k8s.io", "events"))
EVENT_TTL_SECONDS = 3600  # kube-apiserver's --event-ttl default: events do not pile up
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC, PATCH_APPLY)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )


def manager_from_user_agent(user_agent: str | None) -> str:
    """kube-apiserver names an unnamed field manager after the User-Agent's program."""
    if not user_agent:
        return "unknown"
    return user_agent.split("/", 1)[0][:128] or "unknown"


def _qualified(rtype: ResourceType) -> str:
    return f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural


def _without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = {k: v for k, v in obj.get("metadata", {}).items()
                if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": metadata}


class Api:
    def __init__(self, history_size: int | None = None) -> None:
        self.store = Store(history_size) if history_size else Store()
        self.registry = Registry()
        self.owners = gc.OwnerIndex()
        self.deleting: set[tuple[tuple[str, str], str, str]] = set()
        self.store.add_listener(self.owners.observe)
        self.store.add_listener(self._track_deleting)
        self.store.add_listener(self._track_new_namespaces)
        self.new_namespaces: list[str] = []
        self._ip_allocator = ClusterIPAllocator()
        self.work_pending = None  # an asyncio.Event set by the server; wakes the controllers

    # ---- bootstrap ----------------------------------------------------------------------

    def bootstrap(self) -> None:
        """Create what a fresh cluster has: system namespaces, default service accounts,
        the `kubernetes` service; register the CRDs of a restored snapshot."""
        for crd in self.store.list(CRD_TYPE.key):
            if _is_established(crd):
                self.registry.register_crd(crd)
        for name in SYSTEM_NAMESPACES:
            if self.store.get(NAMESPACE_TYPE.key, "", name) is None:
                self.create(NAMESPACE_TYPE, None, {"metadata": {"name": name}},
                            field_manager="kube-apiserver")
        if self.store.get(("", "services"), "default", "kubernetes") is None:
            service_type = self.registry.get("", "v1", "services")
            self.create(service_type, "default", {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver",
                                                             "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "ports": [
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            }, field_manager="kube-apiserver")

    def rebuild_indexes(self) -> None:
        self.new_namespaces = [ns["metadata"]["name"] for ns in self.store.list(NAMESPACE_TYPE.key)]
        for store_key, obj in self.store.iter_all():
            self.owners.observe(Event(0, store_key, "ADDED", obj, None))
            self._track_deleting(Event(0, store_key, "ADDED", obj, None))

    def _track_new_namespaces(self, event: Event) -> None:
        if event.store_key == NAMESPACE_TYPE.key and event.type == "ADDED":
            self.new_namespaces.append(event.object["metadata"]["name"])
            if self.work_pending is not None:
                self.work_pending.set()

    def create_default_service_accounts(self) -> None:
        """What the service-account controller does: a `default` ServiceAccount in every
        new namespace."""
        names, self.new_namespaces = self.new_namespaces, []
        sa_type = self.registry.get("", "v1", "serviceaccounts")
        for name in names:
            namespace = self.store.get(NAMESPACE_TYPE.key, "", name)
            if namespace is None or namespace["metadata"].get("deletionTimestamp"):
                continue
            if self.store.get(sa_type.key, name, "default") is None:
                self.create(sa_type, name, {"metadata": {"name": "default"}},
                            field_manager="kube-controller-manager")

    def _track_deleting(self, event: Event) -> None:
        metadata = event.object["metadata"]
        ref = (event.store_key, metadata.get("namespace", ""), metadata["name"])
        if event.type != "DELETED" and metadata.get("deletionTimestamp"):
            self.deleting.add(ref)
        else:
            self.deleting.discard(ref)
        if self.work_pending is not None and (
            event.type == "DELETED" or metadata.get("deletionTimestamp")
        ):
            self.work_pending.set()

    # ---- lookups ------------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self.registry.get(group, version, plural)
        if rtype is None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound",
                           {})
        return rtype

    def crd_for(self, rtype: ResourceType) -> dict[str, Any] | None:
        if rtype.crd_name is None:
            return None
        return self.store.get(CRD_TYPE.key, "", rtype.crd_name)

    def present(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as served at the requested version (custom resources share storage)."""
        if obj.get("apiVersion") == rtype.group_version and obj.get("kind") == rtype.kind:
            return obj
        return {**obj, "apiVersion": rtype.group_version, "kind": rtype.kind}

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.key, namespace or "", name)
        if obj is None:
            raise not_found(rtype.group, rtype.plural, name)
        return self.present(rtype, obj)

    def _check_namespace(self, rtype: ResourceType, namespace: str | None,
                         creating: bool) -> str:
        if not rtype.namespaced:
            return ""
        if not namespace:
            raise bad_request("the server could not find the requested resource")
        ns = self.store.get(NAMESPACE_TYPE.key, "", namespace)
        if ns is None:
            raise not_found("", "namespaces", namespace)
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"{rtype.plural} \"\" is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                "Forbidden",
                {"name": "", "group": rtype.group, "kind": rtype.plural,
                 "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} "
                             "is being terminated", "field": "metadata.namespace"}]},
            )
        return namespace

    # ---- create -------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, *,
               dry_run: bool = False, field_manager: str = "unknown",
               managed_fields: list[dict[str, Any]] | None = None,
               field_validation: str = "Warn",
               warnings: list[str] | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        self._check_kind(rtype, body)
        metadata = dict(body.get("metadata") or {})
        if rtype.namespaced:
            body_ns = metadata.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            namespace = self._check_namespace(rtype, namespace or body_ns, creating=True)
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if not metadata.get("name"):
            if metadata.get("generateName"):
                metadata["name"] = self._generated_name(rtype, namespace or "",
                                                        metadata["generateName"])
            else:
                raise invalid(rtype.group, rtype.kind, "", [{
                    "reason": "FieldValueRequired", "field": "metadata.name",
                    "message": "Required value: name or generateName is required"}])
        name = metadata["name"]
        if self.store.get(rtype.key, namespace or "", name) is not None:
            raise already_exists(rtype.group, rtype.plural, name)
        uid = str(uuid.uuid4())
        now = now_rfc3339()
        for server_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                             "selfLink", "managedFields"):
            metadata.pop(server_field, None)
        metadata.update(uid=uid, creationTimestamp=now)
        if rtype.generation:
            metadata["generation"] = 1
        obj = {"apiVersion": rtype.group_version, "kind": rtype.kind, "metadata": metadata,
               **{k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}}
        self._check_fields(rtype, obj, field_validation, warnings)
        obj = apply_defaults(rtype.key, obj, uid)
        status = initial_status(rtype.key, obj) if rtype.builtin else None
        if rtype.has_status and not (rtype.key == CRD_TYPE.key):
            obj.pop("status", None)
            if status is not None:
                obj["status"] = status
        if rtype.key == ("", "services"):
            self._allocate_cluster_ip(obj)
        if rtype.key == CRD_TYPE.key:
            obj = self._prepare_crd(obj, None)
        if not rtype.builtin:
            obj = self._validated(rtype, obj, None)
        obj["metadata"]["managedFields"] = (
            managed_fields if managed_fields is not None else patching.record_update(
                None, obj, field_manager, [], self.strategy(rtype), rtype.group_version, now))
        if not obj["metadata"]["managedFields"]:
            del obj["metadata"]["managedFields"]
        if dry_run:
            obj["metadata"]["resourceVersion"] = ""
            return obj
        stored = self.store.put(rtype.key, obj)
        if rtype.key == CRD_TYPE.key:
            self._crd_changed(stored)
        return self.present(rtype, stored)

    def _check_kind(self, rtype: ResourceType, body: dict[str, Any]) -> None:
        """The body's apiVersion and kind, when given, must name this resource (custom
        resources may be sent in another served version of their group)."""
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != rtype.group_version:
            same_group = "/" in api_version and api_version.rsplit("/", 1)[0] == rtype.group
            if rtype.builtin or not same_group:
                raise bad_request(f"the API version in the data ({api_version}) does not match "
                                  f"the expected API version ({rtype.group_version})")
        if kind and kind != rtype.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                              f"({rtype.kind})")

    def _unknown_fields(self, rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
        if schema is None:
            return []
        if rtype.builtin:
            return schema.builtin_unknown_fields(obj)
        crd = self.crd_for(rtype)
        return schema.unknown_fields(crd, obj) if crd is not None else []

    def _check_fields(self, rtype: ResourceType, obj: dict[str, Any], validation: str,
                      warnings: list[str] | None) -> None:
        """fieldValidation: Strict refuses unknown fields (400), Warn reports them in
        Warning headers, Ignore drops them silently (pruning does that for custom kinds)."""
        if validation == "Ignore":
            return
        unknown = self._unknown_fields(rtype, obj)
        if not unknown:
            return
        if validation == "Strict":
            raise bad_request(schema.strict_decoding_message(rtype.kind, rtype.version, unknown))
        if warnings is not None:
            warnings.extend(schema.warning_texts(unknown))

    def _generated_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        for _ in range(100):
            suffix = "".join(random.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
            name = prefix[:58] + suffix
            if self.store.get(rtype.key, namespace, name) is None:
                return name
        raise ApiError(500, "could not generate a unique name")

    def _allocate_cluster_ip(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            if spec.get("clusterIP") == "None":
                spec["clusterIPs"] = ["None"]
            return
        if not spec.get("clusterIP"):
            used = {s.get("spec", {}).get("clusterIP") for s in self.store.list(("", "services"))}
            spec["clusterIP"] = self._ip_allocator.allocate({ip for ip in used if ip})
        spec["clusterIPs"] = [spec["clusterIP"]]

    def _validated(self, rtype: ResourceType, obj: dict[str, Any],
                   old: dict[str, Any] | None) -> dict[str, Any]:
        crd = self.crd_for(rtype)
        if crd is None or schema is None:
            return obj
        result, causes = schema.validate_custom_resource(crd, obj, old)
        if causes:
            raise invalid(rtype.group, rtype.kind, obj["metadata"].get("name", ""), causes)
        return result

    # ---- update -------------------------------------------------------------------------

    def update(self, rtype: ResourceType, namespace: str | None, name: str, body: Any, *,
               subresource: str | None = None, dry_run: bool = False,
               field_manager: str = "unknown", field_validation: str = "Warn",
               warnings: list[str] | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        self._check_kind(rtype, body)
        old = self.store.get(rtype.key, namespace or "", name)
        if old is None:
            raise not_found(rtype.group, rtype.plural, name)
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise bad_request(f"the name of the object ({body_name}) does not match the name on "
                              f"the URL ({name})")
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rtype.group, rtype.plural, name,
                           "the object has been modified; please apply your changes to the "
                           "latest version and try again")
        self._check_fields(rtype, {**body, "apiVersion": rtype.group_version, "kind": rtype.kind},
                           field_validation, warnings)
        return self._write_update(rtype, old, body, subresource=subresource, dry_run=dry_run,
                                  field_manager=field_manager)

    def _write_update(self, rtype: ResourceType, old: dict[str, Any], body: dict[str, Any], *,
                      subresource: str | None, dry_run: bool, field_manager: str,
                      managed_fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        new = self._prepare_update(rtype, old, body, subresource)
        now = now_rfc3339()
        old_managed = old["metadata"].get("managedFields") or []
        requested = (body.get("metadata") or {}).get("managedFields")
        if managed_fields is None and subresource is None and isinstance(requested, list) \
                and requested != old_managed:
            managed_fields = requested  # the client rewrote them (kubectl does, after CSA->SSA)
        if managed_fields is None:
            managed_fields = patching.record_update(
                old, new, field_manager, old_managed, self.strategy(rtype), rtype.group_version,
                now, subresource)
        if managed_fields:
            new["metadata"]["managedFields"] = managed_fields
        else:
            new["metadata"].pop("managedFields", None)
        if _without_server_fields(new) == _without_server_fields(old) and \
                _untimed(managed_fields) == _untimed(old_managed):
            return self.present(rtype, old)  # a no-op write changes nothing, not even the version
        if dry_run:
            return self.present(rtype, new)
        stored = self.store.put(rtype.key, new)
        if rtype.key == CRD_TYPE.key:
            self._crd_changed(stored)
        if stored["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers") \
                and not _waits_for_kubelet(rtype, stored):
            self._remove(rtype, stored)
        return self.present(rtype, stored)

    def _prepare_update(self, rtype: ResourceType, old: dict[str, Any], body: dict[str, Any],
                        subresource: str | None) -> dict[str, Any]:
        old_meta = old["metadata"]
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in body:
                new["status"] = copy.deepcopy(body["status"])
            else:
                new.pop("status", None)
            new_meta = new["metadata"]
            if rtype.key == POD_TYPE.key and (causes := podstatus.illegal_container_transitions(old, new)):
                raise invalid("", "Pod", old_meta["name"], causes)
        else:
            new = copy.deepcopy(body)
            new["apiVersion"], new["kind"] = rtype.group_version, rtype.kind
            new_meta = new.setdefault("metadata", {})
            for immutable in ("name", "namespace", "uid", "creationTimestamp",
                              "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                if immutable in old_meta:
                    new_meta[immutable] = old_meta[immutable]
                else:
                    new_meta.pop(immutable, None)
            if rtype.has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if rtype.builtin:
                new = apply_defaults(rtype.key, new, old_meta["uid"])
            if rtype.key == ("", "services"):
                new.setdefault("spec", {})["clusterIP"] = old.get("spec", {}).get("clusterIP")
                self._allocate_cluster_ip(new)
        new_meta["resourceVersion"] = old_meta["resourceVersion"]
        if rtype.key == CRD_TYPE.key:
            new = self._prepare_crd(new, old)
        if not rtype.builtin:
            new = self._validated(rtype, new, old)
        if rtype.generation and _generation_changes(rtype, old, new):
            new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        if rtype.key == NAMESPACE_TYPE.key and subresource is None:
            new["spec"] = copy.deepcopy(old.get("spec", {}))  # only /finalize changes these
        if subresource == "finalize":
            new = copy.deepcopy(old)
            new["spec"] = copy.deepcopy(body.get("spec", {}))
        return new

    # ---- patch --------------------------------------------------------------------------

    def strategy(self, rtype: ResourceType) -> patching.StrategyLookup:
        if rtype.builtin:
            return patching.builtin_list_strategy(rtype.key)
        crd = self.crd_for(rtype) or {}
        version = next((v for v in crd.get("spec", {}).get("versions", [])
                        if v.get("name") == rtype.version), {})
        return patching.schema_list_strategy((version.get("schema") or {}).get("openAPIV3Schema"))

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, content_type: str,
              raw: bytes, *, subresource: str | None = None, dry_run: bool = False,
              field_manager: str | None = None, force: bool = False,
              user_agent: str | None = None, field_validation: str = "Warn",
              warnings: list[str] | None = None) -> tuple[int, dict[str, Any]]:
        """Returns (HTTP status, object): 201 when an apply created the object."""
        if content_type not in PATCH_TYPES:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                                f"media types include: {', '.join(PATCH_TYPES)}")
        if content_type == PATCH_STRATEGIC and not rtype.builtin:
            raise ApiError(415, "the body of the request was in an unknown format - accepted "
                                f"media types include: {PATCH_JSON}, {PATCH_MERGE}, {PATCH_APPLY}")
        if content_type == PATCH_APPLY:
            if not field_manager:
                raise invalid(rtype.group, rtype.kind, name, [{
                    "reason": "FieldValueRequired", "field": "fieldManager",
                    "message": "Required value: is required for apply patch"}])
            return self._apply(rtype, namespace, name, raw, subresource=subresource,
                               dry_run=dry_run, field_manager=field_manager, force=force,
                               field_validation=field_validation, warnings=warnings)
        try:
            document = json.loads(raw or b"null")
        except ValueError as error:
            raise bad_request(f"error decoding patch: {error}") from None
        old = self.store.get(rtype.key, namespace or "", name)
        if old is None:
            raise not_found(rtype.group, rtype.plural, name)
        current = self.present(rtype, old)
        if content_type == PATCH_JSON:
            patched = patching.json_patch(current, document)
        elif content_type == PATCH_MERGE:
            if not isinstance(document, dict):
                raise bad_request("a merge patch must be a JSON object")
            patched = patching.merge_patch(current, document)
        else:
            patched = patching.strategic_merge_patch(current, document, self.strategy(rtype))
        if not isinstance(patched, dict):
            raise bad_request("the patch did not produce an object")
        patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if patched_rv and patched_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rtype.group, rtype.plural, name,
                           "the object has been modified; please apply your changes to the "
                           "latest version and try again")
        patched_name = (patched.get("metadata") or {}).get("name")
        if patched_name and patched_name != name:
            raise bad_request(f"the name of the object ({patched_name}) does not match the name "
                              f"on the URL ({name})")
        self._check_fields(rtype, patched, field_validation, warnings)
        manager = field_manager or manager_from_user_agent(user_agent)
        return 200, self._write_update(rtype, old, patched, subresource=subresource,
                                       dry_run=dry_run, field_manager=manager)

    def _apply(self, rtype: ResourceType, namespace: str | None, name: str, raw: bytes, *,
               subresource: str | None, dry_run: bool, field_manager: str,
               force: bool, field_validation: str = "Warn",
               warnings: list[str] | None = None) -> tuple[int, dict[str, Any]]:
        try:
            applied = yaml.safe_load(raw.decode("utf-8")) if raw else None
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise bad_request(f"error decoding YAML: {error}") from None
        if not isinstance(applied, dict):
            raise bad_request("an apply patch must be an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("apiVersion and kind must be set in an apply configuration")
        self._check_kind(rtype, applied)
        applied_meta = applied.get("metadata") or {}
        if applied_meta.get("name") not in (None, name):
            raise bad_request(f"the name of the object ({applied_meta.get('name')}) does not "
                              f"match the name on the URL ({name})")
        unknown = self._unknown_fields(rtype, applied)
        if unknown and field_validation == "Strict":
            raise bad_request(
                f"failed to create typed patch object ({namespace + '/' if namespace else ''}"
                f"{name}; {rtype.group_version}, Kind={rtype.kind}): "
                + schema.server_side_apply_message(unknown))
        if unknown and field_validation == "Warn" and warnings is not None:
            warnings.extend(schema.warning_texts(unknown))
        old = self.store.get(rtype.key, namespace or "", name)
        now = now_rfc3339()
        strategy = self.strategy(rtype)
        if old is None:
            if subresource:
                raise not_found(rtype.group, rtype.plural, name)
            body = copy.deepcopy(applied)
            body.setdefault("metadata", {})["name"] = name
            paths = patching.field_paths(applied, strategy)
            managed = [{"manager": field_manager, "operation": "Apply",
                        "apiVersion": rtype.group_version, "time": now, "fieldsType": "FieldsV1",
                        "fieldsV1": patching.paths_to_fields_v1(paths)}]
            return 201, self.create(rtype, namespace, body, dry_run=dry_run,
                                    field_manager=field_manager, managed_fields=managed)
        applied_rv = applied_meta.get("resourceVersion")
        if applied_rv and applied_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rtype.group, rtype.plural, name,
                           "the object has been modified; please apply your changes to the "
                           "latest version and try again")
        merged, managed, conflicts = patching.server_side_apply(
            self.present(rtype, old), applied, field_manager,
            old["metadata"].get("managedFields") or [], force, strategy, rtype.group_version,
            now, subresource, takeover=self._client_side_applied_paths(old, strategy))
        if conflicts:
            causes = [{"reason": "FieldManagerConflict",
                       "message": f'conflict with "{manager}"',
                       "field": patching.dotted(path)} for manager, path in conflicts]
            raise ApiError(409, patching.conflict_message(conflicts), "Conflict",
                           {"name": name, "group": rtype.group, "kind": rtype.plural,
                            "causes": causes})
        return 200, self._write_update(rtype, old, merged, subresource=subresource,
                                       dry_run=dry_run, field_manager=field_manager,
                                       managed_fields=managed)

    @staticmethod
    def _client_side_applied_paths(obj: dict[str, Any],
                                   strategy: patching.StrategyLookup) -> set[tuple[str, ...]]:
        """The fields of kubectl's last-applied annotation: an apply may take these over from
        the client-side-apply manager without a conflict, as kube-apiserver allows when
        `kubectl apply --server-side` follows a client-side `kubectl apply`."""
        annotation = (obj["metadata"].get("annotations") or {}).get(
            "kubectl.kubernetes.io/last-applied-configuration")
        if not annotation:
            return set()
        try:
            last_applied = json.loads(annotation)
        except ValueError:
            return set()
        return patching.field_paths(last_applied, strategy) if isinstance(last_applied, dict) \
            else set()

    # ---- delete -------------------------------------------------------------------------

    def delete(self, rtype: ResourceType, namespace: str | None, name: str,
               options: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Returns (200, Status) when the object is gone, (202, object) while it waits."""
        obj = self.store.get(rtype.key, namespace or "", name)
        if obj is None:
            raise not_found(rtype.group, rtype.plural, name)
        if rtype.key == NAMESPACE_TYPE.key and name in ("default", "kube-system", "kube-public"):
            raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be '
                                "deleted", "Forbidden",
                           {"name": name, "group": "", "kind": "namespaces"})
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != obj["metadata"]["uid"]:
            raise conflict(rtype.group, rtype.plural, name,
                           f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                           f"UID in object meta: {obj['metadata']['uid']}")
        if preconditions.get("resourceVersion") and \
                preconditions["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise conflict(rtype.group, rtype.plural, name,
                           "Precondition failed: ResourceVersion in precondition: "
                           f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                           f"{obj['metadata']['resourceVersion']}")
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        policy = policy or rtype.default_propagation
        if policy not in ("Background", "Foreground", "Orphan"):
            raise bad_request(f"propagationPolicy: Unsupported value: \"{policy}\"")
        dry_run = bool(options.get("dryRun"))
        grace = options.get("gracePeriodSeconds")
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if policy == "Foreground" and gc.FOREGROUND_FINALIZER not in finalizers \
                and not obj["metadata"].get("deletionTimestamp"):
            finalizers.append(gc.FOREGROUND_FINALIZER)
        if policy == "Orphan" and not dry_run:
            for ref in self.owners.dependents_of(obj["metadata"]["uid"]):
                dependent = self.store.get(*ref)
                if dependent is not None:
                    self.store.put(ref[0], copy.deepcopy(gc.without_owner(dependent,
                                                                          obj["metadata"]["uid"])))
        graceful_pod = rtype.key == POD_TYPE.key and _pod_is_running_on_node(obj) and grace != 0
        spec = obj.get("spec") or {}
        namespace_finalizers = rtype.key == NAMESPACE_TYPE.key and spec.get("finalizers")
        if finalizers or graceful_pod or namespace_finalizers:
            if obj["metadata"].get("deletionTimestamp") and \
                    finalizers == list(obj["metadata"].get("finalizers") or []):
                return 202, self.present(rtype, obj)
            new = copy.deepcopy(obj)
            meta = new["metadata"]
            if not meta.get("deletionTimestamp"):
                seconds = 0
                if graceful_pod:
                    seconds = grace if grace is not None else spec.get(
                        "terminationGracePeriodSeconds", 30)
                meta["deletionTimestamp"] = (
                    datetime.datetime.now(datetime.timezone.utc)
                    + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
                meta["deletionGracePeriodSeconds"] = seconds
                if rtype.generation:
                    meta["generation"] = meta.get("generation", 1) + 1
            if finalizers:
                meta["finalizers"] = finalizers
            if rtype.key == NAMESPACE_TYPE.key:
                new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
            if rtype.key == CRD_TYPE.key:
                new["status"] = _with_condition(new.get("status") or {}, {
                    "type": "Terminating", "status": "True",
                    "reason": "InstanceDeletionInProgress",
                    "message": "CustomResource deletion is in progress"})
            if dry_run:
                return 202, self.present(rtype, new)
            return 202, self.present(rtype, self.store.put(rtype.key, new))
        if dry_run:
            return 200, self.present(rtype, obj)
        final = self._remove(rtype, obj)
        return 200, self.present(rtype, final)

    def _remove(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        final = self.store.remove(rtype.key, obj["metadata"].get("namespace", ""),
                                  obj["metadata"]["name"])
        if rtype.key == CRD_TYPE.key:
            self.registry.unregister_crd(obj["metadata"]["name"])
            group = obj["spec"]["group"]
            plural = obj["spec"]["names"]["plural"]
            self.store.drop_bucket((group, plural))
            self.store.close_watchers((group, plural))
        return final

    def remove_now(self, store_key: tuple[str, str], namespace: str, name: str) -> None:
        """Remove an object whose deletion is complete (used by the controllers)."""
        obj = self.store.get(store_key, namespace, name)
        if obj is None:
            return
        rtype = self._type_of_key(store_key)
        self._remove(rtype, obj)

    def _type_of_key(self, store_key: tuple[str, str]) -> ResourceType:
        for rtype in self.registry.all():
            if rtype.key == store_key:
                return rtype
        raise KeyError(store_key)

    def type_of_key(self, store_key: tuple[str, str]) -> ResourceType | None:
        try:
            return self._type_of_key(store_key)
        except KeyError:
            return None

    # ---- CRDs ---------------------------------------------------------------------------

    def _prepare_crd(self, crd: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        causes = schema.validate_crd(crd) if schema is not None else []
        causes = causes + _crd_name_causes(crd)
        if causes:
            raise invalid("apiextensions.k8s.io", "CustomResourceDefinition",
                          crd["metadata"].get("name", ""), causes)
        metadata = crd["metadata"]
        if old is None and CRD_FINALIZER not in (metadata.get("finalizers") or []):
            metadata["finalizers"] = list(metadata.get("finalizers") or []) + [CRD_FINALIZER]
        spec = crd["spec"]
        names = dict(spec["names"])
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
        status = dict((old or {}).get("status") or {})
        taken = self._names_taken_by_other_crds(crd)
        if taken:
            status = _with_condition(status, {
                "type": "NamesAccepted", "status": "False", "reason": "NameConflict",
                "message": f"{taken} is already in use"})
            status = _with_condition(status, {
                "type": "Established", "status": "False", "reason": "NotAccepted",
                "message": "not all names are accepted"})
        else:
            status = _with_condition(status, {
                "type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                "message": "no conflicts found"})
            status = _with_condition(status, {
                "type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted"})
            status["acceptedNames"] = names
        stored_versions = list(status.get("storedVersions") or [])
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")),
                       spec["versions"][0]["name"])
        if storage not in stored_versions:
            stored_versions.append(storage)
        status["storedVersions"] = stored_versions
        crd["status"] = status
        return crd

    def _names_taken_by_other_crds(self, crd: dict[str, Any]) -> str | None:
        spec = crd["spec"]
        for other in self.store.list(CRD_TYPE.key):
            if other["metadata"]["name"] == crd["metadata"]["name"]:
                continue
            other_spec = other["spec"]
            if other_spec["group"] != spec["group"]:
                continue
            if other_spec["names"]["plural"] == spec["names"]["plural"]:
                return f'"{spec["names"]["plural"]}"'
            if other_spec["names"]["kind"] == spec["names"]["kind"]:
                return f'"{spec["names"]["kind"]}"'
        return None

    def _crd_changed(self, crd: dict[str, Any]) -> None:
        if _is_established(crd) and not crd["metadata"].get("deletionTimestamp"):
            self.registry.register_crd(crd)

    def expire_events(self, now: datetime.datetime,
                      ttl_seconds: float = EVENT_TTL_SECONDS) -> int:
        """Remove events last written more than the TTL ago; returns how many went."""
        expired = 0
        for store_key in EVENT_STORES:
            for event in self.store.list(store_key):
                if (now - _last_written(event)).total_seconds() > ttl_seconds:
                    self.remove_now(store_key, event["metadata"].get("namespace", ""),
                                    event["metadata"]["name"])
                    expired += 1
        return expired

    # ---- controllers' single steps (called by the controller loop) -----------------------

    def collect_garbage(self) -> None:
        """Delete or release the dependents of owners that are gone."""
        for owner_uid in self.owners.take_deleted_owners():
            if self.owners.exists(owner_uid):
                continue
            for ref in self.owners.dependents_of(owner_uid):
                dependent = self.store.get(*ref)
                if dependent is None:
                    continue
                action = gc.dependent_action(dependent, owner_uid, self.owners.by_uid.keys())
                if action == "drop-reference":
                    self.store.put(ref[0], copy.deepcopy(gc.without_owner(dependent, owner_uid)))
                elif action == "delete":
                    rtype = self.type_of_key(ref[0])
                    if rtype is not None and not dependent["metadata"].get("deletionTimestamp"):
                        self.delete(rtype, ref[1], ref[2], {"propagationPolicy": "Background"})

    def progress_deletions(self) -> None:
        """Advance objects that carry a deletionTimestamp: foreground owners, terminating
        namespaces, CRDs cleaning up their objects, pods past their grace period."""
        for ref in sorted(self.deleting):
            obj = self.store.get(*ref)
            if obj is None:
                self.deleting.discard(ref)
                continue
            store_key = ref[0]
            finalizers = obj["metadata"].get("finalizers") or []
            if gc.FOREGROUND_FINALIZER in finalizers:
                self._progress_foreground(obj, store_key)
            if store_key == NAMESPACE_TYPE.key:
                self._progress_namespace(obj)
            elif store_key == CRD_TYPE.key and CRD_FINALIZER in finalizers:
                self._progress_crd(obj)
            elif store_key == POD_TYPE.key and not finalizers:
                deadline = parse_rfc3339(obj["metadata"]["deletionTimestamp"])
                if datetime.datetime.now(datetime.timezone.utc) >= deadline:
                    self.remove_now(*ref)

    def _progress_foreground(self, owner: dict[str, Any], store_key: tuple[str, str]) -> None:
        uid = owner["metadata"]["uid"]
        dependents = [d for d in (self.store.get(*ref) for ref in self.owners.dependents_of(uid))
                      if d is not None]
        for ref in self.owners.dependents_of(uid):
            dependent = self.store.get(*ref)
            if dependent is not None and not dependent["metadata"].get("deletionTimestamp"):
                rtype = self.type_of_key(ref[0])
                if rtype is not None:
                    self.delete(rtype, ref[1], ref[2], {"propagationPolicy": "Foreground"})
        if not gc.blocking_dependents(dependents, uid):
            self._drop_finalizer(store_key, owner, gc.FOREGROUND_FINALIZER)

    def _drop_finalizer(self, store_key: tuple[str, str], obj: dict[str, Any],
                        finalizer: str) -> None:
        rtype = self.type_of_key(store_key)
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or []
                                         if f != finalizer]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
        self._write_update(rtype, obj, new, subresource=None, dry_run=False,
                           field_manager="kube-controller-manager",
                           managed_fields=obj["metadata"].get("managedFields") or [])

    def _progress_namespace(self, namespace: dict[str, Any]) -> None:
        name = namespace["metadata"]["name"]
        remaining = 0
        for rtype in self._namespaced_types():
            for obj in self.store.list(rtype.key, name):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    self.delete(rtype, name, obj["metadata"]["name"],
                                {"propagationPolicy": "Background", "gracePeriodSeconds": 0})
                elif rtype.key == POD_TYPE.key and not obj["metadata"].get("finalizers"):
                    self.remove_now(rtype.key, name, obj["metadata"]["name"])
        if remaining == 0 or not any(self.store.list(t.key, name) for t in self._namespaced_types()):
            spec_finalizers = (namespace.get("spec") or {}).get("finalizers") or []
            if spec_finalizers:
                new = copy.deepcopy(namespace)
                new["spec"]["finalizers"] = [f for f in spec_finalizers if f != NAMESPACE_FINALIZER]
                self.store.put(NAMESPACE_TYPE.key, new)
                namespace = new
            if not namespace["metadata"].get("finalizers") and \
                    not (namespace.get("spec") or {}).get("finalizers"):
                self.remove_now(NAMESPACE_TYPE.key, "", name)

    def _namespaced_types(self) -> list[ResourceType]:
        seen, result = set(), []
        for rtype in self.registry.all():
            if rtype.namespaced and rtype.key not in seen:
                seen.add(rtype.key)
                result.append(rtype)
        return result

    def _progress_crd(self, crd: dict[str, Any]) -> None:
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        rtype = self.type_of_key((group, plural))
        objects = self.store.list((group, plural))
        if rtype is not None:
            for obj in objects:
                if not obj["metadata"].get("deletionTimestamp"):
                    self.delete(rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                                {"propagationPolicy": "Background"})
        if not self.store.list((group, plural)):
            self.registry.unregister_crd(crd["metadata"]["name"])
            self._drop_finalizer(CRD_TYPE.key, crd, CRD_FINALIZER)


def _last_written(event: dict[str, Any]) -> datetime.datetime:
    """The latest of an event's own timestamps (clients write several formats)."""
    latest = parse_rfc3339(event["metadata"]["creationTimestamp"])
    for field in ("lastTimestamp", "eventTime", "deprecatedLastTimestamp"):
        value = event.get(field)
        if isinstance(value, str) and value:
            try:
                stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=datetime.timezone.utc)
            latest = max(latest, stamp)
    series = event.get("series") or {}
    if isinstance(series.get("lastObservedTime"), str):
        try:
            latest = max(latest, datetime.datetime.fromisoformat(
                series["lastObservedTime"].replace("Z", "+00:00")))
        except ValueError:
            pass
    return latest


def _untimed(managed_fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k != "time"} for entry in managed_fields]


def _is_established(crd: dict[str, Any]) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _with_condition(status: dict[str, Any], condition: dict[str, Any]) -> dict[str, Any]:
    conditions = list(status.get("conditions") or [])
    for index, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            if existing.get("status") == condition["status"]:
                condition = {**condition,
                             "lastTransitionTime": existing.get("lastTransitionTime")}
            else:
                condition = {**condition, "lastTransitionTime": now_rfc3339()}
            conditions[index] = condition
            break
    else:
        conditions.append({**condition, "lastTransitionTime": now_rfc3339()})
    return {**status, "conditions": conditions}


def _crd_name_causes(crd: dict[str, Any]) -> list[dict[str, Any]]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes = []
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append({"reason": "FieldValueRequired", "field": f"spec.names.{field}",
                           "message": "Required value"})
    if not spec.get("group"):
        causes.append({"reason": "FieldValueRequired", "field": "spec.group",
                       "message": "Required value"})
    if not spec.get("versions"):
        causes.append({"reason": "FieldValueRequired", "field": "spec.versions",
                       "message": "Required value: must have exactly one version marked as "
                                  "storage version"})
    if causes:
        return causes
    expected = f"{names['plural']}.{spec['group']}"
    if crd["metadata"].get("name") != expected:
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": f"Invalid value: \"{crd['metadata'].get('name')}\": must be "
                                  f"spec.names.plural+\".\"+spec.group"})
    return causes


def _generation_changes(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    if rtype.generation == "spec":
        return old.get("spec") != new.get("spec")
    ignored = ("metadata", "status", "apiVersion", "kind")
    return {k: v for k, v in old.items() if k not in ignored} != \
        {k: v for k, v in new.items() if k not in ignored}


def _pod_is_running_on_node(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


def _waits_for_kubelet(rtype: ResourceType, obj: dict[str, Any]) -> bool:
    """A terminating pod on a node stays until the kubelet confirms or its grace runs out."""
    if rtype.key != POD_TYPE.key or not _pod_is_running_on_node(obj):
        return False
    deadline = parse_rfc3339(obj["metadata"]["deletionTimestamp"])
    return datetime.datetime.now(datetime.timezone.utc) < deadline
