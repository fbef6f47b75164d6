"""MonitorPolicy handlers: evaluate an InferenceService each interval, retrain when a trigger fires.

The module resolves what the planner needs (`MonitorContext`) from the cluster, reads the
finished monitor Jobs' results, and carries out the plan. The resolution steps are pure
functions of the objects read (first section, unit-tested on their own); `resolve_context`
only fetches those objects and hands them over."""

from __future__ import annotations

from datetime import datetime

from ..api.common import API_VERSION
from ..api.conditions import find
from ..api.kinds import BY_KIND
from ..api.monitorpolicy import MonitorPolicySpec
from ..builders.meta import cut_name
from ..builders.training import RUN_LABEL
from ..domain.data.feedback import feedback_digest
from ..domain.monitoring.retrain import Feedback, RetrainInputs, lineage_inputs
from ..domain.monitoring.triggers import DatasetVersionInfo
from ..k8s.apply import get, list_objects
from ..metrics import monitor_metrics
from ..planners.batch_monitoring import watched
from ..planners.monitorpolicy import (RETRAIN_TRIGGER_ANNOTATION, RETRAINED_BY_LABEL, ModelInfo, MonitorContext, MonitorObservation, MonitorPlan,
                                      RetrainData, RetrainRun, plan_monitorpolicy, results_to_fetch)
from .common import model_versions_of, owned_jobs, read_json_objects, realize, register_reconciler, utcnow, \
    workload_settings
from .runtime import ENGINE

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
        training_run=lineage.get("trainingRun"),
        model=spec.get("model"),
        personal=tuple(c["name"] for c in (spec.get("signature") or {}).get("inputs") or [] if c.get("pii")),
        estimation_reference=spec.get("estimationReference"),
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


def policy_feedback(version_entry: dict | None, policy: str) -> Feedback | None:
    """This policy's feedback export folded into a Dataset version (its status.versions entry)."""
    for entry in (version_entry or {}).get("feedback") or []:
        if entry.get("monitorPolicy") == policy:
            return Feedback.from_wire(entry)
    return None


def opts_in(dataset: dict, policy: str) -> bool:
    """The Dataset lists this policy in spec.feedback.from."""
    sources = (((dataset.get("spec") or {}).get("feedback") or {}).get("from")) or []
    return any(source.get("monitorPolicy") == policy for source in sources)


def retrain_data(policy: str, feature_set_name: str | None, feature_set: dict | None, dataset: dict | None,
                 published: dict | None = None) -> RetrainData | None:
    """What the planner needs to fold feedback into the retrain's data: whether the Dataset opts
    in, which of its versions holds which of this policy's feedback exports, which FeatureSet
    version was materialized on each Dataset version, and whether the ingest of the export this
    policy published (`published`, its status.feedback) failed."""
    if dataset is None or (feature_set_name is not None and feature_set is None):
        return None
    status = dataset.get("status") or {}
    versions = status.get("versions") or []
    feedback_in = {v["id"]: f for v in versions if (f := policy_feedback(v, policy)) is not None}
    feature_versions: dict[str, str] = {}
    for version in ((feature_set or {}).get("status") or {}).get("versions") or []:
        feature_versions.setdefault(version.get("datasetVersion"), version["id"])
    return RetrainData(dataset=dataset["metadata"]["name"], feature_set=feature_set_name,
                       opts_in=opts_in(dataset, policy), latest_version=status.get("latestVersion"),
                       feedback_in=feedback_in, versions=tuple(v["id"] for v in versions),
                       feature_versions=feature_versions, ingest_failure=feedback_ingest_failure(dataset, published))


def feedback_ingest_failure(dataset: dict, published: dict | None) -> str | None:
    """Why the Dataset's last ingest, the one that read the published export, failed (its Job's
    name ends with the digest of the export); None when it did not or has not run."""
    status = dataset.get("status") or {}
    if not published or not published.get("sha256") or status.get("phase") not in ("Invalid", "Failed"):
        return None
    if not (status.get("lastJob") or "").endswith(f"-f{feedback_digest([published['sha256']])}"):
        return None
    failed = find(status.get("conditions"), "Ingested") or find(status.get("conditions"), "Ready") or {}
    return failed.get("message") or f"the last ingest of Dataset {dataset['metadata']['name']} failed"


