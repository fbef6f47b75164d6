"""What the console's pages show, computed from the watched objects alone (no I/O).

A model is a registry name in a namespace (`spec.model` of its ModelVersions, TrainingRuns and
InferenceServices). Its loop is found by following the references the API defines: the
InferenceServices serving the model, the MonitorPolicies watching them, the TrainingRuns that
train it, the FeatureSets and Datasets those (and the versions' lineage) name.

Charts are Vega-Lite specs (rendered in the browser by vega-embed, shipped with the package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import urlparse

KINDS = ("Dataset", "FeatureSet", "TrainingRun", "ModelVersion", "InferenceService", "MonitorPolicy")
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
DEFAULT_CANARY_WEIGHTS = (10, 50)  # api.inferenceservice.Canary's default steps
LOWER_IS_BETTER = ("rmse", "mae", "log_loss")


@dataclass
class Snapshot:
    """The watched objects: kind -> {(namespace, name): object}."""

    objects: dict[str, dict[tuple[str, str], dict]] = field(default_factory=lambda: {k: {} for k in KINDS})

    @classmethod
    def of(cls, items: Iterable[dict]) -> "Snapshot":
        snapshot = cls()
        for item in items:
            snapshot.put(item)
        return snapshot

    def put(self, obj: dict) -> None:
        meta = obj["metadata"]
        self.objects.setdefault(obj["kind"], {})[(meta.get("namespace", ""), meta["name"])] = obj

    def remove(self, obj: dict) -> None:
        meta = obj["metadata"]
        self.objects.get(obj["kind"], {}).pop((meta.get("namespace", ""), meta["name"]), None)

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        items = [o for (ns, _), o in self.objects.get(kind, {}).items() if namespace is None or ns == namespace]
        return sorted(items, key=lambda o: o["metadata"]["name"])

    def get(self, kind: str, namespace: str, name: str | None) -> dict | None:
        return self.objects.get(kind, {}).get((namespace, name)) if name else None


class ActionRefused(Exception):
    """The action does not apply to the object as it is now (HTTP 409, with this message)."""


# ---------------------------------------------------------------- small readers


def _spec(obj: dict | None) -> dict:
    return (obj or {}).get("spec") or {}


def _status(obj: dict | None) -> dict:
    return (obj or {}).get("status") or {}


def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def condition(obj: dict | None, type_: str) -> dict | None:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == type_), None)


def readiness(obj: dict) -> dict:
    """kind, name, ready (True/False/Unknown), reason and message of the object's Ready condition."""
    ready = condition(obj, "Ready") or {}
    return {"kind": obj["kind"], "name": _name(obj), "ready": ready.get("status", "Unknown"),
            "reason": ready.get("reason") or "NotReportedYet", "message": ready.get("message") or ""}


def model_keys(snapshot: Snapshot) -> list[tuple[str, str]]:
    """Every (namespace, model) that a ModelVersion, TrainingRun or InferenceService names."""
    found = set()
    for kind in ("ModelVersion", "TrainingRun", "InferenceService"):
        for (namespace, _), obj in snapshot.objects.get(kind, {}).items():
            if _spec(obj).get("model"):
                found.add((namespace, _spec(obj)["model"]))
    return sorted(found)


@dataclass
class Loop:
    """The objects of one model's loop."""

    namespace: str
    model: str
    versions: list[dict]
    runs: list[dict]
    services: list[dict]
    policies: list[dict]
    featuresets: list[dict]
    datasets: list[dict]

    def all(self) -> list[dict]:
        return [*self.datasets, *self.featuresets, *self.runs, *self.versions, *self.services, *self.policies]


