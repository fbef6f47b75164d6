"""A churn loop as the operator leaves it, object by object (the fields the API defines), for the
console's view and HTTP tests; each builder takes the few values a test varies."""

from __future__ import annotations

NS = "team-a"
API = "kadence.dev/v1alpha1"


def obj(kind: str, name: str, spec: dict, status: dict | None = None, **meta) -> dict:
    return {"apiVersion": API, "kind": kind, "spec": spec, "status": status or {},
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", **meta}}


def ready(status: str = "True", reason: str = "Ready", message: str = "") -> list[dict]:
    return [{"type": "Ready", "status": status, "reason": reason, "message": message,
             "lastTransitionTime": "2026-12-01T00:00:00Z"}]


def dataset() -> dict:
    return obj("Dataset", "churn", {"source": {"configMapRef": {"name": "churn-data", "key": "churn.csv"}}}, {
        "conditions": ready(), "latestVersion": "d2", "latestRows": 2100,
        "versions": [{"id": "d2", "rows": 2100, "createdAt": "2026-12-02T00:00:00Z", "uri": "s3://k/datasets/team-a/churn/d2/",
                      "feedback": [{"rows": 100}]},
                     {"id": "d1", "rows": 2000, "createdAt": "2026-12-01T00:00:00Z", "uri": "s3://k/datasets/team-a/churn/d1/"}],
        "lastIngest": [{"rule": "minRows", "passed": True, "message": "2100 >= 1000"},
                       {"rule": "maxMissingFraction", "passed": True, "message": "0 <= 0.05"}],
        "lastIngestTime": "2026-12-02T00:00:00Z"})


def featureset() -> dict:
    return obj("FeatureSet", "churn-features", {"datasetRef": {"name": "churn"}}, {
        "conditions": ready(), "latestVersion": "f2", "datasetVersion": "d2",
        "features": [{"name": "log_tenure", "type": "float", "source": "log1p(tenure_months)"}],
        "versions": [{"id": "f2"}, {"id": "f1"}]})


def run(name: str = "churn-initial", mode: str = "Auto", target: str | None = "Production",
        model_version: str | None = "churn-v1") -> dict:
    promotion = {"mode": mode, **({"targetStage": target} if target else {})}
    return obj("TrainingRun", name, {"featureSetRef": {"name": "churn-features"}, "task": "classification",
                                     "objective": {"metric": "f1"}, "model": "churn", "promotion": promotion}, {
        "conditions": ready(), "phase": "Succeeded", "progress": "20/20", "bestScore": 0.81, "bestFamily": "random_forest",
        "modelVersion": model_version, "completionTime": "2026-12-01T01:00:00Z" if model_version else None})


def version(number: int, stage: str, run_name: str = "churn-initial", dataset_version: str = "d1",
            history: list | None = None) -> dict:
    return obj("ModelVersion", f"churn-v{number}", {
        "model": "churn", "version": number, "stage": stage, "metrics": {"f1": 0.8},
        "artifact": {"uri": f"s3://k/runs/team-a/{run_name}/artifacts/x/model.skops", "sha256": "a" * 64},
        "lineage": {"trainingRun": run_name, "dataset": "churn", "datasetVersion": dataset_version,
                    "featureSet": "churn-features", "featureSetVersion": "f1"}},
        {"conditions": ready(), "stage": stage, "history": history or [
            {"stage": stage, "at": "2026-12-01T01:00:00Z", "by": "kadence-operator", "reason": "registered"}]})


def service(stable: int = 1, canary: int | None = None, phase: str = "Stable", step: int | None = None,
            weight: int | None = None, source: str | None = None, reason: str | None = None,
            steps: list | None = None) -> dict:
    spec = {"model": "churn", "stage": "Production",
            "canary": {"steps": steps or [{"weight": 10, "pause": "2m"}, {"weight": 50, "pause": "5m"}]}}
    status = {"conditions": ready(), "phase": phase, "stableVersion": stable, "canaryVersion": canary,
              "canaryWeight": weight, "currentStep": step, "canarySource": source, "rolloutReason": reason,
              "analysis": [{"at": "2026-12-03T00:00:00Z", "step": 0, "requests": 120, "errorRate": 0.0,
                            "latencyP99Ratio": 1.1, "passed": True, "message": "ok"}] if canary else None}
    return obj("InferenceService", "churn", spec, {k: v for k, v in status.items() if v is not None})


def evaluation(time: str, f1: float, breached: bool, **extra) -> dict:
    return {"time": time, "samples": 500, "labelledSamples": 200, "metrics": {"f1": f1}, "breached": breached,
            "reason": "QualityBreach" if breached else "Healthy", **extra}


def policy(history: list[dict] | None = None, verdicts: list[dict] | None = None, rollout_mode: str = "Auto") -> dict:
    history = history if history is not None else [
        evaluation("2026-12-01T00:00:00Z", 0.81, False),
        evaluation("2026-12-02T00:00:00Z", 0.50, True, reportUri="s3://kadence/monitoring/team-a/churn-quality/r2/report.html",
                   driftScores={"monthly_charges": 0.31, "tenure_months": 0.05}, driftedFeatures=["monthly_charges"]),
    ]
    return obj("MonitorPolicy", "churn-quality", {
        "inferenceServiceRef": {"name": "churn"}, "performance": {"metric": "f1", "threshold": 0.55},
        "drift": {"method": "psi", "threshold": 0.2},
        "actions": {"retrain": {"fromTrainingRun": "churn-initial",
                                "promotion": {"mode": rollout_mode, "targetStage": "Production"}}}}, {
        "conditions": ready("False", "MonitorJobFailed", "the last monitor Job failed"),
        "history": history, "lastEvaluation": history[-1] if history else None, "metricSummary": "f1=0.50",
        "driftSummary": "1/2 drifted",
        "retrains": [{"time": "2026-12-02T00:05:00Z", "trigger": "breach", "trainingRun": "churn-retrain-1",
                      "outcome": "Won", "modelVersion": "churn-v2"}],
        "verdicts": verdicts or []})
