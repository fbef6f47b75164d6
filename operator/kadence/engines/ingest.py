"""A Dataset's ingest on Ray: one Ray task per source file (and per appended file).

Each task (`scan_unit`) fetches its file from S3/HTTP/disk itself, reads it batch by batch
with the same typed readers as the local path (workloads.dataio), hashes, profiles and checks
every batch, writes the typed batches as a Parquet part to object storage and returns a small
summary: the row hashes, each batch's numeric moments, the categorical/datetime accumulators,
the bottom-k sample and the rule findings. The driver folds the summaries in file order —
the content hash over the same row hashes in the same order, each batch's moments with the
same arithmetic as the local path (`add_moments`), counts and samples exactly — so the version
id, the validation verdicts and the profile are the local path's, bit for bit (only a column
with more than profile.MAX_TRACKED distinct values, whose pruned top categories are approximate
on either engine, may differ in its approximate tail).

The snapshot is written by Ray too: `assemble` submits one task (`assemble_snapshot`) that
streams the parts, in order, into the one data.parquet of the snapshot (row group by row group,
bounded memory), counts the histograms on the way, uploads the file to its place in the snapshot
and returns the finished profile and the file's sha256. The driver only coordinates: it writes
the profile and, last, the manifest, as the local path does; the parts are deleted.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..api.dataset import DatasetSpec
from ..domain.data.feedback import file_format as appended_format
from ..domain.data.profile import Profiler, batch_moments
from ..domain.data.quality import QualityChecker, RuleResult, schema_failure
from ..domain.data.versioning import ContentHash, row_hashes
from ..settings import Settings
from ..workloads.data_tasks import IngestTask
from ..workloads.dataio import (
    BackgroundParquetWriter,
    SchemaProblem,
    SourceError,
    arrow_schema,
    fetch_appended,
    fetch_sources,
    file_sha256,
    make_workdir,
    numeric_arrays,
    read_batches,
    source_file_uris,
    to_pandas,
)
from . import TASK_RETRIES, EngineError, ordered_map, ray_cpus, ray_session, worker_env

if TYPE_CHECKING:
    from ..storage import ObjectStore


@dataclass(frozen=True)
class Unit:
    """One file to scan: a source file (uri None: the inline data) or an appended file."""

    uri: str | None
    appended: bool = False


@dataclass
class UnitScan:
    name: str
    part_key: str
    rows: int = 0
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    moments: list[dict] = field(default_factory=list)  # per batch: numeric column -> batch_moments
    profiler: Profiler | None = None
    checker: QualityChecker | None = None
    problem: tuple[str, str] | None = None  # a schema rule the file broke: (rule, message)
    error: str | None = None  # the file could not be fetched or read


@dataclass
class Scan:
    """Every file's summary folded together."""

    profiler: Profiler
    checker: QualityChecker
    content: ContentHash
    files: list[str]
    parts: list[str]
    problem: RuleResult | None = None


def run_prefix(task: IngestTask) -> str:
    return f"datasets/{task.namespace}/{task.name}/runs/{task.run_id}/"


def parts_prefix(task: IngestTask) -> str:
    return f"{run_prefix(task)}parts/"


