"""The ingest itself (imported by `kadence ingest` at run time, so `--help` stays light)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from ..api.dataset import RuleResult as RuleResultModel
from ..domain.data.feedback import file_format as appended_format
from ..domain.data.profile import Profiler
from ..domain.data.quality import QualityChecker, RuleResult, schema_failure
from ..domain.data.versioning import ContentHash, canonical_json, row_hashes
from ..engines import EngineError, resolve_engine
from ..settings import Settings
if TYPE_CHECKING:
    from ..storage import ObjectStore
from .data_tasks import (
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_VALID,
    ColumnInfo,
    IngestResult,
    IngestTask,
    dataset_prefix,
)
from .dataio import (
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
    to_pandas,
)

MANIFEST_KIND = "kadence.dev/dataset-snapshot"
INLINE_DATA_ENV = "KADENCE_INLINE_DATA"  # a configMapRef source's data, put there by the Job's env
# The histogram pass reuses the numeric columns of pass 1 while they take at most this much
# memory; for bigger data it re-reads them from the local Parquet snapshot.
KEEP_FOR_HISTOGRAMS_BYTES = 256 << 20


def now_iso() -> str:
    """RFC 3339 with microseconds, so snapshots made within one second still order by creation."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_task(model: type[BaseModel], path: str | None, env_name: str) -> Any:
    """The task from a JSON file or from the JSON in an environment variable."""
    if path:
        text = Path(path).read_text(encoding="utf-8")
    elif os.environ.get(env_name):
        text = os.environ[env_name]
    else:
        raise ValueError(f"no task: pass --task FILE or set {env_name}")
    return model.model_validate(json.loads(text))


def emit(result: BaseModel, store: ObjectStore | None, key: str | None, out: IO[str]) -> None:
    """Write the result to object storage (when there is one) and print it as the last line."""
    line = json.dumps(result.model_dump(by_alias=True, mode="json", exclude_none=True), sort_keys=True)
    if store is not None and key:
        try:
            store.put_bytes(key, line.encode(), "application/json")
        except Exception as error:  # noqa: BLE001 - the log line below still carries the result
            print(f"could not write the result to {store.uri(key)}: {type(error).__name__}: {error}", file=sys.stderr)
    out.write(line + "\n")
    out.flush()


def report(result: BaseModel, store: ObjectStore | None, key: str | None, out: IO[str]) -> int:
    """`emit` the result and return the Job's exit status for its outcome."""
    emit(result, store, key, out)
    return {"Valid": EXIT_VALID, "Invalid": EXIT_INVALID}.get(result.outcome, EXIT_ERROR)


def run_from_args(args: Any, env_name: str, out: IO[str]) -> int:
    try:
        task = load_task(IngestTask, args.task, env_name)
        if args.source:
            spec = task.spec.model_copy(update={"source": task.spec.source.model_copy(
                update={"uri": args.source, "inline": None, "config_map_ref": None})})
            task = task.model_copy(update={"spec": spec})
    except (OSError, ValueError, ValidationError) as error:
        result = IngestResult(outcome="Error", valid=False, message=f"bad task: {error}")
        return report(result, None, None, out)
    store = None
    if not args.no_store or (task.spec.source.uri or "").startswith("s3://"):
        from ..storage import ObjectStore, StorageError  # minio only when storage is used

        try:
            store = ObjectStore.from_env()
        except StorageError as error:
            return report(IngestResult(outcome="Error", valid=False, message=str(error)), None, None, out)
    try:
        result = ingest(task, store, write=not args.no_store, output_dir=Path(args.output) if args.output else None)
    except Exception as error:  # noqa: BLE001 - a Job must still leave a result the operator can read
        traceback.print_exc()
        result = IngestResult(outcome="Error", valid=False, message=f"ingest failed: {type(error).__name__}: {error}")
    return report(result, store if not args.no_store else None, task.resolved_result_key(), out)


