"""`/openapi/v2` in protobuf: the gnostic `openapi.v2.Document` message that kubectl asks
for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), written from the
Swagger 2.0 JSON document with a small protobuf wire encoder.

Field numbers are those of gnostic's openapiv2/OpenAPIv2.proto. Free-form values
(`default`, `example`, `enum` items, vendor extensions) travel as `Any{yaml}`, which holds
their JSON text (JSON is YAML), as kube-openapi reads them.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Callable

Schema = dict[str, Any]
# What kubectl asks for, the spelling kube-openapi also accepts, and what it answers with
# (`@` is not allowed in a Content-Type, which Go's mime parser checks).
ACCEPTED_MEDIA_TYPES = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


# ---- wire format -----------------------------------------------------------------------

def _varint(number: int) -> bytes:
    if number < 0:
        number += 1 << 64
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _bytes(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _string(field: int, value: Any) -> bytes:
    if not isinstance(value, str) or value == "":
        return b""
    return _bytes(field, value.encode())


def _strings(field: int, values: Any) -> bytes:
    return b"".join(_bytes(field, str(value).encode()) for value in values or [])


def _bool(field: int, value: Any) -> bytes:
    return _key(field, 0) + b"\x01" if value is True else b""


def _int(field: int, value: Any) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or value == 0:
        return b""
    return _key(field, 0) + _varint(value)


def _double(field: int, value: Any) -> bytes:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value == 0:
        return b""
    return _key(field, 1) + struct.pack("<d", float(value))


def _message(field: int, payload: bytes, always: bool = False) -> bytes:
    return _bytes(field, payload) if payload or always else b""


# ---- messages --------------------------------------------------------------------------

def _any(value: Any) -> bytes:
    """openapi.v2.Any{yaml = 2}."""
    return _bytes(2, json.dumps(value).encode())


def _named_any(field: int, name: str, value: Any) -> bytes:
    return _bytes(field, _string(1, name) + _bytes(2, _any(value)))


def _vendor_extensions(field: int, node: Schema) -> bytes:
    return b"".join(_named_any(field, key, value) for key, value in node.items()
                    if key.startswith("x-"))


def _named(field: int, items: dict[str, Any], encode: Callable[[Any], bytes]) -> bytes:
    """A map as gnostic's repeated Named* pairs {name = 1, value = 2}."""
    return b"".join(_bytes(field, _string(1, name) + _bytes(2, encode(value)))
                    for name, value in items.items())


def schema(node: Schema) -> bytes:
    """openapi.v2.Schema."""
    out = [
        _string(1, node.get("$ref")),
        _string(2, node.get("format")),
        _string(3, node.get("title")),
        _string(4, node.get("description")),
        _bytes(5, _any(node["default"])) if "default" in node else b"",
        _double(6, node.get("multipleOf")),
        _double(7, node.get("maximum")),
        _bool(8, node.get("exclusiveMaximum")),
        _double(9, node.get("minimum")),
        _bool(10, node.get("exclusiveMinimum")),
        _int(11, node.get("maxLength")),
        _int(12, node.get("minLength")),
        _string(13, node.get("pattern")),
        _int(14, node.get("maxItems")),
        _int(15, node.get("minItems")),
        _bool(16, node.get("uniqueItems")),
        _int(17, node.get("maxProperties")),
        _int(18, node.get("minProperties")),
        _strings(19, node.get("required")),
        b"".join(_bytes(20, _any(item)) for item in node.get("enum") or []),
    ]
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out.append(_bytes(21, _bytes(1, schema(additional))))
    elif isinstance(additional, bool):
        out.append(_bytes(21, _key(2, 0) + (b"\x01" if additional else b"\x00")))
    node_type = node.get("type")
    if node_type:
        out.append(_bytes(22, _strings(1, node_type if isinstance(node_type, list) else [node_type])))
    items = node.get("items")
    if isinstance(items, dict):
        out.append(_bytes(23, _bytes(1, schema(items))))
    out.extend(_bytes(24, schema(sub)) for sub in node.get("allOf") or [])
    if node.get("properties"):
        out.append(_bytes(25, _named(1, node["properties"], schema)))
    out.append(_bool(27, node.get("readOnly")))
    if "example" in node:
        out.append(_bytes(30, _any(node["example"])))
    out.append(_vendor_extensions(31, node))
    return b"".join(out)


def _parameter(node: Schema) -> bytes:
    """openapi.v2.ParametersItem holding a Parameter (body, query or path)."""
    if node.get("in") == "body":
        body = (_string(1, node.get("description")) + _string(2, node.get("name"))
                + _string(3, "body") + _bool(4, node.get("required"))
                + _message(5, schema(node.get("schema") or {}), always=True))
        parameter = _bytes(1, body)
    else:
        sub_schema = (_bool(1, node.get("required")) + _string(2, node.get("in"))
                      + _string(3, node.get("description")) + _string(4, node.get("name")))
        if node.get("in") == "path":
            sub_schema += _string(5, node.get("type")) + _bool(19, node.get("uniqueItems"))
            non_body = _bytes(4, sub_schema)
        else:
            sub_schema += _string(6, node.get("type")) + _bool(20, node.get("uniqueItems"))
            non_body = _bytes(3, sub_schema)
        parameter = _bytes(2, non_body)
    return _bytes(1, parameter)


def _response(node: Schema) -> bytes:
    """openapi.v2.ResponseValue holding a Response."""
    response = _string(1, node.get("description"))
    if isinstance(node.get("schema"), dict):
        response += _bytes(2, _bytes(1, schema(node["schema"])))
    return _bytes(1, response)


def _operation(node: Schema) -> bytes:
    return b"".join([
        _strings(1, node.get("tags")),
        _string(3, node.get("description")),
        _string(5, node.get("operationId")),
        _strings(6, node.get("produces")),
        _strings(7, node.get("consumes")),
        b"".join(_bytes(8, _parameter(parameter)) for parameter in node.get("parameters") or []),
        _message(9, _named(1, node.get("responses") or {}, _response)),
        _strings(10, node.get("schemes")),
        _vendor_extensions(13, node),
    ])


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(node: Schema) -> bytes:
    out = [_bytes(number, _operation(node[method]))
           for method, number in _METHODS.items() if method in node]
    out.extend(_bytes(9, _parameter(parameter)) for parameter in node.get("parameters") or [])
    return b"".join(out)


def _security_definition(node: Schema) -> bytes:
    """openapi.v2.SecurityDefinitionsItem: only the apiKey kind the apiserver publishes."""
    api_key = (_string(1, node.get("type")) + _string(2, node.get("name"))
               + _string(3, node.get("in")) + _string(4, node.get("description")))
    return _bytes(2, api_key)


def document(swagger: Schema) -> bytes:
    """The whole openapi.v2.Document."""
    info = swagger.get("info") or {}
    return b"".join([
        _string(1, swagger.get("swagger")),
        _message(2, _string(1, info.get("title")) + _string(2, info.get("version"))),
        _message(8, _named(2, swagger.get("paths") or {}, _path_item)),
        _message(9, _named(1, swagger.get("definitions") or {}, schema)),
        b"".join(_bytes(12, _named(1, requirement, lambda scopes: _strings(1, scopes)))
                 for requirement in swagger.get("security") or []),
        _message(13, _named(1, swagger.get("securityDefinitions") or {}, _security_definition)),
    ])
