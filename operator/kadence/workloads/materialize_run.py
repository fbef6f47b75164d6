"""The materialize itself (imported by `kadence materialize` at run time).

features.parquet holds the entity column (when set), the feature columns (the transformer's
output names) and the target (when set), in that order. transformer-<sha prefix>.skops
(named in the manifest's `transformer.file`, content-addressed and write-once) is the fitted
FeatureTransformer; load it with
`skops.io.loads(data, trusted=kadence.domain.data.transforms.TRUSTED_TYPES)` after checking
its sha256 against the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import traceback
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from ..api.featureset import ResolvedFeature
from ..domain.data.expressions import ExpressionError
from ..domain.data.profile import profile_frame
from ..domain.data.transforms import FeatureDefinitionError, FeatureTransformer, InputError, resolve_features
from ..domain.data.versioning import canonical_json, featureset_version
from ..engines import EngineError, resolve_engine, run_with_store
from ..settings import Settings
from ..storage import ObjectExistsWithOtherContent, ObjectStore, StorageError
from .data_tasks import MaterializeResult, MaterializeTask, features_prefix
from .ingest_run import load_task, now_iso, report

MANIFEST_KIND = "kadence.dev/featureset-snapshot"


def run_from_args(args: Any, env_name: str, out: IO[str]) -> int:
    try:
        task = load_task(MaterializeTask, args.task, env_name)
    except (OSError, ValueError, ValidationError) as error:
        return report(MaterializeResult(outcome="Error", valid=False, message=f"bad task: {error}"), None, None, out)
    try:
        store = ObjectStore.from_env()
    except StorageError as error:
        return report(MaterializeResult(outcome="Error", valid=False, message=str(error)), None, None, out)
    try:
        result = materialize(task, store)
    except Exception as error:  # noqa: BLE001 - a Job must still leave a result the operator can read
        traceback.print_exc()
        result = MaterializeResult(outcome="Error", valid=False,
                                   message=f"materialize failed: {type(error).__name__}: {error}")
    return report(result, store, task.resolved_result_key(), out)


def read_dataset(store: ObjectStore, dataset_uri: str) -> tuple[dict, pd.DataFrame]:
    """The snapshot's manifest and its data (refused if the manifest is missing)."""
    prefix = store.key_of(dataset_uri.rstrip("/") + "/")
    manifest = json.loads(store.get_bytes(prefix + "manifest.json"))
    data = store.get_bytes(prefix + manifest.get("dataFile", "data.parquet"))
    expected = manifest.get("dataFileSha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise StorageError(f"{dataset_uri}data.parquet does not match the sha256 in its manifest")
    frame = pq.read_table(io.BytesIO(data)).to_pandas(
        types_mapper={pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get)
    return manifest, frame


def materialize(task: MaterializeTask, store: ObjectStore) -> MaterializeResult:
    """On the FeatureSet's engine: here, or `materialize_locally` as a Ray task on the cluster."""
    settings = Settings.from_env()
    if resolve_engine(task.spec.engine, settings) == "ray":
        try:
            return run_with_store(materialize_locally, task, settings)
        except EngineError as error:
            return MaterializeResult(outcome="Error", valid=False, message=str(error))
    return materialize_locally(task, store)


def materialize_locally(task: MaterializeTask, store: ObjectStore) -> MaterializeResult:
    try:
        return _materialize(task, store)
    except (StorageError, FileNotFoundError) as error:
        return MaterializeResult(outcome="Error", valid=False, message=f"object storage: {error}")


def _materialize(task: MaterializeTask, store: ObjectStore) -> MaterializeResult:
    import skops.io as sio

    spec = task.spec
    manifest, frame = read_dataset(store, task.dataset_uri)
    dataset_version = manifest["version"]
    column_types = {c["name"]: c["type"] for c in manifest["columns"]}
    definitions = [f.wire() for f in spec.features]
    try:
        catalog = resolve_features(definitions, column_types)
    except FeatureDefinitionError as error:
        return _refused(error.feature, str(error), dataset_version)
    entity = spec.entity_column or manifest.get("entityColumn")
    target = spec.target or manifest.get("target")
    for role, column in (("entityColumn", entity), ("target", target)):
        if column is not None and column not in column_types:
            return MaterializeResult(outcome="Invalid", valid=False, dataset_version=dataset_version,
                                     message=f"{role} {column!r} is not a column of the dataset")
    version = featureset_version(definitions, dataset_version)
    prefix = features_prefix(task.namespace, task.name, version)
    features = [ResolvedFeature(name=c["name"], type=c["type"], source=c["source"]) for c in catalog]
    if store.exists(prefix + "manifest.json"):
        existing = json.loads(store.get_bytes(prefix + "manifest.json"))
        return _valid(existing, store, prefix, created=False, features=features)
    inputs = frame.drop(columns=[c for c in (target,) if c is not None])
    transformer = FeatureTransformer(features=definitions, column_types={k: v for k, v in column_types.items()
                                                                         if k != target})
    try:
        matrix = transformer.fit_transform(inputs)
    except (FeatureDefinitionError, ExpressionError, InputError) as error:
        feature = getattr(error, "feature", None)
        return _refused(feature, str(error), dataset_version)
    names = [str(n) for n in transformer.get_feature_names_out()]
    table = pd.DataFrame(matrix, columns=names, index=frame.index)
    if entity is not None:
        table.insert(0, entity, frame[entity])
    if target is not None:
        table[target] = frame[target]
    transformer_bytes = sio.dumps(transformer)
    transformer_sha = hashlib.sha256(transformer_bytes).hexdigest()
    transformer_file = f"transformer-{transformer_sha[:16]}.skops"
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), buffer, compression="zstd")
    profile = profile_frame(table[names])
    new_manifest = {
        "kind": MANIFEST_KIND,
        "namespace": task.namespace,
        "name": task.name,
        "version": version,
        "datasetVersion": dataset_version,
        "datasetUri": task.dataset_uri,
        "rows": len(table),
        "entityColumn": entity,
        "target": target,
        "definitions": definitions,
        "features": [f.model_dump() for f in features],
        "featureColumns": names,
        "dataFile": "features.parquet",
        "dataFileSha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "transformer": {"file": transformer_file, "sha256": transformer_sha, "format": "skops",
                        "class": "kadence.domain.data.transforms.FeatureTransformer"},
        "profileFile": "profile.json",
        "createdAt": now_iso(),
    }
    store.put_bytes(prefix + "features.parquet", buffer.getvalue(), "application/vnd.apache.parquet")
    # content-addressed, so a concurrent run of the same version can never pair its manifest
    # with another run's transformer bytes
    store.put_once(prefix + transformer_file, transformer_bytes)
    store.put_bytes(prefix + "profile.json", canonical_json(profile).encode(), "application/json")
    try:
        store.put_once(prefix + "manifest.json", json.dumps(new_manifest, indent=2, sort_keys=True).encode(),
                       "application/json")
    except ObjectExistsWithOtherContent:
        existing = json.loads(store.get_bytes(prefix + "manifest.json"))
        return _valid(existing, store, prefix, created=False, features=features)
    return _valid(new_manifest, store, prefix, created=True, features=features)


def _valid(manifest: dict, store: ObjectStore, prefix: str, created: bool,
           features: list[ResolvedFeature]) -> MaterializeResult:
    return MaterializeResult(
        outcome="Valid", valid=True, version=manifest["version"], dataset_version=manifest["datasetVersion"],
        rows=manifest["rows"], uri=store.uri(prefix), created=created, created_at=manifest["createdAt"],
        features=features, feature_columns=manifest["featureColumns"],
        transformer_uri=store.uri(prefix + manifest["transformer"]["file"]),
        transformer_sha256=manifest["transformer"]["sha256"],
        message=f"version {manifest['version']}: {manifest['rows']} rows, {len(manifest['featureColumns'])} "
        f"feature columns" + ("" if created else " (already stored; nothing rewritten)"),
    )


def _refused(feature: str | None, message: str, dataset_version: str) -> MaterializeResult:
    return MaterializeResult(outcome="Invalid", valid=False, dataset_version=dataset_version,
                             failed_feature=feature, message=message)
