"""Validation of a value against an OpenAPI v3 schema, as kube-apiserver does for custom
resources (kube-openapi's validator, then apiextensions' list-type and embedded checks).

Messages follow kube-openapi (`spec.replicas in body should be greater than or equal to 0`)
and the causes follow apiextensions' translation of them into field errors.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from . import causes, formats
from .causes import Cause
from .paths import Path

Schema = dict[str, Any]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def schema_types(schema: Schema) -> list[str]:
    """The types a schema allows; int-or-string means both (as the apiserver converts it)."""
    if schema.get("x-kubernetes-int-or-string") and not schema.get("type"):
        return ["integer", "string"]
    declared = schema.get("type")
    if not declared:
        return []
    return declared if isinstance(declared, list) else [declared]


def _type_matches(value: Any, types: list[str]) -> bool:
    actual = json_type(value)
    if actual in types:
        return True
    if actual == "number" and "integer" in types and float(value).is_integer():
        return True
    return actual == "integer" and "number" in types


def _in_body(path: Path, text: str) -> str:
    """kube-openapi's message: `<name> in body <text>` (Go leaves the blank name empty)."""
    return f"{path.openapi} in body {text}"


class _Absent:
    """No correlated old value: the field is new, or this is a create."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def same(left: Any, right: Any) -> bool:
    """JSON equality (1 == 1.0, but true is not 1)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict):
        return (isinstance(right, dict) and left.keys() == right.keys()
                and all(same(left[key], right[key]) for key in left))
    if isinstance(left, list):
        return (isinstance(right, list) and len(left) == len(right)
                and all(same(a, b) for a, b in zip(left, right)))
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and left == right


def old_items_by_key(schema: Schema, old_list: Any) -> dict[str, Any] | None:
    """The old items of a `map` list by their keys (None: this list does not correlate)."""
    if (old_list is ABSENT or not isinstance(old_list, list)
            or schema.get("x-kubernetes-list-type") != "map"):
        return None
    keys = schema.get("x-kubernetes-list-map-keys") or []
    return {_item_key(item, keys): item for item in old_list if isinstance(item, dict)}


def _item_key(item: dict[str, Any], keys: list[str]) -> str:
    return _canonical([item.get(key) for key in keys])


def correlated_item(schema: Schema, item: Any, old_items: dict[str, Any] | None) -> Any:
    """The old item with the same map keys as `item`, or ABSENT."""
    if old_items is None or not isinstance(item, dict):
        return ABSENT
    keys = schema.get("x-kubernetes-list-map-keys") or []
    return old_items.get(_item_key(item, keys), ABSENT)


def correlated_key(old: Any, key: str) -> Any:
    if isinstance(old, dict) and key in old:
        return old[key]
    return ABSENT


def validate(value: Any, schema: Schema, path: Path, old: Any = ABSENT) -> list[Cause]:
    """All the errors kube-openapi finds for `value` (already pruned and defaulted).

    On updates `old` is the correlated previous value: a value equal to it is not checked
    again (validation ratcheting, on by default since Kubernetes 1.30), so a stricter CRD
    does not lock existing objects.
    """
    if old is not ABSENT and same(value, old):
        return []
    found: list[Cause] = []
    if value is None:
        types = schema_types(schema)
        if types and "null" not in types and not schema.get("nullable"):
            found.append(_type_error(path, ",".join(types), "null"))
        found.extend(_enum(value, schema, path))
        return found

    types = schema_types(schema)
    if types and not _type_matches(value, types):
        found.append(_type_error(path, ",".join(types), json_type(value)))
        found.extend(_enum(value, schema, path))
        return found

    found.extend(_junctors(value, schema, path))
    if isinstance(value, str):
        found.extend(_string(value, schema, path))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found.extend(_number(value, schema, path))
    elif isinstance(value, list):
        found.extend(_array(value, schema, path, old))
    found.extend(_enum(value, schema, path))
    if isinstance(value, dict):
        found.extend(_object(value, schema, path, old))
    return found


def _type_error(path: Path, expected: str, actual: str) -> Cause:
    message = _in_body(path, f"must be of type {expected}: {causes.go_quote(actual)}")
    return causes.type_invalid(path.openapi, actual, message)


