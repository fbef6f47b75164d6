"""The checks kube-apiserver makes before it accepts an apiextensions.k8s.io/v1 CRD: names,
versions, structural schemas (every field typed, no `$ref`, metadata restrictions,
list/map types) and CEL rules that compile. Causes are worded as the apiserver's."""

from __future__ import annotations

import copy
import re
from typing import Any

from . import causes, objectmeta
from .causes import Cause
from .crd_schema import validate_version_schema

Schema = dict[str, Any]

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PRINTER_COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]


def dns1035_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append(objectmeta.max_len_error(63))
    if not _DNS1035_LABEL.match(value):
        errors.append(objectmeta.regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?", "my-name", "abc-123"))
    return errors


def with_defaults(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD with the fields the apiserver defaults (singular, listKind, conversion)."""
    result = copy.deepcopy(crd)
    spec = result.setdefault("spec", {})
    if not isinstance(spec, dict):
        return result
    names = spec.setdefault("names", {})
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    return result


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    """The causes for which kube-apiserver would refuse this CRD ([] when acceptable)."""
    malformed = _shape_errors(crd)
    if malformed:
        return malformed
    crd = with_defaults(crd)
    found: list[Cause] = []
    meta = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = meta.get("name") or ""
    if not name:
        found.append(causes.required("metadata.name", "name or generateName is required"))
    else:
        found.extend(causes.invalid("metadata.name", name, text)
                     for text in objectmeta.dns1123_subdomain_errors(name))
        if name != f"{names.get('plural', '')}.{spec.get('group', '')}":
            found.append(causes.invalid(
                "metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    found.extend(_validate_group(spec.get("group") or ""))
    found.extend(_validate_names(names))
    scope = spec.get("scope") or ""
    if not scope:
        found.append(causes.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        found.append(causes.not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    if spec.get("preserveUnknownFields"):
        found.append(causes.invalid(
            "spec.preserveUnknownFields", True,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in "
            "spec.versions[*].schema instead"))
    found.extend(_validate_versions(spec.get("versions") or []))
    return found


def _shape_errors(crd: Any) -> list[Cause]:
    """Fields of the wrong JSON type (the apiserver could not decode such a CRD at all)."""
    def wrong(field: str, value: Any, expected: str) -> Cause:
        return causes.invalid(field, value, f"must be of type {expected}")

    if not isinstance(crd, dict):
        return [wrong("<root>", crd, "object")]
    found = []
    for key in ("metadata", "spec"):
        if key in crd and not isinstance(crd[key], dict):
            found.append(wrong(key, crd[key], "object"))
    meta = crd.get("metadata") if isinstance(crd.get("metadata"), dict) else {}
    if "name" in meta and not isinstance(meta["name"], str):
        found.append(wrong("metadata.name", meta["name"], "string"))
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    for key in ("group", "scope"):
        if key in spec and not isinstance(spec[key], str):
            found.append(wrong(f"spec.{key}", spec[key], "string"))
    names = spec.get("names", {})
    if not isinstance(names, dict):
        found.append(wrong("spec.names", names, "object"))
    else:
        for key in ("plural", "singular", "kind", "listKind"):
            if key in names and not isinstance(names[key], str):
                found.append(wrong(f"spec.names.{key}", names[key], "string"))
        for key in ("shortNames", "categories"):
            value = names.get(key, [])
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                found.append(wrong(f"spec.names.{key}", value, "array of strings"))
    versions = spec.get("versions", [])
    if not isinstance(versions, list):
        found.append(wrong("spec.versions", versions, "array"))
        return found
    for position, version in enumerate(versions):
        field = f"spec.versions[{position}]"
        if not isinstance(version, dict):
            found.append(wrong(field, version, "object"))
            continue
        if "name" in version and not isinstance(version["name"], str):
            found.append(wrong(f"{field}.name", version["name"], "string"))
        for key in ("served", "storage"):
            if key in version and not isinstance(version[key], bool):
                found.append(wrong(f"{field}.{key}", version[key], "boolean"))
        for key in ("schema", "subresources"):
            if key in version and not isinstance(version[key], (dict, type(None))):
                found.append(wrong(f"{field}.{key}", version[key], "object"))
        schema = version.get("schema")
        if isinstance(schema, dict) and not isinstance(schema.get("openAPIV3Schema", {}), (dict, type(None))):
            found.append(wrong(f"{field}.schema.openAPIV3Schema", schema["openAPIV3Schema"], "object"))
        subresources = version.get("subresources")
        if isinstance(subresources, dict) and not isinstance(subresources.get("scale", {}), (dict, type(None))):
            found.append(wrong(f"{field}.subresources.scale", subresources["scale"], "object"))
        scale = subresources.get("scale") if isinstance(subresources, dict) else None
        for key in ("specReplicasPath", "statusReplicasPath", "labelSelectorPath"):
            if isinstance(scale, dict) and key in scale and not isinstance(scale[key], str):
                found.append(wrong(f"{field}.subresources.scale.{key}", scale[key], "string"))
        columns = version.get("additionalPrinterColumns", [])
        if not isinstance(columns, list) or not all(isinstance(column, dict) for column in columns):
            found.append(wrong(f"{field}.additionalPrinterColumns", columns, "array of objects"))
            continue
        for index, column in enumerate(columns):
            for key in ("name", "type", "jsonPath", "format", "description"):
                if key in column and not isinstance(column[key], str):
                    found.append(wrong(f"{field}.additionalPrinterColumns[{index}].{key}",
                                       column[key], "string"))
    return found


def _validate_group(group: str) -> list[Cause]:
    if not group:
        return [causes.required("spec.group")]
    found = []
    if len(group.split(".")) < 2:
        found.append(causes.invalid("spec.group", group, "should be a domain with at least one dot"))
    found.extend(causes.invalid("spec.group", group, text)
                 for text in objectmeta.dns1123_subdomain_errors(group))
    return found


def _validate_names(names: dict[str, Any]) -> list[Cause]:
    found = []
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            found.append(causes.required(f"spec.names.{key}"))
    for key in ("plural", "singular"):
        value = names.get(key) or ""
        if value:
            errors = dns1035_label_errors(value)
            if errors:
                found.append(causes.invalid(f"spec.names.{key}", value, ",".join(errors)))
    for key in ("kind", "listKind"):
        value = names.get(key) or ""
        if value:
            errors = dns1035_label_errors(value.lower())
            if errors:
                found.append(causes.invalid(
                    f"spec.names.{key}", value,
                    "may have mixed case, but should otherwise match: " + ",".join(errors)))
    for key in ("shortNames", "categories"):
        for position, value in enumerate(names.get(key) or []):
            errors = dns1035_label_errors(value)
            if errors:
                found.append(causes.invalid(f"spec.names.{key}[{position}]", value, ",".join(errors)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        found.append(causes.invalid(
            "spec.names.listKind", names["listKind"], "kind and listKind may not be the same"))
    return found


def _validate_versions(versions: list[dict[str, Any]]) -> list[Cause]:
    if not versions:
        return [causes.required("spec.versions", "must have exactly one version marked as storage version")]
    found = []
    seen: set[str] = set()
    storage = 0
    for position, version in enumerate(versions):
        field = f"spec.versions[{position}]"
        version_name = version.get("name") or ""
        if not version_name:
            found.append(causes.required(f"{field}.name"))
        else:
            errors = dns1035_label_errors(version_name)
            if errors:
                found.append(causes.invalid(f"{field}.name", version_name, ",".join(errors)))
        if version_name in seen:
            found.append(causes.invalid("spec.versions", [v.get("name") for v in versions],
                                        "must contain unique version names"))
        seen.add(version_name)
        storage += 1 if version.get("storage") else 0
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        schema_path = f"{field}.schema.openAPIV3Schema"
        if not isinstance(schema, dict):
            found.append(causes.required(schema_path, "schemas are required"))
        else:
            found.extend(validate_version_schema(schema, schema_path))
            found.extend(_validate_subresources(version.get("subresources") or {}, field))
        found.extend(_validate_printer_columns(version.get("additionalPrinterColumns") or [], field))
    if storage != 1:
        found.append(causes.invalid(
            "spec.versions", [v.get("name") for v in versions],
            "must have exactly one version marked as storage version"))
    return found


def _validate_subresources(subresources: dict[str, Any], field: str) -> list[Cause]:
    scale = subresources.get("scale")
    if not isinstance(scale, dict):
        return []
    found = []
    base = f"{field}.subresources.scale"
    for key in ("specReplicasPath", "statusReplicasPath"):
        path = scale.get(key) or ""
        prefix = ".spec." if key.startswith("spec") else ".status."
        if not path:
            found.append(causes.required(f"{base}.{key}"))
        elif not path.startswith(prefix):
            found.append(causes.invalid(f"{base}.{key}", path,
                                        f"should be a json path under {prefix[:-1]}"))
    return found


def _validate_printer_columns(columns: list[dict[str, Any]], field: str) -> list[Cause]:
    found = []
    for position, column in enumerate(columns):
        base = f"{field}.additionalPrinterColumns[{position}]"
        if not column.get("name"):
            found.append(causes.required(f"{base}.name"))
        column_type = column.get("type") or ""
        if not column_type:
            found.append(causes.required(f"{base}.type"))
        elif column_type not in _PRINTER_COLUMN_TYPES:
            found.append(causes.not_supported(f"{base}.type", column_type, _PRINTER_COLUMN_TYPES))
        if not column.get("jsonPath"):
            found.append(causes.required(f"{base}.jsonPath"))
    return found


def _is_established(crd: dict[str, Any]) -> bool:
    conditions = ((crd.get("status") or {}).get("conditions")) or []
    return any(isinstance(condition, dict) and condition.get("type") == "Established"
               and condition.get("status") == "True" for condition in conditions)


def validate_crd_update(crd: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """validate_crd, plus what an update may not change: the group and plural (they make the
    resource's name), and once the CRD is established, its scope and kind."""
    found = validate_crd(crd)
    if _shape_errors(old):
        return found
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    old_names = old_spec.get("names") if isinstance(old_spec.get("names"), dict) else {}
    immutable = [("spec.group", spec.get("group"), old_spec.get("group")),
                 ("spec.names.plural", names.get("plural"), old_names.get("plural"))]
    if _is_established(old):
        immutable[:0] = [("spec.scope", spec.get("scope"), old_spec.get("scope")),
                         ("spec.names.kind", names.get("kind"), old_names.get("kind"))]
    for field, new_value, old_value in immutable:
        if new_value != old_value:
            found.append(causes.invalid(field, new_value, "field is immutable"))
    return found