def scan_unit(unit: Unit, spec: DatasetSpec, inline: str | None, part_key: str) -> UnitScan:
    """Runs in a Ray worker: fetch, read, summarise and store one file as a Parquet part."""
    from ..storage import ObjectStore

    # Ray starts workers with OMP_NUM_THREADS=1, which Arrow takes for its thread pool; its CSV
    # reader then parses serially and words its errors differently (with row numbers). Parse as
    # the local Job does, so both engines report a bad value with the same message.
    pa.set_cpu_count(os.cpu_count() or 1)
    columns = [(c.name, c.type) for c in spec.schema_.columns]
    name = unit.uri or "inline"
    label = f"appended file {unit.uri}" if unit.appended else name
    scan = UnitScan(name=name, part_key=part_key, profiler=Profiler(dict(columns)),
                    checker=QualityChecker(spec.schema_, spec.quality))
    store = ObjectStore.from_env()
    workdir = make_workdir()
    try:
        try:
            if unit.appended:
                path, data_format = fetch_appended(unit.uri, store, workdir), appended_format(unit.uri, spec.format)
            else:
                scan.name, path = next(iter(fetch_sources(unit.uri, inline, store, workdir)))
                data_format = spec.format
        except SourceError as error:
            scan.error = f"cannot read the appended file {unit.uri}: {error}" if unit.appended else str(error)
            return scan
        hashes = []
        part = workdir / "part.parquet"
        try:
            with BackgroundParquetWriter(part, arrow_schema(columns)) as writer:
                for batch in read_batches(path, data_format, columns, missing_as_null=unit.appended):
                    writer.write_batch(batch)
                    frame = to_pandas(batch)
                    batch_hashes = row_hashes(frame)
                    values = scan.profiler.update(frame, batch_hashes)
                    scan.moments.append({column: batch_moments(v) for column, v in values.items()})
                    scan.checker.update(frame, batch_hashes)
                    hashes.append(batch_hashes)
        except SchemaProblem as problem:
            scan.problem = (problem.rule, f"{problem.message} in {label}")
            return scan
        except SourceError as error:
            scan.error = (f"cannot read the appended file {unit.uri}: {error}" if unit.appended
                          else f"cannot read {scan.name}: {error}")
            return scan
        scan.hashes = np.concatenate(hashes) if hashes else scan.hashes
        scan.rows = len(scan.hashes)
        store.put_file(part_key, str(part), "application/vnd.apache.parquet")
        return scan
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class RayIngest:
    """The driver's side: `scan()` the files on Ray, then have Ray `assemble()` the snapshot."""

    def __init__(self, task: IngestTask, store: ObjectStore | None, settings: Settings | None = None):
        if store is None:
            raise EngineError("engine ray needs object storage (KADENCE_S3_*): the Ray workers hand the data "
                              "back through it")
        self.task, self.store = task, store
        self.settings = settings or Settings.from_env()
        self._session = ray_session(self.settings, worker_env(self.settings))

    def __enter__(self) -> "RayIngest":
        self._session.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.store.delete_prefix(run_prefix(self.task))
        finally:
            self._session.__exit__(*exc)

    def _inline(self) -> str | None:
        source = self.task.spec.source
        if source.config_map_ref is None:
            return source.inline
        inline = self.task.inline_data if self.task.inline_data is not None else self.settings.inline_data
        if inline is None:
            ref = source.config_map_ref
            raise SourceError(f"the data of ConfigMap {ref.name!r} key {ref.key!r} did not reach the Job "
                              "(neither inlineData in the task nor $KADENCE_INLINE_DATA)")
        return inline

    def units(self) -> list[Unit]:
        inline = self._inline()
        uri = self.task.spec.source.uri
        sources = [Unit(u) for u in source_file_uris(uri, self.store)] if uri else [Unit(None)] if inline else []
        if not sources:
            raise SourceError("the source has no data: neither uri nor inline data is set")
        return sources + [Unit(u, appended=True) for u in self.task.appended]

    def scan(self) -> Scan:
        import ray

        spec = self.task.spec
        columns = [(c.name, c.type) for c in spec.schema_.columns]
        scan = Scan(profiler=Profiler(dict(columns)), checker=QualityChecker(spec.schema_, spec.quality),
                    content=ContentHash(columns), files=[], parts=[])
        inline = self._inline()
        remote = ray.remote(scan_unit).options(max_retries=TASK_RETRIES, num_cpus=1)
        spec_ref = ray.put(spec)
        prefix = parts_prefix(self.task)
        calls = [(unit, spec_ref, inline if unit.uri is None else None, f"{prefix}{index:06d}.parquet")
                 for index, unit in enumerate(self.units())]
        for unit, part in zip((c[0] for c in calls), ordered_map(remote, calls, window=2 * ray_cpus())):
            if not unit.appended:
                scan.files.append(part.name)
            if part.error is not None:
                raise SourceError(part.error)
            if part.problem is not None:
                scan.problem = schema_failure(*part.problem)
                return scan
            fold(scan, part)
        return scan

    def assemble(self, scan: Scan, data_key: str) -> tuple[dict, str]:
        """The snapshot's data.parquet written at `data_key` by a Ray task; (profile, sha256)."""
        import ray

        columns = [(c.name, c.type) for c in self.task.spec.schema_.columns]
        remote = ray.remote(assemble_snapshot).options(max_retries=TASK_RETRIES, num_cpus=1)
        return ray.get(remote.remote(scan.parts, columns, scan.profiler, data_key))

    def scratch_key(self) -> str:
        """Where a snapshot that is not stored (or already is) is assembled; deleted with the parts."""
        return f"{run_prefix(self.task)}data.parquet"


def assemble_snapshot(parts: list[str], columns: list[tuple[str, str]], profiler: Profiler,
                      data_key: str) -> tuple[dict, str]:
    """Runs in a Ray worker: stream the parts, in order, into one Parquet file (the bytes the local
    path writes), counting the histograms on the way, and upload it to `data_key`; returns the
    finished profile and the file's sha256."""
    from ..storage import ObjectStore

    store = ObjectStore.from_env()
    workdir = make_workdir()
    try:
        profiler.start_histograms()
        numeric = profiler.numeric_columns()
        local = workdir / "data.parquet"
        with BackgroundParquetWriter(local, arrow_schema(columns)) as writer:
            for index, key in enumerate(parts):
                path = workdir / f"part-{index}.parquet"
                store.get_file(key, str(path))
                parquet = pq.ParquetFile(str(path))
                for group in range(parquet.num_row_groups):
                    for batch in parquet.read_row_group(group).to_batches():
                        writer.write_batch(batch)
                        if numeric:
                            profiler.update_histogram_arrays(numeric_arrays(batch, numeric))
                path.unlink()
        store.put_file(data_key, str(local), "application/vnd.apache.parquet")
        return profiler.result(), file_sha256(local)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def fold(scan: Scan, part: UnitScan) -> None:
    """Add one file's summary to the running totals (files in order)."""
    scan.content.update_hashes(part.hashes)
    for moments in part.moments:
        for column, values in moments.items():
            scan.profiler.numeric[column].add_moments(values)
    scan.profiler.merge(part.profiler, numeric=False)
    scan.checker.merge(part.checker)
    if part.rows:
        scan.parts.append(part.part_key)