def _string(value: str, schema: Schema, path: Path) -> list[Cause]:
    """maxLength, minLength, pattern (only the first that fails, as kube-openapi stops
    there), then format, which is a validator of its own."""
    found = []
    length = len(value)  # characters, not bytes
    if "maxLength" in schema and length > schema["maxLength"]:
        found.append(causes.too_long(path.openapi, int(schema["maxLength"])))
    elif "minLength" in schema and length < schema["minLength"]:
        message = _in_body(path, f"should be at least {int(schema['minLength'])} chars long")
        found.append(causes.invalid(path.openapi, value, message))
    elif "pattern" in schema and not compiled_pattern(schema["pattern"]).search(value):
        message = _in_body(path, f"should match '{schema['pattern']}'")
        found.append(causes.invalid(path.openapi, value, message))
    format_name = schema.get("format")
    if format_name and not formats.check(format_name, value):
        message = _in_body(path, f"must be of type {format_name}: {causes.go_quote(value)}")
        found.append(causes.type_invalid(path.openapi, value, message))
    return found


@functools.lru_cache(maxsize=1024)
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """A Go RE2 pattern compiled by Python (the common subset is identical)."""
    return re.compile(pattern)


def _number(value: int | float, schema: Schema, path: Path) -> list[Cause]:
    """multipleOf, minimum, maximum (kube-openapi's order). An integer is compared with the
    bound truncated to an integer, and the bound printed so, as Go's int64 path does."""
    found = []
    is_int = isinstance(value, int)

    def bound(number: float) -> tuple[float, str]:
        if is_int:
            return int(number), str(int(number))
        return float(number), causes.go_float(float(number))

    factor = schema.get("multipleOf")
    if factor:
        if is_int:
            wrong = int(factor) != 0 and value % int(factor) != 0
        else:
            quotient = (1 / factor * value) if factor < 1 else (value / factor)
            wrong = not float(quotient).is_integer()
        if wrong:
            message = _in_body(path, f"should be a multiple of {bound(factor)[1]}")
            found.append(causes.invalid(path.openapi, value, message))
    if "minimum" in schema:
        minimum, shown = bound(schema["minimum"])
        if schema.get("exclusiveMinimum") and value <= minimum:
            found.append(causes.invalid(
                path.openapi, value, _in_body(path, f"should be greater than {shown}")))
        elif not schema.get("exclusiveMinimum") and value < minimum:
            found.append(causes.invalid(
                path.openapi, value,
                _in_body(path, f"should be greater than or equal to {shown}")))
    if "maximum" in schema:
        maximum, shown = bound(schema["maximum"])
        if schema.get("exclusiveMaximum") and value >= maximum:
            found.append(causes.invalid(
                path.openapi, value, _in_body(path, f"should be less than {shown}")))
        elif not schema.get("exclusiveMaximum") and value > maximum:
            found.append(causes.invalid(
                path.openapi, value, _in_body(path, f"should be less than or equal to {shown}")))
    return found


def _array(value: list[Any], schema: Schema, path: Path, old: Any) -> list[Cause]:
    found = []
    items = schema.get("items")
    if isinstance(items, dict):
        old_items = old_items_by_key(schema, old)
        for position, item in enumerate(value):
            found.extend(validate(item, items, path.index(position),
                                  correlated_item(schema, item, old_items)))
    size = len(value)
    if "minItems" in schema and size < schema["minItems"]:
        message = _in_body(path, f"should have at least {int(schema['minItems'])} items")
        found.append(causes.invalid(path.openapi, size, message))
    if "maxItems" in schema and size > schema["maxItems"]:
        found.append(causes.too_many(path.openapi, size, int(schema["maxItems"])))
    if schema.get("uniqueItems") and _has_duplicates(value):
        found.append(causes.invalid(path.openapi, "", _in_body(path, "shouldn't contain duplicates")))
    return found


