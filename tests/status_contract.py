"""Every status a planner writes must fit the CRD the API server enforces.

A field the CRD does not declare is pruned silently by a real API server: the planner believes it
wrote it, nobody reads it back. `install()` (called from tests/conftest.py before test modules are
imported) wraps each kind's planner so that EVERY planner call in EVERY table test checks the
status fields it writes against the generated CRD's openAPIV3Schema: an undeclared field, or a
value of the wrong type, fails the test that made the planner write it.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

PLANNERS = {  # kind -> (module, function)
    "Dataset": ("kadence.planners.dataset", "plan_dataset"),
    "FeatureSet": ("kadence.planners.featureset", "plan_featureset"),
    "TrainingRun": ("kadence.planners.trainingrun", "plan_trainingrun"),
    "ModelVersion": ("kadence.planners.modelversion", "plan_modelversion"),
    "InferenceService": ("kadence.planners.inferenceservice", "plan_inferenceservice"),
    "MonitorPolicy": ("kadence.planners.monitorpolicy", "plan_monitorpolicy"),
    "BatchPrediction": ("kadence.planners.batchprediction", "plan_batchprediction"),
    "ErasureRequest": ("kadence.planners.erasurerequest", "plan_erasurerequest"),
}
TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}


@functools.lru_cache(maxsize=None)
def status_schema(kind: str) -> dict:
    from kadence.api.crdgen import all_crds

    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind)
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def problems(schema: dict, value: Any, path: str = "status") -> list[str]:
    """What in `value` the structural schema does not allow: undeclared fields and wrong types
    (None is a field being cleared, always allowed)."""
    if value is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    expected = schema.get("type")
    if expected in TYPES and (not isinstance(value, TYPES[expected])
                              or (expected in ("integer", "number") and isinstance(value, bool))):
        return [f"{path}: {type(value).__name__} where the CRD says {expected}"]
    found = []
    if isinstance(value, dict):
        declared = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if declared is not None and key in declared:
                found += problems(declared[key], item, f"{path}.{key}")
            elif isinstance(extra, dict):
                found += problems(extra, item, f"{path}.{key}")
            else:
                found.append(f"{path}.{key}: not defined in the CRD")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += problems(schema["items"], item, f"{path}[{index}]")
    return found


def check(kind: str, plan: Any) -> None:
    patch = plan.status_patch() if hasattr(plan, "status_patch") else dict(plan.status)
    wrong = problems(status_schema(kind), patch)
    if wrong:
        raise AssertionError(f"the {kind} planner wrote a status the CRD does not allow: " + "; ".join(wrong))


def checked(kind: str, planner):
    @functools.wraps(planner)
    def wrapper(*args, **kwargs):
        plan = planner(*args, **kwargs)
        check(kind, plan)
        return plan

    wrapper.__status_contract__ = kind
    return wrapper


def install() -> None:
    for kind, (module_name, function) in PLANNERS.items():
        module = importlib.import_module(module_name)
        planner = getattr(module, function)
        if getattr(planner, "__status_contract__", None) is None:
            setattr(module, function, checked(kind, planner))
