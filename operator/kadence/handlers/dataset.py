"""Dataset handlers: run ingest Jobs, record versions and rule results."""

from ..api.kinds import BY_KIND
from ..planners.dataset import DatasetObservation, plan_dataset, results_to_fetch
from .common import owned_jobs, read_json_objects, realize, register_reconciler, utcnow, workload_settings

KIND = BY_KIND["Dataset"]


def reconcile_dataset(obj, spec, body, patch):
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs))
    plan = plan_dataset(obj, DatasetObservation(jobs, results), utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)


register_reconciler(KIND, reconcile_dataset)