def _created(obj: dict) -> datetime | None:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def retrain_run(run: dict) -> RetrainRun:
    """A retrain TrainingRun as the planner follows it."""
    status = run.get("status") or {}
    ready = find(status.get("conditions"), "Ready") or {}
    return RetrainRun(name=run["metadata"]["name"], phase=status.get("phase"),
                      model_version=status.get("modelVersion"), identical_to=status.get("identicalTo"),
                      message=ready.get("message"), created=_created(run),
                      trigger=(run["metadata"].get("annotations") or {}).get(RETRAIN_TRIGGER_ANNOTATION))


def model_inputs(versions: list[dict]) -> list[tuple[str, RetrainInputs]]:
    """(ModelVersion name, the inputs it was trained on) for the versions whose lineage records them."""
    found = []
    for version in versions:
        inputs = lineage_inputs((version.get("spec") or {}).get("lineage"))
        if inputs is not None:
            found.append((version["metadata"]["name"], inputs))
    return found


# --- observation (reads the cluster) --------------------------------------------------------

def resolve_context(obj: dict, spec: MonitorPolicySpec) -> MonitorContext:
    namespace = obj["metadata"]["namespace"]
    policy = obj["metadata"]["name"]
    context = MonitorContext()
    target = watched(spec)  # a BatchPrediction names model and version or stage as an InferenceService does
    isvc = get(API_VERSION, target.kind, namespace, target.name)
    context.inference_service_found = isvc is not None

    retrain = spec.actions.retrain
    source_run = (get(API_VERSION, "TrainingRun", namespace, retrain.from_training_run)
                  if retrain is not None and retrain.enabled and retrain.from_training_run else None)
    context.retrain_spec, context.spec_problems = retrain_source(spec, source_run)
    retrain_dataset = None
    if context.retrain_spec is not None:
        feature_set_name, dataset_name = retrain_data_names(context.retrain_spec)
        feature_set = get(API_VERSION, "FeatureSet", namespace, feature_set_name) if feature_set_name else None
        if feature_set is not None:
            dataset_name = ((feature_set.get("spec") or {}).get("datasetRef") or {}).get("name")
        retrain_dataset = get(API_VERSION, "Dataset", namespace, dataset_name) if dataset_name else None
        context.retrain_data = retrain_data(policy, feature_set_name, feature_set, retrain_dataset,
                                            (obj.get("status") or {}).get("feedback"))
    runs = list_objects(API_VERSION, "TrainingRun", namespace, f"{RETRAINED_BY_LABEL}={cut_name(policy)}")
    context.retrain_runs = {r["metadata"]["name"]: retrain_run(r) for r in runs}

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
    retrain_model = (context.retrain_spec or {}).get("model")
    trained = versions if retrain_model in (None, isvc["spec"]["model"]) else model_versions_of(namespace, retrain_model)
    context.model_inputs = model_inputs(trained)
    production = served_version(isvc, versions)
    if production is None:
        return context
    lineage = production["spec"].get("lineage") or {}
    dataset = get(API_VERSION, "Dataset", namespace, lineage["dataset"]) if lineage.get("dataset") else None
    feature_set = (get(API_VERSION, "FeatureSet", namespace, lineage["featureSet"])
                   if lineage.get("featureSet") else None)
    context.production = model_info(production, dataset, feature_set)
    context.latest_dataset = latest_dataset_version(dataset)
    context.production_feedback = policy_feedback(dataset_version_entry(dataset, lineage.get("datasetVersion")),
                                                  policy)

    candidate = retrained_candidate(versions, set(context.retrain_runs), production)
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
    results = read_json_objects(results_to_fetch(obj, jobs), owner=obj)  # only its own workloads' results
    plan = plan_monitorpolicy(obj, MonitorObservation(jobs, results), context, utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, meta, patch, body)
    record_metrics(meta["namespace"], meta["name"], plan)


register_reconciler(KIND, reconcile_monitorpolicy)


def forget_metrics(namespace: str, name: str) -> None:
    monitor_metrics().forget(namespace, name)


ENGINE.on_deleted[KIND.kind] = forget_metrics
