"""The checks of a CRD version's openAPIV3Schema, in kube-apiserver's three stages:

1. the OpenAPI keywords Kubernetes allows and its extensions' rules, with the CEL rules
   compiled where the schema around them is sound (apiextensions' validation.go);
2. the structural-schema invariants and completeness (apiextensions' schema package),
   reported sorted by their text as the apiserver sorts them;
3. only for a structural schema: every `default` valid, pruned and passing the rules.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from . import causes, cel, structural, values
from .causes import Cause
from .paths import Path

Schema = dict[str, Any]

_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_LIST_TYPES = ["atomic", "set", "map"]
_MAP_TYPES = ["atomic", "granular"]
_RULE_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid",
                 "FieldValueRequired"]
_RESOURCE_META_FIELDS = ("metadata", "apiVersion", "kind")
_UNSUPPORTED_KEYWORDS = ("id", "additionalItems", "patternProperties", "definitions",
                         "dependencies")
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]

# What may not appear inside allOf/anyOf/oneOf/not, and how the apiserver says so.
_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
)
_LOOKAROUND = re.compile(r"\(\?(=|!|<=|<!)|\\[1-9]")


def validate_version_schema(root: Schema, field: str) -> list[Cause]:
    """All causes for one version's openAPIV3Schema at `field`."""
    malformed = shape_errors(root, field)
    if malformed:
        return malformed
    openapi_errors = _openapi_checks(root, field, is_root=True, inside_meta=False,
                                     defaults_forbidden=None)
    structural_errors = sorted(_structural_checks(root, field),
                               key=lambda cause: f"{cause['field']}: {cause['message']}")
    found = openapi_errors + structural_errors
    if not found:
        found.extend(_default_checks(root, field, is_root=True))
    return found


# ---- stage 0: what the apiserver could not even decode into JSONSchemaProps --------------

_STRING_KEYWORDS = ("type", "format", "pattern", "description", "title", "$ref", "id",
                    "$schema", "x-kubernetes-list-type", "x-kubernetes-map-type")
_INTEGER_KEYWORDS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties",
                     "minProperties")
_NUMBER_KEYWORDS = ("maximum", "minimum", "multipleOf")
_BOOLEAN_KEYWORDS = ("exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "nullable",
                     "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                     "x-kubernetes-int-or-string")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "definitions")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf")
_STRING_LIST_KEYWORDS = ("required", "x-kubernetes-list-map-keys")
_RULE_STRING_FIELDS = ("rule", "message", "messageExpression", "fieldPath", "reason")


def _wrong_type(field: str, value: Any, expected: str) -> Cause:
    """A keyword of the wrong JSON type (the apiserver's decoder refuses it)."""
    return causes.invalid(field, value, f"must be of type {expected}")


