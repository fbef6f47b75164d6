"""Patch formats: JSON merge patch, JSON patch, strategic merge patch and server-side apply.

All functions are pure: they take the current object and the patch and return a new object.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

import jsonpatch

from .errors import ApiError

# (strategy, merge key): strategy "merge" with a key for associative lists of maps, "merge"
# without a key for lists of primitives kept as sets, None for atomic lists (replaced whole).
ListStrategy = tuple[str | None, str | None]
StrategyLookup = Callable[[tuple[str, ...]], ListStrategy]

_MERGE_KEYS_BY_FIELD = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}


def builtin_list_strategy(store_key: tuple[str, str]) -> StrategyLookup:
    """The patch strategy of a list field of a built-in kind, given its path of field names."""

    def lookup(path: tuple[str, ...]) -> ListStrategy:
        field = path[-1]
        if path == ("metadata", "finalizers"):
            return ("merge", None)
        if path == ("metadata", "ownerReferences"):
            return ("merge", "uid")
        if field == "conditions" and len(path) >= 2 and path[0] == "status":
            return ("merge", "type")
        if field == "ports":
            if len(path) >= 2 and path[-2] in _CONTAINER_LISTS:
                return ("merge", "containerPort")
            if store_key == ("", "services") and path == ("spec", "ports"):
                return ("merge", "port")
            return (None, None)
        if field == "secrets" and store_key == ("", "serviceaccounts"):
            return ("merge", "name")
        if field in _MERGE_KEYS_BY_FIELD and path[0] != "status":
            return ("merge", _MERGE_KEYS_BY_FIELD[field])
        return (None, None)

    return lookup


def custom_list_strategy(path: tuple[str, ...]) -> ListStrategy:
    """Custom resources: only metadata lists are associative (CRD list-type markers aside)."""
    if path == ("metadata", "finalizers"):
        return ("merge", None)
    if path == ("metadata", "ownerReferences"):
        return ("merge", "uid")
    return (None, None)


def schema_list_strategy(schema: dict[str, Any] | None) -> StrategyLookup:
    """List strategies of a custom resource from its CRD schema's list markers:
    `x-kubernetes-list-type: map` with one `x-kubernetes-list-map-keys` key merges by that
    key, `set` merges as a set, anything else is atomic (metadata lists as usual)."""

    def lookup(path: tuple[str, ...]) -> ListStrategy:
        if path[:1] == ("metadata",):
            return custom_list_strategy(path)
        node = schema or {}
        for name in path:
            if node.get("type") == "array":
                node = node.get("items") or {}
            properties = node.get("properties") or {}
            if name in properties:
                node = properties[name]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return (None, None)
        list_type = node.get("x-kubernetes-list-type")
        keys = node.get("x-kubernetes-list-map-keys") or []
        if list_type == "map" and len(keys) == 1:
            return ("merge", keys[0])
        if list_type == "set":
            return ("merge", None)
        return (None, None)

    return lookup


# ---- JSON merge patch (RFC 7386) ------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---- JSON patch (RFC 6902) ------------------------------------------------------------------

def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise ApiError(400, "json patch must be a list of operations")
    try:
        return jsonpatch.JsonPatch(operations).apply(target)
    except jsonpatch.JsonPatchTestFailed as error:
        raise ApiError(422, f"the server rejected our request due to an error in our request: "
                            f"{error}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError,
            TypeError, ValueError) as error:
        raise ApiError(422, f"the server rejected our request due to an error in our request: "
                            f"{error}") from None


# ---- strategic merge patch ------------------------------------------------------------------

_DELETE = object()


def strategic_merge_patch(
    target: dict[str, Any], patch: dict[str, Any], strategy: StrategyLookup
) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise ApiError(400, "strategic merge patch must be a JSON object")
    result = _smp_map(target, patch, (), strategy)
    return {} if result is _DELETE else result


def _smp_map(original: Any, patch: dict[str, Any], path: tuple[str, ...],
             strategy: StrategyLookup) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive not in (None, "merge"):
        raise ApiError(400, f"Unknown patch type: {directive}")
    result = dict(original) if isinstance(original, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        child_path = path + (key,)
        if isinstance(value, dict):
            merged = _smp_map(result.get(key), value, child_path, strategy)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            kind, merge_key = strategy(child_path)
            if kind == "merge":
                result[key] = _smp_list(result.get(key) or [], value, merge_key, child_path,
                                        strategy)
            else:
                result[key] = strip_directives(value)
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            _, merge_key = strategy(path + (field,))
            result[field] = _reorder(result[field], order, merge_key)
    retain = patch.get("$retainKeys")
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(original: list[Any], patch: list[Any], merge_key: str | None,
              path: tuple[str, ...], strategy: StrategyLookup) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return strip_directives(
            [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
        )
    if merge_key is None:  # a set of primitives
        result = list(original)
        for item in patch:
            if isinstance(item, dict) and item.get("$patch") == "delete":
                continue
            if item not in result:
                result.append(item)
        return result
    result = [dict(item) if isinstance(item, dict) else item for item in original]
    for item in patch:
        if not isinstance(item, dict):
            raise ApiError(400, f"list {'.'.join(path)} expects objects with key {merge_key}")
        key_value = item.get(merge_key)
        index = next((i for i, existing in enumerate(result)
                      if isinstance(existing, dict) and existing.get(merge_key) == key_value),
                     None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strip_directives(item))
        else:
            merged = _smp_map(result[index], item, path, strategy)
            if merged is _DELETE:
                result.pop(index)
            else:
                result[index] = merged
    return result


def _reorder(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    def identity(item: Any) -> Any:
        if merge_key is not None and isinstance(item, dict):
            return json.dumps(item.get(merge_key), sort_keys=True)
        return json.dumps(item, sort_keys=True)

    rank = {identity(item): i for i, item in enumerate(order)}
    ordered = sorted((item for item in items if identity(item) in rank),
                     key=lambda item: rank[identity(item)])
    rest = [item for item in items if identity(item) not in rank]
    return ordered + rest


def strip_directives(value: Any) -> Any:
    """Remove `$patch`, `$retainKeys`, `$setElementOrder/...` keys so they are never stored."""
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(v) for v in value]
    return value


# ---- server-side apply ----------------------------------------------------------------------
# Field sets follow the managedFields `FieldsV1` shape: {"f:spec": {"f:replicas": {}}}, with
# associative list items as `k:{"name":"x"}` and set items as `v:"value"`.

FieldPath = tuple[str, ...]

# Metadata fields that belong to the server, never to a field manager.
_UNMANAGED_METADATA = {"name", "namespace", "uid", "resourceVersion", "generation",
                       "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                       "managedFields", "selfLink", "generateName"}


def field_paths(obj: dict[str, Any], strategy: StrategyLookup) -> set[FieldPath]:
    """The leaf field paths set in an object, as a field manager would own them."""
    paths: set[FieldPath] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in _UNMANAGED_METADATA}
            if not value:
                continue
        _collect(value, (f"f:{key}",), (key,), strategy, paths)
    return paths


def _collect(value: Any, path: FieldPath, names: tuple[str, ...], strategy: StrategyLookup,
             out: set[FieldPath]) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _collect(child, path + (f"f:{key}",), names + (key,), strategy, out)
        return
    if isinstance(value, list) and value:
        kind, merge_key = strategy(names)
        if kind == "merge":
            for item in value:
                if merge_key is None:
                    out.add(path + ("v:" + json.dumps(item, separators=(",", ":")),))
                elif isinstance(item, dict):
                    item_path = path + ("k:" + json.dumps({merge_key: item.get(merge_key)},
                                                          separators=(",", ":")),)
                    out.add(item_path + (".",))
                    for key, child in item.items():
                        _collect(child, item_path + (f"f:{key}",), names + (key,), strategy, out)
            return
    out.add(path)


def paths_to_fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def fields_v1_to_paths(tree: dict[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    paths: set[FieldPath] = set()
    for key, child in tree.items():
        if child:
            paths |= fields_v1_to_paths(child, prefix + (key,))
        else:
            paths.add(prefix + (key,))
    return paths


def _value_at(obj: Any, path: FieldPath) -> tuple[bool, Any]:
    """(present, value) at a field path."""
    current = obj
    for part in path:
        if part == ".":
            return True, current
        prefix, _, name = part.partition(":")
        if prefix == "f":
            if not isinstance(current, dict) or name not in current:
                return False, None
            current = current[name]
        elif prefix == "k":
            wanted = json.loads(name)
            if not isinstance(current, list):
                return False, None
            match = [item for item in current if isinstance(item, dict)
                     and all(item.get(k) == v for k, v in wanted.items())]
            if not match:
                return False, None
            current = match[0]
        elif prefix == "v":
            wanted = json.loads(name)
            if not isinstance(current, list) or wanted not in current:
                return False, None
            return True, wanted
    return True, current


def _remove_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove the field at path (in place on a deep copy the caller owns)."""
    if path and path[-1] == ".":
        path = path[:-1]
    parent: Any = obj
    for part in path[:-1]:
        present, parent = _value_at(parent, (part,))
        if not present:
            return
    last = path[-1]
    prefix, _, name = last.partition(":")
    if prefix == "f" and isinstance(parent, dict):
        parent.pop(name, None)
    elif prefix == "k" and isinstance(parent, list):
        wanted = json.loads(name)
        parent[:] = [item for item in parent if not (isinstance(item, dict) and all(
            item.get(k) == v for k, v in wanted.items()))]
    elif prefix == "v" and isinstance(parent, list):
        wanted = json.loads(name)
        parent[:] = [item for item in parent if item != wanted]