def loop_of(snapshot: Snapshot, namespace: str, model: str) -> Loop:
    def of_model(kind: str) -> list[dict]:
        return [o for o in snapshot.list(kind, namespace) if _spec(o).get("model") == model]

    versions = sorted(of_model("ModelVersion"), key=lambda o: _spec(o).get("version", 0))
    runs = of_model("TrainingRun")
    services = of_model("InferenceService")
    service_names = {_name(s) for s in services}
    policies = [p for p in snapshot.list("MonitorPolicy", namespace)
                if (_spec(p).get("inferenceServiceRef") or {}).get("name") in service_names]
    featureset_names = {(_spec(r).get("featureSetRef") or {}).get("name") for r in runs}
    featureset_names |= {(_spec(v).get("lineage") or {}).get("featureSet") for v in versions}
    featuresets = [f for f in snapshot.list("FeatureSet", namespace) if _name(f) in featureset_names]
    dataset_names = {(_spec(f).get("datasetRef") or {}).get("name") for f in featuresets}
    dataset_names |= {(_spec(r).get("datasetRef") or {}).get("name") for r in runs}
    dataset_names |= {(_spec(v).get("lineage") or {}).get("dataset") for v in versions}
    datasets = [d for d in snapshot.list("Dataset", namespace) if _name(d) in dataset_names]
    return Loop(namespace, model, versions, runs, services, policies, featuresets, datasets)


def _version_name(loop: Loop, number: int | None) -> str | None:
    if number is None:
        return None
    return next((_name(v) for v in loop.versions if _spec(v).get("version") == number), f"{loop.model} v{number}")


# ---------------------------------------------------------------- the home page


def monitored_metric(policy: dict) -> dict | None:
    """The policy's quality metric, its threshold and its latest value (None without performance)."""
    performance = _spec(policy).get("performance")
    if not performance:
        return None
    metric = performance.get("metric")
    last = _status(policy).get("lastEvaluation") or {}
    value = (last.get("metrics") or {}).get(metric)
    return {"metric": metric, "threshold": performance.get("threshold"), "value": value,
            "breached": bool(last.get("breached")), "lowerIsBetter": metric in LOWER_IS_BETTER}


def model_summary(loop: Loop) -> dict:
    service = loop.services[0] if loop.services else None
    status = _status(service)
    policy = loop.policies[0] if loop.policies else None
    retrains = _status(policy).get("retrains") or []
    return {
        "namespace": loop.namespace,
        "model": loop.model,
        "inferenceService": _name(service) if service else None,
        "stable": _version_name(loop, status.get("stableVersion")),
        "canary": _version_name(loop, status.get("canaryVersion")),
        "canaryWeight": status.get("canaryWeight"),
        "phase": status.get("phase"),
        "policy": _name(policy) if policy else None,
        "metric": monitored_metric(policy) if policy else None,
        "drift": _status(policy).get("driftSummary"),
        "lastRetrain": retrains[-1] if retrains else None,
        "versions": len(loop.versions),
        "notReady": [r for r in map(readiness, loop.all()) if r["ready"] != "True"],
    }


def overview(snapshot: Snapshot) -> list[dict]:
    return [model_summary(loop_of(snapshot, namespace, model)) for namespace, model in model_keys(snapshot)]


# ---------------------------------------------------------------- the model page


def dataset_view(dataset: dict) -> dict:
    status = _status(dataset)
    rules = status.get("lastIngest") or []
    return {
        **readiness(dataset),
        "latestVersion": status.get("latestVersion"),
        "versions": [{"id": v.get("id"), "rows": v.get("rows"), "createdAt": v.get("createdAt"),
                      "feedbackRows": sum(f.get("rows") or 0 for f in v.get("feedback") or [])}
                     for v in status.get("versions") or []],
        "validation": {"passed": all(r.get("passed") for r in rules) if rules else None,
                       "failed": [r for r in rules if not r.get("passed")], "rules": len(rules),
                       "at": status.get("lastIngestTime")},
    }


def featureset_view(featureset: dict) -> dict:
    status = _status(featureset)
    return {**readiness(featureset), "dataset": (_spec(featureset).get("datasetRef") or {}).get("name"),
            "latestVersion": status.get("latestVersion"), "datasetVersion": status.get("datasetVersion"),
            "features": status.get("features") or [], "versions": len(status.get("versions") or [])}


def stored_key(uri: str) -> str:
    """The object key of an s3://bucket/key URI (the console reads it from the namespace's store)."""
    return urlparse(uri).path.lstrip("/")