def shape_errors(schema: Any, field: str) -> list[Cause]:
    """Keywords whose values have the wrong JSON type, so that the checks after this one
    can rely on the shapes (kube-apiserver fails to decode such a CRD at all)."""
    if not isinstance(schema, dict):
        return [_wrong_type(field, schema, "object")]
    found: list[Cause] = []

    def check(key: str, valid: bool, expected: str) -> bool:
        if key in schema and not valid:
            found.append(_wrong_type(f"{field}.{key}", schema[key], expected))
            return False
        return key in schema

    for key in _STRING_KEYWORDS:
        check(key, isinstance(schema.get(key), str), "string")
    for key in _INTEGER_KEYWORDS:
        value = schema.get(key)
        check(key, isinstance(value, int) and not isinstance(value, bool), "integer")
    for key in _NUMBER_KEYWORDS:
        value = schema.get(key)
        check(key, isinstance(value, (int, float)) and not isinstance(value, bool), "number")
    for key in _BOOLEAN_KEYWORDS:
        check(key, isinstance(schema.get(key), bool), "boolean")
    for key in _STRING_LIST_KEYWORDS:
        value = schema.get(key)
        check(key, isinstance(value, list) and all(isinstance(item, str) for item in value),
              "array of strings")
    check("enum", isinstance(schema.get("enum"), list), "array")
    for key in _SCHEMA_MAP_KEYWORDS:
        if check(key, isinstance(schema.get(key), dict), "object"):
            for name, sub in schema[key].items():
                found.extend(shape_errors(sub, f"{field}.{key}[{name}]"))
    for key in _SCHEMA_LIST_KEYWORDS:
        if check(key, isinstance(schema.get(key), list), "array"):
            for position, sub in enumerate(schema[key]):
                found.extend(shape_errors(sub, f"{field}.{key}[{position}]"))
    if check("not", isinstance(schema.get("not"), dict), "object"):
        found.extend(shape_errors(schema["not"], f"{field}.not"))
    items = schema.get("items")
    if check("items", isinstance(items, (dict, list)), "object or array"):
        for position, sub in enumerate(items if isinstance(items, list) else [items]):
            found.extend(shape_errors(
                sub, f"{field}.items[{position}]" if isinstance(items, list) else f"{field}.items"))
    for key in ("additionalProperties", "additionalItems"):
        value = schema.get(key)
        if check(key, isinstance(value, (bool, dict)), "boolean or object") and isinstance(value, dict):
            found.extend(shape_errors(value, f"{field}.{key}"))
    rules = schema.get("x-kubernetes-validations")
    if check("x-kubernetes-validations", isinstance(rules, list), "array"):
        for position, rule in enumerate(rules):
            rule_field = f"{field}.x-kubernetes-validations[{position}]"
            if not isinstance(rule, dict):
                found.append(_wrong_type(rule_field, rule, "object"))
                continue
            for key in _RULE_STRING_FIELDS:
                if key in rule and not isinstance(rule[key], str):
                    found.append(_wrong_type(f"{rule_field}.{key}", rule[key], "string"))
            if "optionalOldSelf" in rule and not isinstance(rule["optionalOldSelf"], bool):
                found.append(_wrong_type(f"{rule_field}.optionalOldSelf", rule["optionalOldSelf"],
                                         "boolean"))
    return found


# ---- stage 1: OpenAPI keywords and Kubernetes extensions --------------------------------

def _openapi_checks(schema: Any, field: str, *, is_root: bool, inside_meta: bool,
                    defaults_forbidden: str | None) -> list[Cause]:
    if not isinstance(schema, dict):
        return []
    found: list[Cause] = []
    if "$ref" in schema:
        found.append(causes.forbidden(f"{field}.$ref", "$ref is not supported"))
    for keyword in _UNSUPPORTED_KEYWORDS:
        if schema.get(keyword):
            found.append(causes.forbidden(f"{field}.{keyword}", f"{keyword} is not supported."))
    schema_type = schema.get("type")
    if schema_type and schema_type not in _TYPES:
        found.append(causes.not_supported(f"{field}.type", schema_type, _TYPES))
    if "default" in schema and defaults_forbidden:
        found.append(causes.forbidden(f"{field}.default", f"must not be set {defaults_forbidden}"))
    if isinstance(schema.get("items"), list):
        found.append(causes.forbidden(f"{field}.items",
                                      "items must be a schema object and not an array"))
    if schema.get("uniqueItems"):
        found.append(causes.forbidden(
            f"{field}.uniqueItems",
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))

    additional = schema.get("additionalProperties")
    properties = schema.get("properties") or {}
    if additional is not None:
        if additional is False:
            found.append(causes.forbidden(f"{field}.additionalProperties",
                                          "additionalProperties cannot be set to false"))
        if properties and (additional is False or isinstance(additional, dict)):
            found.append(causes.forbidden(
                f"{field}.additionalProperties",
                "additionalProperties and properties are mutual exclusive"))
        found.extend(_openapi_checks(
            additional, f"{field}.additionalProperties", is_root=False, inside_meta=inside_meta,
            defaults_forbidden=("inside additionalProperties applying to object metadata"
                                if inside_meta else defaults_forbidden)))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    for name, sub in properties.items():
        sub_meta, sub_forbidden = inside_meta, defaults_forbidden
        if (is_root or embedded) and name in _RESOURCE_META_FIELDS:
            sub_meta = True
            if is_root:
                sub_forbidden = f"in top-level {name}"
        found.extend(_openapi_checks(sub, f"{field}.properties[{name}]", is_root=False,
                                     inside_meta=sub_meta, defaults_forbidden=sub_forbidden))
    if isinstance(schema.get("not"), dict):
        found.extend(_openapi_checks(schema["not"], f"{field}.not", is_root=False,
                                     inside_meta=inside_meta, defaults_forbidden=defaults_forbidden))
    for junctor in ("allOf", "oneOf", "anyOf"):
        for position, branch in enumerate(schema.get(junctor) or []):
            found.extend(_openapi_checks(branch, f"{field}.{junctor}[{position}]", is_root=False,
                                         inside_meta=inside_meta,
                                         defaults_forbidden=defaults_forbidden))
    if isinstance(schema.get("items"), dict):
        found.extend(_openapi_checks(schema["items"], f"{field}.items", is_root=False,
                                     inside_meta=inside_meta, defaults_forbidden=defaults_forbidden))

    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        found.append(causes.invalid(f"{field}.x-kubernetes-preserve-unknown-fields", False,
                                    "must be true or undefined"))
    found.extend(_map_type_checks(schema, field))
    found.extend(_list_type_checks(schema, field))
    found.extend(_rule_static_checks(schema, field))
    if not found:
        found.extend(_rule_compile_checks(schema, field, is_root))
    return found


