"""BatchPrediction handlers: score a table with a registered model, run by run."""

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND
from ..k8s.apply import get
from ..planners.batchprediction import BatchObservation, plan_batchprediction, results_to_fetch
from .common import model_versions_of, owned_jobs, read_json_objects, realize, register_reconciler, utcnow, \
    workload_settings

KIND = BY_KIND["BatchPrediction"]


def reconcile_batchprediction(obj, spec, body, patch):
    namespace = obj["metadata"]["namespace"]
    dataset = get(API_VERSION, "Dataset", namespace, spec.input.dataset.name) if spec.input.dataset else None
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs), owner=obj)  # only its own workloads' results
    observed = BatchObservation(model_versions_of(namespace, spec.model), dataset, jobs, results)
    plan = plan_batchprediction(obj, observed, utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)


register_reconciler(KIND, reconcile_batchprediction)
