"""The AutoML search: trials over model families, scored by cross-validation.

One engine serves the three strategies; only where the next parameters come from
differs:
- `tpe`: first a fixed warm-start portfolio (`portfolio_plan`): every family at
  scikit-learn's default parameters moved into the space (`families.default_point`;
  a boosting family's early-stopped round count at the top of its range), then the
  families' published known-good configurations (`Family.portfolio`) within half the
  budget; then Optuna's Tree-structured Parzen Estimator
  (multivariate, grouped by family, so each family's parameters are modelled
  together), with median pruning: after each
  fold a trial reports its running mean score and is stopped when it is clearly worse
  than the median of completed trials at the same fold (see `clearly_worse`).
- `random`: Optuna's random sampler, with the same pruning.
- `grid`: a finite grid derived from each family's space within the trial budget
  (see `space.grid_plan`), enqueued in order, never pruned.

Multi-fidelity (tpe and random, with pruning on): when every fold trains on at least
`REDUCTION_FACTOR * MIN_RUNG_ROWS` rows (6,000), a trial climbs rungs of row
subsamples instead of fitting the full folds at once — asynchronous successive halving
(ASHA, Li et al. 2018) with the training rows as the resource. Rung r trains every fold
on a stratified subsample of 1/3**(last - r) of the fold's training rows (never fewer
than `MIN_RUNG_ROWS`; at most `MAX_RUNGS` rungs, the last one the full fold) and
validates on the whole validation fold. After each rung below the last, the trial's mean
score is compared with the same rung's scores of every earlier-numbered trial that
reached the rung (it waits, parked, until those have reported the rung or stopped, so the
decision never depends on which fit finished first): it goes on only when it is in their
best third (`promotable`), else it is pruned. A *trial* is still one
parameter set (maxTrials counts them, pruned or not); only trials that finished the last
rung are COMPLETE, so every reported CV score — the winner's included — is on the full
folds. Median pruning by fold is off then (the rungs do that job), and a rung's folds
are queued together, so a worker with no trial of its own helps with another trial's
folds (`parallelism` still bounds the trials in flight). Smaller data: one rung, the
search as before.

Fits wait in a queue of their own (`FitQueue`) and go to a worker only when one is
free, the fit on the highest rung of the earliest trial first (`fit_priority`): a
promoted trial's costly last rung is not held up behind later trials' first rungs.
The order changes when results arrive, never what is decided from them.

Scheduling and determinism: up to `parallelism` trials are in flight, each evaluated
fold by fold (in worker processes when parallelism > 1). Trials are sampled in the
main process and told to the study in trial-number order, in a fixed interleaving:
trial k is sampled right after trial k - window is told (`sampling_window`), and the
pruner compares a trial only with completed trials numbered at most k - window. What
the sampler and the pruner see is therefore the same whichever fit finishes first, so
a fixed seed gives the same trials, scores and winner for a given parallelism. Only
`timeout` can make a run depend on the machine's speed.

The timeout is the search's budget, running trials included: at the deadline no trial
starts, queued fits are dropped, the fits in flight are stopped (their worker processes
terminated; with a timeout, fits always run in worker processes, even one at a time, so
that they can be), and every trial not finished is recorded as `timeout`. Only the
trials finished by then compete for the winner.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ...api.trainingrun import ParameterRange
from . import boosting
from . import families as fam
from .ensemble import oof_predictions
from .metrics import MetricScorer, best_of, direction, is_better, natural_score
from .space import grid_plan, optuna_name, suggest

log = logging.getLogger(__name__)

COMPLETE, PRUNED, FAILED, TIMED_OUT = "complete", "pruned", "failed", "timeout"


class SearchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold, already preprocessed; with sample weights (recency
    weighting), the fits are weighted by `w_train` and the validation score by `w_valid`."""

    X_train: Any
    y_train: Any
    X_valid: Any
    y_valid: Any
    w_train: Any = None
    w_valid: Any = None


