"""Regenerates `builtin_definitions.json`: the Swagger 2.0 definitions of the built-in kinds
the sandbox serves, as kube-apiserver 1.37 publishes them in `/openapi/v2`.

Source: the Kubernetes schemas shipped in the `kubernetes-validate` package (dev extra),
which are the upstream OpenAPI definitions rewritten as JSON Schema; this script turns them
back (`type: [x, "null"]` to `type: x`, `#/$defs/` to `#/definitions/`, int-or-string and
quantity to their OpenAPI spelling) and keeps only what the served groups reference.

    python -m kadence.sandbox.apiserver.schema.generate_builtin_definitions
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from .openapi import definitions_closure

OUTPUT = pathlib.Path(__file__).with_name("builtin_definitions.json")
KUBERNETES_VERSION = "v1.37.0"

# Group-versions whose kinds the sandbox serves (see ..resources.BUILTIN_TYPES), plus the
# meta kinds operations answer with.
SERVED_GROUP_VERSIONS = {
    ("", "v1"), ("apps", "v1"), ("batch", "v1"), ("autoscaling", "v2"),
    ("coordination.k8s.io", "v1"), ("discovery.k8s.io", "v1"), ("networking.k8s.io", "v1"),
    ("policy", "v1"), ("rbac.authorization.k8s.io", "v1"), ("apiextensions.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
}
_SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
        "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  "
        "This allows you to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "type": "string",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number. It provides "
        "convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and "
        "AsInt64() accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= "
        "<signedNumber><suffix>\n```",
        "type": "string",
    },
}


def _source() -> dict[str, Any]:
    import kubernetes_validate  # dev-only dependency

    root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = root / f"{KUBERNETES_VERSION}-local" / "_definitions.json"
    return json.loads(path.read_text())["$defs"]


def _to_swagger(node: Any, *, in_properties: bool = False) -> Any:
    if isinstance(node, list):
        return [_to_swagger(item) for item in node]
    if not isinstance(node, dict):
        return node
    if in_properties:
        return {key: _to_swagger(value) for key, value in node.items()}
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            result[key] = "#/definitions/" + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            kinds = [kind for kind in value if kind != "null"]
            result[key] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "properties":
            result[key] = _to_swagger(value, in_properties=True)
        else:
            result[key] = _to_swagger(value)
    return result


def _drop_kind_enums(definition: dict[str, Any]) -> None:
    """kubernetes-validate pins apiVersion/kind with an enum; the apiserver does not."""
    for key in ("apiVersion", "kind"):
        prop = (definition.get("properties") or {}).get(key)
        if isinstance(prop, dict):
            prop.pop("enum", None)


def build() -> dict[str, Any]:
    source = _source()
    roots = [
        name for name, definition in source.items()
        if any((gvk["group"], gvk["version"]) in SERVED_GROUP_VERSIONS
               for gvk in definition.get("x-kubernetes-group-version-kind", []))
    ]
    roots += ["io.k8s.apimachinery.pkg.apis.meta.v1.Patch"]
    converted = {name: _SPECIAL.get(name) or _to_swagger(definition) for name, definition in source.items()}
    for definition in converted.values():
        _drop_kind_enums(definition)
    selected = definitions_closure(roots, converted)
    return {"kubernetesVersion": KUBERNETES_VERSION,
            "definitions": dict(sorted(selected.items()))}


def main() -> None:
    OUTPUT.write_text(json.dumps(build(), indent=None, separators=(",", ":"), sort_keys=False))
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