def apply_merge(live: Any, applied: Any, names: tuple[str, ...],
                strategy: StrategyLookup) -> Any:
    """Merge an applied configuration into the live object (maps merge, lists by strategy)."""
    if isinstance(applied, dict) and isinstance(live, dict):
        result = dict(live)
        for key, value in applied.items():
            result[key] = apply_merge(live.get(key), value, names + (key,), strategy)
        return result
    if isinstance(applied, list) and isinstance(live, list):
        kind, merge_key = strategy(names)
        if kind == "merge":
            if merge_key is None:
                return list(applied) + [item for item in live if item not in applied]
            result = []
            applied_keys = [item.get(merge_key) for item in applied if isinstance(item, dict)]
            for item in applied:
                existing = next((old for old in live if isinstance(old, dict)
                                 and old.get(merge_key) == item.get(merge_key)), None)
                result.append(apply_merge(existing, item, names, strategy)
                              if existing is not None else copy.deepcopy(item))
            result += [copy.deepcopy(old) for old in live if isinstance(old, dict)
                       and old.get(merge_key) not in applied_keys]
            return result
    return copy.deepcopy(applied)


def server_side_apply(
    live: dict[str, Any],
    applied: dict[str, Any],
    manager: str,
    managed_fields: list[dict[str, Any]],
    force: bool,
    strategy: StrategyLookup,
    api_version: str,
    now: str,
    subresource: str | None = None,
    takeover: set[FieldPath] | frozenset = frozenset(),
) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, FieldPath]]]:
    """Apply a configuration for a manager.

    Returns (new object, new managedFields, conflicts as (other manager, path)). Fields this
    manager applied before and no longer applies are removed unless another manager also owns
    them. A field owned by another manager whose value the configuration would change is a
    conflict, unless forced or listed in `takeover`; then ownership moves to this manager.
    """
    new_paths = field_paths(applied, strategy)
    owners: dict[str, set[FieldPath]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for entry in managed_fields:
        entry_key = _entry_key(entry)
        entries[entry_key] = entry
        owners[entry_key] = fields_v1_to_paths(entry.get("fieldsV1") or {})
    own_key = _entry_key({"manager": manager, "operation": "Apply", "subresource": subresource})
    previous = owners.get(own_key, set())
    conflicts = []
    for other_key, paths in owners.items():
        if other_key == own_key:
            continue
        contested = {
            p for p in paths & new_paths
            if _value_at(live, p) != _value_at(applied, p)
        }
        if not force:
            other_manager = entries[other_key].get("manager", "")
            conflicts += [(other_manager, p) for p in sorted(contested - set(takeover))]
        owners[other_key] = paths - contested
    if conflicts:
        return live, managed_fields, conflicts
    others = set().union(*(p for k, p in owners.items() if k != own_key)) if owners else set()
    result = copy.deepcopy(live)
    for path in sorted(previous - new_paths - others, key=len, reverse=True):
        _remove_path(result, path)
    result = apply_merge(result, applied, (), strategy)
    owners[own_key] = new_paths
    entries[own_key] = {"manager": manager, "operation": "Apply", "apiVersion": api_version,
                        "time": now, "fieldsType": "FieldsV1"}
    if subresource:
        entries[own_key]["subresource"] = subresource
    return result, _managed_fields(entries, owners), []


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    managed_fields: list[dict[str, Any]],
    strategy: StrategyLookup,
    api_version: str,
    now: str,
    subresource: str | None = None,
) -> list[dict[str, Any]]:
    """managedFields after a non-apply write: the manager takes the fields it changed."""
    new_paths = field_paths(new, strategy)
    old_paths = field_paths(old, strategy) if old is not None else set()
    changed = {p for p in new_paths if p not in old_paths or _value_at(old, p) != _value_at(new, p)}
    owners: dict[str, set[FieldPath]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for entry in managed_fields:
        key = _entry_key(entry)
        entries[key] = entry
        owners[key] = fields_v1_to_paths(entry.get("fieldsV1") or {}) & new_paths
    own_key = _entry_key({"manager": manager, "operation": "Update", "subresource": subresource})
    for key in owners:
        if key != own_key:
            owners[key] -= changed
    if changed or own_key in owners:
        owners[own_key] = owners.get(own_key, set()) | changed
        entries[own_key] = {"manager": manager, "operation": "Update", "apiVersion": api_version,
                            "time": now, "fieldsType": "FieldsV1"}
        if subresource:
            entries[own_key]["subresource"] = subresource
    return _managed_fields(entries, owners)


def _entry_key(entry: dict[str, Any]) -> str:
    return f"{entry.get('manager')}|{entry.get('operation')}|{entry.get('subresource') or ''}"


def _managed_fields(entries: dict[str, dict[str, Any]],
                    owners: dict[str, set[FieldPath]]) -> list[dict[str, Any]]:
    result = []
    for key, entry in entries.items():
        paths = owners.get(key, set())
        if not paths:
            continue
        result.append({**{k: v for k, v in entry.items() if k != "fieldsV1"},
                       "fieldsV1": paths_to_fields_v1(paths)})
    return result


def conflict_message(conflicts: list[tuple[str, FieldPath]]) -> str:
    lines = [f'conflict with "{manager}": {dotted(path)}' for manager, path in conflicts]
    plural = "s" if len(lines) > 1 else ""
    return f"Apply failed with {len(lines)} conflict{plural}: " + "\n".join(lines)


def dotted(path: FieldPath) -> str:
    """A field path as kube-apiserver prints it in conflicts: `.spec.containers[name="a"]`."""
    parts = []
    for part in path:
        prefix, _, name = part.partition(":")
        if prefix == "f":
            parts.append("." + name)
        elif prefix == "k":
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}"
                                        for k, v in json.loads(name).items()) + "]")
        elif prefix == "v":
            parts.append(f"[{name}]")
    return "".join(parts)