def run_view(run: dict) -> dict:
    from ..workloads.train_task import run_prefix

    spec, status = _spec(run), _status(run)
    finished = bool(status.get("modelVersion") or status.get("completionTime"))
    return {**readiness(run),
            "modelCard": run_prefix(run["metadata"]["namespace"], _name(run)) + "model_card.html" if finished else None, "phase": status.get("phase"), "progress": status.get("progress"),
            "metric": (spec.get("objective") or {}).get("metric"), "bestScore": status.get("bestScore"),
            "bestFamily": status.get("bestFamily"), "modelVersion": status.get("modelVersion"),
            "promotion": (spec.get("promotion") or {}).get("mode", "Candidate"),
            "completionTime": status.get("completionTime"), "trials": status.get("trials")}


def version_view(version: dict) -> dict:
    spec, status = _spec(version), _status(version)
    return {**readiness(version), "version": spec.get("version"), "stage": status.get("stage") or spec.get("stage"),
            "requestedStage": status.get("requestedStage"), "metrics": spec.get("metrics") or {},
            "primaryMetric": spec.get("primaryMetric"), "history": status.get("history") or [],
            "lineage": spec.get("lineage") or {}, "createdAt": version["metadata"].get("creationTimestamp")}


def canary_steps(service: dict) -> list[dict]:
    """The rollout's steps with their state: done, current or next."""
    spec, status = _spec(service), _status(service)
    canary = spec.get("canary") or {}
    steps = canary.get("steps") or [{"weight": w, "pause": "1m"} for w in DEFAULT_CANARY_WEIGHTS]
    current = status.get("currentStep")
    live = status.get("canaryVersion") is not None and status.get("phase") in ("Progressing", "Paused")
    out = []
    for index, step in enumerate(steps):
        state = "pending"
        if live and current is not None:
            state = "done" if index < current else "current" if index == current else "pending"
        out.append({"index": index, "weight": step.get("weight"), "pause": step.get("pause"), "state": state})
    return out


def service_view(service: dict, loop: Loop) -> dict:
    status = _status(service)
    return {**readiness(service), "phase": status.get("phase"), "url": status.get("url"),
            "stable": _version_name(loop, status.get("stableVersion")), "stableVersion": status.get("stableVersion"),
            "canary": _version_name(loop, status.get("canaryVersion")), "canaryVersion": status.get("canaryVersion"),
            "canarySource": status.get("canarySource"), "canaryApproval": status.get("canaryApproval"),
            "canaryWeight": status.get("canaryWeight"), "currentStep": status.get("currentStep"),
            "rolloutReason": status.get("rolloutReason"), "steps": canary_steps(service),
            "analysis": status.get("analysis") or [],
            "tracks": _spec(service).get("stage"), "pinned": _spec(service).get("version")}


def policy_view(policy: dict) -> dict:
    status = _status(policy)
    history = status.get("history") or []
    metric = monitored_metric(policy)
    last = status.get("lastEvaluation") or {}
    drift = _spec(policy).get("drift") or {}
    return {
        **readiness(policy),
        "metric": metric,
        "metricSummary": status.get("metricSummary"),
        "driftSummary": status.get("driftSummary"),
        "breaches": [{"time": e["time"], "reason": e.get("reason"), "message": e.get("message")}
                     for e in history if e.get("breached")],
        "retrains": status.get("retrains") or [],
        "verdicts": status.get("verdicts") or [],
        "lastDecision": status.get("lastRetrainDecision"),
        "drift": [{"feature": f, "score": s, "drifted": f in (last.get("driftedFeatures") or [])}
                  for f, s in sorted((last.get("driftScores") or {}).items())],
        "reports": [{"time": e["time"], "key": stored_key(e["reportUri"])} for e in history if e.get("reportUri")],
        "metricChart": metric_chart(history, metric, status.get("retrains") or []) if metric else None,
        "driftChart": drift_chart(last, drift.get("threshold")) if last.get("driftScores") else None,
    }


