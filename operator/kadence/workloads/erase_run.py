"""Erase a subject's rows from every store in an erasure task, with an audit record and a guard.

In order, for the task's subject (the values of one column):
1. prediction logs and feedback of each InferenceService (every model version): the records whose
   logged input (or request id) matches, and the labels of those request ids;
2. the feedback exports and checkpoints of each MonitorPolicy (every Parquet file under its
   monitoring prefix): the rows whose column matches or whose request id was erased in 1;
3. each kept snapshot of each Dataset: a snapshot with matching rows becomes a new version (its
   content-derived id, the same createdAt, `erasure` in the manifest: "erased N rows per request
   X", replacing the old id); the old snapshot is deleted, manifest first;
4. each kept snapshot of each FeatureSet built on those Datasets: a feature table with matching rows
   (by the matched column when the table has it, else by the entity key the table carries, the
   subject's keys read from the Dataset snapshot it was built from, before 3 deletes it) becomes a
   new version with the same lineage, pointing at the Dataset version 3 wrote; its transformer is
   carried over as it is (fitted before the erasure: a later materialization refits);
5. the guard (the values' keyed hashes and the Datasets in scope): every later ingest of those
   Datasets drops the rows it matches, so a re-read source or folded feedback cannot bring them back;
6. the audit record: counts, objects, stores, the subject as keyed hashes only.

The operator reads none of this: it reads the EraseResult at the task's result key.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import traceback
from datetime import datetime, timezone
from typing import IO, Any

import pandas as pd

from ..api.erasurerequest import ReplacedVersion, StoreErasure
from ..domain.data.erasure import entity_forms, erase_feedback, erase_predictions, guard_hashes, matching_rows
from ..domain.data.pii import pseudonym
from ..domain.data.profile import profile_frame
from ..domain.data.versioning import VERSION_LENGTH, canonical_json, dataset_version
from ..domain.monitoring.logformat import decode_batch, encode_batch, feedback_prefix, is_batch_key, predictions_prefix
from ..storage import ObjectStore
from .data_tasks import dataset_prefix, features_prefix
from .erase_task import (AUDIT_KIND, GUARD_KIND, EraseDataset, EraseFeatureSet, EraseResult, EraseTask, audit_prefix,
                         guard_key)
from .monitor_task import monitoring_prefix

EXIT_OK, EXIT_ERROR, EXIT_INVALID = 0, 2, 3
PARQUET = "application/vnd.apache.parquet"


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ErasureRefused(ValueError):
    """The erasure cannot be done as asked (retrying cannot help)."""


def erase(task: EraseTask, store: ObjectStore, key: bytes | None, now: datetime | None = None,
          guard: bool = True) -> EraseResult:
    """Run the erasure; `guard`: leave the guard for later ingests (needs the hashing key)."""
    moment = now or datetime.now(timezone.utc)
    if guard and task.datasets and key is None:
        raise ErasureRefused("no hashing key (Secret kadence-pii-key): the guard that keeps the rows out of later "
                             "Dataset versions must hold keyed hashes, never the values")
    forms = entity_forms(task.match.values, key)
    column = task.match.column
    stores: list[StoreErasure] = []
    erased_ids: set[str] = set()
    objects: list[str] = []
    for service in task.inference_services:
        entry, removed, keys = erase_logs(store, task.namespace, service, column, forms)
        stores.append(entry)
        erased_ids |= removed
        objects += keys
    for policy in task.monitor_policies:
        entry, keys = erase_tables(store, monitoring_prefix(task.namespace, policy), policy, column, forms, erased_ids)
        stores.append(entry)
        objects += keys
    entity_keys = subject_entity_keys(store, task, forms)  # before the Dataset snapshots are replaced
    replaced_datasets: dict[str, ReplacedVersion] = {}
    for dataset in task.datasets:
        entry, keys = erase_snapshots(store, task, dataset, forms, moment)
        stores.append(entry)
        objects += keys
        replaced_datasets.update({v.replaced: v for v in entry.versions or []})
    for feature_set in task.feature_sets:
        entry, keys = erase_feature_tables(store, task, feature_set, forms, entity_keys, replaced_datasets, moment)
        stores.append(entry)
        objects += keys
    result = EraseResult(outcome="Succeeded", request=task.request, stores=stores,
                         erased_rows=sum(s.erased_rows for s in stores), finished_at=iso(moment))
    if guard and task.datasets:
        result.guard_uri = write_guard(store, task, key, moment)
    result.audit_uri = write_audit(store, task, result, objects, key, moment)
    result.message = summary(result)
    return result


def erase_logs(store: ObjectStore, namespace: str, service: str, column: str, forms: set[str]
               ) -> tuple[StoreErasure, set[str], list[str]]:
    removed_ids: set[str] = set()
    predictions = feedback = 0
    keys: list[str] = []
    for object_key in sorted(store.list_keys(predictions_prefix(namespace, service))):
        if not is_batch_key(object_key):
            continue
        kept, removed = erase_predictions(decode_batch(object_key, store.get_bytes(object_key)), column, forms)
        if removed:
            store.put_bytes(object_key, encode_batch(kept))
            removed_ids.update(removed)
            predictions += len(removed)
            keys.append(object_key)
    if removed_ids:
        for object_key in sorted(store.list_keys(feedback_prefix(namespace, service))):
            if not is_batch_key(object_key):
                continue
            kept, count = erase_feedback(decode_batch(object_key, store.get_bytes(object_key)), removed_ids)
            if count:
                store.put_bytes(object_key, encode_batch(kept))
                feedback += count
                keys.append(object_key)
    message = (f"{predictions} predictions and {feedback} labels erased" if predictions
               else f"no logged prediction matched {column}")
    return (StoreErasure(store="PredictionLog", name=service, erased_rows=predictions + feedback, objects=len(keys),
                         message=message), removed_ids, keys)


def erase_tables(store: ObjectStore, prefix: str, policy: str, column: str, forms: set[str],
                 request_ids: set[str]) -> tuple[StoreErasure, list[str]]:
    """Every Parquet file under a MonitorPolicy's prefix (feedback exports, their checkpoints)."""
    erased, keys = 0, []
    for object_key in sorted(store.list_keys(prefix)):
        if not object_key.endswith(".parquet"):
            continue
        frame = pd.read_parquet(io.BytesIO(store.get_bytes(object_key)))
        mask = matching_rows(frame, column, forms, request_ids)
        if mask.any():
            store.put_bytes(object_key, _parquet(frame[~mask].reset_index(drop=True)), PARQUET)
            erased += int(mask.sum())
            keys.append(object_key)
    message = f"{erased} rows erased from {len(keys)} exports" if erased else "no exported row matched"
    return StoreErasure(store="FeedbackExport", name=policy, erased_rows=erased, objects=len(keys),
                        message=message), keys


