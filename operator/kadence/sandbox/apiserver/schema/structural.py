"""Pruning and defaulting of custom objects by a structural schema, done before validation
as kube-apiserver does (apiextensions' structural pruning and defaulting algorithms)."""

from __future__ import annotations

import copy
from typing import Any

from .paths import Path

Schema = dict[str, Any]

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})
_RESOURCE_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


def prune(obj: dict[str, Any], schema: Schema) -> list[str]:
    """Drops, in place, the fields of a resource the schema does not declare.

    Returns the paths of the dropped fields (`spec.foo`, `spec.items[0].bar`) that a
    `fieldValidation=Strict` request reports as unknown fields.
    """
    unknown: list[str] = []
    _prune_object_meta(obj, Path().child("metadata"), unknown)
    _prune_object(obj, schema, Path(), unknown, resource_root=True)
    return unknown


def unknown_fields_of(value: Any, schema: Schema) -> list[str]:
    """Paths of what pruning would drop from `value` (a copy is pruned, not `value`)."""
    unknown: list[str] = []
    _prune(copy.deepcopy(value), schema, Path(), unknown)
    return unknown


def _prune_object_meta(obj: dict[str, Any], path: Path, unknown: list[str]) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return
    for key in list(meta):
        if key not in OBJECT_META_FIELDS:
            unknown.append(path.child(key).openapi)
            del meta[key]


def _prune(value: Any, schema: Schema | None, path: Path, unknown: list[str]) -> None:
    if schema is None:
        return
    if isinstance(value, dict):
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        if embedded:
            _prune_object_meta(value, path.child("metadata"), unknown)
        _prune_object(value, schema, path, unknown, resource_root=embedded)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for position, item in enumerate(value):
                _prune(item, items, path.index(position), unknown)


def _prune_object(
    value: dict[str, Any], schema: Schema, path: Path, unknown: list[str], resource_root: bool
) -> None:
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key in list(value):
        if resource_root and key in _RESOURCE_ROOT_FIELDS:
            continue  # metadata is pruned as ObjectMeta, whatever the schema says of it
        if key in properties:
            _prune(value[key], properties[key], path.child(key), unknown)
        elif isinstance(additional, dict):
            _prune(value[key], additional, path.key(key), unknown)
        elif additional is True or preserve:
            continue
        else:
            unknown.append(path.child(key).openapi)
            del value[key]


def prune_non_nullable_nulls(value: Any, schema: Schema | None) -> None:
    """Drops `null`s of non-nullable fields that have no default (they would be defaulted)."""
    if schema is None:
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key in list(value):
            sub_schema = properties.get(key)
            if sub_schema is None and isinstance(additional, dict):
                sub_schema = additional
            if sub_schema is None:
                continue
            if value[key] is None:
                if not sub_schema.get("nullable") and "default" not in sub_schema:
                    del value[key]
            else:
                prune_non_nullable_nulls(value[key], sub_schema)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                prune_non_nullable_nulls(item, items)


def _is_non_nullable_null(value: Any, schema: Schema) -> bool:
    return value is None and not schema.get("nullable") and "default" in schema


def apply_defaults(value: Any, schema: Schema | None) -> None:
    """Fills in `default`s in place, including inside objects that a default created."""
    if schema is None:
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, sub_schema in properties.items():
            if "default" not in sub_schema:
                continue
            if key not in value or _is_non_nullable_null(value[key], sub_schema):
                value[key] = copy.deepcopy(sub_schema["default"])
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                apply_defaults(item, properties[key])
            elif isinstance(additional, dict):
                if _is_non_nullable_null(item, additional):
                    value[key] = item = copy.deepcopy(additional["default"])
                apply_defaults(item, additional)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for position, item in enumerate(value):
                if _is_non_nullable_null(item, items):
                    value[position] = item = copy.deepcopy(items["default"])
                apply_defaults(item, items)
