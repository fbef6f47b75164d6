"""MonitorPolicy handlers: evaluate an InferenceService each interval, retrain when a trigger fires.

The module resolves what the planner needs (`MonitorContext`) from the cluster, reads the
finished monitor Jobs' results, and carries out the plan. The resolution steps are pure
functions of the objects read (first section, unit-tested on their own); `resolve_context`
only fetches those objects and hands them over."""

from __future__ import annotations

import json

import kopf
from kubernetes.client.rest import ApiException

from ..api.common import API_VERSION, GROUP, VERSION
from ..api.kinds import BY_KIND
from ..api.monitorpolicy import MonitorPolicySpec
from ..builders.meta import cut_name
from ..builders.training import RUN_LABEL
from ..domain.data.appended import (APPENDED_DATA_ANNOTATION, AppendedDataError, append_data_annotation,
                                   appended_digest, appended_uris)
from ..domain.monitoring.triggers import DatasetVersionInfo
from ..k8s.apply import get, list_objects, merge_patch
from ..metrics import monitor_metrics
from ..planners.monitorpolicy import (CANDIDATE_VERDICT_ANNOTATION, RETRAINED_BY_LABEL, AppendData, ModelInfo,
                                      MonitorContext, MonitorObservation, MonitorPlan, RetrainData, plan_monitorpolicy,
                                      results_to_fetch)
from .common import model_versions_of, owned_jobs, read_json_objects, realize, register_reconciler, utcnow, \
    workload_settings

KIND = BY_KIND["MonitorPolicy"]
PROFILE_FILE = "profile.json"


# --- pure resolution ------------------------------------------------------------------------

def _stage(version: dict) -> str | None:
    """The stage in force: status.stage once the ModelVersion controller has acted, else the spec's."""
    return (version.get("status") or {}).get("stage") or (version.get("spec") or {}).get("stage")


def _number(version: dict) -> int:
    return int((version.get("spec") or {}).get("version") or 0)


def served_version(inference_service: dict, versions: list[dict]) -> dict | None:
    """The ModelVersion the InferenceService serves as stable: the pinned `spec.version`, or the
    newest version holding `spec.stage`."""
    spec = inference_service.get("spec") or {}
    if spec.get("version") is not None:
        return next((v for v in versions if _number(v) == int(spec["version"])), None)
    holding = [v for v in versions if _stage(v) == (spec.get("stage") or "Production")]
    return max(holding, key=_number, default=None)


def dataset_version_entry(dataset: dict | None, version_id: str | None) -> dict | None:
    """The `status.versions` entry of a Dataset version (id, rows, uri), or None."""
    if dataset is None or not version_id:
        return None
    return next((v for v in (dataset.get("status") or {}).get("versions") or [] if v.get("id") == version_id), None)


def profile_uri(snapshot_uri: str) -> str:
    """The profile.json inside a Dataset version's snapshot prefix."""
    return snapshot_uri.rstrip("/") + "/" + PROFILE_FILE


def target_column(dataset: dict | None, feature_set: dict | None) -> str | None:
    """The label column: the FeatureSet's target when the model was trained on one, else the Dataset's."""
    if feature_set is not None and (feature_set.get("spec") or {}).get("target"):
        return feature_set["spec"]["target"]
    return (((dataset or {}).get("spec") or {}).get("schema") or {}).get("target")


def model_info(version: dict, dataset: dict | None, feature_set: dict | None) -> ModelInfo:
    """A ModelVersion as the planner sees it; `dataset`/`feature_set` are those of its lineage."""
    spec = version["spec"]
    lineage = spec.get("lineage") or {}
    entry = dataset_version_entry(dataset, lineage.get("datasetVersion"))
    return ModelInfo(
        model_version=version["metadata"]["name"],
        version=str(spec["version"]),
        uri=spec["artifact"]["uri"],
        sha256=spec["artifact"]["sha256"],
        holdout_metrics=dict(spec.get("metrics") or {}),
        reference_uri=profile_uri(entry["uri"]) if entry and entry.get("uri") else None,
        target=target_column(dataset, feature_set),
        classes=(spec.get("signature") or {}).get("classes"),
        dataset=lineage.get("dataset"),
        dataset_version=lineage.get("datasetVersion"),
        dataset_rows=entry.get("rows") if entry else None,
        inputs=[column["name"] for column in (spec.get("signature") or {}).get("inputs") or []] or None,
    )


def retrained_candidate(versions: list[dict], retrain_runs: set[str], production: dict | None) -> dict | None:
    """The newest Candidate registered by one of the policy's retrain TrainingRuns and newer
    than the Production version."""
    floor = _number(production) if production is not None else 0
    candidates = [v for v in versions if _stage(v) == "Candidate" and _number(v) > floor
                  and ((v["metadata"].get("labels") or {}).get(RUN_LABEL) in retrain_runs
                       or ((v.get("spec") or {}).get("lineage") or {}).get("trainingRun") in retrain_runs)]
    return max(candidates, key=_number, default=None)


