"""ErasureRequest handlers: erase a subject everywhere in scope through one Job per generation."""

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND
from ..k8s.apply import get, list_objects
from ..planners.erasurerequest import ErasureObservation, plan_erasurerequest, results_to_fetch
from .common import owned_jobs, read_json_objects, realize, register_reconciler, utcnow, workload_settings

KIND = BY_KIND["ErasureRequest"]


def reconcile_erasurerequest(obj, spec, body, patch):
    namespace = obj["metadata"]["namespace"]
    datasets = {name: get(API_VERSION, "Dataset", namespace, name) for name in spec.scope.datasets or []}
    policies = list_objects(API_VERSION, "MonitorPolicy", namespace) if spec.scope.inference_services else []
    feature_sets = list_objects(API_VERSION, "FeatureSet", namespace) if spec.scope.datasets else []
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs), owner=obj)  # only its own workloads' results
    plan = plan_erasurerequest(obj, ErasureObservation(datasets, policies, jobs, results, feature_sets), utcnow(),
                               workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)


register_reconciler(KIND, reconcile_erasurerequest)