def ingest(task: IngestTask, store: ObjectStore | None, write: bool = True,
           output_dir: Path | None = None) -> IngestResult:
    """Fetch, validate, profile and (when valid and `write`) store the snapshot."""
    workdir = make_workdir()
    try:
        guards = erasure_guards(task, store)
        if resolve_engine(task.spec.engine, Settings.from_env()) == "ray":
            if guards:
                return IngestResult(outcome="Error", valid=False, message=(
                    f"ErasureRequests {', '.join(g.request for g in guards)} guard this Dataset and the ray engine "
                    "does not apply erasure guards yet: ingest it with spec.engine: local"))
            return _ingest_on_ray(task, store, write, output_dir, workdir)
        return _ingest(task, store, write, output_dir, workdir, guards)
    except EngineError as error:
        return IngestResult(outcome="Error", valid=False, message=str(error))
    except SourceError as error:
        return IngestResult(outcome="Error", valid=False, appended=list(task.appended), message=str(error))
    except Exception as error:
        from ..storage import StorageError  # imported here so that runs without storage skip minio

        if isinstance(error, StorageError):
            return IngestResult(outcome="Error", valid=False, message=f"object storage: {error}")
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class ErasureGuard:
    """An ErasureRequest's guard (workloads.erase_run): rows whose `column` hashes to one of `hashes`
    under the namespace's key are an erased subject's, and no version may hold them again."""

    def __init__(self, request: str, column: str, hashes: set[str], key: bytes):
        self.request, self.column, self.hashes, self.key = request, column, hashes, key

    def mask(self, frame):
        from ..domain.data.erasure import guarded_rows

        if self.column not in frame.columns:
            return None
        return guarded_rows(frame[self.column], self.hashes, self.key)


def erasure_guards(task: IngestTask, store: ObjectStore | None) -> list[ErasureGuard]:
    """The guards of the ErasureRequests that named this Dataset; SourceError when one applies and
    the Job has no hashing key to match them with."""
    if store is None:
        return []
    from .erase_task import guard_prefix

    guards = []
    for key in sorted(store.list_keys(guard_prefix(task.namespace))):
        guard = json.loads(store.get_bytes(key))
        if task.name in (guard.get("datasets") or []):
            guards.append(guard)
    if not guards:
        return []
    secret = (Settings.from_env().pii_key or "").strip().encode()
    if not secret:
        raise SourceError(f"ErasureRequests {', '.join(g['request'] for g in guards)} guard this Dataset, and this "
                          "Job has no hashing key (Secret kadence-pii-key) to keep their rows out")
    return [ErasureGuard(g["request"], g["column"], set(g.get("hashes") or []), secret) for g in guards]


def _ingest(task: IngestTask, store: ObjectStore | None, write: bool, output_dir: Path | None,
            workdir: Path, guards: list[ErasureGuard] = ()) -> IngestResult:
    spec = task.spec
    columns = [(c.name, c.type) for c in spec.schema_.columns]
    column_info = [ColumnInfo(name=c.name, type=c.type, pii=c.pii or None) for c in spec.schema_.columns]
    content = ContentHash(columns)
    profiler = Profiler(dict(columns))
    checker = QualityChecker(spec.schema_, spec.quality)
    local = workdir / "data.parquet"
    inline = spec.source.inline
    if spec.source.config_map_ref is not None:
        inline = task.inline_data if task.inline_data is not None else Settings.from_env().inline_data
        if inline is None:
            ref = spec.source.config_map_ref
            raise SourceError(f"the data of ConfigMap {ref.name!r} key {ref.key!r} did not reach the Job "
                              f"(neither inlineData in the task nor ${INLINE_DATA_ENV})")
    files: list[str] = []
    kept: list[dict] = []  # numeric columns of each batch for the histogram pass, while they fit
    kept_bytes = 0
    reading = ""  # the file being read, for messages

    erased: dict[str, int] = {}

    def take(batch: pa.RecordBatch) -> None:
        nonlocal kept, kept_bytes
        frame = to_pandas(batch)
        for guard in guards:  # an erased subject's rows never come back, from the source or folded feedback
            mask = guard.mask(frame)
            if mask is not None and mask.any():
                erased[guard.request] = erased.get(guard.request, 0) + int(mask.sum())
                batch = batch.filter(pa.array(~mask))
                frame = to_pandas(batch)
        writer.write_batch(batch)
        hashes = row_hashes(frame)
        content.update_hashes(hashes)
        numeric_values = profiler.update(frame, hashes)
        checker.update(frame, hashes)
        kept_bytes += sum(v.nbytes for v in numeric_values.values())
        if kept_bytes <= KEEP_FOR_HISTOGRAMS_BYTES:
            kept.append(numeric_values)
        else:
            kept = []  # too big to keep: pass 2 re-reads the local snapshot instead

    with BackgroundParquetWriter(local, arrow_schema(columns)) as writer:
        try:
            for name, path in fetch_sources(spec.source.uri, inline, store, workdir):
                files.append(reading := name)
                try:
                    for batch in read_batches(path, spec.format, columns):
                        take(batch)
                except SourceError as error:
                    raise SourceError(f"cannot read {name}: {error}") from None
            # Appended files follow the source's rows in list order, with only the schema's columns.
            for uri in task.appended:
                reading = f"appended file {uri}"
                try:
                    path = fetch_appended(uri, store, workdir)
                    for batch in read_batches(path, appended_format(uri, spec.format), columns, missing_as_null=True):
                        take(batch)
                except SourceError as error:
                    raise SourceError(f"cannot read the appended file {uri}: {error}") from None
                if path.parent == workdir:
                    path.unlink(missing_ok=True)
        except SchemaProblem as problem:
            where = f" in {reading}" if reading else ""
            failed = schema_failure(problem.rule, problem.message + where)
            return _invalid([failed], files, column_info, None, None, None, task.appended)
    profiler.start_histograms()
    numeric = profiler.numeric_columns()
    if numeric and kept_bytes <= KEEP_FOR_HISTOGRAMS_BYTES:
        for values in kept:
            profiler.update_histogram_arrays(values)
    elif numeric:
        for batch in pq.ParquetFile(str(local)).iter_batches(batch_size=262_144, columns=numeric):
            profiler.update_histogram_arrays(numeric_arrays(batch, numeric))
    del kept
    profile = profiler.result()
    results = rule_results(checker, profile)
    if not all(r.passed for r in results):
        return _invalid(results, files, column_info, content.version(), content.hexdigest(), content.rows,
                        task.appended)
    result = finish(task, store, write, output_dir, local, profile, results, content, files)
    result.erased = erased
    return result


