"""A TrainingRun's search on Ray: every fold fit is a Ray task.

The search itself (domain.training.search.run_search) stays in the driver: it samples the
parameters (Optuna's TPE, the portfolio, the grid), schedules the fits (the ASHA rungs, the
fit queue) and tells the study in trial-number order, so a fixed seed gives the same trials,
scores and winner whichever engine fits them. Only where `fit_and_score_fold` runs changes:
`RayFits` replaces the local process pool, with at most `search.parallelism` fits in flight
(the scheduler's own bound). The folds go to the object store once (`ray.put`); a fit whose
worker dies (a lost node, an OOM kill) is run again by Ray up to TASK_RETRIES times instead of
failing its trial.

Why plain Ray tasks rather than Ray Tune or Optuna's shared-storage mode: both would replace
the scheduler that makes the search deterministic and multi-fidelity (trial k sampled after
trial k - window is told; rung decisions that never depend on which fit finished first), and
Tune's ASHA promotes on arrival order. Keeping the scheduler and distributing only the fits
keeps one search with one set of answers on both engines.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future
from typing import Any, Callable, Iterator, Mapping

from ..domain.training.search import fit_and_score_fold
from ..settings import Settings
from . import TASK_RETRIES, ray_session


def _fit(context: Any, family: str, params: Mapping[str, Any], index: int, rung: int):
    return fit_and_score_fold(context, family, params, index, rung)


class RayFits:
    """The search's fit executor on the connected Ray cluster (same interface as its local pool)."""

    def __init__(self, context: Any):
        import ray

        self._context = ray.put(context)
        self._remote = ray.remote(_fit).options(max_retries=TASK_RETRIES, num_cpus=1)
        self._refs: list = []

    def submit(self, family: str, params: Mapping[str, Any], index: int, rung: int = -1) -> Future:
        ref = self._remote.remote(self._context, family, dict(params), index, rung)
        self._refs.append(ref)
        return ref.future()

    def stop(self) -> None:
        """The search's deadline: cancel every fit task still running on the cluster."""
        import ray

        for ref in self._refs:
            ray.cancel(ref, force=True)
        self._refs = []

    def __enter__(self) -> "RayFits":
        return self

    def __exit__(self, *exc) -> None:
        pass


@contextlib.contextmanager
def search_fits(engine: str, settings: Settings) -> Iterator[Callable[[Any], Any] | None]:
    """The `fits` argument of run_search for `engine`: None (its local pool) or RayFits, connected."""
    if engine != "ray":
        yield None
        return
    with ray_session(settings):
        yield RayFits
