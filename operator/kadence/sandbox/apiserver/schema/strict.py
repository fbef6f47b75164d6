"""Unknown fields under `fieldValidation=Strict|Warn`, and the words kube-apiserver uses for
them. kubectl 1.37 sends `fieldValidation=Strict` on every `apply`/`create` by default.

Custom resources: the fields pruning drops (`custom_resource.unknown_fields`). Built-in kinds:
the fields their published definition does not declare (the apiserver's strict JSON decoder
reports the same ones).
"""

from __future__ import annotations

import functools
from typing import Any

from .openapi import builtin_definitions
from .paths import Path

Schema = dict[str, Any]


@functools.lru_cache(maxsize=1)
def definitions_by_gvk() -> dict[tuple[str, str, str], str]:
    found = {}
    for name, definition in builtin_definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            found[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return found


def builtin_unknown_fields(obj: dict[str, Any]) -> list[str]:
    """Paths (`spec.template.spec.containers[0].colour`) of the fields of a built-in object
    that its kind does not have; [] for kinds without a published definition."""
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    name = definitions_by_gvk().get((group, version, str(obj.get("kind") or "")))
    if name is None:
        return []
    found: list[str] = []
    _walk(obj, builtin_definitions()[name], Path(), found)
    return found


def _resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = builtin_definitions().get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _walk(value: Any, schema: Schema, path: Path, found: list[str]) -> None:
    schema = _resolve(schema)
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                _walk(item, properties[key], path.child(key), found)
            elif isinstance(additional, dict):
                _walk(item, additional, path.child(key), found)
            elif properties is not None:
                found.append(path.child(key).openapi)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for position, item in enumerate(value):
            _walk(item, schema["items"], path.index(position), found)


def strict_decoding_message(kind: str, version: str, paths: list[str]) -> str:
    """The 400 BadRequest message of a create/update/patch with `fieldValidation=Strict`."""
    listed = ", ".join(f'unknown field "{path}"' for path in paths)
    return (f"{kind} in version \"{version}\" cannot be handled as a {kind}: "
            f"strict decoding error: {listed}")


def warning_texts(paths: list[str]) -> list[str]:
    """The `Warning` headers (`299 - "..."`) of a request with `fieldValidation=Warn`."""
    return [f'299 - "unknown field \\"{path}\\""' for path in paths]


def server_side_apply_message(paths: list[str]) -> str:
    """Part of the 400 message when a server-side apply body has unknown fields (Strict):
    `.spec.colour: field not declared in schema`."""
    return ", ".join(f".{path}: field not declared in schema" for path in paths)