def _ingest_on_ray(task: IngestTask, store: ObjectStore | None, write: bool, output_dir: Path | None,
                   workdir: Path) -> IngestResult:
    """The same ingest with reading, typing, hashing, profiling and validating in Ray tasks
    (engines.ingest), and the snapshot's data file assembled and uploaded by a Ray task too; this
    driver merges the tasks' summaries and writes the profile and, last, the manifest."""
    from ..engines.ingest import RayIngest

    column_info = [ColumnInfo(name=c.name, type=c.type, pii=c.pii or None) for c in task.spec.schema_.columns]
    with RayIngest(task, store) as run:
        scan = run.scan()
        if scan.problem is not None:
            return _invalid([scan.problem], scan.files, column_info, None, None, None, task.appended)
        results = rule_results(scan.checker, scan.profiler.result())
        content = scan.content
        if not all(r.passed for r in results):
            return _invalid(results, scan.files, column_info, content.version(), content.hexdigest(), content.rows,
                            task.appended)
        prefix = dataset_prefix(task.namespace, task.name, content.version())
        # straight to its place in the snapshot, unless not stored or stored already (nothing rewritten)
        in_place = write and not store.exists(prefix + "manifest.json")
        data_key = prefix + "data.parquet" if in_place else run.scratch_key()
        profile, data_sha256 = run.assemble(scan, data_key)
        local = None
        if output_dir is not None:  # a local copy asked for (`kadence ingest --output`)
            local = workdir / "data.parquet"
            store.get_file(data_key, str(local))
    return finish(task, store, write, output_dir, local, profile, results, content, scan.files,
                  data_in_place=in_place, data_sha256=data_sha256)


def rule_results(checker: QualityChecker, profile: dict) -> list[RuleResult]:
    """Every rule's result for data that met the schema."""
    return [RuleResult("schema[columns]", True, "schema[columns]: all declared columns present"),
            RuleResult("schema[types]", True, "schema[types]: every value fits its column type"),
            *checker.results(profile)]