def _canonical(value: Any) -> str:
    """A key under which equal JSON values (1 and 1.0 included) collide."""
    def normalize(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: normalize(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [normalize(sub) for sub in item]
        return item
    return json.dumps(normalize(value), sort_keys=True)


def _has_duplicates(items: list[Any]) -> bool:
    keys = [_canonical(item) for item in items]
    return len(set(keys)) != len(keys)


def _enum(value: Any, schema: Schema, path: Path) -> list[Cause]:
    allowed = schema.get("enum")
    if not allowed:
        return []
    wanted = _canonical(value)
    if any(_canonical(option) == wanted for option in allowed):
        return []
    return [causes.not_supported(path.openapi, value, allowed)]


def _object(value: dict[str, Any], schema: Schema, path: Path, old: Any) -> list[Cause]:
    count = len(value)
    if "minProperties" in schema and count < schema["minProperties"]:
        message = _in_body(path, f"should have at least {int(schema['minProperties'])} properties")
        return [causes.invalid(path.openapi, count, message)]
    if "maxProperties" in schema and count > schema["maxProperties"]:
        return [causes.too_many(path.openapi, count, int(schema["maxProperties"]))]
    found = []
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if key in properties:
            continue
        if additional is False:
            message = f"{path.openapi}.{key} in body is a forbidden property"
            found.append(causes.invalid(path.openapi, "", message))
        elif isinstance(additional, dict):
            found.extend(validate(item, additional, path.key(key), correlated_key(old, key)))
    for name, sub_schema in properties.items():
        if name in value:
            found.extend(validate(value[name], sub_schema, path.child(name),
                                  correlated_key(old, name)))
    for name in schema.get("required") or []:
        if name not in value:
            found.append(causes.required(path.child(name).openapi))
    return found


def _junctors(value: Any, schema: Schema, path: Path) -> list[Cause]:
    """allOf / anyOf / oneOf / not, as kube-openapi reports them (composite errors have no
    field, their best-matching branch's errors follow)."""
    found: list[Cause] = []
    quoted = causes.go_quote(path.openapi)
    if schema.get("allOf"):
        results = [validate(value, branch, path) for branch in schema["allOf"]]
        valid = sum(1 for result in results if not result)
        for result in results:
            found.extend(result)
        if valid == 0:
            found.append(causes.invalid(
                "", "", f"{quoted} must validate all the schemas (allOf). None validated"))
        elif valid != len(results):
            found.append(causes.invalid("", "", f"{quoted} must validate all the schemas (allOf)"))
    if schema.get("anyOf"):
        results = [validate(value, branch, path) for branch in schema["anyOf"]]
        if all(results):
            found.append(causes.invalid(
                "", "", f"{quoted} must validate at least one schema (anyOf)"))
            found.extend(min(results, key=len))
    if schema.get("oneOf"):
        results = [validate(value, branch, path) for branch in schema["oneOf"]]
        valid = sum(1 for result in results if not result)
        if valid != 1:
            extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            found.append(causes.invalid(
                "", "", f"{quoted} must validate one and only one schema (oneOf). {extra}"))
            if valid == 0:
                found.extend(min(results, key=len))
    if isinstance(schema.get("not"), dict) and not validate(value, schema["not"], path):
        found.append(causes.invalid("", "", f"{quoted} must not validate the schema (not)"))
    return found


def validate_list_types(value: Any, schema: Schema, path: Path, old: Any = ABSENT) -> list[Cause]:
    """Duplicates in `x-kubernetes-list-type: set` and `map` lists (apiextensions'
    ValidateListSetsAndMaps), everywhere in `value` that differs from `old`."""
    found: list[Cause] = []
    if old is not ABSENT and same(value, old):
        return found
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                found.extend(validate_list_types(item, properties[key], path.child(key),
                                                 correlated_key(old, key)))
            elif isinstance(additional, dict):
                found.extend(validate_list_types(item, additional, path.key(key),
                                                 correlated_key(old, key)))
    elif isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set":
            seen: set[str] = set()
            for position, item in enumerate(value):
                key = _canonical(item)
                if key in seen:
                    found.append(causes.duplicate(path.index(position).field, item))
                seen.add(key)
        elif list_type == "map":
            map_keys = schema.get("x-kubernetes-list-map-keys") or []
            seen = set()
            for position, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                identity = {key: item[key] for key in map_keys if key in item}
                key = _canonical(identity)
                if key in seen:
                    found.append(causes.duplicate(path.index(position).field, identity))
                seen.add(key)
        old_items = old_items_by_key(schema, old)
        for position, item in enumerate(value):
            found.extend(validate_list_types(item, items, path.index(position),
                                             correlated_item(schema, item, old_items)))
    return found
