"""Turn pydantic validation errors into messages that name the field as users wrote it."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError


def field_path(location: tuple, root: str = "spec") -> str:
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("function-", "tagged-union")):
            continue
        else:
            path += f".{part}"
    return path


def describe(error: ValidationError, root: str = "spec") -> list[tuple[str, str]]:
    """[(field, message)] for every problem, e.g. ("spec.search.maxTrials", "Input should be ≥ 1")."""
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        problems.append((field_path(tuple(item["loc"]), root), message))
    return problems


def summarize(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{field}: {message}" for field, message in problems)


def parse_spec(model: type[BaseModel], spec: dict | None) -> tuple[BaseModel | None, list[tuple[str, str]]]:
    """Validate a spec; return (model, []) or (None, problems)."""
    try:
        return model.model_validate(spec or {}), []
    except ValidationError as error:
        return None, describe(error)