def latest_dataset_version(dataset: dict | None) -> DatasetVersionInfo | None:
    """The Dataset's current version; the status only ever names validated versions."""
    status = (dataset or {}).get("status") or {}
    if not status.get("latestVersion"):
        return None
    entry = dataset_version_entry(dataset, status["latestVersion"]) or {}
    rows = status.get("latestRows", entry.get("rows"))
    return DatasetVersionInfo(status["latestVersion"], int(rows or 0))


def drift_reference_uri(dataset: dict | None, name: str, version: str | None) -> tuple[str | None, str | None]:
    """spec.drift.reference -> (profile URI, None) or (None, why it cannot be used)."""
    if dataset is None:
        return None, f"Dataset {name} not found"
    wanted = version or (dataset.get("status") or {}).get("latestVersion")
    if not wanted:
        return None, f"Dataset {name} has no validated version yet"
    entry = dataset_version_entry(dataset, wanted)
    if entry is None or not entry.get("uri"):
        return None, f"Dataset {name} has no version {wanted} (kept versions are listed in its status)"
    return profile_uri(entry["uri"]), None


def retrain_source(spec: MonitorPolicySpec, source_run: dict | None) -> tuple[dict | None, dict[str, str]]:
    """The TrainingRun spec (wire form) a retrain starts from, and the problems found."""
    retrain = spec.actions.retrain
    if retrain is None or not retrain.enabled:
        return None, {}
    if retrain.template is not None:
        return retrain.template.wire(), {}
    if source_run is None:
        return None, {"actions.retrain.fromTrainingRun": f"TrainingRun {retrain.from_training_run} not found"}
    return dict(source_run.get("spec") or {}), {}


def retrain_data_names(retrain_spec: dict | None) -> tuple[str | None, str | None]:
    """(FeatureSet name or None, Dataset name or None) the retrain spec reads; the FeatureSet's
    Dataset is only known once the FeatureSet is read (`retrain_data`)."""
    spec = retrain_spec or {}
    if isinstance(spec.get("featureSetRef"), dict):
        return spec["featureSetRef"]["name"], None
    if isinstance(spec.get("datasetRef"), dict):
        return None, spec["datasetRef"]["name"]
    return None, None


def retrain_data(feature_set_name: str | None, feature_set: dict | None, dataset: dict | None) -> RetrainData | None:
    """What the planner needs to fold feedback into the retrain's data: the appended-data
    annotation, which Dataset version holds each appended file (newest first), and which
    FeatureSet version was materialized on each Dataset version."""
    if dataset is None or (feature_set_name is not None and feature_set is None):
        return None
    try:
        requested = tuple(appended_uris((dataset["metadata"].get("annotations") or {}).get(APPENDED_DATA_ANNOTATION)))
    except AppendedDataError:
        requested = ()  # the Dataset reports the broken annotation; appending would refuse to overwrite it
    appended_in: dict[str, str] = {}
    for version in (dataset.get("status") or {}).get("versions") or []:
        for uri in version.get("appended") or []:
            appended_in.setdefault(uri, version["id"])
    feature_versions: dict[str, str] = {}
    for version in ((feature_set or {}).get("status") or {}).get("versions") or []:
        feature_versions.setdefault(version.get("datasetVersion"), version["id"])
    return RetrainData(dataset=dataset["metadata"]["name"], feature_set=feature_set_name, requested=requested,
                       appended_in=appended_in, feature_versions=feature_versions,
                       ingest_failure=appended_ingest_failure(dataset, requested))


def appended_ingest_failure(dataset: dict, requested: tuple[str, ...]) -> str | None:
    """Why the Dataset's last ingest, the one that read the appended list as it stands, failed
    (its ingest Job's name ends with the list's digest); None when it did not or has not run."""
    status = dataset.get("status") or {}
    if not requested or status.get("phase") not in ("Invalid", "Failed"):
        return None
    if not (status.get("lastJob") or "").endswith(f"-a{appended_digest(list(requested))}"):
        return None
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return ready.get("message") or f"the last ingest of Dataset {dataset['metadata']['name']} failed"


# --- observation (reads the cluster) --------------------------------------------------------

