from prometheus_client import CollectorRegistry, generate_latest

from kadence.domain.monitoring.metrics import MonitorMetrics

RESULT = {
    "time": "2026-11-23T00:10:00Z", "samples": 500, "labelledSamples": 120,
    "driftScores": {"tenure": 0.31, "plan": 0.02}, "driftedFeatures": ["tenure"], "driftedShare": 0.5,
    "metrics": {"f1": 0.51, "accuracy": 0.7}, "breached": True, "reason": "QualityBelowThreshold",
}


def sample(registry, name, **labels):
    return registry.get_sample_value(name, {"namespace": "ns", "policy": "churn", **labels})


def test_an_evaluation_sets_the_gauges_and_counts_the_breach():
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    metrics.record_evaluation("ns", "churn", RESULT)
    assert sample(registry, "kadence_monitor_drift_score", feature="tenure") == 0.31
    assert sample(registry, "kadence_monitor_feature_drifted", feature="tenure") == 1
    assert sample(registry, "kadence_monitor_feature_drifted", feature="plan") == 0
    assert sample(registry, "kadence_monitor_metric", metric="f1") == 0.51
    assert sample(registry, "kadence_monitor_samples", kind="labelled") == 120
    assert sample(registry, "kadence_monitor_breached") == 1
    assert sample(registry, "kadence_monitor_breaches_total", reason="QualityBelowThreshold") == 1
    assert sample(registry, "kadence_monitor_last_evaluation_timestamp_seconds") == 1795392600.0


def test_a_feature_no_longer_scored_disappears_from_the_export():
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    metrics.record_evaluation("ns", "churn", RESULT)
    metrics.record_evaluation("ns", "churn", RESULT | {"driftScores": {"tenure": 0.1}, "breached": False,
                                                       "reason": "Healthy"})
    assert sample(registry, "kadence_monitor_drift_score", feature="plan") is None
    assert sample(registry, "kadence_monitor_breached") == 0
    assert sample(registry, "kadence_monitor_evaluations_total", reason="Healthy") == 1


def test_retrains_are_counted_by_trigger_and_a_deleted_policy_is_forgotten():
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    metrics.record_evaluation("ns", "churn", RESULT)
    metrics.record_retrain("ns", "churn", "breach")
    metrics.record_held_retrain("ns", "churn", "CooldownActive")
    assert sample(registry, "kadence_retrains_total", trigger="breach") == 1
    assert sample(registry, "kadence_retrains_held_total", reason="CooldownActive") == 1
    metrics.forget("ns", "churn")
    assert b'policy="churn"' not in generate_latest(registry)


def test_the_quality_windows_period_and_label_delay_are_exported_and_cleared_when_unknown():
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    window = {"labelled": 120, "limit": 2000, "maxAgeSeconds": 2592000.0, "retentionStart": "2026-10-24T00:10:00Z",
              "start": "2026-11-01T00:00:00Z", "end": "2026-11-16T00:00:00Z",
              "labelDelayP50Seconds": 604800.0, "labelDelayP95Seconds": 1209600.0}
    metrics.record_evaluation("ns", "churn", RESULT | {"qualityWindow": window})
    assert sample(registry, "kadence_monitor_label_delay_seconds", quantile="0.5") == 604800.0
    assert sample(registry, "kadence_monitor_label_delay_seconds", quantile="0.95") == 1209600.0
    assert sample(registry, "kadence_monitor_quality_window_seconds", edge="end") == 1794787200.0
    # no labelled prediction within the retention: no delay, no period (not a stale figure)
    empty = window | {"labelled": 0, "start": None, "end": None, "labelDelayP50Seconds": None,
                      "labelDelayP95Seconds": None}
    metrics.record_evaluation("ns", "churn", RESULT | {"qualityWindow": empty})
    assert sample(registry, "kadence_monitor_label_delay_seconds", quantile="0.5") is None
    assert sample(registry, "kadence_monitor_quality_window_seconds", edge="start") is None
    metrics.forget("ns", "churn")
    assert b"kadence_monitor_label_delay_seconds{" not in generate_latest(registry)