def fit_weighted(estimator, X, y, sample_weight=None, seed: int = 0):
    """`estimator.fit` with sample weights when given: passed to the final step (a scaler in
    front takes none); an estimator that takes no weights (k-nearest neighbours) is fitted on
    a weighted resample of the rows instead, as many as there are, drawn with `seed`. LightGBM,
    XGBoost and CatBoost fit with their own early stopping (`boosting.fit_boosting`)."""
    if boosting.library_of(estimator) is not None:
        return boosting.fit_boosting(estimator, X, y, sample_weight, seed)
    if sample_weight is None:
        return estimator.fit(X, y)
    import numpy as np
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import has_fit_parameter

    final_name, final = (estimator.steps[-1] if isinstance(estimator, Pipeline) else (None, estimator))
    if has_fit_parameter(final, "sample_weight"):
        if final_name is not None:
            return estimator.fit(X, y, **{f"{final_name}__sample_weight": sample_weight})
        return estimator.fit(X, y, sample_weight=sample_weight)
    weights = np.asarray(sample_weight, dtype=float)
    picked = np.random.default_rng(seed).choice(len(weights), size=len(weights), replace=True,
                                                p=weights / weights.sum())
    X_rows = X.iloc[picked] if hasattr(X, "iloc") else X[picked]
    y_rows = y.iloc[picked] if hasattr(y, "iloc") else np.asarray(y)[picked]
    return estimator.fit(X_rows, y_rows)


def score_weighted(scorer: MetricScorer, estimator, X, y, sample_weight=None) -> float:
    """The metric in natural units, weighted by `sample_weight` when given."""
    if sample_weight is None:
        return scorer(estimator, X, y)
    return natural_score(scorer.metric, float(scorer.scorer(estimator, X, y, sample_weight=sample_weight)))


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
    multi_fidelity: bool = True  # row-subsample rungs when the folds are large enough (see above)
    # ensemble selection: how many of the best completed trials keep their out-of-fold predictions
    # (`TrialRecord.predictions`), and the run's classes (sorted) the probabilities are aligned to
    keep_predictions: int = 0
    classes: tuple = ()

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
    rung_scores: list[float] = field(default_factory=list)  # mean score at each rung reached (multi-fidelity)
    rows: int | None = None  # training rows per fold of the last rung evaluated (None: the full folds)
    fits: int = 0  # fold fits done, every rung counted
    # the validation folds' predictions, in fold order (SearchSettings.keep_predictions best trials only)
    predictions: list[Any] | None = field(default=None, repr=False)

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
            **({"rungScores": self.rung_scores, "rows": self.rows} if self.rung_scores else {}),
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