def lineage_graph(loop: Loop) -> dict:
    """Nodes and edges Dataset → FeatureSet → TrainingRun → ModelVersion → InferenceService, for
    every version of the model (shared upstream nodes appear once)."""
    nodes: dict[str, dict] = {}
    edges: list[dict] = []

    def node(kind: str, name: str, label: str, state: str | None) -> str:
        key = f"{kind}/{label}"
        nodes.setdefault(key, {"id": key, "kind": kind, "name": name, "label": label, "state": state})
        return key

    def edge(source: str | None, target: str) -> None:
        if source and {"from": source, "to": target} not in edges:
            edges.append({"from": source, "to": target})

    for version in loop.versions:
        lineage = _spec(version).get("lineage") or {}
        upstream = None
        if lineage.get("dataset"):
            upstream = node("Dataset", lineage["dataset"], f"{lineage['dataset']}@{lineage.get('datasetVersion') or '?'}",
                            None)
        if lineage.get("featureSet"):
            key = node("FeatureSet", lineage["featureSet"],
                       f"{lineage['featureSet']}@{lineage.get('featureSetVersion') or '?'}", None)
            edge(upstream, key)
            upstream = key
        if lineage.get("trainingRun"):
            key = node("TrainingRun", lineage["trainingRun"], lineage["trainingRun"], None)
            edge(upstream, key)
            upstream = key
        key = node("ModelVersion", _name(version), _name(version),
                   _status(version).get("stage") or _spec(version).get("stage"))
        edge(upstream, key)
        for service in loop.services:
            status = _status(service)
            role = ("stable" if status.get("stableVersion") == _spec(version).get("version") else
                    "canary" if status.get("canaryVersion") == _spec(version).get("version") else None)
            if role:
                target = node("InferenceService", _name(service), _name(service), status.get("phase"))
                edges.append({"from": key, "to": target, "role": role})
    return {"nodes": list(nodes.values()), "edges": edges}


LINEAGE_COLUMNS = ("Dataset", "FeatureSet", "TrainingRun", "ModelVersion", "InferenceService")


def lineage_chart(graph: dict) -> dict:
    """The lineage graph as a Vega-Lite layer: one column per kind, left to right, edges as rules."""
    rows: dict[str, int] = {}
    placed = {}
    for node in graph["nodes"]:
        column = LINEAGE_COLUMNS.index(node["kind"])
        row = rows.get(node["kind"], 0)
        rows[node["kind"]] = row + 1
        placed[node["id"]] = {**node, "x": column, "y": row}
    edges = [{"x": placed[e["from"]]["x"], "y": placed[e["from"]]["y"], "x2": placed[e["to"]]["x"],
              "y2": placed[e["to"]]["y"], "role": e.get("role") or ""} for e in graph["edges"]]
    nodes = list(placed.values())
    x = {"field": "x", "type": "quantitative", "axis": None, "scale": {"domain": [-0.5, len(LINEAGE_COLUMNS) - 0.5]}}
    y = {"field": "y", "type": "quantitative", "axis": None,
         "scale": {"domain": [max(rows.values(), default=1) - 0.5, -0.5]}}
    return {"$schema": VEGA_LITE_SCHEMA, "description": "lineage: Dataset, FeatureSet, TrainingRun, ModelVersion, "
                                                        "InferenceService",
            "width": "container", "height": 60 + 50 * max(rows.values(), default=1),
            "layer": [
                {"data": {"values": edges}, "mark": {"type": "rule", "color": "#a0aec0", "strokeWidth": 2},
                 "encoding": {"x": x, "y": y, "x2": {"field": "x2"}, "y2": {"field": "y2"}}},
                {"data": {"values": nodes}, "mark": {"type": "point", "shape": "square", "size": 300, "filled": True},
                 "encoding": {"x": x, "y": y, "color": {"field": "kind", "type": "nominal", "sort": list(LINEAGE_COLUMNS),
                                                        "legend": {"orient": "top", "title": None}},
                              "tooltip": [{"field": "kind"}, {"field": "label"}, {"field": "state"}]}},
                {"data": {"values": nodes}, "mark": {"type": "text", "dy": 18, "fontSize": 11},
                 "encoding": {"x": x, "y": y, "text": {"field": "label"}}},
            ]}


