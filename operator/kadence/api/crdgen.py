"""Generate the CustomResourceDefinitions from the pydantic models.

Pydantic's JSON Schema is close to a Kubernetes structural schema; the differences
handled here: `$ref`s are inlined, `Optional[X]` (anyOf X|null) becomes X (absence
is how Kubernetes says "unset"), `title`s are dropped, `Any` becomes a field that
preserves unknown content, and `const` becomes a one-value `enum`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .common import GROUP, VERSION
from .kinds import KINDS, Kind

_DROPPED_KEYS = {"title", "$defs"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target.update(siblings)
        return _resolve(target, defs)
    return {k: _resolve(v, defs) for k, v in node.items() if k not in _DROPPED_KEYS}


def _drop_null_branch(node: dict) -> dict:
    variants = node.get("anyOf")
    if not variants:
        return node
    non_null = [v for v in variants if v.get("type") != "null"]
    if len(non_null) != 1:
        raise ValueError(f"unions other than Optional[X] have no structural form: {variants}")
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    merged = {**non_null[0], **merged}
    if merged.get("default", ...) is None:
        del merged["default"]
    return merged


def _openapi_v3_0_bounds(node: dict) -> dict:
    """JSON Schema's numeric `exclusiveMinimum: X` is OpenAPI 3.0's `minimum: X, exclusiveMinimum: true`."""
    node = dict(node)
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        bound = node.get(exclusive)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool):
            node[inclusive] = bound
            node[exclusive] = True
    return node


def structural(node: Any) -> Any:
    """Turn one resolved pydantic schema node into its structural OpenAPI form."""
    if isinstance(node, list):
        return [structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = _drop_null_branch(node)
    if "const" in node:
        node = {**{k: v for k, v in node.items() if k != "const"}, "enum": [node["const"]]}
    if not node.get("type") and not node.get("x-kubernetes-preserve-unknown-fields") and "enum" not in node:
        node = {**node, "x-kubernetes-preserve-unknown-fields": True}
    if "enum" in node and "type" not in node:
        node = {**node, "type": "string"}
    node = _openapi_v3_0_bounds(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value)
        else:
            out[key] = value
    if out.get("type") == "object" and "additionalProperties" in out and out["additionalProperties"] is False:
        del out["additionalProperties"]
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def model_schema(model: type) -> dict:
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs = raw.get("$defs", {})
    return structural(_resolve(raw, defs))


def crd_for(kind: Kind) -> dict:
    spec_schema = model_schema(kind.spec)
    status_schema = model_schema(kind.status)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "kadence"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": list(kind.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [dict(c) for c in kind.columns],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> list[dict]:
    return [crd_for(kind) for kind in KINDS]


def render(crd: dict) -> str:
    return yaml.safe_dump(crd, sort_keys=False, width=120, allow_unicode=True)


def crd_file_name(kind: Kind) -> str:
    return f"{GROUP}_{kind.plural}.yaml"


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS:
        path = directory / crd_file_name(kind)
        path.write_text("# Generated from operator/kadence/api by `kadence crds --write crds/`. Do not edit.\n"
                        + render(crd_for(kind)))
        written.append(path)
    return written
