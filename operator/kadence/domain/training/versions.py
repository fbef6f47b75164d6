"""Version numbers for ModelVersions, allocated without races.

Two training runs may finish at the same moment and both read "the highest
version is 3". Listing cannot make allocation safe; the API server can: a
ModelVersion is named `<model>-v<N>`, and creating an object whose name exists
fails with 409 AlreadyExists. So the operator creates `<model>-v<N>` with N one
above the highest it saw, and on AlreadyExists tries N+1, N+2 … — exactly one
creator wins each name, so each number goes to exactly one run.

Re-running the allocation for the same run (e.g. after an operator restart) must
not register the model twice: `create` is expected to raise `VersionTaken` with
the existing object's owner, and a name already held by *this* run counts as
success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

MAX_NAME_LENGTH = 63


class VersionTaken(Exception):
    """Raised by `create` when the name exists (HTTP 409). `owner` is the training run
    recorded on the existing object, when known."""

    def __init__(self, name: str, owner: str | None = None):
        super().__init__(f"{name} already exists")
        self.name = name
        self.owner = owner


class AllocationError(RuntimeError):
    pass


def version_name(model: str, version: int) -> str:
    name = f"{model}-v{version}"
    if len(name) > MAX_NAME_LENGTH:
        raise AllocationError(f"ModelVersion name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return name


def next_version(existing_versions: Iterable[int]) -> int:
    """One above the highest existing version; 1 for a new model."""
    return max((v for v in existing_versions if v >= 1), default=0) + 1


@dataclass(frozen=True)
class Allocation:
    name: str
    version: int
    created: bool  # False when this run had already registered it


def allocate(
    model: str,
    existing_versions: Iterable[int],
    create: Callable[[str, int], None],
    owner: str | None = None,
    max_attempts: int = 100,
) -> Allocation:
    """Create `<model>-v<N>` starting from the next free version, retrying N+1 on
    `VersionTaken`. `create(name, version)` must be atomic (the API server's create)."""
    version = next_version(existing_versions)
    for _ in range(max_attempts):
        name = version_name(model, version)
        try:
            create(name, version)
        except VersionTaken as taken:
            if owner is not None and taken.owner == owner:
                return Allocation(name, version, created=False)
            version += 1
            continue
        return Allocation(name, version, created=True)
    raise AllocationError(f"no free version for {model} after {max_attempts} attempts (last tried {version - 1})")