def _must_be(schema: Schema, field: str, wanted: str, message: str) -> list[Cause]:
    schema_type = schema.get("type")
    if schema_type == wanted:
        return []
    if not schema_type:
        return [causes.required(f"{field}.type", message)]
    return [causes.invalid(f"{field}.type", schema_type, message)]


def _map_type_checks(schema: Schema, field: str) -> list[Cause]:
    if "x-kubernetes-map-type" not in schema:
        return []
    map_type = schema["x-kubernetes-map-type"]
    found = _must_be(schema, field, "object", "must be object if x-kubernetes-map-type is specified")
    if map_type not in _MAP_TYPES:
        found.append(causes.not_supported(f"{field}.x-kubernetes-map-type", map_type, _MAP_TYPES))
    return found


def _list_type_checks(schema: Schema, field: str) -> list[Cause]:
    found: list[Cause] = []
    list_type = schema.get("x-kubernetes-list-type")
    map_keys = schema.get("x-kubernetes-list-map-keys") or []
    items = schema.get("items") if isinstance(schema.get("items"), dict) else None
    if list_type is not None and schema.get("type") != "array":
        found.extend(_must_be(schema, field, "array",
                              "must be array if x-kubernetes-list-type is specified"))
    elif list_type == "set" and items is not None:
        if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
            found.append(causes.invalid(
                f"{field}.items.x-kubernetes-list-type", items.get("x-kubernetes-list-type"),
                "must be atomic as item of a list with x-kubernetes-list-type=set"))
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            found.append(causes.invalid(
                f"{field}.items.x-kubernetes-map-type", items.get("x-kubernetes-list-type"),
                "must be atomic as item of a list with x-kubernetes-list-type=set"))
    if list_type is not None and list_type not in _LIST_TYPES:
        found.append(causes.not_supported(f"{field}.x-kubernetes-list-type", list_type, _LIST_TYPES))
    if map_keys:
        if list_type is None:
            found.append(causes.required(f"{field}.x-kubernetes-list-type",
                                         "must be map if x-kubernetes-list-map-keys is non-empty"))
        elif list_type != "map":
            found.append(causes.invalid(f"{field}.x-kubernetes-list-type", list_type,
                                        "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        found.extend(_map_list_checks(schema, field, map_keys, items))
    return found


def _map_list_checks(schema: Schema, field: str, map_keys: list[str],
                     items: Schema | None) -> list[Cause]:
    found: list[Cause] = []
    if not map_keys:
        found.append(causes.required(f"{field}.x-kubernetes-list-map-keys",
                                     "must not be empty if x-kubernetes-list-type is map"))
    if "items" not in schema:
        found.append(causes.required(f"{field}.items",
                                     "must have a schema if x-kubernetes-list-type is map"))
    if items is None:
        return found
    if items.get("type") != "object":
        found.append(causes.invalid(f"{field}.items.type", items.get("type", ""),
                                    "must be object if parent array's x-kubernetes-list-type is map"))
        return found
    item_properties = items.get("properties") or {}
    seen: set[str] = set()
    for key in map_keys:
        key_schema = item_properties.get(key)
        if key_schema is None:
            found.append(causes.invalid(f"{field}.x-kubernetes-list-map-keys", map_keys,
                                        "entries must all be names of item properties"))
        else:
            if key_schema.get("type") in ("array", "object"):
                found.append(causes.invalid(
                    f"{field}.items.properties[{key}].type", items.get("type"),
                    "must be a scalar type if parent array's x-kubernetes-list-type is map"))
            if key not in (items.get("required") or []) and "default" not in key_schema:
                found.append(causes.required(
                    f"{field}.items.properties[{key}].default",
                    "this property is in x-kubernetes-list-map-keys, so it must have a default "
                    "or be a required property"))
        if key in seen:
            found.append(causes.invalid(f"{field}.x-kubernetes-list-map-keys", map_keys,
                                        "must not contain duplicate entries"))
        seen.add(key)
    return found


def _has_newlines(text: str) -> bool:
    return "\n" in text


def _rule_static_checks(schema: Schema, field: str) -> list[Cause]:
    found: list[Cause] = []
    for position, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        base = f"{field}.x-kubernetes-validations[{position}]"
        if not isinstance(rule, dict):
            found.append(causes.required(f"{base}.rule", "rule is not specified"))
            continue
        rule_text = str(rule.get("rule") or "").strip()
        message = str(rule.get("message") or "")
        if not rule_text:
            found.append(causes.required(f"{base}.rule", "rule is not specified"))
        elif message and not message.strip():
            found.append(causes.invalid(f"{base}.message", message,
                                        "message must be non-empty if specified"))
        elif _has_newlines(message.strip()):
            found.append(causes.invalid(f"{base}.message", message,
                                        "message must not contain line breaks"))
        elif _has_newlines(rule_text) and not message.strip():
            found.append(causes.required(f"{base}.message",
                                         "message must be specified if rule contains line breaks"))
        expression = str(rule.get("messageExpression") or "")
        if expression and not expression.strip():
            found.append(causes.required(f"{base}.messageExpression",
                                         "messageExpression must be non-empty if specified"))
        reason = rule.get("reason")
        if reason is not None and reason not in _RULE_REASONS:
            found.append(causes.not_supported(f"{base}.reason", reason, _RULE_REASONS))
        field_path = str(rule.get("fieldPath") or "")
        if field_path and not field_path.strip():
            found.append(causes.invalid(f"{base}.fieldPath", field_path,
                                        "fieldPath must be non-empty if specified"))
        if _has_newlines(field_path):
            found.append(causes.invalid(f"{base}.fieldPath", field_path,
                                        "fieldPath must not contain line breaks"))
        if field_path and not field_path_exists(schema, field_path):
            found.append(causes.invalid(f"{base}.fieldPath", field_path,
                                        "fieldPath must be a valid path"))
    return found


def _rule_compile_checks(schema: Schema, field: str, is_root: bool) -> list[Cause]:
    found: list[Cause] = []
    for position, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        base = f"{field}.x-kubernetes-validations[{position}]"
        for key, detail in cel.compile_errors(rule, schema, resource_root=is_root):
            cause = causes.invalid(f"{base}.{key}", "", detail)
            cause["message"] = f"Invalid value: {go_validation_rule(rule)}: {detail}"
            found.append(cause)
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


_FIELD_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\['((?:[^'\\]|\\.)*)'\]")


