"""The batch scoring itself (imported by `kadence batch` at run time).

The model is loaded by `kadence.serving.predictor.load_predictor` from the same fields a model
server gets, so a batch run applies exactly the transformer and model (the verified ONNX graph
when there is one) the online server would. Input columns are typed as the server types decoded
JSON (`serving.decoding`: ints as int64, a nullable int with nulls as float64 NaN, ...), chunk by
chunk: memory is bounded by `chunkRows`, not by the input's size.

Publishing: the part files are written first, then `_manifest.json` (files, rows, sha256 of each,
model version, input) last: a reader that waits for the manifest never sees a partial output. A
retried attempt first deletes whatever an earlier attempt left in the run's folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from ..storage import ObjectStore, StorageError
from .batch_task import EXTENSIONS, MANIFEST_KIND, MANIFEST_NAME, BatchResult, BatchTask
from .ingest_run import load_task

EXIT_OK, EXIT_ERROR, EXIT_INVALID = 0, 2, 3
LOG_RECORDS_PER_BATCH = 50_000


class InputRefused(ValueError):
    """The input cannot be scored by this model (a missing column, a value of the wrong type)."""


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_from_args(args: Any, env_name: str, out: IO[str]) -> int:
    from .ingest_run import emit

    try:
        task = load_task(BatchTask, args.task, env_name)
    except (OSError, ValueError, ValidationError) as error:
        emit(BatchResult(outcome="Invalid", run="?", message=f"bad task: {error}"), None, None, out)
        return EXIT_INVALID
    try:
        store = ObjectStore.from_env()
    except StorageError as error:
        emit(BatchResult(outcome="Error", run=task.run, message=str(error)), None, None, out)
        return EXIT_ERROR
    try:
        result = score(task, store)
    except InputRefused as error:
        result = BatchResult(outcome="Invalid", run=task.run, message=str(error))
    except Exception as error:  # noqa: BLE001 - a Job must still leave a result the operator can read
        traceback.print_exc()
        result = BatchResult(outcome="Error", run=task.run, message=f"{type(error).__name__}: {error}")
    emit(result, store, task.result_key, out)
    return {"Succeeded": EXIT_OK, "Invalid": EXIT_INVALID}.get(result.outcome, EXIT_ERROR)


# --- input ----------------------------------------------------------------------------------

def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def input_files(task: BatchTask, store: ObjectStore, scratch: Path) -> list[Path]:
    """Local copies (or the local files) of what the run reads, in order."""
    source = task.input
    if source.snapshot:
        prefix = store.key_of(source.uri.rstrip("/") + "/")
        manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
        path = scratch / "snapshot.parquet"
        store.get_file(prefix + manifest.get("dataFile", "data.parquet"), str(path))
        expected = manifest.get("dataFileSha256")
        if expected and _sha256_file(path) != expected:
            raise StorageError(f"{source.uri}: the data file does not match the sha256 in its manifest")
        return [path]
    extension = EXTENSIONS[source.format]
    local = _local_path(source.uri)
    if local is not None:
        files = sorted(p for p in local.glob(f"*{extension}")) if local.is_dir() else [local]
    else:
        key = store.key_of(source.uri)
        keys = sorted(k for k in store.list_keys(key) if k.endswith(extension)) if key.endswith("/") else [key]
        files = []
        for index, item in enumerate(keys):
            path = scratch / f"input-{index:05d}{extension}"
            store.get_file(item, str(path))
            files.append(path)
    if not files:
        raise InputRefused(f"{source.uri}: no {extension} file to score")
    return files


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_batches(files: list[Path], fmt: str, columns: list[str], chunk_rows: int,
                 optional: tuple[str, ...] = ()) -> Iterator[pa.RecordBatch]:
    """The input as record batches of at most `chunk_rows` rows: `columns` (each must be there) and those of
    `optional` the input has."""
    def chosen(present) -> list[str]:
        missing = [c for c in columns if c not in present]
        if missing:
            raise InputRefused(f"{path.name}: the input has no column {', '.join(map(repr, missing))}")
        return [*columns, *(c for c in optional if c in present and c not in columns)]

    for path in files:
        if fmt == "parquet":
            parquet = pq.ParquetFile(path)
            yield from parquet.iter_batches(batch_size=chunk_rows, columns=chosen(parquet.schema_arrow.names))
        elif fmt == "csv":
            from pyarrow import csv

            header = csv.open_csv(path, read_options=csv.ReadOptions(block_size=1 << 16)).schema.names
            reader = csv.open_csv(path, read_options=csv.ReadOptions(block_size=1 << 22),
                                  convert_options=csv.ConvertOptions(include_columns=chosen(header)))
            for batch in reader:
                yield from _split(batch, chunk_rows)
        else:
            import pandas as pd

            for frame in pd.read_json(path, lines=True, chunksize=chunk_rows, dtype=False):
                yield pa.RecordBatch.from_pandas(frame[chosen(frame.columns)], preserve_index=False)


def _split(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def typed_columns(batch: pa.RecordBatch, columns, first_row: int) -> dict[str, np.ndarray]:
    """The arrays `Predictor.predict` gets from the server's decoder for the same values."""
    from ..serving.decoding import InputError, coerce

    found = {}
    for column in columns:
        array = batch.column(column.name)
        kind, plain = column.type, array.null_count == 0
        fast = None
        if plain and kind == "float" and (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
            fast = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
            fast = fast if np.isfinite(fast).all() else None  # NaN/inf: the server's checks decide
        elif plain and kind == "int" and pa.types.is_integer(array.type):
            fast = pc.cast(array, pa.int64()).to_numpy(zero_copy_only=False)
        elif plain and kind == "bool" and pa.types.is_boolean(array.type):
            fast = array.to_numpy(zero_copy_only=False)
        if fast is not None:
            found[column.name] = fast
            continue
        values = array.to_pylist()
        if kind == "datetime":
            values = [v.isoformat() if hasattr(v, "isoformat") else v for v in values]
        elif kind == "float":
            values = [None if isinstance(v, float) and v != v else v for v in values]  # NaN is a missing value
        try:
            found[column.name] = coerce(column, values, lambda i, _c=column.name: f"row {first_row + i}, column {_c!r}")
        except InputError as error:
            raise InputRefused(str(error)) from error
    return found


# --- output ---------------------------------------------------------------------------------

def output_table(entity: pa.Array, entity_name: str, values: np.ndarray, model_version: str,
                 probabilities: np.ndarray | None, classes) -> pa.Table:
    data = {entity_name: entity, "prediction": pa.array(values.tolist()),
            "model_version": pa.array([model_version] * len(values), pa.string())}
    if probabilities is not None:
        for index, label in enumerate(classes):
            data[f"probability_{label}"] = pa.array(probabilities[:, index], pa.float64())
    return pa.table(data)


def encode(table: pa.Table, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buffer, compression="zstd")
    elif fmt == "csv":
        from pyarrow import csv

        csv.write_csv(table, buffer)
    else:
        import orjson

        return b"".join(orjson.dumps(row) + b"\n" for row in table.to_pylist())
    return buffer.getvalue()


CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv", "jsonl": "application/x-ndjson"}


def log_labels(task: BatchTask, store: ObjectStore, entity: pa.Array, labels: pa.Array, moment: datetime) -> int:
    """The chunk's known labels as feedback for their entity ids (the monitoring feedback layout); how many."""
    from ..serving.predictlog import write_feedback

    known = [(str(e), label) for e, label in zip(entity.to_pylist(), labels.to_pylist()) if label is not None]
    if known:
        write_feedback(store, task.namespace, task.stream, known, moment)
    return len(known)


def log_records(task: BatchTask, store: ObjectStore, entity: list, columns: dict[str, np.ndarray],
                names: list[str], values: np.ndarray, probabilities: np.ndarray | None, moment: datetime) -> None:
    """The chunk's rows as prediction records (requestId = the entity id) in the monitoring log layout."""
    from ..domain.monitoring.logformat import format_time, new_batch_id, prediction_batch_key
    from ..serving.decoding import column_values
    from ..serving.predictlog import encode_records

    stamp = format_time(moment)
    by_column = {name: column_values(columns[name]) for name in names}
    predicted = column_values(np.asarray(values))
    probs = probabilities.tolist() if probabilities is not None else None
    version = str(task.model.version)
    for start in range(0, len(entity), LOG_RECORDS_PER_BATCH):
        records = []
        for i in range(start, min(start + LOG_RECORDS_PER_BATCH, len(entity))):
            outputs = {"prediction": predicted[i]}
            if probs is not None:
                outputs["probabilities"] = probs[i]
            records.append({"requestId": str(entity[i]), "time": stamp, "modelVersion": version,
                            "inputs": {n: by_column[n][i] for n in names}, "outputs": outputs})
        key = prediction_batch_key(task.namespace, task.stream, version, moment, new_batch_id(moment))
        store.put_bytes(key, encode_records(records), "application/gzip")


# --- the run --------------------------------------------------------------------------------

def load_model(task: BatchTask, store: ObjectStore):
    """The Predictor a model server builds for the same ModelVersion."""
    from ..builders.meta import cut_name
    from ..serving.predictor import load_predictor
    from ..serving.task import ServeTask

    model = task.model
    # `inference_service` only names the server's own logs, which a batch run does not write; a BatchPrediction's
    # name may hold dots, a DNS label may not
    serve_task = ServeTask(namespace=task.namespace, inference_service=cut_name(task.name.replace(".", "-")),
                           model=model.model,
                           version=model.version, task=model.task, artifact=model.artifact, compiled=model.compiled,
                           inputs=model.inputs)
    return load_predictor(serve_task, store)


def score(task: BatchTask, store: ObjectStore, clock=now) -> BatchResult:
    started, began = clock(), time.monotonic()
    predictor = load_model(task, store)
    entity_name = task.output.entity_column
    names = predictor.column_names
    wanted = list(dict.fromkeys([entity_name, *names]))
    out_prefix = store.key_of(task.output.uri.rstrip("/") + "/")
    if task.attempt > 1:
        store.delete_prefix(out_prefix)  # an earlier attempt's parts, never published
    want_probabilities = predictor.has_proba and (task.output.probabilities or task.stream is not None)
    classes = [c.item() if hasattr(c, "item") else c for c in predictor.classes] if predictor.is_classifier else None
    files, rows, labelled = [], 0, 0
    extension = EXTENSIONS[task.output.format]
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as scratch:
        labels = (task.label_column,) if task.stream is not None and task.label_column else ()
        for batch in read_batches(input_files(task, store, Path(scratch)), task.input.format, wanted, task.chunk_rows,
                                  labels):
            if batch.num_rows == 0:
                continue
            columns = typed_columns(batch, predictor.columns, rows)
            prediction = predictor.predict(columns, want_probabilities=want_probabilities)
            entity = batch.column(entity_name)
            table = output_table(entity, entity_name, np.asarray(prediction.values), task.model.name,
                                 prediction.probabilities if task.output.probabilities else None, classes)
            data = encode(table, task.output.format)
            name = f"part-{len(files):05d}{extension}"
            store.put_bytes(out_prefix + name, data, CONTENT_TYPES[task.output.format])
            files.append({"name": name, "rows": table.num_rows, "sha256": hashlib.sha256(data).hexdigest()})
            if task.stream is not None:
                moment = clock()
                log_records(task, store, entity.to_pylist(), columns, names, prediction.values,
                            prediction.probabilities, moment)
                if labels and labels[0] in batch.schema.names:
                    labelled += log_labels(task, store, entity, batch.column(labels[0]), moment)
            rows += table.num_rows
    finished = clock()
    manifest = {
        "kind": MANIFEST_KIND, "namespace": task.namespace, "batchPrediction": task.name, "run": task.run,
        "attempt": task.attempt, "modelVersion": task.model.name, "model": task.model.model,
        "version": task.model.version, "engine": "onnxruntime" if predictor.compiled is not None else "scikit-learn",
        "input": {"uri": task.input.uri, "dataset": task.input.dataset, "datasetVersion": task.input.dataset_version},
        "format": task.output.format, "entityColumn": entity_name, "columns": _columns(entity_name, classes, task),
        "rows": rows, "files": files, "startedAt": iso(started), "finishedAt": iso(finished),
        "labelsLogged": labelled,
    }
    manifest_key = out_prefix + MANIFEST_NAME
    store.put_bytes(manifest_key, json.dumps(manifest, indent=2, sort_keys=True).encode(), "application/json")
    return BatchResult(outcome="Succeeded", run=task.run, rows=rows, files=[f["name"] for f in files],
                       output_uri=store.uri(out_prefix), manifest_uri=store.uri(manifest_key),
                       model_version=task.model.name, dataset_version=task.input.dataset_version,
                       started_at=iso(started), finished_at=iso(finished),
                       duration_seconds=round(time.monotonic() - began, 3),
                       message=f"{rows} rows scored with {task.model.name} into {len(files)} "
                               f"{task.output.format} files")


def _columns(entity_name: str, classes, task: BatchTask) -> list[str]:
    names = [entity_name, "prediction", "model_version"]
    if task.output.probabilities and classes is not None:
        names += [f"probability_{label}" for label in classes]
    return names
