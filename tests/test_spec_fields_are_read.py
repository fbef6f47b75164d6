"""Every spec field of every kind is read by something (issue 16.7: no API that does nothing).

Walks every field of every kind's spec model (nested models, lists and maps of models included)
and looks for a read of it in the package outside `api/` (where the models and the CRDs are made):
the python attribute (`.refresh_interval`), or its name as a string (`"refreshInterval"` for code that
reads an object as a dict, `"refresh_interval"` for code that reads a model_dump()). A field only the API server
uses (a printer column, a CEL rule) is allowed below, each with why.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from kadence.api.kinds import KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "operator" / "kadence"

# field path -> why nothing in the package reads it
ALLOWED: dict[str, str] = {}


# The modules that define the API models (and make the CRDs from them); api/references.py, the
# checks of what a spec points at, is code that reads specs like any other.
MODEL_MODULES = {"common", "conditions", "crdgen", "dataset", "featureset", "inferenceservice", "keys", "kinds",
                 "modelversion", "monitorpolicy", "trainingrun", "validation", "__init__", "batchprediction",
                 "erasurerequest"}


def sources() -> str:
    return "\n".join(p.read_text() for p in PACKAGE.rglob("*.py")
                      if "__pycache__" not in p.parts and not (p.parent == PACKAGE / "api" and p.stem in MODEL_MODULES))


SOURCES = sources()


def models_in(annotation) -> list[type[BaseModel]]:
    """The pydantic models inside a field's annotation (X, X | None, list[X], dict[str, X])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def spec_fields(model: type[BaseModel], path: str, seen: frozenset = frozenset()):
    for name, field in model.model_fields.items():
        wire = field.alias or name
        yield f"{path}.{wire}", name, wire
        for nested in models_in(field.annotation):
            if nested not in seen:  # a model nested in itself is walked once
                yield from spec_fields(nested, f"{path}.{wire}", seen | {nested})


FIELDS = [(f"{kind.kind}{path}", name, wire) for kind in KINDS for path, name, wire in spec_fields(kind.spec, ".spec")]


def is_read(name: str, wire: str) -> bool:
    """An attribute read (`.max_missing_fraction`), or the name as a string: the wire name for code
    reading objects as dicts, the python name for code reading a model_dump() (`rules.get("class_balance")`)."""
    return (bool(re.search(rf"\.{re.escape(name)}\b", SOURCES)) or f'"{wire}"' in SOURCES
            or f'"{name}"' in SOURCES)


@pytest.mark.parametrize("path, name, wire", FIELDS, ids=[f[0] for f in FIELDS])
def test_every_spec_field_is_read_by_something(path, name, wire):
    if path in ALLOWED:
        return
    assert is_read(name, wire), f"{path} is in the API but nothing reads it ({name} / {wire!r})"


def test_the_walk_reaches_nested_models_and_the_allow_list_names_real_fields():
    paths = {f[0] for f in FIELDS}
    assert "MonitorPolicy.spec.actions.alert.webhook.secretRef.key" in paths
    assert "InferenceService.spec.canary.analysis.quality.maxDrop" in paths
    assert set(ALLOWED) <= paths
    assert not is_read("no_such_field_anywhere", "noSuchFieldAnywhere")
