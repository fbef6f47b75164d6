"""Search spaces: sampling a family's parameters with Optuna, and a finite grid
derived from the same space within a trial budget."""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

from ...api.trainingrun import ParameterRange

# Optuna parameter names are "<family>.<parameter>" so that families never share one.
SEPARATOR = "."


def optuna_name(family: str, parameter: str) -> str:
    return f"{family}{SEPARATOR}{parameter}"


def _choice_label(value: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"choice {value!r} is not a string, number, boolean or null")


def suggest(trial, family: str, space: Mapping[str, ParameterRange]) -> dict[str, Any]:
    """Sample every parameter of the family's space through an Optuna trial."""
    params: dict[str, Any] = {}
    for parameter, rng in space.items():
        name = optuna_name(family, parameter)
        if rng.choices is not None:
            params[parameter] = trial.suggest_categorical(name, [_choice_label(c) for c in rng.choices])
        elif rng.integer:
            params[parameter] = trial.suggest_int(name, math.ceil(rng.low), math.floor(rng.high), log=rng.log)
        else:
            params[parameter] = trial.suggest_float(name, float(rng.low), float(rng.high), log=rng.log)
    return params


def distinct_values(rng: ParameterRange) -> int | None:
    """How many distinct values a range holds (None: unbounded, a float range)."""
    if rng.choices is not None:
        return len(rng.choices)
    if rng.integer:
        return math.floor(rng.high) - math.ceil(rng.low) + 1
    return 1 if rng.low == rng.high else None


def axis(rng: ParameterRange, points: int) -> list[Any]:
    """`points` values of a range: choices in their given order, numeric ranges at
    the interior quantiles (i + 0.5) / points, on a log scale when asked, rounded and
    de-duplicated for integers."""
    if rng.choices is not None:
        return list(rng.choices[:points])
    low, high = float(rng.low), float(rng.high)
    if points == 1 or low == high:
        fractions = [0.5]
    else:
        fractions = [(i + 0.5) / points for i in range(points)]
    if rng.log:
        values = [math.exp(math.log(low) + f * (math.log(high) - math.log(low))) for f in fractions]
    else:
        values = [low + f * (high - low) for f in fractions]
    if rng.integer:
        rounded: list[Any] = []
        for v in values:
            r = min(max(int(round(v)), math.ceil(low)), math.floor(high))
            if r not in rounded:
                rounded.append(r)
        return rounded
    return [float(f"{v:.6g}") for v in values]


def grid(space: Mapping[str, ParameterRange], budget: int) -> list[dict[str, Any]]:
    """A regular grid over the space with at most `budget` points.

    Every axis starts at one point (the middle of its range, or its first choice);
    axes then gain one point at a time, in turn, while the grid still fits the
    budget, until no axis can grow. An empty space is a single point."""
    if budget < 1:
        return []
    names = list(space)
    if not names:
        return [{}]
    limits = [distinct_values(space[name]) for name in names]
    resolution = [1] * len(names)
    grew = True
    while grew:
        grew = False
        for i in range(len(names)):
            if limits[i] is not None and resolution[i] >= limits[i]:
                continue
            trial = resolution[:i] + [resolution[i] + 1] + resolution[i + 1:]
            if math.prod(trial) <= budget:
                resolution = trial
                grew = True
    axes = [axis(space[name], r) for name, r in zip(names, resolution)]
    return [dict(zip(names, values)) for values in itertools.product(*axes)]


def split_budget(total: int, families: list[str]) -> dict[str, int]:
    """Share a trial budget across families as evenly as possible (earlier families
    get the remainder)."""
    base, extra = divmod(total, len(families))
    return {name: base + (1 if i < extra else 0) for i, name in enumerate(families)}


def grid_plan(spaces: Mapping[str, Mapping[str, ParameterRange]], max_trials: int) -> list[tuple[str, dict[str, Any]]]:
    """(family, params) for every grid point, families interleaved so a run cut short
    by its timeout has still tried every family. A family whose grid is smaller than
    its share leaves the rest of the budget to the others."""
    families = list(spaces)
    budgets = split_budget(max_trials, families)
    grids = {name: grid(spaces[name], budgets[name]) for name in families}
    # Hand unused budget to families whose grid could grow, in order, until none can.
    spare = max_trials - sum(len(g) for g in grids.values())
    changed = True
    while spare > 0 and changed:
        changed = False
        for name in families:
            bigger = grid(spaces[name], len(grids[name]) + spare)
            if len(bigger) > len(grids[name]):
                spare -= len(bigger) - len(grids[name])
                grids[name] = bigger
                changed = True
                if spare <= 0:
                    break
    plan: list[tuple[str, dict[str, Any]]] = []
    for row in itertools.zip_longest(*(grids[name] for name in families)):
        for name, params in zip(families, row):
            if params is not None:
                plan.append((name, params))
    return plan[:max_trials]