def field_path_exists(schema: Schema, field_path: str) -> bool:
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


# ---- stage 2: structural invariants and completeness ------------------------------------

def _structural_checks(root: Schema, field: str) -> list[Cause]:
    return _invariants(root, "root", field) + _completeness(root, field)


def _invariants(schema: Any, level: str, field: str) -> list[Cause]:
    if not isinstance(schema, dict):
        return []
    found: list[Cause] = []
    schema_type = schema.get("type") or ""
    if schema_type == "array" and not isinstance(schema.get("items"), dict):
        found.append(causes.required(f"{field}.items", "must be specified"))
    if isinstance(schema.get("items"), dict):
        found.extend(_invariants(schema["items"], "item", f"{field}.items"))
    for name, sub in (schema.get("properties") or {}).items():
        found.extend(_invariants(sub, "field", f"{field}.properties[{name}]"))
    additional = schema.get("additionalProperties")
    if additional is not None and additional is not False:
        if level == "root":
            found.append(causes.forbidden(f"{field}.additionalProperties", "must not be used at the root"))
        if isinstance(additional, dict):
            found.extend(_invariants(additional, "field", f"{field}.additionalProperties"))

    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        found.append(causes.invalid(f"{field}.x-kubernetes-preserve-unknown-fields", True,
                                    "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        found.append(causes.invalid(f"{field}.x-kubernetes-embedded-resource", True,
                                    "must be false if x-kubernetes-int-or-string is true"))
    found.extend(_value_validation(schema, field, skip_any_of=_is_int_or_string_any_of(schema),
                                   skip_first_all_of_any_of=_is_int_or_string_all_of(schema)))

    if embedded and schema_type != "object":
        found.extend(_must_be(schema, field, "object",
                              "must be object if x-kubernetes-embedded-resource is true"))
    elif not schema_type and not int_or_string and not preserve:
        detail = {"root": "must not be empty at the root",
                  "item": "must not be empty for specified array items",
                  "field": "must not be empty for specified object fields"}[level]
        found.append(causes.required(f"{field}.type", detail))
    if embedded and additional is not None:
        found.append(causes.forbidden(f"{field}.additionalProperties",
                                      "must not be used if x-kubernetes-embedded-resource is set"))
    if level == "root" and schema_type and schema_type != "object":
        found.append(causes.invalid(f"{field}.type", schema_type, "must be object at the root"))

    properties = schema.get("properties") or {}
    check_metadata = level == "root" or embedded
    for name in ("kind", "apiVersion"):
        if name in properties and check_metadata and properties[name].get("type") != "string":
            found.append(causes.invalid(f"{field}.properties[{name}].type",
                                        properties[name].get("type", ""), "must be string"))
    if "metadata" in properties and check_metadata:
        meta_type = properties["metadata"].get("type", "")
        if meta_type != "object":
            found.append(causes.invalid(f"{field}.properties[metadata].type", meta_type,
                                        "must be object"))
    if "metadata" in properties and level == "root" and not _metadata_is_restricted_to_names(
            properties["metadata"]):
        found.append(causes.forbidden(
            f"{field}.properties[metadata]",
            "must not specify anything other than name and generateName, but metadata is "
            "implicitly specified"))
    if embedded and not preserve and not properties:
        found.append(causes.required(
            f"{field}.properties",
            "must not be empty if x-kubernetes-embedded-resource is true without "
            "x-kubernetes-preserve-unknown-fields"))
    return found