def lineage_chains(loop: Loop) -> list[str]:
    """One line per version: Dataset@version → FeatureSet@version → TrainingRun → ModelVersion (stage)
    → the InferenceServices serving it, and as what."""
    chains = []
    for version in reversed(loop.versions):
        lineage = _spec(version).get("lineage") or {}
        parts = []
        if lineage.get("dataset"):
            parts.append(f"Dataset {lineage['dataset']}@{lineage.get('datasetVersion') or '?'}")
        if lineage.get("featureSet"):
            parts.append(f"FeatureSet {lineage['featureSet']}@{lineage.get('featureSetVersion') or '?'}")
        if lineage.get("trainingRun"):
            parts.append(f"TrainingRun {lineage['trainingRun']}")
        stage = _status(version).get("stage") or _spec(version).get("stage")
        parts.append(f"ModelVersion {_name(version)} ({stage})")
        number = _spec(version).get("version")
        for service in loop.services:
            status = _status(service)
            role = ("stable" if status.get("stableVersion") == number else
                    f"canary {status.get('canaryWeight') or 0}%" if status.get("canaryVersion") == number else None)
            if role:
                parts.append(f"InferenceService {_name(service)} ({role})")
        chains.append(" → ".join(parts))
    return chains


def model_page(snapshot: Snapshot, namespace: str, model: str) -> dict | None:
    loop = loop_of(snapshot, namespace, model)
    if not (loop.versions or loop.runs or loop.services):
        return None
    return {
        "summary": model_summary(loop),
        "datasets": [dataset_view(d) for d in loop.datasets],
        "featuresets": [featureset_view(f) for f in loop.featuresets],
        "runs": [run_view(r) for r in loop.runs],
        "versions": [version_view(v) for v in loop.versions],
        "services": [service_view(s, loop) for s in loop.services],
        "policies": [policy_view(p) for p in loop.policies],
        "lineage": {**(graph := lineage_graph(loop)), "chart": lineage_chart(graph), "chains": lineage_chains(loop)},
        "actions": available_actions(loop),
    }


# ---------------------------------------------------------------- charts (Vega-Lite)


def metric_chart(history: list[dict], metric: dict, retrains: list[dict]) -> dict:
    """The monitored metric per evaluation, the threshold as a rule, breached evaluations in red,
    retrains as vertical rules."""
    name = metric["metric"]
    points = [{"time": e["time"], "value": (e.get("metrics") or {})[name], "breached": bool(e.get("breached"))}
              for e in history if (e.get("metrics") or {}).get(name) is not None]
    time_axis = {"field": "time", "type": "temporal", "title": None}
    layers = [
        {"data": {"values": points}, "mark": {"type": "line", "point": False, "color": "#4c78a8"},
         "encoding": {"x": time_axis, "y": {"field": "value", "type": "quantitative", "title": name,
                                            "scale": {"zero": False}}}},
        {"data": {"values": points},
         "mark": {"type": "point", "filled": True, "size": 60},
         "encoding": {"x": time_axis, "y": {"field": "value", "type": "quantitative"},
                      "color": {"field": "breached", "type": "nominal", "title": "breached",
                                "scale": {"domain": [False, True], "range": ["#4c78a8", "#e45756"]}},
                      "tooltip": [{"field": "time", "type": "temporal", "format": "%Y-%m-%d %H:%M:%S"},
                                  {"field": "value", "type": "quantitative", "format": ".3f"},
                                  {"field": "breached", "type": "nominal"}]}},
        {"data": {"values": [{"threshold": metric["threshold"]}]},
         "mark": {"type": "rule", "color": "#e45756", "strokeDash": [6, 4]},
         "encoding": {"y": {"field": "threshold", "type": "quantitative"}}},
    ]
    retrain_times = [{"time": r["time"], "trigger": r.get("trigger")} for r in retrains if r.get("time")]
    if retrain_times:
        layers.append({"data": {"values": retrain_times}, "mark": {"type": "rule", "color": "#f58518"},
                       "encoding": {"x": time_axis, "tooltip": [{"field": "trigger", "type": "nominal"}]}})
    return {"$schema": VEGA_LITE_SCHEMA, "description": f"{name} over time with threshold {metric['threshold']}",
            "width": "container", "height": 220, "layer": layers}


