"""A test CRD (`Thing`, group test.kadence.dev) and objects of it, shared by the schema tests."""

from __future__ import annotations

from typing import Any


def crd_for(spec_schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD whose objects' `spec` follows `spec_schema`."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.test.kadence.dev"},
        "spec": {
            "group": "test.kadence.dev",
            "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": spec_schema}}},
            }],
        },
    }


def thing(spec: Any, name: str = "a-thing", **extra: Any) -> dict[str, Any]:
    """A Thing in `default` with this `spec` and any further top-level fields (e.g. status)."""
    return {"apiVersion": "test.kadence.dev/v1", "kind": "Thing",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec, **extra}