def _metadata_is_restricted_to_names(schema: Schema) -> bool:
    """Only `type`, `default` and properties name/generateName may be given for metadata."""
    properties = schema.get("properties")
    if properties is not None and (not properties or set(properties) - {"name", "generateName"}):
        return False
    return not (set(schema) - {"type", "default", "properties"})


def _is_int_or_string_any_of(schema: Schema) -> bool:
    return schema.get("anyOf") == _INT_OR_STRING_ANY_OF


def _is_int_or_string_all_of(schema: Schema) -> bool:
    all_of = schema.get("allOf") or []
    return bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF


def _pattern_error(pattern: str) -> str | None:
    """Why Go's RE2 refuses the pattern (lookarounds and back-references), or Python does."""
    unsupported = _LOOKAROUND.search(pattern)
    if unsupported:
        return (f"error parsing regexp: invalid or unsupported Perl syntax: "
                f"`{unsupported[0]}`")
    try:
        re.compile(pattern)
    except re.error as error:
        return f"error parsing regexp: {error}"
    return None


def _value_validation(schema: Schema, field: str, *, skip_any_of: bool = False,
                      skip_first_all_of_any_of: bool = False) -> list[Cause]:
    found: list[Cause] = []
    if not skip_any_of:
        for position, branch in enumerate(schema.get("anyOf") or []):
            found.extend(_nested(branch, f"{field}.anyOf[{position}]"))
    for position, branch in enumerate(schema.get("allOf") or []):
        found.extend(_nested(branch, f"{field}.allOf[{position}]",
                             skip_any_of=skip_first_all_of_any_of and position == 0))
    for position, branch in enumerate(schema.get("oneOf") or []):
        found.extend(_nested(branch, f"{field}.oneOf[{position}]"))
    if isinstance(schema.get("not"), dict):
        found.extend(_nested(schema["not"], f"{field}.not"))
    pattern = schema.get("pattern")
    if pattern:
        problem = _pattern_error(pattern)
        if problem:
            found.append(causes.invalid(f"{field}.pattern", pattern,
                                        f"must be a valid regular expression, but isn't: {problem}"))
    return found