def erase_snapshots(store: ObjectStore, task: EraseTask, dataset: EraseDataset, forms: set[str],
                    moment: datetime) -> tuple[StoreErasure, list[str]]:
    replaced: list[ReplacedVersion] = []
    keys: list[str] = []
    missing_column = 0
    for version in dataset.versions:
        prefix = store.key_of(version.uri.rstrip("/") + "/")
        try:
            manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
        except FileNotFoundError:
            continue  # pruned since the task was built: nothing left to erase there
        frame = pd.read_parquet(io.BytesIO(store.get_bytes(prefix + manifest.get("dataFile", "data.parquet"))))
        if task.match.column not in frame.columns:
            missing_column += 1
            continue
        mask = matching_rows(frame, task.match.column, forms)
        if not mask.any():
            continue
        kept = frame[~mask].reset_index(drop=True)
        entry, written = _rewrite_snapshot(store, task, dataset.name, version.id, manifest, kept, int(mask.sum()),
                                           moment)
        replaced.append(entry)
        keys += written
    erased = sum(v.erased_rows for v in replaced)
    if replaced:
        message = "; ".join(f"version {v.replaced} -> {v.version}: erased {v.erased_rows} rows per request "
                            f"{task.request}" for v in replaced)
    elif missing_column and missing_column == len(dataset.versions):
        message = f"its snapshots have no column {task.match.column!r}: nothing to erase there"
    else:
        message = f"no row of its {len(dataset.versions)} kept versions matched"
    return StoreErasure(store="DatasetSnapshot", name=dataset.name, erased_rows=erased, objects=len(keys),
                        versions=replaced or None, message=message[:1024]), keys


