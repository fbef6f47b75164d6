"""Dataset handlers: run ingest Jobs, record versions and rule results."""

import copy

import kopf

from ..api.common import GROUP, VERSION
from ..api.kinds import BY_KIND
from ..domain.data.appended import APPENDED_DATA_ANNOTATION
from ..planners.dataset import DatasetObservation, plan_dataset, results_to_fetch
from .common import accept_spec, owned_jobs, read_json_objects, realize, register_reconciler, utcnow, \
    workload_settings

KIND = BY_KIND["Dataset"]


def reconcile_dataset(obj, spec, body, patch):
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs))
    plan = plan_dataset(obj, DatasetObservation(jobs, results), utcnow(), workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)


register_reconciler(KIND, reconcile_dataset)


@kopf.on.update(GROUP, VERSION, KIND.plural, field=("metadata", "annotations", APPENDED_DATA_ANNOTATION),
                id="appended-data")
def appended_data_changed(body, spec, status, meta, patch, **_):
    """A changed appended-data list starts its ingest now rather than at the next resync."""
    parsed = accept_spec(KIND, spec, status, meta, patch, body)
    reconcile_dataset(copy.deepcopy(dict(body)), parsed, body, patch)