def score_chart(trials: dict) -> dict:
    """The search's cross-validated score per trial and the best so far (trials.json of a run)."""
    lower = trials.get("direction") == "minimize"
    points, best = [], None
    for trial in sorted(trials.get("trials") or [], key=lambda t: t.get("number", 0)):
        score = trial.get("score")
        if score is None:
            continue
        best = score if best is None else (min(best, score) if lower else max(best, score))
        points.append({"trial": trial.get("number"), "score": score, "best": best, "family": trial.get("family"),
                       "state": trial.get("state")})
    x = {"field": "trial", "type": "quantitative", "title": "trial", "axis": {"tickMinStep": 1, "format": "d"}}
    metric = trials.get("metric", "score")
    return {"$schema": VEGA_LITE_SCHEMA, "description": f"cross-validated {metric} per trial",
            "width": "container", "height": 200, "data": {"values": points}, "layer": [
                {"mark": {"type": "point", "filled": True},
                 "encoding": {"x": x, "y": {"field": "score", "type": "quantitative", "title": metric,
                                            "scale": {"zero": False}},
                              "color": {"field": "family", "type": "nominal"},
                              "tooltip": [{"field": "trial"}, {"field": "family"}, {"field": "score", "format": ".4f"}]}},
                {"mark": {"type": "line", "interpolate": "step-after", "color": "#333"},
                 "encoding": {"x": x, "y": {"field": "best", "type": "quantitative"}}},
            ]}


def drift_chart(evaluation: dict, threshold: float | None) -> dict:
    """The last evaluation's drift score per feature; drifted features in red."""
    drifted = set(evaluation.get("driftedFeatures") or [])
    values = [{"feature": f, "score": s, "drifted": f in drifted}
              for f, s in sorted((evaluation.get("driftScores") or {}).items())]
    layers = [{"data": {"values": values}, "mark": "bar",
               "encoding": {"y": {"field": "feature", "type": "nominal", "sort": "-x", "title": None},
                            "x": {"field": "score", "type": "quantitative", "title": "drift score"},
                            "color": {"field": "drifted", "type": "nominal",
                                      "scale": {"domain": [False, True], "range": ["#4c78a8", "#e45756"]}}}}]
    if threshold is not None:
        layers.append({"data": {"values": [{"threshold": threshold}]},
                       "mark": {"type": "rule", "color": "#e45756", "strokeDash": [6, 4]},
                       "encoding": {"x": {"field": "threshold", "type": "quantitative"}}})
    return {"$schema": VEGA_LITE_SCHEMA, "description": "drift score per feature", "width": "container",
            "height": {"step": 16}, "layer": layers}


# ---------------------------------------------------------------- guarded actions

ACTIONS = ("approve", "reject", "promote", "abort", "retrain")
MAX_REASON = 500


def _manual_target(version: dict, loop: Loop) -> str | None:
    """The stage a Candidate waits to be approved into by hand, or None when nobody waits on a person:
    its TrainingRun's promotion is Manual, or a MonitorPolicy's verdict allowed it with rollout Manual."""
    if (_status(version).get("stage") or _spec(version).get("stage")) != "Candidate":
        return None
    run = next((r for r in loop.runs if _name(r) == (_spec(version).get("lineage") or {}).get("trainingRun")), None)
    promotion = (_spec(run).get("promotion") or {}) if run else {}
    if promotion.get("mode") == "Manual":
        return promotion.get("targetStage") or "Production"
    for policy in loop.policies:
        for verdict in _status(policy).get("verdicts") or []:
            if verdict.get("candidate") == _name(version) and verdict.get("allowed") and verdict.get("rollout") == "Manual":
                retrain = (_spec(policy).get("actions") or {}).get("retrain") or {}
                return (retrain.get("promotion") or {}).get("targetStage") or "Production"
    return None


