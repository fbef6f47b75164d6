"""Where a workload computes: `local` (in its Job's pod) or `ray` (on a Ray cluster).

A Dataset's or TrainingRun's `spec.engine` picks one; unset, the operator-wide default
($KADENCE_ENGINE, the chart's `engine` value) does. With `ray` the workload Job is a thin
driver: it connects to the cluster at $KADENCE_RAY_ADDRESS (the chart's `ray.address`, the
sandbox's `--ray` head) and submits Ray tasks that run the same functions the local path runs
(`engines.ingest` for a Dataset's ingest, `engines.search` for a TrainingRun's fold fits,
`run_with_store` for a FeatureSet's materialization and a MonitorPolicy's evaluation), so both
engines give the same versions and answers.

The Ray workers get the Job's object-storage settings (and a Dataset source's own
credentials, the monitor's PII key) through the Ray job's runtime environment, so they read and
write S3 themselves.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Iterable, Iterator, Mapping

from ..settings import Settings

ENGINES = ("local", "ray")
# Ray retries a task whose worker died (a crashed or preempted node) this many times.
TASK_RETRIES = 3


class EngineError(Exception):
    """The engine cannot run: ray asked for but not installed or not configured."""


def resolve_engine(spec_engine: str | None, settings: Settings) -> str:
    """The spec's engine, else the operator-wide default."""
    return spec_engine or settings.engine


def worker_env(settings: Settings) -> dict[str, str]:
    """The variables Ray workers need to reach object storage as this Job does: KADENCE_S3_*, a
    Dataset source's KADENCE_SOURCE_S3_*, (a monitor's) KADENCE_PII_KEY and KADENCE_OWNER_*."""
    env = dict(settings.storage_env())
    env.update({"KADENCE_SOURCE_S3_" + key[len("KADENCE_S3_"):]: value
                for key, value in settings.source_s3.items()})
    if settings.pii_key:
        env["KADENCE_PII_KEY"] = settings.pii_key
    # what the workers write is stamped with the Job's owner, as the Job's own writes are
    env.update({name: value for name, value in (("KADENCE_OWNER_UID", settings.owner_uid),
                                                ("KADENCE_OWNER_KIND", settings.owner_kind),
                                                ("KADENCE_OWNER_NAME", settings.owner_name),
                                                ("KADENCE_OWNER_NAMESPACE", settings.owner_namespace)) if value})
    return env


@contextlib.contextmanager
def ray_session(settings: Settings, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """Connected to the Ray cluster at settings.ray_address for the duration of the block."""
    if not settings.ray_address:
        raise EngineError("engine ray needs the Ray cluster's address: set the chart value ray.address "
                          "($KADENCE_RAY_ADDRESS), or start the sandbox with --ray")
    try:
        import ray
    except ImportError:
        raise EngineError("engine ray needs the ray package in the workload image (pip install 'kadence[ray]')") \
            from None
    ray.init(address=settings.ray_address, runtime_env={"env_vars": dict(env or {})},
             log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def ray_cpus() -> int:
    """The CPUs of the connected Ray cluster (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def ordered_map(remote_fn, calls: Iterable[tuple], window: int) -> Iterator:
    """Run `remote_fn.remote(*args)` for each of `calls` on Ray, at most `window` at once, and
    yield the results in the order of `calls` (so the driver holds at most `window` of them).
    Tasks still running when the caller stops early are cancelled."""
    import ray

    pending: deque = deque()
    try:
        for args in calls:
            pending.append(remote_fn.remote(*args))
            if len(pending) >= window:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
    finally:
        for ref in pending:
            ray.cancel(ref)


def run_remote(fn, *args, settings: Settings):
    """`fn(*args)` run as one Ray task on the cluster (retried there if its worker dies), its result
    returned. An exception `fn` raises is raised here as its own class."""
    import ray

    with ray_session(settings, worker_env(settings)):
        return ray.get(ray.remote(fn).options(max_retries=TASK_RETRIES, num_cpus=1).remote(*args))


def run_with_store(fn, task, settings: Settings):
    """`fn(task, store)` run as one Ray task with the worker's own object store, its result returned:
    a FeatureSet's materialization and a MonitorPolicy's evaluation on `engine: ray`.

    The task runs the local path's own function, so both engines give the same answers by
    construction (the same version and feature table row for row and the same transformer
    bytes; the same drift scores and verdicts). It reads its inputs (the Dataset snapshot; the
    prediction logs, feedback and reference) from object storage and writes its outputs there;
    the driver gets the result (kilobytes: summaries, never rows). One task, not one per row
    group: the transformer's fit needs statistics of whole columns (a median, the most frequent
    categories) and the window's drift tests whole samples, so one worker reads them either way;
    what `ray` changes is where that memory is spent (a Ray worker sized for it, retried if it
    dies, instead of the Job's pod)."""
    return run_remote(_with_store, fn, task, settings=settings)


def _with_store(fn, task):
    from ..storage import ObjectStore

    return fn(task, ObjectStore.from_env())
