"""ModelVersion handlers: verify the artifact, keep one Production version per model."""

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND
from ..k8s.apply import merge_patch
from ..planners.modelversion import ModelVersionObservation, needs_verification, plan_modelversion
from .common import (model_versions_of, object_store, owned_jobs, realize, register_reconciler, utcnow,
                     workload_settings)

KIND = BY_KIND["ModelVersion"]


def observe(obj: dict, spec, mlflow: bool) -> ModelVersionObservation:
    namespace = obj["metadata"]["namespace"]
    observation = ModelVersionObservation(siblings=model_versions_of(namespace, spec.model),
                                          jobs=owned_jobs(KIND, obj) if mlflow else [])
    if needs_verification(obj):
        store = object_store()
        try:
            observation.artifact = store.get_bytes(store.key_of(spec.artifact.uri))
        except FileNotFoundError:
            observation.artifact_missing = True
    return observation


def reconcile_modelversion(obj, spec, body, patch):
    settings = workload_settings()
    plan = plan_modelversion(obj, observe(obj, spec, bool(settings.mlflow_tracking_uri)), utcnow(), settings)
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)
    for sibling in plan.sibling_patches:
        merge_patch(API_VERSION, "ModelVersion", sibling.namespace, sibling.name, sibling.patch)


register_reconciler(KIND, reconcile_modelversion)