def _awaiting_promotion(service: dict) -> bool:
    status = _status(service)
    return status.get("phase") == "Paused" and (status.get("rolloutReason") or "").startswith("awaiting promotion")


def _challenger_canary(service: dict, loop: Loop) -> dict | None:
    status = _status(service)
    if status.get("canarySource") != "challenger" or status.get("phase") not in ("Progressing", "Paused"):
        return None
    return next((v for v in loop.versions if _spec(v).get("version") == status.get("canaryVersion")), None)


def _retrain_refusal(policy: dict) -> str | None:
    """Why the policy cannot take a retrain request now, or None."""
    retrain = (_spec(policy).get("actions") or {}).get("retrain")
    if not retrain or retrain.get("enabled") is False:
        return f"MonitorPolicy {_name(policy)} does not retrain (spec.actions.retrain is not enabled)"
    manual = (_spec(policy).get("triggers") or {}).get("manual") or {}
    if manual.get("requestedAt") and manual["requestedAt"] != _status(policy).get("lastManualRequest"):
        return (f"the retrain {manual.get('requestedBy')} asked for at {manual['requestedAt']} is not handled yet "
                f"(MonitorPolicy {_name(policy)} status.lastManualRequest)")
    return None


def available_actions(loop: Loop) -> list[dict]:
    """The actions that apply to the loop as it is: approve/reject a Candidate waiting for a person,
    promote a canary paused at its last step, abort a challenger canary (archive its candidate),
    ask a policy that retrains for one retrain now."""
    actions = []
    for version in loop.versions:
        target = _manual_target(version, loop)
        if target:
            actions.append({"action": "approve", "kind": "ModelVersion", "name": _name(version),
                            "label": f"Approve {_name(version)} to {target}"})
            actions.append({"action": "reject", "kind": "ModelVersion", "name": _name(version),
                            "label": f"Reject {_name(version)}"})
    for service in loop.services:
        if _awaiting_promotion(service):
            actions.append({"action": "promote", "kind": "InferenceService", "name": _name(service),
                            "label": f"Promote canary {_version_name(loop, _status(service).get('canaryVersion'))}"})
        candidate = _challenger_canary(service, loop)
        if candidate is not None:
            actions.append({"action": "abort", "kind": "InferenceService", "name": _name(service),
                            "label": f"Abort canary {_name(candidate)}"})
    for policy in loop.policies:
        if _retrain_refusal(policy) is None:
            actions.append({"action": "retrain", "kind": "MonitorPolicy", "name": _name(policy),
                            "label": f"Retrain now ({_name(policy)})"})
    return actions


@dataclass(frozen=True)
class ActionPlan:
    """What an action changes: one merge patch of one object, and the Event that records it."""

    kind: str
    name: str
    patch: dict
    event_object: dict  # the object the Event is about (kind, name, uid)
    reason: str
    message: str


def _stage_patch(stage: str, user: str, why: str) -> dict:
    from ..api import keys

    return {"metadata": {"annotations": {keys.CHANGED_BY_ANNOTATION: user, keys.REASON_ANNOTATION: why}},
            "spec": {"stage": stage}}


def _event_object(obj: dict) -> dict:
    return {"kind": obj["kind"], "name": _name(obj), "uid": obj["metadata"].get("uid")}


def _retrain_plan(loop: Loop, name: str, user: str, now: str, reason: str | None) -> ActionPlan:
    """A retrain request as spec.triggers.manual (the planner handles each requestedAt once)."""
    policy = next((p for p in loop.policies if _name(p) == name), None)
    if policy is None:
        raise ActionRefused(f"no MonitorPolicy {name} watching model {loop.model} in {loop.namespace}")
    refusal = _retrain_refusal(policy)
    if refusal:
        raise ActionRefused(refusal)
    why = (reason or "").strip()[:MAX_REASON] or "asked in kadence console"
    request = {"requestedAt": now, "requestedBy": user, "reason": why}
    return ActionPlan("MonitorPolicy", name, {"spec": {"triggers": {"manual": request}}}, _event_object(policy),
                      "ConsoleRetrain", f"{user} asked MonitorPolicy {name} to retrain in kadence console "
                                        f"(spec.triggers.manual.requestedAt {now}): {why}")


