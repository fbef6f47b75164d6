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

`assemble` then streams the parts into the one data.parquet of the snapshot (row group by row
group, bounded memory) and counts the histograms on the way; the parts are deleted.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
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


def parts_prefix(task: IngestTask) -> str:
    return f"datasets/{task.namespace}/{task.name}/runs/{task.run_id}/parts/"


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
    """The driver's side: `scan()` the files on Ray, then `assemble()` the snapshot."""

    def __init__(self, task: IngestTask, store: ObjectStore | None, settings: Settings | None = None):
        if store is None:
            raise EngineError("engine ray needs object storage (KADENCE_S3_*): the Ray workers hand the data "
                              "back through it")
        self.task, self.store = task, store
        self.settings = settings or Settings.from_env()
        self.workdir = make_workdir()
        self._session = ray_session(self.settings, worker_env(self.settings))

    def __enter__(self) -> "RayIngest":
        self._session.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.store.delete_prefix(parts_prefix(self.task))
            shutil.rmtree(self.workdir, ignore_errors=True)
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

    def assemble(self, scan: Scan, local: Path) -> dict:
        """Stream the parts, in order, into `local` (the snapshot's data.parquet), counting the
        histograms on the way; returns the finished profile."""
        profiler = scan.profiler
        profiler.start_histograms()
        numeric = profiler.numeric_columns()
        columns = [(c.name, c.type) for c in self.task.spec.schema_.columns]
        with BackgroundParquetWriter(local, arrow_schema(columns)) as writer:
            for index, key in enumerate(scan.parts):
                path = self.workdir / f"part-{index}.parquet"
                self.store.get_file(key, str(path))
                parquet = pq.ParquetFile(str(path))
                for group in range(parquet.num_row_groups):
                    for batch in parquet.read_row_group(group).to_batches():
                        writer.write_batch(batch)
                        if numeric:
                            profiler.update_histogram_arrays(numeric_arrays(batch, numeric))
                path.unlink()
        return profiler.result()


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
