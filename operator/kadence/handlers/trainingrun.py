"""TrainingRun handlers: one training Job per attempt, then register the winner."""

from kubernetes.client.rest import ApiException

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND
from ..builders.jobs import job_state
from ..builders.training import RUN_LABEL, train_job_name
from ..domain.training.versions import VersionTaken, allocate
from ..k8s.apply import create, get, job_log_tail
from ..planners.trainingrun import TERMINAL, TrainingRunObservation, plan_trainingrun
from ..workloads.train_task import progress_key, result_key
from .common import (model_versions_of, owned_jobs, read_json, realize, register_reconciler, utcnow,
                     workload_settings)

KIND = BY_KIND["TrainingRun"]


def observe(obj: dict, spec) -> TrainingRunObservation:
    meta = obj["metadata"]
    namespace, run = meta["namespace"], meta["name"]
    reference = spec.feature_set_ref or spec.dataset_ref
    source_kind = "FeatureSet" if spec.feature_set_ref is not None else "Dataset"
    jobs = owned_jobs(KIND, obj)
    attempt_job = train_job_name(run, int((obj.get("status") or {}).get("attempt") or 1))
    failed = [j for j in jobs if j["metadata"]["name"] == attempt_job and job_state(j) == "Failed"]
    # A finished run's planner reads nothing from S3: no request at rest.
    finished = (obj.get("status") or {}).get("phase") in TERMINAL
    return TrainingRunObservation(
        source=get(API_VERSION, source_kind, namespace, reference.name),
        jobs=jobs,
        result=None if finished else read_json(result_key(namespace, run), owner=obj),
        progress=None if finished else read_json(progress_key(namespace, run), owner=obj),
        log_tail=job_log_tail(namespace, attempt_job) if failed else None,
        model_versions=model_versions_of(namespace, spec.model),
    )


def register(registration) -> None:
    """Create `<model>-v<N>` with the next free N; two runs finishing together get distinct numbers."""

    def create_version(name: str, version: int) -> None:
        try:
            create(registration.body(name, version))
        except ApiException as error:
            if error.status != 409:
                raise
            existing = get(API_VERSION, "ModelVersion", registration.namespace, name) or {}
            raise VersionTaken(name, ((existing.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL)) from error

    allocate(registration.model, registration.existing_versions, create_version, owner=registration.run)


def reconcile_trainingrun(obj, spec, body, patch):
    plan = plan_trainingrun(obj, observe(obj, spec), utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)
    if plan.registration is not None:
        register(plan.registration)


register_reconciler(KIND, reconcile_trainingrun)
