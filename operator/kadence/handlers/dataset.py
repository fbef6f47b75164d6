"""Dataset handlers: run ingest Jobs, record versions and rule results.

The feedback of the MonitorPolicies in spec.feedback.from is read from their typed
status.feedback (same namespace) on every reconcile: a newly published export makes the
next ingest (its digest is part of the Job's name)."""

from ..api.common import API_VERSION
from ..api.kinds import BY_KIND
from ..domain.data.feedback import published_feedback
from ..k8s.apply import get, list_objects
from ..planners.dataset import DatasetObservation, plan_dataset, results_to_fetch
from .common import owned_jobs, read_json_objects, realize, register_reconciler, utcnow, workload_settings

KIND = BY_KIND["Dataset"]


def observe_feedback(namespace: str, spec) -> tuple[list, dict[str, str]]:
    """The feedback files the spec.feedback.from policies publish, and why any has none."""
    files, missing = [], {}
    for source in (spec.feedback.from_ if spec.feedback is not None else []):
        name = source.monitor_policy
        found, why = published_feedback(name, get(API_VERSION, "MonitorPolicy", namespace, name))
        if found is not None:
            files.append(found)
        else:
            missing[name] = why
    return files, missing


def reconcile_dataset(obj, spec, body, patch):
    jobs = owned_jobs(KIND, obj)
    results = read_json_objects(results_to_fetch(obj, jobs), owner=obj)  # only its own workloads' results
    feedback, missing = observe_feedback(obj["metadata"]["namespace"], spec)
    erasures = list_objects(API_VERSION, "ErasureRequest", obj["metadata"]["namespace"])  # snapshots they rewrote
    plan = plan_dataset(obj, DatasetObservation(jobs, results, feedback, missing, erasures), utcnow(),
                        workload_settings())
    realize(plan, obj.get("status") or {}, obj["metadata"], patch, body)


register_reconciler(KIND, reconcile_dataset)
