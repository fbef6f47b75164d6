"""Turn pydantic validation errors into messages that name the field as users wrote it.

Paths are written as kube-apiserver writes them: `spec.search.families[0].name` for
fields and list items, `spec.search.families[0].space[max_depth]` for map keys.
"""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ValidationError


def _unwrap(annotation):
    """The non-None member of an Optional annotation."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _field_by_wire_name(model: type[BaseModel], wire: str):
    for name, info in model.model_fields.items():
        if wire in (name, info.alias):
            return info.annotation
    return None


def field_path(location: tuple, model: type[BaseModel] | None = None, root: str = "spec") -> str:
    path = root
    annotation = model
    for part in location:
        current = _unwrap(annotation) if annotation is not None else None
        origin = typing.get_origin(current)
        if isinstance(part, int):
            path += f"[{part}]"
            annotation = typing.get_args(current)[0] if origin is list else None
        elif origin is dict:
            path += f"[{part}]"
            annotation = typing.get_args(current)[1]
        else:
            path += f".{part}"
            is_model = isinstance(current, type) and issubclass(current, BaseModel)
            annotation = _field_by_wire_name(current, str(part)) if is_model else None
    return path


def describe(error: ValidationError, model: type[BaseModel] | None = None, root: str = "spec") -> list[tuple[str, str]]:
    """[(field, message)] for every problem, e.g. ("spec.search.maxTrials", "Input should be ≥ 1")."""
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        problems.append((field_path(tuple(item["loc"]), model, root), message))
    return problems


def summarize(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{field}: {message}" for field, message in problems)


def parse_spec(model: type[BaseModel], spec: dict | None) -> tuple[BaseModel | None, list[tuple[str, str]]]:
    """Validate a spec; return (model, []) or (None, problems)."""
    try:
        return model.model_validate(spec or {}), []
    except ValidationError as error:
        return None, describe(error, model)
