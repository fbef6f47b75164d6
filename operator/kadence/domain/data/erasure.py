"""Erasing one entity (a person, a customer) from the prediction logs and their feedback, purely.

`erase_predictions` drops the records of a batch whose logged input `column` is the entity: its
value as logged, or its keyed hash when the column is personal (domain.data.pii); it returns the
records kept and the request ids removed. `erase_feedback` drops the labels of those request
ids. `ErasureReport` says what was erased without personal data: the entity only as its keyed
hash (nothing at all without the namespace's key), the counts, and the objects rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .pii import pseudonym

ERASURE_KIND = "kadence.dev/erasure"


def entity_forms(entity: str, key: bytes | None) -> set[str]:
    """What a logged input equal to `entity` can look like: the value, and its keyed hash."""
    forms = {str(entity)}
    if key is not None:
        forms.add(pseudonym(entity, key))
    return forms


def erase_predictions(records: Iterable[dict[str, Any]], column: str, forms: set[str]
                      ) -> tuple[list[dict[str, Any]], list[str]]:
    kept, removed = [], []
    for record in records:
        value = (record.get("inputs") or {}).get(column)
        if value is not None and _text(value) in forms:
            removed.append(str(record.get("requestId")))
        else:
            kept.append(record)
    return kept, removed


def erase_feedback(records: list[dict[str, Any]], request_ids: set[str]) -> tuple[list[dict[str, Any]], int]:
    """(the labels kept, how many were removed): those of the erased predictions go."""
    kept = [r for r in records if str(r.get("requestId")) not in request_ids]
    return kept, len(records) - len(kept)


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class ErasureReport:
    namespace: str
    inference_service: str
    column: str
    time: str
    entity_hash: str | None
    predictions: int = 0
    feedback: int = 0
    objects: list[str] = field(default_factory=list)
    reason: str | None = None

    def wire(self) -> dict[str, Any]:
        out = {"kind": ERASURE_KIND, "time": self.time, "namespace": self.namespace,
               "inferenceService": self.inference_service, "column": self.column,
               "erased": {"predictions": self.predictions, "feedback": self.feedback},
               "objectsRewritten": sorted(self.objects)}
        if self.entity_hash:
            out["entity"] = self.entity_hash
        if self.reason:
            out["reason"] = self.reason
        return out
