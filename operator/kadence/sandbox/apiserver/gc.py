"""Owner-reference garbage collection: indexes of owners and dependents, and the decisions.

The decisions are pure functions over an object and the set of owner uids that still exist;
`OwnerIndex` keeps the lookups the collector needs up to date from store events.
"""

from __future__ import annotations

from typing import Any

from .store import Event, StoreKey

ObjectRef = tuple[StoreKey, str, str]  # (store key, namespace, name)

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


class OwnerIndex:
    """uid -> object, and owner uid -> dependents, maintained from store events."""

    def __init__(self) -> None:
        self.by_uid: dict[str, ObjectRef] = {}
        self.dependents: dict[str, set[ObjectRef]] = {}
        self.deleted_owners: list[str] = []

    def observe(self, event: Event) -> None:
        metadata = event.object["metadata"]
        ref: ObjectRef = (event.store_key, metadata.get("namespace", ""), metadata["name"])
        uid = metadata.get("uid")
        old_owners = owner_uids(event.old) if event.old is not None else set()
        if event.type == "DELETED":
            if uid:
                self.by_uid.pop(uid, None)
                if uid in self.dependents:
                    self.deleted_owners.append(uid)
            new_owners: set[str] = set()
        else:
            if uid:
                self.by_uid[uid] = ref
            new_owners = owner_uids(event.object)
            # A reference to an owner already gone (a controller's late write raced the owner's
            # deletion, e.g. a ReplicaSet replacing a pod as it is deleted): collect the
            # dependent, as upstream's collector does for a dangling reference.
            self.deleted_owners.extend(o for o in new_owners - old_owners if o not in self.by_uid)
        for owner in old_owners - new_owners:
            refs = self.dependents.get(owner)
            if refs is not None:
                refs.discard(ref)
                if not refs:
                    del self.dependents[owner]
        for owner in new_owners:
            self.dependents.setdefault(owner, set()).add(ref)

    def exists(self, uid: str) -> bool:
        return uid in self.by_uid

    def dependents_of(self, uid: str) -> list[ObjectRef]:
        return sorted(self.dependents.get(uid, ()))

    def take_deleted_owners(self) -> list[str]:
        owners, self.deleted_owners = self.deleted_owners, []
        return owners


def owner_uids(obj: dict[str, Any]) -> set[str]:
    return {ref["uid"] for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("uid")}


def dependent_action(dependent: dict[str, Any], gone_owner: str, live_uids: set[str]) -> str:
    """What the collector does to a dependent whose owner `gone_owner` was deleted.

    "delete" when no owner is left; "drop-reference" when another owner still exists;
    "none" when the dependent no longer points at that owner.
    """
    owners = owner_uids(dependent)
    if gone_owner not in owners:
        return "none"
    if (owners - {gone_owner}) & live_uids:
        return "drop-reference"
    return "delete"


def blocking_dependents(dependents: list[dict[str, Any]], owner_uid: str) -> list[dict[str, Any]]:
    """Dependents that hold up a foreground deletion (blockOwnerDeletion: true)."""
    return [
        dep for dep in dependents
        if any(ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion")
               for ref in dep["metadata"].get("ownerReferences") or [])
    ]


def without_owner(obj: dict[str, Any], owner_uid: str) -> dict[str, Any]:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
    metadata = dict(obj["metadata"])
    if refs:
        metadata["ownerReferences"] = refs
    else:
        metadata.pop("ownerReferences", None)
    return {**obj, "metadata": metadata}