def _pruner(settings: SearchSettings, rungs: int):
    import optuna

    if settings.strategy == "grid" or not settings.pruning:
        return optuna.pruners.NopPruner()
    metric_direction = direction(settings.metric)

    window = sampling_window(settings.parallelism)

    def reported_earlier(study, trial, step: int, states) -> list[float]:
        # Only trials that were told before this one was sampled: the same set
        # whatever the timing of the trials running beside it.
        return [t.intermediate_values[step] for t in study.get_trials(deepcopy=False, states=states)
                if step in t.intermediate_values and t.number <= trial.number - window]

    if rungs > 1:
        class SuccessiveHalvingByRowsPruner(optuna.pruners.BasePruner):
            """Step r = rung r; compared with every earlier-numbered trial that reported the
            rung (run_search asks only once all of those have reported it or stopped)."""

            def prune(self, study, trial) -> bool:
                step = trial.last_step
                if step is None:
                    return False
                competing = [t.intermediate_values[step] for t in study.get_trials(deepcopy=False)
                             if t.number < trial.number and step in t.intermediate_values]
                return not promotable(metric_direction, trial.intermediate_values[step], competing)

        return SuccessiveHalvingByRowsPruner()

    class MedianWithTolerancePruner(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            step = trial.last_step
            if step is None:
                return False
            completed = reported_earlier(study, trial, step, (optuna.trial.TrialState.COMPLETE,))
            return clearly_worse(metric_direction, trial.intermediate_values[step], completed)

    return MedianWithTolerancePruner()


REDUCTION_FACTOR = 3
MIN_RUNG_ROWS = 2_000
MAX_RUNGS = 3


def rung_rows(train_rows: int, reduction: int = REDUCTION_FACTOR, min_rows: int = MIN_RUNG_ROWS,
              max_rungs: int = MAX_RUNGS) -> list[int]:
    """Training rows per fold at each rung, smallest first, the last the whole fold:
    rows / reduction**i while that is at least `min_rows`. One rung (no multi-fidelity)
    when the fold is smaller than reduction * min_rows."""
    rows = [train_rows]
    while len(rows) < max_rungs and rows[0] // reduction >= min_rows:
        rows.insert(0, rows[0] // reduction)
    return rows


def promotable(metric_direction: str, value: float, competing: Sequence[float],
               reduction: int = REDUCTION_FACTOR) -> bool:
    """Successive halving's promotion rule (as Optuna's SuccessiveHalvingPruner): a trial
    goes to the next rung when its score is among the best 1/reduction of the scores at
    this rung — its own and those of the earlier trials it is compared with. With fewer
    than `reduction` scores, only the best goes on."""
    if math.isnan(value):
        return False
    values = sorted([*competing, value], reverse=metric_direction == "maximize")
    keep = max(1, len(values) // reduction)
    threshold = values[keep - 1]
    return value >= threshold if metric_direction == "maximize" else value <= threshold


def sampling_window(parallelism: int) -> int:
    """Trial k is sampled once trials 0 … k-window are finished and told (and before
    trial k-window+1 is told). 1 for sequential search; twice the parallelism otherwise,
    so a worker rarely waits for a slow trial before it gets the next one."""
    return 1 if parallelism == 1 else 2 * parallelism


def fit_priority(rung: int, trial_number: int, fold: int) -> tuple[int, int, int]:
    """The order in which queued fold fits go to free workers, smallest first: a higher
    rung first (ASHA's preference for promotions: a trial that climbed is the likeliest
    to become the best, and its result is what the search waits for), then the earlier
    trial (trials are told in order), then the fold."""
    return -rung, trial_number, fold


class FitQueue:
    """Fold fits waiting for a worker, the most urgent first (`fit_priority`). A fit of a
    trial that has already been decided (failed on another fold) is dropped."""

    def __init__(self):
        self._heap: list[tuple[tuple[int, int, int], Any]] = []

    def push(self, running, index: int) -> None:
        heapq.heappush(self._heap, (fit_priority(running.rung, running.trial.number, index), running))

    def pop(self):
        """(trial, fold index) of the most urgent fit, or None when none is left."""
        while self._heap:
            (_, _, index), running = heapq.heappop(self._heap)
            if running.state is None:
                return running, index
        return None

    def trials(self) -> set[int]:
        """ids of the trials with a fit waiting."""
        return {id(running) for _, running in self._heap}

    def clear(self) -> None:
        self._heap = []


def portfolio_plan(settings: SearchSettings, train_rows: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The tpe search's first trials, before the sampler models: every family at its
    default point, then the families' known-good configurations (`families.portfolio_points`),
    one family after the other — a small, fixed portfolio as auto-sklearn 2.0 and
    AutoGluon start with. The defaults always run (within maxTrials); the rest of the
    portfolio only within half the budget, so TPE keeps at least half of it.
    `train_rows`: each fold's training rows (whether early stopping will be on)."""
    per_family = [[(name, point) for point in fam.portfolio_points(name, settings.task, space, train_rows)]
                  for name, space in settings.spaces.items()]
    defaults = [points[0] for points in per_family]
    rest = [entry for row in itertools.zip_longest(*(points[1:] for points in per_family))
            for entry in row if entry is not None]
    return (defaults + rest[:max(0, settings.max_trials // 2 - len(defaults))])[:settings.max_trials]


def startup_trials(max_trials: int) -> int:
    """Random trials TPE starts with before modelling: a quarter of the budget, 5 to 10."""
    return max(5, min(10, max_trials // 4))


@dataclass(frozen=True)
class _Context:
    """What a fold fit needs besides the parameters; sent once to each worker process."""

    settings: SearchSettings
    folds: Sequence[Fold]
    scorer: MetricScorer
    # subsamples[fold][rung]: the training rows of that fold at that rung (None: all of them)
    subsamples: Sequence[Sequence[Any]] = ()


def subsample_rows(y, rows: int, seed: int, stratify: bool):
    """`rows` row indices of a fold's training set, stratified by class when asked and
    possible (a class with a single row cannot be split: then a plain random sample)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(y))
    if rows >= len(y):
        return None
    try:
        picked, _ = train_test_split(indices, train_size=rows, random_state=seed,
                                     stratify=y if stratify else None)
    except ValueError:
        picked, _ = train_test_split(indices, train_size=rows, random_state=seed)
    return np.sort(picked)


def make_subsamples(settings: SearchSettings, folds: Sequence[Fold], rows: Sequence[int]) -> list[list[Any]]:
    """Each fold's training rows at each rung; the last rung is always the whole fold."""
    return [[subsample_rows(fold.y_train, n, settings.seed + i, settings.task == "classification") for n in rows[:-1]]
            + [None] for i, fold in enumerate(folds)]


def fit_and_score_fold(context: _Context, family: str, params: Mapping[str, Any], index: int, rung: int = -1
                       ) -> tuple[float | None, str | None, float, Any]:
    """Fit one parameter set on one fold (on the rung's subsample of its training rows)
    and score it on the whole validation fold: (score, error, seconds, predictions). The
    validation predictions (for ensemble selection) only on the full fold when the settings
    keep predictions, else None."""
    from threadpoolctl import threadpool_limits

    settings, fold = context.settings, context.folds[index]
    picked = context.subsamples[index][rung] if context.subsamples else None
    X_train, y_train = (fold.X_train, fold.y_train) if picked is None else (fold.X_train[picked], fold.y_train[picked])
    w_train = fold.w_train if picked is None or fold.w_train is None else fold.w_train[picked]
    began = time.perf_counter()
    try:
        estimator = fam.build_estimator(
            family, settings.task, params, metric=settings.metric, seed=settings.seed,
            threads=settings.threads_per_trial, scale=settings.scale, n_classes=settings.n_classes,
        )
        # OpenMP/BLAS threads of one fit: never more than its share of the cores
        # (oversubscribed OpenMP spins and slows everything down).
        with threadpool_limits(limits=settings.threads_per_trial), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; a bad fit shows in its score
            fit_weighted(estimator, X_train, y_train, w_train, seed=settings.seed + index)
            score = score_weighted(context.scorer, estimator, fold.X_valid, fold.y_valid, fold.w_valid)
            predictions = None
            if settings.keep_predictions and picked is None:
                predictions = oof_predictions(estimator, fold.X_valid,
                                              settings.classes if settings.task == "classification" else None)
    except Exception as error:  # noqa: BLE001 - a failing parameter set fails its trial, not the run
        return None, f"{type(error).__name__}: {error}", time.perf_counter() - began, None
    if not math.isfinite(score):
        return None, f"fold {index} scored {score}", time.perf_counter() - began, None
    return float(score), None, time.perf_counter() - began, predictions


_PROCESS_CONTEXT: _Context | None = None


def _init_process(context: _Context) -> None:
    global _PROCESS_CONTEXT
    _PROCESS_CONTEXT = context


def _fit_in_process(family: str, params: Mapping[str, Any], index: int, rung: int):
    return fit_and_score_fold(_PROCESS_CONTEXT, family, params, index, rung)


def worker_modules(settings: SearchSettings) -> list[str]:
    """What the fork server imports once so that no worker has to: this module and the
    modules of the searched families' estimators (and of the scaler in front of them),
    nothing else — the import sits between the search's start and its first fit."""
    modules = {fam.family(name).estimator_class(settings.task).__module__ for name in settings.spaces}
    if settings.scale:
        modules |= {"sklearn.pipeline", "sklearn.preprocessing"}
    return [__name__, *sorted(modules)]


def start_fork_server(settings: SearchSettings):
    """The multiprocessing context the worker processes come from: a fork server (a
    clean process that imported `worker_modules` once) forks them — cheap to start, and
    it never ran OpenMP threads. Started here, not at the first fit, so that its imports
    (seconds on a small machine) overlap the search's own setup; a server already
    running is reused."""
    import multiprocessing
    from multiprocessing import forkserver

    mp_context = multiprocessing.get_context("forkserver")
    mp_context.set_forkserver_preload(worker_modules(settings))
    forkserver.ensure_running()
    return mp_context


class _Executor:
    """Fold fits in this process (parallelism 1) or in worker processes, one per parallel
    trial (scikit-learn's Python-level loops hold the GIL, so threads would not run
    trials side by side). Workers are spawned, not forked: forking a process that has
    started OpenMP threads can deadlock the child."""

    def __init__(self, context: _Context):
        self.context = context
        if context.settings.parallelism == 1 and context.settings.timeout_s is None:
            self.pool = ThreadPoolExecutor(max_workers=1)
        else:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=context.settings.parallelism,
                                            mp_context=start_fork_server(context.settings),
                                            initializer=_init_process, initargs=(context,))

    def submit(self, family: str, params: Mapping[str, Any], index: int, rung: int = -1) -> Future:
        if isinstance(self.pool, ThreadPoolExecutor):
            return self.pool.submit(fit_and_score_fold, self.context, family, params, index, rung)
        return self.pool.submit(_fit_in_process, family, params, index, rung)

    def stop(self) -> None:
        """Stop every fit in flight at the search's deadline: the worker processes are
        terminated (the pool is broken afterwards; the search submits nothing more)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        # ProcessPoolExecutor has no public way to stop a running call before Python 3.14
        # (terminate_workers); its processes are what that method terminates.
        for process in list((getattr(self.pool, "_processes", None) or {}).values()):
            process.terminate()

    def __enter__(self) -> "_Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Running:
    trial: Any  # optuna Trial
    family: str
    params: dict[str, Any]
    scores: list[float] = field(default_factory=list)  # fold scores at the current rung, in fold order
    fold_results: dict[int, float] = field(default_factory=dict)  # the current rung's folds done so far
    rung: int = 0
    rung_scores: list[float] = field(default_factory=list)
    fits: int = 0
    seconds: float = 0.0
    state: str | None = None
    error: str | None = None
    predictions: dict[int, Any] = field(default_factory=dict)  # the last rung's validation predictions, by fold


def run_search(
    settings: SearchSettings,
    folds: Sequence[Fold],
    scorer: MetricScorer,
    on_trial: Callable[[TrialRecord, SearchResult], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    fits: Callable[[_Context], Any] | None = None,
) -> SearchResult:
    """Run the search; `on_trial` is called after every trial (in trial order) with the
    record and the result so far (for logs and progress). `fits` makes the executor the fold
    fits run on (engines.search.RayFits); by default this process and its worker processes."""
    if (settings.parallelism > 1 or settings.timeout_s is not None) and fits is None:
        start_fork_server(settings)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families = list(settings.spaces)
    pruning = settings.pruning and settings.strategy != "grid"
    train_rows = min(len(f.y_train) for f in folds)
    rows = rung_rows(train_rows) if pruning and settings.multi_fidelity else [None]
    rungs = len(rows)
    plan = grid_plan(settings.spaces, settings.max_trials) if settings.strategy == "grid" else None
    planned = len(plan) if plan is not None else settings.max_trials
    study = optuna.create_study(
        direction=direction(settings.metric),
        sampler=_sampler(settings.strategy, settings.seed, settings.parallelism > 1,
                         startup_trials(settings.max_trials)),
        pruner=_pruner(settings, rungs),
    )
    plan_first = portfolio_plan(settings, train_rows) if plan is None and settings.strategy == "tpe" else plan or []
    for family, params in plan_first:
        study.enqueue_trial({"family": family, **{optuna_name(family, k): v for k, v in params.items()}})
    window = sampling_window(settings.parallelism)
    n_folds = len(folds)

    result = SearchResult(trials=[], best=None, metric=settings.metric, direction=direction(settings.metric),
                          planned=planned, stopped_by="budget")
    started = clock()
    trials: list[_Running] = []  # every sampled trial, by number
    pending: dict[Future, _Running] = {}
    parked: list[_Running] = []  # finished a rung below the last, waiting for earlier trials' scores at it

    def tell(running: _Running) -> None:
        scores = running.scores
        mean = sum(scores) / len(scores) if scores and running.state not in (FAILED, TIMED_OUT) else None
        if running.state == COMPLETE:
            study.tell(running.trial, mean)
        elif running.state == PRUNED:
            study.tell(running.trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(running.trial, state=optuna.trial.TrialState.FAIL)
        record = TrialRecord(running.trial.number, running.family, dict(running.params), running.state,
                             mean, scores, running.seconds, running.error,
                             list(running.rung_scores) if rungs > 1 else [],
                             rows[running.rung] if rungs > 1 else None, running.fits)
        result.trials.append(record)
        if running.state == COMPLETE and (result.best is None or is_better(settings.metric, mean, result.best.score)):
            result.best = record
        if running.state == COMPLETE and len(running.predictions) == n_folds and all(
                p is not None for p in running.predictions.values()):
            record.predictions = [running.predictions[i] for i in range(n_folds)]
            keep_best_predictions(result.trials, settings.metric, settings.keep_predictions)
        if on_trial is not None:
            on_trial(record, result)

    fold_of: dict[Future, int] = {}
    queued = FitQueue()

    def submit(running: _Running, index: int) -> None:
        queued.push(running, index)

    def dispatch() -> None:
        """Hand every free worker the most urgent queued fit (the pool's own queue would
        run them first come, first served)."""
        while len(pending) < settings.parallelism and (fit := queued.pop()) is not None:
            running, index = fit
            future = executor.submit(running.family, running.params, index, running.rung)
            pending[future], fold_of[future] = running, index

    def in_flight() -> int:
        return len({id(r) for r in pending.values()} | queued.trials())

    def start_rung(running: _Running) -> None:
        """Multi-fidelity: every fold of the rung at once (the decision waits for all of
        them anyway), so idle workers help a trial on its costly last rung. Otherwise
        fold by fold, for the median pruning after each."""
        running.scores = []
        for index in range(n_folds if rungs > 1 else 1):
            submit(running, index)

    def fold_done(running: _Running, index: int, score: float | None, error: str | None, seconds: float,
                  predictions: Any = None) -> None:
        if running.state is not None:
            return  # a fold of a trial that has already failed
        running.seconds += seconds
        running.fits += 1
        if error is not None:
            running.state, running.error = FAILED, error
            return
        running.fold_results[index] = score
        if predictions is not None:
            running.predictions[index] = predictions
        running.scores = [running.fold_results[i] for i in sorted(running.fold_results)]
        last_rung = running.rung == rungs - 1
        if len(running.scores) == n_folds:
            running.fold_results = {}
            running.rung_scores.append(sum(running.scores) / n_folds)
            if last_rung:
                running.state = COMPLETE
                return
            running.trial.report(running.rung_scores[-1], running.rung)
            parked.append(running)
            return
        if rungs > 1:
            return  # the rung's other folds are on their way
        if pruning:
            running.trial.report(sum(running.scores) / len(running.scores), index)
            if running.trial.should_prune():
                running.state = PRUNED
                return
        submit(running, index + 1)

    def settled_at(other: _Running, rung: int) -> bool:
        return other.state is not None or len(other.rung_scores) > rung

    def promote_or_prune_parked() -> None:
        """Decide, in trial order, for every parked trial whose earlier trials all have
        their score at its rung (or stopped before it)."""
        for running in sorted(parked, key=lambda r: r.trial.number):
            if not all(settled_at(other, running.rung) for other in trials[:running.trial.number]):
                continue
            parked.remove(running)
            if running.trial.should_prune():
                running.state = PRUNED
            else:
                running.rung += 1
                start_rung(running)

    deadline = None if settings.timeout_s is None else started + settings.timeout_s

    def stop_at_deadline() -> None:
        """The budget is spent: stop the fits in flight, drop the queued ones, and record
        every trial not finished (running, queued or parked between rungs) as timed out."""
        nonlocal sampling
        stop = getattr(executor, "stop", None)
        if stop is not None:
            stop()
        else:  # an executor that cannot stop its fits: they are abandoned, never awaited
            for future in pending:
                future.cancel()
        pending.clear()
        fold_of.clear()
        queued.clear()
        parked.clear()
        for running in trials:
            if running.state is None:
                running.state = TIMED_OUT
                running.error = f"stopped at the search's timeout ({settings.timeout_s:g}s)"
        result.stopped_by = "timeout"
        sampling = False

    subsamples = make_subsamples(settings, folds, rows) if rungs > 1 else ()
    with (fits or _Executor)(_Context(settings, tuple(folds), scorer, subsamples)) as executor:
        sampling = True
        while True:
            # The strict order of events — tell(k - window), sample(k), tell(k - window + 1) —
            # is what makes a seeded search repeatable with several trials in flight.
            told = len(result.trials)
            while sampling and in_flight() < settings.parallelism:
                k = len(trials)
                if k >= planned:
                    sampling = False
                elif settings.timeout_s is not None and clock() - started >= settings.timeout_s:
                    result.stopped_by, sampling = "timeout", False
                elif told >= k - window + 1:
                    trial = study.ask()
                    family = trial.suggest_categorical("family", families)
                    running = _Running(trial, family, suggest(trial, family, settings.spaces[family]))
                    trials.append(running)
                    start_rung(running)
                else:
                    break
            dispatch()
            if deadline is not None and clock() >= deadline and (pending or parked or queued.trials()):
                stop_at_deadline()
            # Tell finished trials in order, but never trial k - window + 1 before trial k
            # was sampled.
            progressed = False
            while told < len(trials) and trials[told].state is not None and (
                    not sampling or told + window - 1 < len(trials)):
                tell(trials[told])
                told += 1
                progressed = True
            if progressed:
                continue
            if parked and not pending:
                promote_or_prune_parked()
                continue
            if not pending:
                break
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED,
                           timeout=None if deadline is None else max(0.0, deadline - clock()))
            for future in sorted(done, key=lambda f: pending[f].trial.number):
                running = pending.pop(future)
                fold_done(running, fold_of.pop(future), *future.result())
            promote_or_prune_parked()

    result.counts = {s: sum(1 for t in result.trials if t.state == s) for s in (COMPLETE, PRUNED, FAILED, TIMED_OUT)}
    if result.best is None:
        errors = [t.error for t in result.trials if t.error and t.state == FAILED]
        detail = f"; first error: {errors[0]}" if errors else ""
        if result.counts[TIMED_OUT]:
            detail += (f"; {result.counts[TIMED_OUT]} stopped at the {settings.timeout_s:g}s timeout: raise "
                       "search.timeout or lower maxTrials")
        raise SearchError(f"no trial completed ({len(result.trials)} tried{detail})")
    return result


def keep_best_predictions(trials: Sequence[TrialRecord], metric: str, keep: int) -> None:
    """Drop the out-of-fold predictions of every trial but the `keep` best-scoring ones (memory:
    a trial's predictions are as many as the training rows)."""
    holding = [t for t in trials if t.predictions is not None]
    if len(holding) <= keep:
        return
    ranked = sorted(holding, key=lambda t: (t.score if direction(metric) == "minimize" else -t.score, t.number))
    for trial in ranked[keep:]:
        trial.predictions = None


def best_score_so_far(result: SearchResult) -> float | None:
    return best_of(result.metric, [t.score for t in result.trials if t.state == COMPLETE])