def _rewrite_snapshot(store: ObjectStore, task: EraseTask, name: str, old: str, manifest: dict, frame: pd.DataFrame,
                      erased: int, moment: datetime) -> tuple[ReplacedVersion, list[str]]:
    """The snapshot without the rows, as a new version (written manifest last), then the old one deleted."""
    types = {c["name"]: c["type"] for c in manifest.get("columns") or []} or {c: "string" for c in frame.columns}
    version, sha256 = dataset_version(frame, types)
    data = _parquet(frame)
    prefix = dataset_prefix(task.namespace, name, version)
    profile = profile_frame(frame[list(types)], types)
    lineage = list(manifest.get("erasures") or []) + [
        {"request": task.request, "erasedRows": erased, "replaces": old, "erasedAt": iso(moment)}]
    new_manifest = {**manifest, "version": version, "sha256": sha256, "rows": len(frame),
                    "dataFileSha256": hashlib.sha256(data).hexdigest(), "erasures": lineage}
    store.put_bytes(prefix + manifest.get("dataFile", "data.parquet"), data, PARQUET)
    store.put_bytes(prefix + manifest.get("profileFile", "profile.json"), canonical_json(profile).encode(),
                    "application/json")
    store.put_bytes(prefix + "manifest.json", json.dumps(new_manifest, indent=2, sort_keys=True).encode(),
                    "application/json")
    old_prefix = dataset_prefix(task.namespace, name, old)
    if old_prefix != prefix:
        # the manifest goes first, so a half-deleted snapshot is never taken for a complete one
        store.client.remove_object(store.bucket, old_prefix + "manifest.json")
        store.delete_prefix(old_prefix)
    return ReplacedVersion(replaced=old, version=version, uri=store.uri(prefix), rows=len(frame), erased_rows=erased,
                           sha256=sha256), [prefix + "manifest.json", old_prefix + "manifest.json"]


def _manifests(store: ObjectStore, feature_set: EraseFeatureSet):
    """(version ref, snapshot prefix, manifest) of each kept version whose snapshot is still there."""
    for version in feature_set.versions:
        prefix = store.key_of(version.uri.rstrip("/") + "/")
        try:
            yield version, prefix, json.loads(store.get_bytes(prefix + "manifest.json"))
        except FileNotFoundError:
            continue  # pruned since the task was built


def _table_columns(manifest: dict) -> set[str]:
    return {c for c in (manifest.get("entityColumn"), *(manifest.get("featureColumns") or []), manifest.get("target"))
            if c}


def subject_entity_keys(store: ObjectStore, task: EraseTask, forms: set[str]) -> dict[str, set]:
    """Dataset snapshot URI -> the entity keys of the subject's rows in it, for the feature tables
    that carry the entity column but not the matched one (read from the snapshot each was built from)."""
    column, keys = task.match.column, {}
    for feature_set in task.feature_sets:
        for _, _, manifest in _manifests(store, feature_set):
            entity, uri = manifest.get("entityColumn"), manifest.get("datasetUri")
            if column in _table_columns(manifest) or not entity or not uri or uri in keys:
                continue
            prefix = store.key_of(uri.rstrip("/") + "/")
            try:
                source = json.loads(store.get_bytes(prefix + "manifest.json"))
                frame = pd.read_parquet(io.BytesIO(store.get_bytes(prefix + source.get("dataFile", "data.parquet"))))
            except FileNotFoundError:
                continue  # its Dataset snapshot is gone: said so per version below
            if column in frame.columns and entity in frame.columns:
                keys[uri] = set(frame.loc[matching_rows(frame, column, forms), entity])
    return keys


