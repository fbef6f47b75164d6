"""What kube-apiserver does to a custom object on create and update, in its order:
prune unknown fields, drop non-nullable nulls, apply defaults, then validate metadata, the
OpenAPI schema, list-type invariants and (if nothing blocking was found) the CEL rules."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from . import causes, cel, objectmeta, structural, values
from .causes import Cause
from .paths import ROOT, Path

Schema = dict[str, Any]

_RULES_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; correct the "
    "existing errors to complete validation"
)


@dataclasses.dataclass
class Outcome:
    obj: dict[str, Any]
    causes: list[Cause]
    unknown_fields: list[str]


def version_schema(crd: dict[str, Any], version: str) -> Schema | None:
    """The openAPIV3Schema of a served version of the CRD (None: no such version)."""
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            schema = (entry.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return None


def _version_of(obj: dict[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rsplit("/", 1)[-1]


def _schema_for(crd: dict[str, Any], obj: dict[str, Any]) -> Schema:
    schema = version_schema(crd, _version_of(obj))
    if schema is None:
        group = (crd.get("spec") or {}).get("group", "")
        raise ValueError(
            f"version {_version_of(obj)!r} of {group!r} is not served by CRD "
            f"{(crd.get('metadata') or {}).get('name')!r}")
    return schema


def default_custom_resource(crd: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """The object pruned and defaulted as the apiserver returns a stored object on read."""
    schema = _schema_for(crd, obj)
    result = copy.deepcopy(obj)
    structural.prune(result, schema)
    structural.prune_non_nullable_nulls(result, schema)
    structural.apply_defaults(result, schema)
    return result


def process(crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None) -> Outcome:
    schema = _schema_for(crd, obj)
    result = copy.deepcopy(obj)
    unknown = structural.prune(result, schema)
    structural.prune_non_nullable_nulls(result, schema)
    structural.apply_defaults(result, schema)

    previous = values.ABSENT
    if old is not None:
        # The stored object as this schema reads it, for ratcheting and transition rules.
        previous = copy.deepcopy(old)
        structural.prune(previous, schema)
        structural.prune_non_nullable_nulls(previous, schema)
        structural.apply_defaults(previous, schema)

    found = objectmeta.validate_object_meta(result.get("metadata"))
    found.extend(values.validate(
        _with_schema_metadata_only(result), schema, ROOT,
        values.ABSENT if old is None else _with_schema_metadata_only(previous)))
    found.extend(_validate_embedded_resources(result, schema, ROOT))
    found.extend(values.validate_list_types(result, schema, ROOT, previous))
    if cel.has_rules(schema):
        if any(cause["reason"] in ("FieldValueTypeInvalid", "FieldValueNotSupported")
               for cause in found):
            found.append(causes.invalid("", None, _RULES_NOT_CHECKED))
        else:
            found.extend(cel.evaluate_rules(
                result, schema, ROOT, None if old is None else previous, has_old=old is not None))
    return Outcome(result, found, unknown)


def _with_schema_metadata_only(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with only the metadata fields a CRD schema may constrain (name,
    generateName); the rest of metadata is validated as ObjectMeta."""
    view = dict(obj)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        view["metadata"] = {key: meta[key] for key in ("name", "generateName") if key in meta}
    return view


def _validate_embedded_resources(value: Any, schema: Schema, path: Path) -> list[Cause]:
    """`x-kubernetes-embedded-resource` objects need apiVersion and kind, and valid metadata."""
    found: list[Cause] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource") and path != ROOT:
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    found.append(causes.required(path.child(key).field, "must not be empty"))
            meta = value.get("metadata")
            if isinstance(meta, dict) and (meta.get("name") or meta.get("generateName")):
                found.extend(
                    cause for cause in objectmeta.validate_object_meta(
                        meta, path.child("metadata").field)
                    if cause["reason"] != "FieldValueRequired")
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                found.extend(_validate_embedded_resources(item, properties[key], path.child(key)))
            elif isinstance(additional, dict):
                found.extend(_validate_embedded_resources(item, additional, path.key(key)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for position, item in enumerate(value):
            found.extend(_validate_embedded_resources(item, schema["items"], path.index(position)))
    return found


def validate_custom_resource(
    crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Cause]]:
    """(the object pruned and defaulted, the causes that make it invalid: [] when valid).

    `old` is the stored object on an update (CEL transition rules see it as `oldSelf`).
    Raises ValueError when the object's version is not one of the CRD's.
    """
    outcome = process(crd, obj, old)
    return outcome.obj, outcome.causes


def unknown_fields(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Paths of the fields that pruning drops (`spec.foo`), for `fieldValidation=Strict`
    (400: `strict decoding error: unknown field "spec.foo"`) and `=Warn` (a Warning header
    `unknown field "spec.foo"`)."""
    schema = _schema_for(crd, obj)
    return structural.prune(copy.deepcopy(obj), schema)
