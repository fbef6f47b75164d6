"""FeatureSet planner: (FeatureSet, its Dataset, its materialize Jobs and their results, clock) -> Plan.

How the handler uses it on every reconcile (and when the referenced Dataset's status changes):
1. get the Dataset named in spec.datasetRef (None when it does not exist), list the Jobs
   labelled kadence.dev/owner-kind=featureset, kadence.dev/owner-name=<name>;
2. `results_to_fetch(body, jobs)` -> {job name: S3 key}; read them (JSON);
3. `plan_featureset(body, FeatureSetObservation(dataset, jobs, results), now)` and apply the
   Plan as for Datasets (children, deletes, status merge patch, conditions, Events, requeue).

The definitions are checked against the Dataset's schema before any Job runs, so a feature
that names a missing column, does not parse, or reads the target is refused at once with
the feature's name. The FeatureSet version is the hash of the definitions plus the dataset
version; the materialize Job is named after it, so only a change of either runs a new Job.
A Dataset without a validated version, or a pinned version that is not one of its
validated versions, blocks the FeatureSet (Ready=False) instead of materializing bad data.

Erasure: the versions an ErasureRequest's Job rewrote (its status.stores, FeatureSetSnapshot) are
re-pointed to their replacements, latestVersion with them, an Event each; a Dataset version an
erasure replaced is followed to its replacement (pinned or latest, even before the Dataset itself
re-points), so the next materialization reads the erased data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..api.conditions import ConditionUpdate, find
from ..api.dataset import DatasetSpec
from ..api.featureset import FeatureSetSpec, FeatureSetStatus, FeatureSetVersion, ResolvedFeature
from ..builders.jobs import WorkloadSettings, job_state, task_configmap, workload_job
from ..builders.meta import child_name
from ..domain.data.transforms import FeatureDefinitionError, resolve_features
from ..domain.data.versioning import featureset_version
from ..workloads.data_tasks import MaterializeResult, MaterializeTask, materialize_result_key
from .dataset import apply_erasures, erased_versions
from .plan import ChildRef, EventSpec, Plan

COMPONENT = "materialize"
MAX_VERSIONS = 20
FEATURESET_SNAPSHOT = "FeatureSetSnapshot"
RUNNING_RECHECK_S = 15.0


@dataclass
class FeatureSetObservation:
    dataset: dict | None = None
    jobs: list[dict] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)
    erasures: list[dict] = field(default_factory=list)  # the namespace's ErasureRequests (their status.stores)


def materialize_job_name(name: str, version: str) -> str:
    return child_name(name, COMPONENT, version)


def results_to_fetch(body: dict, jobs: list[dict]) -> dict[str, str]:
    meta, status = body["metadata"], body.get("status") or {}
    return {job["metadata"]["name"]: materialize_result_key(meta["namespace"], meta["name"], job["metadata"]["name"])
            for job in jobs
            if job_state(job) != "Running" and job["metadata"]["name"] != status.get("lastJob")}


DATA_AVAILABLE, DEFINITIONS_VALID, MATERIALIZED = "DataAvailable", "DefinitionsValid", "Materialized"


def resolve_dataset_version(spec: FeatureSetSpec, dataset: dict | None,
                            replacements: dict[str, tuple[dict, str]] | None = None
                            ) -> tuple[dict | None, ConditionUpdate | None]:
    """The dataset version entry to materialize, or the DataAvailable=False condition explaining why not.
    `replacements` (erased_versions of the Dataset): an erased version is followed to the one replacing it."""
    reference = spec.dataset_ref
    if dataset is None:
        return None, ConditionUpdate(DATA_AVAILABLE, "False", "DatasetNotFound",
                                     f"Dataset {reference.name!r} does not exist")
    status = dataset.get("status") or {}
    versions, _ = apply_erasures(status.get("versions") or [], replacements or {})
    if reference.version:
        wanted = follow(reference.version, replacements or {})
        entry = next((v for v in versions if v.get("id") == wanted), None)
        if entry is None:
            known = ", ".join(v["id"] for v in versions) or "none"
            return None, ConditionUpdate(
                DATA_AVAILABLE, "False", "DatasetVersionNotFound",
                f"version {reference.version} is not a validated version of Dataset {reference.name!r} "
                f"(validated versions: {known})")
        return entry, None
    latest = follow(status.get("latestVersion"), replacements or {})
    entry = next((v for v in versions if v.get("id") == latest), None) if latest else None
    if entry is None:
        ready = find(status.get("conditions"), "Ready") or {}
        detail = f": {ready['message']}" if ready.get("message") else ""
        return None, ConditionUpdate(DATA_AVAILABLE, "False", "DatasetNotReady",
                                     f"Dataset {reference.name!r} has no validated version yet{detail}")
    return entry, None


def follow(version: str | None, replacements: dict[str, tuple[dict, str]]) -> str | None:
    """The version that replaces `version` after every erasure (itself when none did)."""
    seen = set()
    while version in replacements and version not in seen:
        seen.add(version)
        version = replacements[version][0]["version"]
    return version


def feature_table_fields(entry: dict, new: dict) -> dict:
    """What a FeatureSet version entry takes from the version an erasure wrote: the same transformer
    file, carried into the new snapshot."""
    fields = {"rows": new["rows"], "uri": new["uri"], "datasetVersion": new.get("datasetVersion") or
              entry.get("datasetVersion")}
    if entry.get("transformerUri"):
        fields["transformerUri"] = new["uri"].rstrip("/") + "/" + entry["transformerUri"].rsplit("/", 1)[-1]
    return fields


def check_definitions(spec: FeatureSetSpec, dataset_spec: DatasetSpec) -> list[dict]:
    """The catalog of the definitions against the Dataset's columns; FeatureDefinitionError when one
    cannot work (missing column, parse error, wrong column type, reads the target), ValueError when
    entityColumn or target names no column."""
    column_types = {c.name: c.type for c in dataset_spec.schema_.columns}
    target = spec.target or dataset_spec.schema_.target
    catalog = resolve_features(spec.features, column_types)
    for entry in catalog:
        if target is not None and target in entry["inputs"]:
            raise FeatureDefinitionError(entry["name"], f"reads the target column {target!r} (label leakage)")
    for role, column in (("entityColumn", spec.entity_column), ("target", spec.target)):
        if column is not None and column not in column_types:
            raise ValueError(f"{role} {column!r} is not a column of the Dataset")
    return catalog


def plan_featureset(body: dict, observed: FeatureSetObservation, now: datetime,
                    settings: WorkloadSettings = WorkloadSettings()) -> Plan:
    meta, status = body["metadata"], body.get("status") or {}
    spec = FeatureSetSpec.model_validate(body["spec"])
    plan = Plan(status=FeatureSetStatus())
    status = _erased(plan, status, erased_versions(observed.erasures, meta["name"], FEATURESET_SNAPSHOT))
    entry, blocked = resolve_dataset_version(spec, observed.dataset,
                                             erased_versions(observed.erasures, spec.dataset_ref.name))
    if blocked is not None:
        return _blocked(plan, status, blocked, "Waiting")
    plan.conditions.append(ConditionUpdate(DATA_AVAILABLE, "True", "DatasetVersionValidated",
                                           f"Dataset {spec.dataset_ref.name!r} version {entry['id']}"))
    dataset_spec = DatasetSpec.model_validate(observed.dataset["spec"])
    try:
        catalog = check_definitions(spec, dataset_spec)
    except ValueError as error:  # FeatureDefinitionError names the feature
        return _blocked(plan, status, ConditionUpdate(DEFINITIONS_VALID, "False", "InvalidDefinition", str(error)),
                        "Invalid", requeue=None)
    plan.conditions.append(ConditionUpdate(DEFINITIONS_VALID, "True", "DefinitionsResolved",
                                           f"{len(catalog)} features resolved against the Dataset's columns"))
    plan.status.features = [ResolvedFeature(name=c["name"], type=c["type"], source=c["source"]) for c in catalog]
    version = featureset_version(spec.features, entry["id"])
    job_name = materialize_job_name(meta["name"], version)
    jobs = {job["metadata"]["name"]: job for job in observed.jobs}
    for other in sorted(jobs):
        if other != job_name:
            plan.delete += [ChildRef("batch/v1", "Job", other), ChildRef("v1", "ConfigMap", other)]
    known = next((v for v in status.get("versions") or [] if v.get("id") == version), None)
    if known is not None:
        plan.status.latest_version = version
        plan.status.dataset_version = entry["id"]
        plan.conditions.append(ConditionUpdate(MATERIALIZED, "True", "Materialized",
                                               f"version {version} of dataset version {entry['id']}"))
        plan.phase = "Ready"
        return plan
    if status.get("lastJob") == job_name:  # this version's Job already failed; a spec or data change retries
        return plan
    job = jobs.get(job_name)
    if job is None:
        task = MaterializeTask(namespace=meta["namespace"], name=meta["name"], spec=spec, dataset_uri=entry["uri"],
                               run_id=job_name)
        plan.children = [task_configmap(body, job_name, COMPONENT, task.wire()),
                         workload_job(body, job_name, COMPONENT, ["kadence", "materialize"], settings)]
        _materializing(plan, status, f"materialize Job {job_name} started for dataset version {entry['id']}")
        return plan
    state = job_state(job)
    raw = observed.results.get(job_name)
    if state == "Running" or (raw is None and state == "Succeeded"):
        _materializing(plan, status, f"materialize Job {job_name} is running")
        plan.requeue_after = RUNNING_RECHECK_S
        return plan
    result = MaterializeResult.model_validate(raw) if raw is not None else MaterializeResult(
        outcome="Error", valid=False, message=f"the materialize Job {job_name} failed without a result; see its logs")
    apply_result(plan, status, result, job_name, now)
    return plan


def _erased(plan: Plan, status: dict, replacements: dict[str, tuple[dict, str]]) -> dict:
    """The status with the versions ErasureRequests rewrote re-pointed to their replacements (also
    written to plan.status, with an Event each); the rest of the plan works on it."""
    before = status.get("versions") or []
    versions, lines = apply_erasures(before, replacements, feature_table_fields)
    if not lines:
        return status
    plan.status.versions = [FeatureSetVersion.model_validate(v) for v in versions]
    status = {**status, "versions": versions}
    latest = follow(status.get("latestVersion"), replacements)
    current = next((v for v in versions if v["id"] == latest), None)
    if current is not None and latest != status.get("latestVersion"):
        plan.status.latest_version, plan.status.dataset_version = latest, current["datasetVersion"]
        status.update(latestVersion=latest, datasetVersion=current["datasetVersion"])
    for line in lines:
        plan.events.append(EventSpec("Normal", "VersionErased", line))
    return status


def _blocked(plan: Plan, status: dict, condition: ConditionUpdate, phase: str,
             requeue: float | None = None) -> Plan:
    """Wait on the Dataset (or a spec fix): the engine reconciles again when the Dataset changes."""
    previous = find(status.get("conditions"), condition.type) or {}
    plan.conditions.append(condition)
    plan.phase = phase
    plan.requeue_after = requeue
    if (previous.get("reason"), previous.get("message")) != (condition.reason, condition.message):
        plan.events.append(EventSpec("Warning", condition.reason, condition.message))
    return plan


def _materializing(plan: Plan, status: dict, message: str) -> None:
    plan.phase = "Materializing"
    if not status.get("latestVersion"):
        plan.conditions.append(ConditionUpdate(MATERIALIZED, "Unknown", "Materializing", message))


def apply_result(plan: Plan, status: dict, result: MaterializeResult, job_name: str, now: datetime) -> None:
    plan.status.last_job = job_name
    if result.outcome == "Valid":
        entry = FeatureSetVersion(id=result.version, dataset_version=result.dataset_version, rows=result.rows,
                                  created_at=result.created_at or now.strftime("%Y-%m-%dT%H:%M:%SZ"), uri=result.uri,
                                  transformer_uri=result.transformer_uri,
                                  transformer_sha256=result.transformer_sha256)
        kept = [FeatureSetVersion.model_validate(v) for v in status.get("versions") or []
                if v.get("id") != result.version]
        plan.status.latest_version = result.version
        plan.status.dataset_version = result.dataset_version
        plan.status.versions = [entry, *kept][:MAX_VERSIONS]
        plan.status.features = [ResolvedFeature.model_validate(f.model_dump(by_alias=True)) for f in result.features]
        plan.conditions.append(ConditionUpdate(MATERIALIZED, "True", "Materialized",
                                               f"version {result.version} of dataset version "
                                               f"{result.dataset_version}: {result.rows} rows"))
        plan.phase = "Ready"
        if result.created:
            plan.events.append(EventSpec("Normal", "VersionCreated",
                                         f"version {result.version}: {len(result.feature_columns)} feature columns, "
                                         f"{result.rows} rows at {result.uri}"))
        return
    reason = "InvalidDefinition" if result.outcome == "Invalid" else "MaterializeFailed"
    plan.conditions.append(ConditionUpdate(MATERIALIZED, "False", reason, result.message))
    plan.phase = "Invalid" if result.outcome == "Invalid" else "Failed"
    plan.events.append(EventSpec("Warning", reason, result.message))
