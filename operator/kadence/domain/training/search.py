"""The AutoML search: trials over model families, scored by cross-validation.

One engine serves the three strategies; only where the next parameters come from
differs:
- `tpe`: Optuna's Tree-structured Parzen Estimator (multivariate, grouped by family,
  so each family's parameters are modelled together) with median pruning: after each
  fold a trial reports its running mean score and is stopped when it is clearly worse
  than the median of completed trials at the same fold (see `clearly_worse`).
- `random`: Optuna's random sampler, with the same pruning.
- `grid`: a finite grid derived from each family's space within the trial budget
  (see `space.grid_plan`), enqueued in order, never pruned.

Determinism: trials are sampled in the main thread in trial-number order, evaluated
in batches of `parallelism`, and told to the study in trial-number order. The pruner
only compares against *completed* trials, which are the same for every trial of a
batch whatever the timing, so a fixed seed gives the same trials, scores and winner
for any parallelism. Only `timeout` (stop starting new trials after so long) can make
a run depend on the machine's speed.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ...api.trainingrun import ParameterRange
from . import families as fam
from .metrics import MetricScorer, best_of, direction, is_better
from .space import grid_plan, optuna_name, suggest

log = logging.getLogger(__name__)

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


class SearchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold, already preprocessed."""

    X_train: Any
    y_train: Any
    X_valid: Any
    y_valid: Any


@dataclass(frozen=True)
class SearchSettings:
    task: str
    metric: str
    strategy: str  # tpe, random, grid
    spaces: Mapping[str, Mapping[str, ParameterRange]]  # family -> resolved space
    max_trials: int
    seed: int
    timeout_s: float | None = None
    parallelism: int = 1
    pruning: bool = True
    threads_per_trial: int = 1
    scale: bool = False  # put a scaler in front of scale-sensitive families
    n_classes: int = 2  # classification: how many classes (decides probability calibration)

    def __post_init__(self):
        if self.strategy not in ("tpe", "random", "grid"):
            raise SearchError(f"unknown strategy {self.strategy!r}: expected tpe, random or grid")
        if not self.spaces:
            raise SearchError("no model family to search")
        if self.max_trials < 1:
            raise SearchError("maxTrials must be at least 1")


@dataclass
class TrialRecord:
    number: int
    family: str
    params: dict[str, Any]
    state: str
    score: float | None  # mean CV score over the folds evaluated, natural units
    fold_scores: list[float]
    duration_s: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "family": self.family,
            "params": self.params,
            "state": self.state,
            "score": self.score,
            "foldScores": self.fold_scores,
            "durationSeconds": round(self.duration_s, 4),
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class SearchResult:
    trials: list[TrialRecord]
    best: TrialRecord
    metric: str
    direction: str
    planned: int
    stopped_by: str  # "budget" or "timeout"
    counts: dict[str, int] = field(default_factory=dict)


def _sampler(strategy: str, seed: int, parallel: bool, n_startup: int):
    import optuna

    if strategy == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=n_startup,
                constant_liar=parallel,
            )
    # random, and grid (every grid trial is enqueued with fixed parameters)
    return optuna.samplers.RandomSampler(seed=seed)


PRUNING_STARTUP_TRIALS = 5
PRUNING_TOLERANCE = 0.005


def clearly_worse(metric_direction: str, value: float, completed_at_step: Sequence[float],
                  startup: int = PRUNING_STARTUP_TRIALS, tolerance: float = PRUNING_TOLERANCE) -> bool:
    """The median stopping rule with a tolerance: a trial is clearly worse when its running
    mean at a fold is worse than the median of the completed trials at the same fold by
    more than `tolerance` of the median's size. A trial as good as the median, give or
    take fold noise, goes on."""
    if len(completed_at_step) < startup or math.isnan(value):
        return False
    ordered = sorted(completed_at_step)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    gap = tolerance * max(abs(median), 1e-12)
    return value < median - gap if metric_direction == "maximize" else value > median + gap


