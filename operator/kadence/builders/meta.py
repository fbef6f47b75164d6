"""Names, labels and owner references shared by every object the operator creates."""

from __future__ import annotations

import hashlib

from ..api.common import API_VERSION
from ..api import keys

MAX_NAME = 63
PART_OF = "kadence"
MANAGED_BY = "kadence-operator"


def cut_name(name: str, limit: int = MAX_NAME) -> str:
    """A DNS label no longer than `limit`: long names keep a readable head and a stable hash tail."""
    name = name.lower().strip("-")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def child_name(parent: str, *parts: str | int) -> str:
    """Deterministic child name, e.g. child_name("churn", "train", 2) -> "churn-train-2"."""
    return cut_name("-".join([parent, *(str(p) for p in parts)]))


def owner_reference(owner: dict, controller: bool = True) -> dict:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def labels_for(owner: dict, component: str) -> dict[str, str]:
    """Labels that let the operator find an owner's children with one selector."""
    return {
        keys.PART_OF_LABEL: PART_OF,
        keys.MANAGED_BY_LABEL: MANAGED_BY,
        keys.COMPONENT_LABEL: component,
        keys.OWNER_KIND_LABEL: owner["kind"].lower(),
        keys.OWNER_NAME_LABEL: cut_name(owner["metadata"]["name"]),
    }


def child_metadata(owner: dict, name: str, component: str, extra_labels: dict | None = None) -> dict:
    return {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": {**labels_for(owner, component), **(extra_labels or {})},
        "ownerReferences": [owner_reference(owner)],
    }