def erase_feature_tables(store: ObjectStore, task: EraseTask, feature_set: EraseFeatureSet, forms: set[str],
                         entity_keys: dict[str, set], replaced_datasets: dict[str, ReplacedVersion],
                         moment: datetime) -> tuple[StoreErasure, list[str]]:
    column = task.match.column
    replaced: list[ReplacedVersion] = []
    keys: list[str] = []
    unmatchable: list[str] = []
    for version, prefix, manifest in _manifests(store, feature_set):
        entity = manifest.get("entityColumn")
        frame = pd.read_parquet(io.BytesIO(store.get_bytes(prefix + manifest.get("dataFile", "features.parquet"))))
        if column in frame.columns:
            mask = matching_rows(frame, column, forms)
        elif entity in frame.columns and manifest.get("datasetUri") in entity_keys:
            mask = frame[entity].isin(entity_keys[manifest["datasetUri"]]).to_numpy()
        else:
            why = (f"its Dataset snapshot {manifest.get('datasetVersion')} cannot be read for the subject's "
                   f"{entity} keys" if entity in frame.columns else "its table has no entity column")
            unmatchable.append(f"version {version.id}: no column {column!r} and {why}")
            continue
        if not mask.any():
            continue
        entry, written = _rewrite_features(store, task, feature_set.name, version.id, prefix, manifest,
                                           frame[~mask].reset_index(drop=True), int(mask.sum()),
                                           replaced_datasets.get(manifest.get("datasetVersion")), moment)
        replaced.append(entry)
        keys += written
    lines = [f"version {v.replaced} -> {v.version}: erased {v.erased_rows} rows per request {task.request}"
             for v in replaced] + [f"not erased: {line}" for line in unmatchable]
    message = "; ".join(lines) or f"no row of its {len(feature_set.versions)} kept versions matched"
    return StoreErasure(store="FeatureSetSnapshot", name=feature_set.name,
                        erased_rows=sum(v.erased_rows for v in replaced), objects=len(keys), versions=replaced or None, message=message[:1024]), keys


def _rewrite_features(store: ObjectStore, task: EraseTask, name: str, old: str, old_prefix: str, manifest: dict,
                      frame: pd.DataFrame, erased: int, dataset: ReplacedVersion | None, moment: datetime
                      ) -> tuple[ReplacedVersion, list[str]]:
    """The feature table without the rows, as a new version (its id: the old one's plus the new
    content, never a materialization's, so materializing the erased Dataset version still refits
    the transformer), then the old snapshot deleted."""
    data = _parquet(frame)
    data_sha = hashlib.sha256(data).hexdigest()
    version = hashlib.sha256(f"{old}\nerased\n{data_sha}".encode()).hexdigest()[:VERSION_LENGTH]
    prefix = features_prefix(task.namespace, name, version)
    transformer = manifest.get("transformer") or {}
    if transformer.get("file"):
        store.put_bytes(prefix + transformer["file"], store.get_bytes(old_prefix + transformer["file"]))
    names = [c for c in manifest.get("featureColumns") or [] if c in frame.columns]
    store.put_bytes(prefix + manifest.get("dataFile", "features.parquet"), data, PARQUET)
    store.put_bytes(prefix + manifest.get("profileFile", "profile.json"),
                    canonical_json(profile_frame(frame[names])).encode(), "application/json")
    lineage = list(manifest.get("erasures") or []) + [
        {"request": task.request, "erasedRows": erased, "replaces": old, "erasedAt": iso(moment)}]
    new_manifest = {**manifest, "version": version, "rows": len(frame), "dataFileSha256": data_sha, "erasures": lineage}
    if dataset is not None:  # the same request replaced the Dataset version it was built from
        new_manifest.update(datasetVersion=dataset.version, datasetUri=dataset.uri)
    store.put_bytes(prefix + "manifest.json", json.dumps(new_manifest, indent=2, sort_keys=True).encode(),
                    "application/json")
    store.client.remove_object(store.bucket, old_prefix + "manifest.json")  # first: never taken for complete
    store.delete_prefix(old_prefix)
    return ReplacedVersion(replaced=old, version=version, uri=store.uri(prefix), rows=len(frame), erased_rows=erased,
                           sha256=data_sha, dataset_version=new_manifest.get("datasetVersion")), [
        prefix + "manifest.json", old_prefix + "manifest.json"]


