"""The checks kube-apiserver makes before it accepts an apiextensions.k8s.io/v1 CRD: names,
versions, structural schemas (every field typed, no `$ref`, metadata restrictions,
list/map types) and CEL rules that compile. Causes are worded as the apiserver's."""

from __future__ import annotations

import copy
import re
from typing import Any

from . import causes, cel, objectmeta, structural, values
from .causes import Cause
from .paths import Path

Schema = dict[str, Any]

_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_LIST_TYPES = ["atomic", "map", "set"]
_MAP_TYPES = ["atomic", "granular"]
_RULE_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid",
                 "FieldValueRequired"]
_PRINTER_COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
_JUNCTORS = ("allOf", "anyOf", "oneOf")
# Keywords a value validation (inside allOf/anyOf/oneOf/not) may not carry: they shape the
# structure, which must be given once, outside.
_STRUCTURE_ONLY = ("type", "default", "additionalProperties", "nullable", "description",
                   "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                   "x-kubernetes-int-or-string", "x-kubernetes-list-type",
                   "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                   "x-kubernetes-validations")


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
    """The CRD with the fields the apiserver defaults (singular, listKind, scope...)."""
    result = copy.deepcopy(crd)
    spec = result.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    return result


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    """The causes for which kube-apiserver would refuse this CRD ([] when acceptable)."""
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
            found.extend(validate_structural_schema(schema, schema_path))
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


# ---- structural schemas ---------------------------------------------------------------

def validate_structural_schema(root: Schema, field: str) -> list[Cause]:
    found: list[Cause] = []
    root_type = root.get("type")
    if not root_type:
        found.append(causes.required(f"{field}.type", "must not be empty at the root"))
    elif root_type != "object":
        found.append(causes.invalid(f"{field}.type", root_type, "must be object at the root"))
    properties = root.get("properties") or {}
    if "metadata" in properties:
        found.extend(_validate_root_metadata(properties["metadata"], f"{field}.properties[metadata]"))
    for key in ("apiVersion", "kind"):
        if key in properties and properties[key].get("type") not in (None, "string"):
            found.append(causes.invalid(f"{field}.properties[{key}].type",
                                        properties[key].get("type"), "must be string"))
    found.extend(_validate_node(root, field, root, at_root=True))
    return found


def _validate_root_metadata(schema: Schema, field: str) -> list[Cause]:
    allowed = {"type", "properties", "description"}
    properties = schema.get("properties") or {}
    if set(schema) - allowed or set(properties) - {"name", "generateName"} or (
        schema.get("type") not in (None, "object")
    ):
        return [causes.forbidden(field, "must not specify anything other than name and "
                                        "generateName, but metadata is implicitly specified")]
    found = []
    for key, sub in properties.items():
        if sub.get("type") != "string":
            found.append(causes.forbidden(
                f"{field}.properties[{key}]", "must not specify anything other than name and "
                "generateName, but metadata is implicitly specified"))
    return found


def _validate_node(schema: Schema, field: str, root: Schema, at_root: bool = False,
                   inside_junctor: bool = False) -> list[Cause]:
    found: list[Cause] = []
    if not isinstance(schema, dict):
        return [causes.invalid(field, schema, "must be a schema object")]
    if "$ref" in schema:
        found.append(causes.forbidden(f"{field}.$ref", "$ref is not supported"))
    schema_type = schema.get("type")
    if schema_type and schema_type not in _TYPES:
        found.append(causes.not_supported(f"{field}.type", schema_type, _TYPES))
    if schema.get("uniqueItems"):
        found.append(causes.forbidden(
            f"{field}.uniqueItems",
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        found.append(causes.invalid(f"{field}.x-kubernetes-preserve-unknown-fields", False,
                                    "must be true or undefined"))
    additional = schema.get("additionalProperties")
    if additional is False:
        found.append(causes.forbidden(f"{field}.additionalProperties",
                                      "additionalProperties cannot be set to false"))
    if additional not in (None, False) and schema.get("properties"):
        found.append(causes.forbidden(f"{field}.additionalProperties",
                                      "additionalProperties and properties are mutual exclusive"))
    if schema.get("x-kubernetes-int-or-string") and schema_type:
        found.append(causes.invalid(f"{field}.type", schema_type,
                                    "must be empty if x-kubernetes-int-or-string is true"))
    if schema.get("x-kubernetes-embedded-resource") and schema_type != "object":
        found.append(causes.invalid(f"{field}.type", schema_type or "",
                                    "must be object if x-kubernetes-embedded-resource is true"))
    if "default" in schema and not inside_junctor:
        found.extend(_validate_default(schema, field))
    found.extend(_validate_list_type(schema, field))
    found.extend(_validate_map_type(schema, field))
    found.extend(_validate_rules(schema, field, resource_root=at_root))

    properties = schema.get("properties") or {}
    for key, sub in properties.items():
        sub_field = f"{field}.properties[{key}]"
        if at_root and key == "metadata":
            continue
        if not inside_junctor:
            found.extend(_require_type(sub, sub_field, "must not be empty for specified object fields"))
        found.extend(_validate_node(sub, sub_field, root, inside_junctor=inside_junctor))
    if isinstance(additional, dict):
        sub_field = f"{field}.additionalProperties"
        if not inside_junctor:
            found.extend(_require_type(additional, sub_field,
                                       "must not be empty for specified object fields"))
        found.extend(_validate_node(additional, sub_field, root, inside_junctor=inside_junctor))
    items = schema.get("items")
    if isinstance(items, dict):
        sub_field = f"{field}.items"
        if not inside_junctor:
            found.extend(_require_type(items, sub_field,
                                       "must not be empty for specified array items"))
        found.extend(_validate_node(items, sub_field, root, inside_junctor=inside_junctor))
    elif isinstance(items, list):
        found.append(causes.forbidden(f"{field}.items", "items must be a schema object and not an array"))
    if schema_type == "array" and not isinstance(items, dict) and not inside_junctor:
        found.append(causes.required(f"{field}.items", "must be specified"))

    for junctor in _JUNCTORS:
        for position, branch in enumerate(schema.get(junctor) or []):
            branch_field = f"{field}.{junctor}[{position}]"
            if schema.get("x-kubernetes-int-or-string") and _is_int_or_string_branch(branch):
                continue  # the documented `anyOf: [{type: integer}, {type: string}]` pattern
            found.extend(_validate_value_validation(branch, branch_field, root))
    if isinstance(schema.get("not"), dict):
        found.extend(_validate_value_validation(schema["not"], f"{field}.not", root))
    return found


def _require_type(schema: Schema, field: str, message: str) -> list[Cause]:
    if not isinstance(schema, dict) or schema.get("type"):
        return []
    if schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    return [causes.required(f"{field}.type", message)]


def _is_int_or_string_branch(branch: Any) -> bool:
    """`{type: integer}`, `{type: string}` or `{anyOf: [those]}` under int-or-string."""
    if not isinstance(branch, dict):
        return False
    if set(branch) == {"type"}:
        return branch["type"] in ("integer", "string")
    if set(branch) == {"anyOf"}:
        return all(_is_int_or_string_branch(item) for item in branch["anyOf"])
    return False


def _validate_value_validation(schema: Schema, field: str, root: Schema) -> list[Cause]:
    found = []
    if not isinstance(schema, dict):
        return [causes.invalid(field, schema, "must be a schema object")]
    for key in _STRUCTURE_ONLY:
        if key in schema:
            found.append(causes.forbidden(f"{field}.{key}", "must be empty to be structural"))
    found.extend(_validate_node(
        {k: v for k, v in schema.items() if k not in _STRUCTURE_ONLY}, field, root,
        inside_junctor=True))
    return found


def _validate_default(schema: Schema, field: str) -> list[Cause]:
    """A default must survive pruning unchanged and be valid against its own schema."""
    default = schema["default"]
    if default is None and not schema.get("nullable"):
        return [causes.invalid(f"{field}.default", None, "must not be null for non-nullable fields")]
    wrapper = {"type": "object", "properties": {"x": schema}}
    pruned = {"x": copy.deepcopy(default)}
    unknown = []
    structural._prune(pruned, wrapper, Path(), unknown)
    found = [causes.invalid(f"{field}.default", default, "must not have unknown fields")
             for _ in unknown[:1]]
    for cause in values.validate(default, {k: v for k, v in schema.items() if k != "default"},
                                 Path()):
        # The default is validated as a document of its own, its errors under `.default`.
        inner = cause["field"]
        cause["field"] = f"{field}.default" if inner == causes.NO_FIELD else f"{field}.default.{inner}"
        found.append(cause)
    return found


def _validate_list_type(schema: Schema, field: str) -> list[Cause]:
    found = []
    list_type = schema.get("x-kubernetes-list-type")
    map_keys = schema.get("x-kubernetes-list-map-keys")
    if list_type is not None:
        if list_type not in _LIST_TYPES:
            found.append(causes.not_supported(f"{field}.x-kubernetes-list-type", list_type, _LIST_TYPES))
        if schema.get("type") != "array":
            found.append(causes.invalid(f"{field}.type", schema.get("type") or "",
                                        "must be array if x-kubernetes-list-type is specified"))
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    if list_type == "map":
        if not map_keys:
            found.append(causes.required(f"{field}.x-kubernetes-list-map-keys",
                                         "must not be empty if x-kubernetes-list-type is map"))
        if items.get("type") != "object":
            found.append(causes.invalid(f"{field}.items.type", items.get("type") or "",
                                        "must be object if parent array's x-kubernetes-list-type is map"))
        item_properties = items.get("properties") or {}
        for position, key in enumerate(map_keys or []):
            key_schema = item_properties.get(key)
            key_field = f"{field}.x-kubernetes-list-map-keys[{position}]"
            if key_schema is None:
                found.append(causes.invalid(key_field, key, "entries must all be names of item properties"))
            elif key_schema.get("type") not in ("string", "integer", "number", "boolean") and not (
                key_schema.get("x-kubernetes-int-or-string")
            ):
                found.append(causes.invalid(key_field, key, "must be a scalar type"))
            elif key not in (items.get("required") or []) and "default" not in key_schema:
                found.append(causes.required(
                    f"{field}.items.properties[{key}].default",
                    "this property is in x-kubernetes-list-map-keys, so it must have a default "
                    "or be a required property"))
    elif map_keys:
        found.append(causes.forbidden(f"{field}.x-kubernetes-list-map-keys",
                                      "must be empty if x-kubernetes-list-type is not map"))
    if list_type == "set" and items.get("type") in ("object", "array") and (
        items.get("x-kubernetes-map-type") != "atomic" and items.get("x-kubernetes-list-type") != "atomic"
    ):
        found.append(causes.invalid(f"{field}.items.x-kubernetes-map-type", items.get("x-kubernetes-map-type") or "",
                                    "must be atomic as item of a list with x-kubernetes-list-type=set"))
    return found


def _validate_map_type(schema: Schema, field: str) -> list[Cause]:
    map_type = schema.get("x-kubernetes-map-type")
    if map_type is None:
        return []
    found = []
    if map_type not in _MAP_TYPES:
        found.append(causes.not_supported(f"{field}.x-kubernetes-map-type", map_type, _MAP_TYPES))
    if schema.get("type") != "object":
        found.append(causes.invalid(f"{field}.type", schema.get("type") or "",
                                    "must be object if x-kubernetes-map-type is specified"))
    return found


def go_validation_rule(rule: dict[str, Any]) -> str:
    """A rule as Go's %#v prints apiextensions.ValidationRule (the bad value of rule errors)."""
    reason = rule.get("reason")
    reason_text = (f'(*apiextensions.FieldValueErrorReason)("{reason}")' if reason
                   else "(*apiextensions.FieldValueErrorReason)(nil)")
    optional = rule.get("optionalOldSelf")
    optional_text = "(*bool)(nil)" if optional is None else f"(*bool)({str(optional).lower()})"
    return (
        f"apiextensions.ValidationRule{{Rule:{causes.go_quote(rule.get('rule', ''))}, "
        f"Message:{causes.go_quote(rule.get('message', ''))}, "
        f"MessageExpression:{causes.go_quote(rule.get('messageExpression', ''))}, "
        f"Reason:{reason_text}, FieldPath:{causes.go_quote(rule.get('fieldPath', ''))}, "
        f"OptionalOldSelf:{optional_text}}}"
    )


def _validate_rules(schema: Schema, field: str, resource_root: bool = False) -> list[Cause]:
    found: list[Cause] = []
    for position, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        base = f"{field}.x-kubernetes-validations[{position}]"
        if not isinstance(rule, dict) or not rule.get("rule"):
            found.append(causes.required(f"{base}.rule"))
            continue
        reason = rule.get("reason")
        if reason is not None and reason not in _RULE_REASONS:
            found.append(causes.not_supported(f"{base}.reason", reason, _RULE_REASONS))
        if rule.get("fieldPath") and not _field_path_exists(schema, rule["fieldPath"]):
            found.append(causes.invalid(f"{base}.fieldPath", rule["fieldPath"],
                                        "fieldPath must be a valid path"))
        if rule.get("message", "") and rule["message"].strip() == "":
            found.append(causes.invalid(f"{base}.message", rule["message"],
                                        "message must be non-empty if specified"))
        for problem in cel.compile_errors(rule, schema, resource_root):
            key, _, text = problem.partition(": ")
            found.append(_rule_error(f"{base}.{key}", rule, text))
    return found


def _rule_error(field: str, rule: dict[str, Any], detail: str) -> Cause:
    cause = causes.invalid(field, "", detail)
    cause["message"] = f"Invalid value: {go_validation_rule(rule)}: {detail}"
    return cause


_FIELD_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]")


def _field_path_exists(schema: Schema, field_path: str) -> bool:
    """A rule's fieldPath (`.a.b`, `.m['key']`) names a field of the schema (ValidFieldPath)."""
    node: Any = schema
    position = 0
    while position < len(field_path):
        match = _FIELD_PATH_TOKEN.match(field_path, position)
        if match is None or not isinstance(node, dict):
            return False
        position = match.end()
        name = match[1] if match[1] is not None else match[2]
        if node.get("properties") is not None:
            if name not in node["properties"]:
                return False
            node = node["properties"][name]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True
