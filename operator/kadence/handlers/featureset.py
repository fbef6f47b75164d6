"""FeatureSet handlers: materialize features for the Dataset's current version."""

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND
from ..k8s.apply import get, list_objects
from ..planners.featureset import FeatureSetObservation, plan_featureset, results_to_fetch
from .common import owned_jobs, read_json_objects, realize, register_reconciler, utcnow, workload_settings

KIND = BY_KIND["FeatureSet"]


def reconcile_featureset(obj, spec, body, patch):
    dataset = get(API_VERSION, "Dataset", obj["metadata"]["namespace"], spec.dataset_ref.name)
    erasures = list_objects(API_VERSION, "ErasureRequest", obj["metadata"]["namespace"])  # snapshots they rewrote
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs), owner=obj)  # only its own workloads' results
    plan = plan_featureset(obj, FeatureSetObservation(dataset, jobs, results, erasures), utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)


register_reconciler(KIND, reconcile_featureset)
