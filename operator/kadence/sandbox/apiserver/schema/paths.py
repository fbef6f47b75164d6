"""Paths to a value inside an object, in the two spellings kube-apiserver uses.

The OpenAPI validator names fields `spec.labels.app` and `spec.items[1]` (and puts that
name in its messages); apimachinery's `field.Path` writes map keys as `spec.labels[app]`
(used by list-type and CEL errors). A `Path` knows both.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Path:
    openapi: str = ""
    field: str = ""

    def child(self, name: str) -> "Path":
        return Path(_join(self.openapi, name), _join(self.field, name))

    def index(self, position: int) -> "Path":
        return Path(f"{self.openapi}[{position}]", f"{self.field}[{position}]")

    def key(self, name: str) -> "Path":
        """A key of a map (additionalProperties)."""
        return Path(_join(self.openapi, name), f"{self.field}[{name}]")


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


ROOT = Path()