def plan_action(loop: Loop, action: str, name: str, user: str, now: str | None = None,
                reason: str | None = None) -> ActionPlan:
    """The API change a person would make with kubectl for `action` on `name`, as the console makes it;
    ActionRefused when it does not apply now. `now` (RFC 3339) and `reason` are the retrain request's."""
    from ..api import keys

    if action not in ACTIONS:
        raise ActionRefused(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if action == "retrain":
        if now is None:
            raise ValueError("a retrain request needs the time it is made")
        return _retrain_plan(loop, name, user, now, reason)
    if action in ("approve", "reject"):
        version = next((v for v in loop.versions if _name(v) == name), None)
        if version is None:
            raise ActionRefused(f"no ModelVersion {name} of model {loop.model} in {loop.namespace}")
        target = _manual_target(version, loop)
        if target is None:
            raise ActionRefused(f"{name} is not a Candidate waiting for a person's approval "
                                f"(stage {_status(version).get('stage') or _spec(version).get('stage')})")
        stage = target if action == "approve" else "Archived"
        verb = "approved" if action == "approve" else "rejected"
        return ActionPlan("ModelVersion", name, _stage_patch(stage, user, f"{verb} in kadence console"),
                          _event_object(version), f"Console{action.capitalize()}",
                          f"{user} {verb} {name} in kadence console (spec.stage {stage})")
    service = next((s for s in loop.services if _name(s) == name), None)
    if service is None:
        raise ActionRefused(f"no InferenceService {name} serving model {loop.model} in {loop.namespace}")
    canary = _version_name(loop, _status(service).get("canaryVersion"))
    if action == "promote":
        if not _awaiting_promotion(service):
            raise ActionRefused(f"{name} has no canary paused at its last step awaiting promotion "
                                f"(phase {_status(service).get('phase')})")
        return ActionPlan("InferenceService", name, {"metadata": {"annotations": {keys.PROMOTE_ANNOTATION: "true"}}},
                          _event_object(service), "ConsolePromote",
                          f"{user} promoted canary {canary} of {name} in kadence console ({keys.PROMOTE_ANNOTATION})")
    candidate = _challenger_canary(service, loop)
    if candidate is None:
        raise ActionRefused(f"{name} has no challenger canary to abort (a canary pinned by spec.canary.version "
                            f"is ended by editing the InferenceService's spec)")
    return ActionPlan("ModelVersion", _name(candidate),
                      _stage_patch("Archived", user, f"canary aborted in kadence console on {name}"),
                      _event_object(candidate), "ConsoleAbort",
                      f"{user} aborted the canary of {_name(candidate)} on {name} in kadence console "
                      f"(spec.stage Archived)")


PLURALS = {"ModelVersion": "modelversions", "InferenceService": "inferenceservices", "MonitorPolicy": "monitorpolicies"}


def access_review(namespace: str, kind: str, name: str) -> dict:
    """The SelfSubjectAccessReview asking whether the user may patch `kind/name`."""
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": namespace, "verb": "patch", "group": "kadence.dev",
                                            "resource": PLURALS[kind], "name": name}}}


def event_manifest(namespace: str, plan: ActionPlan, now: str, suffix: str) -> dict:
    """A core/v1 Event about the changed object, naming who changed it (`suffix` makes its name unique)."""
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{plan.event_object['name']}.console-{suffix}", "namespace": namespace},
            "involvedObject": {"apiVersion": "kadence.dev/v1alpha1", "namespace": namespace, **plan.event_object},
            "reason": plan.reason, "message": plan.message, "type": "Normal",
            "source": {"component": "kadence-console"}, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "kadence-console"}