def finish(task: IngestTask, store: ObjectStore | None, write: bool, output_dir: Path | None, local: Path | None,
           profile: dict, results: list[RuleResult], content: ContentHash, files: list[str],
           data_in_place: bool = False, data_sha256: str | None = None) -> IngestResult:
    """Store the valid snapshot `local` (data.parquet) with its profile and manifest; the result.
    `data_in_place`: the snapshot's data.parquet is stored already (the ray engine's Ray task
    wrote it): only the profile and the manifest are written; `data_sha256`: that file's sha256
    (`local`, when there is one, is a copy)."""
    spec = task.spec
    column_info = [ColumnInfo(name=c.name, type=c.type) for c in spec.schema_.columns]
    version, sha256, rows = content.version(), content.hexdigest(), content.rows
    manifest = {
        "kind": MANIFEST_KIND,
        "namespace": task.namespace,
        "name": task.name,
        "version": version,
        "sha256": sha256,
        "rows": rows,
        "columns": [c.model_dump() for c in column_info],
        "target": spec.schema_.target,
        "entityColumn": spec.schema_.entity_column,
        "format": spec.format,
        "source": {"uri": spec.source.uri, "inline": spec.source.inline is not None,
                   "configMapRef": spec.source.config_map_ref.wire() if spec.source.config_map_ref else None,
                   "files": files, "appended": list(task.appended)},
        "dataFile": "data.parquet",
        "dataFileSha256": data_sha256 or file_sha256(local),
        "profileFile": "profile.json",
        "ruleResults": [r.wire() for r in results],
        "createdAt": now_iso(),
    }
    profile_bytes = canonical_json(profile).encode()
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, output_dir / "data.parquet")
        (output_dir / "profile.json").write_bytes(profile_bytes)
        (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    created, uri, created_at, pruned = False, None, manifest["createdAt"], []
    if write and store is not None:
        created, created_at = _store_snapshot(store, task, version, None if data_in_place else local, profile_bytes,
                                              manifest)
        uri = store.uri(dataset_prefix(task.namespace, task.name, version))
        pruned = prune_versions(store, task.namespace, task.name, keep=spec.retention, current=version)
    return IngestResult(
        outcome="Valid", valid=True, version=version, sha256=sha256, rows=rows, uri=uri, created=created,
        created_at=created_at, source_files=files, appended=list(task.appended), columns=column_info,
        pruned_versions=pruned,
        rule_results=[RuleResultModel(**r.wire()) for r in results],
        message=f"version {version}: {rows} rows, {len(results)} rules passed"
        + ("" if created or not write else " (already stored; nothing rewritten)"),
    )


def prune_versions(store: ObjectStore, namespace: str, name: str, keep: int, current: str) -> list[str]:
    """Delete the oldest snapshots (by createdAt) beyond `keep`; never the current one.
    Returns the pruned version ids."""
    root = f"datasets/{namespace}/{name}/"
    snapshots = []
    for key in store.list_keys(root):
        parts = key[len(root):].split("/")
        if len(parts) == 2 and parts[1] == "manifest.json" and parts[0] != "runs":
            created = json.loads(store.get_bytes(key)).get("createdAt", "")
            snapshots.append((created, parts[0]))
    snapshots.sort(reverse=True)
    survivors = {current, *(version for _, version in snapshots[:keep])}
    pruned = [version for _, version in snapshots if version not in survivors]
    for version in pruned:
        # the manifest goes first, so a half-deleted snapshot is never taken for a complete one
        store.client.remove_object(store.bucket, dataset_prefix(namespace, name, version) + "manifest.json")
        store.delete_prefix(dataset_prefix(namespace, name, version))
    return pruned


def _store_snapshot(store: ObjectStore, task: IngestTask, version: str, local: Path | None, profile: bytes,
                    manifest: dict) -> tuple[bool, str]:
    """Upload data (unless `local` is None: in place already), profile, then the write-once
    manifest. Returns (created, createdAt)."""
    prefix = dataset_prefix(task.namespace, task.name, version)
    manifest_key = prefix + "manifest.json"
    if store.exists(manifest_key):
        return False, json.loads(store.get_bytes(manifest_key)).get("createdAt", "")
    if local is not None:
        store.put_file(prefix + "data.parquet", str(local), "application/vnd.apache.parquet")
    store.put_bytes(prefix + "profile.json", profile, "application/json")
    from ..storage import ObjectExistsWithOtherContent

    try:
        store.put_once(manifest_key, json.dumps(manifest, indent=2, sort_keys=True).encode(), "application/json")
    except ObjectExistsWithOtherContent:  # a concurrent run finished the same version first
        return False, json.loads(store.get_bytes(manifest_key)).get("createdAt", "")
    return True, manifest["createdAt"]


def _invalid(results: list[RuleResult], files: list[str], columns: list[ColumnInfo], version: str | None,
             sha256: str | None, rows: int | None, appended: list[str]) -> IngestResult:
    failed = [r for r in results if not r.passed]
    return IngestResult(
        outcome="Invalid", valid=False, version=version, sha256=sha256, rows=rows, source_files=files,
        appended=list(appended),
        columns=columns, rule_results=[RuleResultModel(**r.wire()) for r in results],
        failed_rules=[r.rule for r in failed],
        message="; ".join(r.message for r in failed),
    )