def resolve_context(obj: dict, spec: MonitorPolicySpec) -> MonitorContext:
    namespace = obj["metadata"]["namespace"]
    policy = obj["metadata"]["name"]
    context = MonitorContext()
    isvc = get(API_VERSION, "InferenceService", namespace, spec.inference_service_ref.name)
    context.inference_service_found = isvc is not None

    retrain = spec.actions.retrain
    source_run = (get(API_VERSION, "TrainingRun", namespace, retrain.from_training_run)
                  if retrain is not None and retrain.enabled and retrain.from_training_run else None)
    context.retrain_spec, context.spec_problems = retrain_source(spec, source_run)
    if context.retrain_spec is not None:
        feature_set_name, dataset_name = retrain_data_names(context.retrain_spec)
        feature_set = get(API_VERSION, "FeatureSet", namespace, feature_set_name) if feature_set_name else None
        if feature_set is not None:
            dataset_name = ((feature_set.get("spec") or {}).get("datasetRef") or {}).get("name")
        dataset = get(API_VERSION, "Dataset", namespace, dataset_name) if dataset_name else None
        context.retrain_data = retrain_data(feature_set_name, feature_set, dataset)

    reference = spec.drift.reference if spec.drift else None
    if reference is not None and reference.dataset:
        uri, problem = drift_reference_uri(get(API_VERSION, "Dataset", namespace, reference.dataset),
                                           reference.dataset, reference.version)
        context.reference_uri = uri
        if problem:
            context.spec_problems["drift.reference.dataset"] = problem
    if isvc is None:
        return context

    versions = model_versions_of(namespace, isvc["spec"]["model"])
    production = served_version(isvc, versions)
    if production is None:
        return context
    lineage = production["spec"].get("lineage") or {}
    dataset = get(API_VERSION, "Dataset", namespace, lineage["dataset"]) if lineage.get("dataset") else None
    feature_set = (get(API_VERSION, "FeatureSet", namespace, lineage["featureSet"])
                   if lineage.get("featureSet") else None)
    context.production = model_info(production, dataset, feature_set)
    context.latest_dataset = latest_dataset_version(dataset)

    runs = list_objects(API_VERSION, "TrainingRun", namespace, f"{RETRAINED_BY_LABEL}={cut_name(policy)}")
    candidate = retrained_candidate(versions, {r["metadata"]["name"] for r in runs}, production)
    if candidate is not None:
        context.candidate = model_info(candidate, dataset, feature_set)
    return context


def record_metrics(namespace: str, policy: str, plan: MonitorPlan) -> None:
    metrics = monitor_metrics()
    if plan.evaluated is not None:
        metrics.record_evaluation(namespace, policy, plan.evaluated)
    if plan.production_gap is not None:
        metrics.record_production_gap(namespace, policy, plan.production_gap["metric"], plan.production_gap["gap"])
    if plan.retrain_trigger is not None:
        metrics.record_retrain(namespace, policy, plan.retrain_trigger)
    if plan.held_reason is not None:
        metrics.record_held_retrain(namespace, policy, plan.held_reason)


def reconcile_monitorpolicy(obj, spec, body, patch):
    meta = obj["metadata"]
    context = resolve_context(obj, spec)
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs))
    plan = plan_monitorpolicy(obj, MonitorObservation(jobs, results), context, utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, meta, patch, body)
    record_metrics(meta["namespace"], meta["name"], plan)
    if plan.candidate_verdict is not None and context.candidate is not None:
        annotate_candidate(meta["namespace"], context.candidate.model_version, plan.candidate_verdict)
    if plan.append_data is not None:
        append_feedback(meta["namespace"], f"MonitorPolicy/{meta['namespace']}/{meta['name']}", plan.append_data)


def append_feedback(namespace: str, added_by: str, append: AppendData) -> None:
    """Add the window's labelled feedback to the Dataset's appended-data annotation; the Dataset
    controller ingests a version holding it. A Dataset gone or with an annotation a person broke
    is left alone: the pending retrain times out and trains on the latest data, with a Warning."""
    dataset = get(API_VERSION, "Dataset", namespace, append.dataset)
    if dataset is None:
        return
    current = (dataset["metadata"].get("annotations") or {}).get(APPENDED_DATA_ANNOTATION)
    try:
        value = append_data_annotation(current, append.uri, added_by, utcnow())
    except AppendedDataError:
        return
    merge_patch(API_VERSION, "Dataset", namespace, append.dataset,
                {"metadata": {"annotations": {APPENDED_DATA_ANNOTATION: value}}})


def annotate_candidate(namespace: str, model_version: str, verdict: dict) -> None:
    """Record the champion/challenger verdict on the candidate; a candidate deleted meanwhile
    needs none (and must not keep the verdict from reaching the policy's status)."""
    try:
        merge_patch(API_VERSION, "ModelVersion", namespace, model_version,
                    {"metadata": {"annotations": {CANDIDATE_VERDICT_ANNOTATION: json.dumps(verdict, sort_keys=True)}}})
    except ApiException as error:
        if error.status != 404:
            raise


register_reconciler(KIND, reconcile_monitorpolicy)


@kopf.on.delete(GROUP, VERSION, KIND.plural, id="forget-metrics", optional=True)
def forget_metrics(meta, **_):
    monitor_metrics().forget(meta["namespace"], meta["name"])