def _nested(schema: Any, field: str, *, skip_any_of: bool = False) -> list[Cause]:
    """A value validation inside a junctor: no structure of its own."""
    if not isinstance(schema, dict):
        return []
    found = _value_validation(schema, field, skip_any_of=skip_any_of)
    if isinstance(schema.get("items"), dict):
        found.extend(_nested(schema["items"], f"{field}.items"))
    for name, sub in (schema.get("properties") or {}).items():
        found.extend(_nested(sub, f"{field}.properties[{name}]"))
    for key, message in _NESTED_FORBIDDEN:
        value = schema.get(key)
        if value not in (None, False, "", []):
            found.append(causes.forbidden(f"{field}.{key}", message))
    if "metadata" in (schema.get("properties") or {}):
        found.append(causes.forbidden(f"{field}.properties[metadata]",
                                      "must not be specified in a nested context"))
    return found


def _completeness(schema: Schema, field: str) -> list[Cause]:
    """Properties and items named inside junctors must exist in the structure too."""
    found: list[Cause] = []
    for junctor in ("allOf", "anyOf", "oneOf"):
        for position, branch in enumerate(schema.get(junctor) or []):
            found.extend(_nested_completeness(branch, schema, field, f"{field}.{junctor}[{position}]"))
    if isinstance(schema.get("not"), dict):
        found.extend(_nested_completeness(schema["not"], schema, field, f"{field}.not"))
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            found.extend(_completeness(sub, f"{field}.properties[{name}]"))
    if isinstance(schema.get("items"), dict):
        found.extend(_completeness(schema["items"], f"{field}.items"))
    if isinstance(schema.get("additionalProperties"), dict):
        found.extend(_completeness(schema["additionalProperties"], f"{field}.additionalProperties"))
    return found


def _nested_completeness(branch: Any, structure: Schema | None, s_path: str,
                         v_path: str) -> list[Cause]:
    if not isinstance(branch, dict):
        return []
    if structure is None:
        return [causes.required(s_path, f"because it is defined in {v_path}")]
    found: list[Cause] = []
    for junctor in ("allOf", "anyOf", "oneOf"):
        for position, sub in enumerate(branch.get(junctor) or []):
            found.extend(_nested_completeness(sub, structure, s_path, f"{v_path}.{junctor}[{position}]"))
    if isinstance(branch.get("not"), dict):
        found.extend(_nested_completeness(branch["not"], structure, s_path, f"{v_path}.not"))
    if isinstance(branch.get("items"), dict):
        items = structure.get("items") if isinstance(structure.get("items"), dict) else None
        found.extend(_nested_completeness(branch["items"], items, f"{s_path}.items", f"{v_path}.items"))
    structure_properties = structure.get("properties") or {}
    for name, sub in (branch.get("properties") or {}).items():
        found.extend(_nested_completeness(sub, structure_properties.get(name),
                                          f"{s_path}.properties[{name}]",
                                          f"{v_path}.properties[{name}]"))
    return found


# ---- stage 3: defaults ------------------------------------------------------------------

def _default_checks(schema: Any, field: str, is_root: bool = False) -> list[Cause]:
    if not isinstance(schema, dict):
        return []
    found: list[Cause] = []
    if "default" in schema:
        found.extend(_validate_default(schema, field))
    for name, sub in (schema.get("properties") or {}).items():
        if is_root and name == "metadata":
            continue
        found.extend(_default_checks(sub, f"{field}.properties[{name}]"))
    if isinstance(schema.get("items"), dict):
        found.extend(_default_checks(schema["items"], f"{field}.items"))
    if isinstance(schema.get("additionalProperties"), dict):
        found.extend(_default_checks(schema["additionalProperties"], f"{field}.additionalProperties"))
    return found


def _validate_default(schema: Schema, field: str) -> list[Cause]:
    """A default must be valid against its schema, pass its rules and survive pruning."""
    default = copy.deepcopy(schema["default"])
    structural.apply_defaults(default, schema)
    default_field = f"{field}.default"
    found = []
    for cause in values.validate(default, schema, Path()):
        inner = cause["field"]
        cause["field"] = default_field if inner == causes.NO_FIELD else f"{default_field}.{inner}"
        found.append(cause)
    if found:
        return found
    found.extend(cel.evaluate_rules(default, schema, Path("", default_field)))
    if found:
        return found
    if structural.unknown_fields_of(schema["default"], schema):
        found.append(causes.invalid(default_field, schema["default"], "must not have unknown fields"))
    return found