def write_guard(store: ObjectStore, task: EraseTask, key: bytes, moment: datetime) -> str:
    guard = {"kind": GUARD_KIND, "request": task.request, "column": task.match.column, "time": iso(moment),
             "datasets": sorted(d.name for d in task.datasets), "hashes": guard_hashes(task.match.values, key)}
    return store.put_bytes(guard_key(task.namespace, task.request), json.dumps(guard, indent=2).encode(),
                           "application/json")


def write_audit(store: ObjectStore, task: EraseTask, result: EraseResult, objects: list[str], key: bytes | None,
                moment: datetime) -> str:
    record: dict[str, Any] = {
        "kind": AUDIT_KIND, "time": iso(moment), "namespace": task.namespace, "request": task.request,
        "column": task.match.column, "subjects": len(task.match.values),
        "erased": {"rows": result.erased_rows,
                   "stores": [s.model_dump(by_alias=True, mode="json", exclude_none=True) for s in result.stores]},
        "objectsRewritten": sorted(set(objects)),
    }
    if key is not None:  # the subject only as keyed hashes; nothing at all without the key
        record["subjectHashes"] = sorted({pseudonym(v, key) for v in task.match.values})
    if task.reason:
        record["reason"] = task.reason
    if result.guard_uri:
        record["guard"] = result.guard_uri
    stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return store.put_bytes(f"{audit_prefix(task.namespace)}{stamp}-{task.request}.json",
                           json.dumps(record, indent=2).encode(), "application/json")


def summary(result: EraseResult) -> str:
    parts = [f"{s.store} {s.name}: {s.message}" for s in result.stores]
    return f"erased {result.erased_rows} rows per request {result.request}: " + "; ".join(parts)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# --- the Job's command ----------------------------------------------------------------------

def emit(result: EraseResult, store: ObjectStore | None, key: str | None, out: IO[str]) -> None:
    wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    if store is not None and key:
        store.put_bytes(key, json.dumps(wire).encode(), "application/json")
    out.write(json.dumps(wire, sort_keys=True) + "\n")


def run_from_args(args: Any, out: IO[str] = sys.stdout) -> int:
    from pydantic import ValidationError

    from ..settings import Settings
    from ..storage import StorageError
    from .task_file import load_task

    settings = Settings.from_env()
    try:
        task = load_task(args.task, settings, EraseTask)
    except (OSError, ValueError, ValidationError) as error:
        emit(EraseResult(outcome="Invalid", request="?", message=f"bad task: {error}"), None, None, out)
        return EXIT_INVALID
    try:
        store = ObjectStore.from_env()
    except (StorageError, ValueError) as error:
        emit(EraseResult(outcome="Error", request=task.request, message=str(error)), None, None, out)
        return EXIT_ERROR
    key = settings.pii_key.strip().encode() if settings.pii_key and settings.pii_key.strip() else None
    try:
        result = erase(task, store, key)
    except ErasureRefused as error:
        result = EraseResult(outcome="Invalid", request=task.request, message=str(error))
    except Exception as error:  # noqa: BLE001 - a Job must still leave a result the operator can read
        traceback.print_exc()
        result = EraseResult(outcome="Error", request=task.request, message=f"{type(error).__name__}: {error}")
    emit(result, store, task.result_key, out)
    return {"Succeeded": EXIT_OK, "Invalid": EXIT_INVALID}.get(result.outcome, EXIT_ERROR)
