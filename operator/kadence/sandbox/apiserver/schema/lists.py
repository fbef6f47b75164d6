"""How each list field of a kind merges, read from its schema rather than hand-written:
`x-kubernetes-list-type` / `x-kubernetes-list-map-keys` for custom resources (what
server-side apply follows), `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`
for built-in kinds (what strategic merge patch follows).

A lookup takes the path of field names to a list (`("spec", "template", "spec",
"containers")`, list items add no name) and answers (strategy, merge key): `("merge", key)`
for lists of objects merged by a key, `("merge", None)` for sets of scalars, `(None, None)`
for atomic lists (replaced whole).
"""

from __future__ import annotations

from typing import Any, Callable

from .custom_resource import version_schema
from .openapi import builtin_definitions
from .strict import definitions_by_gvk

Schema = dict[str, Any]
ListStrategy = tuple[str | None, str | None]
StrategyLookup = Callable[[tuple[str, ...]], ListStrategy]

_METADATA_LISTS: dict[tuple[str, ...], ListStrategy] = {
    ("metadata", "finalizers"): ("merge", None),
    ("metadata", "ownerReferences"): ("merge", "uid"),
    ("metadata", "managedFields"): (None, None),
}


def _child(schema: Schema | None, name: str) -> Schema | None:
    """The schema of field `name` under `schema`, passing through list items and refs."""
    schema = _resolve(schema)
    if schema is None:
        return None
    if schema.get("type") == "array" or "items" in schema:
        schema = _resolve(schema.get("items"))
        if schema is None:
            return None
    properties = schema.get("properties") or {}
    if name in properties:
        return properties[name]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _resolve(schema: Any) -> Schema | None:
    if not isinstance(schema, dict):
        return None
    while "$ref" in schema:
        schema = builtin_definitions().get(schema["$ref"].rsplit("/", 1)[-1])
        if schema is None:
            return None
    if "allOf" in schema and len(schema["allOf"]) == 1 and "properties" not in schema:
        return _resolve(schema["allOf"][0])
    return schema


def _strategy_of(schema: Schema | None) -> ListStrategy:
    if schema is None:
        return (None, None)
    merge_key = schema.get("x-kubernetes-patch-merge-key")
    strategy = str(schema.get("x-kubernetes-patch-strategy") or "")
    if "merge" in strategy.split(","):
        return ("merge", merge_key)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        return ("merge", keys[0] if keys else None)
    if list_type == "set":
        return ("merge", None)
    return (None, None)


def _lookup_from(root: Schema) -> StrategyLookup:
    def lookup(path: tuple[str, ...]) -> ListStrategy:
        if path in _METADATA_LISTS:
            return _METADATA_LISTS[path]
        node: Schema | None = root
        for name in path:
            node = _child(node, name)
            if node is None:
                return (None, None)
        return _strategy_of(_resolve(node))
    return lookup


def crd_list_strategy(crd: dict[str, Any], version: str) -> StrategyLookup:
    """List strategies of a custom kind's version, from its structural schema."""
    schema = version_schema(crd, version) or {}
    return _lookup_from(schema)


def builtin_list_strategy(api_version: str, kind: str) -> StrategyLookup:
    """List strategies of a built-in kind, from its published definition."""
    group, _, version = api_version.rpartition("/")
    name = definitions_by_gvk().get((group, version, kind))
    root = builtin_definitions().get(name, {}) if name else {}
    return _lookup_from(root)