def _pruner(settings: SearchSettings):
    import optuna

    if settings.strategy == "grid" or not settings.pruning:
        return optuna.pruners.NopPruner()
    metric_direction = direction(settings.metric)

    class MedianWithTolerancePruner(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            step = trial.last_step
            if step is None:
                return False
            completed = [t.intermediate_values[step]
                         for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                         if step in t.intermediate_values]
            return clearly_worse(metric_direction, trial.intermediate_values[step], completed)

    return MedianWithTolerancePruner()


def startup_trials(max_trials: int) -> int:
    """Random trials TPE starts with before modelling: a quarter of the budget, 5 to 10."""
    return max(5, min(10, max_trials // 4))


def evaluate_trial(
    family: str,
    params: Mapping[str, Any],
    settings: SearchSettings,
    folds: Sequence[Fold],
    scorer: MetricScorer,
    report: Callable[[float, int], bool] | None = None,
) -> tuple[str, list[float], str | None]:
    """Fit and score one parameter set fold by fold. `report(running_mean, fold)`
    returns True when the trial should stop (pruned). Returns (state, fold scores, error)."""
    scores: list[float] = []
    for index, fold in enumerate(folds):
        estimator = fam.build_estimator(
            family, settings.task, params, metric=settings.metric, seed=settings.seed,
            threads=settings.threads_per_trial, scale=settings.scale, n_classes=settings.n_classes,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter; a bad fit shows in its score
                estimator.fit(fold.X_train, fold.y_train)
                score = scorer(estimator, fold.X_valid, fold.y_valid)
        except Exception as error:  # noqa: BLE001 - a failing parameter set fails its trial, not the run
            return FAILED, scores, f"{type(error).__name__}: {error}"
        if not math.isfinite(score):
            return FAILED, scores + [score], f"fold {index} scored {score}"
        scores.append(score)
        if report is not None and index < len(folds) - 1 and report(sum(scores) / len(scores), index):
            return PRUNED, scores, None
    return COMPLETE, scores, None


def run_search(
    settings: SearchSettings,
    folds: Sequence[Fold],
    scorer: MetricScorer,
    on_trial: Callable[[TrialRecord, SearchResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Run the search; `on_trial` is called after every trial (in trial order) with the
    record and the result so far (for logs and progress)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families = list(settings.spaces)
    plan = grid_plan(settings.spaces, settings.max_trials) if settings.strategy == "grid" else None
    planned = len(plan) if plan is not None else settings.max_trials
    study = optuna.create_study(
        direction=direction(settings.metric),
        sampler=_sampler(settings.strategy, settings.seed, settings.parallelism > 1,
                         startup_trials(settings.max_trials)),
        pruner=_pruner(settings),
    )
    if plan is not None:
        for family, params in plan:
            study.enqueue_trial({"family": family, **{optuna_name(family, k): v for k, v in params.items()}})

    result = SearchResult(trials=[], best=None, metric=settings.metric, direction=direction(settings.metric),
                          planned=planned, stopped_by="budget")
    started = clock()
    with ThreadPoolExecutor(max_workers=settings.parallelism) as pool:
        while len(result.trials) < planned:
            if settings.timeout_s is not None and clock() - started >= settings.timeout_s:
                result.stopped_by = "timeout"
                break
            batch = []
            for _ in range(min(settings.parallelism, planned - len(result.trials))):
                trial = study.ask()
                family = trial.suggest_categorical("family", families)
                batch.append((trial, family, suggest(trial, family, settings.spaces[family])))

            def work(item):
                trial, family, params = item

                def report(value: float, step: int) -> bool:
                    trial.report(value, step)
                    return trial.should_prune()

                began = time.perf_counter()
                state, scores, error = evaluate_trial(family, params, settings, folds, scorer, report)
                return state, scores, error, time.perf_counter() - began

            # Wait for the whole batch before telling any of it: a trial told early would
            # change what the pruner compares the rest of the batch against.
            outcomes = list(pool.map(work, batch))
            for (trial, family, params), (state, scores, error, seconds) in zip(batch, outcomes):
                mean = sum(scores) / len(scores) if scores and state != FAILED else None
                if state == COMPLETE:
                    study.tell(trial, mean)
                elif state == PRUNED:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                record = TrialRecord(trial.number, family, dict(params), state, mean, scores, seconds, error)
                result.trials.append(record)
                if state == COMPLETE and (result.best is None or is_better(settings.metric, mean, result.best.score)):
                    result.best = record
                if on_trial is not None:
                    on_trial(record, result)

    result.counts = {s: sum(1 for t in result.trials if t.state == s) for s in (COMPLETE, PRUNED, FAILED)}
    if result.best is None:
        errors = [t.error for t in result.trials if t.error]
        detail = f"; first error: {errors[0]}" if errors else ""
        raise SearchError(f"no trial completed ({len(result.trials)} tried{detail})")
    return result


def best_score_so_far(result: SearchResult) -> float | None:
    return best_of(result.metric, [t.score for t in result.trials if t.state == COMPLETE])
