"""Prometheus metrics the operator exports for MonitorPolicies (defined here, served by the
operator's metrics endpoint; importing this module starts no server).

The Helm chart's alert rules use these names:

| name | type | labels |
|---|---|---|
| kadence_monitor_drift_score | gauge | namespace, policy, feature |
| kadence_monitor_feature_drifted | gauge (0/1) | namespace, policy, feature |
| kadence_monitor_drifted_share | gauge | namespace, policy |
| kadence_monitor_metric | gauge | namespace, policy, metric |
| kadence_monitor_estimated_metric | gauge | namespace, policy, metric: estimated without labels over the drift window |
| kadence_monitor_concept_drift | gauge (0/1) | namespace, policy: realized below the estimate on the same labelled predictions |
| kadence_monitor_output_drifted | gauge (0/1) | namespace, policy, output (label: the target in feedback; prediction: the served outputs) |
| kadence_monitor_samples | gauge | namespace, policy, kind (all: the drift window's predictions; labelled: the quality window's) |
| kadence_monitor_label_delay_seconds | gauge | namespace, policy, quantile (0.5, 0.95) |
| kadence_monitor_quality_window_seconds | gauge | namespace, policy, edge (start, end): unix time of the oldest and newest judged prediction |
| kadence_monitor_breached | gauge (0/1) | namespace, policy |
| kadence_monitor_last_evaluation_timestamp_seconds | gauge | namespace, policy |
| kadence_monitor_production_gap | gauge | namespace, policy, metric |
| kadence_monitor_evaluations_total | counter | namespace, policy, reason |
| kadence_monitor_breaches_total | counter | namespace, policy, reason |
| kadence_retrains_total | counter | namespace, policy, trigger |
| kadence_retrains_held_total | counter | namespace, policy, reason (NothingNewToLearn, WaitingForLabels, RetrainInProgress, CooldownActive, DailyBudgetExhausted, AlertOnly, …) |

A drift score's meaning depends on the feature's method (a p-value for ks and chisquared,
where low means drift); `kadence_monitor_feature_drifted` is the method-independent signal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

POLICY_LABELS = ("namespace", "policy")


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.drift_score = Gauge("kadence_monitor_drift_score",
                                 "Drift score of one feature at the last evaluation (a p-value for ks and chisquared).",
                                 POLICY_LABELS + ("feature",), registry=registry)
        self.feature_drifted = Gauge("kadence_monitor_feature_drifted",
                                     "1 when the feature drifted at the last evaluation, else 0.",
                                     POLICY_LABELS + ("feature",), registry=registry)
        self.drifted_share = Gauge("kadence_monitor_drifted_share",
                                   "Share of judged features that drifted at the last evaluation.",
                                   POLICY_LABELS, registry=registry)
        self.metric = Gauge("kadence_monitor_metric", "Quality metric over the quality window's labelled predictions.",
                            POLICY_LABELS + ("metric",), registry=registry)
        self.estimated_metric = Gauge("kadence_monitor_estimated_metric",
                                      "Quality metric estimated without labels over the drift window.",
                                      POLICY_LABELS + ("metric",), registry=registry)
        self.concept_drift = Gauge("kadence_monitor_concept_drift",
                                   "1 when the realized metric fell below the estimate on the same labelled "
                                   "predictions beyond the policy's margin and chance.", POLICY_LABELS,
                                   registry=registry)
        self.output_drifted = Gauge("kadence_monitor_output_drifted",
                                    "1 when the target in feedback (output=label) or the served outputs "
                                    "(output=prediction) drifted from the model's hold-out.",
                                    POLICY_LABELS + ("output",), registry=registry)
        self.samples = Gauge("kadence_monitor_samples", "Predictions (kind=all) and labelled ones (kind=labelled) "
                             "in the last evaluated window.", POLICY_LABELS + ("kind",), registry=registry)
        self.label_delay = Gauge("kadence_monitor_label_delay_seconds",
                                 "Label delay (label time - prediction time) over the quality window, by quantile.",
                                 POLICY_LABELS + ("quantile",), registry=registry)
        self.quality_window = Gauge("kadence_monitor_quality_window_seconds",
                                    "Unix time of the oldest (edge=start) and newest (edge=end) labelled prediction "
                                    "judged for quality at the last evaluation.",
                                    POLICY_LABELS + ("edge",), registry=registry)
        self.breached = Gauge("kadence_monitor_breached", "1 when the last evaluation breached the policy.",
                              POLICY_LABELS, registry=registry)
        self.last_evaluation = Gauge("kadence_monitor_last_evaluation_timestamp_seconds",
                                     "Unix time of the last evaluation.", POLICY_LABELS, registry=registry)
        self.production_gap = Gauge("kadence_monitor_production_gap",
                                    "Hold-out metric minus live metric (relative for rmse/mae), positive when worse.",
                                    POLICY_LABELS + ("metric",), registry=registry)
        self.evaluations = Counter("kadence_monitor_evaluations", "Evaluations, by verdict reason.",
                                   POLICY_LABELS + ("reason",), registry=registry)
        self.breaches = Counter("kadence_monitor_breaches", "Evaluations that breached the policy, by reason.",
                                POLICY_LABELS + ("reason",), registry=registry)
        self.retrains = Counter("kadence_retrains", "Retrains started, by primary trigger.",
                                POLICY_LABELS + ("trigger",), registry=registry)
        self.retrains_held = Counter("kadence_retrains_held",
                                     "Retrain requests that started no TrainingRun, by reason (nothing new to learn, "
                                     "waiting for labels, one in progress, cooldown, budget …).",
                                     POLICY_LABELS + ("reason",), registry=registry)
        self._features: dict[tuple[str, str], set[str]] = {}
        self._metrics: dict[tuple[str, str], set[str]] = {}
        self._estimated: dict[tuple[str, str], set[str]] = {}

    def record_evaluation(self, namespace: str, policy: str, result: Mapping[str, Any]) -> None:
        """Update the gauges and counters from one monitor result (result.json, camelCase)."""
        key = (namespace, policy)
        scores: dict[str, float] = result.get("driftScores") or {}
        drifted = set(result.get("driftedFeatures") or [])
        for gone in self._features.get(key, set()) - set(scores):
            self.drift_score.remove(namespace, policy, gone)
            self.feature_drifted.remove(namespace, policy, gone)
        for feature, score in scores.items():
            self.drift_score.labels(namespace, policy, feature).set(score)
            self.feature_drifted.labels(namespace, policy, feature).set(1 if feature in drifted else 0)
        self._features[key] = set(scores)
        share = result.get("driftedShare")
        if share is not None:
            self.drifted_share.labels(namespace, policy).set(share)
        metrics: dict[str, float] = result.get("metrics") or {}
        for gone in self._metrics.get(key, set()) - set(metrics):
            self.metric.remove(namespace, policy, gone)
        for name, value in metrics.items():
            self.metric.labels(namespace, policy, name).set(value)
        self._metrics[key] = set(metrics)
        estimated: dict[str, float] = (result.get("estimate") or {}).get("metrics") or {}
        for gone in self._estimated.get(key, set()) - set(estimated):
            self.estimated_metric.remove(namespace, policy, gone)
        for name, value in estimated.items():
            self.estimated_metric.labels(namespace, policy, name).set(value)
        self._estimated[key] = set(estimated)
        if result.get("conceptDrift") is not None:
            self.concept_drift.labels(namespace, policy).set(1 if result["conceptDrift"].get("detected") else 0)
        else:
            _remove(self.concept_drift, namespace, policy)
        for output, field in (("label", "labelDrift"), ("prediction", "predictionDrift")):
            if result.get(field) is not None:
                self.output_drifted.labels(namespace, policy, output).set(1 if result[field].get("drifted") else 0)
            else:
                _remove(self.output_drifted, namespace, policy, output)
        self.samples.labels(namespace, policy, "all").set(result.get("samples", 0))
        self.samples.labels(namespace, policy, "labelled").set(result.get("labelledSamples", 0))
        window = result.get("qualityWindow") or {}
        for quantile, field in (("0.5", "labelDelayP50Seconds"), ("0.95", "labelDelayP95Seconds")):
            if window.get(field) is not None:
                self.label_delay.labels(namespace, policy, quantile).set(window[field])
            else:
                _remove(self.label_delay, namespace, policy, quantile)
        for edge in ("start", "end"):
            if window.get(edge):
                self.quality_window.labels(namespace, policy, edge).set(_unix(window[edge]))
            else:
                _remove(self.quality_window, namespace, policy, edge)
        breached = bool(result.get("breached"))
        self.breached.labels(namespace, policy).set(1 if breached else 0)
        time = result.get("time")
        if time:
            self.last_evaluation.labels(namespace, policy).set(_unix(time))
        reason = result.get("reason") or "Unknown"
        self.evaluations.labels(namespace, policy, reason).inc()
        if breached:
            self.breaches.labels(namespace, policy, reason).inc()

    def record_production_gap(self, namespace: str, policy: str, metric: str, gap: float) -> None:
        self.production_gap.labels(namespace, policy, metric).set(gap)

    def record_retrain(self, namespace: str, policy: str, trigger: str) -> None:
        self.retrains.labels(namespace, policy, trigger).inc()

    def record_held_retrain(self, namespace: str, policy: str, reason: str) -> None:
        self.retrains_held.labels(namespace, policy, reason).inc()

    def forget(self, namespace: str, policy: str) -> None:
        """Drop every series of a deleted policy."""
        for collector in (self.drift_score, self.feature_drifted, self.drifted_share, self.metric,
                          self.estimated_metric, self.concept_drift, self.output_drifted, self.samples,
                          self.label_delay, self.quality_window, self.breached, self.last_evaluation,
                          self.production_gap, self.evaluations, self.breaches, self.retrains, self.retrains_held):
            for labels in [tuple(s.labels.values()) for m in collector.collect() for s in m.samples
                           if s.labels.get("namespace") == namespace and s.labels.get("policy") == policy
                           and not s.name.endswith("_created")]:
                try:
                    collector.remove(*labels)
                except KeyError:
                    pass
        self._features.pop((namespace, policy), None)
        self._metrics.pop((namespace, policy), None)
        self._estimated.pop((namespace, policy), None)


def _unix(time: Any) -> float:
    return datetime.fromisoformat(str(time).replace("Z", "+00:00")).timestamp()


def _remove(gauge: Gauge, *labels: str) -> None:
    try:
        gauge.remove(*labels)
    except KeyError:
        pass


_default: MonitorMetrics | None = None


def monitor_metrics() -> MonitorMetrics:
    """The process-wide instance on prometheus_client's default registry."""
    global _default
    if _default is None:
        _default = MonitorMetrics()
    return _default
