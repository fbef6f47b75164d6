"""The task a short workload Job runs: `--task FILE`, or the KADENCE_TASK variable the builder sets."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from ..settings import Settings

Task = TypeVar("Task", bound=BaseModel)


def load_task(path: str | None, settings: Settings, model: type[Task]) -> Task:
    """The validated task; OSError or ValueError (pydantic's ValidationError is one) says what is wrong."""
    raw = Path(path).read_text() if path else settings.task
    if not raw:
        raise ValueError("no task: pass --task or set KADENCE_TASK")
    return model.model_validate_json(raw)
